package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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
	"github.com/fcd-dev/fcd/examples/echoserver"
	"github.com/fcd-dev/fcd/examples/images"
	"github.com/fcd-dev/fcd/internal/loadgen"
	"github.com/fcd-dev/fcd/internal/testenv"
	"github.com/fcd-dev/fcd/proxy"
)

// BenchmarkProxies puts fcd's warm hop next to the best reverse proxies on
// the same instance, in one run: one warm echo instance (2 vCPUs) is
// called directly at its address inside fcd's network namespace, through
// haproxy and nginx (keep-alive upstreams to that address), through
// haproxy-fc (haproxy setting the x-fc-* headers fcd sends, so that the
// instance does the same work behind both), through go-floor (a Go proxy
// that only relays: the floor of any proxy in Go) and through fcd's HTTP
// invoke endpoint, with wrk (1 KiB POST bodies) at 16
// connections and at 1, interleaved over rounds. It prints, per target and
// connection count, the median over rounds of req/s, p50 and p99, and each
// proxy's CPU-seconds per 10k requests read from /proc, and the
// instance's (what each proxy's request costs the function); then the
// same for signed InvokeFunction calls (internal/loadgen, which signs each
// request, since wrk cannot).
//
//	make bench-warm
//	sudo go test ./cmd/fcd -run '^$' -bench Proxies -benchtime 1x
//
// FCD_BENCH_SECONDS (default 8) and FCD_BENCH_ROUNDS (default 3) bound it:
// about 2 × 4 × rounds × seconds plus start-up. FCD_BENCH_VARIANTS runs
// several fcds side by side (benchVariants), each one more target;
// FCD_BENCH_PROFILE=<dir> saves a CPU profile of each fcd taken during
// its first 16-connection run, as <dir>/<variant>.pprof.
func BenchmarkProxies(b *testing.B) {
	requireRuntime(b)
	wrk := testenv.RequireCommand(b, "wrk", "wrk")
	haproxy := testenv.RequireCommand(b, "haproxy", "haproxy")
	nginx := testenv.RequireCommand(b, "nginx", "nginx-light")
	seconds, rounds := envInt("FCD_BENCH_SECONDS", 8), envInt("FCD_BENCH_ROUNDS", 3)

	refs := pushExamples(b, images.Echo)
	variants := benchVariants(b)
	profiles := os.Getenv("FCD_BENCH_PROFILE")
	bin := buildBenchFCD(b)
	var fcds []*benchFCD
	for i, v := range variants {
		fcds = append(fcds, startBenchFCD(b, bin, i, v, refs[images.Echo], profiles != ""))
	}
	echoAddr := fcds[0].echo

	dir := b.TempDir()
	script := filepath.Join(dir, "post.lua")
	lua := "wrk.method = \"POST\"\nwrk.body = string.rep(\"x\", 1024)\nwrk.headers[\"Content-Type\"] = \"application/octet-stream\"\n"
	if err := os.WriteFile(script, []byte(lua), 0o644); err != nil {
		b.Fatal(err)
	}
	hp := startHAProxy(b, haproxy, dir, "haproxy.cfg", echoAddr, nil)
	// haproxy-fc sends the instance the x-fc-* headers fcd sends it, a
	// fresh request id each time: the same request an instance gets
	// behind fcd, so that the instance's work is the same and the gap is
	// the proxy's own.
	hpfc := startHAProxy(b, haproxy, dir, "haproxy-fc.cfg", echoAddr, fcHeaders(b, fcds[0].endpoint))
	np := startNginx(b, nginx, dir, echoAddr)
	floor := startFloorProxy(b, dir, echoAddr)

	inst := instancePID(b, echoAddr)
	targets := []proxyTarget{
		{name: "direct", url: "http://" + echoAddr + "/", inst: inst},
		{name: "haproxy", url: "http://" + hp.addr + "/", pid: hp.pid, inst: inst},
		{name: "haproxy-fc", url: "http://" + hpfc.addr + "/", pid: hpfc.pid, inst: inst},
		{name: "nginx", url: "http://" + np.addr + "/", pid: np.pid, inst: inst},
		{name: "go-floor", url: "http://" + floor.addr + "/", pid: floor.pid, inst: inst},
	}
	for _, f := range fcds {
		targets = append(targets, proxyTarget{name: f.name, url: "http://" + f.endpoint + "/fn/echo/", pid: f.pid, debug: f.debug, inst: instancePID(b, f.echo)})
	}
	results := map[string][]wrkResult{}
	for range b.N {
		for r := range rounds {
			for _, conns := range []int{16, 1} {
				// Rotate the order every round, so no target always runs
				// right after the same one.
				for i := range targets {
					t := targets[(i+r)%len(targets)]
					var prof func()
					if r == 0 && conns == 16 && t.debug != "" {
						prof = fetchProfile(b, t.debug, seconds, filepath.Join(profiles, t.name+".pprof"))
					}
					res := runWrk(b, wrk, script, t, conns, seconds)
					if prof != nil {
						prof()
					}
					k := fmt.Sprintf("%s/%d", t.name, conns)
					results[k] = append(results[k], res)
				}
			}
		}
		signed := map[string][]wrkResult{}
		for _, f := range fcds {
			signed[f.name] = runSigned(b, &f.process, seconds, rounds)
		}
		printProxyTable(b, targets, results, fcds, signed)
	}
}

