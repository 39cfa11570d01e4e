package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
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
	"github.com/fcd-dev/fcd/internal/testenv"
)

// BenchmarkProxies puts fcd's warm hop next to the best reverse proxies on
// the same instance, in one run: one warm echo instance (2 vCPUs) is
// called directly at its address inside fcd's network namespace, through
// haproxy and nginx (keep-alive upstreams to that address) and through
// fcd's HTTP invoke endpoint, with wrk (1 KiB POST bodies) at 16
// connections and at 1, interleaved over rounds. It prints, per target and
// connection count, the median over rounds of req/s, p50 and p99, and each
// proxy's CPU-seconds per 10k requests read from /proc; then the same for
// signed InvokeFunction calls (internal/loadgen, which signs each request,
// since wrk cannot).
//
//	make bench-warm
//	sudo go test ./cmd/fcd -run '^$' -bench Proxies -benchtime 1x
//
// FCD_BENCH_SECONDS (default 8) and FCD_BENCH_ROUNDS (default 3) bound it:
// about 2 × 4 × rounds × seconds plus start-up.
func BenchmarkProxies(b *testing.B) {
	requireRuntime(b)
	wrk := testenv.RequireCommand(b, "wrk", "wrk")
	haproxy := testenv.RequireCommand(b, "haproxy", "haproxy")
	nginx := testenv.RequireCommand(b, "nginx", "nginx-light")
	seconds, rounds := envInt("FCD_BENCH_SECONDS", 8), envInt("FCD_BENCH_ROUNDS", 3)

	refs := pushExamples(b, images.Echo)
	d := startProcess(b)
	c := sdkClient(b, &d.daemon, d.creds.AccessKeySecret)
	if _, err := c.CreateFunction(&fc.CreateFunctionRequest{Body: &fc.CreateFunctionInput{
		FunctionName:          dara.String("echo"),
		Runtime:               dara.String("custom-container"),
		MemorySize:            dara.Int32(2048),
		Cpu:                   dara.Float32(2),
		InstanceConcurrency:   dara.Int32(200),
		CustomContainerConfig: &fc.CustomContainerConfig{Image: dara.String(refs[images.Echo])},
	}}); err != nil {
		b.Fatal(err)
	}
	if _, err := c.CreateTrigger(dara.String("echo"), &fc.CreateTriggerRequest{Body: &fc.CreateTriggerInput{
		TriggerName:   dara.String("http"),
		TriggerType:   dara.String("http"),
		TriggerConfig: dara.String(`{"authType":"anonymous","methods":["GET","POST"]}`),
	}}); err != nil {
		b.Fatal(err)
	}
	status, body, err := fasthttp.Post(nil, "http://"+d.endpoint+"/fn/echo/", nil)
	if err != nil || status != 200 {
		b.Fatalf("first request: %d %v", status, err)
	}
	var echo struct{ Server string }
	if err := json.Unmarshal(body, &echo); err != nil || echo.Server == "" {
		b.Fatalf("echo did not report its address: %s", body)
	}

	dir := b.TempDir()
	script := filepath.Join(dir, "post.lua")
	lua := "wrk.method = \"POST\"\nwrk.body = string.rep(\"x\", 1024)\nwrk.headers[\"Content-Type\"] = \"application/octet-stream\"\n"
	if err := os.WriteFile(script, []byte(lua), 0o644); err != nil {
		b.Fatal(err)
	}
	hp := startHAProxy(b, haproxy, dir, echo.Server)
	np := startNginx(b, nginx, dir, echo.Server)

	targets := []proxyTarget{
		{name: "direct", url: "http://" + echo.Server + "/"},
		{name: "haproxy", url: "http://" + hp.addr + "/", pid: hp.pid},
		{name: "nginx", url: "http://" + np.addr + "/", pid: np.pid},
		{name: "fcd", url: "http://" + d.endpoint + "/fn/echo/", pid: d.pid},
	}
	results := map[string][]wrkResult{}
	for range b.N {
		for r := range rounds {
			for _, conns := range []int{16, 1} {
				// Rotate the order every round, so no target always runs
				// right after the same one.
				for i := range targets {
					t := targets[(i+r)%len(targets)]
					res := runWrk(b, wrk, script, t, conns, seconds)
					k := fmt.Sprintf("%s/%d", t.name, conns)
					results[k] = append(results[k], res)
				}
			}
		}
		signed := runSigned(b, d, seconds, rounds)
		printProxyTable(b, targets, results, signed)
	}
}

