package scheduler

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// pool holds the instances of one function and the requests waiting for
// them. Its lock is never held while calling out of the package or while
// taking another pool's lock.
type pool struct {
	s *Scheduler

	mu        sync.Mutex
	fn        Function // the current revision
	instances []*inst  // ready instances, draining ones included
	starting  int      // cold starts in flight
	waiters   []*waiter
	removed   bool

	provisioned   int
	nextProvision time.Time     // no provisioning start before this
	backoff       time.Duration // after a failed provisioning start

	stats poolStats
}

// inst is an instance in a pool.
type inst struct {
	Instance
	fn       Function // the revision it was started with
	busy     int
	lastUsed time.Time
	draining bool          // serves no new leases; stops when idle
	gone     bool          // out of the pool; stopping or stopped
	out      chan struct{} // closed when gone, ends the Done watcher
}

type waiter struct {
	ch        chan result // buffered: delivery never blocks
	delivered bool        // guarded by the pool's mu
}

type result struct {
	lease *Lease
	err   error
}

func newPool(s *Scheduler, fn Function) *pool {
	return &pool{s: s, fn: fn}
}

func (p *pool) acquire(ctx context.Context, fn Function) (*Lease, error) {
	p.mu.Lock()
	if p.removed {
		p.mu.Unlock()
		return nil, ErrFunctionDeleted
	}
	p.stats.acquires++
	if in := p.pickLocked(); in != nil {
		in.busy++
		p.mu.Unlock()
		return &Lease{p: p, in: in}, nil
	}
	if len(p.waiters) >= p.s.opts.MaxQueue {
		p.stats.throttled++
		p.mu.Unlock()
		return nil, ErrThrottled
	}
	w := &waiter{ch: make(chan result, 1)}
	p.waiters = append(p.waiters, w)
	p.mu.Unlock()
	p.schedule()

	timer := time.NewTimer(p.s.opts.QueueTimeout)
	defer timer.Stop()
	var err error
	select {
	case r := <-w.ch:
		return r.lease, r.err
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = ErrThrottled
	}
	p.mu.Lock()
	if w.delivered {
		p.mu.Unlock()
		// A slot arrived as the wait ended: give it back.
		if r := <-w.ch; r.lease != nil {
			r.lease.Release()
		}
		return nil, err
	}
	p.dropWaiterLocked(w)
	if err == ErrThrottled {
		p.stats.throttled++
	}
	p.mu.Unlock()
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
		}
	}
	return best
}

func (p *pool) dropWaiterLocked(w *waiter) {
	for i, x := range p.waiters {
		if x == w {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			return
		}
	}
}

func (p *pool) deliverLocked(w *waiter, r result) {
	w.delivered = true
	w.ch <- r
}

