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

// DefaultMaxHeaderBytes is Options.MaxHeaderBytes's default: a million
// entries of 256-byte paths. A conversion keeps each entry's name, link
// target and extended attributes in memory, several times over, and
// archive/tar reads names and PAX records of up to 1 MiB each: 256 names
// of 1 MiB, 360 KiB of gzip, took 1.5 GiB of memory to convert in full
// mode streamed, 2.5 GiB with a prefetch list, 0.4 GiB index-only
// (measured without limits), which is about what the default allows.
const DefaultMaxHeaderBytes = 256 << 20

// budget counts the uncompressed bytes, the tar entries and their
// headers' bytes of one conversion's layers, all layers together, against
// Options.MaxUncompressedSize, MaxEntries and MaxHeaderBytes.
type budget struct {
	max, maxEntries, maxHeader int64
	n, entries, header         atomic.Int64
}

// newBudget returns the budget of opts' limits.
func newBudget(opts Options) *budget {
	unlimited := func(n int64) int64 {
		if n < 0 {
			return math.MaxInt64
		}
		return n
	}
	return &budget{
		max:        unlimited(opts.MaxUncompressedSize),
		maxEntries: unlimited(opts.MaxEntries),
		maxHeader:  unlimited(opts.MaxHeaderBytes),
	}
}

// entry counts a tar entry with its name, link target and PAX records,
// and fails with ErrTooLarge once past a limit.
func (b *budget) entry(name, link string, pax map[string]string) error {
	if b.entries.Add(1) > b.maxEntries {
		return fmt.Errorf("%w: its layers hold more than %d entries", ErrTooLarge, b.maxEntries)
	}
	n := len(name) + len(link)
	for k, v := range pax {
		n += len(k) + len(v)
	}
	if b.header.Add(int64(n)) > b.maxHeader {
		return fmt.Errorf("%w: its tar headers hold more than %d bytes of names, link targets and PAX records", ErrTooLarge, b.maxHeader)
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
