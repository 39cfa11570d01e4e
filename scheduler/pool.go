package scheduler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// pool holds the instances of one function and the requests waiting for
// them. Its lock is never held while calling the Starter or an Instance,
// nor while taking another pool's lock.
type pool struct {
	s *Scheduler

	mu  sync.Mutex
	fn  Function // the current revision
	gen uint64   // counts revision changes and the shutdown
	// instances are ready instances, draining ones included.
	instances []*inst
	starting  int // cold starts of the current generation in flight
	stale     int // cold starts of older generations in flight
	waiters   []*waiter
	shutErr   error // set once: ErrFunctionDeleted or ErrClosed

	provisioned   int
	nextProvision time.Time           // no provisioning start before this
	backoff       time.Duration       // after a failed start while provisioned
	lastStartErr  error               // the last start's error; nil after a success
	sessions      map[string]*session // session affinity (session.go)

	stats poolStats
}

// inst is an instance in a pool.
type inst struct {
	Instance
	fn       Function // the revision it was started with
	created  time.Time
	busy     int
	lastUsed time.Time
	draining bool          // serves no new leases; stops when idle
	gone     bool          // out of the pool; stopping or stopped
	out      chan struct{} // closed when gone, ends the Done watcher
}

type waiter struct {
	ch chan result // buffered: delivery never blocks
	// session is the request's session key, pin the instance it waits
	// for (session.go); both empty for requests without a session.
	session string
	pin     *inst
	// delivered is set, under the pool's mu, when a result was sent.
	delivered bool
}

type result struct {
	lease *Lease
	err   error
}

func newPool(s *Scheduler, fn Function) *pool {
	return &pool{s: s, fn: fn}
}

func (p *pool) acquire(ctx context.Context) (*Lease, error) {
	p.mu.Lock()
	if p.shutErr != nil {
		err := p.shutErr
		p.mu.Unlock()
		return nil, err
	}
	p.stats.acquires++
	if in := p.pickLocked(); in != nil {
		in.busy++
		p.mu.Unlock()
		return &Lease{p: p, in: in}, nil
	}
	if err := p.admitLocked(ctx); err != nil {
		p.mu.Unlock()
		return nil, err
	}
	w := &waiter{ch: make(chan result, 1)}
	p.waiters = append(p.waiters, w)
	p.mu.Unlock()
	p.schedule()
	return p.wait(ctx, w)
}

// admitLocked decides whether a request without a free slot may queue.
func (p *pool) admitLocked(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		p.stats.canceled++
		return err
	}
	if p.fn.ProvisionedOnly && p.provisioned == 0 {
		p.stats.throttled++
		return ErrOnDemandDisabled
	}
	if !p.s.fits(p.fn.MemoryMB) {
		p.stats.throttled++
		return fmt.Errorf("%w: an instance needs %d MB, the host's memory budget is %d MB",
			ErrThrottled, p.fn.MemoryMB, p.s.opts.MemoryBudgetMB)
	}
	if len(p.waiters) >= p.s.opts.MaxQueue {
		p.stats.throttled++
		return fmt.Errorf("%w: %d requests already wait", ErrThrottled, len(p.waiters))
	}
	return nil
}

// wait waits for w's result, the queue deadline or the caller's ctx.
func (p *pool) wait(ctx context.Context, w *waiter) (*Lease, error) {
	timer := p.s.clock.NewTimer(p.s.opts.QueueTimeout)
	defer timer.Stop()
	var err error
	select {
	case r := <-w.ch:
		return r.lease, r.err
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C():
		err = fmt.Errorf("%w: no instance slot within %s", ErrThrottled, p.s.opts.QueueTimeout)
	}
	p.mu.Lock()
	delivered := w.delivered
	if !delivered {
		p.waiters = slices.DeleteFunc(p.waiters, func(x *waiter) bool { return x == w })
	}
	if errors.Is(err, ErrThrottled) {
		p.stats.throttled++
	} else {
		p.stats.canceled++
	}
	p.mu.Unlock()
	if delivered {
		// A result arrived as the wait ended: hand its slot back.
		if r := <-w.ch; r.lease != nil {
			r.lease.Release()
		}
	}
	return nil, err
}

// pickLocked returns the least loaded instance of the current revision
// with a free slot, or nil.
func (p *pool) pickLocked() *inst {
	var best *inst
	limit := p.fn.concurrency()
	for _, in := range p.instances {
		if in.draining || in.busy >= limit {
			continue
		}
		if best == nil || in.busy < best.busy {
			best = in
			if in.busy == 0 {
				break
			}
		}
	}
	return best
}

// failUnpinnedLocked fails the oldest n waiters a start was for: those
// not pinned to a session's instance.
func (p *pool) failUnpinnedLocked(n int, err error) {
	if !p.fn.SessionAffinity {
		p.deliverLocked(min(n, len(p.waiters)), result{err: err})
		return
	}
	p.waiters = slices.DeleteFunc(p.waiters, func(w *waiter) bool {
		if n == 0 || (w.pin != nil && !w.pin.gone && !w.pin.draining) {
			return false
		}
		n--
		w.delivered = true
		w.ch <- result{err: err}
		return true
	})
}

// deliverLocked sends r to the oldest n waiters and drops them.
func (p *pool) deliverLocked(n int, r result) {
	for _, w := range p.waiters[:n] {
		w.delivered = true
		w.ch <- r
	}
	clear(p.waiters[:n]) // let the backing array drop them
	p.waiters = p.waiters[n:]
}

