package proxy

import (
	"context"
	"sync"
	"time"
)

// requestContext is a request's cancellable context, made only when
// something asks for it. A warm request's Acquire finds a free slot
// without looking at its context, so the request never pays for
// context.WithCancelCause and its cancel; one that waits for a slot or a
// cold start gets a real one on its first use, already cancelled if its
// client left before.
type requestContext struct {
	// parent is what the context derives from; detach makes it
	// context.WithoutCancel(parent).
	parent context.Context
	detach bool

	mu       sync.Mutex
	ctx      context.Context // nil until asked for
	cancel   context.CancelCauseFunc
	canceled bool  // before ctx was made
	cause    error // of that cancel
}

var _ context.Context = (*requestContext)(nil)

func (c *requestContext) get() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx == nil {
		parent := c.parent
		if c.detach {
			parent = context.WithoutCancel(parent)
		}
		c.ctx, c.cancel = context.WithCancelCause(parent)
		if c.canceled {
			c.cancel(c.cause)
		}
	}
	return c.ctx
}

func (c *requestContext) Deadline() (time.Time, bool) { return c.get().Deadline() }
func (c *requestContext) Done() <-chan struct{}       { return c.get().Done() }
func (c *requestContext) Err() error                  { return c.get().Err() }

// Value makes context.Cause work: it asks Value for the cancelCtx inside.
func (c *requestContext) Value(key any) any { return c.get().Value(key) }

// cancelCause ends the context with cause (context.Canceled when nil), as
// context.WithCancelCause's cancel does: the first cause is kept.
func (c *requestContext) cancelCause(cause error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx != nil {
		c.cancel(cause)
		return
	}
	if !c.canceled {
		c.canceled, c.cause = true, cause
	}
}
