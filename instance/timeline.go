package instance

import (
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Phase is one step of an instance's start.
type Phase struct {
	// Name is one of the Phase* names.
	Name     string
	Duration time.Duration
}

// Phase names, in the order a start runs them.
const (
	PhasePull      = "pull"       // image resolve, fetch, unpack or lazy mount
	PhaseRootfs    = "rootfs"     // writable layer and overlay
	PhaseNetwork   = "network"    // network namespace and address
	PhaseContainer = "container"  // runtime spec and container record
	PhaseTask      = "task"       // shim and runtime create
	PhaseStart     = "task_start" // exec of the function's process
	PhaseProbe     = "probe"      // until the port accepts (and initializer)
)

// Phases returns the start's phases in order.
func (s StartStats) Phases() []Phase {
	return []Phase{
		{PhasePull, s.Pull.Duration},
		{PhaseRootfs, s.Rootfs},
		{PhaseNetwork, s.Network},
		{PhaseContainer, s.Container},
		{PhaseTask, s.Task},
		{PhaseStart, s.TaskStart},
		{PhaseProbe, s.Ready},
	}
}

// logValue is the start as one group of a log record: each phase in
// milliseconds, then the image's figures and the total.
func (s StartStats) logValue() slog.Value {
	attrs := make([]slog.Attr, 0, 10)
	for _, p := range s.Phases() {
		attrs = append(attrs, slog.Float64(p.Name+"_ms", ms(p.Duration)))
	}
	attrs = append(attrs,
		slog.Float64("total_ms", ms(s.Total)),
		slog.Bool("cached", s.Pull.Cached),
		slog.Int64("fetched_bytes", s.Pull.BytesFetched),
	)
	return slog.GroupValue(attrs...)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// StartRecord is one successful start as the Manager saw it.
type StartRecord struct {
	Function string
	Instance string
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
		h := t.hists[p.Name]
		if h == nil {
			h = &phaseHist{counts: make([]uint64, len(phaseBuckets))}
			t.hists[p.Name] = h
		}
		s := p.Duration.Seconds()
		h.count++
		h.sum += s
		if i, _ := slices.BinarySearch(phaseBuckets, s); i < len(phaseBuckets) {
			h.counts[i]++
		}
	}
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
	for _, p := range (StartStats{}).Phases() {
		h := t.hists[p.Name]
		if h == nil {
			continue
		}
		ph := PhaseHistogram{Phase: p.Name, Count: h.count, Sum: h.sum, Buckets: make(map[float64]uint64, len(phaseBuckets))}
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
