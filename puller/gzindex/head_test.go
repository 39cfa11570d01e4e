package gzindex

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
)

// windowServer serves a serialized index's windows to LoadHead and counts
// what it was asked for.
type windowServer struct {
	data    []byte
	corrupt bool
	mu      sync.Mutex
	reads   map[int64]int
	bytes   int64
}

func (s *windowServer) fetch(_ context.Context, off, n int64, want digest.Digest) ([]byte, error) {
	if off < 0 || n <= 0 || off+n > int64(len(s.data)) {
		return nil, fmt.Errorf("range %d+%d outside %d bytes", off, n, len(s.data))
	}
	b := bytes.Clone(s.data[off : off+n])
	if s.corrupt {
		b[len(b)-1] ^= 1
	} else if want != "" && digest.SHA256.FromBytes(b) != want {
		return nil, fmt.Errorf("range %d+%d: digest %s, want %s", off, n, digest.SHA256.FromBytes(b), want)
	}
	s.mu.Lock()
	s.reads[off]++
	s.bytes += n
	s.mu.Unlock()
	return b, nil
}

// TestHead builds a version 3 index and reads every file through its head
// alone, fetching windows by range, and checks that each window is
// fetched once, only when a read starts from its checkpoint, and that
// the whole index still loads and reads as before.
func TestHead(t *testing.T) {
	z, _ := smallLayer(t, 300)
	built, err := Build(context.Background(), bytes.NewReader(z), Options{ChunkSize: MinChunkSize, Span: 8 << 10, Version: 3})
	if err != nil {
		t.Fatal(err)
	}
	data, err := built.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	n, err := HeadSize(data)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := Load(data, built.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if whole.Version() != 3 {
		t.Fatalf("got version %d, want 3", whole.Version())
	}
	var windows int64
	for _, c := range whole.checkpoints {
		windows += int64(len(c.window))
	}
	if windows == 0 || n+windows+sha256.Size != int64(len(data)) {
		t.Fatalf("got head %d + windows %d + checksum of %d bytes", n, windows, len(data))
	}
	srv := &windowServer{data: data, reads: map[int64]int{}}
	x, err := LoadHead(data[:n], built.Digest, srv.fetch)
	if err != nil {
		t.Fatal(err)
	}
	if len(srv.reads) != 0 {
		t.Fatalf("LoadHead fetched %d windows, want none", len(srv.reads))
	}
	if _, err := x.MarshalBinary(); err == nil {
		t.Fatal("got nil error serializing an index without its windows, want one")
	}
	ra := FileFetcher(bytes.NewReader(z))
	rh, rw := NewReader(x, ra), NewReader(whole, ra)
	ctx := context.Background()
	var first *Entry
	for i := range x.Entries {
		e := &x.Entries[i]
		if !e.IsRegular() || e.Size == 0 {
			continue
		}
		if first == nil {
			first = e
			if cp := x.checkpointFor(e.Offset); cp.wlen > 0 {
				if _, err := rh.ReadFile(ctx, e); err != nil {
					t.Fatal(err)
				}
				if len(srv.reads) != 1 || srv.reads[cp.woff] != 1 {
					t.Fatalf("reading %s fetched windows %v, want only the one at %d", e.Name, srv.reads, cp.woff)
				}
			}
		}
		got, err := rh.ReadFile(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		want, err := rw.ReadFile(ctx, &whole.Entries[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: the head-only index read other bytes than the whole one", e.Name)
		}
	}
	for off, k := range srv.reads {
		if k != 1 {
			t.Fatalf("window at %d fetched %d times, want once", off, k)
		}
	}
	if len(srv.reads) < 2 {
		t.Fatalf("fetched %d windows, want several (the layer has %d checkpoints)", len(srv.reads), len(x.checkpoints))
	}
}

// TestHeadRejects checks that a window that does not match the head's
// digest of it is refused, that a damaged head is, and that indexes
// before version 3 have no head.
func TestHeadRejects(t *testing.T) {
	z, built, data, n := buildWindowed(t)
	x, err := LoadHead(data[:n], built.Digest, (&windowServer{data: data, corrupt: true, reads: map[int64]int{}}).fetch)
	if err != nil {
		t.Fatal(err)
	}
	r := NewReader(x, FileFetcher(bytes.NewReader(z)))
	var checked bool
	for i := range x.Entries {
		e := &x.Entries[i]
		if !e.IsRegular() || e.Size == 0 || x.checkpointFor(e.Offset).wlen == 0 {
			continue
		}
		if _, err := r.ReadFile(context.Background(), e); !errors.Is(err, ErrChecksum) {
			t.Fatalf("%s with a corrupt window: got %v, want ErrChecksum", e.Name, err)
		}
		checked = true
		break
	}
	if !checked {
		t.Fatal("no file reads from a checkpoint with a window")
	}
	bad := bytes.Clone(data[:n])
	bad[n/2] ^= 1
	if _, err := LoadHead(bad, built.Digest, nil); !errors.Is(err, ErrBadIndex) {
		t.Fatalf("damaged head: got %v, want ErrBadIndex", err)
	}
	if _, err := LoadHead(data[:n-1], built.Digest, nil); !errors.Is(err, ErrBadIndex) {
		t.Fatalf("truncated head: got %v, want ErrBadIndex", err)
	}
	if _, err := LoadHead(data[:n], "sha256:"+fmt.Sprintf("%064x", 0), nil); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("head of another layer: got %v, want ErrDigestMismatch", err)
	}
	v2, err := Build(context.Background(), bytes.NewReader(z), Options{Span: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	d2, _ := v2.MarshalBinary()
	if _, err := HeadSize(d2); !errors.Is(err, ErrBadIndex) {
		t.Fatalf("HeadSize of version 2: got %v, want ErrBadIndex", err)
	}
	if _, err := LoadHead(d2, v2.Digest, nil); !errors.Is(err, ErrBadIndex) {
		t.Fatalf("LoadHead of version 2: got %v, want ErrBadIndex", err)
	}
}

// TestFetchWindows checks that FetchWindows reads the windows reads at
// the offsets given start from in one request per run, and that reads
// then fetch no window of their own; and that a run with a window that
// does not match its digest is refused.
func TestFetchWindows(t *testing.T) {
	z, built, data, n := buildWindowed(t)
	for _, tc := range []struct {
		name    string
		gap     int64
		corrupt bool
	}{{"one run", int64(len(data)), false}, {"no gap", 0, false}, {"corrupt", int64(len(data)), true}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := &windowServer{data: data, corrupt: tc.corrupt, reads: map[int64]int{}}
			x, err := LoadHead(data[:n], built.Digest, srv.fetch)
			if err != nil {
				t.Fatal(err)
			}
			var offs []int64
			need := map[int64]bool{}
			for i := range x.Entries {
				if e := &x.Entries[i]; e.IsRegular() && e.Size > 0 {
					offs = append(offs, e.Offset)
					if cp := x.checkpointFor(e.Offset); cp.wlen > 0 {
						need[cp.woff] = true
					}
				}
			}
			err = x.FetchWindows(context.Background(), offs, tc.gap)
			if tc.corrupt {
				if !errors.Is(err, ErrChecksum) {
					t.Fatalf("got %v, want ErrChecksum", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.gap > 0 && len(srv.reads) != 1 {
				t.Fatalf("got %d requests, want 1", len(srv.reads))
			}
			if tc.gap == 0 && len(srv.reads) > len(need) {
				t.Fatalf("got %d requests for %d windows", len(srv.reads), len(need))
			}
			before := len(srv.reads)
			r := NewReader(x, FileFetcher(bytes.NewReader(z)))
			for i := range x.Entries {
				if e := &x.Entries[i]; e.IsRegular() && e.Size > 0 {
					if _, err := r.ReadFile(context.Background(), e); err != nil {
						t.Fatal(err)
					}
				}
			}
			if len(srv.reads) != before {
				t.Fatalf("reads after FetchWindows fetched %d more windows, want none", len(srv.reads)-before)
			}
		})
	}
}

// TestFetchWindowsShared runs FetchWindows calls and reads at once and
// checks that no window is fetched twice: a window being fetched is
// waited for.
func TestFetchWindowsShared(t *testing.T) {
	z, built, data, n := buildWindowed(t)
	srv := &windowServer{data: data, reads: map[int64]int{}}
	x, err := LoadHead(data[:n], built.Digest, srv.fetch)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for i := range x.Entries {
		if e := &x.Entries[i]; e.IsRegular() && e.Size > 0 {
			offs = append(offs, e.Offset)
		}
	}
	r := NewReader(x, FileFetcher(bytes.NewReader(z)))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for k := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs <- x.FetchWindows(context.Background(), offs[k*len(offs)/8:], 0)
		}()
		go func() {
			defer wg.Done()
			for i := range x.Entries {
				if e := &x.Entries[(i+k*37)%len(x.Entries)]; e.IsRegular() && e.Size > 0 {
					if _, err := r.ReadFile(context.Background(), e); err != nil {
						errs <- err
						return
					}
				}
			}
			errs <- nil
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var windows int64
	for _, c := range x.checkpoints {
		if c.lazy != nil && c.lazy.p.Load() != nil {
			windows += c.wlen
		}
	}
	if windows == 0 || srv.bytes != windows {
		t.Fatalf("fetched %d bytes of windows, want each of the %d bytes of those kept once", srv.bytes, windows)
	}
}

// buildWindowed builds a version 3 index of a small layer with many
// checkpoints, and returns the layer, the index, its bytes and the size
// of its head.
func buildWindowed(t *testing.T) ([]byte, *Index, []byte, int64) {
	t.Helper()
	z, _ := smallLayer(t, 300)
	built, err := Build(context.Background(), bytes.NewReader(z), Options{ChunkSize: MinChunkSize, Span: 8 << 10, Version: 3})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := built.MarshalBinary()
	n, err := HeadSize(data)
	if err != nil {
		t.Fatal(err)
	}
	return z, built, data, n
}
