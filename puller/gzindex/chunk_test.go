package gzindex

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestDigests checks a version 2 index's chunk and file digests, through
// a marshal and load, against the blob and the tar stream.
func TestDigests(t *testing.T) {
	z, tarBytes := smallLayer(t, 300)
	for _, chunk := range []int64{MinChunkSize, 5000, ChunkSize, int64(len(z)), int64(len(z)) + 1} {
		built, err := Build(context.Background(), bytes.NewReader(z), Options{ChunkSize: chunk})
		if err != nil {
			t.Fatal(err)
		}
		data, err := built.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		x, err := Load(data, built.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if x.Version() != 2 || x.ChunkSize() != chunk {
			t.Fatalf("got version %d, chunk size %d, want 2, %d", x.Version(), x.ChunkSize(), chunk)
		}
		if got, want := x.Chunks(), (len(z)+int(chunk)-1)/int(chunk); got != want {
			t.Fatalf("chunk size %d: got %d chunks, want %d", chunk, got, want)
		}
		var covered int64
		for i := range x.Chunks() {
			off, n := x.Chunk(i)
			if off != covered {
				t.Fatalf("chunk %d: got offset %d, want %d", i, off, covered)
			}
			covered += n
			if got, want := x.ChunkDigest(i), digest.SHA256.FromBytes(z[off:off+n]); got != want {
				t.Fatalf("chunk %d: got %s, want %s", i, got, want)
			}
		}
		if covered != int64(len(z)) {
			t.Fatalf("chunks cover %d bytes, want %d", covered, len(z))
		}
		if x.ChunkDigest(x.Chunks()) != "" || x.ChunkDigest(-1) != "" {
			t.Fatal("got a digest for a chunk out of range, want none")
		}
		tr := tar.NewReader(bytes.NewReader(tarBytes))
		for i := range x.Entries {
			h, err := tr.Next()
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(tr)
			var want digest.Digest
			if h.Typeflag == tar.TypeReg {
				want = digest.SHA256.FromBytes(body)
			}
			if got := x.Entries[i].Digest; got != want {
				t.Fatalf("entry %s: got digest %q, want %q", h.Name, got, want)
			}
		}
	}
}

// TestChunkFetcher reads random ranges of every file through whole,
// verified chunks and checks that only the chunks FileChunks names are
// read.
func TestChunkFetcher(t *testing.T) {
	z, tarBytes := smallLayer(t, 300)
	x, err := Build(context.Background(), bytes.NewReader(z), Options{ChunkSize: MinChunkSize, Span: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	// reader returns a Reader whose verified chunk reads are recorded in
	// its own list (readahead may still add to it after a read returns).
	type record struct {
		mu   sync.Mutex
		offs []int64
	}
	reader := func() (*Reader, *record) {
		rec := &record{}
		return NewReader(x, x.ChunkFetcher(func(ctx context.Context, off, n int64, want digest.Digest) ([]byte, error) {
			rec.mu.Lock()
			rec.offs = append(rec.offs, off)
			rec.mu.Unlock()
			b := z[off : off+n]
			if got := digest.SHA256.FromBytes(b); got != want {
				return nil, errors.New("chunk digest mismatch")
			}
			return b, nil
		})), rec
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range x.Entries {
		e := &x.Entries[i]
		if !e.IsRegular() || e.Size == 0 {
			continue
		}
		off := rng.Int64N(e.Size)
		n := rng.Int64N(e.Size-off) + 1
		first, end, err := x.FileChunks(e, off, n)
		if err != nil {
			t.Fatal(err)
		}
		r, rec := reader()
		got := make([]byte, n)
		if _, err := r.ReadFileAt(context.Background(), e, got, off); err != nil {
			t.Fatalf("%s: %v", e.Name, err)
		}
		if want := tarBytes[e.Offset+off : e.Offset+off+n]; !bytes.Equal(got, want) {
			t.Fatalf("%s [%d,+%d): wrong bytes", e.Name, off, n)
		}
		rec.mu.Lock()
		offs := slices.Clone(rec.offs)
		rec.mu.Unlock()
		if len(offs) == 0 {
			t.Fatalf("%s: no chunk read", e.Name)
		}
		for _, c := range offs {
			if i := int(c / MinChunkSize); i < first || i >= end {
				t.Fatalf("%s [%d,+%d): read chunk %d, FileChunks said [%d,%d)", e.Name, off, n, i, first, end)
			}
		}
	}
	// A hard link maps to its target's chunks; a directory has none.
	link, _ := x.Lookup("dir/link")
	target, _ := x.Lookup("dir/f0003")
	a1, b1, err1 := x.FileChunks(link, 0, 100)
	a2, b2, err2 := x.FileChunks(target, 0, 100)
	if err1 != nil || err2 != nil || a1 != a2 || b1 != b2 {
		t.Fatalf("hard link: got [%d,%d) %v, want [%d,%d) %v", a1, b1, err1, a2, b2, err2)
	}
	if sym, _ := x.Lookup("dir/sym"); sym != nil {
		if _, _, err := x.FileChunks(sym, 0, 1); !errors.Is(err, ErrNotRegular) {
			t.Fatalf("symlink: got %v, want ErrNotRegular", err)
		}
	}
	// A chunk that fails verification fails the read.
	bad := NewReader(x, x.ChunkFetcher(func(context.Context, int64, int64, digest.Digest) ([]byte, error) {
		return nil, errors.New("chunk digest mismatch")
	}))
	if _, err := bad.ReadFile(context.Background(), target); err == nil {
		t.Fatal("got nil error from a failing chunk reader, want one")
	}
}

// TestVersion1 checks that a version 1 index still loads and reads,
// reports no digests, and marshals back as version 1.
func TestVersion1(t *testing.T) {
	z, _ := smallLayer(t, 30)
	x, err := Build(context.Background(), bytes.NewReader(z), Options{})
	if err != nil {
		t.Fatal(err)
	}
	x.version, x.chunkSize, x.chunkSums = 1, 0, nil
	for i := range x.Entries {
		x.Entries[i].Digest = ""
	}
	data, err := x.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if data[len(magic)] != 1 {
		t.Fatalf("got version byte %d, want 1", data[len(magic)])
	}
	v1, err := Load(data, x.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if v1.Version() != 1 || v1.ChunkSize() != 0 || v1.Chunks() != 0 {
		t.Fatalf("got version %d, chunk size %d, %d chunks; want 1, 0, 0", v1.Version(), v1.ChunkSize(), v1.Chunks())
	}
	e, _ := v1.Lookup("dir/f0007")
	if e.Digest != "" {
		t.Fatalf("got file digest %q in a version 1 index, want none", e.Digest)
	}
	if _, _, err := v1.FileChunks(e, 0, 1); !errors.Is(err, ErrNoDigests) {
		t.Fatalf("FileChunks: got %v, want ErrNoDigests", err)
	}
	if _, err := NewReader(v1, v1.ChunkFetcher(nil)).ReadFile(context.Background(), e); !errors.Is(err, ErrNoDigests) {
		t.Fatalf("ChunkFetcher: got %v, want ErrNoDigests", err)
	}
	if _, err := NewReader(v1, FileFetcher(bytes.NewReader(z))).ReadFile(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	again, _ := v1.MarshalBinary()
	if !bytes.Equal(again, data) {
		t.Fatal("version 1 index changed across a load and marshal")
	}
}

// TestReadFileDigest checks that ReadFile catches data whose CRC-32
// matches but whose sha256 does not (the digest recorded is wrong).
func TestReadFileDigest(t *testing.T) {
	z, _ := smallLayer(t, 10)
	x, err := Build(context.Background(), bytes.NewReader(z), Options{})
	if err != nil {
		t.Fatal(err)
	}
	e, _ := x.Lookup("dir/f0005")
	e.Digest = digest.SHA256.FromString("something else")
	if _, err := NewReader(x, FileFetcher(bytes.NewReader(z))).ReadFile(context.Background(), e); !errors.Is(err, ErrChecksum) {
		t.Fatalf("got %v, want ErrChecksum", err)
	}
}
