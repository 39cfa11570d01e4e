package cache

import (
	"errors"
	"os"
)

// useLocked marks e most recently used in memory. The file's mtime, which
// carries the order across restarts, is set by the caller outside mu.
func (c *Cache) useLocked(e *entry) {
	e.atime = c.now()
	c.lru.MoveToFront(e.elem)
}

// evictLocked removes least recently used unpinned entries, other than
// keep, until the store is within budget or nothing more can go.
func (c *Cache) evictLocked(keep *entry) {
	for el := c.lru.Back(); el != nil && c.bytes > c.maxBytes; {
		e := el.Value.(*entry)
		el = el.Prev()
		if e == keep || e.refs > 0 {
			continue
		}
		c.dropLocked(e)
		c.stats.Evictions++
		c.log.Debug("cache: evicted", "digest", e.d, "size", e.size)
	}
	if c.bytes > c.maxBytes {
		c.log.Warn("cache: over budget, remaining entries are pinned",
			"bytes", c.bytes, "max_bytes", c.maxBytes)
	}
}

// dropLocked removes e from the index and unlinks its file. Readers that
// already have it open keep reading the unlinked file.
func (c *Cache) dropLocked(e *entry) {
	if e.elem == nil {
		return
	}
	c.lru.Remove(e.elem)
	e.elem = nil
	delete(c.entries, e.d)
	c.bytes -= e.size
	if err := os.Remove(c.blobPath(e.d)); err != nil && !errors.Is(err, os.ErrNotExist) {
		c.log.Warn("cache: remove entry", "digest", e.d, "error", err)
	}
}

// release unpins e after a Reader closes, and evicts if the pin was what
// held the store over budget.
func (c *Cache) release(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.refs--
	if e.refs == 0 && c.bytes > c.maxBytes {
		c.evictLocked(nil)
	}
}
