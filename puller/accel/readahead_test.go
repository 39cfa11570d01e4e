package accel

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

func TestReadAhead(t *testing.T) {
	data := make([]byte, 1<<20+123)
	for i := range data {
		data[i] = byte(rand.N(256))
	}
	for _, tc := range []struct {
		name string
		r    func() io.Reader
	}{
		{"whole", func() io.Reader { return bytes.NewReader(data) }},
		{"one byte reads", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) }},
		{"half reads", func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ra := readAhead(tc.r(), 3, 4096)
			defer ra.Close()
			got, err := io.ReadAll(iotest.HalfReader(ra))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("got %d bytes, %v; want the %d bytes read", len(got), err, len(data))
			}
		})
	}
	boom := errors.New("boom")
	ra := readAhead(io.MultiReader(bytes.NewReader(data[:10000]), iotest.ErrReader(boom)), 2, 4096)
	got, err := io.ReadAll(ra)
	if !errors.Is(err, boom) || !bytes.Equal(got, data[:10000]) {
		t.Errorf("got %d bytes, %v; want 10000 bytes then boom", len(got), err)
	}
	ra.Close()
	// Close before the end stops the goroutine.
	ra = readAhead(bytes.NewReader(data), 2, 4096)
	io.ReadFull(ra, make([]byte, 100))
	ra.Close()
}
