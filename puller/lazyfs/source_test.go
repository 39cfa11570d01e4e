package lazyfs

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

	"github.com/fcd-dev/fcd/cache"
	"github.com/fcd-dev/fcd/puller/gzindex"
	"github.com/fcd-dev/fcd/puller/remote"
)

// wantFiles returns each regular file's data as a tar extraction leaves
// it (the last entry of a name wins).
func wantFiles(entries []tarEntry) map[string][]byte {
	m := make(map[string][]byte)
	for _, e := range entries {
		name := cleanName(e.Name)
		delete(m, name)
		if e.Typeflag == tar.TypeReg && !isWhiteout(name) {
			m[name] = e.data
		}
	}
	return m
}

func isWhiteout(name string) bool {
	return bytes.HasPrefix([]byte(name[bytes.LastIndexByte([]byte(name), '/')+1:]), []byte(whiteoutPrefix))
}

var (
	propOnce   sync.Once
	propLayer  *builtLayer
	propSource map[string]Source
	propFiles  map[string][]byte
)

func propertySources(t testing.TB) (map[string]Source, map[string][]byte) {
	propOnce.Do(func() {
		entries := featureLayer()
		propLayer = buildLayer(t, entries)
		propSource = propLayer.sources(t)
		propFiles = wantFiles(entries)
		blob, toc := packedEStargz(t, propLayer.tar)
		packed, err := OpenEStargz(context.Background(), blob, int64(len(blob.data)), EStargzOptions{TOCDigest: toc})
		if err != nil {
			t.Fatalf("OpenEStargz (packed): %v", err)
		}
		propSource["estargz-packed"] = packed
	})
	return propSource, propFiles
}

func TestSourceEntries(t *testing.T) {
	srcs, files := propertySources(t)
	for mode, src := range srcs {
		t.Run(mode, func(t *testing.T) {
			var got []string
			for _, e := range src.Entries() {
				if e.Type == tar.TypeReg && !isWhiteout(e.Name) {
					got = append(got, e.Name)
				}
			}
			got = slices.Compact(slices.Sorted(slices.Values(got)))
			want := slices.Sorted(func(yield func(string) bool) {
				for k := range files {
					if !yield(k) {
						return
					}
				}
			})
			if !slices.Equal(got, want) {
				t.Errorf("regular files %q, want %q", got, want)
			}
		})
	}
}

// checkRead reads [off, off+n) of name through src and compares it with
// want, with io.ReaderAt's contract.
func checkRead(t *testing.T, src Source, name string, want []byte, off int64, n int) {
	t.Helper()
	p := make([]byte, n)
	got, err := src.ReadAt(context.Background(), name, p, off, remote.OnDemand)
	var exp []byte
	if off < int64(len(want)) {
		exp = want[off:min(off+int64(n), int64(len(want)))]
	}
	if got != len(exp) || !bytes.Equal(p[:got], exp) {
		t.Fatalf("%s at %d+%d: got %d bytes (%v), want %d", name, off, n, got, err, len(exp))
	}
	if short := len(exp) < n; short != (err == io.EOF) || (!short && err != nil) {
		t.Fatalf("%s at %d+%d: err %v with %d of %d bytes", name, off, n, err, got, n)
	}
}

// TestSourceReadAtProperty reads random ranges of every file through
// every source (eStargz with one file per gzip member and with small files
// packed together, gzindex) and compares them with the original bytes.
func TestSourceReadAtProperty(t *testing.T) {
	srcs, files := propertySources(t)
	r := rand.New(rand.NewPCG(7, 11))
	for mode, src := range srcs {
		t.Run(mode, func(t *testing.T) {
			for name, data := range files {
				for range 40 {
					size := int64(len(data))
					off := r.Int64N(size + 2)
					n := r.IntN(300<<10) + 1
					if r.IntN(4) == 0 {
						n = r.IntN(16) + 1
					}
					checkRead(t, src, name, data, off, n)
				}
			}
		})
	}
}

