package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/async"
	"github.com/fcd-dev/fcd/store"
)

// asyncEnv is a proxy with an async queue and one function "fn" whose
// instance is a backend that counts the requests of each request id and
// fails those whose event is "fail".
type asyncEnv struct {
	addr  string
	q     *async.Queue
	sched *scripted
	mu    sync.Mutex
	runs  map[string]int // by x-fc-request-id
}

func newAsyncEnv(t *testing.T) *asyncEnv {
	t.Helper()
	env := &asyncEnv{runs: map[string]int{}}
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		env.mu.Lock()
		env.runs[r.Header.Get("x-fc-request-id")]++
		env.mu.Unlock()
		if string(body) == "fail" {
			w.Header().Set("x-fc-status", "404")
		}
		w.Write(append([]byte("ran "), body...))
	}))
	t.Cleanup(be.Close)
	st, err := store.Open(t.TempDir()+"/fcd.db", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, name := range []string{"fn", "dest"} {
		rt, img, timeout := api.RuntimeCustomContainer, "r/i:t", int32(3)
		f, err := api.NewFunction(&api.Input{FunctionName: &name, Runtime: &rt, Timeout: &timeout,
			CustomContainerConfig: &api.ContainerInput{Image: &img}}, "id", "local", "1", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := st.CreateFunction(context.Background(), f); err != nil {
			t.Fatal(err)
		}
	}
	q, err := async.Open(st.DB(), async.Options{Policy: async.Policy{RetryBase: time.Millisecond, ThrottleBase: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	fake := newFakeScheduler(strings.TrimPrefix(be.URL, "http://"))
	fake.log = &fakeLog{}
	env.q, env.sched = q, &scripted{next: fake}
	srv := New(Options{Functions: st, Keys: StaticKeys{testKeyID: testSecret}, Scheduler: env.sched, Async: q})
	env.addr = serveAsync(t, srv, q)
	return env
}

func (e *asyncEnv) invoke(t *testing.T, taskID, body string) (*http.Response, errorBody) {
	t.Helper()
	return signedRequest{method: "POST", path: "/" + api.Version + "/functions/fn/invocations", body: []byte(body), tamper: func(r *http.Request) {
		r.Header.Set(headerInvocationType, "Async")
		if taskID != "" {
			r.Header.Set(headerAsyncTaskID, taskID)
		}
	}}.do(t, e.addr)
}

// task polls GetAsyncTask until the task reaches an end state.
func (e *asyncEnv) task(t *testing.T, fn, id string) api.AsyncTask {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var task api.AsyncTask
		resp := apiCall(t, e.addr, "GET", "/"+api.Version+"/functions/"+fn+"/async-tasks/"+id, "", &task)
		if resp.StatusCode == 200 {
			switch task.Status {
			case api.TaskSucceeded, api.TaskFailed, api.TaskStopped, api.TaskExpired:
				return task
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s/%s: HTTP %d, status %q, never ended", fn, id, resp.StatusCode, task.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func apiCall(t *testing.T, addr, method, path, body string, out any) *http.Response {
	t.Helper()
	p, q, _ := strings.Cut(path, "?")
	resp, _ := signedRequest{method: method, path: p, rawQuery: q, body: []byte(body)}.doBody(t, addr, out)
	return resp
}

func TestAsyncInvoke(t *testing.T) {
	env := newAsyncEnv(t)
	resp, _ := env.invoke(t, "t1", "hello")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("got %d, want 202", resp.StatusCode)
	}
	rid := resp.Header.Get(HeaderRequestID)
	task := env.task(t, "fn", "t1")
	if task.Status != api.TaskSucceeded || task.RequestID != rid || task.ReturnPayload != "ran hello" {
		t.Errorf("got %s request %s return %q, want Succeeded %s \"ran hello\"", task.Status, task.RequestID, task.ReturnPayload, rid)
	}
	resp, eb := env.invoke(t, "t1", "again")
	if resp.StatusCode != http.StatusConflict || eb.Code != CodeAsyncTaskAlreadyExists {
		t.Errorf("duplicate task id: got %d %s, want 409 %s", resp.StatusCode, eb.Code, CodeAsyncTaskAlreadyExists)
	}
	env.mu.Lock()
	if env.runs[rid] != 1 {
		t.Errorf("the function ran %d times for %s, want 1", env.runs[rid], rid)
	}
	env.mu.Unlock()
}

func TestAsyncRetriesAndDestination(t *testing.T) {
	env := newAsyncEnv(t)
	var cfg api.AsyncConfig
	resp := apiCall(t, env.addr, "PUT", "/"+api.Version+"/functions/fn/async-invoke-config",
		`{"maxAsyncRetryAttempts":2,"asyncTask":true,"destinationConfig":{"onFailure":{"destination":"acs:fc:local:1:functions/dest"}}}`, &cfg)
	if resp.StatusCode != 200 || cfg.MaxAsyncRetryAttempts != 2 || !cfg.AsyncTask {
		t.Fatalf("PutAsyncInvokeConfig: got %d %+v", resp.StatusCode, cfg)
	}
	resp, _ = env.invoke(t, "", "fail")
	rid := resp.Header.Get(HeaderRequestID)
	task := env.task(t, "fn", rid)
	if task.Status != api.TaskFailed || task.AlreadyRetriedTimes != 2 || task.DestinationStatus != api.TaskSucceeded {
		t.Errorf("got %s after %d retries, destination %q; want Failed after 2, Succeeded", task.Status, task.AlreadyRetriedTimes, task.DestinationStatus)
	}
	env.mu.Lock()
	runs := env.runs[rid]
	env.mu.Unlock()
	if runs != 3 {
		t.Errorf("the function ran %d times with request id %s, want 3", runs, rid)
	}
	resp = apiCall(t, env.addr, "PUT", "/"+api.Version+"/functions/fn/async-invoke-config", `{"maxAsyncRetryAttempts":9}`, nil)
	if resp.StatusCode != 400 {
		t.Errorf("maxAsyncRetryAttempts 9: got %d, want 400", resp.StatusCode)
	}
	var list struct {
		Configs []api.AsyncConfig `json:"configs"`
	}
	if resp := apiCall(t, env.addr, "GET", "/"+api.Version+"/async-invoke-configs?limit=10", "", &list); resp.StatusCode != 200 || len(list.Configs) != 1 {
		t.Errorf("ListAsyncInvokeConfigs: got %d with %d configs, want 200 with 1", resp.StatusCode, len(list.Configs))
	}
	var tasks struct {
		Tasks []api.AsyncTask `json:"tasks"`
	}
	if resp := apiCall(t, env.addr, "GET", "/"+api.Version+"/functions/fn/async-tasks?status=Failed", "", &tasks); resp.StatusCode != 200 || len(tasks.Tasks) != 1 {
		t.Errorf("ListAsyncTasks: got %d with %d tasks, want 200 with 1", resp.StatusCode, len(tasks.Tasks))
	}
}

// scripted fails Acquire with its errors, in order, then leases through
// next.
type scripted struct {
	mu   sync.Mutex
	errs []error
	next Scheduler
}

func (s *scripted) Acquire(ctx context.Context, fn *api.Function) (Lease, error) {
	s.mu.Lock()
	if len(s.errs) > 0 {
		err := s.errs[0]
		s.errs = s.errs[1:]
		s.mu.Unlock()
		return nil, err
	}
	s.mu.Unlock()
	return s.next.Acquire(ctx, fn)
}

// TestAsyncThrottleAndStartFailure: throttling (429) uses no attempt, a
// failed cold start (412) uses one.
func TestAsyncThrottleAndStartFailure(t *testing.T) {
	env := newAsyncEnv(t)
	env.sched.errs = []error{errBusy, errBusy, errors.New("pull: registry unreachable")}
	resp := apiCall(t, env.addr, "PUT", "/"+api.Version+"/functions/fn/async-invoke-config", `{"maxAsyncRetryAttempts":1}`, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("PutAsyncInvokeConfig: %d", resp.StatusCode)
	}
	if resp, _ := env.invoke(t, "t1", "x"); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("got %d, want 202", resp.StatusCode)
	}
	task := env.task(t, "fn", "t1")
	if task.Status != api.TaskSucceeded || task.AlreadyRetriedTimes != 1 {
		t.Fatalf("got %s after %d retries, want Succeeded after 1 (the failed start)", task.Status, task.AlreadyRetriedTimes)
	}
	if st := env.q.Stats(); st.Throttled != 2 || st.Retries != 1 {
		t.Errorf("got %d throttled tries and %d retries, want 2 and 1", st.Throttled, st.Retries)
	}
	if !strings.Contains(task.Events[len(task.Events)-3].EventDetail, "FunctionNotStarted") {
		t.Errorf("the retry does not name the start failure: %+v", task.Events)
	}
}

// TestAsyncConfigGoesWithItsFunction: deleting a function deletes its async
// invoke config.
func TestAsyncConfigGoesWithItsFunction(t *testing.T) {
	env := newAsyncEnv(t)
	path := "/" + api.Version + "/functions/dest/async-invoke-config"
	if resp := apiCall(t, env.addr, "PUT", path, `{"maxAsyncRetryAttempts":1}`, nil); resp.StatusCode != 200 {
		t.Fatalf("PutAsyncInvokeConfig: %d", resp.StatusCode)
	}
	if resp := apiCall(t, env.addr, "DELETE", "/"+api.Version+"/functions/dest", "", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DeleteFunction: %d", resp.StatusCode)
	}
	resp, eb := signedRequest{method: "GET", path: path}.do(t, env.addr)
	if resp.StatusCode != 404 || eb.Code != CodeAsyncConfigNotFound {
		t.Errorf("after DeleteFunction: got %d %s, want 404 %s", resp.StatusCode, eb.Code, CodeAsyncConfigNotFound)
	}
}

// serveAsync serves srv on a loopback port and runs q's dispatcher with it
// until the test ends, and returns the address.
func serveAsync(t *testing.T, srv *Server, q *async.Queue) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(ctx, ln) })
	wg.Go(func() { q.Run(ctx, srv.AsyncDispatcher()) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return ln.Addr().String()
}
