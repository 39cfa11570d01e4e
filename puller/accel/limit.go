package accel

import (
	"context"
	"fmt"
	"io"
	"math"
	"sync/atomic"
)

// DefaultMaxUncompressedSize is Options.MaxUncompressedSize's default:
// the most an image may unpack to (DESIGN.md, "Limits"), as for a full
// pull (puller.DefaultMaxUncompressedSize).
const DefaultMaxUncompressedSize = 10 << 30

// budget counts the uncompressed bytes of one conversion's layers, all
// layers together, against Options.MaxUncompressedSize.
type budget struct {
	max int64
	n   atomic.Int64
}

// newBudget returns a budget of max bytes; negative means unlimited.
func newBudget(max int64) *budget {
	if max < 0 {
		max = math.MaxInt64
	}
	return &budget{max: max}
}

// take counts n bytes, and fails with ErrTooLarge once past the limit.
func (b *budget) take(n int64) error {
	if b.n.Add(n) > b.max {
		return fmt.Errorf("%w: its layers unpack to more than %d bytes", ErrTooLarge, b.max)
	}
	return nil
}

// boundedReader reads r until ctx ends, counting what it reads against b
// (nil: not counted). Checking ctx on every read stops a conversion
// promptly even when its input does not depend on ctx: a file already
// fetched, or a small blob decompressing to gigabytes.
type boundedReader struct {
	ctx context.Context
	r   io.Reader
	b   *budget
}

func (r boundedReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := r.r.Read(p)
	if r.b != nil {
		if berr := r.b.take(int64(n)); berr != nil {
			return n, berr
		}
	}
	return n, err
}
