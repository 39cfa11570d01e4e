package lazyfs

import (
	"math/bits"
	"math/rand/v2"
	"testing"
)

// TestServedCounts serves a file's blocks in random, overlapping and
// partial reads: the count of blocks not yet served follows the bitmap,
// and the file is not claimed for materialization before the last.
func TestServedCounts(t *testing.T) {
	const size = 100*seenBlock + 123 // a partial last block
	l := &Layer{small: 1}
	n := &tnode{size: size}
	r := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		off := 1 + r.Int64N(size) // never all of block 0
		l.served(n, off, r.Int64N(3*seenBlock)+1)
		unseen := int64(101)
		for _, w := range n.seen {
			unseen -= int64(bits.OnesCount64(w))
		}
		if n.unseen != unseen || n.busy {
			t.Fatalf("after %d+: unseen %d, bitmap says %d; busy %v", off, n.unseen, unseen, n.busy)
		}
	}
}
