package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/valyala/fasthttp"

	"github.com/fcd-dev/fcd/async"
)

// FC error codes fcd returns, with the HTTP status each goes with.
const (
	CodeFunctionNotFound      = "FunctionNotFound"      // 404
	CodeFunctionAlreadyExists = "FunctionAlreadyExists" // 409
	CodeProvisionNotFound     = "ProvisionConfigNotFound"
	CodeInvalidArgument       = "InvalidArgument"   // 400
	CodeEntityTooLarge        = "EntityTooLarge"    // 400
	CodeSignatureNotMatch     = "SignatureNotMatch" // 403
	CodeAccessDenied          = "AccessDenied"      // 403
	CodeMissingAuthorization  = "MissingRequiredHeader"
	CodeMethodNotAllowed      = "MethodNotAllowed"    // 405
	CodePathNotFound          = "PathNotFound"        // 404
	CodeInternal              = "InternalError"       // 500
	CodeResourceExhausted     = "ResourceExhausted"   // 429
	CodeResourceThrottled     = "ResourceThrottled"   // 503
	CodeClientClosedRequest   = "ClientClosedRequest" // 499
	CodeFunctionNotStarted    = "FunctionNotStarted"  // 412
	CodeCAExited              = "CAExited"            // 412
	statusClientClosed        = 499
)

// apiError is an error as FC reports it: an HTTP status and a JSON body
// {"Code","Message","RequestId"}.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func newError(status int, code, msg string) *apiError {
	return &apiError{Status: status, Code: code, Message: msg}
}

// errorBody is FC's error body.
type errorBody struct {
	Code      string `json:"Code"`
	Message   string `json:"Message"`
	RequestID string `json:"RequestId"`
}

// This file is the one place where errors become HTTP statuses and FC
// codes. The packages behind the proxy return errors with an errdefs
// category (store, scheduler, puller) or a type the proxy declares what it
// needs of (StartFailure); none of them knows FC's codes.

// toAPIError maps an error from the store or api validation to the FC
// error the caller sees. notFound is the code for errdefs.ErrNotFound in
// this request's context.
func toAPIError(err error, notFound string) *apiError {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errdefs.IsNotFound(err):
		return newError(http.StatusNotFound, notFound, err.Error())
	case errdefs.IsAlreadyExists(err):
		return newError(http.StatusConflict, CodeFunctionAlreadyExists, err.Error())
	case errdefs.IsInvalidArgument(err):
		return newError(http.StatusBadRequest, CodeInvalidArgument, err.Error())
	default:
		return newError(http.StatusInternalServerError, CodeInternal, err.Error())
	}
}

// StartFailure is an error of an instance that was created but did not
// become ready (package instance's StartError): the proxy answers it with
// CAExited when ProcessExited, FunctionNotStarted otherwise.
type StartFailure interface {
	error
	ProcessExited() bool
}

// coldStartFailure is a failed cold start as the scheduler reports it.
type coldStartFailure interface {
	error
	ColdStartFailed() bool
}

// acquireError maps an error of Scheduler.Acquire to the FC error the
// caller sees:
//
//	a reserved concurrency limit  429 ResourceThrottled (concurrency.go)
//	StartFailure                  412 CAExited or FunctionNotStarted, with its message
//	a cold start's failure        412 FunctionNotStarted, whatever its category
//	errdefs.ErrResourceExhausted  429 ResourceExhausted (queue full or too long, memory)
//	errdefs.ErrNotFound           404 FunctionNotFound (deleted while waiting)
//	errdefs.ErrCanceled           503 ResourceThrottled (fcd is shutting down)
//	anything else                 412 FunctionNotStarted: a cold start that failed
//	                              before its container ran (pull, credentials
//	                              refused (errdefs.ErrUnauthenticated), platform)
//
// A client that went away is answered before this (ClientClosedRequest).
func acquireError(err error) *apiError {
	var ae *apiError
	var sf StartFailure
	var cs coldStartFailure
	switch {
	case errors.As(err, &ae):
		return ae
	case limitError(err) != nil:
		return limitError(err)
	case errors.As(err, &sf):
		code := CodeFunctionNotStarted
		if sf.ProcessExited() {
			code = CodeCAExited
		}
		return newError(http.StatusPreconditionFailed, code, code+": "+sf.Error())
	case errors.As(err, &cs) && cs.ColdStartFailed():
		// Before the categories: a start's NotFound (an image the
		// registry lacks) is not the function's.
		return newError(http.StatusPreconditionFailed, CodeFunctionNotStarted, "the function instance failed to start: "+err.Error())
	case errdefs.IsResourceExhausted(err):
		return newError(http.StatusTooManyRequests, CodeResourceExhausted, err.Error())
	case errdefs.IsNotFound(err):
		return newError(http.StatusNotFound, CodeFunctionNotFound, err.Error())
	case errdefs.IsCanceled(err):
		return newError(http.StatusServiceUnavailable, CodeResourceThrottled, "fcd is shutting down")
	default:
		return newError(http.StatusPreconditionFailed, CodeFunctionNotStarted, "the function instance failed to start: "+err.Error())
	}
}

