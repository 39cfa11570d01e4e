package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/store"
)

// fakeScheduler leases every request to one backend address and records
// what became of each lease. It stands in for package scheduler, whose own
// tests cover placement.
type fakeScheduler struct {
	addr string
	err  error
	log  *fakeLog

	mu       sync.Mutex
	released int
	failed   []error
	changed  chan struct{} // receives after every Release or Fail
}

func newFakeScheduler(addr string) *fakeScheduler {
	return &fakeScheduler{addr: addr, changed: make(chan struct{}, 100)}
}

func (f *fakeScheduler) Acquire(ctx context.Context, fn *api.Function) (Lease, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &fakeLease{s: f}, nil
}

func (f *fakeScheduler) counts() (int, []error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.released, append([]error(nil), f.failed...)
}

type fakeLease struct{ s *fakeScheduler }

func (l *fakeLease) Addr() string       { return l.s.addr }
func (l *fakeLease) InstanceID() string { return "i-1" }
func (l *fakeLease) Release() {
	l.s.mu.Lock()
	l.s.released++
	l.s.mu.Unlock()
	l.s.changed <- struct{}{}
}
func (l *fakeLease) RequestLog(collect bool) RequestLog {
	return &fakeRequestLog{log: l.s.log, collect: collect}
}
func (l *fakeLease) Fail(err error) {
	l.s.mu.Lock()
	l.s.failed = append(l.s.failed, err)
	l.s.mu.Unlock()
	l.s.changed <- struct{}{}
}

// fakeLog is an instance log: leases append to it, and a request's lines
// are those that name its request id.
type fakeLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *fakeLog) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
}

// fakeRequestLog is one request's log: its lines go to the instance log
// and, when collecting, are kept for End.
type fakeRequestLog struct {
	log     *fakeLog
	collect bool
	lines   []string
}

func (r *fakeRequestLog) LogAt(_ time.Time, text, requestID string) {
	line := text + requestID
	r.log.add(line)
	if r.collect {
		r.lines = append(r.lines, line)
	}
}

func (r *fakeRequestLog) End() []string { return r.lines }

var errBusy = fmt.Errorf("busy: %w", errdefs.ErrResourceExhausted)

// invokeEnv is a proxy with one function "fn" (timeout 1 s) whose single
// instance is backend.
type invokeEnv struct {
	st    *store.Store
	addr  string
	sched *fakeScheduler
	log   *fakeLog
}

func newInvokeEnv(t *testing.T, backend http.Handler) *invokeEnv {
	t.Helper()
	return newInvokeEnvWith(t, httptest.NewServer(backend), 1, nil)
}

// newInvokeEnvWith is newInvokeEnv with a started backend server, the
// function's timeout in seconds, and wrap, when non-nil, putting something
// between the proxy and the fake scheduler.
func newInvokeEnvWith(t *testing.T, be *httptest.Server, timeout int32, wrap func(Scheduler) Scheduler) *invokeEnv {
	t.Helper()
	t.Cleanup(be.Close)
	st, err := store.Open(t.TempDir()+"/fcd.db", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	name, rt, img := "fn", api.RuntimeCustomContainer, "r/i:t"
	f, err := api.NewFunction(&api.Input{FunctionName: &name, Runtime: &rt, Timeout: &timeout,
		CustomContainerConfig: &api.ContainerInput{Image: &img}}, "id", "local", "1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateFunction(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	// An anonymous HTTP trigger, without which fn has no HTTP endpoint.
	trig, err := api.NewTrigger(&api.TriggerInput{TriggerName: ptr("http"), TriggerType: ptr(api.TriggerTypeHTTP)}, "tid", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateTrigger(context.Background(), "fn", trig); err != nil {
		t.Fatal(err)
	}
	env := &invokeEnv{st: st, sched: newFakeScheduler(strings.TrimPrefix(be.URL, "http://")), log: &fakeLog{}}
	env.sched.log = env.log
	var sched Scheduler = env.sched
	if wrap != nil {
		sched = wrap(sched)
	}
	env.addr = testServer(t, Options{Functions: st, Scheduler: sched})
	return env
}

// waitLease waits for the proxy to end the request's lease.
func (e *invokeEnv) waitLease(t *testing.T) {
	t.Helper()
	select {
	case <-e.sched.changed:
	case <-time.After(10 * time.Second):
		t.Fatal("lease never released")
	}
}

// do sends req through the proxy, reads and closes its response and waits
// for the request's lease to end: the response, its body consumed.
func (e *invokeEnv) do(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	e.waitLease(t)
	return resp
}

// echoBackend answers like examples/echo: POST /invoke returns the event,
// anything else a JSON description of the request.
func echoBackend() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/invoke" {
			w.Header().Set("x-echo-ctype", r.Header.Get("Content-Type"))
			w.Header().Set("x-echo-control", r.Header.Get("x-fc-control-path"))
			w.Header().Set("x-echo-fn", r.Header.Get("x-fc-function-name")+"/"+r.Header.Get("x-fc-function-memory")+"/"+r.Header.Get("x-fc-request-id"))
			if string(body) == "fail" {
				w.Header().Set("x-fc-status", "404")
			}
			w.Write(body)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{
			"method": r.Method, "path": r.URL.Path, "query": r.URL.RawQuery,
			"header": r.Header.Get("X-Custom"), "control": r.Header.Get("x-fc-control-path"),
			"body": string(body),
		})
	})
}

