package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
)

// The lazy path's fetch unit is a compressed chunk of at most a few
// hundred KiB, read whole and used at once: these two calls store and
// return one as a byte slice.

// PutBytes stores b under d, as Put does with a reader of b.
func (c *Cache) PutBytes(ctx context.Context, d digest.Digest, b []byte) error {
	return c.Put(ctx, d, bytes.NewReader(b))
}

// Get returns the whole entry d, hashed against d on every call whatever
// Options.Verify says (chunks are small, and every byte served must be
// verified), and marks it most recently used. It counts a hit or a miss
// as Open does. Absent, the error wraps errdefs.ErrNotFound; corrupt, the
// entry is dropped and the error wraps both errdefs.ErrNotFound and
// ErrCorrupt, so the caller fetches it again. Get holds the whole entry in
// memory: use Open for large blobs.
func (c *Cache) Get(ctx context.Context, d digest.Digest) ([]byte, error) {
	if err := checkDigest(d); err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	e, _ := c.pin(d)
	if e == nil {
		return nil, fmt.Errorf("get %s: %w", d, errdefs.ErrNotFound)
	}
	defer c.release(e)
	b, err := c.readVerified(ctx, e)
	if err != nil {
		if errors.Is(err, ErrCorrupt) || errors.Is(err, errdefs.ErrNotFound) {
			c.count(false)
			return nil, fmt.Errorf("get %s: %w: %w", d, errdefs.ErrNotFound, err)
		}
		return nil, fmt.Errorf("get %s: %w", d, err)
	}
	c.count(true)
	c.touchFile(e)
	return b, nil
}

// readVerified reads e's file whole and checks its size and digest,
// dropping e when they are wrong.
func (c *Cache) readVerified(ctx context.Context, e *entry) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(c.blobPath(e.d))
	if errors.Is(err, os.ErrNotExist) {
		c.drop(e) // removed behind our back: as if evicted
		return nil, errdefs.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, e.size+1)
	n, err := io.ReadFull(f, b)
	if err != nil && err != io.ErrUnexpectedEOF {
		return nil, err
	}
	b = b[:n]
	if int64(n) != e.size {
		reason := fmt.Sprintf("size %d, want %d", n, e.size)
		c.corrupt(e, reason)
		return nil, fmt.Errorf("%w: %s", ErrCorrupt, reason)
	}
	if got := e.d.Algorithm().FromBytes(b); got != e.d {
		reason := "content hashes to " + got.String()
		c.corrupt(e, reason)
		return nil, fmt.Errorf("%w: %s", ErrCorrupt, reason)
	}
	c.mu.Lock()
	e.verified = true
	c.mu.Unlock()
	return b, nil
}
