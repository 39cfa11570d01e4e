package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fcd-dev/fcd/api"
)

// The cases here are the ways a forwarded request can go wrong that a
// review of the invoke path found; each failed before its fix.

// slowScheduler takes delay to lease, as a cold start does.
type slowScheduler struct {
	Scheduler
	delay time.Duration
}

func (s *slowScheduler) Acquire(ctx context.Context, fn *api.Function) (Lease, error) {
	time.Sleep(s.delay)
	return s.Scheduler.Acquire(ctx, fn)
}

// TestTimeoutStartsAfterColdStart: a cold start longer than the function's
// timeout must not use up the timeout before the request is sent.
func TestTimeoutStartsAfterColdStart(t *testing.T) {
	hit := make(chan struct{}, 1)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hit <- struct{}{}
		w.Write([]byte("ok"))
	}))
	env := newInvokeEnvWith(t, be, 1, func(s Scheduler) Scheduler { return &slowScheduler{s, 1200 * time.Millisecond} })
	resp, err := http.Get("http://" + env.addr + "/fn/fn/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("got %d %s, want 200 ok", resp.StatusCode, body)
	}
	select {
	case <-hit:
	default:
		t.Fatal("the instance was never reached")
	}
}

// TestHeadThroughTrigger: a HEAD response has no body to wait for.
func TestHeadThroughTrigger(t *testing.T) {
	env := newInvokeEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		if r.Method != "HEAD" {
			w.Write([]byte("hello"))
		}
	}))
	req, _ := http.NewRequest("HEAD", "http://"+env.addr+"/fn/fn/x", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get(headerErrorType) != "" {
		t.Fatalf("got %d %q, want 200 and no error", resp.StatusCode, resp.Header.Get(headerErrorType))
	}
}

// TestClientDropMidUploadKeepsInstance: a client that leaves while
// uploading is the client's failure; the instance stays.
func TestClientDropMidUploadKeepsInstance(t *testing.T) {
	env := newInvokeEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write([]byte("ok"))
	}))
	conn, err := net.Dial("tcp", env.addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /fn/fn/up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 10<<20)
	conn.Write(make([]byte, 1<<20))
	conn.Close()
	env.waitLease(t)
	if rel, failed := env.sched.counts(); rel != 1 || len(failed) != 0 {
		t.Fatalf("got %d released, %v failed; want the lease released, the instance kept", rel, failed)
	}
}

// TestClientLeavingStreamEndsLease: a client that stops reading a long
// streamed response frees its lease then, not at the function's timeout.
func TestClientLeavingStreamEndsLease(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 600; i++ { // a minute of events at most
			select {
			case <-r.Context().Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
		}
	}))
	env := newInvokeEnvWith(t, be, 300, nil)
	conn, err := net.Dial("tcp", env.addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /fn/fn/events HTTP/1.1\r\nHost: x\r\n\r\n")
	conn.Read(make([]byte, 100))
	conn.Close()
	env.waitLease(t) // within 10 s, not the 300 s timeout
}

// TestRetryKeepsStreamedBody: a streamed request whose pooled connection
// the instance had closed reaches the instance whole.
func TestRetryKeepsStreamedBody(t *testing.T) {
	got := make(chan int64, 10)
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		got <- n
		w.Write([]byte("ok"))
	}))
	be.Config.IdleTimeout = 50 * time.Millisecond
	be.Start()
	env := newInvokeEnvWith(t, be, 10, nil)

	resp, err := http.Get("http://" + env.addr + "/fn/fn/warm")
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	<-got
	env.waitLease(t)
	time.Sleep(300 * time.Millisecond) // the instance closes the idle connection

	body := bytes.Repeat([]byte("x"), 8<<20)
	resp, err = http.Post("http://"+env.addr+"/fn/fn/upload", "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	if n := <-got; resp.StatusCode != 200 || n != int64(len(body)) {
		t.Fatalf("got %d with %d body bytes at the instance, want 200 and %d", resp.StatusCode, n, len(body))
	}
}

