package proxy

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Starting answers every request on a listener with 503 ResourceThrottled
// and Retry-After while fcd starts, so that a client of a restarting fcd
// learns at once to come back instead of waiting on a connection nothing
// reads. Open ends it and leaves the listener, unchanged, to the server
// that serves it from then on.
type Starting struct {
	ln     *net.TCPListener // nil: not a TCP listener, nothing to answer
	opened atomic.Bool
	once   sync.Once
	done   chan struct{}
}

// ServeStarting starts answering on ln until Open. A listener that is not
// TCP is left alone.
func ServeStarting(ln net.Listener) *Starting {
	s := &Starting{done: make(chan struct{})}
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		close(s.done)
		return s
	}
	s.ln = tl
	srv := &fasthttp.Server{
		Handler:      startingHandler,
		Name:         "fcd",
		ReadTimeout:  5 * time.Second,
		WriteTimeout: 5 * time.Second,
		Logger:       quietLogger{},
	}
	go func() {
		defer close(s.done)
		_ = srv.Serve(startingListener{s})
	}()
	return s
}

// Open stops answering and returns once the listener is free for its
// server. It is idempotent.
func (s *Starting) Open() {
	s.once.Do(func() {
		if s.ln == nil {
			return
		}
		s.opened.Store(true)
		// A past deadline wakes the pending Accept, which then ends the
		// server; the listener itself stays open.
		_ = s.ln.SetDeadline(time.Now())
		<-s.done
		_ = s.ln.SetDeadline(time.Time{})
	})
}

// retryAfter is what Retry-After tells clients of a starting fcd.
const retryAfter = "1"

func startingHandler(ctx *fasthttp.RequestCtx) {
	body, _ := json.Marshal(errorBody{Code: CodeResourceThrottled, Message: "fcd is starting; retry in a moment"})
	ctx.Response.Header.Set("Retry-After", retryAfter)
	ctx.Response.Header.SetContentType("application/json")
	ctx.SetStatusCode(http.StatusServiceUnavailable)
	ctx.SetConnectionClose()
	ctx.SetBody(body)
}

// startingListener ends the starting server once Open began.
type startingListener struct{ s *Starting }

func (l startingListener) Accept() (net.Conn, error) {
	c, err := l.s.ln.Accept()
	if err != nil && l.s.opened.Load() {
		return nil, io.EOF
	}
	return c, err
}

// Close leaves the listener open for the server after Open.
func (l startingListener) Close() error   { return nil }
func (l startingListener) Addr() net.Addr { return l.s.ln.Addr() }

type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}
