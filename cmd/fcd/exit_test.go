package main

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	fc "github.com/alibabacloud-go/fc-20230330/v4/client"
	"github.com/alibabacloud-go/tea/dara"

	"github.com/fcd-dev/fcd/examples/images"
)

// TestInstanceExitMidRequest invokes real instances whose process ends
// while it serves the request, by exiting and by passing its memory limit:
// the caller gets a function error saying so (CAExited, the exit code,
// oom, the instance's last log lines), not the broken connection's EOF.
func TestInstanceExitMidRequest(t *testing.T) {
	requireRuntime(t)
	refs := pushExamples(t, images.Misbehave)
	d := startDaemonWith(t, t.TempDir(), []string{"-name", "fcdexit", "-subnet", "10.131.0.0/16"}, true)
	c := sdkClient(t, d, d.creds.AccessKeySecret)
	createMisbehave(t, c, "misbehave", refs[images.Misbehave], 60, 1)
	tests := []struct {
		event string
		code  int
		oom   bool
		log   string // a line the instance wrote before it ended
	}{
		{"exit 3", 3, false, "misbehave: exiting with code 3 mid-request"},
		{"oom", 137, true, "misbehave: allocating until killed"},
	}
	for _, tt := range tests {
		t.Run(tt.event, func(t *testing.T) {
			resp, body, err := invoke(c, "misbehave", tt.event)
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				ErrorMessage string   `json:"errorMessage"`
				ErrorType    string   `json:"errorType"`
				ExitCode     *int     `json:"exitCode"`
				OOM          *bool    `json:"oom"`
				Logs         []string `json:"logs"`
			}
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			t.Logf("%s: HTTP %d, x-fc-error-type %s, %s", tt.event, dara.Int32Value(resp.StatusCode), dara.StringValue(resp.Headers["x-fc-error-type"]), body)
			if s, et := dara.Int32Value(resp.StatusCode), dara.StringValue(resp.Headers["x-fc-error-type"]); s != 200 || et != "UnhandledInvocationError" {
				t.Errorf("got HTTP %d with x-fc-error-type %q, want 200 with UnhandledInvocationError", s, et)
			}
			if got.ErrorType != "CAExited" || got.ExitCode == nil || *got.ExitCode != tt.code || got.OOM == nil || *got.OOM != tt.oom {
				t.Errorf("got errorType %q, exitCode %v, oom %v; want CAExited, %d, %v", got.ErrorType, deref(got.ExitCode), deref(got.OOM), tt.code, tt.oom)
			}
			if !strings.Contains(got.ErrorMessage, "Process exited unexpectedly before completing request") {
				t.Errorf("errorMessage %q does not say the process exited", got.ErrorMessage)
			}
			if !strings.Contains(strings.Join(got.Logs, "\n"), tt.log) || !strings.Contains(got.ErrorMessage, tt.log) {
				t.Errorf("logs %q, errorMessage %q: want the instance's line %q in both", got.Logs, got.ErrorMessage, tt.log)
			}
		})
	}
	// The function serves again from a new instance.
	if _, body, err := invoke(c, "misbehave", "hello"); err != nil || body != "hello" {
		t.Errorf("invoke after the exits: %q, %v", body, err)
	}
}

// TestInstanceShimKilled kills the shim of an instance serving a request
// (as the kernel's OOM killer may pick it): containerd then deletes the
// task and kills its processes. The caller gets CAExited, and the next
// request a new instance, not the dead one.
func TestInstanceShimKilled(t *testing.T) {
	requireRuntime(t)
	const name = "fcdshim"
	refs := pushExamples(t, images.Misbehave)
	d := startDaemonWith(t, t.TempDir(), []string{"-name", name, "-subnet", "10.134.0.0/16"}, true)
	c := sdkClient(t, d, d.creds.AccessKeySecret)
	createMisbehave(t, c, "misbehave", refs[images.Misbehave], 60, 1)
	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		_, body, err := invoke(c, "misbehave", "sleep 50000")
		done <- result{body, err}
	}()
	eventually(t, "the instance", time.Minute, func() bool { return metric(t, d, "fcd_instances", "misbehave") == 1 })
	shims := shimPIDs(name)
	if len(shims) != 1 {
		t.Fatalf("shims of the one instance: %v, want one", shims)
	}
	if err := syscall.Kill(shims[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil || !strings.Contains(r.body, `"errorType":"CAExited"`) {
			t.Errorf("the request its instance's shim died under: %q, %v; want CAExited", r.body, r.err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("the request its instance's shim died under still waits 40s later")
	}
	if _, body, err := invoke(c, "misbehave", "hello"); err != nil || body != "hello" {
		t.Errorf("invoke after the shim died: %q, %v", body, err)
	}
}

// createMisbehave creates a function named name running image (the
// misbehave example), unaccelerated, with 128 MB, timeout seconds and
// concurrency requests per instance.
func createMisbehave(t *testing.T, c *fc.Client, name, image string, timeout, concurrency int32) {
	t.Helper()
	if _, err := c.CreateFunction(&fc.CreateFunctionRequest{Body: &fc.CreateFunctionInput{
		FunctionName:          dara.String(name),
		Runtime:               dara.String("custom-container"),
		MemorySize:            dara.Int32(128),
		Timeout:               dara.Int32(timeout),
		InstanceConcurrency:   dara.Int32(concurrency),
		CustomContainerConfig: &fc.CustomContainerConfig{Image: dara.String(image), AccelerationType: dara.String("None")},
	}}); err != nil {
		t.Fatal(err)
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
