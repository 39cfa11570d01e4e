package proxy

import (
	"context"
	"net/http"
	"sync"

	"github.com/fcd-dev/fcd/api"
)

// The proxy follows the store's watch rather than its own writes: with
// several hosts, or any other writer, a change reaches the function cache
// and the scheduler (Pools) all the same. A control API write answers only
// once the watch has brought its change here (sync), so a caller reads its
// own writes, on the invoke path as on the API.

// follower applies the store's events and tracks how far it got.
type follower struct {
	mu      sync.Mutex
	applied uint64        // revision of the last event applied
	changed chan struct{} // closed and replaced when applied moves or the watch ends
	ended   bool
}

func newFollower() *follower { return &follower{changed: make(chan struct{})} }

func (f *follower) advance(rev uint64, ended bool) {
	f.mu.Lock()
	if rev > f.applied {
		f.applied = rev
	}
	f.ended = f.ended || ended
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// wait waits until revision rev is applied, the watch ended, or ctx ended.
func (f *follower) wait(ctx context.Context, rev uint64) error {
	for {
		f.mu.Lock()
		applied, ended, ch := f.applied, f.ended, f.changed
		f.mu.Unlock()
		switch {
		case applied >= rev:
			return nil
		case ended:
			return newError(http.StatusServiceUnavailable, CodeResourceThrottled, "fcd is shutting down: the store's watch ended")
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// follow applies events until the watch ends.
func (s *Server) follow(ctx context.Context, events <-chan api.Event) {
	defer s.follower.advance(0, true)
	s.reprovisionAll(ctx) // provision_versions.go
	for e := range events {
		s.apply(ctx, e)
		s.follower.advance(e.Revision, false)
	}
}

// apply brings the function cache, the scheduler and the async configs up
// to e.
func (s *Server) apply(ctx context.Context, e api.Event) {
	s.applyVersioning(ctx, e)
	switch e.Kind {
	case api.KindFunction:
		s.fns.forget(e.Function)
		if e.Op == api.OpDelete && s.opts.Async != nil {
			// Its waiting events fail when they come due (the function is gone).
			s.opts.Async.DeleteConfig(ctx, e.Function)
		}
		if s.opts.Pools == nil {
			return
		}
		if e.Op == api.OpDelete {
			s.opts.Pools.Remove(e.Function)
		} else {
			s.opts.Pools.Update(e.FunctionValue)
		}
	case api.KindTrigger:
		s.fns.forget(e.Function)
	case api.KindCustomDomain:
		s.domains.forget()
	case api.KindProvision:
		if s.opts.Pools == nil {
			return
		}
		fn, err := s.opts.Functions.GetFunction(ctx, e.Function)
		if err != nil {
			// Deleted since: its pool is removed by the function's event.
			return
		}
		target := 0
		if e.Op == api.OpPut {
			target = e.ProvisionValue.Target
		}
		s.opts.Pools.SetProvisioned(fn, target)
	}
}

// sync waits until every change committed so far, the caller's write
// among them, has been applied.
func (s *Server) sync(ctx context.Context) error {
	rev, err := s.opts.Functions.Revision(ctx)
	if err != nil {
		return err
	}
	return s.follower.wait(ctx, rev)
}
