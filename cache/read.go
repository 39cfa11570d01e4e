package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
)

// Reader reads one entry. It pins the entry until Close, so eviction
// cannot remove it meanwhile. It implements io.ReadSeekCloser and
// io.ReaderAt; ReadAt is safe for concurrent use, Read and Seek share one
// offset and are not.
type Reader struct {
	f    *os.File
	size int64
	c    *Cache
	e    *entry
	once sync.Once
}

var (
	_ io.ReadSeekCloser = (*Reader)(nil)
	_ io.ReaderAt       = (*Reader)(nil)
)

// Size returns the entry's size in bytes.
func (r *Reader) Size() int64 { return r.size }

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) { return r.f.Read(p) }

// ReadAt implements io.ReaderAt.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) { return r.f.ReadAt(p, off) }

// Seek implements io.Seeker.
func (r *Reader) Seek(off int64, whence int) (int64, error) { return r.f.Seek(off, whence) }

// Close closes the file and unpins the entry. Only the first call has an
// effect.
func (r *Reader) Close() error {
	var err error
	r.once.Do(func() {
		err = r.f.Close()
		r.c.release(r.e)
	})
	return err
}

// Open returns a Reader of the entry d, pinned until the Reader is closed,
// and marks d most recently used. It counts a hit, or a miss when d is
// absent, in which case the error wraps errdefs.ErrNotFound. Depending on
// Options.Verify it re-hashes the entry first; a corrupt entry is dropped
// and the error wraps both errdefs.ErrNotFound and ErrCorrupt, so a caller
// that re-fetches on ErrNotFound needs no special case.
func (c *Cache) Open(ctx context.Context, d digest.Digest) (_ *Reader, err error) {
	if err := checkDigest(d); err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	e, check := c.pin(d)
	if e == nil {
		return nil, fmt.Errorf("open %s: %w", d, errdefs.ErrNotFound)
	}
	defer func() {
		if err != nil {
			c.release(e)
		}
	}()
	f, err := os.Open(c.blobPath(d))
	if errors.Is(err, os.ErrNotExist) {
		// Removed behind our back: forget it, as if it had been evicted.
		c.drop(e)
		c.count(false)
		return nil, fmt.Errorf("open %s: %w", d, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", d, err)
	}
	if check {
		if err := c.check(ctx, e, f); err != nil {
			f.Close()
			if errors.Is(err, ErrCorrupt) {
				c.count(false)
				return nil, fmt.Errorf("open %s: %w: %w", d, errdefs.ErrNotFound, err)
			}
			return nil, fmt.Errorf("open %s: %w", d, err)
		}
	}
	c.count(true)
	c.touchFile(e)
	return &Reader{f: f, size: e.size, c: c, e: e}, nil
}

// ReadAt reads len(p) bytes of entry d at off, with io.ReaderAt's
// contract, opening and closing the entry around the read (see Open for
// errors). Callers reading an entry many times should hold a Reader.
func (c *Cache) ReadAt(ctx context.Context, d digest.Digest, p []byte, off int64) (int, error) {
	r, err := c.Open(ctx, d)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	return r.ReadAt(p, off)
}

// count records the outcome of an Open.
func (c *Cache) count(hit bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if hit {
		c.stats.Hits++
	} else {
		c.stats.Misses++
	}
}

// pin looks d up, counts a miss if it is absent, and otherwise pins and marks it used. It
// reports whether Open must verify the entry first.
func (c *Cache) pin(d digest.Digest) (*entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[d]
	if !ok {
		c.stats.Misses++
		return nil, false
	}
	e.refs++
	c.useLocked(e)
	switch c.verify {
	case VerifyAlways:
		return e, true
	case VerifyRecovered:
		return e, !e.verified
	}
	return e, false
}

// touchFile records e's last access in its file's mtime, best effort:
// losing it only makes the order after a restart less exact.
func (c *Cache) touchFile(e *entry) {
	c.mu.Lock()
	t := e.atime
	c.mu.Unlock()
	if err := os.Chtimes(c.blobPath(e.d), time.Time{}, t); err != nil {
		c.log.Debug("cache: record access time", "digest", e.d, "error", err)
	}
}

// drop removes e from the index and disk, if it is still indexed.
func (c *Cache) drop(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(e)
}

// Has reports whether d is stored. It neither counts a hit or miss nor
// changes the eviction order, so billing may ask freely.
func (c *Cache) Has(d digest.Digest) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.entries[d]
	return ok
}

// Info describes one entry.
type Info struct {
	Digest digest.Digest
	Size   int64
	// LastAccess is when the entry was last stored or opened (as recorded
	// in its file's mtime for entries recovered at Open).
	LastAccess time.Time
	// Pinned is the number of open Readers.
	Pinned int
}

// Stat returns d's Info, or an error wrapping errdefs.ErrNotFound. Like
// Has it does not count as a use.
func (c *Cache) Stat(d digest.Digest) (Info, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[d]
	if !ok {
		return Info{}, fmt.Errorf("stat %s: %w", d, errdefs.ErrNotFound)
	}
	return Info{Digest: e.d, Size: e.size, LastAccess: e.atime, Pinned: e.refs}, nil
}

// Stats are counters for metrics. Entries and Bytes are current values;
// the others count since Open.
type Stats struct {
	Entries  int
	Bytes    int64
	MaxBytes int64
	// Hits and Misses count Opens (and ReadAts) that found or did not
	// find their entry; Has and Stat are not counted.
	Hits, Misses uint64
	// Evictions counts entries removed to meet the budget.
	Evictions uint64
	// Corrupted counts entries dropped because they failed verification.
	Corrupted uint64
}

// Stats returns a snapshot of the counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Entries = len(c.entries)
	s.Bytes = c.bytes
	s.MaxBytes = c.maxBytes
	return s
}
