package scheduler

import "time"

// Idle reclaim and provisioned instances. An instance is spare when its
// pool has more instances of the current revision than its provisioned
// target; spare instances idle for Options.IdleTimeout stop, and so may
// the longest-idle spare instance when another function needs its memory.

// idleTimeout is how long the pool's instances may sit idle: the
// function's own IdleTimeout, else the scheduler's.
func (p *pool) idleTimeoutLocked() time.Duration {
	if p.fn.IdleTimeout > 0 {
		return p.fn.IdleTimeout
	}
	return p.s.opts.IdleTimeout
}

// reapIdle stops spare instances idle for their idle timeout at now.
func (p *pool) reapIdle(now time.Time) {
	p.mu.Lock()
	idle := p.idleTimeoutLocked()
	var stop []*inst
	spare := p.activeLocked() - p.provisioned
	for _, in := range p.instances {
		if len(stop) >= spare {
			break
		}
		if in.busy == 0 && !in.draining && now.Sub(in.lastUsed) >= idle {
			stop = append(stop, in)
		}
	}
	for _, in := range stop {
		p.goneLocked(in)
	}
	p.mu.Unlock()
	for _, in := range stop {
		p.s.log.Debug("stopping idle instance", "function", in.fn.Name, "instance", in.ID())
		p.stop(in)
	}
}

// oldestSpareIdle returns when the longest-idle spare instance was last
// used.
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

// stopSpareIdle stops the longest-idle spare instance if it is still the
// one last used at at, and reports whether it did.
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
	p.stop(in)
	return true
}

func (p *pool) setProvisioned(fn Function, target int) {
	p.mu.Lock()
	stop := p.updateLocked(fn)
	if p.shutErr == nil {
		p.provisioned = max(target, 0)
	}
	p.backoff, p.nextProvision = 0, time.Time{}
	p.mu.Unlock()
	for _, in := range stop {
		p.stop(in)
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

// provision starts instances until the provisioned target is met, as far
// as the instance cap, the memory budget and the back-off after a failed
// start allow.
func (p *pool) provision(now time.Time) {
	for {
		p.mu.Lock()
		if p.activeLocked() >= p.provisioned || now.Before(p.nextProvision) || !p.canStartLocked() {
			p.mu.Unlock()
			return
		}
		if !p.startAndUnlock() {
			return
		}
	}
}
