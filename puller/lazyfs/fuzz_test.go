package lazyfs

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"path"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/opencontainers/go-digest"

	"github.com/fcd-dev/fcd/puller/gzindex"
	"github.com/fcd-dev/fcd/puller/remote"
)

// The fuzz targets here feed a layer's untrusted parts (an eStargz TOC,
// a gzindex index, the entries either makes) to what fcd builds from
// them as root. A layer is either refused, with ErrUnsupported or
// ErrCorrupt, or gives a tree whose every name is one element a file
// system can hold and whose reads return what the layer's digests vouch
// for, or an error: never a panic, nor memory or time the input's size
// does not bound.

// fuzzLayer is the small layer the fuzz targets mutate the TOC or index
// of: a file of one chunk, one of two (estargz chunks of 64 KiB), an
// empty one, and the other entry types.
var (
	fuzzOnce  sync.Once
	fuzzBuilt *builtLayer
)

func fuzzLayer(t testing.TB) *builtLayer {
	fuzzOnce.Do(func() {
		fuzzBuilt = buildLayer(t, []tarEntry{
			dirE("d/", 0o755, 0, 0),
			fileE("d/a", 0o644, []byte("hello\n")),
			fileE("d/b", 0o644, pseudoRandom(5, 100<<10)),
			fileE("e", 0o600, nil),
			linkE(tar.TypeSymlink, "d/s", "a"),
			linkE(tar.TypeLink, "d/h", "d/a"),
			fileE("d/.wh.gone", 0o644, nil),
		})
	})
	return fuzzBuilt
}

// fuzzTOC returns the fuzz layer's eStargz TOC, decoded, and where its
// payload ends.
func fuzzTOC(t testing.TB) (*jtoc, int64) {
	b := fuzzLayer(t).esgz.data
	d := new(estargz.GzipDecompressor)
	_, off, _, err := d.ParseFooter(b[int64(len(b))-d.FooterSize():])
	if err != nil {
		t.Fatal(err)
	}
	toc, _, err := parseTOC(bytes.NewReader(tocBytes(t, b)))
	if err != nil {
		t.Fatal(err)
	}
	return toc, off
}

func marshalTOC(t testing.TB, toc *jtoc) []byte {
	js, err := json.Marshal(toc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// FuzzEStargzTOC decodes fuzzed TOC JSON over the fuzz layer's blob,
// loads it and checks it (checkEStargz).
func FuzzEStargzTOC(f *testing.F) {
	toc, _ := fuzzTOC(f)
	f.Add(marshalTOC(f, toc))
	f.Add(marshalTOC(f, chunksDisagree(f, toc)))
	f.Add([]byte(`{"version":1,"entries":[{"name":"x","type":"reg","size":5,"offset":10,"innerOffset":-1,"chunkSize":5,"chunkDigest":"sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"}]}`))
	f.Add([]byte(`{"version":1,"entries":[{"name":"a/../../b","type":"dir"},{"name":".wh..","type":"reg"},{"name":"l","type":"hardlink","linkName":"/"}]}`))
	f.Fuzz(func(t *testing.T, js []byte) {
		toc, _, err := decodeTOC(bytes.NewReader(js))
		if err != nil {
			return
		}
		_, payload := fuzzTOC(t)
		s := &EStargz{blob: fuzzLayer(t).esgz, files: make(map[string][]tocChunk)}
		if err := s.load(toc, payload); err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("load: got %v, want ErrCorrupt or ErrUnsupported", err)
			}
			return
		}
		checkEStargz(t, s)
	})
}

// FuzzOpenEStargz opens a fuzzed eStargz blob (footer, TOC gzip and tar
// included) and checks it as FuzzEStargzTOC does.
func FuzzOpenEStargz(f *testing.F) {
	b := fuzzLayer(f).esgz.data
	f.Add(b)
	f.Add(b[len(b)-4096:])
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := OpenEStargz(context.Background(), &memBlob{data: b}, int64(len(b)), EStargzOptions{})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("got %v, want ErrCorrupt or ErrUnsupported", err)
			}
			return
		}
		checkEStargz(t, s)
	})
}

// checkedTree builds the tree of entries and checks it (checkTree); nil
// when buildTree refuses the entries, which it may only as ErrUnsupported.
func checkedTree(t *testing.T, entries []Entry) *tree {
	t.Helper()
	tr, err := buildTree(entries)
	if err != nil {
		if !errors.Is(err, ErrUnsupported) {
			t.Fatalf("buildTree: got %v, want ErrUnsupported", err)
		}
		return nil
	}
	checkTree(t, tr)
	return tr
}

