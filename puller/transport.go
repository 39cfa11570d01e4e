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

// boundedTransport fails a registry request whose response headers do not
// arrive within header, and a response body that delivers no byte for
// stall, with ErrRegistryTimeout naming the host. A registry that accepts
// the connection and then says nothing must not hold a pull forever.
type boundedTransport struct {
	rt     http.RoundTripper
	header time.Duration
	stall  time.Duration
}

func (t *boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	timer := time.AfterFunc(t.header, func() {
		cancel(fmt.Errorf("registry %s sent no response headers within %s: %w", req.URL.Host, t.header, ErrRegistryTimeout))
	})
	resp, err := t.rt.RoundTrip(req.WithContext(ctx))
	if !timer.Stop() && err == nil {
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
	b := &stallBody{rc: resp.Body, ctx: ctx, cancel: cancel, stall: t.stall}
	b.timer = time.AfterFunc(t.stall, func() {
		cancel(fmt.Errorf("registry %s sent no data for %s: %w", req.URL.Host, t.stall, ErrRegistryTimeout))
	})
	resp.Body = b
	return resp, nil
}

// stallBody cancels its request when no byte arrives for stall.
type stallBody struct {
	rc     io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	stall  time.Duration

	mu    sync.Mutex
	timer *time.Timer
}

func (b *stallBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.mu.Lock()
		b.timer.Reset(b.stall)
		b.mu.Unlock()
	}
	if err != nil && err != io.EOF {
		if cause := context.Cause(b.ctx); errors.Is(cause, ErrRegistryTimeout) {
			err = cause
		}
	}
	return n, err
}

func (b *stallBody) Close() error {
	b.mu.Lock()
	b.timer.Stop()
	b.mu.Unlock()
	err := b.rc.Close()
	b.cancel(nil)
	return err
}
