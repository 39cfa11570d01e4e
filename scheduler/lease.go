package scheduler

import "sync/atomic"

// Lease is one request's slot on an instance. Exactly one of Release or
// Fail ends it; later calls do nothing. A lease whose instance died keeps
// its Instance, and ending it is still required.
type Lease struct {
	p     *pool
	in    *inst
	lim   *limit // nil: the function has no concurrency limit
	ended atomic.Bool
}

// Instance returns the leased instance.
func (l *Lease) Instance() Instance { return l.in.Instance }

// Release frees the slot after a request the instance answered. When the
// instance drains (its function was updated or removed) and this was its
// last lease, it is stopped.
func (l *Lease) Release() {
	if !l.ended.Swap(true) {
		l.lim.put()
		l.p.release(l.in, false)
	}
}

// Fail frees the slot of an instance that could not serve the request
// (its connection was refused or broke): the instance is evicted and
// stopped, and is not handed out again. err is logged.
func (l *Lease) Fail(err error) {
	if !l.ended.Swap(true) {
		l.p.s.log.Warn("instance failed a request; evicted", "function", l.in.fn.Name, "instance", l.in.ID(), "error", err)
		l.lim.put()
		l.p.release(l.in, true)
	}
}
