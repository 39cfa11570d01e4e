package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/async"
)

// AsyncQueue is what the proxy needs of the durable queue of asynchronous
// invocations (package async).
type AsyncQueue interface {
	Enqueue(ctx context.Context, inv async.Invocation) error
	Get(ctx context.Context, function, id string) (*async.Event, error)
	ListTasks(ctx context.Context, function string, f async.Filter) ([]*async.Event, string, error)
	Stop(ctx context.Context, function, id string) error

	PutConfig(ctx context.Context, function string, change func(prev *api.AsyncConfig) (api.AsyncConfig, error)) (api.AsyncConfig, error)
	Config(ctx context.Context, function string) (api.AsyncConfig, error)
	DeleteConfig(ctx context.Context, function string) error
	ListConfigs(ctx context.Context, prefix, start string, limit int) ([]api.AsyncConfig, string, error)
}

var _ AsyncQueue = (*async.Queue)(nil)

const headerAsyncTaskID = "x-fc-async-task-id"

// isAsync reports an InvokeFunction call with x-fc-invocation-type: Async.
func isAsync(ctx *fasthttp.RequestCtx, inv invocation) bool {
	return inv.controlPath == "/invoke" && bytes.EqualFold(ctx.Request.Header.Peek(headerInvocationType), []byte("Async"))
}

// invokeAsync commits the event and answers 202 once it is on disk.
func (s *Server) invokeAsync(ctx *fasthttp.RequestCtx, rid, name string, inv invocation) {
	if s.opts.Async == nil {
		s.fail(ctx, rid, newError(http.StatusBadRequest, CodeInvalidArgument, "this fcd takes no asynchronous invocations (no queue configured): use Sync"))
		return
	}
	if len(inv.body) > api.MaxAsyncPayload {
		s.fail(ctx, rid, newError(http.StatusBadRequest, CodeEntityTooLarge, fmt.Sprintf("the event of an asynchronous invocation is %d bytes, over the limit of %d", len(inv.body), api.MaxAsyncPayload)))
		return
	}
	taskID := string(ctx.Request.Header.Peek(headerAsyncTaskID))
	if taskID != "" {
		if err := api.ValidateTaskID(taskID); err != nil {
			s.fail(ctx, rid, toAPIError(err, CodeFunctionNotFound))
			return
		}
	}
	latest, err := s.fns.get(ctx, s.opts.Functions, name)
	if err != nil {
		s.fail(ctx, rid, toAPIError(err, CodeFunctionNotFound))
		return
	}
	// A qualifier that does not exist is refused now, with the error a
	// synchronous invocation gets; what an alias points to is decided
	// when the event runs.
	qualifier := requestQualifier(ctx)
	if err := s.checkEnabled(ctx, name); err != nil {
		s.fail(ctx, rid, toAPIError(err, CodeFunctionNotFound))
		return
	}
	if _, _, err := s.resolve(ctx, latest, name, qualifier); err != nil {
		s.fail(ctx, rid, toAPIError(err, CodeFunctionNotFound))
		return
	}
	err = s.opts.Async.Enqueue(ctx, async.Invocation{Function: name, Qualifier: qualifier, RequestID: rid, TaskID: taskID, Payload: bytes.Clone(inv.body)})
	if err != nil {
		s.fail(ctx, rid, asyncError(err))
		return
	}
	s.metrics.asyncAccepted.Add(1)
	ctx.SetStatusCode(http.StatusAccepted)
}

// asyncAttempt carries one attempt of an async event through invoke.
type asyncAttempt struct {
	// ctx ends when the attempt is stopped or the queue shuts down.
	ctx   context.Context
	begin func(instanceID string) error
	// qualifier is the event's version or alias, "" for LATEST.
	qualifier string
	// begun is set once begin committed the attempt.
	begun bool
}

// start commits the attempt on lease's instance; when that fails the lease
// is given back and nothing is sent.
func (a *asyncAttempt) start(lease Lease) bool {
	if err := a.begin(lease.InstanceID()); err != nil {
		lease.Release()
		return false
	}
	a.begun = true
	return true
}

// AsyncDispatcher returns the dispatcher of async attempts: each runs as
// a synchronous InvokeFunction on an in-memory request, through the same
// scheduler lease, upstream call, timeout, metering and error mapping.
func (s *Server) AsyncDispatcher() async.Dispatcher { return asyncDispatcher{s} }

type asyncDispatcher struct{ s *Server }

func (d asyncDispatcher) Dispatch(ctx context.Context, ev *async.Event, begin func(string) error) async.Result {
	s := d.s
	var req fasthttp.Request
	req.Header.SetMethod(http.MethodPost)
	req.SetRequestURI(apiPrefix + "/" + ev.Function + "/invocations")
	var rc fasthttp.RequestCtx
	rc.Init(&req, nil, fasthttpLogger{s.log})
	a := &asyncAttempt{ctx: ctx, begin: begin, qualifier: ev.Qualifier}
	s.invoke(&rc, ev.RequestID, ev.Function, invocation{controlPath: "/invoke", body: ev.Payload, async: a})
	return s.asyncResult(&rc.Response, a.begun)
}