type proxyTarget struct {
	name string
	url  string
	pid  int // 0: nothing to measure
	// debug is the address of the target's /debug/pprof, empty when
	// it has none.
	debug string
	// inst is the process of the instance the target's requests reach.
	inst int
}

type wrkResult struct {
	rps, p50, p99 float64 // req/s, µs, µs
	cpu10k        float64 // proxy CPU-s per 10k requests
	usr10k        float64 // the user-mode part of cpu10k
	// inst10k is the instance's CPU-s per 10k requests: what the
	// request a proxy sends costs the function (fcd's carries FC's
	// x-fc-* headers, which the echo function parses and echoes).
	inst10k float64
}

var (
	wrkRPS     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkPercent = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkTotal   = regexp.MustCompile(`(\d+) requests in`)
)

func runWrk(b *testing.B, wrk, script string, t proxyTarget, conns, seconds int) wrkResult {
	cpu0, usr0 := 0.0, 0.0
	if t.pid != 0 {
		cpu0, usr0 = cpuSeconds(b, t.pid), userSeconds(b, t.pid)
	}
	inst0 := cpuSeconds(b, t.inst)
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
	total, _ := strconv.Atoi(string(n[1]))
	if t.pid != 0 {
		r.cpu10k = (cpuSeconds(b, t.pid) - cpu0) / float64(total) * 10000
		r.usr10k = (userSeconds(b, t.pid) - usr0) / float64(total) * 10000
	}
	r.inst10k = (cpuSeconds(b, t.inst) - inst0) / float64(total) * 10000
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

// userSeconds is the user-mode part of cpuSeconds: with it the table
// tells the proxy's own work from the kernel's, which on loopback runs
// the receiver's network stack inside every write.
func userSeconds(b *testing.B, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, _ := strconv.ParseFloat(fields[11], 64)
	return utime / 100 // USER_HZ
}

func median(rs []wrkResult, f func(wrkResult) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	sort.Float64s(v)
	return v[len(v)/2]
}

func printProxyTable(b *testing.B, targets []proxyTarget, results map[string][]wrkResult, fcds []*benchFCD, signed map[string][]wrkResult) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n%-8s %5s %10s %8s %9s %9s %14s %9s %12s %9s\n", "target", "conns", "req/s", "vs-dir", "p50-µs", "p99-µs", "cpu-s/10k-req", "usr/10k", "added-p50", "inst/10k")
	for _, conns := range []int{16, 1} {
		dir := results[fmt.Sprintf("direct/%d", conns)]
		drps, dp50 := median(dir, func(r wrkResult) float64 { return r.rps }), median(dir, func(r wrkResult) float64 { return r.p50 })
		for _, t := range targets {
			rs := results[fmt.Sprintf("%s/%d", t.name, conns)]
			rps, p50 := median(rs, func(r wrkResult) float64 { return r.rps }), median(rs, func(r wrkResult) float64 { return r.p50 })
			cpu, usr := "-", "-"
			if t.pid != 0 {
				cpu = fmt.Sprintf("%.3f", median(rs, func(r wrkResult) float64 { return r.cpu10k }))
				usr = fmt.Sprintf("%.3f", median(rs, func(r wrkResult) float64 { return r.usr10k }))
			}
			fmt.Fprintf(&sb, "%-8s %5d %10.0f %8.2f %9.0f %9.0f %14s %9s %12.0f %9.3f\n", t.name, conns, rps, rps/drps, p50,
				median(rs, func(r wrkResult) float64 { return r.p99 }), cpu, usr, p50-dp50, median(rs, func(r wrkResult) float64 { return r.inst10k }))
			if t.pid != 0 {
				b.ReportMetric(rps, fmt.Sprintf("%s-c%d-req/s", t.name, conns))
				b.ReportMetric(median(rs, func(r wrkResult) float64 { return r.cpu10k }), fmt.Sprintf("%s-c%d-cpu-s/10k", t.name, conns))
				b.ReportMetric(p50-dp50, fmt.Sprintf("%s-c%d-added-p50-µs", t.name, conns))
			}
		}
	}
	for i, conns := range []int{16, 1} {
		for _, f := range fcds {
			var rs []wrkResult
			for j := i; j < len(signed[f.name]); j += 2 {
				rs = append(rs, signed[f.name][j])
			}
			name := "invoke"
			if len(fcds) > 1 {
				name = "inv-" + f.name
			}
			fmt.Fprintf(&sb, "%-8s %5d %10.0f %8s %9.0f %9.0f %14.3f %9s %12s\n", name, conns,
				median(rs, func(r wrkResult) float64 { return r.rps }), "-",
				median(rs, func(r wrkResult) float64 { return r.p50 }), median(rs, func(r wrkResult) float64 { return r.p99 }),
				median(rs, func(r wrkResult) float64 { return r.cpu10k }), "-", "-")
		}
	}
	printRatios(&sb, results, fcds)
	fmt.Print(sb.String())
}

