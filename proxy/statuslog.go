package proxy

import (
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// statusesKept is how many requests' HTTP statuses the proxy keeps for
// the invocation list: enough for its default page of 100 per function
// on a host serving a few dozen functions.
const statusesKept = 4096

// statusLog keeps the HTTP status of the last requests forwarded to an
// instance, by request ID, for GET /fcd/v1/invocations. Recording one is
// a store into a fixed ring under a mutex: no allocation on the invoke
// path.
type statusLog struct {
	mu   sync.Mutex
	next int
	ring [statusesKept]statusEntry
}

type statusEntry struct {
	rid    string
	status int
}

func (l *statusLog) put(rid string, status int) {
	l.mu.Lock()
	l.ring[l.next] = statusEntry{rid, status}
	l.next = (l.next + 1) % statusesKept
	l.mu.Unlock()
}

// statuses returns the kept statuses by request ID.
func (l *statusLog) statuses() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]int, statusesKept)
	for _, e := range l.ring {
		if e.rid != "" {
			out[e.rid] = e.status
		}
	}
	return out
}

// firstResponder is a Lease that completes its instance's cold-start
// record with the first response (cmd/fcd's lease: the instance's
// FirstResponse).
type firstResponder interface {
	FirstResponse(arrived time.Time)
}

// forwarded records what the console shows of a request its instance
// answered, once the response's head is set: its HTTP status and, for
// the request a cold start was made for, the start's first response.
func (s *Server) forwarded(ctx *fasthttp.RequestCtx, x *exchange) {
	s.statuses.put(x.rid, ctx.Response.StatusCode())
	if fr, ok := x.lease.(firstResponder); ok {
		fr.FirstResponse(ctx.Time())
	}
}
