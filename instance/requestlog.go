package instance

import (
	"slices"
	"time"
)

// Per-request logs. A request served by an instance may ask for its own
// log lines back (FC's x-fc-log-type: Tail). They are not read back from
// the log files, which hold every instance of the function and rotate:
// while a request's RequestLog collects, every line its instance logs (its
// stdout and stderr, and fcd's own lines such as the FC Invoke markers) is
// also kept in memory for it, up to RequestLogBytes, oldest dropped first.
// With instanceConcurrency > 1 the lines of requests served at once cannot
// be told apart, so each gets all of them, as FC does.
const (
	// RequestLogBytes bounds the lines one RequestLog keeps (FC returns
	// the last 4 KB).
	RequestLogBytes = 8 << 10
	// maxRequestLogs bounds the RequestLogs collecting at once on one
	// instance; past it a RequestLog keeps only the lines written through
	// it.
	maxRequestLogs = 256
)

// RequestLog is one request's view of its instance's log. Create it with
// Instance.RequestLog; call End once when the request is over. Its methods
// are safe for concurrent use with the instance's logging.
type RequestLog struct {
	il         *instanceLog
	collect    bool // keeps lines for End
	registered bool // among il.reqs, receiving every line

	// lines and size are guarded by il.mu.
	lines []string
	size  int
	ended bool
}

// RequestLog starts the log of one request on the instance. When collect
// is set, the lines the instance logs until End are kept for End to
// return; otherwise nothing is kept and the RequestLog only writes lines,
// which costs nothing per request beyond those writes.
func (i *Instance) RequestLog(collect bool) *RequestLog {
	return i.log.requestLog(collect)
}

func (il *instanceLog) requestLog(collect bool) *RequestLog {
	if !collect {
		// Stateless: one per instance serves every such request.
		return &il.plain
	}
	r := &RequestLog{il: il, collect: true}
	il.mu.Lock()
	if len(il.reqs) < maxRequestLogs {
		il.reqs = append(il.reqs, r)
		r.registered = true
	}
	il.mu.Unlock()
	return r
}

// Log writes a line of fcd's own (stream fc) to the instance's log under
// the request: text followed by the request's id, e.g. "FC Invoke Start
// RequestId: " and the id. It allocates nothing unless the line is
// collected.
func (r *RequestLog) Log(text, requestID string) {
	writeLog(r.il, time.Now(), StreamFC, text, requestID, r)
}

// LogAt is Log for a line dated t: the proxy has read the clock for the
// request already (when it sent it, when its answer was read), and its
// markers share those readings.
func (r *RequestLog) LogAt(t time.Time, text, requestID string) {
	writeLog(r.il, t, StreamFC, text, requestID, r)
}

// End stops collecting and returns the request's lines, oldest first, as
// they are in the log file (time, instance, stream, text), at most
// RequestLogBytes of them; nil when the RequestLog does not collect.
func (r *RequestLog) End() []string {
	if !r.collect {
		return nil
	}
	il := r.il
	il.mu.Lock()
	defer il.mu.Unlock()
	r.ended = true
	if r.registered {
		il.reqs = slices.DeleteFunc(il.reqs, func(x *RequestLog) bool { return x == r })
	}
	return r.lines
}

// add keeps line, dropping the oldest lines past RequestLogBytes. The
// caller holds il.mu.
func (r *RequestLog) add(line string) {
	if r.ended {
		return
	}
	r.lines = append(r.lines, line)
	r.size += len(line) + 1
	drop := 0
	for r.size > RequestLogBytes && drop < len(r.lines)-1 {
		r.size -= len(r.lines[drop]) + 1
		drop++
	}
	// Reslicing keeps the memory bounded: append copies only the live
	// lines when it grows the array.
	r.lines = r.lines[drop:]
}