// printRatios writes each fcd's figures against each reference proxy's
// from the same run: req/s and CPU per request at 16 connections as
// multiples, and the added p50 at 1 connection as a difference.
func printRatios(sb *strings.Builder, results map[string][]wrkResult, fcds []*benchFCD) {
	med := func(name string, conns int, f func(wrkResult) float64) float64 {
		return median(results[fmt.Sprintf("%s/%d", name, conns)], f)
	}
	rps := func(r wrkResult) float64 { return r.rps }
	cpu := func(r wrkResult) float64 { return r.cpu10k }
	p50 := func(r wrkResult) float64 { return r.p50 }
	added := func(name string) float64 { return med(name, 1, p50) - med("direct", 1, p50) }
	for _, f := range fcds {
		for _, ref := range []string{"haproxy", "haproxy-fc", "nginx", "go-floor"} {
			fmt.Fprintf(sb, "%s vs %s: req/s@16 %.2fx, cpu/10k@16 %.2fx, added-p50@1 %+.0f µs\n", f.name, ref,
				med(f.name, 16, rps)/med(ref, 16, rps), med(f.name, 16, cpu)/med(ref, 16, cpu), added(f.name)-added(ref))
		}
	}
}

// instancePID finds the process of the instance serving at addr (an
// instance's own address inside fcd's network namespace): the process
// whose network namespace has addr's IP as a local address and whose
// command is the function's (the container's first process).
func instancePID(b *testing.B, addr string) int {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		b.Fatal(err)
	}
	local := regexp.MustCompile(`\|-- ` + regexp.QuoteMeta(host) + `\n\s+/32 host LOCAL`)
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		cmd, err := os.ReadFile(p)
		if err != nil || !strings.HasPrefix(string(cmd), "/app/echo\x00") {
			continue
		}
		dir := filepath.Dir(p)
		trie, err := os.ReadFile(filepath.Join(dir, "net", "fib_trie"))
		if err != nil || !local.Match(trie) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(dir))
		return pid
	}
	b.Fatalf("no instance process serves %s", addr)
	return 0
}

