package scheduler

import "errors"

var (
	// ErrThrottled is returned by Acquire when the function's queue is full
	// or a request waited past Options.QueueTimeout without a slot. The
	// proxy answers it with FC's ResourceExhausted (HTTP 429).
	ErrThrottled = errors.New("too many requests: no instance slot became free in time")

	// ErrFunctionDeleted is returned to requests waiting on a function that
	// was removed.
	ErrFunctionDeleted = errors.New("function deleted while the request waited")

	// ErrClosed is returned by Acquire after Close.
	ErrClosed = errors.New("scheduler closed")
)
