package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alibabacloud-go/tea/dara"
	"github.com/valyala/fasthttp"

	fc "github.com/alibabacloud-go/fc-20230330/v4/client"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/examples/images"
	"github.com/fcd-dev/fcd/internal/loadgen"
)

// BenchmarkWarmInvoke measures the warm request path end to end, in one
// run: the echo example in a real instance called directly at its address
// (inside the network namespace fcd created) and through fcd's HTTP invoke
// endpoint, with a fixed concurrency of 16, 1 KiB bodies, keep-alive, and a
// bounded number of requests per side. fcd runs as its own process so its
// CPU time is measured alone.
//
//	sudo go test ./cmd/fcd -run '^$' -bench WarmInvoke -benchtime 1x
func BenchmarkWarmInvoke(b *testing.B) {
	const (
		concurrency = 16
		requests    = 20000
		limit       = 60 * time.Second
	)
	requireRuntime(b)
	refs := pushExamples(b, images.Echo)
	d := startProcess(b)
	c := sdkClient(b, &d.daemon, d.creds.AccessKeySecret)
	_, err := c.CreateFunction(&fc.CreateFunctionRequest{Body: &fc.CreateFunctionInput{
		FunctionName:          dara.String("echo"),
		Runtime:               dara.String("custom-container"),
		MemorySize:            dara.Int32(512),
		InstanceConcurrency:   dara.Int32(100),
		CustomContainerConfig: &fc.CustomContainerConfig{Image: dara.String(refs[images.Echo])},
	}})
	if err != nil {
		b.Fatal(err)
	}
	createHTTPTrigger(b, c, "echo")
	// One request cold-starts the instance and tells its address.
	status, body, err := fasthttp.Post(nil, "http://"+d.endpoint+"/fn/echo/", nil)
	if err != nil || status != 200 {
		b.Fatalf("first request: %d %v", status, err)
	}
	var echo struct{ Server string }
	if err := json.Unmarshal(body, &echo); err != nil || echo.Server == "" {
		b.Fatalf("echo did not report its address: %s", body)
	}
	payload := bytes.Repeat([]byte("x"), 1024)
	run := func(addr, path string, n int) loadgen.Result {
		r, err := loadgen.Run(loadgen.Load{Addr: addr, Path: path, Body: payload, Concurrency: concurrency, Requests: n, Limit: limit})
		if err != nil {
			b.Fatal(err)
		}
		return r
	}
	for i := 0; i < b.N; i++ {
		run(echo.Server, "/", 2000)
		run(d.endpoint, "/fn/echo/", 2000)

		direct := run(echo.Server, "/", requests)
		cpu0 := cpuSeconds(b, d.pid)
		via := run(d.endpoint, "/fn/echo/", requests)
		cpu := cpuSeconds(b, d.pid) - cpu0

		loadgen.Report(b, direct, via)
		b.ReportMetric(cpu/float64(via.N)*10000, "fcd-cpu-s/10k-req")
	}
}

// cpuSeconds is the user+system CPU time of process pid.
func cpuSeconds(b *testing.B, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses.
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100 // USER_HZ
}

// process is an fcd started as a child process.
type process struct {
	daemon
	pid int
}

// startProcess builds fcd and runs it on a free loopback port until the
// benchmark ends.
func startProcess(b *testing.B) *process {
	b.Helper()
	dir := b.TempDir()
	bin := filepath.Join(dir, "fcd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("build fcd: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")
	cmd := exec.Command(bin, "-data-dir", data, "-listen", "127.0.0.1:0", "-name", "fcdbench", "-subnet", "10.90.0.0/16", "-log-level", "warn")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	deadline := time.Now().Add(time.Minute)
	for {
		// fcd writes its credentials, with the address it listens on, just
		// before it serves.
		creds, err := api.LoadCredentials(filepath.Join(data, api.CredentialsFile))
		if err == nil {
			if status, _, err := fasthttp.Get(nil, "http://"+creds.Endpoint+"/metrics"); err == nil && status == 200 {
				return &process{daemon: daemon{endpoint: creds.Endpoint, creds: creds}, pid: cmd.Process.Pid}
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("fcd did not start within a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
