package proxy

import (
	"bytes"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/valyala/fasthttp"

	"github.com/fcd-dev/fcd/api"
)

// HTTP triggers: a request reaches a function's server with its method,
// path, query, headers and body, either by Host (<function>.<domain>) or
// under /fn/<function>/, a prefix that is stripped. A function without an
// HTTP trigger has neither (404). Anonymous triggers are unsigned.

// triggerHost returns the function a Host header names, if it is
// <function>.<domain>[:port].
func (s *Server) triggerHost(host []byte) (string, bool) {
	if i := bytes.LastIndexByte(host, ':'); i >= 0 && bytes.IndexByte(host[i:], ']') < 0 {
		host = host[:i]
	}
	if len(host) <= len(s.hostSuffix) {
		return "", false
	}
	// Host names are case-insensitive; compare without allocating.
	tail := host[len(host)-len(s.hostSuffix):]
	if !bytes.EqualFold(tail, []byte(s.hostSuffix)) {
		return "", false
	}
	return string(host[:len(host)-len(s.hostSuffix)]), true
}

// splitTriggerPath splits "/fn/<name>/rest?q" into name and "/rest?q".
func splitTriggerPath(uri []byte) (string, []byte) {
	name, rest := cutTriggerPath(uri)
	return unescape(string(name)), rest
}

// cutTriggerPath is splitTriggerPath with the name as it is in uri,
// still escaped.
func cutTriggerPath(uri []byte) (name, rest []byte) {
	rest = uri[len(triggerPrefix):]
	end := bytes.IndexAny(rest, "/?")
	if end < 0 {
		return rest, []byte("/")
	}
	if rest[end] == '?' {
		return rest[:end], append([]byte("/"), rest[end:]...)
	}
	return rest[:end], rest[end:]
}

// triggerPath is splitTriggerPath for a request: the name of a cached
// function is the cache's own string, not a new one per request, and cf
// is the cached function (nil when it is not cached).
func (s *Server) triggerPath(uri []byte) (name string, rest []byte, cf *cachedFunction) {
	raw, rest := cutTriggerPath(uri)
	if bytes.IndexByte(raw, '%') < 0 {
		if cf := s.fns.lookup(raw); cf != nil {
			return cf.name, rest, cf
		}
	}
	return unescape(string(raw)), rest, nil
}

// httpTrigger serves an HTTP trigger request for function name; cf is
// the function when the route found it cached, else nil.
func (s *Server) httpTrigger(ctx *fasthttp.RequestCtx, rid, name string, uri []byte, cf *cachedFunction) {
	// A function in the cache has a valid name: the warm path skips the
	// regular expression.
	if cf == nil && !s.fns.has(name) {
		if err := api.ValidateFunctionName(name); err != nil {
			writeError(ctx, rid, newError(http.StatusNotFound, CodeFunctionNotFound, "no function named "+strconv.Quote(name)))
			return
		}
	}
	s.metrics.invocations.Add(1)
	s.invoke(ctx, rid, name, invocation{controlPath: "/http-invoke", path: uri, cached: cf})
}

// checkTrigger applies a function's HTTP trigger configuration to a
// request: as in FC, a function has an HTTP endpoint only when it has an
// HTTP trigger (hc nil: 404); the trigger's methods; and for authType
// function a signature over the request, whose body is then read whole
// (up to MaxInvokeBody).
func (s *Server) checkTrigger(ctx *fasthttp.RequestCtx, function string, hc *api.HTTPTriggerConfig, inv *invocation) *apiError {
	if hc == nil {
		return newError(http.StatusNotFound, CodeTriggerNotFound, "function "+strconv.Quote(function)+" has no HTTP trigger: create one (fcctl trigger create) to give it an HTTP endpoint")
	}
	if !hc.Allows(string(ctx.Method())) {
		return newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "the function's HTTP trigger does not accept "+string(ctx.Method()))
	}
	if hc.AuthType != api.AuthTypeFunction {
		return nil
	}
	body, aerr := s.readSigned(ctx, MaxInvokeBody)
	if aerr != nil {
		return aerr
	}
	inv.body, inv.signed = body, true
	return nil
}

