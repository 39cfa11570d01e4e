package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/opencontainers/go-digest"
)

// item is one read: pending in its queue, then in flight as part of a
// group, then finished (done closed, data or err set). Fields are guarded
// by Fetcher.mu, except buf, which only the group's goroutine touches
// while in flight.
type item struct {
	key     itemKey
	b       *Blob
	prio    Priority
	seq     uint64
	waiters int
	g       *group // nil while pending
	buf     []byte // allocated when dispatched
	done    chan struct{}
	data    []byte
	err     error
}

func (it *item) end() int64 { return it.key.off + it.key.n }

// queue holds one registry's pending reads.
type queue struct {
	name       string
	pending    []*item
	running    int       // groups in flight
	starting   bool      // a goroutine that forms the next group is on its way (dispatchLocked)
	background int       // of which Background groups
	urgent     int       // of which OnDemand or Prefetch groups
	lastUrgent time.Time // when an urgent group last ended
}

// group is one GET: items in [off, end), sorted by offset, apart by at
// most Options.MaxGap bytes, read into in order by one goroutine.
type group struct {
	b      *Blob
	q      *queue
	items  []*item
	next   int // first item not yet filled; only the group's goroutine uses it
	pos    int64
	end    int64
	prio   Priority
	ctx    context.Context
	cancel context.CancelFunc
	live   int  // items with waiters
	wire   bool // a request of the group is out (guarded by Fetcher.mu)
}

// errLookAgain is join's answer to a caller that looked for a chunk in
// memory and the cache before a chunk was kept there: it may be the one.
var errLookAgain = errors.New("remote: a chunk was kept meanwhile: look again")

// fetch returns n bytes of b at off, checked against want when set,
// sharing an identical read pending or in flight. kept is Fetcher.kept as
// it was before the caller looked for want in memory and the cache.
func (f *Fetcher) fetch(ctx context.Context, b *Blob, off, n int64, want digest.Digest, prio Priority, kept uint64) ([]byte, error) {
	it, err := f.joinLooked(b, off, n, want, prio, kept)
	if err != nil {
		return nil, err
	}
	return f.wait(ctx, it)
}

// joinLooked registers a waiter for a read, queueing it unless an
// identical one is pending or in flight, for a caller that looked for
// want in memory and the cache when Fetcher.kept was kept. A read that
// completes between that look and the join is kept there and no longer
// shared: the join fails with errLookAgain rather than fetch the chunk a
// second time.
func (f *Fetcher) joinLooked(b *Blob, off, n int64, want digest.Digest, prio Priority, kept uint64) (*item, error) {
	key := itemKey{blob: b.desc.Digest, off: off, n: n, want: want}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, ErrClosed
	}
	it, ok := f.items[key]
	if ok {
		b.count(func(c *counters) *atomicInt { return &c.shared }, 1)
		if it.g == nil && prio > it.prio {
			it.prio = prio
		}
		if it.waiters == 0 && it.g != nil {
			it.g.live++
		}
		it.waiters++
		return it, nil
	}
	if want != "" && f.kept.Load() != kept {
		// A chunk was kept since the caller looked for want: maybe want.
		return nil, errLookAgain
	}
	f.seq++
	// The waiter counts before the read is dispatched: a GET formed here
	// counts it among its live reads.
	it = &item{key: key, b: b, prio: prio, seq: f.seq, waiters: 1, done: make(chan struct{})}
	f.items[key] = it
	q := f.queueLocked(b.domain)
	q.pending = append(q.pending, it)
	f.dispatchLocked(q)
	return it, nil
}

// wait waits for a joined read, or leaves it when ctx ends first.
func (f *Fetcher) wait(ctx context.Context, it *item) ([]byte, error) {
	select {
	case <-it.done:
		return it.data, it.err
	case <-ctx.Done():
		f.leave(it)
		select {
		case <-it.done:
			if it.data != nil {
				return it.data, it.err
			}
		default:
		}
		return nil, ctx.Err()
	}
}

func (f *Fetcher) queueLocked(name string) *queue {
	q, ok := f.queues[name]
	if !ok {
		q = &queue{name: name}
		f.queues[name] = q
	}
	return q
}

