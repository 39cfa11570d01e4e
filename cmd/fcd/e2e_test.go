package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	stdlog "log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	fc "github.com/alibabacloud-go/fc-20230330/v4/client"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/fcd-dev/fcd/examples/images"
	"github.com/fcd-dev/fcd/instance"
	"github.com/fcd-dev/fcd/internal/testenv"
)

// requireRuntime skips (or on CI fails) unless instances can run here.
func requireRuntime(t testing.TB) {
	t.Helper()
	testenv.RequireRoot(t)
	for _, r := range instance.Requirements("") {
		if strings.HasPrefix(r.Path, "/") {
			testenv.RequireFile(t, r.Path, r.Package)
		} else {
			testenv.RequireCommand(t, r.Path, r.Package)
		}
	}
}

// pushExamples serves a registry on loopback and pushes the example images
// to it, returning their references by name.
func pushExamples(t testing.TB, names ...string) map[string]string {
	t.Helper()
	reg := httptest.NewServer(registry.New(registry.Logger(stdlog.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	refs := map[string]string{}
	for _, name := range names {
		img, err := images.Build(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		refs[name] = images.Ref(host, name)
		if err := images.Push(ctx, refs[name], img, nil); err != nil {
			t.Fatal(err)
		}
	}
	return refs
}

// metric returns the value of a /metrics sample, 0 when absent.
func metric(t *testing.T, d *daemon, name, function string) float64 {
	t.Helper()
	return sample(t, d, name+`{function="`+function+`"}`)
}

// sample returns the value of the /metrics sample named and labelled as
// in series (e.g. `x{a="b"}`), 0 when absent.
func sample(t *testing.T, d *daemon, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + d.endpoint + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	prefix := series + " "
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

func eventually(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func createFunction(t *testing.T, c *fc.Client, name, image string, concurrency int32) {
	t.Helper()
	_, err := c.CreateFunction(&fc.CreateFunctionRequest{Body: &fc.CreateFunctionInput{
		FunctionName:          dara.String(name),
		Runtime:               dara.String("custom-container"),
		MemorySize:            dara.Int32(128),
		Timeout:               dara.Int32(10),
		InstanceConcurrency:   dara.Int32(concurrency),
		CustomContainerConfig: &fc.CustomContainerConfig{Image: dara.String(image)},
	}})
	if err != nil {
		t.Fatalf("CreateFunction %s: %v", name, err)
	}
	createHTTPTrigger(t, c, name)
}

func invoke(c *fc.Client, name, body string) (*fc.InvokeFunctionResponse, string, error) {
	resp, err := c.InvokeFunction(dara.String(name), &fc.InvokeFunctionRequest{Body: strings.NewReader(body)})
	if err != nil {
		return resp, "", err
	}
	out, err := io.ReadAll(resp.Body)
	return resp, string(out), err
}

// TestEndToEnd drives real instances on containerd through the official
// SDK and the HTTP trigger: invoke, a start failure, 50 concurrent requests
// coalescing cold starts, idle reclaim and provisioned instances.
func TestEndToEnd(t *testing.T) {
	requireRuntime(t)
	refs := pushExamples(t, images.Echo, images.EchoLocalhost)
	d := startDaemonWith(t, t.TempDir(), []string{
		"-name", "fcde2e", "-subnet", "10.89.0.0/16", "-idle-timeout", "2s",
	}, true)
	c := sdkClient(t, d, d.creds.AccessKeySecret)
	createFunction(t, c, "echo", refs[images.Echo], 10)
	createFunction(t, c, "local", refs[images.EchoLocalhost], 1)

	t.Run("InvokeFunction", func(t *testing.T) {
		resp, body, err := invoke(c, "echo", `{"event":1}`)
		if err != nil {
			t.Fatal(err)
		}
		if dara.Int32Value(resp.StatusCode) != 200 || body != `{"event":1}` || dara.StringValue(resp.Headers["x-fc-request-id"]) == "" {
			t.Fatalf("got %d %q headers %v, want 200, the event back and a request id", dara.Int32Value(resp.StatusCode), body, resp.Headers)
		}
	})
	t.Run("start phases in metrics", func(t *testing.T) {
		// The full pull's steps and the invocation's first response too.
		for _, phase := range []string{"pull", "network", "task", "probe", "resolve", "fetch", "mount", "first_response"} {
			if n := sample(t, d, `fcd_instance_start_phase_seconds_count{phase="`+phase+`"}`); n < 1 {
				t.Errorf("fcd_instance_start_phase_seconds_count{phase=%q}: got %v, want at least 1 after a cold start", phase, n)
			}
		}
	})
	t.Run("HTTP trigger", func(t *testing.T) {
		resp, err := http.Post("http://"+d.endpoint+"/fn/echo/some/path?x=1", "text/plain", strings.NewReader("hi"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got struct {
			Method, Path, Body string
			Query              map[string][]string
		}
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || got.Method != "POST" || got.Path != "/some/path" || got.Body != "hi" || got.Query["x"][0] != "1" {
			t.Fatalf("got %d %+v", resp.StatusCode, got)
		}
	})
	t.Run("server on 127.0.0.1 does not start", func(t *testing.T) {
		_, _, err := invoke(c, "local", "x")
		code, status := sdkCode(err)
		if code != "FunctionNotStarted" || status != 412 || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("got %q/%d (%v), want FunctionNotStarted/412 naming the refused connection", code, status, err)
		}
	})
	t.Run("50 concurrent requests", func(t *testing.T) {
		before := metric(t, d, "fcd_cold_starts_total", "echo")
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				want := fmt.Sprintf("request %d", i)
				if _, body, err := invoke(c, "echo", want); err != nil || body != want {
					errs <- fmt.Errorf("request %d: %q, %v", i, body, err)
				}
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if started := metric(t, d, "fcd_cold_starts_total", "echo") - before; started > 5 {
			t.Errorf("cold starts for 50 requests at concurrency 10: got %v, want at most 5", started)
		}
		eventually(t, "idle instances stopped", 30*time.Second, func() bool {
			return metric(t, d, "fcd_instances", "echo") == 0
		})
	})
	t.Run("provisioned instances stay", func(t *testing.T) {
		_, err := c.PutProvisionConfig(dara.String("echo"), &fc.PutProvisionConfigRequest{Body: &fc.PutProvisionConfigInput{DefaultTarget: dara.Int64(2)}})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "two provisioned instances", 60*time.Second, func() bool {
			return metric(t, d, "fcd_instances", "echo") == 2
		})
		time.Sleep(3 * time.Second) // past the idle timeout
		got, err := c.GetProvisionConfig(dara.String("echo"), &fc.GetProvisionConfigRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if cur := dara.Int64Value(got.Body.Current); cur != 2 || metric(t, d, "fcd_instances", "echo") != 2 {
			t.Fatalf("after the idle timeout: current %d, want 2", cur)
		}
	})
}
