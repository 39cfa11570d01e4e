package proxy

import (
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

// Signed requests are read whole, to check their body's hash. A body is
// read only after its request's signature checked out on the headers
// (verifier.verifyHead), and only while the bytes buffered across all
// requests stay within Options.BodyBudget: past it, a request is refused
// with 429 ResourceExhausted (as FC answers a request it has no capacity
// for now; the client may retry) and its body is never read.

// DefaultBodyBudget is the default of Options.BodyBudget.
const DefaultBodyBudget = 256 << 20

// bodyBudget counts the bytes of request bodies buffered at once.
type bodyBudget struct {
	limit   int64
	used    atomic.Int64
	refused atomic.Uint64
	// taken, when set (by tests), learns of every reservation.
	taken func(n int64)
}

// take reserves n bytes, reporting false, and reserving nothing, past
// the limit.
func (b *bodyBudget) take(n int64) bool {
	for {
		used := b.used.Load()
		if used+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			if b.taken != nil {
				b.taken(n)
			}
			return true
		}
	}
}

func (b *bodyBudget) give(n int64) { b.used.Add(-n) }

func (b *bodyBudget) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "fcd", Name: "request_body_buffered_bytes",
			Help: "Bytes of signed request bodies buffered now (bounded by -body-buffer-budget)."},
			func() float64 { return float64(b.used.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "fcd", Name: "request_body_budget_refused_total",
			Help: "Signed requests refused with 429 because the body buffer budget was spent."},
			func() float64 { return float64(b.refused.Load()) }),
	}
}

// bodyReservation is the user value under which a request keeps its
// reservation until its handler ends (releaseBody).
const bodyReservation = "fcd.bodyReservation"

// readSigned verifies a signed request and returns its body, at most
// limit bytes. The body's bytes stay reserved until the handler ends:
// handle releases them.
func (s *Server) readSigned(ctx *fasthttp.RequestCtx, limit int) ([]byte, *apiError) {
	body, _, aerr := s.readSignedKey(ctx, limit)
	return body, aerr
}

// readSignedKey is readSigned that also returns the access key id the
// request was signed with (or its console session's).
func (s *Server) readSignedKey(ctx *fasthttp.RequestCtx, limit int) ([]byte, string, *apiError) {
	head, aerr := s.verifier.verifyHead(ctx)
	if aerr != nil {
		ctx.SetConnectionClose() // the body is not read: do not wait for it
		return nil, "", aerr
	}
	body, aerr := s.readBody(ctx, limit)
	if aerr != nil {
		return nil, "", aerr
	}
	if aerr := s.verifier.verifyBody(head, body); aerr != nil {
		return nil, "", aerr
	}
	return body, head.keyID, nil
}

// readBody reads a request's body whole, refusing one over limit before it
// is buffered, and one that does not fit the body budget.
func (s *Server) readBody(ctx *fasthttp.RequestCtx, limit int) ([]byte, *apiError) {
	n := ctx.Request.Header.ContentLength()
	if n > limit {
		ctx.SetConnectionClose()
		return nil, newError(http.StatusBadRequest, CodeEntityTooLarge, "request body of "+strconv.Itoa(n)+" bytes exceeds the limit of "+strconv.Itoa(limit))
	}
	stream := ctx.RequestBodyStream()
	if stream == nil {
		// No body, or fasthttp read it whole already (within its
		// pre-read of a few KiB).
		return ctx.Request.Body(), nil
	}
	if n >= 0 {
		if !s.reserve(ctx, int64(n)) {
			return nil, s.overBudget(ctx)
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(stream, body); err != nil {
			return nil, newError(http.StatusBadRequest, CodeInvalidArgument, "reading request body: "+err.Error())
		}
		return body, nil
	}
	// Chunked: reserve as the buffer grows.
	var body []byte
	for {
		if len(body) == cap(body) {
			grow := min(max(cap(body), 64<<10), limit+1-cap(body))
			if grow <= 0 {
				ctx.SetConnectionClose()
				return nil, newError(http.StatusBadRequest, CodeEntityTooLarge, "request body exceeds the limit of "+strconv.Itoa(limit)+" bytes")
			}
			if !s.reserve(ctx, int64(grow)) {
				return nil, s.overBudget(ctx)
			}
			body = slices.Grow(body, grow)[:len(body)]
		}
		m, err := stream.Read(body[len(body):cap(body)])
		body = body[:len(body)+m]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, newError(http.StatusBadRequest, CodeInvalidArgument, "reading request body: "+err.Error())
		}
	}
	if len(body) > limit {
		ctx.SetConnectionClose()
		return nil, newError(http.StatusBadRequest, CodeEntityTooLarge, "request body exceeds the limit of "+strconv.Itoa(limit)+" bytes")
	}
	return body, nil
}

// reserve takes n bytes of the budget for the request in ctx.
func (s *Server) reserve(ctx *fasthttp.RequestCtx, n int64) bool {
	if n == 0 {
		return true
	}
	if !s.bodies.take(n) {
		return false
	}
	held, _ := ctx.UserValue(bodyReservation).(int64)
	ctx.SetUserValue(bodyReservation, held+n)
	return true
}

// releaseBody gives back the request's reservation; its body is no longer
// in use once its handler has returned (a streamed response no longer
// needs the request).
func (s *Server) releaseBody(ctx *fasthttp.RequestCtx) {
	if held, ok := ctx.UserValue(bodyReservation).(int64); ok {
		s.bodies.give(held)
		ctx.RemoveUserValue(bodyReservation)
	}
}

func (s *Server) overBudget(ctx *fasthttp.RequestCtx) *apiError {
	s.bodies.refused.Add(1)
	ctx.SetConnectionClose()
	ctx.Response.Header.Set("Retry-After", "1")
	return newError(http.StatusTooManyRequests, CodeResourceExhausted, "fcd is buffering as many request bodies as it may ("+strconv.FormatInt(s.bodies.limit>>20, 10)+" MiB in all): retry later")
}