// dispatchLocked hands free slots to waiters, oldest first. Without
// session affinity the first waiter that finds no slot ends the pass;
// with it, later waiters may still be pinned to an instance with a free
// slot.
func (p *pool) dispatchLocked() {
	for i := 0; i < len(p.waiters); {
		w := p.waiters[i]
		in := p.slotForLocked(w)
		if in == nil {
			if !p.fn.SessionAffinity {
				return
			}
			i++
			continue
		}
		in.busy++
		p.bindLocked(w.session, in)
		r := result{lease: &Lease{p: p, in: in}}
		if i == 0 {
			p.deliverLocked(1, r)
			continue
		}
		w.delivered = true
		w.ch <- r
		p.waiters = slices.Delete(p.waiters, i, i+1)
	}
}

// activeLocked counts instances of the current revision, ready or
// starting.
func (p *pool) activeLocked() int {
	n := p.starting
	for _, in := range p.instances {
		if !in.draining {
			n++
		}
	}
	return n
}

// canStartLocked reports whether the instance cap allows one more start
// and an instance could fit the memory budget at all.
func (p *pool) canStartLocked() bool {
	return p.shutErr == nil && p.s.fits(p.fn.MemoryMB) &&
		(p.fn.MaxInstances <= 0 || p.activeLocked() < p.fn.MaxInstances)
}

// startsNeededLocked is how many more cold starts the waiters need: they
// fill ceil(waiters/concurrency) instances, less those already starting.
func (p *pool) startsNeededLocked() int {
	if p.fn.ProvisionedOnly {
		// Waiters take provisioned slots as they free; provision starts.
		return 0
	}
	c := p.fn.concurrency()
	return (p.unpinnedLocked()+c-1)/c - p.starting
}

// unpinnedLocked counts the waiters not waiting for their session's
// instance: those a start serves.
func (p *pool) unpinnedLocked() int {
	if !p.fn.SessionAffinity {
		return len(p.waiters)
	}
	n := 0
	for _, w := range p.waiters {
		if w.pin == nil || w.pin.gone || w.pin.draining {
			n++
		}
	}
	return n
}

// schedule hands out free slots and starts the instances waiters still
// need, as far as the instance cap and the memory budget allow.
func (p *pool) schedule() {
	for {
		p.mu.Lock()
		p.dispatchLocked()
		if p.startsNeededLocked() <= 0 || !p.canStartLocked() {
			p.mu.Unlock()
			return
		}
		if !p.startAndUnlock() {
			return
		}
	}
}

// startAndUnlock, called with p.mu held, takes memory for one start of
// the current revision, begins it and reports true; p.mu is unlocked on
// return. When the budget is full it reports false, after stopping an
// idle instance of another function if stops under way will not free
// enough: p is registered as blocked, and freed memory wakes it.
func (p *pool) startAndUnlock() bool {
	ok, reclaim := p.s.reserve(p, p.fn.MemoryMB)
	if !ok {
		p.mu.Unlock()
		if reclaim {
			p.s.reclaimIdle(p)
		}
		return false
	}
	fn, gen := p.fn, p.gen
	p.starting++
	p.stats.coldStarts++
	// Counted before p.mu is released, so Close, which shuts every pool
	// before it waits, never sees the count rise from zero.
	p.s.wg.Add(1)
	p.mu.Unlock()
	go p.start(fn, gen)
	return true
}

// start runs one cold start.
func (p *pool) start(fn Function, gen uint64) {
	defer p.s.wg.Done()
	t := p.s.clock.Now()
	in, err := p.s.starter.Start(p.s.ctx, fn)
	if err != nil {
		err = &StartError{Err: err}
	}
	p.started(fn, gen, in, err, p.s.clock.Now().Sub(t))
}

// started takes the outcome of a cold start.
func (p *pool) started(fn Function, gen uint64, instance Instance, err error, took time.Duration) {
	p.mu.Lock()
	current := gen == p.gen
	if current {
		p.starting--
	} else {
		p.stale--
	}
	if err != nil {
		p.startFailedLocked(current, err)
		p.mu.Unlock()
		if p.s.ctx.Err() == nil {
			p.s.log.Warn("cold start failed", "function", fn.Name, "revision", fn.Revision, "after", took, "error", err)
		}
		p.s.unreserve(fn.MemoryMB, false)
		if current {
			// Waiters this start did not fail still need instances.
			p.schedule()
		}
		p.s.forgetIfDrained(p)
		return
	}
	p.stats.observeStart(took)
	now := p.s.clock.Now()
	in := &inst{Instance: instance, fn: fn, created: now, lastUsed: now, out: make(chan struct{})}
	p.s.wg.Add(1) // the instance's life, until its Stop returned
	if !current {
		// Started for a configuration that is gone.
		in.gone = true
		p.mu.Unlock()
		p.stop(in)
		p.schedule()
		return
	}
	p.backoff = 0
	p.lastStartErr = nil
	p.instances = append(p.instances, in)
	p.dispatchLocked()
	idle := in.busy == 0
	p.s.wg.Add(1)
	go p.watch(in)
	p.mu.Unlock()
	p.s.log.Debug("instance started", "function", fn.Name, "revision", fn.Revision, "instance", instance.ID(), "took", took)
	if idle {
		p.s.idleInstance()
	}
}

// startFailedLocked fails the waiters a failed start was for: the oldest
// Concurrency of them. Later waiters keep their place and get a start of
// their own, so each request sees at most one failed start and a broken
// image never loops.
func (p *pool) startFailedLocked(current bool, err error) {
	p.stats.coldStartFailures++
	if current {
		p.lastStartErr = err
	}
	if p.provisioned > 0 {
		p.backoff = min(max(2*p.backoff, p.s.opts.ProvisionRetry), maxProvisionBackoff)
		p.nextProvision = p.s.clock.Now().Add(p.backoff)
	}
	if current {
		p.failUnpinnedLocked(p.fn.concurrency(), err)
	}
}
