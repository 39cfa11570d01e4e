package lazyfs

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/opencontainers/go-digest"

	"github.com/fcd-dev/fcd/puller/gzindex"
)

// tarEntry is one entry of a test layer.
type tarEntry struct {
	tar.Header
	data []byte
}

var epoch = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

func dirE(name string, mode int64, uid, gid int) tarEntry {
	return tarEntry{Header: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, Uid: uid, Gid: gid, ModTime: epoch}}
}

func fileE(name string, mode int64, data []byte) tarEntry {
	return tarEntry{Header: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: epoch.Add(time.Duration(len(data)) * time.Second)}, data: data}
}

func linkE(typ byte, name, target string) tarEntry {
	return tarEntry{Header: tar.Header{Typeflag: typ, Name: name, Linkname: target, Mode: 0o777, ModTime: epoch}}
}

func devE(typ byte, name string, mode, major, minor int64) tarEntry {
	return tarEntry{Header: tar.Header{Typeflag: typ, Name: name, Mode: mode, Devmajor: major, Devminor: minor, ModTime: epoch}}
}

// pseudoRandom returns n bytes that compress somewhat, so that files span
// several gzip blocks and eStargz chunks.
func pseudoRandom(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		if r.IntN(4) == 0 {
			b[i] = byte(r.Uint32())
		} else {
			b[i] = 'a' + byte(i%7)
		}
	}
	return b
}

// featureLayer exercises every tar feature the file system reproduces.
func featureLayer() []tarEntry {
	su := fileE("bin/su", 0o4755, []byte("setuid binary"))
	su.Uid, su.Gid = 0, 0
	owned := fileE("home/user/.profile", 0o640, []byte("export A=1\n"))
	owned.Uid, owned.Gid = 1000, 1001
	xa := fileE("bin/ping", 0o755, []byte("ping"))
	xa.PAXRecords = map[string]string{"SCHILY.xattr.user.comment": "hello", "SCHILY.xattr.trusted.bin": "\x00\x01\x02"}
	xdir := dirE("xdir/", 0o700, 0, 0)
	xdir.PAXRecords = map[string]string{"SCHILY.xattr.user.dir": "d"}
	wh := tarEntry{Header: tar.Header{Typeflag: tar.TypeReg, Name: "etc/.wh.old.conf", Mode: 0o644, ModTime: epoch}}
	opq := tarEntry{Header: tar.Header{Typeflag: tar.TypeReg, Name: "opaque/.wh..wh..opq", Mode: 0o644, ModTime: epoch}}
	return []tarEntry{
		dirE("./", 0o755, 0, 0),
		dirE("etc/", 0o755, 0, 0),
		fileE("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n")),
		wh,
		dirE("tmp/", 0o1777, 0, 0),
		dirE("bin/", 0o755, 0, 0),
		dirE("big/", 0o755, 0, 0),
		su,
		linkE(tar.TypeLink, "bin/su-hard", "bin/su"),
		linkE(tar.TypeLink, "usr/bin/su-hard2", "./bin/su"),
		linkE(tar.TypeSymlink, "bin/sh", "busybox"),
		linkE(tar.TypeSymlink, "lib64", "/lib"),
		linkE(tar.TypeSymlink, "dangling", "../nowhere"),
		xa,
		xdir,
		fileE("xdir/inner", 0o600, nil),
		owned,
		fileE("a/b/c/implied", 0o444, []byte("parents implied")),
		devE(tar.TypeChar, "dev/null", 0o666, 1, 3),
		devE(tar.TypeBlock, "dev/loop9", 0o660, 7, 9),
		devE(tar.TypeFifo, "run/fifo", 0o620, 0, 0),
		opq,
		fileE("opaque/kept", 0o644, []byte("kept")),
		fileE("empty", 0o644, nil),
		fileE("dup", 0o644, []byte("first")),
		fileE("dup", 0o600, []byte("second, longer")),
		fileE("big/random", 0o644, pseudoRandom(1, 1<<20+12345)),
		fileE("big/medium", 0o644, pseudoRandom(2, 200<<10)),
		dirE("etc/", 0o750, 0, 42), // a directory again: attributes change, children stay
	}
}

func tarBytes(t testing.TB, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.Header
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("tar header %s: %v", h.Name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// testSource builds the layer both ways and returns its Sources by mode,
// with their blobs.
type builtLayer struct {
	tar      []byte
	gz, esgz *memBlob
	index    *gzindex.Index
	tocDgst  string
}

// packedEStargz builds an eStargz blob whose small files share gzip
// members (estargz.WithMinChunkSize: the TOC's innerOffset).
func packedEStargz(t testing.TB, raw []byte) (*memBlob, digest.Digest) {
	t.Helper()
	eb, err := estargz.Build(io.NewSectionReader(bytes.NewReader(raw), 0, int64(len(raw))),
		estargz.WithChunkSize(64<<10), estargz.WithMinChunkSize(256<<10), estargz.WithCompressionLevel(gzip.BestSpeed))
	if err != nil {
		t.Fatalf("estargz.Build: %v", err)
	}
	defer eb.Close()
	b, err := io.ReadAll(eb)
	if err != nil {
		t.Fatal(err)
	}
	return &memBlob{data: b}, eb.TOCDigest()
}

func buildLayer(t testing.TB, entries []tarEntry, prioritized ...string) *builtLayer {
	t.Helper()
	raw := tarBytes(t, entries)
	gz := gzipBytes(t, raw)
	x, err := gzindex.Build(context.Background(), bytes.NewReader(gz), gzindex.Options{Span: 64 << 10, MaxSpan: 256 << 10})
	if err != nil {
		t.Fatalf("gzindex.Build: %v", err)
	}
	opts := []estargz.Option{estargz.WithChunkSize(64 << 10), estargz.WithCompressionLevel(gzip.BestSpeed)}
	if len(prioritized) > 0 {
		opts = append(opts, estargz.WithPrioritizedFiles(prioritized))
	}
	eb, err := estargz.Build(io.NewSectionReader(bytes.NewReader(raw), 0, int64(len(raw))), opts...)
	if err != nil {
		t.Fatalf("estargz.Build: %v", err)
	}
	defer eb.Close()
	esgz, err := io.ReadAll(eb)
	if err != nil {
		t.Fatal(err)
	}
	return &builtLayer{tar: raw, gz: &memBlob{data: gz}, esgz: &memBlob{data: esgz}, index: x, tocDgst: eb.TOCDigest().String()}
}

// sources opens both Sources of the layer, by mode name.
func (b *builtLayer) sources(t testing.TB) map[string]Source {
	t.Helper()
	es, err := OpenEStargz(context.Background(), b.esgz, int64(len(b.esgz.data)), EStargzOptions{TOCDigest: digestOf(b.tocDgst)})
	if err != nil {
		t.Fatalf("OpenEStargz: %v", err)
	}
	gs, err := NewGzIndex(b.index, b.gz, nil)
	if err != nil {
		t.Fatalf("NewGzIndex: %v", err)
	}
	return map[string]Source{"estargz": es, "gzindex": gs}
}

func digestOf(s string) digest.Digest { return digest.Digest(s) }
