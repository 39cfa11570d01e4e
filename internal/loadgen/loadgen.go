// Package loadgen is the load generator of fcd's benchmarks: a fixed
// number of workers send a bounded number of POSTs over keep-alive
// connections, stopping early at a time limit, and the latencies are
// summarized. It only ever sends to the address it is given, which the
// benchmarks keep on loopback or inside network namespaces they created.
package loadgen

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Load is one measurement's shape.
type Load struct {
	Addr, Path  string // host:port and request path
	Body        []byte
	Concurrency int           // workers, each with its own connection
	Requests    int           // total, split between the workers
	Limit       time.Duration // stop early after this long
	// Prepare, when set, is called on each request after its URI, method
	// and body are set and before it is sent (to sign it, say). It runs
	// on the worker's goroutine, so its cost is the client's.
	Prepare func(*fasthttp.Request) error
}

// Result summarizes a run.
type Result struct {
	N        int
	RPS      float64
	P50, P99 time.Duration
}

// Run sends the load. It fails on the first error or non-200 answer.
func Run(l Load) (Result, error) {
	c := &fasthttp.HostClient{Addr: l.Addr, MaxConns: l.Concurrency, ReadTimeout: 30 * time.Second}
	lat := make([][]time.Duration, l.Concurrency)
	deadline := time.Now().Add(l.Limit)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	start := time.Now()
	for w := range l.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for j := 0; j < l.Requests/l.Concurrency && time.Now().Before(deadline); j++ {
				req.SetRequestURI("http://" + l.Addr + l.Path)
				req.Header.SetMethod(fasthttp.MethodPost)
				req.SetBody(l.Body)
				var err error
				if l.Prepare != nil {
					err = l.Prepare(req)
				}
				t0 := time.Now()
				if err == nil {
					err = c.Do(req, resp)
				}
				lat[w] = append(lat[w], time.Since(t0))
				if err == nil && resp.StatusCode() != fasthttp.StatusOK {
					err = fmt.Errorf("status %d", resp.StatusCode())
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("POST %s%s: %w", l.Addr, l.Path, err)
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return Result{}, firstErr
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return Result{}, fmt.Errorf("no request completed within %s", l.Limit)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	return Result{N: len(all), RPS: float64(len(all)) / elapsed.Seconds(), P50: all[len(all)/2], P99: all[len(all)*99/100]}, nil
}

// Report adds the side-by-side metrics of a direct and a via-fcd run to a
// benchmark.
func Report(b interface {
	ReportMetric(float64, string)
}, direct, via Result) {
	b.ReportMetric(direct.RPS, "direct-req/s")
	b.ReportMetric(via.RPS, "fcd-req/s")
	b.ReportMetric(via.RPS/direct.RPS, "throughput-ratio")
	b.ReportMetric(float64(direct.P50.Microseconds()), "direct-p50-µs")
	b.ReportMetric(float64(via.P50.Microseconds()), "fcd-p50-µs")
	b.ReportMetric(float64(direct.P99.Microseconds()), "direct-p99-µs")
	b.ReportMetric(float64(via.P99.Microseconds()), "fcd-p99-µs")
	b.ReportMetric(float64((via.P50 - direct.P50).Microseconds()), "added-p50-µs")
}
