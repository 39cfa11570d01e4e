package puller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// BoundTransport returns rt bounded against a registry's silence, as the
// puller's own registry requests are (Options.ResponseHeaderTimeout and
// StallTimeout): a request whose response headers do not arrive within
// header, and a response body whose Read waits stall for a byte, fail
// with ErrRegistryTimeout naming the host. A registry that accepts the
// connection and then says nothing must not hold its caller forever.
//
// The header bound runs from the end of the request's body (from the
// request's start when it has none), so a long upload is not cut short;
// the stall bound runs only while a Read waits, so a reader that pauses
// between reads is not failed for its own slowness. A bound of zero or
// less is no bound.
func BoundTransport(rt http.RoundTripper, header, stall time.Duration) http.RoundTripper {
	return &boundedTransport{rt: rt, header: header, stall: stall}
}

type boundedTransport struct {
	rt     http.RoundTripper
	header time.Duration
	stall  time.Duration
}

func (t *boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	req = req.WithContext(ctx)
	var h *headerBound
	if t.header > 0 {
		h = &headerBound{}
		h.timer = time.AfterFunc(t.header, func() {
			h.fire(cancel, fmt.Errorf("registry %s sent no response headers within %s: %w", req.URL.Host, t.header, ErrRegistryTimeout))
		})
		if req.Body != nil && req.Body != http.NoBody {
			// Armed again once the body is sent.
			h.timer.Stop()
			req.Body = &sentBody{rc: req.Body, h: h, d: t.header}
			if get := req.GetBody; get != nil {
				req.GetBody = func() (io.ReadCloser, error) {
					rc, err := get()
					if err != nil {
						return nil, err
					}
					return &sentBody{rc: rc, h: h, d: t.header}, nil
				}
			}
		}
	}
	resp, err := t.rt.RoundTrip(req)
	if h != nil && h.done() && err == nil {
		// The headers came as the bound passed; the request is
		// cancelled already.
		resp.Body.Close()
		resp, err = nil, context.Cause(ctx)
	}
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, ErrRegistryTimeout) {
			err = cause
		}
		cancel(nil)
		return nil, err
	}
	if t.stall <= 0 {
		resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
		return resp, nil
	}
	b := &stallBody{rc: resp.Body, ctx: ctx, cancel: cancel, stall: t.stall}
	b.timer = time.AfterFunc(t.stall, func() {
		cancel(fmt.Errorf("registry %s sent no data for %s: %w", req.URL.Host, t.stall, ErrRegistryTimeout))
	})
	b.timer.Stop()
	resp.Body = b
	return resp, nil
}

// headerBound is a request's header bound. The transport may still read
// the request's body after the response came: once done, the bound
// neither fires nor is armed again.
type headerBound struct {
	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
	fired   bool
}

// fire cancels the request with cause, unless the response came.
func (h *headerBound) fire(cancel context.CancelCauseFunc, cause error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.stopped {
		h.fired = true
		cancel(cause)
	}
}

// arm starts the bound, d from now, unless the response came.
func (h *headerBound) arm(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.stopped {
		h.timer.Reset(d)
	}
}

// done ends the bound and reports whether it had fired.
func (h *headerBound) done() (fired bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = true
	h.timer.Stop()
	return h.fired
}

// sentBody arms the header bound once the request's body is read to its
// end or closed.
type sentBody struct {
	rc   io.ReadCloser
	h    *headerBound
	d    time.Duration
	once sync.Once
}

func (b *sentBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil {
		b.once.Do(func() { b.h.arm(b.d) })
	}
	return n, err
}

func (b *sentBody) Close() error {
	b.once.Do(func() { b.h.arm(b.d) })
	return b.rc.Close()
}

// cancelBody ends its request's context when closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel(nil)
	return err
}

// stallBody cancels its request when a Read waits stall for a byte.
type stallBody struct {
	rc     io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	stall  time.Duration
	timer  *time.Timer
}

func (b *stallBody) Read(p []byte) (int, error) {
	b.timer.Reset(b.stall)
	n, err := b.rc.Read(p)
	b.timer.Stop()
	if err != nil && err != io.EOF {
		if cause := context.Cause(b.ctx); errors.Is(cause, ErrRegistryTimeout) {
			err = cause
		}
	}
	return n, err
}

func (b *stallBody) Close() error {
	b.timer.Stop()
	err := b.rc.Close()
	b.cancel(nil)
	return err
}