func TestInvokeFunction(t *testing.T) {
	env := newInvokeEnv(t, echoBackend())
	path := "/" + api.Version + "/functions/fn/invocations"
	resp, _ := (signedRequest{method: "POST", path: path, body: []byte(`{"hello":1}`)}).do(t, env.addr)
	env.waitLease(t)
	rid := resp.Header.Get(HeaderRequestID)
	checks := []struct{ name, got, want string }{
		{"status", fmt.Sprint(resp.StatusCode), "200"},
		{"content type", resp.Header.Get("x-echo-ctype"), "application/octet-stream"},
		{"control path", resp.Header.Get("x-echo-control"), "/invoke"},
		{"fc headers", resp.Header.Get("x-echo-fn"), "fn/512/" + rid},
		{"error type", resp.Header.Get(headerErrorType), ""},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
		}
	}
	if rel, failed := env.sched.counts(); rel != 1 || len(failed) != 0 {
		t.Errorf("leases: got %d released, %v failed; want 1, none", rel, failed)
	}

	t.Run("x-fc-status 404 marks failure", func(t *testing.T) {
		resp, _ := (signedRequest{method: "POST", path: path, body: []byte("fail")}).do(t, env.addr)
		env.waitLease(t)
		if got := resp.Header.Get(headerErrorType); got != errorTypeUnhandled {
			t.Errorf("got x-fc-error-type %q, want %q", got, errorTypeUnhandled)
		}
	})
	t.Run("log tail", func(t *testing.T) {
		resp, _ := (signedRequest{method: "POST", path: path, body: []byte("x"), tamper: func(r *http.Request) {
			r.Header.Set(headerLogType, "Tail") // not a signed header
		}}).do(t, env.addr)
		env.waitLease(t)
		logs, err := base64.StdEncoding.DecodeString(resp.Header.Get(headerLogResult))
		rid := resp.Header.Get(HeaderRequestID)
		want := "FC Invoke Start RequestId: " + rid + "\nFC Invoke End RequestId: " + rid + "\n"
		if err != nil || string(logs) != want {
			t.Errorf("got log %q (%v), want %q", logs, err, want)
		}
	})
	t.Run("async is refused", func(t *testing.T) {
		resp, eb := (signedRequest{method: "POST", path: path, body: []byte("x"), tamper: func(r *http.Request) {
			r.Header.Set(headerInvocationType, "Async")
		}}).do(t, env.addr)
		if resp.StatusCode != 400 || eb.Code != CodeInvalidArgument {
			t.Errorf("got %d %s, want 400 InvalidArgument", resp.StatusCode, eb.Code)
		}
	})
	t.Run("unknown function", func(t *testing.T) {
		resp, eb := (signedRequest{method: "POST", path: "/" + api.Version + "/functions/nope/invocations"}).do(t, env.addr)
		if resp.StatusCode != 404 || eb.Code != CodeFunctionNotFound {
			t.Errorf("got %d %s, want 404 FunctionNotFound", resp.StatusCode, eb.Code)
		}
	})
	t.Run("throttled", func(t *testing.T) {
		env.sched.err = errBusy
		defer func() { env.sched.err = nil }()
		resp, eb := (signedRequest{method: "POST", path: path}).do(t, env.addr)
		if resp.StatusCode != 429 || eb.Code != CodeResourceExhausted {
			t.Errorf("got %d %s, want 429 ResourceExhausted", resp.StatusCode, eb.Code)
		}
	})
}

