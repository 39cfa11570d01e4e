package main

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/async"
	"github.com/fcd-dev/fcd/proxy"
	"github.com/fcd-dev/fcd/store"
)

// idle is a dispatcher whose attempts never get an instance: they wait
// until stopped, so tasks stay Enqueued until the test stops them.
type idle struct{}

func (idle) Dispatch(ctx context.Context, ev *async.Event, begin func(string) error) async.Result {
	<-ctx.Done()
	return async.Result{Outcome: async.Throttled, Error: "stopped"}
}

// serveAsync is serve with an async queue and one function, echo, with
// one published version.
func serveAsync(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "fcd.db"), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	name, rt, img := "echo", api.RuntimeCustomContainer, "r/echo:1"
	f, err := api.NewFunction(&api.Input{FunctionName: &name, Runtime: &rt, CustomContainerConfig: &api.ContainerInput{Image: &img}}, "id", "local", "1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateFunction(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PublishVersion(context.Background(), name, "", time.Now()); err != nil {
		t.Fatal(err)
	}
	q, err := async.Open(st.DB(), async.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	creds, err := api.NewCredentials(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if err := api.SaveCredentials(filepath.Join(dir, api.CredentialsFile), creds); err != nil {
		t.Fatal(err)
	}
	srv := proxy.New(proxy.Options{Functions: st, Keys: proxy.StaticKeys{creds.AccessKeyID: creds.AccessKeySecret}, Versions: st, Async: q})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(ctx, ln) })
	wg.Go(func() { q.Run(ctx, idle{}) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return dir
}

func TestTaskCommands(t *testing.T) {
	dir := serveAsync(t)
	steps := []struct {
		args    []string
		wantOut string
		wantErr bool
	}{
		{[]string{"invoke", "echo", "--async", "--task-id", "job-1", "-d", "hi"}, "accepted: request id ", false},
		{[]string{"invoke", "echo", "--async", "--task-id", "job-1", "-d", "hi"}, "AsyncTaskAlreadyExists", true},
		{[]string{"invoke", "echo", "--task-id", "job-2"}, "--task-id needs --async", true},
		{[]string{"task", "list", "echo"}, "job-1", false},
		{[]string{"task", "get", "echo", "job-1"}, "status:     Enqueued", false},
		{[]string{"task", "stop", "echo", "job-1"}, "task job-1 of echo stopping", false},
		{[]string{"task", "get", "echo", "job-1", "-o", "json"}, `"status": "Stopped"`, false},
		{[]string{"task", "list", "echo", "--status", "Enqueued"}, "TASK ID", false},
		{[]string{"task", "stop", "echo", "job-1"}, "already finished", true},
		{[]string{"task", "get", "echo", "nope"}, "AsyncTaskNotFound", true},
		{[]string{"invoke", "echo", "--async", "--qualifier", "1", "--task-id", "job-v1"}, "accepted: request id ", false},
		{[]string{"task", "get", "echo", "job-v1"}, "qualifier:  1\n", false},
		{[]string{"task", "get", "echo", "job-v1", "-o", "json"}, `"qualifier": "1"`, false},
		{[]string{"task", "list", "echo", "--qualifier", "1"}, "job-v1", false},
		{[]string{"task", "get", "echo", "job-v1", "--qualifier", "LATEST"}, "AsyncTaskNotFound", true},
		{[]string{"invoke", "echo", "--async", "--qualifier", "nosuch", "--task-id", "job-x"}, "AliasNotFound", true},
		{[]string{"invoke", "echo", "--async", "--qualifier", "7", "--task-id", "job-x"}, "VersionNotFound", true},
		{[]string{"task", "get", "echo"}, "takes 2 argument(s)", true},
	}
	for _, s := range steps {
		out, err := fcctl(t, dir, s.args...)
		if (err != nil) != s.wantErr {
			t.Fatalf("fcctl %s: got error %v, want error %v; output:\n%s", strings.Join(s.args, " "), err, s.wantErr, out)
		}
		if err != nil {
			out += err.Error()
		}
		if !strings.Contains(out, s.wantOut) {
			t.Errorf("fcctl %s: output %q does not contain %q", strings.Join(s.args, " "), out, s.wantOut)
		}
	}
	if out, _ := fcctl(t, dir, "task", "list", "echo", "--qualifier", "1"); strings.Contains(out, "job-1") {
		t.Errorf("a LATEST task is listed for qualifier 1:\n%s", out)
	}
	out, _ := fcctl(t, dir, "task", "list", "echo", "--status", "Enqueued")
	if strings.Contains(out, "job-1") {
		t.Errorf("a stopped task is listed as Enqueued:\n%s", out)
	}
	if _, err := fcctl(t, dir, "task", "get", "echo"); !errors.Is(err, errUsage) {
		t.Errorf("got %v, want a usage error", err)
	}
}
