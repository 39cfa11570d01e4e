package proxy

import (
	"context"
	"net"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/store"
)

// BenchmarkWarmPath measures, in one run, an echo server called directly and
// through the proxy's HTTP trigger endpoint: fixed concurrency, 1 KiB bodies,
// keep-alive, a bounded number of requests per side. It reports requests/s
// and p50/p99 latency of each, and the ratios.
//
//	go test ./proxy -run '^$' -bench WarmPath -benchtime 1x
func BenchmarkWarmPath(b *testing.B) {
	const (
		concurrency = 16
		requests    = 40000
		limit       = 30 * time.Second
	)
	backend := startEchoBackend(b)
	front := startBenchProxy(b, backend)
	body := make([]byte, 1024)

	for i := 0; i < b.N; i++ {
		// Warm both paths' connections first.
		loadLoop(b, backend, "/", body, concurrency, 2000, limit)
		loadLoop(b, front, "/fn/fn/", body, concurrency, 2000, limit)

		direct := loadLoop(b, backend, "/", body, concurrency, requests, limit)
		via := loadLoop(b, front, "/fn/fn/", body, concurrency, requests, limit)

		b.ReportMetric(direct.rps, "direct-req/s")
		b.ReportMetric(via.rps, "fcd-req/s")
		b.ReportMetric(via.rps/direct.rps, "throughput-ratio")
		b.ReportMetric(float64(direct.p50.Microseconds()), "direct-p50-µs")
		b.ReportMetric(float64(via.p50.Microseconds()), "fcd-p50-µs")
		b.ReportMetric(float64(direct.p99.Microseconds()), "direct-p99-µs")
		b.ReportMetric(float64(via.p99.Microseconds()), "fcd-p99-µs")
		b.ReportMetric(float64((via.p50 - direct.p50).Microseconds()), "added-p50-µs")
	}
}

type loadResult struct {
	rps      float64
	p50, p99 time.Duration
}

// loadLoop sends count requests from concurrency workers over keep-alive
// connections, stopping early at limit.
func loadLoop(b *testing.B, addr, path string, body []byte, concurrency, count int, limit time.Duration) loadResult {
	b.Helper()
	c := &fasthttp.HostClient{Addr: addr, MaxConns: concurrency}
	lat := make([][]time.Duration, concurrency)
	per := count / concurrency
	deadline := time.Now().Add(limit)
	var wg sync.WaitGroup
	var errOnce sync.Once
	start := time.Now()
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			lat[w] = make([]time.Duration, 0, per)
			for j := 0; j < per && time.Now().Before(deadline); j++ {
				req.SetRequestURI("http://" + addr + path)
				req.Header.SetMethod("POST")
				req.SetBody(body)
				t0 := time.Now()
				err := c.Do(req, resp)
				lat[w] = append(lat[w], time.Since(t0))
				if err != nil || resp.StatusCode() != 200 {
					errOnce.Do(func() { b.Errorf("request to %s: %v, status %d", addr, err, resp.StatusCode()) })
					return
				}
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	if len(all) == 0 {
		b.Fatal("no requests completed")
	}
	return loadResult{
		rps: float64(len(all)) / elapsed.Seconds(),
		p50: all[len(all)/2],
		p99: all[len(all)*99/100],
	}
}

// startEchoBackend serves a fasthttp echo on loopback, the cheapest backend,
// so the comparison isolates what the proxy adds.
func startEchoBackend(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetBody(ctx.Request.Body())
	}}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Shutdown() })
	return ln.Addr().String()
}

// benchScheduler always leases the one backend, like a warm pool.
type benchScheduler struct{ lease benchLease }

type benchLease struct{ addr string }

func (s *benchScheduler) Acquire(context.Context, *api.Function) (Lease, error) { return &s.lease, nil }
func (l *benchLease) Addr() string                                              { return l.addr }
func (l *benchLease) InstanceID() string                                        { return "bench" }
func (l *benchLease) Release()                                                  {}
func (l *benchLease) Fail(error)                                                {}
func (l *benchLease) Log(string)                                                {}

func startBenchProxy(b *testing.B, backend string) string {
	st, err := store.Open(b.TempDir()+"/fcd.db", 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	name, rt, img := "fn", api.RuntimeCustomContainer, "r/i:t"
	f, err := api.NewFunction(&api.Input{FunctionName: &name, Runtime: &rt, CustomContainerConfig: &api.ContainerInput{Image: &img}}, "id", "r", "a", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	if err := st.CreateFunction(context.Background(), f); err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := New(Options{Functions: st, Keys: StaticKeys{}, Scheduler: &benchScheduler{benchLease{backend}}})
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}
