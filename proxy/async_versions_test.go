package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	fc "github.com/alibabacloud-go/fc-20230330/v4/client"
	"github.com/alibabacloud-go/tea/dara"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/async"
)

// newAsyncVersionEnv is newVersionEnv with an async queue: a proxy over a
// real store, scheduler and queue, whose instances answer with
// "<x-fc-version-id> <x-fc-qualifier>".
func newAsyncVersionEnv(t *testing.T) *versionEnv {
	t.Helper()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, r.Header.Get("x-fc-version-id")+" "+r.Header.Get("x-fc-qualifier"))
	}))
	t.Cleanup(be.Close)
	st, p := newVersionStack(t, be.URL)
	q, err := async.Open(st.DB(), async.Options{Policy: async.Policy{RetryBase: time.Millisecond, ThrottleBase: time.Millisecond, ThrottleMax: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	srv := New(Options{Functions: st, Provision: st, Versions: st, Scheduler: p, Pools: p, VersionPools: p,
		Async: q, Keys: StaticKeys{testKeyID: testSecret}})
	env := &versionEnv{pools: p, addr: serveAsync(t, srv, q)}
	env.c = newSDKClient(t, env.addr)
	return env
}

// invokeAsync invokes fn asynchronously as task id, with a qualifier in
// ?qualifier= (query) or x-fc-qualifier (header), none when empty.
func (e *versionEnv) invokeAsync(t *testing.T, id, query, header string) error {
	t.Helper()
	req := &fc.InvokeFunctionRequest{Body: strings.NewReader("event " + id)}
	if query != "" {
		req.Qualifier = dara.String(query)
	}
	h := &fc.InvokeFunctionHeaders{XFcInvocationType: dara.String("Async"), XFcAsyncTaskId: dara.String(id)}
	if header != "" {
		h.CommonHeaders = map[string]*string{"x-fc-qualifier": dara.String(header)}
	}
	resp, err := e.c.InvokeFunctionWithOptions(dara.String("fn"), req, h, &dara.RuntimeOptions{})
	if err == nil && dara.Int32Value(resp.StatusCode) != http.StatusAccepted {
		t.Errorf("async invoke %s: HTTP %d, want 202", id, dara.Int32Value(resp.StatusCode))
	}
	return err
}

// asyncTask polls GetAsyncTask until task id ends.
func (e *versionEnv) asyncTask(t *testing.T, id string) *fc.AsyncTask {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := e.c.GetAsyncTask(dara.String("fn"), dara.String(id), &fc.GetAsyncTaskRequest{})
		if err != nil {
			t.Fatalf("GetAsyncTask %s: %v", id, err)
		}
		switch s := dara.StringValue(resp.Body.Status); s {
		case api.TaskSucceeded, api.TaskFailed, api.TaskStopped, api.TaskExpired:
			return resp.Body
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s: status %q, never ended", id, dara.StringValue(resp.Body.Status))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSDKAsyncQualifier: an asynchronous invocation of a version or an
// alias runs on that version, and its instance is told the qualifier and
// the version; a qualifier that does not exist is refused at enqueue with
// the error a synchronous invocation gets, and no task is made.
func TestSDKAsyncQualifier(t *testing.T) {
	env := newAsyncVersionEnv(t)
	c := env.c
	env.createFunction(t)
	env.publish(t, "one")
	env.setMemory(t, 1024)
	env.publish(t, "two")
	if _, err := c.CreateAlias(dara.String("fn"), &fc.CreateAliasRequest{Body: &fc.CreateAliasInput{
		AliasName: dara.String("prod"), VersionId: dara.String("2")}}); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		id, query, header string
		ran               string // what the instance saw: version, qualifier
		qualifier         string // GetAsyncTask's
	}{
		{"latest", "", "", "LATEST LATEST", "LATEST"},
		{"v1", "1", "", "1 1", "1"},
		{"alias", "prod", "", "2 prod", "prod"},
		{"alias-header", "", "prod", "2 prod", "prod"},
		{"query-wins", "1", "prod", "1 1", "1"},
	}
	for _, tc := range cases {
		if err := env.invokeAsync(t, tc.id, tc.query, tc.header); err != nil {
			t.Fatalf("async invoke %s: %v", tc.id, err)
		}
	}
	for _, tc := range cases {
		task := env.asyncTask(t, tc.id)
		if got := dara.StringValue(task.Status); got != api.TaskSucceeded {
			t.Errorf("task %s: %s (%s), want Succeeded", tc.id, got, dara.StringValue(task.TaskErrorMessage))
			continue
		}
		if got := dara.StringValue(task.ReturnPayload); got != tc.ran {
			t.Errorf("task %s: the instance saw %q, want %q", tc.id, got, tc.ran)
		}
		if got := dara.StringValue(task.Qualifier); got != tc.qualifier {
			t.Errorf("task %s: GetAsyncTask qualifier %q, want %q", tc.id, got, tc.qualifier)
		}
	}

	// Each version ran on instances of its own.
	inst, err := c.ListInstances(dara.String("fn"), &fc.ListInstancesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, in := range inst.Body.Instances {
		seen[dara.StringValue(in.VersionId)] = true
	}
	if !seen["LATEST"] || !seen["1"] || !seen["2"] {
		t.Errorf("ListInstances: got versions %v, want LATEST, 1 and 2", seen)
	}

	// ListAsyncTasks, GetAsyncTask and StopAsyncTask honour a qualifier.
	for q, want := range map[string]string{"": "alias,alias-header,latest,query-wins,v1", "LATEST": "latest", "1": "query-wins,v1", "prod": "alias,alias-header", "2": ""} {
		req := &fc.ListAsyncTasksRequest{}
		if q != "" {
			req.Qualifier = dara.String(q)
		}
		list, err := c.ListAsyncTasks(dara.String("fn"), req)
		if err != nil {
			t.Fatalf("ListAsyncTasks qualifier %q: %v", q, err)
		}
		var ids []string
		for _, task := range list.Body.Tasks {
			ids = append(ids, dara.StringValue(task.TaskId))
		}
		slices.Sort(ids)
		if got := strings.Join(ids, ","); got != want {
			t.Errorf("ListAsyncTasks qualifier %q: got %s, want %s", q, got, want)
		}
	}
	if _, err := c.GetAsyncTask(dara.String("fn"), dara.String("v1"), &fc.GetAsyncTaskRequest{Qualifier: dara.String("1")}); err != nil {
		t.Errorf("GetAsyncTask v1 qualifier 1: %v", err)
	}
	_, err = c.GetAsyncTask(dara.String("fn"), dara.String("v1"), &fc.GetAsyncTaskRequest{Qualifier: dara.String("prod")})
	wantCode(t, "GetAsyncTask of another qualifier's task", err, CodeAsyncTaskNotFound, 404)
	_, err = c.StopAsyncTask(dara.String("fn"), dara.String("v1"), &fc.StopAsyncTaskRequest{Qualifier: dara.String("prod")})
	wantCode(t, "StopAsyncTask of another qualifier's task", err, CodeAsyncTaskNotFound, 404)

	// The alias is resolved when the event runs, not when it is accepted:
	// held back by reserved concurrency 0, an event accepted while prod
	// routes to version 2 runs on version 1 once prod was moved there.
	if _, err := c.PutConcurrencyConfig(dara.String("fn"), &fc.PutConcurrencyConfigRequest{Body: &fc.PutConcurrencyInput{ReservedConcurrency: dara.Int64(0)}}); err != nil {
		t.Fatal(err)
	}
	if err := env.invokeAsync(t, "moved", "prod", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateAlias(dara.String("fn"), dara.String("prod"), &fc.UpdateAliasRequest{Body: &fc.UpdateAliasInput{VersionId: dara.String("1")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteConcurrencyConfig(dara.String("fn")); err != nil {
		t.Fatal(err)
	}
	if task := env.asyncTask(t, "moved"); dara.StringValue(task.ReturnPayload) != "1 prod" {
		t.Errorf("event accepted before its alias moved: %s, the instance saw %q, want \"1 prod\"", dara.StringValue(task.Status), dara.StringValue(task.ReturnPayload))
	}

	// A destination ARN may end with a qualifier: the outcome runs on it.
	if _, err := c.CreateFunction(&fc.CreateFunctionRequest{Body: &fc.CreateFunctionInput{
		FunctionName: dara.String("dest"), Runtime: dara.String("custom-container"),
		CustomContainerConfig: &fc.CustomContainerConfig{Image: dara.String("r/i:t")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PublishFunctionVersion(dara.String("dest"), &fc.PublishFunctionVersionRequest{Body: &fc.PublishVersionInput{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutAsyncInvokeConfig(dara.String("dest"), &fc.PutAsyncInvokeConfigRequest{Body: &fc.PutAsyncInvokeConfigInput{AsyncTask: dara.Bool(true)}}); err != nil {
		t.Fatal(err)
	}
	destConfig := func(arn string) error {
		_, err := c.PutAsyncInvokeConfig(dara.String("fn"), &fc.PutAsyncInvokeConfigRequest{Body: &fc.PutAsyncInvokeConfigInput{
			AsyncTask: dara.Bool(true), DestinationConfig: &fc.DestinationConfig{OnSuccess: &fc.Destination{Destination: dara.String(arn)}}}})
		return err
	}
	wantCode(t, "PutAsyncInvokeConfig to a missing version", destConfig("acs:fc:local:1:functions/dest/9"), CodeVersionNotFound, 404)
	wantCode(t, "PutAsyncInvokeConfig to a missing alias", destConfig("acs:fc:local:1:functions/dest/nosuch"), CodeAliasNotFound, 404)
	if err := destConfig("acs:fc:local:1:functions/dest/1"); err != nil {
		t.Fatal(err)
	}
	if err := env.invokeAsync(t, "to-dest", "", ""); err != nil {
		t.Fatal(err)
	}
	env.asyncTask(t, "to-dest")
	var dest *fc.AsyncTask
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		resp, err := c.GetAsyncTask(dara.String("dest"), dara.String("dest-fn-to-dest"), &fc.GetAsyncTaskRequest{})
		if err == nil && dara.StringValue(resp.Body.Status) == api.TaskSucceeded {
			dest = resp.Body
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("destination event: %v, %v; never succeeded", resp, err)
		}
	}
	if got := dara.StringValue(dest.ReturnPayload); got != "1 1" || dara.StringValue(dest.Qualifier) != "1" {
		t.Errorf("destination event: qualifier %q, the instance saw %q; want 1, \"1 1\"", dara.StringValue(dest.Qualifier), got)
	}

	// A disabled function takes no asynchronous invocation either.
	if _, err := c.DisableFunctionInvocation(dara.String("fn"), &fc.DisableFunctionInvocationRequest{}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "async invoke of a disabled function", env.invokeAsync(t, "disabled", "", ""), CodeFunctionDisabled, 403)
	if _, err := c.EnableFunctionInvocation(dara.String("fn")); err != nil {
		t.Fatal(err)
	}

	refused := []struct {
		id, query, header, code string
		status                  int
	}{
		{"no-version", "9", "", CodeVersionNotFound, 404},
		{"no-alias", "nosuch", "", CodeAliasNotFound, 404},
		{"no-alias-header", "", "nosuch", CodeAliasNotFound, 404},
		{"bad", "bad/q", "", CodeInvalidArgument, 400},
	}
	for _, tc := range refused {
		err := env.invokeAsync(t, tc.id, tc.query, tc.header)
		wantCode(t, "async invoke of qualifier "+tc.query+tc.header, err, tc.code, tc.status)
		_, err = c.GetAsyncTask(dara.String("fn"), dara.String(tc.id), &fc.GetAsyncTaskRequest{})
		wantCode(t, "GetAsyncTask of a refused invocation", err, CodeAsyncTaskNotFound, 404)
	}
}