// asyncResult reads what came of an attempt from the response a client
// would have had.
func (s *Server) asyncResult(resp *fasthttp.Response, begun bool) async.Result {
	body := drainBody(resp)
	status := resp.StatusCode()
	if !begun {
		var eb errorBody
		json.Unmarshal(body, &eb)
		switch {
		case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
			return async.Result{Outcome: async.Throttled, Error: eb.Code + ": " + eb.Message}
		case status == http.StatusNotFound && (eb.Code == CodeFunctionNotFound || eb.Code == CodeVersionNotFound || eb.Code == CodeAliasNotFound):
			// The function, or the version or alias the event names, is
			// gone: no retry can succeed.
			return async.Result{Outcome: async.Gone, Error: eb.Code + ": " + eb.Message}
		case status == http.StatusOK:
			// begin failed: nothing was sent.
			return async.Result{Outcome: async.FunctionError, Error: "the attempt did not begin"}
		default:
			return async.Result{Outcome: async.FunctionError, Error: eb.Code + ": " + eb.Message}
		}
	}
	switch {
	case len(resp.Header.Peek(headerErrorType)) > 0:
		return async.Result{Outcome: async.FunctionError, Error: string(body), Payload: body}
	case status >= 400:
		return async.Result{Outcome: async.FunctionError, Error: "the function answered HTTP " + strconv.Itoa(status), Payload: body}
	}
	return async.Result{Outcome: async.Succeeded, Payload: body}
}

// drainBody reads an invoke response's body, up to async.MaxResult kept,
// and ends a streamed one, which releases its lease.
func drainBody(resp *fasthttp.Response) []byte {
	stream := resp.BodyStream()
	if stream == nil {
		return resp.Body()
	}
	body, _ := io.ReadAll(io.LimitReader(stream, async.MaxResult))
	io.Copy(io.Discard, stream)
	resp.CloseBodyStream()
	return body
}

// handleAsync serves /functions/{name}/async-invoke-config and
// /functions/{name}/async-tasks[/{id}[/stop]].
func (s *Server) handleAsync(ctx *fasthttp.RequestCtx, name, sub, rest, method string, body []byte) error {
	if s.opts.Async == nil {
		return newError(http.StatusNotImplemented, "NotImplemented", "this fcd runs no asynchronous invocations")
	}
	id, action, _ := strings.Cut(rest, "/")
	id = unescape(id)
	switch {
	case sub == "async-invoke-config" && rest == "" && method == http.MethodPut:
		return s.putAsyncConfig(ctx, name, body)
	case sub == "async-invoke-config" && rest == "" && method == http.MethodGet:
		c, err := s.opts.Async.Config(ctx, name)
		if err != nil {
			return asyncError(err)
		}
		return writeJSON(ctx, http.StatusOK, c)
	case sub == "async-invoke-config" && rest == "" && method == http.MethodDelete:
		if err := s.opts.Async.DeleteConfig(ctx, name); err != nil {
			return asyncError(err)
		}
		ctx.SetStatusCode(http.StatusNoContent)
		return nil
	case sub == "async-tasks" && rest == "" && method == http.MethodGet:
		return s.listAsyncTasks(ctx, name)
	case sub == "async-tasks" && id != "" && action == "" && method == http.MethodGet:
		ev, err := s.asyncTask(ctx, name, id)
		if err != nil {
			return err
		}
		return writeJSON(ctx, http.StatusOK, ev.AsyncTask(s.functionArn(name), true))
	case sub == "async-tasks" && id != "" && action == "stop" && method == http.MethodPut:
		if _, err := s.asyncTask(ctx, name, id); err != nil {
			return err
		}
		if err := s.opts.Async.Stop(ctx, name, id); err != nil {
			return asyncError(err)
		}
		ctx.SetStatusCode(http.StatusOK)
		return nil
	case sub == "async-tasks" && id != "" && (action == "" || action == "stop"),
		sub == "async-invoke-config" && rest == "", sub == "async-tasks" && rest == "":
		return newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, method+" is not allowed on "+string(ctx.Path()))
	default:
		return newError(http.StatusNotFound, CodePathNotFound, "no API at "+string(ctx.Path()))
	}
}

// asyncTask returns task id of function name. A request that names a
// qualifier (?qualifier=, as GetAsyncTask and StopAsyncTask may) finds
// only a task of that qualifier.
func (s *Server) asyncTask(ctx *fasthttp.RequestCtx, name, id string) (*async.Event, error) {
	ev, err := s.opts.Async.Get(ctx, name, id)
	if err != nil {
		return nil, asyncError(err)
	}
	if q := string(ctx.QueryArgs().Peek("qualifier")); q != "" && q != ev.QualifierOrLatest() {
		return nil, newError(http.StatusNotFound, CodeAsyncTaskNotFound, fmt.Sprintf("async task %s of %s has qualifier %s, not %s", id, name, ev.QualifierOrLatest(), q))
	}
	return ev, nil
}

func (s *Server) functionArn(name string) string {
	return api.FunctionARN(s.opts.Region, s.opts.AccountID, name)
}