type proxyTarget struct {
	name string
	url  string
	pid  int // 0: nothing to measure
}

type wrkResult struct {
	rps, p50, p99 float64 // req/s, µs, µs
	cpu10k        float64 // proxy CPU-s per 10k requests
}

var (
	wrkRPS     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkPercent = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkTotal   = regexp.MustCompile(`(\d+) requests in`)
)

func runWrk(b *testing.B, wrk, script string, t proxyTarget, conns, seconds int) wrkResult {
	cpu0 := 0.0
	if t.pid != 0 {
		cpu0 = cpuSeconds(b, t.pid)
	}
	out, err := exec.Command(wrk, "-t1", fmt.Sprintf("-c%d", conns), fmt.Sprintf("-d%ds", seconds),
		"--timeout", "10s", "--latency", "-s", script, t.url).CombinedOutput()
	if err != nil {
		b.Fatalf("wrk %s: %v\n%s", t.url, err, out)
	}
	if strings.Contains(string(out), "Non-2xx") || strings.Contains(string(out), "Socket errors") {
		b.Fatalf("wrk %s saw errors:\n%s", t.name, out)
	}
	var r wrkResult
	m := wrkRPS.FindSubmatch(out)
	n := wrkTotal.FindSubmatch(out)
	if m == nil || n == nil {
		b.Fatalf("wrk output not understood:\n%s", out)
	}
	r.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	for _, p := range wrkPercent.FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(string(p[2]), 64)
		switch string(p[3]) {
		case "ms":
			v *= 1e3
		case "s":
			v *= 1e6
		}
		if string(p[1]) == "50" {
			r.p50 = v
		} else {
			r.p99 = v
		}
	}
	if t.pid != 0 {
		total, _ := strconv.Atoi(string(n[1]))
		r.cpu10k = (cpuSeconds(b, t.pid) - cpu0) / float64(total) * 10000
	}
	return r
}

// runSigned measures InvokeFunction with a fresh signature on every
// request, as the SDKs send it.
func runSigned(b *testing.B, d *process, seconds, rounds int) []wrkResult {
	path := "/2023-03-30/functions/echo/invocations"
	body := []byte(strings.Repeat("x", 1024))
	sign := func(req *fasthttp.Request) error {
		hr, err := http.NewRequest(http.MethodPost, "http://"+d.endpoint+path, nil)
		if err != nil {
			return err
		}
		hr.Header.Set("Content-Type", "application/octet-stream")
		if err := api.SignRequest(hr, body, d.creds.AccessKeyID, d.creds.AccessKeySecret); err != nil {
			return err
		}
		for k, v := range hr.Header {
			req.Header.Set(k, v[0])
		}
		return nil
	}
	var out []wrkResult
	for range rounds {
		for _, conns := range []int{16, 1} {
			cpu0 := cpuSeconds(b, d.pid)
			r, err := loadgen.Run(loadgen.Load{Addr: d.endpoint, Path: path, Body: body, Concurrency: conns,
				Requests: 1 << 30, Limit: time.Duration(seconds) * time.Second, Prepare: sign})
			if err != nil {
				b.Fatal(err)
			}
			out = append(out, wrkResult{
				rps: r.RPS, p50: float64(r.P50.Microseconds()), p99: float64(r.P99.Microseconds()),
				cpu10k: (cpuSeconds(b, d.pid) - cpu0) / float64(r.N) * 10000,
			})
		}
	}
	return out
}

