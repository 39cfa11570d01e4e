package scheduler

import (
	"context"
	"time"
)

// Session affinity (FC's sessionAffinity HEADER_FIELD): requests that
// carry the same session key go to the instance that served the session
// first, waiting for a slot on it when it is full, for as long as that
// instance serves the function and the session is not idle for longer
// than Function.SessionIdleTimeout. A session whose instance is gone
// (evicted, drained, reclaimed) binds anew to any instance. Requests
// without a key are placed as always.
//
// Waiters for a session's instance are pinned to it: they take only its
// slots, cause no cold start, and are not failed by another start's
// failure; unpinned when it leaves.

// defaultSessionIdle is Function.SessionIdleTimeout's default.
const defaultSessionIdle = 30 * time.Minute

// session is a key's binding to an instance.
type session struct {
	in            *inst
	created, last time.Time
}

// AcquireSession is Acquire for a request of session key: see the
// package's session affinity. An empty key is Acquire.
func (s *Scheduler) AcquireSession(ctx context.Context, fn Function, key string) (*Lease, error) {
	lim, err := s.limits.take(fn.Name)
	if err != nil {
		return nil, err
	}
	p := (*s.pools.Load())[keyOf(fn)]
	if p == nil {
		if p, err = s.pool(fn); err != nil {
			lim.put()
			return nil, err
		}
	}
	l, err := p.acquireSession(ctx, key)
	if err != nil {
		lim.put()
		return nil, err
	}
	l.lim = lim
	return l, nil
}

func (p *pool) acquireSession(ctx context.Context, key string) (*Lease, error) {
	if key == "" {
		return p.acquire(ctx)
	}
	p.mu.Lock()
	if p.shutErr != nil {
		err := p.shutErr
		p.mu.Unlock()
		return nil, err
	}
	p.stats.acquires++
	pin := p.sessionLocked(key)
	if pin != nil && pin.busy < p.fn.concurrency() {
		pin.busy++
		p.mu.Unlock()
		return &Lease{p: p, in: pin}, nil
	}
	if pin == nil {
		if in := p.pickLocked(); in != nil {
			in.busy++
			p.bindLocked(key, in)
			p.mu.Unlock()
			return &Lease{p: p, in: in}, nil
		}
	}
	if err := p.admitLocked(ctx); err != nil {
		p.mu.Unlock()
		return nil, err
	}
	w := &waiter{ch: make(chan result, 1), session: key, pin: pin}
	p.waiters = append(p.waiters, w)
	p.mu.Unlock()
	p.schedule()
	return p.wait(ctx, w)
}

func (p *pool) sessionIdleLocked() time.Duration {
	if p.fn.SessionIdleTimeout > 0 {
		return p.fn.SessionIdleTimeout
	}
	return defaultSessionIdle
}

// sessionLocked returns the live instance of session key, renewing it, or
// nil (forgetting a binding that ended).
func (p *pool) sessionLocked(key string) *inst {
	s := p.sessions[key]
	if s == nil {
		return nil
	}
	now := p.s.clock.Now()
	if p.sessionEndedLocked(s, now) {
		delete(p.sessions, key)
		return nil
	}
	s.last = now
	return s.in
}

// bindLocked binds session key (if any) to in.
func (p *pool) bindLocked(key string, in *inst) {
	if key == "" {
		return
	}
	if p.sessions == nil {
		p.sessions = map[string]*session{}
	}
	now := p.s.clock.Now()
	p.sessions[key] = &session{in: in, created: now, last: now}
}

// sessionEndedLocked reports whether s ended by now: its instance left,
// it idled out, or it outlived Function.SessionTTL.
func (p *pool) sessionEndedLocked(s *session, now time.Time) bool {
	return s.in.gone || s.in.draining || now.Sub(s.last) >= p.sessionIdleLocked() ||
		(p.fn.SessionTTL > 0 && now.Sub(s.created) >= p.fn.SessionTTL)
}

// reapSessions forgets sessions whose instance left or that idled out.
func (p *pool) reapSessions(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, s := range p.sessions {
		if p.sessionEndedLocked(s, now) {
			delete(p.sessions, k)
		}
	}
}

// Sessions reports how many sessions of the named function are bound.
func (s *Scheduler) Sessions(name string) int {
	if p := s.lookup(name, ""); p != nil {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.sessions)
	}
	return 0
}

// slotForLocked returns the instance w may take a slot on now, or nil:
// its session's instance while that serves, else the least loaded one.
func (p *pool) slotForLocked(w *waiter) *inst {
	if w.pin != nil && (w.pin.gone || w.pin.draining) {
		w.pin = nil // its instance left: any will do
	}
	if w.pin == nil {
		return p.pickLocked()
	}
	if w.pin.busy < p.fn.concurrency() {
		return w.pin
	}
	return nil
}
