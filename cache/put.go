package cache

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/opencontainers/go-digest"
)

// Put stores the blob read from r under d, verifying that its bytes hash
// to d before it becomes visible; see the package comment for the steps.
// If d is already stored Put marks it used and returns nil without
// reading r; the caller still owns (and closes) r either way.
//
// Put fails with ErrInvalidDigest for a malformed or non-sha256 d,
// ErrDigestMismatch when the bytes do not match, ErrTooLarge when they
// exceed the whole budget, ctx's error when it is done, and ErrClosed
// after Close; in every failure nothing is left behind. A successful Put
// may evict other, unpinned entries, but never the one it stored.
func (c *Cache) Put(ctx context.Context, d digest.Digest, r io.Reader) error {
	if err := checkDigest(d); err != nil {
		return fmt.Errorf("put: %w", err)
	}
	if e := c.touch(d); e != nil {
		c.touchFile(e)
		return nil
	}
	tmp, size, err := c.writeTemp(ctx, d, r)
	if err != nil {
		return fmt.Errorf("put %s: %w", d, err)
	}
	if err := c.commit(d, tmp, size); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("put %s: %w", d, err)
	}
	return nil
}

// touch marks d most recently used and returns its entry, or nil if d is
// not stored.
func (c *Cache) touch(d digest.Digest) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[d]
	if !ok {
		return nil
	}
	c.useLocked(e)
	return e
}

// writeTemp copies r into a new temp file, checks its digest and returns
// the file's path and size. On any error the temp file is removed.
func (c *Cache) writeTemp(ctx context.Context, d digest.Digest, r io.Reader) (path string, size int64, err error) {
	f, err := os.CreateTemp(c.tmpDir(), d.Encoded()+"-*")
	if err != nil {
		return "", 0, err
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	h := digest.SHA256.Digester()
	src := io.LimitReader(ctxReader{ctx, r}, c.maxBytes+1)
	size, err = io.Copy(io.MultiWriter(f, h.Hash()), src)
	if err != nil {
		return "", 0, err
	}
	if size > c.maxBytes {
		return "", 0, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, c.maxBytes)
	}
	if got := h.Digest(); got != d {
		return "", 0, fmt.Errorf("%w: got %s", ErrDigestMismatch, got)
	}
	if err := f.Chmod(0o444); err != nil {
		return "", 0, err
	}
	return f.Name(), size, nil
}

// commit renames the verified temp file into place and indexes it, unless
// a concurrent Put got there first, in which case tmp is removed.
func (c *Cache) commit(d digest.Digest, tmp string, size int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if e, ok := c.entries[d]; ok {
		c.useLocked(e)
		return os.Remove(tmp)
	}
	now := c.now()
	// Set the access time before the rename so that the entry never
	// appears on disk with a time that would misplace it after a restart.
	if err := os.Chtimes(tmp, now, now); err != nil {
		return err
	}
	if err := os.Rename(tmp, c.blobPath(d)); err != nil {
		return err
	}
	e := &entry{d: d, size: size, atime: now, verified: true}
	e.elem = c.lru.PushFront(e)
	c.entries[d] = e
	c.bytes += size
	c.evictLocked(e)
	return nil
}

// ctxReader fails reads once ctx is done, so a Put from a stalled or
// endless reader stops at the next read after cancellation.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