func TestHTTPTrigger(t *testing.T) {
	env := newInvokeEnv(t, echoBackend())
	tests := []struct {
		name, url, host string
		wantPath        string
	}{
		{"path prefix", "/fn/fn/a/b?x=1&y=%20", "", "/a/b"},
		{"path prefix root", "/fn/fn?x=1&y=%20", "", "/"},
		{"host routing", "/a/b?x=1&y=%20", "fn.fcd.localhost", "/a/b"},
		{"host routing with port", "/a/b?x=1&y=%20", "FN.fcd.localhost:8080", "/a/b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("PATCH", "http://"+env.addr+tc.url, strings.NewReader("payload"))
			req.Header.Set("X-Custom", "v")
			if tc.host != "" {
				req.Host = tc.host
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			env.waitLease(t)
			var got map[string]string
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"method": "PATCH", "path": tc.wantPath, "query": "x=1&y=%20", "header": "v", "control": "/http-invoke", "body": "payload"}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s: got %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

// TestHTTPTriggerInvalidName: a name no function can have is not found,
// before and after the function cache holds a valid one.
func TestHTTPTriggerInvalidName(t *testing.T) {
	env := newInvokeEnv(t, echoBackend())
	get := func(path string) int {
		t.Helper()
		resp, err := http.Get("http://" + env.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for round, warm := range []bool{false, true} {
		if warm {
			if got := get("/fn/fn/"); got != http.StatusOK {
				t.Fatalf("/fn/fn/: got %d, want 200", got)
			}
			env.waitLease(t)
		}
		for _, path := range []string{"/fn/9fn/", "/fn/-fn/", "/fn/f%20n/", "/fn/" + strings.Repeat("f", 65) + "/"} {
			if got := get(path); got != http.StatusNotFound {
				t.Errorf("round %d, %s: got %d, want 404", round, path, got)
			}
		}
	}
}

// TestHTTPTriggerStreamsLargeBodies sends 16 MiB each way.
func TestHTTPTriggerStreamsLargeBodies(t *testing.T) {
	const size = 16 << 20
	// The function timeout (30 s) must outlast 32 MiB under -race on a
	// loaded machine; 1 s truncated the stream now and then.
	env := newInvokeEnvWith(t, httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		w.Header().Set("x-got", fmt.Sprintf("%d:%x", n, h.Sum(nil)))
		// No Content-Length: a chunked response the proxy must stream.
		chunk := bytes.Repeat([]byte("z"), 64<<10)
		for i := 0; i < size/len(chunk); i++ {
			w.Write(chunk)
		}
	})), 30, nil)
	body := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	sum := sha256.Sum256(body)
	resp, err := http.Post("http://"+env.addr+"/fn/fn/upload", "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != size {
		t.Fatalf("response: got %d bytes (%v), want %d", n, err, size)
	}
	if got, want := resp.Header.Get("x-got"), fmt.Sprintf("%d:%x", size, sum); got != want {
		t.Fatalf("backend received %s, want %s", got, want)
	}
	env.waitLease(t)
	if rel, failed := env.sched.counts(); rel != 1 || len(failed) != 0 {
		t.Errorf("leases: got %d released, %v failed; want 1, none", rel, failed)
	}
}

func TestInvocationTimeout(t *testing.T) {
	env := newInvokeEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	resp, err := http.Get("http://" + env.addr + "/fn/fn/slow")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	env.waitLease(t)
	if resp.StatusCode != 504 || resp.Header.Get(headerErrorType) != errorTypeUnhandled ||
		!strings.Contains(string(body), "Function timed out after 1 seconds") {
		t.Fatalf("got %d %q %s, want 504 UnhandledInvocationError timed out", resp.StatusCode, resp.Header.Get(headerErrorType), body)
	}
}

func TestInstanceDiesMidRequest(t *testing.T) {
	env := newInvokeEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	}))
	resp, err := http.Get("http://" + env.addr + "/fn/fn/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	env.waitLease(t)
	_, failed := env.sched.counts()
	if resp.StatusCode != 502 || len(failed) != 1 {
		t.Fatalf("got status %d, failed leases %v; want 502 and one failed lease", resp.StatusCode, failed)
	}
}