// checkEStargz builds s's tree, checks it, and reads every chunk of
// every file: a chunk read whole returns bytes of its chunkDigest, or an
// error.
func checkEStargz(t *testing.T, s *EStargz) {
	t.Helper()
	tr := checkedTree(t, s.Entries())
	if tr == nil {
		return
	}
	// The prefetch paths: whole files, then every extent, fetched and
	// decoded into the cache of decoded bytes the reads below use.
	var names []string
	var extents []Extent
	for name := range tr.data {
		names = append(names, name)
		extents = s.rangeExtents(context.Background(), Range{File: name, N: -1}, extents)
	}
	s.fetchRanges(context.Background(), wholeFiles(names), remote.Prefetch)
	for _, e := range extents {
		s.fetchExtent(context.Background(), e, remote.Prefetch)
	}
	for _, e := range s.Entries() {
		for _, c := range s.files[e.Name] {
			if c.size > 1<<20 {
				continue
			}
			p := make([]byte, c.size)
			n, err := s.ReadAt(context.Background(), e.Name, p, c.fileOff, remote.OnDemand)
			if err != nil && err != io.EOF {
				continue
			}
			if got := digest.FromBytes(p[:n]); n != len(p) || got != c.digest {
				t.Fatalf("%s at %d: got %d bytes of %s (%v), want %d of %s", e.Name, c.fileOff, n, got, err, len(p), c.digest)
			}
		}
	}
}

// chunksDisagree returns toc with two files, p of 5 bytes and q of
// d/b's size, whose first chunks both start 1 byte into d/a's gzip
// member (q's second chunk is d/b's). Chunks are fetched, decoded and
// cached by where they start: once p is read, a read of q would find
// p's 5 bytes as its 64 KiB chunk.
func chunksDisagree(t testing.TB, toc *jtoc) *jtoc {
	var a, b []tocEntry
	for _, e := range toc.Entries {
		switch e.Name {
		case "d/a":
			a = append(a, e)
		case "d/b":
			b = append(b, e)
		}
	}
	if len(a) != 1 || len(b) != 2 {
		t.Fatalf("d/a in %d TOC entries, d/b in %d; want 1 and 2", len(a), len(b))
	}
	p, q := a[0], b[0]
	p.Name, p.Size, p.InnerOffset, p.ChunkSize = "p", 5, 1, 5
	p.Digest = digest.FromString("ello\n").String()
	p.ChunkDigest = p.Digest
	q.Name, q.Offset, q.InnerOffset = "q", p.Offset, 1
	q2 := b[1]
	q2.Name = "q"
	return &jtoc{Version: toc.Version, Entries: []tocEntry{p, q, q2}}
}

// FuzzBuildTree builds the tree of fuzzed entries, one a line: a type
// byte, then the name and, after a "|", a link target. Names are cleaned
// as the sources clean them.
func FuzzBuildTree(f *testing.F) {
	for _, s := range []string{
		"ddir\nrdir/f\nsdir/s|f\nldir/h|dir/f\nrdir/.wh..wh..opq\nrdir/.wh.x\nc.wh.y",
		"rf\nlf|f\nrf\n",
		"ra\nda\nra\nda/b",
		"d../x\nr/../y\nr./z/./w\nr\x00\nra\x00b",
		"r.wh.\nr.wh..\nr.wh...\nrd/.wh..\nrd/.wh...",
		"la|a\nlb|c\nlc|b\nld|",
		"ra/b/c/d/e/f/g\nla/b/c/d/e|a/b\nra/b",
		"R" + strings.Repeat("a/", 300) + "f\nN" + strings.Repeat("x", 300),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var entries []Entry
		for line := range strings.SplitSeq(string(data), "\n") {
			if line == "" {
				continue
			}
			name, link, _ := strings.Cut(line[1:], "|")
			e := Entry{Name: cleanName(name), Mode: 0o644}
			switch line[0] {
			case 'd':
				e.Type = tar.TypeDir
			case 's':
				e.Type, e.Linkname = tar.TypeSymlink, link
			case 'l':
				e.Type, e.Linkname = tar.TypeLink, cleanName(link)
			case 'c':
				e.Type = tar.TypeChar
			case 'R': // a large file
				e.Type, e.Size = tar.TypeReg, maxLayerBytes/2
			case 'N':
				e.Type, e.Size = tar.TypeReg, -1
			default:
				e.Type, e.Size = tar.TypeReg, int64(len(link))
			}
			entries = append(entries, e)
		}
		tr, err := buildTree(entries)
		if err != nil {
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("got %v, want ErrUnsupported", err)
			}
			return
		}
		checkTree(t, tr)
	})
}