// dispatchLocked hands free slots to waiters, oldest first.
func (p *pool) dispatchLocked() {
	for len(p.waiters) > 0 {
		in := p.pickLocked()
		if in == nil {
			return
		}
		in.busy++
		p.deliverLocked(p.waiters[0], result{lease: &Lease{p: p, in: in}})
		p.waiters = p.waiters[1:]
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

func (p *pool) canStartLocked() bool {
	return !p.removed && (p.fn.MaxInstances <= 0 || p.activeLocked() < p.fn.MaxInstances)
}

// startsNeededLocked is how many more cold starts the waiters need: they
// fill ceil(waiters/concurrency) instances, less those already starting.
func (p *pool) startsNeededLocked() int {
	c := p.fn.concurrency()
	return (len(p.waiters)+c-1)/c - p.starting
}

// schedule hands out free slots and starts the instances waiters still
// need, as far as the instance cap and the memory budget allow. When the
// budget is full it reclaims an idle instance of another function; the
// memory it frees calls schedule again.
func (p *pool) schedule() {
	for {
		p.mu.Lock()
		p.dispatchLocked()
		if p.startsNeededLocked() <= 0 || !p.canStartLocked() {
			p.mu.Unlock()
			return
		}
		fn := p.fn
		p.mu.Unlock()

		if !p.s.reserve(fn.MemoryMB) {
			p.s.reclaimIdle(p)
			return
		}
		p.mu.Lock()
		if fn.Revision != p.fn.Revision || p.startsNeededLocked() <= 0 || !p.canStartLocked() {
			p.mu.Unlock()
			p.s.unreserve(fn.MemoryMB)
			return
		}
		p.starting++
		p.stats.coldStarts++
		p.mu.Unlock()
		p.start(fn)
	}
}

// start starts an instance of fn in the background; memory for it is
// reserved and p.starting counts it.
func (p *pool) start(fn Function) {
	p.s.wg.Add(1)
	go func() {
		defer p.s.wg.Done()
		t := time.Now()
		in, err := p.s.starter.Start(p.s.ctx, fn)
		p.started(fn, in, err, time.Since(t))
	}()
}

// started takes the outcome of a cold start.
func (p *pool) started(fn Function, instance Instance, err error, took time.Duration) {
	p.mu.Lock()
	p.starting--
	p.stats.startSeconds += took.Seconds()
	if err != nil {
		p.stats.coldStartFailures++
		// The requests this start was for get its error; later ones will
		// start their own instance, so a bad image fails each request
		// once and never loops.
		n := min(p.fn.concurrency(), len(p.waiters))
		for _, w := range p.waiters[:n] {
			p.deliverLocked(w, result{err: err})
		}
		p.waiters = p.waiters[n:]
		if p.provisioned > 0 {
			p.backoff = min(max(2*p.backoff, p.s.opts.ProvisionRetry), 5*time.Minute)
			p.nextProvision = time.Now().Add(p.backoff)
		}
		p.mu.Unlock()
		p.s.log.Warn("cold start failed", "function", fn.Name, "error", err)
		p.s.unreserve(fn.MemoryMB)
		return
	}
	in := &inst{Instance: instance, fn: fn, lastUsed: time.Now(), out: make(chan struct{})}
	if p.removed || fn.Revision != p.fn.Revision {
		// Started for a configuration that is gone.
		in.gone = true
		p.mu.Unlock()
		p.s.stopInstance(in)
		p.schedule()
		return
	}
	p.backoff = 0
	p.instances = append(p.instances, in)
	p.dispatchLocked()
	p.mu.Unlock()
	p.s.wg.Add(1)
	go p.watch(in)
	p.schedule()
}

// watch evicts in when it dies.
func (p *pool) watch(in *inst) {
	defer p.s.wg.Done()
	select {
	case <-in.Done():
	case <-in.out:
		return
	}
	p.mu.Lock()
	if in.gone {
		p.mu.Unlock()
		return
	}
	p.goneLocked(in)
	p.stats.evicted++
	p.mu.Unlock()
	p.s.log.Warn("instance died; evicted", "function", in.fn.Name, "instance", in.ID())
	p.s.stopInstance(in)
	p.schedule()
}

// goneLocked takes in out of the pool; the caller stops it.
func (p *pool) goneLocked(in *inst) {
	in.gone = true
	close(in.out)
	for i, x := range p.instances {
		if x == in {
			p.instances = append(p.instances[:i], p.instances[i+1:]...)
			break
		}
	}
}

// release ends a lease. failed evicts the instance.
func (p *pool) release(in *inst, failed bool) {
	p.mu.Lock()
	in.busy--
	in.lastUsed = time.Now()
	var stop, reschedule bool
	switch {
	case in.gone:
	case failed:
		p.goneLocked(in)
		p.stats.evicted++
		stop, reschedule = true, true
	case in.draining && in.busy == 0:
		p.goneLocked(in)
		stop = true
	default:
		p.dispatchLocked()
	}
	p.mu.Unlock()
	if stop {
		p.s.stopInstance(in)
	}
	if reschedule {
		p.schedule()
	}
}

// update makes fn the current revision; instances of other revisions
// drain.
func (p *pool) update(fn Function) {
	p.mu.Lock()
	stop := p.updateLocked(fn)
	p.mu.Unlock()
	for _, in := range stop {
		p.s.stopInstance(in)
	}
	p.schedule()
}

func (p *pool) updateLocked(fn Function) (stop []*inst) {
	changed := fn.Revision != p.fn.Revision
	p.fn = fn
	if !changed {
		return nil
	}
	for _, in := range append([]*inst(nil), p.instances...) {
		if in.fn.Revision == fn.Revision {
			continue
		}
		in.draining = true
		if in.busy == 0 {
			p.goneLocked(in)
			stop = append(stop, in)
		}
	}
	return stop
}

// remove fails the waiters and drains every instance.
func (p *pool) remove() { p.shut(ErrFunctionDeleted) }

// close is remove at shutdown: waiters get ErrClosed.
func (p *pool) close() { p.shut(ErrClosed) }

func (p *pool) shut(reason error) {
	p.mu.Lock()
	p.removed = true
	p.provisioned = 0
	for _, w := range p.waiters {
		p.deliverLocked(w, result{err: reason})
	}
	p.waiters = nil
	var stop []*inst
	for _, in := range append([]*inst(nil), p.instances...) {
		in.draining = true
		if in.busy == 0 || reason == ErrClosed {
			p.goneLocked(in)
			stop = append(stop, in)
		}
	}
	p.mu.Unlock()
	for _, in := range stop {
		p.s.stopInstance(in)
	}
}

// reapIdle stops instances idle for IdleTimeout beyond the provisioned
// target.
func (p *pool) reapIdle(now time.Time) {
	p.mu.Lock()
	var stop []*inst
	spare := p.activeLocked() - p.provisioned
	for _, in := range append([]*inst(nil), p.instances...) {
		if spare <= 0 {
			break
		}
		if in.busy == 0 && !in.draining && now.Sub(in.lastUsed) >= p.s.opts.IdleTimeout {
			p.goneLocked(in)
			stop = append(stop, in)
			spare--
		}
	}
	p.mu.Unlock()
	for _, in := range stop {
		p.s.log.Debug("stopping idle instance", "function", in.fn.Name, "instance", in.ID())
		p.s.stopInstance(in)
	}
}

// oldestSpareIdle returns when the longest-idle instance beyond the
// provisioned target was last used.
func (p *pool) oldestSpareIdle() (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if in := p.oldestSpareIdleLocked(); in != nil {
		return in.lastUsed, true
	}
	return time.Time{}, false
}

func (p *pool) oldestSpareIdleLocked() *inst {
	if p.activeLocked() <= p.provisioned {
		return nil
	}
	var oldest *inst
	for _, in := range p.instances {
		if in.busy == 0 && !in.draining && (oldest == nil || in.lastUsed.Before(oldest.lastUsed)) {
			oldest = in
		}
	}
	return oldest
}

// stopSpareIdle stops the oldest spare idle instance if it is still the
// one last used at at.
func (p *pool) stopSpareIdle(at time.Time) bool {
	p.mu.Lock()
	in := p.oldestSpareIdleLocked()
	if in == nil || !in.lastUsed.Equal(at) {
		p.mu.Unlock()
		return false
	}
	p.goneLocked(in)
	p.mu.Unlock()
	p.s.log.Debug("stopping idle instance for memory", "function", in.fn.Name, "instance", in.ID())
	p.s.stopInstance(in)
	return true
}

func (p *pool) setProvisioned(fn Function, target int) {
	p.mu.Lock()
	stop := p.updateLocked(fn)
	p.provisioned = max(target, 0)
	p.backoff, p.nextProvision = 0, time.Time{}
	p.mu.Unlock()
	for _, in := range stop {
		p.s.stopInstance(in)
	}
}

func (p *pool) provisionedStatus() (target, current int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, in := range p.instances {
		if !in.draining {
			current++
		}
	}
	return p.provisioned, current
}

// provision starts instances until the provisioned target is met, backing
// off after failures.
func (p *pool) provision(now time.Time) {
	for {
		p.mu.Lock()
		if p.removed || p.activeLocked() >= p.provisioned || now.Before(p.nextProvision) || !p.canStartLocked() {
			p.mu.Unlock()
			return
		}
		fn := p.fn
		p.mu.Unlock()
		if !p.s.reserve(fn.MemoryMB) {
			p.s.reclaimIdle(p)
			return
		}
		p.mu.Lock()
		if p.removed || fn.Revision != p.fn.Revision || p.activeLocked() >= p.provisioned {
			p.mu.Unlock()
			p.s.unreserve(fn.MemoryMB)
			return
		}
		p.starting++
		p.stats.coldStarts++
		p.mu.Unlock()
		p.start(fn)
	}
}

// Lease is one request's slot on an instance. Exactly one of Release or
// Fail must be called; later calls do nothing.
type Lease struct {
	p     *pool
	in    *inst
	ended atomic.Bool
}

// Instance returns the leased instance.
func (l *Lease) Instance() Instance { return l.in.Instance }

// Release frees the slot.
func (l *Lease) Release() {
	if !l.ended.Swap(true) {
		l.p.release(l.in, false)
	}
}

// Fail frees the slot and evicts the instance, which could not serve the
// request (its connection broke or was refused).
func (l *Lease) Fail(err error) {
	if !l.ended.Swap(true) {
		l.p.s.log.Warn("instance failed a request; evicted", "function", l.in.fn.Name, "instance", l.in.ID(), "error", err)
		l.p.release(l.in, true)
	}
}
