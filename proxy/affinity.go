package proxy

import (
	"context"

	"github.com/valyala/fasthttp"

	"github.com/fcd-dev/fcd/api"
)

// SessionScheduler is what the scheduler may also do: keep the requests
// of one session on one instance (FC's sessionAffinity HEADER_FIELD).
// Without it, functions with session affinity are placed as any other.
type SessionScheduler interface {
	// AcquireSession is Acquire for a request of session key.
	AcquireSession(ctx context.Context, fn *api.Function, key string) (Lease, error)
}

// acquire leases an instance for a request of cf: by its session when the
// function has session affinity and the request names a session.
func (s *Server) acquire(reqCtx context.Context, ctx *fasthttp.RequestCtx, cf *cachedFunction) (Lease, error) {
	if cf.fn.SessionAffinity == api.SessionAffinityHeaderField {
		if ss, ok := s.opts.Scheduler.(SessionScheduler); ok {
			// Parsed per request: session functions are few, and the
			// function cache stays free of per-option fields.
			if c, ok := cf.fn.Session(); ok {
				if key := ctx.Request.Header.Peek(c.HeaderName); len(key) > 0 {
					return ss.AcquireSession(reqCtx, cf.fn, string(key))
				}
			}
		}
	}
	return s.opts.Scheduler.Acquire(reqCtx, cf.fn)
}
