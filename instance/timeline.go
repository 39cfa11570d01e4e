package instance

import (
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Phase is one step of an instance's start, as a waterfall draws it.
type Phase struct {
	// Name is one of the Phase* names.
	Name string
	// Offset is when the phase began, counted from the start of the
	// Start call. Phases may overlap: the pull's steps lie within pull,
	// auth within the steps that asked for credentials, and a lazy
	// image's prefetch runs alongside the container's start.
	Offset   time.Duration
	Duration time.Duration
	// Bytes is, for pull, the compressed bytes fetched, and for prefetch
	// the bytes it made local; 0 for the other phases.
	Bytes int64
}

// Phase names, in the order a start runs them. pull through probe are
// measured for every start; the pull's steps (resolve through prefetch)
// only where the image implementation takes them, and first_response
// only for a start a request waited for. The names are the label values
// of fcd_instance_start_phase_seconds; issue 17's "create" is container
// and task, its "start" is task_start.
const (
	PhasePull          = "pull"           // image preparation, all its steps
	PhaseResolve       = "resolve"        // reference to manifest
	PhaseAuth          = "auth"           // temporary registry credentials
	PhaseIndex         = "index"          // lazy: TOC or index-only artifact
	PhaseFetch         = "fetch"          // full: layer download and unpack
	PhaseMount         = "mount"          // snapshot view or FUSE mounts
	PhasePrefetch      = "prefetch"       // lazy: start-up record replay
	PhaseRootfs        = "rootfs"         // writable layer and overlay
	PhaseNetwork       = "network"        // network namespace and address
	PhaseContainer     = "container"      // runtime spec and container record
	PhaseTask          = "task"           // shim and runtime create
	PhaseStart         = "task_start"     // exec of the function's process
	PhaseProbe         = "probe"          // until the port accepts (and initializer)
	PhaseFirstResponse = "first_response" // until the proxy answered the waiting request
)

// phaseNames lists every phase in order.
var phaseNames = []string{PhasePull, PhaseResolve, PhaseAuth, PhaseIndex, PhaseFetch, PhaseMount, PhasePrefetch,
	PhaseRootfs, PhaseNetwork, PhaseContainer, PhaseTask, PhaseStart, PhaseProbe, PhaseFirstResponse}

// Phases returns the start's phases in order: pull through probe always,
// the others only when they ran.
func (s StartStats) Phases() []Phase {
	out := make([]Phase, 0, len(phaseNames))
	out = append(out, Phase{Name: PhasePull, Offset: s.PullAt, Duration: s.Pull.Duration, Bytes: s.Pull.BytesFetched})
	for _, p := range []struct {
		name  string
		span  PullSpan
		bytes int64
	}{
		{PhaseResolve, s.Pull.Resolve, 0},
		{PhaseAuth, s.Pull.Auth, 0},
		{PhaseIndex, s.Pull.Index, 0},
		{PhaseFetch, s.Pull.Fetch, 0},
		{PhaseMount, s.Pull.Mount, 0},
		{PhasePrefetch, s.Pull.Prefetch, s.Pull.PrefetchBytes},
	} {
		if p.span != (PullSpan{}) {
			out = append(out, Phase{Name: p.name, Offset: s.PullAt + p.span.Offset, Duration: p.span.Duration, Bytes: p.bytes})
		}
	}
	out = append(out,
		Phase{Name: PhaseRootfs, Offset: s.RootfsAt, Duration: s.Rootfs},
		Phase{Name: PhaseNetwork, Offset: s.NetworkAt, Duration: s.Network},
		Phase{Name: PhaseContainer, Offset: s.ContainerAt, Duration: s.Container},
		Phase{Name: PhaseTask, Offset: s.TaskAt, Duration: s.Task},
		Phase{Name: PhaseStart, Offset: s.TaskStartAt, Duration: s.TaskStart},
		Phase{Name: PhaseProbe, Offset: s.ReadyAt, Duration: s.Ready},
	)
	if s.FirstResponse > 0 {
		// The request's own work on the new instance: from the end of
		// the start until the proxy began answering.
		out = append(out, Phase{Name: PhaseFirstResponse, Offset: s.Total, Duration: max(s.FirstResponse-s.Total, 0)})
	}
	return out
}

// logValue is the start as one group of a log record: each phase's
// start and duration in milliseconds, then the image's figures and the
// total.
func (s StartStats) logValue() slog.Value {
	attrs := make([]slog.Attr, 0, 3*len(phaseNames)+5)
	for _, p := range s.Phases() {
		attrs = append(attrs, slog.Float64(p.Name+"_ms", ms(p.Duration)), slog.Float64(p.Name+"_at_ms", ms(p.Offset)))
	}
	attrs = append(attrs,
		slog.Float64("total_ms", ms(s.Total)),
		slog.Bool("cached", s.Pull.Cached),
		slog.Int64("fetched_bytes", s.Pull.BytesFetched),
		slog.Int64("prefetch_bytes", s.Pull.PrefetchBytes),
	)
	if s.FirstResponse > 0 {
		attrs = append(attrs, slog.Float64("first_response_total_ms", ms(s.FirstResponse)))
	}
	return slog.GroupValue(attrs...)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// StartRecord is one successful start as the Manager saw it.
type StartRecord struct {
	Function string
	Instance string
	// Runtime is the OCI runtime that created the instance
	// (Options.Runtime with its default applied).
	Runtime string
	// At is when Start was called.
	At    time.Time
	Stats StartStats
}

// PhaseHistogram is the distribution of one phase's duration over every
// start since the Manager was made, in Prometheus' cumulative form.
type PhaseHistogram struct {
	Phase string
	Count uint64
	// Sum is the total in seconds.
	Sum float64
	// Buckets maps an upper bound in seconds to the count of durations at
	// most that long.
	Buckets map[float64]uint64
}

// phaseBuckets are the histograms' upper bounds in seconds: fine below
// 100 ms, where instance overhead lives, coarse above for pulls.
var phaseBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// startsKept is how many StartRecords the Manager keeps per function.
const startsKept = 32

// timeline keeps the last starts of each function and the phases'
// histograms.
type timeline struct {
	mu     sync.Mutex
	recent map[string][]StartRecord // function -> oldest first, at most startsKept
	hists  map[string]*phaseHist    // phase name -> histogram
}

type phaseHist struct {
	count  uint64
	sum    float64
	counts []uint64 // per phaseBuckets bound, not cumulative
}

func newTimeline() *timeline {
	return &timeline{recent: map[string][]StartRecord{}, hists: map[string]*phaseHist{}}
}

func (t *timeline) add(r StartRecord) {
	t.mu.Lock()
	defer t.mu.Unlock()
	rs := append(t.recent[r.Function], r)
	if len(rs) > startsKept {
		rs = slices.Delete(rs, 0, len(rs)-startsKept)
	}
	t.recent[r.Function] = rs
	for _, p := range r.Stats.Phases() {
		t.observeLocked(p.Name, p.Duration)
	}
}

func (t *timeline) observeLocked(phase string, d time.Duration) {
	h := t.hists[phase]
	if h == nil {
		h = &phaseHist{counts: make([]uint64, len(phaseBuckets))}
		t.hists[phase] = h
	}
	s := d.Seconds()
	h.count++
	h.sum += s
	if i, _ := slices.BinarySearch(phaseBuckets, s); i < len(phaseBuckets) {
		h.counts[i]++
	}
}

// firstResponse completes the record of instance's start with its first
// response, d after the start began, and returns the completed record;
// ok is false when the record is no longer kept.
func (t *timeline) firstResponse(function, instance string, d time.Duration) (_ StartRecord, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	rs := t.recent[function]
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i].Instance != instance {
			continue
		}
		rs[i].Stats.FirstResponse = d
		ps := rs[i].Stats.Phases()
		t.observeLocked(PhaseFirstResponse, ps[len(ps)-1].Duration)
		return rs[i], true
	}
	return StartRecord{}, false
}

