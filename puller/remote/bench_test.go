package remote

import (
	"context"
	"testing"

	"github.com/fcd-dev/fcd/cache"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// BenchmarkReadChunk reads a 64 MiB blob as 512 KiB verified chunks from
// a loopback registry, eight readers at once, through the default six
// streams: "network" fetches every chunk (sha256 checked, nothing
// cached), "cached" serves them from a warm cache (sha256 checked on
// every Get). MB/s are compressed bytes.
//
//	go test ./puller/remote -run '^$' -bench ReadChunk -benchtime 5x
func BenchmarkReadChunk(b *testing.B) {
	const size, chunk = 64 << 20, 512 << 10
	for _, cached := range []bool{false, true} {
		name := "network"
		if cached {
			name = "cached"
		}
		b.Run(name, func(b *testing.B) {
			var opts Options
			if cached {
				c, err := cache.Open(b.TempDir(), cache.Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				opts.Cache = c
			}
			x := newFixture(b, size, opts)
			sums := make([]digest.Digest, size/chunk)
			for i := range sums {
				sums[i] = digest.FromBytes(x.data[i*chunk : (i+1)*chunk])
			}
			readAll := func(b *testing.B) {
				var g errgroup.Group
				g.SetLimit(8)
				for i := range sums {
					g.Go(func() error {
						_, err := x.b.ReadChunk(context.Background(), int64(i*chunk), chunk, sums[i], Prefetch)
						return err
					})
				}
				if err := g.Wait(); err != nil {
					b.Fatal(err)
				}
			}
			if cached {
				readAll(b) // warm the cache
			}
			before := x.b.Stats().Requests
			b.SetBytes(size)
			b.ResetTimer()
			for b.Loop() {
				readAll(b)
			}
			st := x.b.Stats()
			b.ReportMetric(float64(st.Requests-before)/float64(b.N), "GETs/op")
		})
	}
}
