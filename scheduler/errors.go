package scheduler

import "github.com/containerd/errdefs"

// Errors returned by Acquire, possibly wrapped with detail; test them with
// errors.Is, or by their errdefs category, which is what the proxy maps to
// an FC error. Besides these, Acquire returns the caller's ctx.Err() when
// the caller went away while waiting, and the Starter's error, unchanged,
// to the requests a failed cold start was for.
var (
	// ErrThrottled means no slot could be had within the limits: the
	// function's queue was full (Options.MaxQueue), the request waited
	// past Options.QueueTimeout, or one instance of the function needs
	// more memory than the host's whole budget. It wraps
	// errdefs.ErrResourceExhausted.
	ErrThrottled = category("too many requests", errdefs.ErrResourceExhausted)

	// ErrFunctionDeleted is returned to requests waiting for, or arriving
	// at, a function being removed. It wraps errdefs.ErrNotFound.
	ErrFunctionDeleted = category("function deleted while the request waited", errdefs.ErrNotFound)

	// ErrClosed is returned by Acquire during and after Close. It wraps
	// errdefs.ErrUnavailable.
	ErrClosed = category("scheduler closed", errdefs.ErrUnavailable)
)

// categorized is a sentinel with an errdefs category that does not show in
// its message.
type categorized struct {
	msg string
	cat error
}

func category(msg string, cat error) error { return &categorized{msg: msg, cat: cat} }

func (e *categorized) Error() string { return e.msg }
func (e *categorized) Unwrap() error { return e.cat }
