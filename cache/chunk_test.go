package cache

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/containerd/errdefs"
)

func TestChunkBytes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := openCache(t, dir, Options{Verify: VerifyNever})
	b, d := blob(1, 100<<10)
	if _, err := c.Get(ctx, d); !errdefs.IsNotFound(err) {
		t.Fatalf("Get before Put: got %v, want ErrNotFound", err)
	}
	if err := c.PutBytes(ctx, d, b[:len(b)-1]); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("PutBytes of wrong bytes: got %v, want ErrDigestMismatch", err)
	}
	if err := c.PutBytes(ctx, d, b); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, d)
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("Get: got %d bytes, %v; want %d bytes", len(got), err, len(b))
	}
	if st := c.Stats(); st.Hits != 1 || st.Misses != 1 {
		t.Fatalf("got %d hits, %d misses; want 1, 1", st.Hits, st.Misses)
	}

	// Get verifies even with VerifyNever: a corrupt entry is dropped and
	// reads as absent, and a new Put stores it again.
	corruptFile(t, dir, d)
	_, err = c.Get(ctx, d)
	if !errors.Is(err, ErrCorrupt) || !errdefs.IsNotFound(err) {
		t.Fatalf("Get of a corrupt entry: got %v, want ErrCorrupt and ErrNotFound", err)
	}
	if c.Has(d) {
		t.Fatal("corrupt entry still stored after Get")
	}
	if st := c.Stats(); st.Corrupted != 1 || st.Misses != 2 {
		t.Fatalf("got %d corrupted, %d misses; want 1, 2", st.Corrupted, st.Misses)
	}
	if err := c.PutBytes(ctx, d, b); err != nil {
		t.Fatal(err)
	}

	// The entry survives a restart.
	c.Close()
	c = openCache(t, dir, Options{})
	if got, err := c.Get(ctx, d); err != nil || !bytes.Equal(got, b) {
		t.Fatalf("Get after restart: got %d bytes, %v; want %d bytes", len(got), err, len(b))
	}
}