// leave drops a waiter that gave up. A pending read nobody waits for is
// removed; a GET none of whose reads has waiters is cancelled, unless its
// request is out and it has chunks to keep (keepsLocked).
func (f *Fetcher) leave(it *item) {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-it.done:
		return
	default:
	}
	it.waiters--
	if it.waiters > 0 {
		return
	}
	if it.g == nil {
		q := f.queues[it.b.domain]
		for i, p := range q.pending {
			if p == it {
				q.pending = append(q.pending[:i], q.pending[i+1:]...)
				break
			}
		}
		f.finishLocked(it, nil, context.Canceled)
		return
	}
	g := it.g
	g.live--
	if g.live == 0 && !f.keepsLocked(g) {
		// Nobody wants these bytes any more: stop the GET, and make later
		// reads of the same bytes start afresh rather than join it. Items
		// already finished are no longer in f.items; g.next belongs to the
		// group's goroutine and is not read here.
		for _, p := range g.items {
			if f.items[p.key] == p {
				delete(f.items, p.key)
			}
		}
		g.cancel()
	}
}

// keepsLocked reports whether g, none of whose reads has a waiter any
// more, runs on: its request is out and some read still to fill is a
// verified chunk, which complete caches. A registry sends its response
// whether or not the client still reads it, and a GET of a few chunks is
// on the wire within a round trip, so stopping it saves few bytes and
// throws away those already sent; cached, they serve the next read of
// the chunk, which joins the GET or finds the chunk in the cache. Reads
// give up chunks that are needed next: a decode stops partway through
// the chunks it asked for, and the following decode reads the rest. A
// GET that ends (or fails) with no waiter is not sent again (get).
func (f *Fetcher) keepsLocked(g *group) bool {
	if !g.wire || f.cache == nil {
		return false
	}
	for _, p := range g.items {
		if p.key.want != "" && f.items[p.key] == p {
			return true
		}
	}
	return false
}

// onWire marks g's request as out, unless none of its reads has a waiter
// any more: then it reports false and nothing is sent.
func (f *Fetcher) onWire(g *group) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	g.wire = g.live > 0
	return g.wire
}

// offWire marks g's request as ended.
func (f *Fetcher) offWire(g *group) {
	f.mu.Lock()
	g.wire = false
	f.mu.Unlock()
}

// finishLocked completes it, waking its waiters.
func (f *Fetcher) finishLocked(it *item, data []byte, err error) {
	select {
	case <-it.done:
		return
	default:
	}
	if f.items[it.key] == it {
		delete(f.items, it.key)
	}
	it.data, it.err, it.buf = data, err, nil
	close(it.done)
}

// dispatchLocked starts GETs while q has pending reads and free streams.
// Background GETs use at most Streams-1 streams, keeping one for what a
// process waits on, and only one while processes wait on reads (an
// on-demand or prefetch GET in flight or ended less than BackgroundQuiet
// ago), so an application's reads share the link with one background GET
// rather than with several: TCP shares a link per connection.
//
// A prefetch or background GET's reads are chosen by the goroutine that
// sends it, once it runs, not here: reads that callers join in a burst
// (a file's chunks, a batch of files) are then pending together and share
// GETs, instead of the first few each taking a stream of their own. One
// such goroutine is starting at a time; it starts the next. An on-demand
// read, which a process waits on, goes out at once.
func (f *Fetcher) dispatchLocked(q *queue) {
	for f.mayStartLocked(q) {
		if q.pending[pick(q.pending)].prio != OnDemand {
			if !q.starting {
				q.starting = true
				f.wg.Add(1)
				go f.start(q)
			}
			return
		}
		g := f.formLocked(q)
		f.wg.Add(1)
		go f.run(g)
	}
}

// mayStartLocked reports whether q has a pending read a free stream may
// take now.
func (f *Fetcher) mayStartLocked(q *queue) bool {
	if q.running >= f.opts.Streams || len(q.pending) == 0 {
		return false
	}
	return q.pending[pick(q.pending)].prio != Background || f.backgroundMayStart(q)
}

// formLocked takes a stream and the group of q's next GET.
func (f *Fetcher) formLocked(q *queue) *group {
	g := f.coalesceLocked(q, pick(q.pending))
	q.running++
	if g.prio == Background {
		q.background++
	} else {
		q.urgent++
	}
	return g
}

// start forms a GET from q's pending reads, if a stream is still free,
// and runs it.
func (f *Fetcher) start(q *queue) {
	runtime.Gosched() // let the callers of a burst join first
	f.mu.Lock()
	q.starting = false
	if f.closed || !f.mayStartLocked(q) {
		f.mu.Unlock()
		f.wg.Done()
		return
	}
	g := f.formLocked(q)
	f.dispatchLocked(q)
	f.mu.Unlock()
	f.run(g)
}

// backgroundMayStart reports whether q may start a Background GET: one
// stream always stays free for reads a process waits on, and while such
// reads run (or ran within BackgroundQuiet) only one Background GET does.
func (f *Fetcher) backgroundMayStart(q *queue) bool {
	if f.opts.Streams == 1 {
		return true
	}
	if q.running >= f.opts.Streams-1 {
		return false
	}
	if q.urgent > 0 || time.Since(q.lastUrgent) < f.opts.BackgroundQuiet {
		return q.background < 1
	}
	return true
}

