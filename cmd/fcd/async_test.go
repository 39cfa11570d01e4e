package main

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	fc "github.com/alibabacloud-go/fc-20230330/v4/client"
	"github.com/alibabacloud-go/tea/dara"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/examples/images"
	"github.com/fcd-dev/fcd/internal/shapednet"
)

// sink counts the reports of examples/notify by request id, with when the
// first one came. It listens in a network namespace of the test's own
// (internal/shapednet), which instances reach as they would a host on the
// internet, and it outlives every fcd the test starts.
type sink struct {
	url   string
	addr  netip.AddrPort
	mu    sync.Mutex
	runs  map[string]int
	first map[string]time.Time
}

func startSink(t testing.TB, name, prefix string) *sink {
	t.Helper()
	link, err := shapednet.New(shapednet.Options{Name: name, Prefix: netip.MustParsePrefix(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { link.Close() })
	ln, err := link.Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{url: "http://" + ln.Addr().String() + "/", addr: netip.MustParseAddrPort(ln.Addr().String()), runs: map[string]int{}, first: map[string]time.Time{}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := io.ReadAll(r.Body)
		now := time.Now()
		s.mu.Lock()
		s.runs[string(id)]++
		if _, ok := s.first[string(id)]; !ok {
			s.first[string(id)] = now
		}
		s.mu.Unlock()
	}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

// count returns how many times request id ran.
func (s *sink) count(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs[id]
}

// createNotify creates a function running examples/notify that reports to
// url.
func createNotify(t testing.TB, c *fc.Client, name, image, url string, concurrency int32) {
	t.Helper()
	_, err := c.CreateFunction(&fc.CreateFunctionRequest{Body: &fc.CreateFunctionInput{
		FunctionName:         dara.String(name),
		Runtime:              dara.String("custom-container"),
		MemorySize:           dara.Int32(128),
		Timeout:              dara.Int32(10),
		InstanceConcurrency:  dara.Int32(concurrency),
		EnvironmentVariables: map[string]*string{"NOTIFY_URL": dara.String(url)},
		// The plain image: these tests are about delivery, not lazy pulls.
		CustomContainerConfig: &fc.CustomContainerConfig{Image: dara.String(image), AccelerationType: dara.String("None")},
	}})
	if err != nil {
		t.Fatalf("CreateFunction %s: %v", name, err)
	}
}

// invokeAsync invokes name asynchronously through the SDK and returns the
// request id of the 202.
func invokeAsync(c *fc.Client, name, taskID, body string) (string, error) {
	h := &fc.InvokeFunctionHeaders{XFcInvocationType: dara.String("Async")}
	if taskID != "" {
		h.XFcAsyncTaskId = dara.String(taskID)
	}
	resp, err := c.InvokeFunctionWithOptions(dara.String(name), &fc.InvokeFunctionRequest{Body: strings.NewReader(body)}, h, &dara.RuntimeOptions{})
	if err != nil {
		return "", err
	}
	if got := dara.Int32Value(resp.StatusCode); got != http.StatusAccepted {
		return "", fmt.Errorf("InvokeFunction Async: got HTTP %d, want 202", got)
	}
	return dara.StringValue(resp.Headers["x-fc-request-id"]), nil
}

// waitTask polls GetAsyncTask until the task reaches an end state.
func waitTask(t testing.TB, c *fc.Client, fn, id string, limit time.Duration) *fc.AsyncTask {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		resp, err := c.GetAsyncTask(dara.String(fn), dara.String(id), &fc.GetAsyncTaskRequest{})
		if err == nil {
			switch dara.StringValue(resp.Body.Status) {
			case api.TaskSucceeded, api.TaskFailed, api.TaskStopped, api.TaskExpired:
				return resp.Body
			}
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("task %s/%s did not end within %s (last error %v)", fn, id, limit, err)
			}
			var events []string
			for _, e := range resp.Body.Events {
				events = append(events, dara.StringValue(e.Status)+": "+dara.StringValue(e.EventDetail))
			}
			t.Fatalf("task %s/%s did not end within %s: %s after %d retries, events %q",
				fn, id, limit, dara.StringValue(resp.Body.Status), dara.Int64Value(resp.Body.AlreadyRetriedTimes), events)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAsyncSDK drives the async API with the official SDK against real
// instances: async invoke with a task id, duplicates, retries of a failing
// function, destinations, listing, stopping and the async configs.
func TestAsyncSDK(t *testing.T) {
	requireRuntime(t)
	refs := pushExamples(t, images.Notify)
	sk := startSink(t, "fcdasync", "10.216.0.0/30")
	d := startDaemonWith(t, t.TempDir(), []string{"-name", "fcdasync", "-subnet", "10.96.0.0/16"}, true)
	c := sdkClient(t, d, d.creds.AccessKeySecret)
	createNotify(t, c, "job", refs[images.Notify], sk.url, 4)
	createNotify(t, c, "done", refs[images.Notify], sk.url, 4)
	// broken reports to a port nothing listens on, so every call fails.
	createNotify(t, c, "broken", refs[images.Notify], "http://"+sk.addr.Addr().String()+":1/", 1)

	// A sync call first: it proves instances reach the sink.
	if _, body, err := invoke(c, "job", "sync"); err != nil || body != "sync" {
		t.Fatalf("sync invoke of job: %q, %v", body, err)
	}
	arn := func(fn string) string { return "acs:fc:local:1000000000000000:functions/" + fn }
	_, err := c.PutAsyncInvokeConfig(dara.String("job"), &fc.PutAsyncInvokeConfigRequest{Body: &fc.PutAsyncInvokeConfigInput{
		AsyncTask:             dara.Bool(true),
		MaxAsyncRetryAttempts: dara.Int64(1),
		DestinationConfig:     &fc.DestinationConfig{OnSuccess: &fc.Destination{Destination: dara.String(arn("done"))}},
	}})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("task runs once", func(t *testing.T) {
		rid, err := invokeAsync(c, "job", "task-1", "hello")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := invokeAsync(c, "job", "task-1", "again"); err == nil {
			t.Fatal("a duplicate task id was accepted")
		} else if code, status := sdkCode(err); status != 409 || code != "AsyncTaskAlreadyExists" {
			t.Fatalf("duplicate task id: got %s/%d, want AsyncTaskAlreadyExists/409", code, status)
		}
		task := waitTask(t, c, "job", "task-1", time.Minute)
		if got := dara.StringValue(task.Status); got != api.TaskSucceeded || dara.StringValue(task.RequestId) != rid {
			t.Fatalf("got %s for request %s, want Succeeded for %s", got, dara.StringValue(task.RequestId), rid)
		}
		if n := sk.count(rid); n != 1 || dara.Int64Value(task.AlreadyRetriedTimes) != 0 {
			t.Errorf("ran %d times, %d retries; want once, 0", n, dara.Int64Value(task.AlreadyRetriedTimes))
		}
		if dara.StringValue(task.ReturnPayload) != "hello" || dara.StringValue(task.DestinationStatus) != api.TaskSucceeded {
			t.Errorf("return payload %q, destination %q; want hello, Succeeded", dara.StringValue(task.ReturnPayload), dara.StringValue(task.DestinationStatus))
		}
		// The success went on to done, as an event of its own.
		eventually(t, "the destination ran", time.Minute, func() bool { return sk.count("dest-job-task-1") == 1 })
	})
	t.Run("failing function is retried, then fails", func(t *testing.T) {
		if _, err := c.PutAsyncInvokeConfig(dara.String("broken"), &fc.PutAsyncInvokeConfigRequest{Body: &fc.PutAsyncInvokeConfigInput{
			AsyncTask: dara.Bool(true), MaxAsyncRetryAttempts: dara.Int64(2),
		}}); err != nil {
			t.Fatal(err)
		}
		if _, err := invokeAsync(c, "broken", "fails", "x"); err != nil {
			t.Fatal(err)
		}
		task := waitTask(t, c, "broken", "fails", 2*time.Minute)
		if got := dara.StringValue(task.Status); got != api.TaskFailed || dara.Int64Value(task.AlreadyRetriedTimes) != 2 {
			t.Fatalf("got %s after %d retries, want Failed after 2", got, dara.Int64Value(task.AlreadyRetriedTimes))
		}
		var retrying int
		for _, e := range task.Events {
			if dara.StringValue(e.Status) == api.TaskRetrying {
				retrying++
			}
		}
		if retrying != 2 || !strings.Contains(dara.StringValue(task.TaskErrorMessage), "HTTP 500") {
			t.Errorf("got %d Retrying events and error %q; want 2 and the function's HTTP 500", retrying, dara.StringValue(task.TaskErrorMessage))
		}
	})
	t.Run("stop", func(t *testing.T) {
		if _, err := c.PutAsyncInvokeConfig(dara.String("broken"), &fc.PutAsyncInvokeConfigRequest{Body: &fc.PutAsyncInvokeConfigInput{
			AsyncTask: dara.Bool(true), MaxAsyncRetryAttempts: dara.Int64(8),
		}}); err != nil {
			t.Fatal(err)
		}
		if _, err := invokeAsync(c, "broken", "stop-me", "x"); err != nil {
			t.Fatal(err)
		}
		eventually(t, "a failed attempt", time.Minute, func() bool {
			r, err := c.GetAsyncTask(dara.String("broken"), dara.String("stop-me"), &fc.GetAsyncTaskRequest{})
			return err == nil && dara.StringValue(r.Body.Status) == api.TaskRetrying
		})
		if _, err := c.StopAsyncTask(dara.String("broken"), dara.String("stop-me"), &fc.StopAsyncTaskRequest{}); err != nil {
			t.Fatal(err)
		}
		if got := dara.StringValue(waitTask(t, c, "broken", "stop-me", time.Minute).Status); got != api.TaskStopped {
			t.Fatalf("got %s, want Stopped", got)
		}
	})
	t.Run("list", func(t *testing.T) {
		resp, err := c.ListAsyncTasks(dara.String("job"), &fc.ListAsyncTasksRequest{Status: dara.String(api.TaskSucceeded), Limit: dara.Int32(10), IncludePayload: dara.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Body.Tasks) != 1 || dara.StringValue(resp.Body.Tasks[0].TaskId) != "task-1" || dara.StringValue(resp.Body.Tasks[0].TaskPayload) == "" {
			t.Fatalf("got %d tasks, want task-1 with its payload", len(resp.Body.Tasks))
		}
		cfgs, err := c.ListAsyncInvokeConfigs(&fc.ListAsyncInvokeConfigsRequest{Limit: dara.Int32(10)})
		if err != nil {
			t.Fatal(err)
		}
		if len(cfgs.Body.Configs) != 2 {
			t.Errorf("got %d async configs, want 2 (broken, job)", len(cfgs.Body.Configs))
		}
		got, err := c.GetAsyncInvokeConfig(dara.String("job"), &fc.GetAsyncInvokeConfigRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if dara.StringValue(got.Body.DestinationConfig.OnSuccess.Destination) != arn("done") || dara.Int64Value(got.Body.MaxAsyncEventAgeInSeconds) != 86400 {
			t.Errorf("GetAsyncInvokeConfig: %v", got.Body)
		}
		if _, err := c.DeleteAsyncInvokeConfig(dara.String("job"), &fc.DeleteAsyncInvokeConfigRequest{}); err != nil {
			t.Fatal(err)
		}
		_, err = c.GetAsyncInvokeConfig(dara.String("job"), &fc.GetAsyncInvokeConfigRequest{})
		if code, status := sdkCode(err); status != 404 || code != "AsyncConfigNotExists" {
			t.Errorf("after delete: got %s/%d, want AsyncConfigNotExists/404", code, status)
		}
	})
	if depth := metricValue(t, d, "fcd_async_queue_depth"); depth != 0 {
		t.Errorf("fcd_async_queue_depth %v at the end, want 0", depth)
	}
	if retries := metricValue(t, d, "fcd_async_retries_total"); retries < 3 {
		t.Errorf("fcd_async_retries_total %v, want at least 3", retries)
	}
}

// metricValue returns an unlabelled /metrics sample, -1 when absent.
func metricValue(t testing.TB, d *daemon, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + d.endpoint + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return -1
}
