package proxy

import (
	"encoding/json"
	"errors"
	"net/http"

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

// FC codes of the async API.
const (
	CodeAsyncTaskNotFound      = "AsyncTaskNotFound"      // 404
	CodeAsyncConfigNotFound    = "AsyncConfigNotFound"    // 404
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
