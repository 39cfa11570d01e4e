package scheduler

import "slices"

// How instances leave a pool: they die (watch), fail a request (release
// with failed), drain after an update or removal (update, shut), or idle
// away (idle.go). Each is taken out under the pool's lock by goneLocked
// and stopped once, outside it, by stop.

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
	p.stop(in)
	p.schedule()
	p.provision(p.s.clock.Now())
}

// goneLocked takes in out of the pool; the caller stops it.
func (p *pool) goneLocked(in *inst) {
	in.gone = true
	close(in.out)
	if i := slices.Index(p.instances, in); i >= 0 {
		p.instances = slices.Delete(p.instances, i, i+1)
	}
}

// release ends a lease on in; failed evicts the instance.
func (p *pool) release(in *inst, failed bool) {
	p.mu.Lock()
	in.busy--
	in.lastUsed = p.s.clock.Now()
	switch {
	case in.gone:
		p.mu.Unlock()
	case failed:
		p.goneLocked(in)
		p.stats.evicted++
		p.mu.Unlock()
		p.stop(in)
		p.schedule()
	case in.draining:
		stop := in.busy == 0
		if stop {
			p.goneLocked(in)
		}
		p.mu.Unlock()
		if stop {
			p.stop(in)
		}
	default:
		p.dispatchLocked()
		idle := in.busy == 0
		p.mu.Unlock()
		if idle {
			p.s.idleInstance()
		}
	}
}

// update makes fn the current revision.
func (p *pool) update(fn Function) {
	p.mu.Lock()
	stop := p.updateLocked(fn)
	p.mu.Unlock()
	for _, in := range stop {
		p.stop(in)
	}
	p.schedule()
	p.provision(p.s.clock.Now())
}

// updateLocked makes fn current; when its revision is new, instances and
// starts of the old one drain, and it returns the idle instances for the
// caller to stop.
func (p *pool) updateLocked(fn Function) []*inst {
	changed := fn.Revision != p.fn.Revision
	p.fn = fn
	if !changed || p.shutErr != nil {
		return nil
	}
	p.lastStartErr = nil // of the old configuration
	return p.drainLocked(false)
}

// drainLocked starts a new generation: starts in flight become stale, and
// every instance drains. It returns the instances to stop now: the idle
// ones, or all when force is set.
func (p *pool) drainLocked(force bool) []*inst {
	p.gen++
	p.stale += p.starting
	p.starting = 0
	var stop []*inst
	for _, in := range slices.Clone(p.instances) {
		in.draining = true
		if force || in.busy == 0 {
			p.goneLocked(in)
			stop = append(stop, in)
		}
	}
	return stop
}

// shut fails the waiters with reason and drains every instance. It does
// nothing to a pool already shut.
func (p *pool) shut(reason error) {
	p.mu.Lock()
	if p.shutErr != nil {
		p.mu.Unlock()
		return
	}
	p.shutErr = reason
	p.provisioned = 0
	p.deliverLocked(len(p.waiters), result{err: reason})
	stop := p.drainLocked(false)
	p.mu.Unlock()
	for _, in := range stop {
		p.stop(in)
	}
}

// stopBusy stops the instances still draining with leases out, for a
// shutdown that ran out of time, and returns how many.
func (p *pool) stopBusy() int {
	p.mu.Lock()
	stop := p.drainLocked(true)
	p.mu.Unlock()
	for _, in := range stop {
		p.stop(in)
	}
	return len(stop)
}

// drained reports whether a shut pool has nothing left running.
func (p *pool) drained() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.shutErr != nil && len(p.instances) == 0 && p.starting+p.stale == 0
}