// TestLateAbortSparesPooledConn: a call whose connection went back to the
// pool cannot abort the connection's next user.
func TestLateAbortSparesPooledConn(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(300 * time.Millisecond)
		}
		w.Write([]byte("ok"))
	}))
	defer be.Close()
	addr := strings.TrimPrefix(be.URL, "http://")
	u := newUpstream()
	do := func(cl *call, path string) error {
		req := fasthttp.AcquireRequest()
		req.SetRequestURI(path)
		req.Header.SetHost(addr)
		resp := fasthttp.AcquireResponse()
		conn, err := u.roundTrip(cl, "i-1", addr, req, resp, time.Now().Add(5*time.Second))
		if err != nil {
			return err
		}
		io.ReadAll(resp.BodyStream())
		resp.CloseBodyStream()
		cl.detach() // as Server.finish does before pooling
		u.put(conn, time.Now())
		return nil
	}
	first := &call{}
	if err := do(first, "/fast"); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- do(&call{}, "/slow") }() // reuses the pooled connection
	time.Sleep(100 * time.Millisecond)
	first.abort() // the first call's client watch fires late
	if err := <-errc; err != nil {
		t.Fatalf("the second call failed because of the first one's abort: %v", err)
	}
}

// TestInstanceStoppingClosesIdleConns: the idle connections to an instance
// the scheduler stops are closed at once, and only its own: they are kept
// by instance ID, so another instance at the same address keeps its own.
func TestInstanceStoppingClosesIdleConns(t *testing.T) {
	closed := make(chan struct{}, 4)
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	be.Config.ConnState = func(c net.Conn, st http.ConnState) {
		if st == http.StateClosed {
			closed <- struct{}{}
		}
	}
	be.Start()
	defer be.Close()
	addr := strings.TrimPrefix(be.URL, "http://")
	srv := New(Options{Keys: StaticKeys{}})
	for _, id := range []string{"i-1", "i-2"} {
		req := fasthttp.AcquireRequest()
		req.SetRequestURI("/")
		req.Header.SetHost(addr)
		resp := fasthttp.AcquireResponse()
		conn, err := srv.upstream.roundTrip(&call{}, id, addr, req, resp, time.Now().Add(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.BodyStream())
		srv.upstream.put(conn, time.Now())
	}
	srv.InstanceStopping("i-1")
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the stopped instance's idle connection was not closed")
	}
	srv.upstream.mu.Lock()
	_, gone := srv.upstream.idle["i-1"]
	kept := len(srv.upstream.idle["i-2"])
	srv.upstream.mu.Unlock()
	if gone || kept != 1 {
		t.Errorf("idle connections: i-1 present %v, i-2 %d; want i-1 gone, i-2 1", gone, kept)
	}
}

// TestShutdownAbortsPastGrace: a request still running when Serve's grace
// period is over is aborted and answered 499, and Serve returns.
func TestShutdownAbortsPastGrace(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
	}))
	defer be.Close()
	defer close(release)
	env := newInvokeEnvWith(t, be, 300, nil)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() {
		served <- New(Options{Functions: env.st, Scheduler: env.sched, ShutdownGrace: 50 * time.Millisecond}).Serve(ctx, ln)
	}()
	status := make(chan int, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/fn/fn/")
		if err != nil {
			t.Error(err)
			status <- 0
			return
		}
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	<-arrived
	cancel()
	select {
	case got := <-status:
		if got != statusClientClosed {
			t.Errorf("got %d, want %d", got, statusClientClosed)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request was not aborted")
	}
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
}

// exitingScheduler leases instances whose process ended under the
// request, with exit.
type exitingScheduler struct {
	Scheduler
	exit error
}

func (s *exitingScheduler) Acquire(ctx context.Context, fn *api.Function) (Lease, error) {
	l, err := s.Scheduler.Acquire(ctx, fn)
	if err != nil {
		return nil, err
	}
	return exitingLease{l, s.exit}, nil
}

type exitingLease struct {
	Lease
	exit error
}

func (l exitingLease) Exited(context.Context) error { return l.exit }

// TestInstanceExitMidRequest: an instance whose process dies while it
// serves is reported as such, with its exit code and oom, not as the
// broken connection's EOF, and is evicted.
func TestInstanceExitMidRequest(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close() // the process died
		}
	}))
	exit := fakeExit{code: 137, oom: true}
	env := newInvokeEnvWith(t, be, 10, func(s Scheduler) Scheduler { return &exitingScheduler{s, exit} })
	resp, err := http.Get("http://" + env.addr + "/fn/fn/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get(headerErrorType) != errorTypeUnhandled ||
		!bytes.Contains(body, []byte(`"errorType":"CAExited","exitCode":137,"oom":true`)) {
		t.Errorf("got %d %q %s, want 502 %s with CAExited, exit code 137, oom", resp.StatusCode, resp.Header.Get(headerErrorType), body, errorTypeUnhandled)
	}
	env.waitLease(t)
	if rel, failed := env.sched.counts(); rel != 0 || len(failed) != 1 || failed[0] != error(exit) {
		t.Errorf("got %d released, %v failed; want the instance evicted with its exit", rel, failed)
	}
}
