package lazyfs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/fcd-dev/fcd/cache"
	"github.com/fcd-dev/fcd/internal/regtest"
	"github.com/fcd-dev/fcd/puller/remote"
)

var _ Blob = (*remote.Blob)(nil)

// TestThroughRegistry mounts layers whose bytes come from a registry that
// refuses multi-range requests, redirects blob GETs to expiring URLs and
// expires its tokens, through puller/remote's fetcher and the host's
// chunk cache: the tree equals a full unpack, in both modes.
func TestThroughRegistry(t *testing.T) {
	requireFUSE(t)
	entries := featureLayer()
	ref := t.TempDir()
	applyReference(t, ref, true, entries)
	want := takeSnapshot(t, ref, explicitNames(entries))
	b := buildLayer(t, entries)

	reg := regtest.New(t)
	reg.SetCredentials("fc", "secret")
	reg.SetFaults(regtest.Faults{RefuseMultiRange: true, Redirect: true, Auth: true, ExpiredStatus: 403})
	gzDesc, esDesc := reg.AddBlob(b.gz.data), reg.AddBlob(b.esgz.data)
	c, err := cache.Open(t.TempDir(), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f := remote.New(remote.Options{Cache: c})
	defer f.Close()
	creds := func(string) (string, string, error) { return "fc", "secret", nil }
	gzBlob, err := f.Blob(reg.Ref("app"), gzDesc, reg.Hosts(), creds)
	if err != nil {
		t.Fatal(err)
	}
	esBlob, err := f.Blob(reg.Ref("app"), esDesc, reg.Hosts(), creds)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	es, err := OpenEStargz(ctx, esBlob, esDesc.Size, EStargzOptions{TOCDigest: digestOf(b.tocDgst), Chunks: c})
	if err != nil {
		t.Fatalf("OpenEStargz: %v", err)
	}
	gs, err := NewGzIndex(b.index, gzBlob, nil)
	if err != nil {
		t.Fatal(err)
	}
	for mode, src := range map[string]Source{"estargz": es, "gzindex": gs} {
		t.Run(mode, func(t *testing.T) {
			l := mountLayer(t, src, MountOptions{CacheDir: t.TempDir()})
			reg.ExpireTokens()
			compareSnapshots(t, takeSnapshot(t, l.Dir(), explicitNames(entries)), want)
		})
	}
	if st := gzBlob.Stats(); st.NetworkBytes == 0 || st.NetworkBytes > int64(len(b.gz.data))*2 {
		t.Errorf("index-only layer: %d bytes from the network for a %d-byte blob", st.NetworkBytes, len(b.gz.data))
	}
}

// TestRegistryDown reads while the registry answers 503: after the
// fetcher's retry bound the read fails with EIO, the mount survives, and
// the same read succeeds once the registry is back.
func TestRegistryDown(t *testing.T) {
	requireFUSE(t)
	entries := featureLayer()
	files := wantFiles(entries)
	b := buildLayer(t, entries)
	reg := regtest.New(t)
	desc := reg.AddBlob(b.gz.data)
	// A short retry bound, and no circuit breaker: the read after
	// recovery must not wait out a cooldown.
	f := remote.New(remote.Options{RetryTimeout: 300 * time.Millisecond, InitialBackoff: 10 * time.Millisecond, BreakerThreshold: 1 << 20})
	defer f.Close()
	blob, err := f.Blob(reg.Ref("app"), desc, reg.Hosts(), nil)
	if err != nil {
		t.Fatal(err)
	}
	gs, err := NewGzIndex(b.index, blob, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := mountLayer(t, gs, MountOptions{})
	reg.UpdateFaults(func(f *regtest.Faults) { f.Down = true })
	p := filepath.Join(l.Dir(), "big/random")
	if _, err := os.ReadFile(p); !errors.Is(err, syscall.EIO) {
		t.Fatalf("read with the registry down: got %v, want EIO", err)
	}
	if _, err := os.Stat(filepath.Join(l.Dir(), "etc/passwd")); err != nil {
		t.Fatalf("mount gone: %v", err)
	}
	reg.UpdateFaults(func(f *regtest.Faults) { f.Down = false })
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, files["big/random"]) {
		t.Fatalf("read after the registry is back: %d bytes, %v", len(got), err)
	}
}