// pick returns the index of the highest-priority, oldest pending read.
func pick(p []*item) int {
	best := 0
	for i, it := range p[1:] {
		if it.prio > p[best].prio || it.prio == p[best].prio && it.seq < p[best].seq {
			best = i + 1
		}
	}
	return best
}

// coalesceLocked takes pending[lead] out of q with the pending reads of
// the same blob that continue it (of any priority) or precede it (of the
// same priority), adjacent or at most MaxGap bytes apart, up to
// MaxRequest bytes, and makes their group.
func (f *Fetcher) coalesceLocked(q *queue, lead int) *group {
	first := q.pending[lead]
	items := []*item{first}
	q.pending = append(q.pending[:lead], q.pending[lead+1:]...)
	lo, hi := first.key.off, first.end()
	limit := f.opts.MaxRequest
	if first.prio == Background {
		limit = min(limit, f.opts.BackgroundRequest)
	}
	gap := f.opts.MaxGap
	for grew := true; grew; {
		grew = false
		for i, p := range q.pending {
			if p.key.blob != first.key.blob {
				continue
			}
			switch {
			case p.key.off >= hi && p.key.off-hi <= gap && p.end()-lo <= limit:
				items = append(items, p)
				hi = p.end()
			case p.end() <= lo && lo-p.end() <= gap && hi-p.key.off <= limit && p.prio == first.prio:
				items = append([]*item{p}, items...)
				lo = p.key.off
			default:
				continue
			}
			q.pending = append(q.pending[:i], q.pending[i+1:]...)
			grew = true
			break
		}
	}
	ctx, cancel := context.WithCancel(f.ctx)
	g := &group{b: first.b, q: q, items: items, pos: lo, end: hi, prio: first.prio, ctx: ctx, cancel: cancel}
	for _, it := range items {
		it.g = g
		it.buf = make([]byte, it.key.n)
		if it.waiters > 0 {
			g.live++
		}
		if it != first {
			it.b.count(func(c *counters) *atomicInt { return &c.coalesced }, 1)
		}
	}
	return g
}

// run performs g's GET with retries, then frees its stream.
func (f *Fetcher) run(g *group) {
	defer f.wg.Done()
	err := g.b.get(g)
	f.mu.Lock()
	for _, it := range g.items[g.next:] {
		f.finishLocked(it, nil, err)
	}
	g.q.running--
	if g.prio == Background {
		g.q.background--
	} else {
		g.q.urgent--
		g.q.lastUrgent = time.Now()
	}
	f.dispatchLocked(g.q)
	f.mu.Unlock()
	g.cancel()
}

// fill reads the body into g's items from g.pos up to upto, finishing
// each item as its last byte arrives and discarding the bytes between
// items. It returns io.ErrUnexpectedEOF if the body ends early.
func (g *group) fill(f *Fetcher, r io.Reader, upto int64) error {
	for g.pos < upto {
		it := g.items[g.next]
		var k int64
		var err error
		if g.pos < it.key.off {
			k, err = io.CopyN(io.Discard, r, min(it.key.off, upto)-g.pos)
			g.b.count(func(c *counters) *atomicInt { return &c.gap }, k)
		} else {
			var n int
			n, err = io.ReadFull(r, it.buf[g.pos-it.key.off:min(it.key.n, upto-it.key.off)])
			k = int64(n)
		}
		g.pos += k
		if g.pos == it.end() {
			g.next++
			f.complete(it)
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// complete checks a filled item's digest, caches it, and finishes it.
func (f *Fetcher) complete(it *item) {
	data, err, kept := it.buf, error(nil), false
	if want := it.key.want; want != "" {
		if got := digest.SHA256.FromBytes(data); got != want {
			data, err = nil, fmt.Errorf("%w: got %s, want %s", ErrDigestMismatch, got, want)
		} else if f.held != nil {
			f.held.add(want, data)
			kept = true
		} else if f.cache != nil {
			// Cache even if every waiter left: the bytes were paid for.
			perr := f.cache.PutBytes(f.ctx, want, data)
			if perr != nil && !errors.Is(perr, context.Canceled) {
				f.log.Warn("remote: cache chunk", "digest", want, "error", perr)
			}
			kept = perr == nil
		}
	}
	f.mu.Lock()
	if kept {
		// Before the read leaves f.items: a reader that missed the chunk
		// and joins after that learns it may now find it (joinLooked).
		f.kept.Add(1)
	}
	f.finishLocked(it, data, err)
	f.mu.Unlock()
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
