package lazyfs

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// TestFetchExtent plans a start-up's reads as a replay does: the small
// files' extents joined into one come with one GET, after which
// prefetching them costs no GET, and a file made local has no extents.
func TestFetchExtent(t *testing.T) {
	requireFUSE(t)
	es, blob, files, rs := openSpanLayer(t)
	l := mountLayer(t, es, MountOptions{CacheDir: t.TempDir()})
	if !l.FetchesExtents() {
		t.Fatal("an eStargz layer does not fetch extents")
	}
	ctx := context.Background()
	var small []Range
	var ext []Extent
	for _, r := range rs {
		if r.File == "lib/big.so" {
			continue
		}
		small = append(small, r)
		var err error
		if ext, err = l.Extents(ctx, r, ext); err != nil {
			t.Fatal(err)
		}
	}
	if len(ext) != 20 {
		t.Fatalf("got %d extents for 20 one-member files, want 20", len(ext))
	}
	all := ext[0]
	for _, e := range ext[1:] {
		all.Off, all.End = min(all.Off, e.Off), max(all.End, e.End)
	}
	if err := l.FetchExtent(ctx, all); err != nil {
		t.Fatal(err)
	}
	if got := blob.requests.Load(); got != 1 {
		t.Errorf("FetchExtent made %d GETs, want 1", got)
	}
	if err := l.PrefetchRanges(ctx, small); err != nil {
		t.Fatal(err)
	}
	if got := blob.requests.Load(); got != 1 {
		t.Errorf("PrefetchRanges after FetchExtent: %d GETs in all, want 1", got)
	}
	if got := l.Stats().Materialized; got != 20 {
		t.Errorf("materialized %d files, want 20", got)
	}
	if got, err := l.Extents(ctx, small[0], nil); err != nil || len(got) != 0 {
		t.Errorf("extents of a local file: %v, %v; want none", got, err)
	}
	for i := range 20 {
		name := fmt.Sprintf("lib/m%02d.pyc", i)
		if got := readCold(t, filepath.Join(l.Dir(), name)); !bytes.Equal(got, files[name]) {
			t.Fatalf("%s differs", name)
		}
	}
	if _, err := l.Extents(ctx, Range{File: "lib/none", N: 1}, nil); err == nil {
		t.Error("extents of a missing file: no error")
	}
}

// TestFetchExtentVerifies: a corrupt member in an extent fails the fetch
// and is not decoded.
func TestFetchExtentVerifies(t *testing.T) {
	es, blob, _, _ := openSpanLayer(t)
	ext := es.rangeExtents(context.Background(), Range{File: "lib/m05.pyc", N: -1}, nil)
	if len(ext) != 1 {
		t.Fatalf("got %d extents, want 1", len(ext))
	}
	blob.data[ext[0].Off+20] ^= 0xff
	if err := es.fetchExtent(context.Background(), ext[0], 0); err == nil {
		t.Fatal("fetchExtent of a corrupt member: no error")
	}
	if got := es.rangeExtents(context.Background(), Range{File: "lib/m05.pyc", N: -1}, nil); len(got) != 1 {
		t.Errorf("after a failed fetch: %d extents, want 1 (not decoded)", len(got))
	}
}
