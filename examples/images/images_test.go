package images

import "testing"

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
