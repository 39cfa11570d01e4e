package async

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// stats counts transitions since Open.
type stats struct {
	enqueued, succeeded, failed, expired, stopped atomic.Uint64
	retries, throttled                            atomic.Uint64
}

// Stats is a snapshot of the queue.
type Stats struct {
	// Depth is the events not yet in an end state.
	Depth int
	// OldestAge is the age of the oldest of them, in seconds; 0 when none.
	OldestAge float64
	// Running is the attempts in flight.
	Running                                       int
	Enqueued, Succeeded, Failed, Expired, Stopped uint64
	Retries, Throttled                            uint64
}

// Stats returns the queue's depth, age and counters.
func (q *Queue) Stats() Stats {
	now := q.clock.Now()
	q.mu.Lock()
	s := Stats{Depth: len(q.live), Running: q.nrun}
	for _, created := range q.live {
		s.OldestAge = max(s.OldestAge, now.Sub(created).Seconds())
	}
	q.mu.Unlock()
	s.Enqueued, s.Succeeded, s.Failed = q.stats.enqueued.Load(), q.stats.succeeded.Load(), q.stats.failed.Load()
	s.Expired, s.Stopped = q.stats.expired.Load(), q.stats.stopped.Load()
	s.Retries, s.Throttled = q.stats.retries.Load(), q.stats.throttled.Load()
	return s
}

var (
	descDepth     = prometheus.NewDesc("fcd_async_queue_depth", "Async events not yet in an end state.", nil, nil)
	descOldest    = prometheus.NewDesc("fcd_async_oldest_event_age_seconds", "Age of the oldest async event not yet in an end state.", nil, nil)
	descRunning   = prometheus.NewDesc("fcd_async_running", "Async attempts in flight.", nil, nil)
	descEnqueued  = prometheus.NewDesc("fcd_async_enqueued_total", "Async events accepted (committed) since start.", nil, nil)
	descSucceeded = prometheus.NewDesc("fcd_async_succeeded_total", "Async events that succeeded.", nil, nil)
	descFailed    = prometheus.NewDesc("fcd_async_failed_total", "Async events that failed after their last attempt.", nil, nil)
	descExpired   = prometheus.NewDesc("fcd_async_expired_total", "Async events that expired (maxAsyncEventAgeInSeconds) before running.", nil, nil)
	descStopped   = prometheus.NewDesc("fcd_async_stopped_total", "Async tasks stopped by StopAsyncTask.", nil, nil)
	descRetries   = prometheus.NewDesc("fcd_async_retries_total", "Retries scheduled after a failed attempt.", nil, nil)
	descThrottled = prometheus.NewDesc("fcd_async_throttled_total", "Async tries put back for lack of capacity (no attempt used).", nil, nil)
)

// Collector exports Stats to Prometheus.
func (q *Queue) Collector() prometheus.Collector { return collector{q} }

type collector struct{ q *Queue }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDepth, descOldest, descRunning, descEnqueued, descSucceeded, descFailed, descExpired, descStopped, descRetries, descThrottled} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.q.Stats()
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(descDepth, float64(s.Depth))
	gauge(descOldest, s.OldestAge)
	gauge(descRunning, float64(s.Running))
	counter(descEnqueued, s.Enqueued)
	counter(descSucceeded, s.Succeeded)
	counter(descFailed, s.Failed)
	counter(descExpired, s.Expired)
	counter(descStopped, s.Stopped)
	counter(descRetries, s.Retries)
	counter(descThrottled, s.Throttled)
}
