package cache

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/opencontainers/go-digest"
)

// BenchmarkPut stores distinct blobs of chunk-like sizes (hash, temp file,
// rename), with a budget small enough that eviction runs too.
func BenchmarkPut(b *testing.B) {
	for _, size := range []int{64 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			c := openCache(b, b.TempDir(), Options{MaxBytes: 64 * int64(size)})
			data, _ := blob(1, size)
			ctx := context.Background()
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				// Vary the first bytes so every Put is a new digest.
				b.StopTimer()
				data[0], data[1], data[2], data[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
				d := digest.FromBytes(data)
				b.StartTimer()
				if err := c.Put(ctx, d, bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReadAt reads 64 KiB at random offsets of a 16 MiB entry, held
// open by one Reader (the lazy filesystem's pattern) or opened per read.
func BenchmarkReadAt(b *testing.B) {
	const size, chunk = 16 << 20, 64 << 10
	c := openCache(b, b.TempDir(), Options{})
	data, d := blob(2, size)
	mustPut(b, c, data, d)
	ctx := context.Background()
	p := make([]byte, chunk)

	b.Run("held", func(b *testing.B) {
		r, err := c.Open(ctx, d)
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		rng := rand.New(rand.NewPCG(1, 2))
		b.SetBytes(chunk)
		for b.Loop() {
			if _, err := r.ReadAt(p, rng.Int64N(size-chunk)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open-per-read", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(1, 2))
		b.SetBytes(chunk)
		for b.Loop() {
			if _, err := c.ReadAt(ctx, d, p, rng.Int64N(size-chunk)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
