package proxy

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestRequestContext(t *testing.T) {
	gone := errors.New("gone")
	closed := func(ctx context.Context) bool {
		select {
		case <-ctx.Done():
			return true
		default:
			return false
		}
	}
	t.Run("unused", func(t *testing.T) {
		c := &requestContext{parent: context.Background()}
		c.cancelCause(nil)
		if c.ctx != nil {
			t.Fatal("cancelling an unused context made one")
		}
		if err := c.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Err after cancel: got %v, want Canceled", err)
		}
	})
	t.Run("cancelled before use", func(t *testing.T) {
		c := &requestContext{parent: context.Background()}
		c.cancelCause(gone)
		c.cancelCause(errors.New("later"))
		if !closed(c) || !errors.Is(context.Cause(c), gone) || !errors.Is(c.Err(), context.Canceled) {
			t.Fatalf("got closed=%v cause %v err %v, want closed, gone, Canceled", closed(c), context.Cause(c), c.Err())
		}
	})
	t.Run("cancelled while waited on", func(t *testing.T) {
		c := &requestContext{parent: context.Background()}
		child, stop := context.WithTimeout(c, time.Hour) // as a waiter might
		defer stop()
		if closed(c) || closed(child) {
			t.Fatal("done before cancel")
		}
		c.cancelCause(gone)
		<-child.Done()
		if !errors.Is(context.Cause(c), gone) || !errors.Is(context.Cause(child), gone) {
			t.Fatalf("got causes %v, %v; want gone", context.Cause(c), context.Cause(child))
		}
	})
	t.Run("parent", func(t *testing.T) {
		parent, cancel := context.WithCancelCause(context.Background())
		c := &requestContext{parent: parent}
		attached := &requestContext{parent: parent, detach: true}
		c.Done()
		attached.Done()
		cancel(gone)
		<-c.Done()
		if !errors.Is(context.Cause(c), gone) {
			t.Fatalf("got cause %v, want the parent's", context.Cause(c))
		}
		if closed(attached) {
			t.Fatal("a detached context ended with its parent")
		}
	})
}
