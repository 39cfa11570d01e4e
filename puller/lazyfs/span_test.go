package lazyfs

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// spanLayer is a layer of 20 small files of incompressible bytes, one
// after the other in the blob, then a large one.
func spanLayer() []tarEntry {
	r := rand.New(rand.NewPCG(1, 2))
	var es []tarEntry
	for i := range 20 {
		b := make([]byte, 3000+i)
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		es = append(es, fileE(fmt.Sprintf("lib/m%02d.pyc", i), 0o644, b))
	}
	big := make([]byte, 512<<10)
	for j := range big {
		big[j] = byte(r.Uint32())
	}
	return append(es, fileE("lib/big.so", 0o755, big))
}

func openSpanLayer(t *testing.T) (*EStargz, *memBlob, map[string][]byte, []Range) {
	t.Helper()
	entries := spanLayer()
	b := buildLayer(t, entries)
	es, err := OpenEStargz(context.Background(), b.esgz, int64(len(b.esgz.data)), EStargzOptions{TOCDigest: digestOf(b.tocDgst)})
	if err != nil {
		t.Fatal(err)
	}
	files := wantFiles(entries)
	// Recorded in another order than the blob's, with a large read in
	// the middle.
	var rs []Range
	for i := 19; i >= 0; i-- {
		name := fmt.Sprintf("lib/m%02d.pyc", i)
		rs = append(rs, Range{File: name, N: int64(len(files[name]))})
		if i == 10 {
			rs = append(rs, Range{File: "lib/big.so", Off: 4096, N: 8192})
		}
	}
	b.esgz.requests.Store(0)
	return es, b.esgz, files, rs
}

// TestPrefetchRangesSharesGETs prefetches a start-up's reads: the small
// files, close together in the blob, come in one GET and are made local;
// the large file's range in GETs of its own.
func TestPrefetchRangesSharesGETs(t *testing.T) {
	requireFUSE(t)
	es, blob, files, rs := openSpanLayer(t)
	l := mountLayer(t, es, MountOptions{CacheDir: t.TempDir()})
	if err := l.PrefetchRanges(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	bigGETs := int64(len(es.files["lib/big.so"]))
	if got := blob.requests.Load(); got > 1+bigGETs {
		t.Errorf("prefetch made %d GETs, want at most %d (one for the small files)", got, 1+bigGETs)
	}
	if got := l.Stats().Materialized; got != 20 {
		t.Errorf("materialized %d files, want 20", got)
	}
	before := blob.requests.Load()
	for i := range 20 {
		name := fmt.Sprintf("lib/m%02d.pyc", i)
		if got := readCold(t, filepath.Join(l.Dir(), name)); !bytes.Equal(got, files[name]) {
			t.Fatalf("%s differs", name)
		}
	}
	if st := l.Stats(); st.Reads != 0 || blob.requests.Load() != before {
		t.Errorf("reading prefetched files: %d daemon reads, %d GETs; want 0, 0", st.Reads, blob.requests.Load()-before)
	}
}

// TestDeferSmall prefetches with DeferSmall: the small files are held in
// memory and served from there, not made local, until StartBackground;
// then they are made local without fetching again.
func TestDeferSmall(t *testing.T) {
	requireFUSE(t)
	es, blob, files, rs := openSpanLayer(t)
	l := mountLayer(t, es, MountOptions{CacheDir: t.TempDir(), DeferSmall: true})
	if err := l.PrefetchRanges(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	if got := l.Stats().Materialized; got != 0 {
		t.Errorf("while starting: materialized %d files, want 0", got)
	}
	before := blob.requests.Load()
	name := "lib/m03.pyc"
	if got := readCold(t, filepath.Join(l.Dir(), name)); !bytes.Equal(got, files[name]) {
		t.Fatalf("%s differs", name)
	}
	if got := blob.requests.Load() - before; got != 0 {
		t.Errorf("reading a prefetched file while starting: %d GETs, want 0", got)
	}
	if got := l.Stats().Materialized; got != 0 {
		t.Errorf("read while starting: materialized %d files, want 0", got)
	}
	l.StartBackground()
	l.bg.wait() // the held files are made local
	if got := l.Stats().Materialized; got != 20 {
		t.Errorf("after StartBackground: materialized %d files, want 20", got)
	}
	if got := blob.requests.Load() - before; got != 0 {
		t.Errorf("making prefetched files local: %d GETs, want 0", got)
	}
	name = "lib/m07.pyc"
	if got := readCold(t, filepath.Join(l.Dir(), name)); !bytes.Equal(got, files[name]) {
		t.Fatalf("%s differs", name)
	}
	if st := l.Stats(); st.PassthroughOpens == 0 {
		t.Error("a file made local after StartBackground: no passthrough open")
	}
}

// TestFetchFilesVerifies refuses a span whose bytes do not match the TOC.
func TestFetchFilesVerifies(t *testing.T) {
	es, blob, _, _ := openSpanLayer(t)
	off, _, _ := es.extent("lib/m05.pyc")
	blob.data[off+40] ^= 0xff
	err := es.fetchFiles(context.Background(), []string{"lib/m04.pyc", "lib/m05.pyc", "lib/m06.pyc"}, 0)
	if err == nil {
		t.Fatal("fetchFiles of a corrupt span: no error")
	}
	if _, ok := decoded.get(memKey{es, off, 0}); ok {
		t.Error("corrupt chunk kept in the decoded cache")
	}
}