// TestInstanceDiesMidBody: an instance that sends its response head and
// part of its body, then dies, gets the client a 502 that carries none
// of the head it sent (the head is read into the client's response).
func TestInstanceDiesMidBody(t *testing.T) {
	env := newInvokeEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, bw, _ := w.(http.Hijacker).Hijack()
		bw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Encoding: gzip\r\nX-From-Instance: yes\r\n\r\npart")
		bw.Flush()
		conn.Close()
	}))
	resp, err := http.Get("http://" + env.addr + "/fn/fn/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	env.waitLease(t)
	if resp.StatusCode != 502 || resp.Header.Get("X-From-Instance") != "" || resp.Header.Get("Content-Encoding") != "" ||
		resp.Header.Get(HeaderRequestID) == "" || !json.Valid(body) {
		t.Fatalf("got %d %v %q; want a JSON 502 with a request id and none of the instance's headers", resp.StatusCode, resp.Header, body)
	}
}

func TestClientDisconnectCancelsUpstream(t *testing.T) {
	cancelled := make(chan struct{})
	started := make(chan struct{})
	env := newInvokeEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-time.After(30 * time.Second):
		}
	}))
	conn, err := net.Dial("tcp", env.addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /fn/fn/wait HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	conn.Close()
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the instance's request was not cancelled after the client left")
	}
	env.waitLease(t)
	if rel, failed := env.sched.counts(); rel != 1 || len(failed) != 0 {
		t.Errorf("leases: got %d released, %v failed; want the lease released", rel, failed)
	}
}

