package remote

import (
	"container/list"
	"context"
	"sync"

	"github.com/opencontainers/go-digest"
)

// heldChunks keeps verified chunks in memory, most recently used first,
// within a byte budget, and writes each to the cache only when it leaves
// memory (or at Close). A lazy start-up reads thousands of small chunks,
// many of them twice (a checkpoint's chunk serves the files around it):
// held, a chunk costs neither a cache file made while the instance waits
// nor a read and a hash of that file when it is needed again, and one
// that is never needed again past start-up (most are: their files are
// made local) is written later, off the start-up's path.
//
// It is safe for concurrent use. Lock order: Fetcher.mu, then heldChunks.mu.
type heldChunks struct {
	f      *Fetcher
	budget int64

	mu    sync.Mutex
	size  int64
	order *list.List // of *heldChunk, most recent first
	m     map[digest.Digest]*list.Element
	out   []*heldChunk // left memory, not yet written
	// leaving holds the bytes of the chunks in out or being written, so
	// that get finds a chunk until the cache has it.
	leaving map[digest.Digest][]byte
	wake    chan struct{}
	closed  bool
}

type heldChunk struct {
	d digest.Digest
	b []byte
}

func newHeldChunks(f *Fetcher, budget int64) *heldChunks {
	return &heldChunks{
		f: f, budget: budget, order: list.New(), m: make(map[digest.Digest]*list.Element),
		leaving: make(map[digest.Digest][]byte), wake: make(chan struct{}, 1),
	}
}

// get returns the held bytes of d, or those of a chunk that left memory
// and is not in the cache yet.
func (h *heldChunks) get(d digest.Digest) ([]byte, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.m[d]
	if !ok {
		b, ok := h.leaving[d]
		return b, ok
	}
	h.order.MoveToFront(e)
	return e.Value.(*heldChunk).b, true
}

// add holds b, the verified bytes of d, handing the least recently used
// chunks past the budget to the writer. A chunk larger than the budget
// is written at once. After close, b goes straight to the writer.
func (h *heldChunks) add(d digest.Digest, b []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.m[d]; ok {
		return
	}
	if h.closed || int64(len(b)) > h.budget {
		h.leave(&heldChunk{d, b})
	} else {
		h.m[d] = h.order.PushFront(&heldChunk{d, b})
		h.size += int64(len(b))
		for h.size > h.budget {
			e := h.order.Back()
			c := h.order.Remove(e).(*heldChunk)
			delete(h.m, c.d)
			h.size -= int64(len(c.b))
			h.leave(c)
		}
	}
	if len(h.out) > 0 {
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
}

// leave hands c to the writer. h.mu is held.
func (h *heldChunks) leave(c *heldChunk) {
	h.out = append(h.out, c)
	h.leaving[c.d] = c.b
}

// run writes chunks that left memory to the cache until ctx ends, then
// writes every chunk still held.
func (h *heldChunks) run(ctx context.Context) {
	for {
		select {
		case <-h.wake:
			h.write(h.take(false))
		case <-ctx.Done():
			h.write(h.take(true))
			return
		}
	}
}

// take returns the chunks to write: those that left memory, and with
// all every chunk held, which then stays out of memory.
func (h *heldChunks) take(all bool) []*heldChunk {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.out
	h.out = nil
	if all {
		h.closed = true
		for e := h.order.Front(); e != nil; e = e.Next() {
			c := e.Value.(*heldChunk)
			out = append(out, c)
			h.leaving[c.d] = c.b
		}
		h.order.Init()
		clear(h.m)
		h.size = 0
	}
	return out
}

// write puts cs into the cache. It is not cancelled: the chunks are
// verified and in memory, and writing them is local and short.
func (h *heldChunks) write(cs []*heldChunk) {
	for _, c := range cs {
		if err := h.f.cache.PutBytes(context.Background(), c.d, c.b); err != nil {
			h.f.log.Warn("remote: cache chunk", "digest", c.d, "error", err)
		}
		h.mu.Lock()
		delete(h.leaving, c.d)
		h.mu.Unlock()
	}
}
