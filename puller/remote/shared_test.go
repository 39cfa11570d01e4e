package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fcd-dev/fcd/cache"
	"github.com/opencontainers/go-digest"
)

// join is joinLooked for a test that did not look for the chunk.
func (f *Fetcher) join(b *Blob, off, n int64, want digest.Digest, prio Priority) (*item, error) {
	return f.joinLooked(b, off, n, want, prio, f.kept.Load())
}

// cachedFixture is a fixture whose Fetcher keeps verified chunks in a
// cache, with a stall timeout no held request reaches.
func cachedFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	c, err := cache.Open(t.TempDir(), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	opts.Cache, opts.StallTimeout = c, time.Minute
	return newFixture(t, 1<<20, opts)
}

// gets returns the GETs of x's blob that asked for [off, off+n).
func (x *fixture) gets(off, n int64) int {
	k := 0
	for _, q := range x.r.BlobRequests(x.desc.Digest) {
		if q.Range == fmt.Sprintf("bytes=%d-%d", off, off+n-1) {
			k++
		}
	}
	return k
}

// TestAbandonedChunkKept: a chunk whose GET is on the wire when its only
// reader gives up is received and kept all the same, so the next read of
// it sends no second GET for the bytes the registry has sent. A lazy
// decode abandons the chunks it asked for beyond where it stopped, and
// the next decode of the file needs them.
func TestAbandonedChunkKept(t *testing.T) {
	for _, prio := range []Priority{OnDemand, Prefetch, Background} {
		t.Run(prio.String(), func(t *testing.T) {
			x := cachedFixture(t, testOptions())
			const off, n = 64 << 10, 16 << 10
			want := digest.FromBytes(x.data[off : off+n])
			g := x.r.Hold()
			defer g.Release()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				_, err := x.b.ReadChunk(ctx, off, n, want, prio)
				done <- err
			}()
			if got := <-g.Arrived; got.Range != fmt.Sprintf("bytes=%d-%d", off, off+n-1) {
				t.Fatalf("got %q on the wire, want the chunk", got.Range)
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("abandoned read: got %v, want context.Canceled", err)
			}
			g.Release()
			got, err := x.b.ReadChunk(context.Background(), off, n, want, prio)
			if err != nil || !bytes.Equal(got, x.data[off:off+n]) {
				t.Fatalf("read again: got %d bytes, %v", len(got), err)
			}
			x.r.Close() // the request log is complete
			if k := x.gets(off, n); k != 1 {
				t.Errorf("got %d GETs of the chunk, want 1", k)
			}
			if sent := x.r.BytesSent(x.desc.Digest); sent != n {
				t.Errorf("registry sent %d bytes, want %d", sent, n)
			}
		})
	}
}

// TestChunkKeptWhileJoining: a chunk kept (cached) between a reader's
// look for it and its join is read from the cache, not fetched again.
func TestChunkKeptWhileJoining(t *testing.T) {
	x := cachedFixture(t, testOptions())
	const off, n = 128 << 10, 16 << 10
	want := digest.FromBytes(x.data[off : off+n])
	var hooked atomic.Bool
	testHookMissed = func(d digest.Digest) {
		if d != want || hooked.Swap(true) {
			return
		}
		// Another reader fetches and keeps the chunk while this one is
		// between its look and its join.
		if got, err := x.b.ReadChunk(context.Background(), off, n, want, OnDemand); err != nil || !bytes.Equal(got, x.data[off:off+n]) {
			t.Errorf("other reader: got %d bytes, %v", len(got), err)
		}
	}
	defer func() { testHookMissed = nil }()
	got, err := x.b.ReadChunk(context.Background(), off, n, want, OnDemand)
	if err != nil || !bytes.Equal(got, x.data[off:off+n]) {
		t.Fatalf("got %d bytes, %v", len(got), err)
	}
	x.r.Close()
	if k := x.gets(off, n); k != 1 {
		t.Errorf("got %d GETs of the chunk, want 1", k)
	}
	if st := x.b.Stats(); st.CacheBytes != n {
		t.Errorf("got %d bytes from the cache, want %d", st.CacheBytes, n)
	}
}

// TestLeaveKeepsOthersGET: a GET formed when its first read joins counts
// that read as waiting, so the read coalesced into it giving up does not
// stop the GET the first one still waits for.
func TestLeaveKeepsOthersGET(t *testing.T) {
	opts := testOptions()
	opts.Streams, opts.StallTimeout = 2, time.Minute
	x := newFixture(t, 1<<20, opts)
	g := x.r.Hold()
	defer g.Release()
	busy := held(t, x, g, 900_000, 10, OnDemand)
	// Background reads leave the second stream to reads a process waits
	// on: this one waits in the queue...
	bg := join(t, x, 1100, 100, Background)
	// ...until an on-demand read takes the stream, and it along.
	type result struct {
		b   []byte
		err error
	}
	res := make(chan result, 1)
	go func() {
		b, err := x.b.ReadRange(context.Background(), 1000, 100, OnDemand)
		res <- result{b, err}
	}()
	if got := <-g.Arrived; got.Range != "bytes=1000-1199" {
		t.Fatalf("got %q on the wire, want bytes=1000-1199", got.Range)
	}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := x.f.wait(gone, bg); !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned background read: got %v, want context.Canceled", err)
	}
	g.Release()
	r := <-res
	if r.err != nil || !bytes.Equal(r.b, x.data[1000:1100]) {
		t.Fatalf("on-demand read: got %d bytes, %v; want its bytes", len(r.b), r.err)
	}
	x.waitAll(t, busy)
}

// TestHeldChunkLeaving: a chunk that left memory (HoldBytes) is served
// from memory until the cache has it, not fetched again meanwhile.
func TestHeldChunkLeaving(t *testing.T) {
	const n = 16 << 10
	opts := testOptions()
	opts.HoldBytes = n // one chunk: holding the next one evicts it
	x := cachedFixture(t, opts)
	ctx := context.Background()
	for _, off := range []int64{0, n, 0} {
		want := digest.FromBytes(x.data[off : off+n])
		if got, err := x.b.ReadChunk(ctx, off, n, want, OnDemand); err != nil || !bytes.Equal(got, x.data[off:off+n]) {
			t.Fatalf("chunk at %d: got %d bytes, %v", off, len(got), err)
		}
	}
	x.r.Close()
	if k := x.gets(0, n); k != 1 {
		t.Errorf("got %d GETs of the chunk that left memory, want 1", k)
	}
}