func TestHTTPTriggerConfig(t *testing.T) {
	env := newInvokeEnv(t, echoBackend())
	triggers := "/" + api.Version + "/functions/fn/triggers"
	if resp, _ := (signedRequest{method: "DELETE", path: triggers + "/http"}).do(t, env.addr); resp.StatusCode != 204 {
		t.Fatalf("DeleteTrigger of the test's own trigger: got %d, want 204", resp.StatusCode)
	}
	create := `{"triggerName":"web","triggerType":"http","triggerConfig":"{\"authType\":\"function\",\"methods\":[\"GET\",\"POST\"]}"}`
	if resp, eb := (signedRequest{method: "POST", path: triggers, body: []byte(create)}).do(t, env.addr); resp.StatusCode != 200 {
		t.Fatalf("CreateTrigger: %d %+v", resp.StatusCode, eb)
	}
	if resp, eb := (signedRequest{method: "POST", path: triggers, body: []byte(strings.Replace(create, `"web"`, `"web2"`, 1))}).do(t, env.addr); resp.StatusCode != 409 {
		t.Fatalf("second HTTP trigger: got %d %+v, want 409", resp.StatusCode, eb)
	}
	bad := `{"triggerName":"t","triggerType":"timer","triggerConfig":"{}"}`
	if resp, eb := (signedRequest{method: "POST", path: triggers, body: []byte(bad)}).do(t, env.addr); resp.StatusCode != 400 || eb.Code != CodeInvalidArgument {
		t.Fatalf("timer trigger: got %d %+v, want 400 InvalidArgument", resp.StatusCode, eb)
	}

	get := func(method string, sign bool) int {
		t.Helper()
		if sign {
			resp, _ := (signedRequest{method: method, path: "/fn/fn/x", body: []byte("b")}).do(t, env.addr)
			return resp.StatusCode
		}
		req, _ := http.NewRequest(method, "http://"+env.addr+"/fn/fn/x", strings.NewReader("b"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get("GET", false); got != 403 {
		t.Errorf("unsigned request to a signed trigger: got %d, want 403", got)
	}
	if got := get("POST", true); got != 200 {
		t.Errorf("signed POST: got %d, want 200", got)
	}
	env.waitLease(t)
	if got := get("PATCH", true); got != 405 {
		t.Errorf("PATCH, a method the trigger does not take: got %d, want 405", got)
	}

	// Back to anonymous: the cache must see the change at once.
	update := `{"triggerConfig":"{\"authType\":\"anonymous\"}"}`
	if resp, eb := (signedRequest{method: "PUT", path: triggers + "/web", body: []byte(update)}).do(t, env.addr); resp.StatusCode != 200 {
		t.Fatalf("UpdateTrigger: %d %+v", resp.StatusCode, eb)
	}
	if got := get("PATCH", false); got != 200 {
		t.Errorf("after update to anonymous, all methods: got %d, want 200", got)
	}
	env.waitLease(t)
	if resp, _ := (signedRequest{method: "DELETE", path: triggers + "/web"}).do(t, env.addr); resp.StatusCode != 204 {
		t.Fatalf("DeleteTrigger: got %d, want 204", resp.StatusCode)
	}
	if resp, eb := (signedRequest{method: "GET", path: triggers + "/web"}).do(t, env.addr); resp.StatusCode != 404 || eb.Code != CodeTriggerNotFound {
		t.Fatalf("GetTrigger after delete: got %d %+v, want 404 TriggerNotFound", resp.StatusCode, eb)
	}
	// Without an HTTP trigger the function has no HTTP endpoint, by path
	// or by Host, as in FC (issue 13, finding 8).
	if got := get("GET", false); got != 404 {
		t.Errorf("/fn/fn/x without an HTTP trigger: got %d, want 404", got)
	}
	req, _ := http.NewRequest("GET", "http://"+env.addr+"/x", nil)
	req.Host = "fn.fcd.localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("Host fn.fcd.localhost without an HTTP trigger: got %d, want 404", resp.StatusCode)
	}
	if rel, failed := env.sched.counts(); rel+len(failed) != 2 {
		t.Errorf("leases: got %d released, %d failed; want the 2 requests served before the trigger was deleted", rel, len(failed))
	}
}

// TestIsHopHeader: the length filter lets every hop header through, in
// any case, and nothing else of a hop header's length.
func TestIsHopHeader(t *testing.T) {
	for _, h := range hopHeaders {
		for _, k := range []string{h, strings.ToLower(h), strings.ToUpper(h)} {
			if !isHopHeader([]byte(k)) {
				t.Errorf("isHopHeader(%q): got false, want true", k)
			}
		}
	}
	for _, k := range []string{"", "Content-Type", "User-Agent", "X-Trailer", "Upgrades", strings.Repeat("x", 40)} {
		if isHopHeader([]byte(k)) {
			t.Errorf("isHopHeader(%q): got true, want false", k)
		}
	}
}

// TestHopHeaders: connection-scoped headers, RFC 9110's and those the
// Connection header lists, cross the proxy in neither direction.
func TestHopHeaders(t *testing.T) {
	seen := make(chan http.Header, 1)
	env := newInvokeEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("Proxy-Authenticate", "Basic")
		w.Header().Set("X-Kept", "1")
		w.Write([]byte("ok"))
	}))
	req, _ := http.NewRequest("GET", "http://"+env.addr+"/fn/fn/", nil)
	req.Header.Set("Connection", "keep-alive, X-Private ,X-Other")
	req.Header.Set("X-Private", "secret")
	req.Header.Set("X-Other", "o")
	req.Header.Set("Te", "trailers")
	req.Header.Set("X-Custom", "v")
	resp := env.do(t, req)
	got := <-seen
	for _, h := range []string{"X-Private", "X-Other", "Te"} {
		if v := got.Get(h); v != "" {
			t.Errorf("instance got %s: %q, want it stripped", h, v)
		}
	}
	if v := got.Get("X-Custom"); v != "v" {
		t.Errorf("instance got X-Custom %q, want v", v)
	}
	for _, h := range []string{"Keep-Alive", "Proxy-Authenticate"} {
		if v := resp.Header.Get(h); v != "" {
			t.Errorf("client got %s: %q, want it stripped", h, v)
		}
	}
	if resp.StatusCode != 200 || resp.Header.Get("X-Kept") != "1" {
		t.Errorf("got %d with X-Kept %q, want 200 and 1", resp.StatusCode, resp.Header.Get("X-Kept"))
	}
}