// FuzzSourceReadAt reads a fuzzed range of a fuzzed file through both
// sources.
func FuzzSourceReadAt(f *testing.F) {
	f.Add(uint8(0), int64(0), 1)
	f.Add(uint8(3), int64(65535), 70000)
	f.Add(uint8(5), int64(1<<20), 1<<20)
	f.Fuzz(func(t *testing.T, which uint8, off int64, n int) {
		srcs, files := propertySources(t)
		names := slices.Sorted(func(yield func(string) bool) {
			for k := range files {
				if !yield(k) {
					return
				}
			}
		})
		name := names[int(which)%len(names)]
		if off < 0 || n <= 0 || n > 4<<20 {
			t.Skip()
		}
		for _, src := range srcs {
			checkRead(t, src, name, files[name], off, n)
		}
	})
}

func TestSourceErrors(t *testing.T) {
	srcs, _ := propertySources(t)
	for mode, src := range srcs {
		t.Run(mode, func(t *testing.T) {
			_, err := src.ReadAt(context.Background(), "no/such", make([]byte, 1), 0, remote.OnDemand)
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("missing file: got %v, want ErrNotFound", err)
			}
		})
	}
}

// TestEStargzCorruptChunk serves a blob with a flipped byte inside a file's
// chunk and expects ErrCorrupt, never the wrong bytes.
func TestEStargzCorruptChunk(t *testing.T) {
	entries := []tarEntry{fileE("f", 0o644, pseudoRandom(3, 200<<10))}
	b := buildLayer(t, entries)
	es, err := OpenEStargz(context.Background(), b.esgz, int64(len(b.esgz.data)), EStargzOptions{TOCDigest: digestOf(b.tocDgst)})
	if err != nil {
		t.Fatal(err)
	}
	c := es.files["f"][1]
	b.esgz.data[c.off+(c.end-c.off)/2] ^= 0xff
	_, err = es.ReadAt(context.Background(), "f", make([]byte, 10), c.fileOff, remote.OnDemand)
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("got %v, want ErrCorrupt", err)
	}
}

func TestEStargzTOCDigest(t *testing.T) {
	b := buildLayer(t, []tarEntry{fileE("f", 0o644, []byte("x"))})
	_, err := OpenEStargz(context.Background(), b.esgz, int64(len(b.esgz.data)), EStargzOptions{TOCDigest: "sha256:0000000000000000000000000000000000000000000000000000000000000000"})
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("wrong TOC digest: got %v, want ErrCorrupt", err)
	}
}

func TestEStargzStartupOrder(t *testing.T) {
	b := buildLayer(t, featureLayer(), "etc/passwd", "bin/ping")
	es, err := OpenEStargz(context.Background(), b.esgz, int64(len(b.esgz.data)), EStargzOptions{TOCDigest: digestOf(b.tocDgst)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := es.StartupOrder(), []string{"etc/passwd", "bin/ping"}; !slices.Equal(got, want) {
		t.Errorf("StartupOrder() = %q, want %q", got, want)
	}
	for _, e := range es.Entries() {
		if e.Name == ".prefetch.landmark" || e.Name == ".no.prefetch.landmark" {
			t.Errorf("landmark %s is an entry", e.Name)
		}
	}
}

// TestEStargzChunkStore reads a layer through two sources sharing the
// host's chunk cache: the second fetches only its footer and TOC.
func TestEStargzChunkStore(t *testing.T) {
	entries := featureLayer()
	b := buildLayer(t, entries)
	c, err := cache.Open(t.TempDir(), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	readAll := func(blob *memBlob) {
		t.Helper()
		es, err := OpenEStargz(context.Background(), blob, int64(len(blob.data)), EStargzOptions{TOCDigest: digestOf(b.tocDgst), Chunks: c})
		if err != nil {
			t.Fatal(err)
		}
		for name, data := range wantFiles(entries) {
			checkRead(t, es, name, data, 0, len(data)+1)
		}
	}
	readAll(b.esgz)
	second := &memBlob{data: b.esgz.data}
	readAll(second)
	if got := second.requests.Load(); got != 2 {
		t.Errorf("second source made %d requests, want 2 (footer and TOC)", got)
	}
}

// TestNewGzIndexHugeChunks: an index whose chunks a read would fetch and
// hold whole is refused, however the chunks verify.
func TestNewGzIndexHugeChunks(t *testing.T) {
	b := fuzzLayer(t)
	x, err := gzindex.Build(context.Background(), bytes.NewReader(b.gz.data), gzindex.Options{ChunkSize: maxChunkBytes + 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewGzIndex(x, b.gz, nil); !errors.Is(err, ErrUnsupported) {
		t.Errorf("got %v, want ErrUnsupported", err)
	}
}
