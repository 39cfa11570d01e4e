package scheduler

import (
	"context"

	"github.com/containerd/errdefs"
)

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

	// ErrOnDemandDisabled is returned to requests for a function that
	// allows provisioned instances only (Function.ProvisionedOnly) and has
	// no provisioned target. It wraps errdefs.ErrResourceExhausted.
	ErrOnDemandDisabled = category("on-demand instances are disabled for this function and it has no provisioned instances", errdefs.ErrResourceExhausted)

	// ErrFunctionDeleted is returned to requests waiting for, or arriving
	// at, a function being removed. It wraps errdefs.ErrNotFound.
	ErrFunctionDeleted = category("function deleted while the request waited", errdefs.ErrNotFound)

	// ErrClosed is returned by Acquire during and after Close: the
	// request is cancelled by shutdown. It wraps context.Canceled (not
	// ErrUnavailable, which a Starter's error may carry when a registry
	// or containerd is out of reach: that is a start failure, not fcd
	// going away).
	ErrClosed = category("scheduler closed", context.Canceled)
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

// StartError is what Acquire returns to the requests a failed cold start
// was for: the Starter's error, unchanged in text and in what it wraps.
// Whatever category that error carries (a registry's NotFound, a
// containerd that is Unavailable), it describes a start that failed, not
// the request or the scheduler: callers test for a StartError before they
// look at categories.
type StartError struct {
	Err error
}

func (e *StartError) Error() string { return e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

// ColdStartFailed marks the error as a failed cold start to callers that
// declare the method rather than import this package.
func (e *StartError) ColdStartFailed() bool { return true }
