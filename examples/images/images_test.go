package images

import (
	"context"
	"io"
	"testing"
)

func TestFromBinary(t *testing.T) {
	img, err := FromBinary("echo", []byte("#!/bin/true\n"))
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("platform: got %s/%s, want linux/amd64", cf.OS, cf.Architecture)
	}
	if got := cf.Config.Entrypoint; len(got) != 1 || got[0] != "/app/echo" {
		t.Errorf("entrypoint: got %q, want [/app/echo]", got)
	}
	if _, ok := cf.Config.ExposedPorts["9000/tcp"]; !ok {
		t.Errorf("exposed ports: got %v, want 9000/tcp", cf.Config.ExposedPorts)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: got %d, %v; want 1", len(layers), err)
	}
	if got, want := Ref("127.0.0.1:5000", Echo), "127.0.0.1:5000/examples/echo:latest"; got != want {
		t.Errorf("Ref: got %q, want %q", got, want)
	}
}

func TestSynthetic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an image")
	}
	ctx := context.Background()
	opts := SyntheticOptions{Size: 8 << 20, Layers: 2, StartupFraction: 0.1, Seed: 1}
	dir := t.TempDir()
	img, err := Synthetic(ctx, opts, dir)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 3 {
		t.Fatalf("got %d layers (%v), want 3", len(layers), err)
	}
	var compressed, uncompressed int64
	for _, l := range layers[1:] {
		c, _ := l.Size()
		compressed += c
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		uncompressed += n
	}
	if uncompressed < opts.Size || compressed >= uncompressed {
		t.Errorf("data layers: %d bytes compressed of %d, want at least %d and some compression", compressed, uncompressed, opts.Size)
	}
	// The cached layout gives the same image back.
	again, err := Synthetic(ctx, opts, dir)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("second build: got %s, want the cached %s", d2, d1)
	}
}
