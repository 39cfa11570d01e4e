package proxy

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// A function's log, followed, for the console:
//
//	GET /fcd/v1/logs/{function}?tail=N   the last N lines (default 200; 0: none), then
//	                                     new lines as they are written, as
//	                                     text/plain, one line each
//
// The stream ends after logFollowLimit, when fcd stops, or when the client
// is gone (a write fails); the console reconnects.

const (
	logFollowLimit = 5 * time.Minute
	logFollowEvery = 500 * time.Millisecond
	// logHeartbeat is how many quiet polls pass between heartbeats.
	logHeartbeat = 10
)

func (s *Server) followLogs(ctx *fasthttp.RequestCtx, name string) error {
	if s.opts.Logs == nil {
		return newError(http.StatusNotImplemented, "NotImplemented", "this fcd runs no instances")
	}
	if _, err := s.fns.get(ctx, s.opts.Functions, name); err != nil {
		return toAPIError(err, CodeFunctionNotFound)
	}
	tail := 200
	if v := ctx.QueryArgs().Peek("tail"); len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 0 {
			return newError(http.StatusBadRequest, CodeInvalidArgument, fmt.Sprintf("tail %q is invalid: it must be a number of lines", v))
		}
		tail = n
	}
	// tail 0 follows from the end: the last line is read only to know
	// where new lines begin.
	first, err := s.opts.Logs.ReadLogs(name, max(tail, 1))
	if err != nil {
		return err
	}
	var seen string
	if tail == 0 && len(first) > 0 {
		seen, first = first[len(first)-1], nil
	}
	// The stream ends when fasthttp shuts down (ctx.Done, a channel of the
	// server's), so an open console does not hold a restart for the
	// shutdown grace period.
	logs, shutdown, done := s.opts.Logs, ctx.Done(), s.ctx.Done()
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		last := writeLines(w, first, seen)
		if w.Flush() != nil {
			return
		}
		tick := time.NewTicker(logFollowEvery)
		defer tick.Stop()
		idle := 0
		limit := time.NewTimer(logFollowLimit)
		defer limit.Stop()
		for {
			select {
			case <-done:
				return
			case <-shutdown:
				return
			case <-limit.C:
				return
			case <-tick.C:
			}
			lines, err := logs.ReadLogs(name, 1000)
			if err != nil {
				return
			}
			fresh := newSince(lines, last)
			last = writeLines(w, fresh, last)
			// Log lines are never empty: an empty line is a heartbeat,
			// whose write finds a client that is gone.
			if idle++; len(fresh) == 0 && idle%logHeartbeat == 0 {
				w.WriteByte('\n')
			}
			if w.Flush() != nil {
				return
			}
		}
	})
	return nil
}

// newSince returns the lines after the last occurrence of last; all of
// lines when last is empty or no longer among them (rotated away).
func newSince(lines []string, last string) []string {
	if last == "" {
		return lines
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if lines[i] == last {
			return lines[i+1:]
		}
	}
	return lines
}

// writeLines writes lines and returns the last one written, or last when
// there were none.
func writeLines(w *bufio.Writer, lines []string, last string) string {
	for _, l := range lines {
		w.WriteString(l)
		w.WriteByte('\n')
		last = l
	}
	return last
}
