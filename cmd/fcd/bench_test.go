package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alibabacloud-go/tea/dara"
	"github.com/valyala/fasthttp"

	fc "github.com/alibabacloud-go/fc-20230330/v4/client"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/examples/images"
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
	for i := 0; i < b.N; i++ {
		load(b, echo.Server, "/", payload, concurrency, 2000, limit)
		load(b, d.endpoint, "/fn/echo/", payload, concurrency, 2000, limit)

		direct := load(b, echo.Server, "/", payload, concurrency, requests, limit)
		if os.Getenv("FCD_BENCH_PROFILE") != "" {
			go profile(b, os.Getenv("FCD_BENCH_PROFILE"))
		}
		cpu0 := cpuSeconds(b, d.pid)
		via := load(b, d.endpoint, "/fn/echo/", payload, concurrency, requests, limit)
		cpu := cpuSeconds(b, d.pid) - cpu0

		b.ReportMetric(direct.rps, "direct-req/s")
		b.ReportMetric(via.rps, "fcd-req/s")
		b.ReportMetric(via.rps/direct.rps, "throughput-ratio")
		b.ReportMetric(float64(direct.p50.Microseconds()), "direct-p50-µs")
		b.ReportMetric(float64(via.p50.Microseconds()), "fcd-p50-µs")
		b.ReportMetric(float64(direct.p99.Microseconds()), "direct-p99-µs")
		b.ReportMetric(float64(via.p99.Microseconds()), "fcd-p99-µs")
		b.ReportMetric(float64((via.p50 - direct.p50).Microseconds()), "added-p50-µs")
		b.ReportMetric(cpu/float64(via.n)*10000, "fcd-cpu-s/10k-req")
	}
}

type loadStats struct {
	n        int
	rps      float64
	p50, p99 time.Duration
}

// load sends count POSTs from concurrency workers over keep-alive
// connections, stopping early at limit.
func load(b *testing.B, addr, path string, body []byte, concurrency, count int, limit time.Duration) loadStats {
	b.Helper()
	c := &fasthttp.HostClient{Addr: addr, MaxConns: concurrency, ReadTimeout: 10 * time.Second}
	lat := make([][]time.Duration, concurrency)
	deadline := time.Now().Add(limit)
	var wg sync.WaitGroup
	var failed sync.Once
	start := time.Now()
	for w := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for j := 0; j < count/concurrency && time.Now().Before(deadline); j++ {
				req.SetRequestURI("http://" + addr + path)
				req.Header.SetMethod("POST")
				req.SetBody(body)
				t0 := time.Now()
				err := c.Do(req, resp)
				lat[w] = append(lat[w], time.Since(t0))
				if err != nil || resp.StatusCode() != 200 {
					failed.Do(func() { b.Errorf("POST %s%s: %v, status %d", addr, path, err, resp.StatusCode()) })
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		b.Fatal("no request completed")
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	return loadStats{n: len(all), rps: float64(len(all)) / elapsed.Seconds(), p50: all[len(all)/2], p99: all[len(all)*99/100]}
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
	cmd := exec.Command(bin, "-data-dir", data, "-listen", "127.0.0.1:0", "-name", "fcdbench", "-subnet", "10.90.0.0/16", "-log-level", "warn", "-debug-address", "127.0.0.1:16060")
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

// profile saves a 5 s CPU profile of the fcd process to path.
func profile(b *testing.B, path string) {
	status, body, err := fasthttp.GetTimeout(nil, "http://127.0.0.1:16060/debug/pprof/profile?seconds=5", 30*time.Second)
	if err != nil || status != 200 {
		b.Logf("profile: %d %v", status, err)
		return
	}
	os.WriteFile(path, body, 0o644)
}