// InstanceExit is the error of an instance whose process ended by itself
// while it served a request (package instance's ExitError).
type InstanceExit interface {
	error
	ExitCode() int
	OOMKilled() bool
	Logs() []string
}

// exitReporter is a lease that can say whether its instance's process
// ended, waiting while ctx allows: an *InstanceExit, or nil when it runs
// on (cmd/fcd's lease).
type exitReporter interface {
	Exited(ctx context.Context) error
}

// exitWait bounds the wait for an instance's exit status after its
// connection broke: the status follows the broken connection within
// milliseconds when the process died.
const exitWait = time.Second

// functionFailure is the body of a function error: FC's errorMessage and
// errorType, and for an instance that exited, how.
type functionFailure struct {
	ErrorMessage string   `json:"errorMessage"`
	ErrorType    string   `json:"errorType,omitempty"`
	ExitCode     *int     `json:"exitCode,omitempty"`
	OOM          *bool    `json:"oom,omitempty"`
	Logs         []string `json:"logs,omitempty"`
}

// instanceFailure maps the error of a request whose instance broke off
// mid-request to the function error its caller gets (with the status
// functionError chooses: 200 and x-fc-error-type for InvokeFunction, 502
// for HTTP triggers):
//
//	InstanceExit  errorType CAExited, "Process exited unexpectedly before
//	              completing request (exit code N, oom=B)", exitCode, oom
//	              and the instance's last log lines
//	anything else "The function instance ... could not serve the request"
//
// Not 412 CAExited: FC answers that to a start that failed, a request
// refused. This request was accepted and its instance died under it,
// which FC reports as a function error (UnhandledInvocationError) so the
// SDKs hand the body to the caller, and a gateway as 502. CAExited names
// the cause, as FC's code for a custom container's process that exited.
func instanceFailure(instanceID string, err error) functionFailure {
	var ie InstanceExit
	if errors.As(err, &ie) {
		code, oom := ie.ExitCode(), ie.OOMKilled()
		return functionFailure{
			ErrorMessage: fmt.Sprintf("Process exited unexpectedly before completing request (exit code %d, oom=%v): %v", code, oom, ie),
			ErrorType:    CodeCAExited,
			ExitCode:     &code,
			OOM:          &oom,
			Logs:         ie.Logs(),
		}
	}
	return functionFailure{ErrorMessage: fmt.Sprintf("The function instance %s could not serve the request: %v", instanceID, err)}
}

// headline is the message's first sentence, for the instance's log,
// which holds the log tail already.
func (f functionFailure) headline() string {
	head, _, _ := strings.Cut(f.ErrorMessage, ": ")
	return head
}

// FC codes of the async API.
const (
	CodeAsyncTaskNotFound      = "AsyncTaskNotFound"      // 404
	CodeAsyncConfigNotFound    = "AsyncConfigNotExists"   // 404; FC's, as terraform-provider-alicloud's fcv3 resource matches it
	CodeAsyncTaskAlreadyExists = "AsyncTaskAlreadyExists" // 409
)

// asyncError maps the queue's errors to FC's.
func asyncError(err error) *apiError {
	switch {
	case errors.Is(err, async.ErrTaskExists):
		return newError(http.StatusConflict, CodeAsyncTaskAlreadyExists, err.Error())
	case errors.Is(err, async.ErrTaskNotFound):
		return newError(http.StatusNotFound, CodeAsyncTaskNotFound, err.Error())
	case errors.Is(err, async.ErrConfigNotFound):
		return newError(http.StatusNotFound, CodeAsyncConfigNotFound, err.Error())
	case errors.Is(err, async.ErrTaskFinished):
		return newError(http.StatusBadRequest, CodeInvalidArgument, err.Error())
	case errors.Is(err, async.ErrClosed):
		return newError(http.StatusServiceUnavailable, CodeResourceThrottled, "fcd is shutting down: the event was not accepted")
	default:
		return toAPIError(err, CodeFunctionNotFound)
	}
}

// writeError writes err as FC's error response.
func writeError(ctx *fasthttp.RequestCtx, requestID string, err *apiError) {
	body, _ := json.Marshal(errorBody{Code: err.Code, Message: err.Message, RequestID: requestID})
	ctx.Response.Header.SetContentType("application/json")
	ctx.SetStatusCode(err.Status)
	ctx.SetBody(body)
}
