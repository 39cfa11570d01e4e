package lazyfs

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/opencontainers/go-digest"

	"github.com/fcd-dev/fcd/puller/remote"
)

// TestParseTOC checks parseTOC against estargz's own TOC parser on the
// feature layer (every entry type, xattrs, several chunks per file).
func TestParseTOC(t *testing.T) {
	built := buildLayer(t, featureLayer())
	raw := tocBytes(t, built.esgz.data)
	want, wantDgst, err := new(estargz.GzipDecompressor).ParseTOC(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("estargz ParseTOC: %v", err)
	}
	got, gotDgst, err := parseTOC(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parseTOC: %v", err)
	}
	if gotDgst != wantDgst || gotDgst.String() != built.tocDgst {
		t.Errorf("digest: got %s, want %s (annotation %s)", gotDgst, wantDgst, built.tocDgst)
	}
	if len(got.Entries) != len(want.Entries) {
		t.Fatalf("got %d entries, want %d", len(got.Entries), len(want.Entries))
	}
	xattrs := 0
	for i, w := range want.Entries {
		g := got.Entries[i]
		wl := tocEntry{
			Name: w.Name, Type: w.Type, Size: w.Size, ModTime3339: w.ModTime3339, LinkName: w.LinkName,
			Mode: w.Mode, UID: w.UID, GID: w.GID, Offset: w.Offset, InnerOffset: w.InnerOffset,
			DevMajor: w.DevMajor, DevMinor: w.DevMinor, Xattrs: w.Xattrs, Digest: w.Digest,
			ChunkOffset: w.ChunkOffset, ChunkSize: w.ChunkSize, ChunkDigest: w.ChunkDigest,
		}
		if fmt.Sprint(g) != fmt.Sprint(wl) {
			t.Errorf("entry %d: got %+v, want %+v", i, g, wl)
		}
		xattrs += len(g.Xattrs)
	}
	if xattrs == 0 {
		t.Error("the feature layer's TOC has no xattrs: the test checks less than it should")
	}
}

// TestParseTOCRefuses checks that a TOC that is not one is an error.
func TestParseTOCRefuses(t *testing.T) {
	for name, raw := range map[string][]byte{
		"not gzip":   []byte("plain bytes"),
		"wrong name": tocArchive(t, "other.json", []byte(`{"version":1,"entries":[]}`)),
		"bad json":   tocArchive(t, estargz.TOCTarName, []byte(`{"version":1,"entries":[{"name":`)),
		"wrong type": tocArchive(t, estargz.TOCTarName, []byte(`{"version":1,"entries":[{"name":3}]}`)),
	} {
		t.Run(name, func(t *testing.T) {
			if toc, _, err := parseTOC(bytes.NewReader(raw)); err == nil {
				t.Errorf("got %+v, want an error", toc)
			}
		})
	}
}

// tocBytes returns the compressed TOC of the eStargz blob b.
func tocBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	d := new(estargz.GzipDecompressor)
	_, off, size, err := d.ParseFooter(b[int64(len(b))-d.FooterSize():])
	if err != nil {
		t.Fatalf("footer: %v", err)
	}
	if size <= 0 {
		size = int64(len(b)) - off - d.FooterSize()
	}
	return b[off : off+size]
}