// handleTriggers serves CreateTrigger, GetTrigger, UpdateTrigger,
// DeleteTrigger and ListTriggers.
func (s *Server) handleTriggers(ctx *fasthttp.RequestCtx, function, name, method string, body []byte) (err error) {
	st := s.opts.Functions
	if _, err := st.GetFunction(ctx, function); err != nil {
		return err
	}
	if method != http.MethodGet {
		defer func() {
			if err == nil {
				err = s.sync(ctx)
			}
		}()
	}
	switch {
	case name == "" && method == http.MethodPost:
		in, err := decodeTriggerInput(body)
		if err != nil {
			return err
		}
		t, err := api.NewTrigger(in, newID(), s.opts.Now())
		if err != nil {
			return err
		}
		if err := st.CreateTrigger(ctx, function, t); err != nil {
			return err
		}
		return s.writeTrigger(ctx, function, t)
	case name == "" && method == http.MethodGet:
		return s.listTriggers(ctx, function)
	case name != "" && method == http.MethodGet:
		t, err := st.GetTrigger(ctx, function, name)
		if err != nil {
			return triggerNotFound(err)
		}
		return s.writeTrigger(ctx, function, t)
	case name != "" && method == http.MethodPut:
		in, err := decodeTriggerInput(body)
		if err != nil {
			return err
		}
		now := s.opts.Now()
		t, err := st.UpdateTrigger(ctx, function, name, func(t *api.Trigger) (*api.Trigger, error) { return t.Update(in, now) })
		if err != nil {
			return triggerNotFound(err)
		}
		return s.writeTrigger(ctx, function, t)
	case name != "" && method == http.MethodDelete:
		if err := st.DeleteTrigger(ctx, function, name); err != nil {
			return triggerNotFound(err)
		}
		ctx.SetStatusCode(http.StatusNoContent)
		return nil
	default:
		return newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, method+" is not allowed on "+string(ctx.Path()))
	}
}

// CodeTriggerNotFound is FC's code for a missing trigger.
const CodeTriggerNotFound = "TriggerNotFound"

func triggerNotFound(err error) error {
	if errdefs.IsNotFound(err) {
		return newError(http.StatusNotFound, CodeTriggerNotFound, err.Error())
	}
	return err
}

func (s *Server) writeTrigger(ctx *fasthttp.RequestCtx, function string, t *api.Trigger) error {
	t.TriggerURLs(function, s.endpoint(ctx), s.opts.Domain)
	return writeJSON(ctx, http.StatusOK, t)
}

// endpoint is the host:port this request reached fcd at.
func (s *Server) endpoint(ctx *fasthttp.RequestCtx) string {
	return ctx.LocalAddr().String()
}

// triggerPage is ListTriggers' response body.
type triggerPage struct {
	Triggers  []*api.Trigger `json:"triggers"`
	NextToken string         `json:"nextToken,omitempty"`
}

// listTriggers serves ListTriggers with FC's prefix, limit and nextToken
// (the name of the first trigger of the next page).
func (s *Server) listTriggers(ctx *fasthttp.RequestCtx, function string) error {
	q := ctx.QueryArgs()
	limit, aerr := listLimit(q.Peek("limit"))
	if aerr != nil {
		return aerr
	}
	all, err := s.opts.Functions.ListTriggers(ctx, function)
	if err != nil {
		return err
	}
	prefix, start := string(q.Peek("prefix")), string(q.Peek("nextToken"))
	page := triggerPage{Triggers: []*api.Trigger{}}
	for _, t := range sortedTriggers(all) {
		if !strings.HasPrefix(t.TriggerName, prefix) || t.TriggerName < start {
			continue
		}
		if len(page.Triggers) == limit {
			page.NextToken = t.TriggerName
			break
		}
		t.TriggerURLs(function, s.endpoint(ctx), s.opts.Domain)
		page.Triggers = append(page.Triggers, t)
	}
	return writeJSON(ctx, http.StatusOK, page)
}

func sortedTriggers(ts []*api.Trigger) []*api.Trigger {
	slices.SortFunc(ts, func(a, b *api.Trigger) int { return strings.Compare(a.TriggerName, b.TriggerName) })
	return ts
}

// decodeTriggerInput decodes a CreateTrigger or UpdateTrigger body,
// refusing the fields fcd does not implement.
func decodeTriggerInput(body []byte) (*api.TriggerInput, error) {
	if len(body) == 0 {
		return nil, newError(http.StatusBadRequest, CodeInvalidArgument, "request body is empty; a JSON object is required")
	}
	return api.DecodeTriggerInput(body)
}
