package scheduler

import (
	"context"
	"time"
)

// The host's memory budget. Every instance holds its function's MemoryMB
// from the moment its start is decided until its Stop returned. A pool
// that finds the budget full registers as blocked and, unless stops
// already under way will free enough, stops one idle instance of another
// function beyond its provisioned target. Blocked pools are woken when
// memory is freed or when an instance anywhere becomes idle, since that
// instance can then be reclaimed for them.

// reserve takes mb from the budget for p. When it does not fit, p is
// registered as blocked, and reclaim reports whether the caller should
// stop an idle instance elsewhere to make room.
func (s *Scheduler) reserve(p *pool, mb int) (ok, reclaim bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	budget := s.opts.MemoryBudgetMB
	if budget <= 0 || s.memory+mb <= budget {
		s.memory += mb
		if _, ok := s.blocked[p]; ok {
			delete(s.blocked, p)
			s.nblocked.Store(int32(len(s.blocked)))
		}
		return true, false
	}
	if _, ok := s.blocked[p]; !ok {
		s.blocked[p] = struct{}{}
		s.nblocked.Store(int32(len(s.blocked)))
	}
	return false, s.memory-s.freeing+mb > budget
}

// fits reports whether one instance of mb could ever run within the
// budget.
func (s *Scheduler) fits(mb int) bool {
	return s.opts.MemoryBudgetMB <= 0 || mb <= s.opts.MemoryBudgetMB
}

// unreserve returns mb to the budget, stopping tells that it was held by
// an instance being stopped, and blocked pools try again.
func (s *Scheduler) unreserve(mb int, stopping bool) {
	s.mu.Lock()
	s.memory -= mb
	if stopping {
		s.freeing -= mb
	}
	s.mu.Unlock()
	s.kickBlocked()
}

// idleInstance is told that an instance became idle: pools waiting for
// memory may reclaim it. It costs one atomic load when none wait.
func (s *Scheduler) idleInstance() {
	if s.nblocked.Load() > 0 {
		s.kickBlocked()
	}
}

// kickBlocked lets every pool waiting for memory try again; those still
// short register again.
func (s *Scheduler) kickBlocked() {
	s.mu.Lock()
	if len(s.blocked) == 0 {
		s.mu.Unlock()
		return
	}
	pools := make([]*pool, 0, len(s.blocked))
	for p := range s.blocked {
		pools = append(pools, p)
	}
	clear(s.blocked)
	s.nblocked.Store(0)
	s.mu.Unlock()
	now := s.clock.Now()
	for _, p := range pools {
		p.schedule()
		p.provision(now)
	}
}

// reclaimIdle stops the longest-idle instance beyond its provisioned
// target in any pool but except, to make room in the memory budget. It
// reports whether it found one.
func (s *Scheduler) reclaimIdle(except *pool) bool {
	var best *pool
	var bestAt time.Time
	for _, p := range s.allPools() {
		if p == except {
			continue
		}
		if at, ok := p.oldestSpareIdle(); ok && (best == nil || at.Before(bestAt)) {
			best, bestAt = p, at
		}
	}
	return best != nil && best.stopSpareIdle(bestAt)
}

// stop stops in, which is out of the pool, in the background and returns
// its memory. The instance's count in s.wg, taken when it started, ends
// when Stop returns.
func (p *pool) stop(in *inst) {
	s := p.s
	s.mu.Lock()
	s.freeing += in.fn.MemoryMB
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		if s.opts.Stopping != nil {
			s.opts.Stopping(in.ID())
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), s.opts.StopTimeout)
		err := in.Stop(ctx)
		cancel()
		if err != nil {
			s.log.Warn("stop instance", "function", in.fn.Name, "instance", in.ID(), "error", err)
		}
		s.unreserve(in.fn.MemoryMB, true)
		s.forgetIfDrained(p)
	}()
}
