package gzindex

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"
)

// TestGunzip checks Gunzip against compress/gzip on every test input and
// level, whole and in pieces, over one member and over several (an
// eStargz chunk inside a member shared with other files).
func TestGunzip(t *testing.T) {
	for name, data := range testInputs() {
		for _, level := range []int{gzip.HuffmanOnly, gzip.NoCompression, gzip.BestSpeed, gzip.BestCompression} {
			one := gzipBytes(t, data, level)
			half := len(data) / 2
			multi := append(gzipBytes(t, data[:half], level), gzipBytes(t, data[half:], level)...)
			for _, z := range [][]byte{one, multi} {
				n := int64(len(data))
				for _, r := range [][2]int64{{0, n}, {0, n / 3}, {n / 3, n - n/3}, {n / 2, n / 4}, {n, 0}} {
					orig := bytes.Clone(z)
					got, err := Gunzip(z, r[0], r[1])
					if err != nil {
						t.Fatalf("%s level %d: Gunzip(%d, %d): %v", name, level, r[0], r[1], err)
					}
					if want := data[r[0] : r[0]+r[1]]; !bytes.Equal(got, want) {
						t.Fatalf("%s level %d: Gunzip(%d, %d): %d bytes differ from compress/gzip's %d", name, level, r[0], r[1], len(got), len(want))
					}
					if !bytes.Equal(z, orig) {
						t.Fatalf("%s level %d: Gunzip modified its input", name, level)
					}
				}
			}
		}
	}
}

func TestGunzipRefuses(t *testing.T) {
	data := testInputs()["text"]
	z := gzipBytes(t, data, gzip.BestSpeed)
	for name, c := range map[string]struct {
		z       []byte
		skip, n int64
	}{
		"past the end": {z, 0, int64(len(data)) + 1},
		"truncated":    {z[:len(z)/2], 0, int64(len(data))},
		"not gzip":     {[]byte("plain text, not gzip at all"), 0, 4},
		"empty":        {nil, 0, 1},
		"negative":     {z, -1, 4},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := Gunzip(c.z, c.skip, c.n)
			if err == nil {
				t.Fatalf("got %d bytes, want an error", len(got))
			}
			if name != "negative" && !errors.Is(err, ErrCorrupt) {
				t.Errorf("got %v, want ErrCorrupt", err)
			}
		})
	}
}

// BenchmarkGunzip decodes 1 MiB gzip members of the test text, an eStargz
// chunk's shape: Gunzip against klauspost/compress's gzip reader (what
// lazyfs used before).
func BenchmarkGunzip(b *testing.B) {
	for _, size := range []int{8 << 10, 1 << 20} {
		b.Run(fmt.Sprint(size), func(b *testing.B) { benchGunzip(b, testInputs()["mixed"][:size]) })
	}
}

func benchGunzip(b *testing.B, data []byte) {
	z := gzipBytes(b, data, gzip.BestSpeed)
	b.Run("gzindex", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := Gunzip(z, 0, int64(len(data))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("klauspost", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		zr, _ := kgzip.NewReader(bytes.NewReader(z))
		for b.Loop() {
			zr.Reset(bytes.NewReader(z))
			out := make([]byte, len(data))
			if _, err := zr.Read(out[:0]); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(zr, out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