// checkTree checks what a built tree must be, whatever its entries were:
// every name one element of at most NAME_MAX bytes without NUL, every
// directory's path its name from the root and found there by lookup,
// inodes numbered densely, link counts right, every file's data its own.
func checkTree(t *testing.T, tr *tree) {
	t.Helper()
	names := make(map[*tnode]int)
	reached := make(map[*tnode]bool)
	var walk func(n *tnode, depth int)
	walk = func(n *tnode, depth int) {
		if reached[n] {
			return
		}
		reached[n] = true
		if depth > maxNameLen/2 {
			t.Fatalf("directory %q at depth %d", n.path, depth)
		}
		if got, err := tr.lookup(n.path); err != nil || got != n {
			t.Fatalf("lookup(%q): got %p (%v), want %p", n.path, got, err, n)
		}
		for name, c := range n.children {
			if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || len(name) > maxElemLen {
				t.Fatalf("directory %q holds %q", n.path, name)
			}
			names[c]++
			if c.isDir() {
				if want := path.Join(n.path, name); c.path != want {
					t.Fatalf("directory %q has path %q", want, c.path)
				}
				walk(c, depth+1)
			} else if c.children != nil {
				t.Fatalf("%q: a non-directory with children", path.Join(n.path, name))
			}
			reached[c] = true
		}
	}
	walk(tr.root, 0)
	if len(tr.nodes) != len(reached) {
		t.Fatalf("%d nodes, %d reachable", len(tr.nodes), len(reached))
	}
	var total int64
	for i, n := range tr.nodes {
		if n.ino != uint64(i+1) || !reached[n] {
			t.Fatalf("node %d: ino %d, reachable %v", i, n.ino, reached[n])
		}
		if !n.isDir() && n.nlink != uint32(names[n]) {
			t.Fatalf("node %d: nlink %d, %d names", n.ino, n.nlink, names[n])
		}
		if n.file != "" {
			if tr.data[n.file] != n {
				t.Fatalf("node %d serves %q, which another node holds", n.ino, n.file)
			}
			if n.size < 0 {
				t.Fatalf("%q of %d bytes", n.file, n.size)
			}
			total += n.size
		}
	}
	if total > maxLayerBytes {
		t.Fatalf("files of %d bytes", total)
	}
}

// FuzzGzIndexSource loads a fuzzed index (its checksum made to match)
// of the fuzz layer's gzip blob, builds its tree and reads every file's
// start: the bytes asked for, fewer only at the end with io.EOF, or an
// error.
func FuzzGzIndexSource(f *testing.F) {
	b := fuzzLayer(f)
	for _, v := range []int{2, 3} {
		x, err := gzindex.Build(context.Background(), bytes.NewReader(b.gz.data),
			gzindex.Options{Span: 16 << 10, MaxSpan: 32 << 10, ChunkSize: gzindex.MinChunkSize, Version: v})
		if err != nil {
			f.Fatal(err)
		}
		data, err := x.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data[:len(data)-sha256.Size])
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b := fuzzLayer(t)
		sum := sha256.Sum256(body)
		x, err := gzindex.Load(append(body[:len(body):len(body)], sum[:]...), digest.FromBytes(b.gz.data).String())
		if err != nil {
			return
		}
		s, err := NewGzIndex(x, b.gz, nil)
		if err != nil {
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("NewGzIndex: got %v, want ErrUnsupported", err)
			}
			return
		}
		tr := checkedTree(t, s.Entries())
		if tr == nil {
			return
		}
		var names []string
		for name := range tr.data {
			names = append(names, name)
			s.extent(name)
		}
		s.fetchRanges(context.Background(), append(wholeFiles(names), Range{File: "d/b", Off: 1 << 40, N: 1}), remote.Prefetch)
		s.fetchWindows(context.Background(), wholeFiles(names), remote.Prefetch)
		for name, n := range tr.data {
			p := make([]byte, min(n.size, 64<<10)+1)
			got, err := s.ReadAt(context.Background(), name, p, 0, remote.OnDemand)
			if err != nil && err != io.EOF {
				continue
			}
			if int64(got) != min(n.size, int64(len(p))) || (err == io.EOF) != (int64(got) < int64(len(p))) {
				t.Fatalf("%s of %d bytes: read %d of %d, %v", name, n.size, got, len(p), err)
			}
		}
	})
}
