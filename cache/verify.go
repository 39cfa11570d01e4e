package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
)

// Verify re-hashes the stored entry d. It returns nil when the bytes
// match, an error wrapping errdefs.ErrNotFound when d is not stored, and
// an error wrapping ErrCorrupt when they do not match (or the file has
// the wrong size or is gone), in which case the entry has been dropped and
// the drop logged. The entry is pinned while it is hashed. Verify does
// not count as a use for eviction or in Stats' hits and misses.
func (c *Cache) Verify(ctx context.Context, d digest.Digest) error {
	if err := checkDigest(d); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	c.mu.Lock()
	e, ok := c.entries[d]
	if ok {
		e.refs++
	}
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("verify %s: %w", d, errdefs.ErrNotFound)
	}
	defer c.release(e)

	f, err := os.Open(c.blobPath(d))
	if errors.Is(err, os.ErrNotExist) {
		c.corrupt(e, "file missing")
		return fmt.Errorf("verify %s: %w: file missing", d, ErrCorrupt)
	}
	if err != nil {
		return fmt.Errorf("verify %s: %w", d, err)
	}
	defer f.Close()
	if err := c.check(ctx, e, f); err != nil {
		return fmt.Errorf("verify %s: %w", d, err)
	}
	return nil
}

// check hashes f, the file of e, from its start. A mismatch drops e and
// returns ErrCorrupt; a match marks e verified. It reads with ReadAt, so
// f's offset does not move.
func (c *Cache) check(ctx context.Context, e *entry, f *os.File) error {
	h := e.d.Algorithm().Digester()
	n, err := io.Copy(h.Hash(), ctxReader{ctx, io.NewSectionReader(f, 0, e.size+1)})
	if err != nil {
		return err
	}
	if n != e.size {
		reason := fmt.Sprintf("size %d, want %d", n, e.size)
		c.corrupt(e, reason)
		return fmt.Errorf("%w: %s", ErrCorrupt, reason)
	}
	if got := h.Digest(); got != e.d {
		reason := "content hashes to " + got.String()
		c.corrupt(e, reason)
		return fmt.Errorf("%w: %s", ErrCorrupt, reason)
	}
	c.mu.Lock()
	e.verified = true
	c.mu.Unlock()
	return nil
}

// corrupt drops e after a failed verification and reports it.
func (c *Cache) corrupt(e *entry, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.elem == nil {
		return // already dropped by someone else
	}
	c.dropLocked(e)
	c.stats.Corrupted++
	c.log.Warn("cache: dropped corrupt entry", "digest", e.d, "reason", reason)
}