// tocArchive wraps TOC JSON as eStargz stores it: a tar entry named name
// in a gzip stream.
func tocArchive(t testing.TB, name string, js []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(js))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(js); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// syntheticTOC returns the compressed TOC of a layer of n files of one
// chunk each, in directories of 20, as estargz writes it: the shape of
// the bench's Python image (45,000 files), whose TOC a cold start
// decodes before it can read anything.
func syntheticTOC(t testing.TB, n int) []byte {
	t.Helper()
	toc := &estargz.JTOC{Version: 1}
	off := int64(4096)
	for i := range n {
		if i%20 == 0 {
			toc.Entries = append(toc.Entries, &estargz.TOCEntry{
				Name: fmt.Sprintf("usr/lib/python3/site-packages/pkg%04d/", i/20), Type: "dir",
				Mode: 0o40755, ModTime3339: "2024-03-01T12:00:00Z", NumLink: 2,
			})
		}
		d := digest.FromString(fmt.Sprint(i)).String()
		size := int64(512 + i%20000)
		toc.Entries = append(toc.Entries, &estargz.TOCEntry{
			Name: fmt.Sprintf("usr/lib/python3/site-packages/pkg%04d/module_%d.py", i/20, i), Type: "reg",
			Size: size, Mode: 0o100644, ModTime3339: "2024-03-01T12:00:00Z", Offset: off,
			Digest: d, ChunkSize: size, ChunkDigest: d,
		})
		off += size / 3
	}
	js, err := json.MarshalIndent(toc, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	return tocArchive(t, estargz.TOCTarName, js)
}

// BenchmarkParseTOC decodes a 45,000-file TOC: estargz's parser
// (encoding/json into estargz.TOCEntry) against parseTOC.
func BenchmarkParseTOC(b *testing.B) {
	raw := syntheticTOC(b, 45000)
	b.Run("estargz", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if _, _, err := new(estargz.GzipDecompressor).ParseTOC(bytes.NewReader(raw)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parseTOC", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if _, _, err := parseTOC(bytes.NewReader(raw)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLoadTOC turns a decoded 45,000-file TOC into a layer's entries
// and chunk lists.
func BenchmarkLoadTOC(b *testing.B) {
	toc, _, err := parseTOC(bytes.NewReader(syntheticTOC(b, 45000)))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		s := &EStargz{files: make(map[string][]tocChunk)}
		if err := s.load(toc, 1<<40); err != nil {
			b.Fatal(err)
		}
	}
}

// TestReadPieces reads a range of several TOC pieces in order, and stops
// at a failing read with its error.
func TestReadPieces(t *testing.T) {
	data := pseudoRandom(3, 3*tocPiece+1234)
	blob := &memBlob{data: data}
	off, n := int64(100), int64(len(data)-200)
	got, err := io.ReadAll(readPieces(context.Background(), blob, off, n))
	if err != nil || !bytes.Equal(got, data[off:off+n]) {
		t.Fatalf("got %d bytes, %v; want %d bytes", len(got), err, n)
	}
	if want := (n + tocPiece - 1) / tocPiece; blob.requests.Load() != want {
		t.Errorf("got %d reads, want %d", blob.requests.Load(), want)
	}
	failing := errors.New("registry down")
	blob.setFailing(failing)
	pr := readPieces(context.Background(), blob, off, n)
	if _, err := io.ReadAll(pr); !errors.Is(err, failing) || !errors.Is(pr.err, failing) {
		t.Errorf("failing blob: got %v (err %v), want %v", err, pr.err, failing)
	}
}

// TestOpenEStargzReadFails: a TOC that cannot be read is a read error,
// not a layer that is not eStargz.
func TestOpenEStargzReadFails(t *testing.T) {
	built := buildLayer(t, featureLayer())
	failing := errors.New("registry down")
	blob := &failAfter{memBlob: built.esgz, ok: 1, err: failing}
	_, err := OpenEStargz(context.Background(), blob, int64(len(built.esgz.data)), EStargzOptions{})
	if !errors.Is(err, failing) || errors.Is(err, ErrUnsupported) {
		t.Fatalf("got %v, want %v and not ErrUnsupported", err, failing)
	}
}

// failAfter serves ok reads, then fails.
type failAfter struct {
	*memBlob
	ok  int64
	n   atomic.Int64
	err error
}

func (b *failAfter) ReadRange(ctx context.Context, off, n int64, prio remote.Priority) ([]byte, error) {
	if b.n.Add(1) > b.ok {
		return nil, b.err
	}
	return b.memBlob.ReadRange(ctx, off, n, prio)
}

func TestCleanName(t *testing.T) {
	for _, name := range []string{
		"", ".", "./", "/", "a", "a/b", "./a/b", "/a/b/", "a//b", "a/./b", "a/../b", "../a", "a/..", "a/b/.",
		"usr/lib/python3/x.py", "usr/lib/", ".a", "a/.b", "..a", "a../b",
	} {
		want := strings.TrimPrefix(path.Clean("/"+name), "/")
		if got := cleanName(name); got != want {
			t.Errorf("cleanName(%q): got %q, want %q", name, got, want)
		}
	}
}

// TestDecodeTOCLimits: a TOC of more entries or bytes than the bounds is
// refused as it is read. Gzip compresses a TOC of empty entries, or of
// one long name, a thousand times.
func TestDecodeTOCLimits(t *testing.T) {
	defer func(n int, b int64) { maxEntries, maxTOCBytes = n, b }(maxEntries, maxTOCBytes)
	maxEntries, maxTOCBytes = 3, 1000
	for name, js := range map[string]string{
		"entries": `{"version":1,"entries":[{},{},{},{}]}`,
		"bytes":   `{"version":1,"entries":[{"name":"` + strings.Repeat("a", 1000) + `"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			if toc, _, err := decodeTOC(strings.NewReader(js)); !errors.Is(err, ErrUnsupported) {
				t.Errorf("got %d entries, %v; want ErrUnsupported", len(toc.Entries), err)
			}
		})
	}
	if _, _, err := decodeTOC(strings.NewReader(`{"version":1,"entries":[{},{},{}]}`)); err != nil {
		t.Errorf("3 entries: %v", err)
	}
}

// TestLoadTOCRefuses: a TOC whose chunks would make a read decode or
// fetch more than a chunk's worth, or whose chunks at one place differ,
// is refused when loaded, not when read.
func TestLoadTOCRefuses(t *testing.T) {
	toc, payload := fuzzTOC(t)
	// edit returns toc with the entries of d/a changed by f.
	edit := func(f func(e *tocEntry)) *jtoc {
		c := &jtoc{Version: toc.Version, Entries: slices.Clone(toc.Entries)}
		for i := range c.Entries {
			if c.Entries[i].Name == "d/a" {
				f(&c.Entries[i])
			}
		}
		return c
	}
	for _, tc := range []struct {
		name    string
		toc     *jtoc
		payload int64
		want    error
	}{
		{"negative inner offset", edit(func(e *tocEntry) { e.InnerOffset = -1 }), payload, ErrUnsupported},
		{"huge inner offset", edit(func(e *tocEntry) { e.InnerOffset = 1 << 39 }), payload, ErrUnsupported},
		{"huge chunk", edit(func(e *tocEntry) { e.Size, e.ChunkSize = 1<<39, 1<<39 }), payload, ErrUnsupported},
		{"overflowing chunk", edit(func(e *tocEntry) { e.ChunkOffset, e.ChunkSize = 1, math.MaxInt64 }), payload, ErrCorrupt},
		{"huge member", toc, 1 << 40, ErrUnsupported},
		{"chunks at one place differ", chunksDisagree(t, toc), payload, ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &EStargz{blob: fuzzLayer(t).esgz, files: make(map[string][]tocChunk)}
			if err := s.load(tc.toc, tc.payload); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	s := &EStargz{blob: fuzzLayer(t).esgz, files: make(map[string][]tocChunk)}
	if err := s.load(toc, payload); err != nil {
		t.Errorf("the TOC itself: %v", err)
	}
}

// TestOpenEStargzHugeTOC: a footer that puts the TOC at the start of a
// large blob is refused before the TOC's pieces are read, all at once.
func TestOpenEStargzHugeTOC(t *testing.T) {
	var buf bytes.Buffer
	if _, err := new(estargz.GzipCompressor).WriteTOCAndFooter(&buf, 0, &estargz.JTOC{Version: 1}, sha256.New()); err != nil {
		t.Fatal(err)
	}
	fs := new(estargz.GzipDecompressor).FooterSize()
	blob := &footerBlob{footer: buf.Bytes()[int64(buf.Len())-fs:], size: 1 << 40}
	_, err := OpenEStargz(context.Background(), blob, blob.size, EStargzOptions{})
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("got %v, want ErrUnsupported", err)
	}
	if got := blob.asked.Load(); got > 1<<10 {
		t.Errorf("asked for %d bytes, want only the footer's", got)
	}
}

// footerBlob is a blob of size bytes that ends with footer, zeros
// before it; it counts the bytes asked for, and serves none but the
// footer's.
type footerBlob struct {
	footer []byte
	size   int64
	asked  atomic.Int64
}

func (b *footerBlob) ReadRange(ctx context.Context, off, n int64, prio remote.Priority) ([]byte, error) {
	b.asked.Add(n)
	start := b.size - int64(len(b.footer))
	if off < start || off+n > b.size {
		return nil, fmt.Errorf("%d+%d: not the footer", off, n)
	}
	return b.footer[off-start : off-start+n], nil
}

func (b *footerBlob) ReadChunk(ctx context.Context, off, n int64, want digest.Digest, prio remote.Priority) ([]byte, error) {
	return b.ReadRange(ctx, off, n, prio)
}

// TestOpenEStargzBadFooter: a footer whose gzip extra field is shorter
// than the STARGZ subfield it starts made estargz's ParseFooter panic
// (slice bounds out of range; found by FuzzOpenEStargz).
func TestOpenEStargzBadFooter(t *testing.T) {
	b := []byte("\x1f\x8b\b$000000\x13\x00SG\x16\x0000000000000000000000000000000000000")
	_, err := OpenEStargz(context.Background(), &memBlob{data: b}, int64(len(b)), EStargzOptions{})
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("got %v, want ErrUnsupported", err)
	}
}

// TestDecodeTOCLikeEncodingJSON: entries decode as encoding/json (which
// estargz writes with) decodes them: names without regard to case,
// duplicate names and invalid UTF-8 let through.
func TestDecodeTOCLikeEncodingJSON(t *testing.T) {
	for _, js := range []string{
		"{\"Version\":1,\"ENTRIES\":[{\"NAME\":\"a\",\"name\":\"b\xff\",\"Type\":\"dir\",\"xattrs\":{\"user.x\":\"eA==\"}}]}",
		`{"version":1,"entries":null}`,
		`{"version":2,"entries":[],"entries":[{"size":3}]}`,
	} {
		var want struct {
			Version int
			Entries []tocEntry
		}
		if err := json.Unmarshal([]byte(js), &want); err != nil {
			t.Fatal(err)
		}
		got, _, err := decodeTOC(strings.NewReader(js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		if got.Version != want.Version || fmt.Sprint(got.Entries) != fmt.Sprint(want.Entries) {
			t.Errorf("%s: got %+v, want %+v", js, got, want)
		}
	}
}
