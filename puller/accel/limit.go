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

// DefaultMaxEntries is Options.MaxEntries's default. Large images hold a
// few hundred thousand files; a full-mode conversion keeps about 1.5 KiB
// of table of contents per entry in memory (300 MiB for 200,000 empty
// files, measured), an index-only one about 0.6 KiB.
const DefaultMaxEntries = 1 << 20

// budget counts the uncompressed bytes and the tar entries of one
// conversion's layers, all layers together, against
// Options.MaxUncompressedSize and Options.MaxEntries.
type budget struct {
	max, maxEntries int64
	n, entries      atomic.Int64
}

// newBudget returns a budget of max bytes and maxEntries entries;
// negative means unlimited.
func newBudget(max, maxEntries int64) *budget {
	if max < 0 {
		max = math.MaxInt64
	}
	if maxEntries < 0 {
		maxEntries = math.MaxInt64
	}
	return &budget{max: max, maxEntries: maxEntries}
}

// entry counts n tar entries, and fails with ErrTooLarge once past the
// limit.
func (b *budget) entry(n int64) error {
	if b.entries.Add(n) > b.maxEntries {
		return fmt.Errorf("%w: its layers hold more than %d entries", ErrTooLarge, b.maxEntries)
	}
	return nil
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
