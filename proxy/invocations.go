package proxy

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fcd-dev/fcd/api"
)

// Recent invocations, for the console, read from what fcd keeps anyway:
// the FC Invoke Start/End markers in the function's log files and the
// instance start records, and the HTTP status of each request, which the
// invoke path records in a fixed ring (statuslog.go).
//
//	GET /fcd/v1/invocations/{function}?limit=N   the last N (default 100) invocations, newest first

// Invocation is one request to an instance of a function.
type Invocation struct {
	RequestID  string    `json:"requestId"`
	InstanceID string    `json:"instanceId"`
	Start      time.Time `json:"start"`
	// End is zero while the request runs.
	End        time.Time `json:"end,omitzero"`
	DurationMs float64   `json:"durationMs"`
	// Status is "ended" (the request ended: the instance answered, or
	// failed; the log's markers do not say which, nor the HTTP status),
	// "timeout" (it ran past the function's timeout) or "running".
	Status string `json:"status"`
	// HTTPStatus is the status code the client got, once the response's
	// head was sent; 0 when unknown (running, or no longer kept: the
	// proxy keeps the last few thousand).
	HTTPStatus int `json:"httpStatus,omitempty"`
	// Cold marks the first request of an instance started for it;
	// ColdStart is then that start, phase by phase.
	Cold      bool           `json:"cold"`
	ColdStart *api.ColdStart `json:"coldStart,omitempty"`
}

// InvocationsPage is the body of GET /fcd/v1/invocations/{function}.
type InvocationsPage struct {
	Invocations []Invocation `json:"invocations"`
}

// invocationLogLines is how much of the log the list reads back.
const invocationLogLines = 20000

// Invocation statuses.
const (
	StatusEnded   = "ended"
	StatusTimeout = "timeout"
	StatusRunning = "running"
)

func (s *Server) listInvocations(ctx *fasthttp.RequestCtx, name string) error {
	if s.opts.Logs == nil || s.opts.ColdStarts == nil {
		return newError(http.StatusNotImplemented, "NotImplemented", "this fcd runs no instances")
	}
	if _, err := s.fns.get(ctx, s.opts.Functions, name); err != nil {
		return toAPIError(err, CodeFunctionNotFound)
	}
	limit := 100
	if v := ctx.QueryArgs().Peek("limit"); len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n <= 0 {
			return newError(http.StatusBadRequest, CodeInvalidArgument, fmt.Sprintf("limit %q is invalid: it must be a positive number of invocations", v))
		}
		limit = n
	}
	lines, err := s.opts.Logs.ReadLogs(name, invocationLogLines)
	if err != nil {
		return err
	}
	invs := invocationsFromLog(lines, s.opts.ColdStarts.ColdStarts(name, 0))
	codes := s.statuses.statuses()
	for i := range invs {
		invs[i].HTTPStatus = codes[invs[i].RequestID]
	}
	if len(invs) > limit {
		invs = invs[:limit]
	}
	return writeJSON(ctx, http.StatusOK, InvocationsPage{Invocations: invs})
}

// logLine is a parsed instance log line:
// "<time> <instance id> <stream> <text>" (instance/logs.go).
type logLine struct {
	at       time.Time
	instance string
	stream   string
	text     string
}

func parseLogLine(l string) (logLine, bool) {
	ts, rest, ok := strings.Cut(l, " ")
	if !ok {
		return logLine{}, false
	}
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return logLine{}, false
	}
	id, rest, ok := strings.Cut(rest, " ")
	if !ok {
		return logLine{}, false
	}
	stream, text, _ := strings.Cut(rest, " ")
	return logLine{at: at, instance: id, stream: stream, text: text}, true
}

const timedOutPrefix = "Function timed out after "

// invocationsFromLog pairs the invoke markers of lines into invocations,
// newest first, and marks each instance's first request after a recorded
// start as cold.
func invocationsFromLog(lines []string, starts []api.ColdStart) []Invocation {
	byID := map[string]*Invocation{}
	var order []*Invocation
	for _, raw := range lines {
		l, ok := parseLogLine(raw)
		if !ok || l.stream != "fc" {
			continue
		}
		switch {
		case strings.HasPrefix(l.text, invokeStart):
			inv := &Invocation{RequestID: strings.TrimPrefix(l.text, invokeStart), InstanceID: l.instance, Start: l.at, Status: StatusRunning}
			byID[inv.RequestID] = inv
			order = append(order, inv)
		case strings.HasPrefix(l.text, invokeEnd):
			if inv := byID[strings.TrimPrefix(l.text, invokeEnd)]; inv != nil {
				inv.End = l.at
				inv.DurationMs = float64(l.at.Sub(inv.Start).Microseconds()) / 1000
				if inv.Status == StatusRunning {
					inv.Status = StatusEnded
				}
			}
		case strings.HasPrefix(l.text, timedOutPrefix):
			_, rid, _ := strings.Cut(l.text, " RequestId: ")
			if inv := byID[rid]; inv != nil {
				inv.Status = StatusTimeout
			}
		}
	}
	markCold(order, starts)
	out := make([]Invocation, len(order))
	for i, inv := range order {
		out[len(order)-1-i] = *inv
	}
	return out
}

// markCold marks, for every recorded start, the first invocation its
// instance served after it.
func markCold(order []*Invocation, starts []api.ColdStart) {
	byInstance := map[string]*api.ColdStart{}
	for i := range starts {
		byInstance[starts[i].InstanceID] = &starts[i]
	}
	seen := map[string]bool{}
	sort.SliceStable(order, func(i, j int) bool { return order[i].Start.Before(order[j].Start) })
	for _, inv := range order {
		if seen[inv.InstanceID] {
			continue
		}
		seen[inv.InstanceID] = true
		if cs := byInstance[inv.InstanceID]; cs != nil {
			inv.Cold, inv.ColdStart = true, cs
		}
	}
}