func (s *Server) putAsyncConfig(ctx *fasthttp.RequestCtx, name string, body []byte) error {
	var in api.AsyncConfigInput
	if err := decodeJSON(body, &in); err != nil {
		return err
	}
	if _, err := s.fns.get(ctx, s.opts.Functions, name); err != nil {
		return toAPIError(err, CodeFunctionNotFound)
	}
	if dc := in.DestinationConfig; dc != nil {
		for _, d := range []*api.Destination{dc.OnSuccess, dc.OnFailure} {
			if d == nil {
				continue
			}
			dest := api.DestinationFunction(d.Destination)
			cf, err := s.fns.get(ctx, s.opts.Functions, dest)
			if err != nil {
				return toAPIError(fmt.Errorf("destination %s: %w", d.Destination, err), CodeFunctionNotFound)
			}
			// Its qualifier, if it names one, must exist too; an alias is
			// resolved when the destination event runs.
			if _, _, err := s.resolve(ctx, cf, dest, api.DestinationQualifier(d.Destination)); err != nil {
				return err
			}
		}
	}
	c, err := s.opts.Async.PutConfig(ctx, name, func(prev *api.AsyncConfig) (api.AsyncConfig, error) {
		return in.AsyncConfig(s.functionArn(name), prev, s.opts.Now())
	})
	if err != nil {
		return toAPIError(err, CodeFunctionNotFound)
	}
	return writeJSON(ctx, http.StatusOK, c)
}

// asyncConfigsPath is ListAsyncInvokeConfigs'.
const asyncConfigsPath = "/" + api.Version + "/async-invoke-configs"

// listAsyncConfigs serves ListAsyncInvokeConfigs.
func (s *Server) listAsyncConfigs(ctx *fasthttp.RequestCtx, rid string) {
	_, aerr := s.readSigned(ctx, s.opts.MaxControlBody)
	if aerr == nil && s.opts.Async == nil {
		aerr = newError(http.StatusNotImplemented, "NotImplemented", "this fcd runs no asynchronous invocations")
	}
	if aerr == nil && string(ctx.Method()) != http.MethodGet {
		aerr = newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, string(ctx.Method())+" is not allowed on "+asyncConfigsPath)
	}
	if aerr != nil {
		s.fail(ctx, rid, aerr)
		return
	}
	q := ctx.QueryArgs()
	limit, err := listLimit(q.Peek("limit"))
	if err != nil {
		s.fail(ctx, rid, err)
		return
	}
	page := struct {
		Configs   []api.AsyncConfig `json:"configs"`
		NextToken string            `json:"nextToken,omitempty"`
	}{}
	var lerr error
	page.Configs, page.NextToken, lerr = s.opts.Async.ListConfigs(ctx, string(q.Peek("functionName")), string(q.Peek("nextToken")), limit)
	if lerr == nil {
		if page.Configs == nil {
			page.Configs = []api.AsyncConfig{}
		}
		lerr = writeJSON(ctx, http.StatusOK, page)
	}
	if lerr != nil {
		s.fail(ctx, rid, asyncError(lerr))
	}
}

func listLimit(v []byte) (int, *apiError) {
	if len(v) == 0 {
		return defaultListLimit, nil
	}
	n, err := strconv.Atoi(string(v))
	if err != nil || n < 1 || n > maxListLimit {
		return 0, newError(http.StatusBadRequest, CodeInvalidArgument, fmt.Sprintf("limit %q is invalid: it must be between 1 and %d", v, maxListLimit))
	}
	return n, nil
}

// listAsyncTasks serves ListAsyncTasks.
func (s *Server) listAsyncTasks(ctx *fasthttp.RequestCtx, name string) error {
	q := ctx.QueryArgs()
	limit, aerr := listLimit(q.Peek("limit"))
	if aerr != nil {
		return aerr
	}
	f := async.Filter{
		Prefix: string(q.Peek("prefix")), Status: string(q.Peek("status")),
		After: string(q.Peek("nextToken")), Limit: limit,
		Descending: strings.EqualFold(string(q.Peek("sortOrderByTime")), "desc"),
		Qualifier:  string(q.Peek("qualifier")),
	}
	for arg, t := range map[string]*time.Time{"startedTimeBegin": &f.StartedBegin, "startedTimeEnd": &f.StartedEnd} {
		if v := q.Peek(arg); len(v) > 0 {
			ms, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return newError(http.StatusBadRequest, CodeInvalidArgument, fmt.Sprintf("%s %q is not a time in Unix milliseconds", arg, v))
			}
			*t = time.UnixMilli(ms)
		}
	}
	payload := string(q.Peek("includePayload")) == "true"
	evs, next, err := s.opts.Async.ListTasks(ctx, name, f)
	if err != nil {
		return asyncError(err)
	}
	page := struct {
		Tasks     []*api.AsyncTask `json:"tasks"`
		NextToken string           `json:"nextToken,omitempty"`
	}{Tasks: make([]*api.AsyncTask, 0, len(evs)), NextToken: next}
	for _, ev := range evs {
		page.Tasks = append(page.Tasks, ev.AsyncTask(s.functionArn(name), payload))
	}
	return writeJSON(ctx, http.StatusOK, page)
}
