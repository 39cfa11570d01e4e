package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/fcd-dev/fcd/scheduler"
)

// fakeStartFailure stands in for instance.StartError, which this package
// does not import.
type fakeStartFailure struct{ exited bool }

func (e fakeStartFailure) Error() string {
	return "instance i did not become ready in 1s: connection refused"
}
func (e fakeStartFailure) ProcessExited() bool { return e.exited }

func TestAcquireError(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		status  int
		code    string
		message string // a part of the message
	}{
		{"throttled", fmt.Errorf("%w: 3 requests already wait", scheduler.ErrThrottled), http.StatusTooManyRequests, CodeResourceExhausted, "too many requests: 3 requests already wait"},
		{"deleted", scheduler.ErrFunctionDeleted, http.StatusNotFound, CodeFunctionNotFound, "function deleted"},
		{"closed", scheduler.ErrClosed, http.StatusServiceUnavailable, CodeResourceThrottled, "fcd is shutting down"},
		{"canceled", context.Canceled, http.StatusServiceUnavailable, CodeResourceThrottled, "fcd is shutting down"},
		{"not started", fmt.Errorf("start: %w", fakeStartFailure{}), http.StatusPreconditionFailed, CodeFunctionNotStarted, "FunctionNotStarted: instance i did not become ready"},
		{"exited", fakeStartFailure{exited: true}, http.StatusPreconditionFailed, CodeCAExited, "CAExited: instance i"},
		{"unauthenticated", fmt.Errorf("image pull not authorized: the registry refused the function's credentials: %w", errdefs.ErrUnauthenticated),
			http.StatusPreconditionFailed, CodeFunctionNotStarted, "the function instance failed to start: image pull not authorized"},
		{"other", errors.New("pull r/i:t: no such image"), http.StatusPreconditionFailed, CodeFunctionNotStarted, "the function instance failed to start: pull r/i:t"},
		{"image not found", &scheduler.StartError{Err: fmt.Errorf("resolve r/i:t: %w", errdefs.ErrNotFound)},
			http.StatusPreconditionFailed, CodeFunctionNotStarted, "the function instance failed to start: resolve r/i:t"},
		{"registry down", &scheduler.StartError{Err: fmt.Errorf("fetch r/i:t: %w", errdefs.ErrUnavailable)},
			http.StatusPreconditionFailed, CodeFunctionNotStarted, "the function instance failed to start: fetch r/i:t"},
		{"start failure inside", &scheduler.StartError{Err: fakeStartFailure{exited: true}}, http.StatusPreconditionFailed, CodeCAExited, "CAExited: instance i"},
		{"api error", newError(http.StatusBadRequest, CodeInvalidArgument, "bad"), http.StatusBadRequest, CodeInvalidArgument, "bad"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := acquireError(tt.err)
			if got.Status != tt.status || got.Code != tt.code || !strings.Contains(got.Message, tt.message) {
				t.Errorf("got %d %s %q, want %d %s containing %q", got.Status, got.Code, got.Message, tt.status, tt.code, tt.message)
			}
		})
	}
}

// fakeExit stands in for instance.ExitError.
type fakeExit struct {
	code int
	oom  bool
}

func (e fakeExit) Error() string {
	return fmt.Sprintf("instance i exited with code %d; last logs:\nbye", e.code)
}
func (e fakeExit) ExitCode() int   { return e.code }
func (e fakeExit) OOMKilled() bool { return e.oom }
func (e fakeExit) Logs() []string  { return []string{"bye"} }

func TestInstanceFailure(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		typ     string
		code    int // -2: no exit code
		oom     bool
		message string // a part of the message
	}{
		{"exited", fmt.Errorf("forward: %w", fakeExit{code: 3}), CodeCAExited, 3, false, "Process exited unexpectedly before completing request (exit code 3, oom=false): instance i exited with code 3; last logs:\nbye"},
		{"oom", fakeExit{code: 137, oom: true}, CodeCAExited, 137, true, "(exit code 137, oom=true)"},
		{"connection broke", errors.New("EOF"), "", -2, false, "The function instance i could not serve the request: EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := instanceFailure("i", tt.err)
			code, oom := -2, false
			if f.ExitCode != nil {
				code = *f.ExitCode
			}
			if f.OOM != nil {
				oom = *f.OOM
			}
			if f.ErrorType != tt.typ || code != tt.code || oom != tt.oom || !strings.Contains(f.ErrorMessage, tt.message) {
				t.Errorf("got %s %d oom=%v %q, want %s %d oom=%v containing %q", f.ErrorType, code, oom, f.ErrorMessage, tt.typ, tt.code, tt.oom, tt.message)
			}
			if tt.typ != "" && len(f.Logs) != 1 {
				t.Errorf("got logs %q, want the instance's", f.Logs)
			}
		})
	}
}
