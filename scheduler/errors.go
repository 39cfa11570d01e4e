package scheduler

import "errors"

// Errors returned by Acquire, possibly wrapped with detail; test them with
// errors.Is. Besides these, Acquire returns the caller's ctx.Err() when the
// caller went away while waiting (the proxy's ClientClosedRequest, 499),
// and the Starter's error, unchanged, to the requests a failed cold start
// was for.
var (
	// ErrThrottled means no slot could be had within the limits: the
	// function's queue was full (Options.MaxQueue), the request waited
	// past Options.QueueTimeout, or one instance of the function needs
	// more memory than the host's whole budget. The proxy answers it with
	// FC's ResourceExhausted (HTTP 429).
	ErrThrottled = errors.New("too many requests")

	// ErrFunctionDeleted is returned to requests waiting for, or arriving
	// at, a function being removed.
	ErrFunctionDeleted = errors.New("function deleted while the request waited")

	// ErrClosed is returned by Acquire during and after Close.
	ErrClosed = errors.New("scheduler closed")
)
