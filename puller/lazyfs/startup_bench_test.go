package lazyfs

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/opencontainers/go-digest"

	"github.com/fcd-dev/fcd/puller/accel"
	"github.com/fcd-dev/fcd/puller/gzindex"
	"github.com/fcd-dev/fcd/puller/remote"
)

// onceBlob is a memBlob behind a chunk cache: each range is fetched (and
// counted) once, as the fetcher and the host's cache do.
type onceBlob struct {
	memBlob
	mu   sync.Mutex
	seen map[[2]int64]bool
	net  int64
}

func (b *onceBlob) ReadChunk(ctx context.Context, off, n int64, want digest.Digest, prio remote.Priority) ([]byte, error) {
	b.mu.Lock()
	if !b.seen[[2]int64{off, n}] {
		b.seen[[2]int64{off, n}] = true
		b.net += n
	}
	b.mu.Unlock()
	return b.memBlob.ReadChunk(ctx, off, n, want, prio)
}

// BenchmarkStartupFetch reads the start-up files of the synthetic image
// (examples/images.Synthetic, an OCI layout named by
// LAZYFS_STARTUP_IMAGE, e.g. /var/cache/fcd-bench/synthetic2-1073741824-4-0.03-1)
// through index-only sources, as the kernel would (128 KiB reads, in the
// order of /app/startup.list), and reports the compressed bytes fetched
// and the index size for gzindex's default index read in 1 MiB blocks
// (before) and for the index-only conversion's settings read in
// gzBlockSize blocks (now), and for the finest index (4 KiB chunks and
// spans), which approaches the start-up set's own compressed size.
//
//	LAZYFS_STARTUP_IMAGE=... go test ./puller/lazyfs -run '^$' -bench StartupFetch -benchtime 1x
func BenchmarkStartupFetch(b *testing.B) {
	dir := os.Getenv("LAZYFS_STARTUP_IMAGE")
	if dir == "" {
		b.Skip("LAZYFS_STARTUP_IMAGE names no image layout")
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		b.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		b.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		b.Fatal(err)
	}
	img, err := p.Image(m.Manifests[0].Digest)
	if err != nil {
		b.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		b.Fatal(err)
	}
	startup := startupList(b, layers[0].Uncompressed)
	var blobs [][]byte
	for _, l := range layers[1:] {
		rc, err := l.Compressed()
		if err != nil {
			b.Fatal(err)
		}
		blob, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			b.Fatal(err)
		}
		blobs = append(blobs, blob)
	}
	for _, c := range []struct {
		name  string
		block int64
		opts  gzindex.Options
	}{
		{"before", 1 << 20, gzindex.Options{}},
		{"now", gzBlockSize, gzindex.Options{ChunkSize: accel.IndexChunkSize, Span: accel.IndexSpan, MaxSpan: accel.IndexMaxSpan}},
		{"finest", 4 << 10, gzindex.Options{ChunkSize: 4 << 10, Span: 4 << 10, MaxSpan: 64 << 10}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				var fetched, index, size int64
				for _, blob := range blobs {
					x, err := gzindex.Build(context.Background(), bytes.NewReader(blob), c.opts)
					if err != nil {
						b.Fatal(err)
					}
					ib, err := x.MarshalBinary()
					if err != nil {
						b.Fatal(err)
					}
					index, size = index+int64(len(ib)), size+x.Size
					ob := &onceBlob{memBlob: memBlob{data: blob}, seen: map[[2]int64]bool{}}
					s, err := NewGzIndex(x, ob, nil)
					if err != nil {
						b.Fatal(err)
					}
					s.blockSize = c.block
					buf := make([]byte, 128<<10)
					for _, name := range startup {
						e, ok := x.Lookup(name)
						if !ok {
							continue
						}
						for off := int64(0); off < e.Size; off += int64(len(buf)) {
							if _, err := s.ReadAt(context.Background(), cleanName(name), buf, off, remote.OnDemand); err != nil && err != io.EOF {
								b.Fatal(err)
							}
						}
					}
					fetched += ob.net
				}
				b.ReportMetric(float64(fetched)/1e6, "fetched-MB")
				b.ReportMetric(float64(index)/1e3, "index-KB")
				b.ReportMetric(100*float64(index)/float64(size), "index-%")
			}
		})
	}
}

// startupList reads /app/startup.list from the image's base layer.
func startupList(b *testing.B, open func() (io.ReadCloser, error)) []string {
	rc, err := open()
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			b.Fatalf("no app/startup.list in the base layer: %v", err)
		}
		if cleanName(h.Name) == "app/startup.list" {
			data, err := io.ReadAll(tr)
			if err != nil {
				b.Fatal(err)
			}
			var out []string
			for _, l := range strings.Fields(string(data)) {
				out = append(out, cleanName(l))
			}
			return out
		}
	}
}
