package scheduler

import (
	"sort"
	"time"
)

// coldStartBounds are the upper bounds, in seconds, of the cold start
// duration histogram: from a warm image cache to the 120 s start limit.
var coldStartBounds = [...]float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

// poolStats are a pool's counters, guarded by its mu.
type poolStats struct {
	acquires          uint64
	throttled         uint64
	canceled          uint64
	coldStarts        uint64
	coldStartFailures uint64
	evicted           uint64
	startSeconds      float64
	startCount        uint64
	startBuckets      [len(coldStartBounds)]uint64 // not cumulative
}

func (st *poolStats) observeStart(took time.Duration) {
	sec := took.Seconds()
	st.startSeconds += sec
	st.startCount++
	for i, b := range coldStartBounds {
		if sec <= b {
			st.startBuckets[i]++
			return
		}
	}
}

// Bucket is one bucket of a histogram: Count observations were at most
// UpperBound. Counts are cumulative, as Prometheus expects.
type Bucket struct {
	UpperBound float64
	Count      uint64
}

// FunctionStats is a snapshot of one function's pool, for metrics.
type FunctionStats struct {
	Function string
	// Version is the pool's function version, "" for the latest
	// configuration.
	Version string
	// Instances are ready instances (draining ones included); Busy of
	// them hold at least one lease. Starting counts cold starts in
	// flight.
	Instances, Busy, Starting int
	// Queued requests wait for a slot.
	Queued int
	// Provisioned is the target kept warm.
	Provisioned int

	// Counters since the pool was created. Acquires counts Acquire calls;
	// Throttled those that failed with ErrThrottled; Canceled those whose
	// caller went away while waiting (ClientClosedRequest). ColdStarts
	// counts starts begun, ColdStartFailures starts that failed, Evicted
	// instances that died or failed a request.
	Acquires, Throttled, Canceled, ColdStarts, ColdStartFailures, Evicted uint64

	// ColdStartSeconds and ColdStartCount sum up the successful cold
	// starts; ColdStartBuckets is their duration histogram (the +Inf
	// bucket is ColdStartCount).
	ColdStartSeconds float64
	ColdStartCount   uint64
	ColdStartBuckets []Bucket
}

// Stats returns a snapshot of every live function's pool, by name.
func (s *Scheduler) Stats() []FunctionStats {
	pools := s.allPools()
	out := make([]FunctionStats, 0, len(pools))
	for _, p := range pools {
		out = append(out, p.snapshot())
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Function != out[j].Function {
			return out[i].Function < out[j].Function
		}
		return out[i].Version < out[j].Version
	})
	return out
}

func (p *pool) snapshot() FunctionStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := FunctionStats{
		Function:          p.fn.Name,
		Version:           p.fn.Version,
		Instances:         len(p.instances),
		Starting:          p.starting + p.stale,
		Queued:            len(p.waiters),
		Provisioned:       p.provisioned,
		Acquires:          p.stats.acquires,
		Throttled:         p.stats.throttled,
		Canceled:          p.stats.canceled,
		ColdStarts:        p.stats.coldStarts,
		ColdStartFailures: p.stats.coldStartFailures,
		Evicted:           p.stats.evicted,
		ColdStartSeconds:  p.stats.startSeconds,
		ColdStartCount:    p.stats.startCount,
		ColdStartBuckets:  make([]Bucket, len(coldStartBounds)),
	}
	var cum uint64
	for i, b := range coldStartBounds {
		cum += p.stats.startBuckets[i]
		st.ColdStartBuckets[i] = Bucket{UpperBound: b, Count: cum}
	}
	for _, in := range p.instances {
		if in.busy > 0 {
			st.Busy++
		}
	}
	return st
}

// MemoryUsedMB is the memory held by starting, running and stopping
// instances, as counted against Options.MemoryBudgetMB.
func (s *Scheduler) MemoryUsedMB() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.memory
}
