package proxy

import (
	"bytes"
	"net/http"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/fcd-dev/fcd/api"
)

// HTTP triggers: a request reaches a function's server with its method,
// path, query, headers and body, either by Host (<function>.<domain>) or
// under /fn/<function>/, a prefix that is stripped. They are unsigned.

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
	rest := uri[len(triggerPrefix):]
	end := bytes.IndexAny(rest, "/?")
	if end < 0 {
		return unescape(string(rest)), []byte("/")
	}
	name := unescape(string(rest[:end]))
	if rest[end] == '?' {
		return name, append([]byte("/"), rest[end:]...)
	}
	return name, rest[end:]
}

func (s *Server) httpTrigger(ctx *fasthttp.RequestCtx, rid, name string, uri []byte) {
	if err := api.ValidateFunctionName(name); err != nil {
		writeError(ctx, rid, newError(http.StatusNotFound, CodeFunctionNotFound, "no function named "+strconv.Quote(name)))
		return
	}
	s.metrics.invocations.Add(1)
	s.invoke(ctx, rid, name, invocation{controlPath: "/http-invoke", path: uri})
}