func (t *timeline) last(function string, n int) []StartRecord {
	t.mu.Lock()
	defer t.mu.Unlock()
	rs := t.recent[function]
	if n > 0 && n < len(rs) {
		rs = rs[len(rs)-n:]
	}
	return slices.Clone(rs)
}

func (t *timeline) histograms() []PhaseHistogram {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]PhaseHistogram, 0, len(t.hists))
	for _, name := range phaseNames {
		h := t.hists[name]
		if h == nil {
			continue
		}
		ph := PhaseHistogram{Phase: name, Count: h.count, Sum: h.sum, Buckets: make(map[float64]uint64, len(phaseBuckets))}
		var cum uint64
		for i, b := range phaseBuckets {
			cum += h.counts[i]
			ph.Buckets[b] = cum
		}
		out = append(out, ph)
	}
	return out
}

// ColdStarts returns the last n successful starts of function (all kept,
// at most 32, when n <= 0), oldest first.
func (m *Manager) ColdStarts(function string, n int) []StartRecord {
	return m.timeline.last(function, n)
}

// StartHistograms returns the distribution of each start phase over the
// Manager's successful starts, in phase order; phases never measured are
// left out.
func (m *Manager) StartHistograms() []PhaseHistogram { return m.timeline.histograms() }

// FirstResponse tells the instance that the proxy began answering a
// request that arrived at arrived. The first call completes the start's
// record with its first_response phase, and logs the whole start as one
// "cold start" record, when that request arrived before the instance was
// ready, i.e. it waited for this start; a provisioned instance's first
// request did not. Every later call is one atomic load: the proxy calls
// it for each request.
func (i *Instance) FirstResponse(arrived time.Time) {
	if i.responded.Load() || !i.responded.CompareAndSwap(false, true) {
		return
	}
	if i.readyAt.IsZero() || !arrived.Before(i.readyAt) {
		return
	}
	r, ok := i.m.timeline.firstResponse(i.spec.Function, i.spec.ID, time.Since(i.begin))
	if !ok {
		return
	}
	i.m.log.Info("cold start", "function", r.Function, "instance", r.Instance, "runtime", r.Runtime,
		slog.Attr{Key: "phases", Value: r.Stats.logValue()})
}
