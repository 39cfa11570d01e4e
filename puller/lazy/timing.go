package lazy

import (
	"sync"
	"time"

	"github.com/fcd-dev/fcd/instance/image"
)

// timing measures the steps of one Prepare for image.Stats: each is
// counted from the start of Prepare, and the per-layer ones (index,
// mount) cover all layers as one span of wall time.
type timing struct {
	resolve       image.Span
	auth          image.BusyRecorder
	index, mount  image.SpanRecorder
	mu            sync.Mutex
	prefetch      image.Span // Duration set once the replay ended
	prefetchBegin time.Time  // zero: no replay
	prefetchDone  bool
	prefetchBytes int64
}

func newTiming(origin time.Time) *timing {
	t := &timing{}
	t.auth.Origin, t.index.Origin, t.mount.Origin = origin, origin, origin
	return t
}

// replayBegan, replayed and replayEnded time the start-up record's replay.
func (t *timing) replayBegan(at time.Time) {
	t.mu.Lock()
	t.prefetchBegin = at
	t.mu.Unlock()
}

func (t *timing) replayed(n int64) {
	t.mu.Lock()
	t.prefetchBytes += n
	t.mu.Unlock()
}

func (t *timing) replayEnded(origin, at time.Time) {
	t.mu.Lock()
	t.prefetch, t.prefetchDone = image.SpanOf(origin, t.prefetchBegin, at), true
	t.mu.Unlock()
}

// fill sets the steps' spans in st; a replay still running counts until
// now.
func (t *timing) fill(origin time.Time, st *image.Stats) {
	st.Resolve, st.Auth, st.Index, st.Mount = t.resolve, t.auth.Span(), t.index.Span(), t.mount.Span()
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.prefetchDone:
		st.Prefetch = t.prefetch
	case !t.prefetchBegin.IsZero():
		st.Prefetch = image.SpanOf(origin, t.prefetchBegin, time.Now())
	}
	st.PrefetchBytes = t.prefetchBytes
}
