package scheduler

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Per-function concurrency limits (FC's reserved concurrency): at most N
// leases of a function, over all its versions, at once. Acquire takes a
// unit before it looks for a slot and gives it back when it fails; the
// lease gives it back when it ends. Past the limit Acquire fails at once
// with a *LimitError rather than queue: the caller asked for a cap, not a
// queue.

// limits maps function names to their limit. Once a function had a limit
// its counter is kept (max < 0 when lifted), so leases taken under one
// limit are counted against the next.
type limits struct {
	mu sync.Mutex
	m  atomic.Pointer[map[string]*limit] // copied on write under mu
}

type limit struct {
	name string
	max  atomic.Int64 // < 0: no limit
	cur  atomic.Int64
}

// put gives a unit back; nil does nothing.
func (l *limit) put() {
	if l != nil {
		l.cur.Add(-1)
	}
}

// take counts one more lease of name, or fails with a *LimitError.
func (ls *limits) take(name string) (*limit, error) {
	m := ls.m.Load()
	if m == nil {
		return nil, nil
	}
	l := (*m)[name]
	if l == nil {
		return nil, nil
	}
	n := l.cur.Add(1)
	if max := l.max.Load(); max >= 0 && n > max {
		l.cur.Add(-1)
		return nil, &LimitError{Function: name, Limit: int(max)}
	}
	return l, nil
}

func (ls *limits) set(name string, max int) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	old := map[string]*limit{}
	if m := ls.m.Load(); m != nil {
		old = *m
	}
	if l := old[name]; l != nil {
		l.max.Store(int64(max))
		return
	}
	if max < 0 {
		return
	}
	m := make(map[string]*limit, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	l := &limit{name: name}
	l.max.Store(int64(max))
	m[name] = l
	ls.m.Store(&m)
}

// SetConcurrencyLimit caps the named function's leases, over all its
// versions, at max; 0 refuses every Acquire and a negative max lifts the
// cap. Leases already held are counted; a lowered cap takes effect as
// they end.
func (s *Scheduler) SetConcurrencyLimit(name string, max int) { s.limits.set(name, max) }

// LimitError is Acquire's error for a function at its concurrency limit.
type LimitError struct {
	Function string
	Limit    int
}

func (e *LimitError) Error() string {
	if e.Limit == 0 {
		return fmt.Sprintf("function %s has a reserved concurrency of 0: its invocations are refused", e.Function)
	}
	return fmt.Sprintf("function %s is at its reserved concurrency of %d concurrent requests", e.Function, e.Limit)
}

// ConcurrencyLimited marks the error for callers that declare the method
// rather than import this package.
func (e *LimitError) ConcurrencyLimited() bool { return true }

// InstanceInfo describes one instance of a function, for ListInstances.
type InstanceInfo struct {
	ID string
	// Version is the function version the instance runs ("" for the
	// latest configuration).
	Version string
	Created time.Time
	// Busy counts the leases it holds. Draining instances serve no new
	// leases and stop when idle.
	Busy     int
	Draining bool
}

// Instances returns the ready instances of every version of the named
// function, oldest first.
func (s *Scheduler) Instances(name string) []InstanceInfo {
	var out []InstanceInfo
	for k, p := range *s.pools.Load() {
		if k.name != name {
			continue
		}
		p.mu.Lock()
		for _, in := range p.instances {
			out = append(out, InstanceInfo{ID: in.ID(), Version: in.fn.Version, Created: in.created, Busy: in.busy, Draining: in.draining})
		}
		p.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out
}
