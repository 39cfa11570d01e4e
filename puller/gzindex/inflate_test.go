package gzindex

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
)

// inflateAll decodes a whole gzip stream with the package's decoder.
func inflateAll(data []byte, chunk int) ([]byte, []boundary, error) {
	s := newStream(bytes.NewReader(data), 4096, chunk, true)
	got, err := io.ReadAll(s)
	return got, s.d.bounds, err
}

func gzipBytes(t testing.TB, data []byte, level int) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := gzip.NewWriterLevel(&b, level)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	w.Close()
	return b.Bytes()
}

func testInputs() map[string][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 300<<10)
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	var text bytes.Buffer
	words := []string{"alpha", "beta", "gamma", "delta", "func", "return", "\n", "    ", "{", "}", "err != nil"}
	for text.Len() < 1<<20 {
		text.WriteString(words[r.IntN(len(words))])
		text.WriteByte(' ')
	}
	mixed := append(append([]byte{}, text.Bytes()[:200<<10]...), random[:100<<10]...)
	mixed = append(mixed, make([]byte, 200<<10)...)
	mixed = append(mixed, text.Bytes()...)
	return map[string][]byte{
		"empty":  {},
		"byte":   {'x'},
		"zeros":  make([]byte, 1<<20),
		"random": random,
		"text":   text.Bytes(),
		"mixed":  mixed,
	}
}

func TestInflateMatchesStdlib(t *testing.T) {
	for name, data := range testInputs() {
		for _, level := range []int{gzip.HuffmanOnly, gzip.NoCompression, gzip.BestSpeed, gzip.DefaultCompression, gzip.BestCompression} {
			for _, chunk := range []int{333, 256 << 10} {
				if raceEnabled && chunk == 333 && level != gzip.DefaultCompression {
					continue
				}
				t.Run(fmt.Sprintf("%s/level%d/chunk%d", name, level, chunk), func(t *testing.T) {
					z := gzipBytes(t, data, level)
					got, bounds, err := inflateAll(z, chunk)
					if err != nil {
						t.Fatalf("level %d chunk %d: %v", level, chunk, err)
					}
					if !bytes.Equal(got, data) {
						t.Fatalf("level %d chunk %d: got %d bytes, want %d (equal prefix %d)", level, chunk, len(got), len(data), commonPrefix(got, data))
					}
					if len(bounds) < 2 || !bounds[0].member || bounds[0].bit != 0 {
						t.Fatalf("level %d: got boundaries %v, want a member start then blocks", level, bounds[:min(len(bounds), 2)])
					}
				})
			}
		}
	}
}

func commonPrefix(a, b []byte) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

func TestInflateMultiMember(t *testing.T) {
	in := testInputs()
	var z, want []byte
	for _, name := range []string{"text", "empty", "random", "zeros"} {
		z = append(z, gzipBytes(t, in[name], 6)...)
		want = append(want, in[name]...)
	}
	got, bounds, err := inflateAll(z, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d", len(got), len(want))
	}
	members := 0
	for _, b := range bounds {
		if b.member {
			members++
		}
	}
	if members != 4 {
		t.Fatalf("got %d member boundaries, want 4", members)
	}
}

// TestInflateResume starts a decoder at every recorded boundary and checks
// the bytes that follow.
func TestInflateResume(t *testing.T) {
	in := testInputs()
	data := append(append([]byte{}, in["mixed"]...), in["text"]...)
	z := append(gzipBytes(t, data[:700<<10], 6), gzipBytes(t, data[700<<10:], 1)...)
	_, bounds, err := inflateAll(z, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	var d inflater
	for i, b := range bounds {
		win := data[b.out-int64(b.win) : b.out]
		out := make([]byte, windowSize+64<<10+maxMatch)
		d.resetAt(bytes.NewReader(z[b.bit/8:]), b, win, make([]byte, 0, 1024), out)
		want := data[b.out:min(int64(len(data)), b.out+64<<10)]
		start := d.op
		if err := d.decode(start + len(want)); err != nil {
			t.Fatalf("boundary %d %+v: %v", i, b, err)
		}
		if got := d.out[start : start+len(want)]; !bytes.Equal(got, want) {
			t.Fatalf("boundary %d %+v: got bytes differing at %d", i, b, commonPrefix(got, want))
		}
	}
}

func TestInflateCorrupt(t *testing.T) {
	good := gzipBytes(t, testInputs()["text"], 6)
	flip := append([]byte{}, good...)
	flip[len(flip)/2] ^= 0x10
	badCRC := append([]byte{}, good...)
	badCRC[len(badCRC)-6] ^= 1
	for name, data := range map[string][]byte{
		"empty":      {},
		"magic":      []byte("not gzip at all"),
		"truncated":  good[:len(good)/2],
		"no trailer": good[:len(good)-8],
		"flipped":    flip,
		"crc":        badCRC,
		"garbage":    append(append([]byte{}, good...), 1, 2, 3),
		"btype3":     {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 0x07},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := inflateAll(data, 4096)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("got error %v, want ErrCorrupt", err)
			}
		})
	}
}

// stdInflate decodes raw deflate with compress/flate.
func stdInflate(data []byte) ([]byte, error) {
	return io.ReadAll(flate.NewReader(bytes.NewReader(data)))
}