// fcHeaders returns the x-fc-* headers fcd's HTTP endpoint at endpoint
// sends the echo function, as its instance saw them: the echo answers a
// GET with the request's headers.
func fcHeaders(b *testing.B, endpoint string) map[string]string {
	resp, err := http.Get("http://" + endpoint + "/fn/echo/")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var echo echoserver.Request
	if err := json.NewDecoder(resp.Body).Decode(&echo); err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("echo through fcd: status %d, %v", resp.StatusCode, err)
	}
	fc := map[string]string{}
	for k, v := range echo.Headers {
		if len(v) == 1 && strings.HasPrefix(strings.ToLower(k), "x-fc-") {
			fc[k] = v[0]
		}
	}
	if _, ok := fc[http.CanonicalHeaderKey(proxy.HeaderRequestID)]; !ok {
		b.Fatalf("the echo saw no %s through fcd: %v", proxy.HeaderRequestID, echo.Headers)
	}
	return fc
}

type proxyProcess struct {
	addr string
	pid  int
}

// startHAProxy runs haproxy in the foreground with a keep-alive backend to
// upstream, on a free loopback port, with configuration file name in dir.
// It sets the request headers in set on every request, and for
// x-fc-request-id a fresh UUID instead of set's value.
func startHAProxy(b *testing.B, bin, dir, name, upstream string, set map[string]string) proxyProcess {
	addr := freeLoopback(b)
	var rules strings.Builder
	for _, k := range slices.Sorted(maps.Keys(set)) {
		v := strings.ReplaceAll(set[k], "%", "%%") // a log-format string
		switch {
		case strings.EqualFold(k, proxy.HeaderRequestID):
			v = "%[uuid]"
		case v == "":
			v = "%[str()]" // "" would be no argument at all
		}
		if strings.ContainsAny(k+v, "\"\\\r\n") {
			b.Fatalf("header %s: %q cannot be written into haproxy's configuration", k, v)
		}
		fmt.Fprintf(&rules, "  http-request set-header %s \"%s\"\n", k, v)
	}
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
%s  default_backend b
backend b
  server s1 %s
`, addr, rules.String(), upstream)
	path := filepath.Join(dir, name)
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

// startFloorProxy builds and runs testdata/floorproxy, a Go proxy that
// does nothing but relay: the floor under any proxy written in Go, fcd's
// included, on this machine.
func startFloorProxy(b *testing.B, dir, upstream string) proxyProcess {
	bin := filepath.Join(dir, "floorproxy")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/floorproxy").CombinedOutput(); err != nil {
		b.Fatalf("build floorproxy: %v\n%s", err, out)
	}
	addr := freeLoopback(b)
	return startProxy(b, addr, exec.Command(bin, "-listen", addr, "-upstream", upstream))
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

// envInt returns env var name as a positive integer, or def when it is
// unset or empty. Any other value is a mistake the run must not hide by
// using def: it panics, which fails the test or benchmark that asked.
func envInt(name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 {
		panic(fmt.Sprintf("%s=%q: want a positive integer", name, s))
	}
	return v
}

// benchVariant is one fcd under test: its name in the table, and the
// environment variables and flags it runs with beyond the bench's own.
type benchVariant struct {
	name string
	bin  string // empty: this tree's fcd
	env  []string
	args []string
}

// benchVariants reads FCD_BENCH_VARIANTS, which runs several fcds side by
// side in one run, each with its own echo instance, to compare settings
// under the same load on the machine: variants separated by ';', each
// "name: token...", a token starting with '-' a flag, "bin=<path>" an fcd
// binary to run instead of this tree's (another commit's build), others
// environment variables. Unset: one fcd named "fcd" with no extras. For
// example
//
//	FCD_BENCH_VARIANTS='before: bin=/tmp/fcd-main; procs2: -gomaxprocs=2; procs1: -gomaxprocs=1'
func benchVariants(b *testing.B) []benchVariant {
	spec := os.Getenv("FCD_BENCH_VARIANTS")
	if strings.TrimSpace(spec) == "" {
		return []benchVariant{{name: "fcd"}}
	}
	var vs []benchVariant
	for _, part := range strings.Split(spec, ";") {
		name, rest, ok := strings.Cut(part, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || slices.ContainsFunc(vs, func(v benchVariant) bool { return v.name == name }) {
			b.Fatalf("FCD_BENCH_VARIANTS: %q is not \"name: token...\" with a new name", part)
		}
		v := benchVariant{name: name}
		for _, tok := range strings.Fields(rest) {
			if path, ok := strings.CutPrefix(tok, "bin="); ok {
				v.bin = path
			} else if strings.HasPrefix(tok, "-") {
				v.args = append(v.args, tok)
			} else {
				v.env = append(v.env, tok)
			}
		}
		vs = append(vs, v)
	}
	return vs
}

// benchFCD is one variant's fcd, serving the echo function with one warm
// instance at echo.
type benchFCD struct {
	process
	name  string
	echo  string // the instance's address
	debug string // its /debug/pprof address, or empty
}

func buildBenchFCD(b *testing.B) string {
	bin := filepath.Join(b.TempDir(), "fcd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("build fcd: %v\n%s", err, out)
	}
	return bin
}

// startBenchFCD runs variant i's fcd (its own name and subnet, so
// variants run side by side) and warms its echo function: an HTTP trigger
// and one instance with 2 vCPUs.
func startBenchFCD(b *testing.B, bin string, i int, v benchVariant, image string, debug bool) *benchFCD {
	name, subnet := "fcdbench", "10.90.0.0/16"
	if i > 0 {
		name, subnet = fmt.Sprintf("fcdbench%d", i), fmt.Sprintf("10.%d.0.0/16", 100+i)
	}
	data := filepath.Join(b.TempDir(), "data")
	args := []string{"-data-dir", data, "-listen", "127.0.0.1:0", "-registry-address", "", "-registry-allow", testRegistries, "-name", name, "-subnet", subnet, "-log-level", "warn"}
	f := &benchFCD{name: v.name}
	if debug {
		f.debug = freeLoopback(b)
		args = append(args, "-debug-address", f.debug)
	}
	if v.bin != "" {
		bin = v.bin
	}
	cmd := exec.Command(bin, append(args, v.args...)...)
	cmd.Env = append(os.Environ(), v.env...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(time.Minute)
	for {
		// fcd writes its credentials, with the address it listens on, just
		// before it serves.
		creds, err := api.LoadCredentials(filepath.Join(data, api.CredentialsFile))
		if err == nil {
			if status, _, err := fasthttp.Get(nil, "http://"+creds.Endpoint+"/metrics"); err == nil && status == 200 {
				f.process = process{daemon: daemon{endpoint: creds.Endpoint, creds: creds}, pid: cmd.Process.Pid}
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("fcd %s did not start within a minute", v.name)
		}
		time.Sleep(50 * time.Millisecond)
	}

	c := sdkClient(b, &f.daemon, f.creds.AccessKeySecret)
	if _, err := c.CreateFunction(&fc.CreateFunctionRequest{Body: &fc.CreateFunctionInput{
		FunctionName:          dara.String("echo"),
		Runtime:               dara.String("custom-container"),
		MemorySize:            dara.Int32(2048),
		Cpu:                   dara.Float32(2),
		InstanceConcurrency:   dara.Int32(200),
		CustomContainerConfig: &fc.CustomContainerConfig{Image: dara.String(image)},
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
	status, body, err := fasthttp.Post(nil, "http://"+f.endpoint+"/fn/echo/", nil)
	if err != nil || status != 200 {
		b.Fatalf("first request: %d %v", status, err)
	}
	var echo struct{ Server string }
	if err := json.Unmarshal(body, &echo); err != nil || echo.Server == "" {
		b.Fatalf("echo did not report its address: %s", body)
	}
	f.echo = echo.Server
	return f
}

// fetchProfile starts taking a CPU profile of the process serving
// /debug/pprof at addr, for a little less than seconds, into path; the
// function it returns waits for it.
func fetchProfile(b *testing.B, addr string, seconds int, path string) func() {
	done := make(chan error, 1)
	go func() {
		status, body, err := fasthttp.GetTimeout(nil, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, max(seconds-1, 1)), time.Duration(seconds+30)*time.Second)
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("status %d: %s", status, body)
		}
		if err == nil {
			err = os.WriteFile(path, body, 0o644)
		}
		done <- err
	}()
	return func() {
		if err := <-done; err != nil {
			b.Fatalf("CPU profile from %s: %v", addr, err)
		}
	}
}
