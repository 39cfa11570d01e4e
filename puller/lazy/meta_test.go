package lazy

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestMetadataShared: calls for one blob at once share one fetch, later
// calls none while the blob is kept; another repository fetches its own.
func TestMetadataShared(t *testing.T) {
	m := newMetadata(1 << 20)
	b := []byte("config")
	d := digest.FromBytes(b)
	var fetches atomic.Int32
	gate := make(chan struct{})
	fetch := func(context.Context) ([]byte, error) {
		fetches.Add(1)
		<-gate
		return b, nil
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if got, err := m.read(context.Background(), "reg/app", d, fetch); err != nil || string(got) != "config" {
				t.Errorf("read: %q, %v", got, err)
			}
		})
	}
	close(gate) // the first fetch may end before every call joined it; the kept blob serves the rest
	wg.Wait()
	if _, err := m.read(context.Background(), "reg/app", d, fetch); err != nil {
		t.Fatal(err)
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("%d fetches for one repository, want 1", n)
	}
	if _, err := m.read(context.Background(), "reg/other", d, fetch); err != nil {
		t.Fatal(err)
	}
	if n := fetches.Load(); n != 2 {
		t.Errorf("%d fetches after another repository read the blob, want 2", n)
	}
}

// TestMetadataBound drops the least recently used blobs over the bound,
// keeps no blob over a quarter of it, and keeps no failed fetch.
func TestMetadataBound(t *testing.T) {
	m := newMetadata(400)
	var fetches atomic.Int32
	blob := func(n int) func(context.Context) ([]byte, error) {
		return func(context.Context) ([]byte, error) { fetches.Add(1); return make([]byte, n), nil }
	}
	ctx := context.Background()
	for i, d := range []digest.Digest{"sha256:a", "sha256:b", "sha256:c", "sha256:d"} {
		if _, err := m.read(ctx, "r", d, blob(100)); err != nil {
			t.Fatal(i, err)
		}
	}
	m.read(ctx, "r", "sha256:a", blob(100)) // a is now the most recent
	m.read(ctx, "r", "sha256:e", blob(100)) // evicts b
	fetches.Store(0)
	m.read(ctx, "r", "sha256:a", blob(100))
	m.read(ctx, "r", "sha256:b", blob(100))
	if n := fetches.Load(); n != 1 {
		t.Errorf("%d fetches of a kept and an evicted blob, want 1 (the evicted)", n)
	}
	fetches.Store(0)
	m.read(ctx, "r", "sha256:big", blob(101))
	m.read(ctx, "r", "sha256:big", blob(101))
	if n := fetches.Load(); n != 2 {
		t.Errorf("%d fetches of a blob over a quarter of the bound, want 2 (never kept)", n)
	}
	fail := errors.New("registry down")
	if _, err := m.read(ctx, "r", "sha256:f", func(context.Context) ([]byte, error) { return nil, fail }); !errors.Is(err, fail) {
		t.Fatalf("got %v, want the fetch's error", err)
	}
	fetches.Store(0)
	if _, err := m.read(ctx, "r", "sha256:f", blob(10)); err != nil || fetches.Load() != 1 {
		t.Errorf("after a failed fetch: %v, %d fetches; want a new fetch", err, fetches.Load())
	}
	if m.size > m.max {
		t.Errorf("kept %d bytes, over the bound %d", m.size, m.max)
	}
}
