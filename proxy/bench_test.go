package proxy

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/internal/loadgen"
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

	run := func(addr, path string, n int) loadgen.Result {
		r, err := loadgen.Run(loadgen.Load{Addr: addr, Path: path, Body: body, Concurrency: concurrency, Requests: n, Limit: limit})
		if err != nil {
			b.Fatal(err)
		}
		return r
	}
	for i := 0; i < b.N; i++ {
		// Warm both paths' connections first.
		run(backend, "/", 2000)
		run(front, "/fn/fn/", 2000)
		direct := run(backend, "/", requests)
		via := run(front, "/fn/fn/", requests)
		loadgen.Report(b, direct, via)
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

type benchLease struct {
	addr      string
	responded atomic.Bool
}

func (s *benchScheduler) Acquire(context.Context, *api.Function) (Lease, error) { return &s.lease, nil }
func (l *benchLease) Addr() string                                              { return l.addr }
func (l *benchLease) InstanceID() string                                        { return "bench" }
func (l *benchLease) Release()                                                  {}
func (l *benchLease) Fail(error)                                                {}
func (l *benchLease) RequestLog(bool) RequestLog                                { return benchLog{} }

// FirstResponse costs what cmd/fcd's lease costs after an instance's
// first request: one atomic load.
func (l *benchLease) FirstResponse(time.Time) {
	if !l.responded.Load() {
		l.responded.Store(true)
	}
}

// benchLog stands in for an instance's log, which costs nothing per
// request without Tail.
type benchLog struct{}

func (benchLog) LogAt(time.Time, string, string) {}
func (benchLog) End() []string                   { return nil }

func startBenchProxy(b *testing.B, backend string) string {
	srv, _ := newBenchServer(b, backend)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// newBenchServer returns a Server with function "fn", which has an HTTP
// trigger and always leases backend.
func newBenchServer(b *testing.B, backend string) (*Server, *store.Store) {
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
	trig, err := api.NewTrigger(&api.TriggerInput{TriggerName: ptr("http"), TriggerType: ptr(api.TriggerTypeHTTP)}, "tid", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	if err := st.CreateTrigger(context.Background(), "fn", trig); err != nil {
		b.Fatal(err)
	}
	return New(Options{Functions: st, Keys: StaticKeys{}, Scheduler: &benchScheduler{benchLease{addr: backend}}}), st
}

// BenchmarkHandleTrigger runs the HTTP trigger handler in process, with no
// client connection, against a loopback echo: what fcd's own code costs a
// warm request beyond the client's socket, and what it allocates.
//
//	go test ./proxy -run '^$' -bench HandleTrigger -benchmem
func BenchmarkHandleTrigger(b *testing.B) {
	backend := startEchoBackend(b)
	s, _ := newBenchServer(b, backend)
	var req fasthttp.Request
	req.Header.SetMethod("POST")
	req.SetRequestURI("/fn/fn/")
	req.Header.SetHost("fcd")
	req.Header.SetContentType("application/octet-stream")
	req.SetBody(make([]byte, 1024))
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, nil, nil)
	b.ReportAllocs()
	for b.Loop() {
		ctx.Response.Reset()
		s.handle(&ctx)
		if ctx.Response.StatusCode() != fasthttp.StatusOK || len(ctx.Response.Body()) != 1024 {
			b.Fatalf("got %d with %d bytes, want 200 with 1024", ctx.Response.StatusCode(), len(ctx.Response.Body()))
		}
	}
}
