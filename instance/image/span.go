package image

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// Span is one timed step of a Prepare: when it began, counted from the
// start of Prepare, and how long it ran. Steps may overlap (credentials
// are asked for while resolving, a lazy image's prefetch runs alongside
// the container's start), which is why a Span has an offset and not only
// a duration. The zero Span is a step that did not run.
type Span struct {
	Offset   time.Duration
	Duration time.Duration
}

// End is when the step ended, from the start of Prepare.
func (s Span) End() time.Duration { return s.Offset + s.Duration }

// SpanOf returns the Span from begin to end, counted from origin.
func SpanOf(origin, begin, end time.Time) Span {
	return Span{Offset: begin.Sub(origin), Duration: end.Sub(begin)}
}

// Cover returns the smallest Span holding s and t; the zero Span holds
// nothing. Steps run for several layers in parallel become one Span of
// wall time this way.
func (s Span) Cover(t Span) Span {
	switch {
	case t == Span{}:
		return s
	case s == Span{}:
		return t
	}
	off := min(s.Offset, t.Offset)
	return Span{Offset: off, Duration: max(s.End(), t.End()) - off}
}

// SpanRecorder accumulates a Span from concurrent timings of one step,
// e.g. each layer's mount. Its zero value is not usable: set Origin.
type SpanRecorder struct {
	// Origin is the start of Prepare.
	Origin time.Time

	mu   sync.Mutex
	span Span
}

// Add covers begin..end in the recorded Span.
func (r *SpanRecorder) Add(begin, end time.Time) {
	r.mu.Lock()
	r.span = r.span.Cover(SpanOf(r.Origin, begin, end))
	r.mu.Unlock()
}

// Span returns what was recorded so far.
func (r *SpanRecorder) Span() Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.span
}

// BusyRecorder accumulates a Span from timings of one step that may lie
// far apart, such as asking for credentials while resolving and again at
// a layer's first fetch a second later: the Span's Offset is the first
// timing's begin and its Duration the time inside any timing (their
// union), not the wall time from the first to the last. Its zero value is
// not usable: set Origin.
type BusyRecorder struct {
	// Origin is the start of Prepare.
	Origin time.Time

	mu    sync.Mutex
	spans []Span
}

// Add records the timing begin..end.
func (r *BusyRecorder) Add(begin, end time.Time) {
	r.mu.Lock()
	r.spans = append(r.spans, SpanOf(r.Origin, begin, end))
	r.mu.Unlock()
}

// Span returns what was recorded so far.
func (r *BusyRecorder) Span() Span {
	r.mu.Lock()
	spans := slices.Clone(r.spans)
	r.mu.Unlock()
	if len(spans) == 0 {
		return Span{}
	}
	slices.SortFunc(spans, func(a, b Span) int { return cmp.Compare(a.Offset, b.Offset) })
	out := Span{Offset: spans[0].Offset}
	cur := spans[0]
	for _, s := range spans[1:] {
		if s.Offset <= cur.End() {
			cur = cur.Cover(s)
			continue
		}
		out.Duration += cur.Duration
		cur = s
	}
	out.Duration += cur.Duration
	return out
}

// TimeCredentials wraps creds (Options.Credentials) so that r records the
// time spent in its calls, i.e. Stats.Auth: getting temporary credentials
// for the function's role. It returns nil for nil creds.
func TimeCredentials(creds func(host string) (string, string, error), r *BusyRecorder) func(string) (string, string, error) {
	if creds == nil {
		return nil
	}
	return func(host string) (string, string, error) {
		begin := time.Now()
		defer func() { r.Add(begin, time.Now()) }()
		return creds(host)
	}
}
