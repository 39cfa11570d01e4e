package proxy

import (
	"net/http"

	"github.com/valyala/fasthttp"
)

// The web console's API: its session and the read endpoints it needs
// beyond FC's (session.go, invocations.go, logstream.go, stats.go), all
// under /fcd/v1/ and verified like every call there.

// consolePrefix is where Options.Console is served.
var consolePrefix = []byte("/console")

// isConsoleResource reports whether /fcd/v1/{resource} is served by
// handleConsoleAPI.
func isConsoleResource(resource string) bool {
	switch resource {
	case "session", "invocations", "logs", "stats":
		return true
	}
	return false
}

func (s *Server) handleConsoleAPI(ctx *fasthttp.RequestCtx, resource, name, method, keyID string) error {
	switch {
	case resource == "session" && name == "":
		return s.handleSession(ctx, method, keyID)
	case method != http.MethodGet:
		return newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, method+" is not allowed on "+string(ctx.Path()))
	case resource == "invocations" && name != "":
		return s.listInvocations(ctx, unescape(name))
	case resource == "logs" && name != "":
		return s.followLogs(ctx, unescape(name))
	case resource == "stats" && name == "":
		return s.stats(ctx)
	}
	return newError(http.StatusNotFound, CodePathNotFound, "no API at "+string(ctx.Path()))
}
