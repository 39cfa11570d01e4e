package proxy

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/containerd/errdefs"
	"github.com/valyala/fasthttp"
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
	CodeMethodNotAllowed      = "MethodNotAllowed" // 405
	CodePathNotFound          = "PathNotFound"     // 404
	CodeInternal              = "InternalError"    // 500
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

// toAPIError maps an error from the store, api validation or the scheduler
// to the FC error the caller sees. notFound is the code for
// errdefs.ErrNotFound in this request's context.
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

// writeError writes err as FC's error response.
func writeError(ctx *fasthttp.RequestCtx, requestID string, err *apiError) {
	body, _ := json.Marshal(errorBody{Code: err.Code, Message: err.Message, RequestID: requestID})
	ctx.Response.Header.SetContentType("application/json")
	ctx.SetStatusCode(err.Status)
	ctx.SetBody(body)
}
