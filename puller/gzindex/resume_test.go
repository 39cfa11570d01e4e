package gzindex

import (
	"bytes"
	"context"
	"testing"
)

// TestReadAtFrom resumes reads at block boundaries other than
// checkpoints, with the window taken from the uncompressed stream, in a
// layer of several gzip members (whose starts are boundaries too), and
// gets the stream's bytes.
func TestReadAtFrom(t *testing.T) {
	_, tarBytes := smallLayer(t, 1500)
	var z []byte
	for i := range 3 { // three members, cut mid-file
		z = append(z, gzipBytes(t, tarBytes[i*len(tarBytes)/3:(i+1)*len(tarBytes)/3], 6)...)
	}
	x, err := Build(context.Background(), bytes.NewReader(z), Options{Span: 64 << 10, MaxSpan: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(x.blocks) < 10 {
		t.Fatalf("got %d block boundaries, want several", len(x.blocks))
	}
	// compress/gzip ends a member with an empty block, a boundary at the
	// next member's start; gzip and pigz end with data. Drop those
	// blocks, so that the next members' headers are where reads resume.
	members := 0
	for i := 0; i+1 < len(x.blocks); i++ {
		if next := x.blocks[i+1]; next.out == x.blocks[i].out && next.bit%8 == 0 && z[next.bit/8] == 0x1f {
			x.blocks = append(x.blocks[:i], x.blocks[i+1:]...)
			members++
		}
	}
	if members != 2 {
		t.Fatalf("found %d later members' starts, want 2", members)
	}
	r := NewReader(x, FileFetcher(bytes.NewReader(z)))
	ctx := context.Background()
	var resumed int
	for i, b := range x.blocks {
		for _, d := range []int64{0, 1, 5000} {
			off := b.out + d
			if off >= x.Size {
				continue
			}
			at := x.BlockBefore(off)
			if at > off || at < b.out {
				t.Fatalf("BlockBefore(%d) = %d, want in [%d, %d]", off, at, b.out, off)
			}
			p := make([]byte, min(3000, x.Size-off))
			n, err := r.ReadAtFrom(ctx, p, off, at, tarBytes[at-min(WindowSize, at):at])
			if err != nil {
				t.Fatalf("block %d: ReadAtFrom(%d from %d): %v", i, off, at, err)
			}
			if !bytes.Equal(p[:n], tarBytes[off:off+int64(n)]) || n != len(p) {
				t.Fatalf("block %d: ReadAtFrom(%d from %d): wrong bytes (%d)", i, off, at, n)
			}
			if x.CheckpointBefore(off) < at {
				resumed++
			}
		}
	}
	if resumed == 0 {
		t.Fatal("no read resumed past its checkpoint")
	}
	// The window must be as long as the history before the boundary,
	// and the boundary one and at or before the read.
	at := x.blocks[len(x.blocks)/2].out
	for _, c := range []struct {
		off, at int64
		win     int
	}{
		{at, at, 100},
		{at, at + 1, WindowSize},
		{at - 1, at, WindowSize},
	} {
		if _, err := r.ReadAtFrom(ctx, make([]byte, 10), c.off, c.at, make([]byte, c.win)); err == nil {
			t.Errorf("ReadAtFrom(%d from %d, %d-byte window): got no error", c.off, c.at, c.win)
		}
	}
}
