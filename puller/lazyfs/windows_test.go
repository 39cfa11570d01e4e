package lazyfs

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/fcd-dev/fcd/puller/gzindex"
	"github.com/fcd-dev/fcd/puller/remote"
)

// TestIndexHeadWindows opens an index-only layer by its index's head
// alone (LayerOptions.IndexBlob) and checks that PrefetchWindows fetches
// the windows its reads need in fewer requests than windows, that the
// reads then fetch none, and that they read the files' bytes.
func TestIndexHeadWindows(t *testing.T) {
	var entries []tarEntry
	for i := range 200 {
		// Half text, half noise: windows that compress unevenly.
		data := pseudoRandom(uint64(i), 3000+i*37)
		if i%2 == 0 {
			data = bytes.Repeat([]byte(fmt.Sprintf("file %d says hello; ", i)), 200)
		}
		entries = append(entries, fileE(fmt.Sprintf("d/f%03d", i), 0o644, data))
	}
	raw := tarBytes(t, entries)
	gz := gzipBytes(t, raw)
	x, err := gzindex.Build(context.Background(), bytes.NewReader(gz), gzindex.Options{ChunkSize: gzindex.MinChunkSize, Span: 1, MaxSpan: 1, Version: 3})
	if err != nil {
		t.Fatal(err)
	}
	data, err := x.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	n, err := gzindex.HeadSize(data)
	if err != nil {
		t.Fatal(err)
	}
	ib := &memBlob{data: data}
	desc := ocispec.Descriptor{Digest: digest.FromBytes(gz), Size: int64(len(gz))}
	src, err := OpenLayer(context.Background(), desc, &memBlob{data: gz}, LayerOptions{Index: data[:n], IndexBlob: ib})
	if err != nil {
		t.Fatal(err)
	}
	s := src.(*GzIndex)
	if ib.requests.Load() != 0 {
		t.Fatalf("opening the layer read the index blob %d times, want none", ib.requests.Load())
	}
	var rs []Range
	for _, e := range entries {
		rs = append(rs, Range{File: e.Name, N: -1})
	}
	l := &Layer{src: s}
	if err := l.PrefetchWindows(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	got := ib.requests.Load()
	if got == 0 || got >= int64(x.Checkpoints())/2 {
		t.Fatalf("PrefetchWindows made %d requests for %d checkpoints, want a few", got, x.Checkpoints())
	}
	for _, e := range entries {
		buf := make([]byte, len(e.data))
		if _, err := s.ReadAt(context.Background(), e.Name, buf, 0, remote.OnDemand); err != nil {
			t.Fatalf("%s: %v", e.Name, err)
		}
		if !bytes.Equal(buf, e.data) {
			t.Fatalf("%s: read other bytes than the tar's", e.Name)
		}
	}
	if ib.requests.Load() != got {
		t.Fatalf("reads fetched %d windows after PrefetchWindows, want none", ib.requests.Load()-got)
	}
}
