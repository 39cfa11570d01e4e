package lazyfs

import (
	"container/list"
	"sync"
)

// decoded is the process-wide cache of decoded bytes (eStargz chunks,
// stretches of an indexed tar stream) shared by every source, so that the
// kernel's 128 KiB reads of one chunk decode it once. One byte budget for
// all layers, as a host mounts hundreds of them and an idle layer should
// not hold memory (stargz-snapshotter #369).
var decoded = newMemCache(64 << 20)

// memKey names decoded bytes: the source and a position in it.
type memKey struct {
	src      any
	off, sub int64
}

// memCache is a least-recently-used map of byte slices with a byte
// budget. It is safe for concurrent use.
type memCache struct {
	mu     sync.Mutex
	budget int64
	size   int64
	order  *list.List // of *memEntry, most recent first
	m      map[memKey]*list.Element
}

type memEntry struct {
	key memKey
	b   []byte
}

func newMemCache(budget int64) *memCache {
	return &memCache{budget: budget, order: list.New(), m: make(map[memKey]*list.Element)}
}

func (c *memCache) get(k memKey) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*memEntry).b, true
}

// add keeps b under k, evicting the least recently used entries past the
// budget. A slice larger than the whole budget is not kept.
func (c *memCache) add(k memKey, b []byte) {
	if int64(len(b)) > c.budget {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		c.size -= int64(len(e.Value.(*memEntry).b))
		c.order.Remove(e)
	}
	c.m[k] = c.order.PushFront(&memEntry{key: k, b: b})
	c.size += int64(len(b))
	for c.size > c.budget {
		e := c.order.Back()
		me := e.Value.(*memEntry)
		c.order.Remove(e)
		delete(c.m, me.key)
		c.size -= int64(len(me.b))
	}
}
