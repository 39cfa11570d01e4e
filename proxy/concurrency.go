package proxy

import (
	"errors"
	"net/http"
	"sort"
	"strconv"

	"github.com/containerd/errdefs"
	"github.com/valyala/fasthttp"

	"github.com/fcd-dev/fcd/api"
)

// Reserved concurrency (PutConcurrencyConfig, GetConcurrencyConfig,
// DeleteConcurrencyConfig, ListConcurrencyConfigs) and the invocation
// switch (DisableFunctionInvocation, EnableFunctionInvocation). The cap
// itself is the scheduler's (VersionPools.SetConcurrencyLimit), as the
// store's watch reports the config (applyVersioning).

// CodeConcurrencyConfigNotFound answers GetConcurrencyConfig of a
// function without one (404). FC 3.0 calls it OnDemandConfigNotFound
// (reserved concurrency is its on-demand config internally): the code
// that terraform-provider-alicloud's fcv3 concurrency config resource
// takes for "not found".
const CodeConcurrencyConfigNotFound = "OnDemandConfigNotFound"

// CodeReservedExhausted answers an invocation over the function's
// reserved concurrency (429).
const CodeReservedExhausted = "ResourceThrottled"

// concurrencyLimited is the scheduler's error for a function at its
// reserved concurrency.
type concurrencyLimited interface {
	error
	ConcurrencyLimited() bool
}

// limitError maps a concurrency-limit error of Acquire, or returns nil.
func limitError(err error) *apiError {
	var cl concurrencyLimited
	if errors.As(err, &cl) && cl.ConcurrencyLimited() {
		return newError(http.StatusTooManyRequests, CodeReservedExhausted, "Reserve resource exhausted: "+cl.Error())
	}
	return nil
}

func (s *Server) handleConcurrency(ctx *fasthttp.RequestCtx, vs VersionStore, name, method string, body []byte) error {
	switch method {
	case http.MethodPut:
		var in api.PutConcurrencyInput
		if err := decodeJSON(body, &in); err != nil {
			return err
		}
		if err := in.Validate(); err != nil {
			return err
		}
		f, err := s.opts.Functions.GetFunction(ctx, name)
		if err != nil {
			return err
		}
		cc := api.ConcurrencyConfig{FunctionArn: f.FunctionArn, ReservedConcurrency: *in.ReservedConcurrency}
		if err := vs.PutConcurrencyConfig(ctx, name, cc); err != nil {
			return err
		}
		if err := s.sync(ctx); err != nil {
			return err
		}
		return writeJSON(ctx, http.StatusOK, cc)
	case http.MethodGet:
		if _, err := s.opts.Functions.GetFunction(ctx, name); err != nil {
			return err
		}
		cc, err := vs.GetConcurrencyConfig(ctx, name)
		if errdefs.IsNotFound(err) {
			return newError(http.StatusNotFound, CodeConcurrencyConfigNotFound, "function "+strconv.Quote(name)+" has no concurrency config")
		}
		if err != nil {
			return err
		}
		return writeJSON(ctx, http.StatusOK, cc)
	case http.MethodDelete:
		if _, err := s.opts.Functions.GetFunction(ctx, name); err != nil {
			return err
		}
		if err := vs.DeleteConcurrencyConfig(ctx, name); err != nil {
			return err
		}
		if err := s.sync(ctx); err != nil {
			return err
		}
		ctx.SetStatusCode(http.StatusNoContent)
		return nil
	default:
		return newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, method+" is not allowed on "+string(ctx.Path()))
	}
}

// concurrencyConfigsPath is ListConcurrencyConfigs.
const concurrencyConfigsPath = "/" + api.Version + "/concurrency-configs"

// concurrencyPage is ListConcurrencyConfigs' response.
type concurrencyPage struct {
	Configs   []api.ConcurrencyConfig `json:"configs"`
	NextToken string                  `json:"nextToken,omitempty"`
}

// listConcurrencyConfigs serves ListConcurrencyConfigs: every function's,
// or functionName's only, by function name from nextToken on.
func (s *Server) listConcurrencyConfigs(ctx *fasthttp.RequestCtx, rid string) {
	_, aerr := s.readSigned(ctx, s.opts.MaxControlBody)
	if aerr == nil && string(ctx.Method()) != http.MethodGet {
		aerr = newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, string(ctx.Method())+" is not allowed on "+concurrencyConfigsPath)
	}
	if aerr != nil {
		s.fail(ctx, rid, aerr)
		return
	}
	if err := s.writeConcurrencyConfigs(ctx); err != nil {
		s.fail(ctx, rid, toAPIError(err, CodeFunctionNotFound))
	}
}

func (s *Server) writeConcurrencyConfigs(ctx *fasthttp.RequestCtx) error {
	vs, err := s.versionStore()
	if err != nil {
		return err
	}
	q := ctx.QueryArgs()
	limit, aerr := listLimit(q.Peek("limit"))
	if aerr != nil {
		return aerr
	}
	only, start := string(q.Peek("functionName")), string(q.Peek("nextToken"))
	all, err := vs.ConcurrencyConfigs(ctx)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(all))
	for n := range all {
		if (only == "" || n == only) && n >= start {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	page := concurrencyPage{Configs: []api.ConcurrencyConfig{}}
	for _, n := range names {
		if len(page.Configs) == limit {
			page.NextToken = n
			break
		}
		page.Configs = append(page.Configs, all[n])
	}
	return writeJSON(ctx, http.StatusOK, page)
}

// invocationSwitch is DisableFunctionInvocation's and
// EnableFunctionInvocation's response.
type invocationSwitch struct {
	Success bool `json:"success"`
}

// setInvocation serves DisableFunctionInvocation and
// EnableFunctionInvocation. abortOngoingRequest is refused: requests in
// flight finish (fcd does not cut them off).
func (s *Server) setInvocation(ctx *fasthttp.RequestCtx, vs VersionStore, name string, enable bool, body []byte) error {
	var r *api.InvocationRestriction
	if !enable {
		var in api.DisableInvocationInput
		if len(body) > 0 {
			if err := decodeJSON(body, &in); err != nil {
				return err
			}
		}
		if in.AbortOngoingRequest != nil && *in.AbortOngoingRequest {
			return newError(http.StatusBadRequest, CodeInvalidArgument, "abortOngoingRequest is not supported here: requests in flight finish; new ones are refused")
		}
		r = &api.InvocationRestriction{Disable: true, LastModifiedTime: api.Timestamp(s.opts.Now())}
		if in.Reason != nil {
			r.Reason = *in.Reason
		}
	}
	if err := vs.SetInvocationRestriction(ctx, name, r); err != nil {
		return err
	}
	if err := s.sync(ctx); err != nil {
		return err
	}
	return writeJSON(ctx, http.StatusOK, invocationSwitch{Success: true})
}