func median(rs []wrkResult, f func(wrkResult) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	sort.Float64s(v)
	return v[len(v)/2]
}

func printProxyTable(b *testing.B, targets []proxyTarget, results map[string][]wrkResult, signed []wrkResult) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n%-8s %5s %10s %8s %9s %9s %14s %12s\n", "target", "conns", "req/s", "vs-dir", "p50-µs", "p99-µs", "cpu-s/10k-req", "added-p50")
	for _, conns := range []int{16, 1} {
		dir := results[fmt.Sprintf("direct/%d", conns)]
		drps, dp50 := median(dir, func(r wrkResult) float64 { return r.rps }), median(dir, func(r wrkResult) float64 { return r.p50 })
		for _, t := range targets {
			rs := results[fmt.Sprintf("%s/%d", t.name, conns)]
			rps, p50 := median(rs, func(r wrkResult) float64 { return r.rps }), median(rs, func(r wrkResult) float64 { return r.p50 })
			cpu := "-"
			if t.pid != 0 {
				cpu = fmt.Sprintf("%.3f", median(rs, func(r wrkResult) float64 { return r.cpu10k }))
			}
			fmt.Fprintf(&sb, "%-8s %5d %10.0f %8.2f %9.0f %9.0f %14s %12.0f\n", t.name, conns, rps, rps/drps, p50,
				median(rs, func(r wrkResult) float64 { return r.p99 }), cpu, p50-dp50)
			if t.pid != 0 {
				b.ReportMetric(rps, fmt.Sprintf("%s-c%d-req/s", t.name, conns))
				b.ReportMetric(median(rs, func(r wrkResult) float64 { return r.cpu10k }), fmt.Sprintf("%s-c%d-cpu-s/10k", t.name, conns))
				b.ReportMetric(p50-dp50, fmt.Sprintf("%s-c%d-added-p50-µs", t.name, conns))
			}
		}
	}
	for i, conns := range []int{16, 1} {
		var rs []wrkResult
		for j := i; j < len(signed); j += 2 {
			rs = append(rs, signed[j])
		}
		fmt.Fprintf(&sb, "%-8s %5d %10.0f %8s %9.0f %9.0f %14.3f %12s\n", "invoke", conns,
			median(rs, func(r wrkResult) float64 { return r.rps }), "-",
			median(rs, func(r wrkResult) float64 { return r.p50 }), median(rs, func(r wrkResult) float64 { return r.p99 }),
			median(rs, func(r wrkResult) float64 { return r.cpu10k }), "-")
	}
	fmt.Print(sb.String())
}

type proxyProcess struct {
	addr string
	pid  int
}

// startHAProxy runs haproxy in the foreground with a keep-alive backend to
// upstream, on a free loopback port.
func startHAProxy(b *testing.B, bin, dir, upstream string) proxyProcess {
	addr := freeLoopback(b)
	cfg := fmt.Sprintf(`global
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend f
  bind %s
  default_backend b
backend b
  server s1 %s
`, addr, upstream)
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	return startProxy(b, addr, exec.Command(bin, "-db", "-f", path))
}

// startNginx runs one nginx process (no master, one worker's work) with a
// keep-alive upstream, on a free loopback port.
func startNginx(b *testing.B, bin, dir, upstream string) proxyProcess {
	addr := freeLoopback(b)
	cfg := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  upstream fn { server %[3]s; keepalive 64; }
  server {
    listen %[2]s;
    location / {
      proxy_pass http://fn;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`, dir, addr, upstream)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	return startProxy(b, addr, exec.Command(bin, "-c", path, "-p", dir))
}

func startProxy(b *testing.B, addr string, cmd *exec.Cmd) proxyProcess {
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			return proxyProcess{addr: addr, pid: cmd.Process.Pid}
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not listen on %s within 10 s", cmd.Path, addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freeLoopback(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
