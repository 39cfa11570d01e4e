package scheduler

import "sort"

// poolStats are a pool's counters, guarded by its mu.
type poolStats struct {
	acquires          uint64
	throttled         uint64
	coldStarts        uint64
	coldStartFailures uint64
	startSeconds      float64
	evicted           uint64
}

// FunctionStats is a snapshot of one function's pool.
type FunctionStats struct {
	Function string
	// Instances are ready instances (draining included); Busy of them hold
	// at least one lease. Starting are cold starts in flight.
	Instances, Busy, Starting int
	// Queued requests wait for a slot.
	Queued int
	// Provisioned is the target kept warm.
	Provisioned int
	// Counters since the pool was created.
	Acquires, Throttled, ColdStarts, ColdStartFailures, Evicted uint64
	// ColdStartSeconds is the total time cold starts took.
	ColdStartSeconds float64
}

// Stats returns a snapshot of every function's pool, by name.
func (s *Scheduler) Stats() []FunctionStats {
	s.mu.Lock()
	pools := make([]*pool, 0, len(s.pools))
	for _, p := range s.pools {
		pools = append(pools, p)
	}
	s.mu.Unlock()
	out := make([]FunctionStats, 0, len(pools))
	for _, p := range pools {
		out = append(out, p.snapshot())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Function < out[j].Function })
	return out
}

func (p *pool) snapshot() FunctionStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := FunctionStats{
		Function:          p.fn.Name,
		Instances:         len(p.instances),
		Starting:          p.starting,
		Queued:            len(p.waiters),
		Provisioned:       p.provisioned,
		Acquires:          p.stats.acquires,
		Throttled:         p.stats.throttled,
		ColdStarts:        p.stats.coldStarts,
		ColdStartFailures: p.stats.coldStartFailures,
		Evicted:           p.stats.evicted,
		ColdStartSeconds:  p.stats.startSeconds,
	}
	for _, in := range p.instances {
		if in.busy > 0 {
			st.Busy++
		}
	}
	return st
}

// MemoryUsedMB is the memory reserved by running and starting instances.
func (s *Scheduler) MemoryUsedMB() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.memory
}
