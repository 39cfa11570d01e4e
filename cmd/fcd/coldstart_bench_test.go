package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/alibabacloud-go/tea/dara"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/valyala/fasthttp"

	fc "github.com/alibabacloud-go/fc-20230330/v4/client"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/examples/images"
	"github.com/fcd-dev/fcd/internal/shapednet"
	"github.com/fcd-dev/fcd/internal/testenv"
	"github.com/fcd-dev/fcd/puller/accel"
	"github.com/fcd-dev/fcd/registry"
)

// coldLink is a registry behind a shaped link: the embedded registry
// (distribution, token auth) serving from inside a network namespace whose
// egress is limited by tc tbf, with the bytes it sends counted.
type coldLink struct {
	link *shapednet.Link
	reg  *registry.Registry
	sent atomic.Int64
	host string // host:port of the registry inside the namespace, as functions name it
	loop string // host:port of the same registry on loopback, unshaped, for setup
	user string
	pass string
}

// startColdLink sets up the namespace, the link at mbit and the registry.
func startColdLink(b *testing.B, mbit int) *coldLink {
	testenv.RequireRoot(b)
	testenv.RequireCommand(b, "tc", "iproute2")
	link, err := shapednet.New(shapednet.Options{Name: "fcdcold", RateMbit: mbit})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { link.Close() })
	ln, err := link.Listen(5000)
	if err != nil {
		b.Fatal(err)
	}
	loop, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	c := &coldLink{link: link, user: "benchadmin", pass: "benchsecret", loop: loop.Addr().String()}
	reg, err := registry.Start(context.Background(), registry.Options{
		Dir:                  b.TempDir(),
		Listener:             newMultiListener(&countingListener{Listener: ln, sent: &c.sent}, loop),
		AdminAccessKeyID:     c.user,
		AdminAccessKeySecret: c.pass,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { reg.Close(context.Background()) })
	c.reg, c.host = reg, ln.Addr().String()
	return c
}

// loopback rewrites a reference to the namespace's registry to the same
// registry's unshaped loopback address.
func (c *coldLink) loopback(ref string) string {
	return strings.Replace(ref, c.host, c.loop, 1)
}

func (c *coldLink) auth() authn.Authenticator {
	return &authn.Basic{Username: c.user, Password: c.pass}
}

// fcdArgs are the flags that let an fcd pull from this registry: plain
// HTTP through a hosts directory, and the admin login.
func (c *coldLink) fcdArgs(b *testing.B) []string {
	dir := b.TempDir()
	hostDir := filepath.Join(dir, "certs.d", c.host)
	if err := os.MkdirAll(hostDir, 0o755); err != nil {
		b.Fatal(err)
	}
	toml := fmt.Sprintf("server = \"http://%s\"\n\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", c.host, c.host)
	if err := os.WriteFile(filepath.Join(hostDir, "hosts.toml"), []byte(toml), 0o644); err != nil {
		b.Fatal(err)
	}
	logins, _ := json.Marshal(map[string]registryLogin{c.host: {Username: c.user, Password: c.pass}})
	creds := filepath.Join(dir, "logins.json")
	if err := os.WriteFile(creds, logins, 0o600); err != nil {
		b.Fatal(err)
	}
	return []string{"-registry-hosts-dir", filepath.Join(dir, "certs.d"), "-registry-credentials", creds}
}

// countingListener counts the bytes its connections write.
type countingListener struct {
	net.Listener
	sent *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, sent: l.sent}, nil
}

type countingConn struct {
	net.Conn
	sent *atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.sent.Add(int64(n))
	return n, err
}

// coldResult is one cold start as a user sees it.
type coldResult struct {
	first   time.Duration // first request sent → first response received
	fetched int64         // bytes the registry sent meanwhile
	runMBps float64       // run-phase read throughput after start
}

// coldStart creates function name on a fresh fcd and measures its first
// invocation and, when runSeconds > 0, its run phase.
func coldStart(b *testing.B, c *coldLink, d *process, name, image, acceleration string, runSeconds int) coldResult {
	cl := sdkClient(b, &d.daemon, d.creds.AccessKeySecret)
	in := &fc.CreateFunctionInput{
		FunctionName:          dara.String(name),
		Runtime:               dara.String("custom-container"),
		MemorySize:            dara.Int32(1024),
		Timeout:               dara.Int32(120),
		InstanceConcurrency:   dara.Int32(4),
		CustomContainerConfig: &fc.CustomContainerConfig{Image: dara.String(image), AccelerationType: dara.String(acceleration)},
	}
	if _, err := cl.CreateFunction(&fc.CreateFunctionRequest{Body: in}); err != nil {
		b.Fatal(err)
	}
	if _, err := cl.CreateTrigger(dara.String(name), &fc.CreateTriggerRequest{Body: &fc.CreateTriggerInput{
		TriggerName:   dara.String("http"),
		TriggerType:   dara.String("http"),
		TriggerConfig: dara.String(`{"authType":"anonymous","methods":["GET","POST"]}`),
	}}); err != nil {
		b.Fatal(err)
	}
	client := &fasthttp.Client{ReadTimeout: 5 * time.Minute}
	sent0 := c.sent.Load()
	t0 := time.Now()
	status, body, err := client.Get(nil, "http://"+d.endpoint+"/fn/"+name+"/")
	r := coldResult{first: time.Since(t0), fetched: c.sent.Load() - sent0}
	if err != nil || status != 200 {
		b.Fatalf("first request to %s: %d %v: %s", name, status, err, body)
	}
	if runSeconds > 0 {
		status, body, err := client.Get(nil, fmt.Sprintf("http://%s/fn/%s/run?seconds=%d", d.endpoint, name, runSeconds))
		if err != nil || status != 200 {
			b.Fatalf("run phase of %s: %d %v: %s", name, status, err, body)
		}
		var run struct {
			Bytes   int64
			Seconds float64
		}
		if err := json.Unmarshal(body, &run); err != nil {
			b.Fatal(err)
		}
		r.runMBps = float64(run.Bytes) / run.Seconds / 1e6
	}
	return r
}

// startProcessWith runs a fresh fcd (its own data dir, so nothing is
// cached) with extra flags.
func startProcessWith(b *testing.B, name string, args ...string) (*process, func()) {
	b.Helper()
	bin := fcdBinary(b)
	data := b.TempDir()
	all := append([]string{"-data-dir", data, "-listen", "127.0.0.1:0", "-name", name, "-subnet", "10.91.0.0/16", "-log-level", "info"}, args...)
	cmd := exec.Command(bin, all...)
	logf, err := os.Create(filepath.Join(data, "fcd.log"))
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		logf.Close()
	}
	deadline := time.Now().Add(time.Minute)
	for {
		creds, err := api.LoadCredentials(filepath.Join(data, api.CredentialsFile))
		if err == nil {
			if status, _, err := fasthttp.Get(nil, "http://"+creds.Endpoint+"/metrics"); err == nil && status == 200 {
				return &process{daemon: daemon{endpoint: creds.Endpoint, creds: creds}, pid: cmd.Process.Pid}, stop
			}
		}
		if time.Now().After(deadline) {
			stop()
			log, _ := os.ReadFile(logf.Name())
			b.Fatalf("fcd did not start within a minute:\n%s", log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var fcdBin struct {
	path string
}

// fcdBinary builds fcd once per test binary.
func fcdBinary(b *testing.B) string {
	if fcdBin.path != "" {
		return fcdBin.path
	}
	dir, err := os.MkdirTemp("", "fcd-bench-bin-")
	if err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(dir, "fcd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("build fcd: %v\n%s", err, out)
	}
	fcdBin.path = bin
	return bin
}

func medianDur(v []time.Duration) time.Duration {
	s := append([]time.Duration(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func medianOf[T int64 | float64](v []T) T {
	s := append([]T(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// benchCacheDir keeps generated images between runs; never committed.
func benchCacheDir() string {
	if d := os.Getenv("FCD_BENCH_CACHE"); d != "" {
		return d
	}
	return "/var/cache/fcd-bench"
}

// pushSynthetic builds (or reuses) the synthetic image and pushes it as
// repo:v1 to the link's registry, through its unshaped loopback address.
func pushSynthetic(b *testing.B, c *coldLink, opts images.SyntheticOptions, repos ...string) []string {
	ctx := context.Background()
	img, err := images.Synthetic(ctx, opts, benchCacheDir())
	if err != nil {
		b.Fatal(err)
	}
	var refs []string
	for _, repo := range repos {
		ref := c.host + "/" + repo + ":v1"
		if err := images.Push(ctx, c.loopback(ref), img, c.auth()); err != nil {
			b.Fatal(err)
		}
		refs = append(refs, ref)
	}
	return refs
}

func coldTable(rows [][]string) string {
	var sb strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&sb, "%-26s %12s %14s %12s %14s\n", r[0], r[1], r[2], r[3], r[4])
	}
	return sb.String()
}

// BenchmarkColdStart measures what a user waits for on a cold start of a
// large image over a slow link, side by side in one run: the synthetic
// 1 GiB image (examples/images.Synthetic: its function reads 3% of it
// before it listens), served by the embedded registry from inside a
// network namespace behind a 300 Mbit/s tc tbf link, started by a fresh
// fcd (nothing cached) as
//
//	full        the original image, pulled and unpacked whole
//	lazy-full   its eStargz form (<tag>_accelerated, full mode), mounted lazily
//	lazy-index  the original with an index-only artifact, mounted lazily
//
// and then again on the same fcd with the image local ("warm image").
// For each it reports, as medians over FCD_BENCH_ROUNDS (default 3): time
// from the first request to the first response, the bytes the registry
// sent meanwhile, and the read throughput of the function's run phase
// (FCD_BENCH_RUN_SECONDS, default 10, of random reads over the image).
//
//	sudo go test ./cmd/fcd -run '^$' -bench ColdStart -benchtime 1x -timeout 30m
//
// FCD_BENCH_MBIT (default 300) sets the link; FCD_BENCH_SIZE_MB (default
// 1024) the image's data size. The image is built once and kept under
// FCD_BENCH_CACHE (default /var/cache/fcd-bench).
func BenchmarkColdStart(b *testing.B) {
	requireRuntime(b)
	testenv.RequireFile(b, "/dev/fuse", "fuse3")
	rounds, runSecs := envInt("FCD_BENCH_ROUNDS", 3), envInt("FCD_BENCH_RUN_SECONDS", 10)
	c := startColdLink(b, envInt("FCD_BENCH_MBIT", 300))
	opts := images.SyntheticOptions{Size: int64(envInt("FCD_BENCH_SIZE_MB", 1024)) << 20, Seed: 1}
	refs := pushSynthetic(b, c, opts, "bench/full", "bench/index")
	conv := accel.NewConverter(accel.Options{
		Credentials: func(string) (string, string, error) { return c.user, c.pass, nil },
		TempDir:     b.TempDir(),
	})
	ctx := context.Background()
	for i, mode := range []accel.Mode{accel.ModeFull, accel.ModeIndexOnly} {
		t0 := time.Now()
		res, err := conv.Convert(ctx, accel.Request{Ref: c.loopback(refs[i]), Mode: mode})
		if err != nil {
			b.Fatalf("convert %s: %v", mode, err)
		}
		fmt.Printf("converted %s in %s: %d of %d compressed bytes\n", mode, time.Since(t0).Round(time.Millisecond), res.TargetSize, res.SourceSize)
	}
	cases := []struct{ name, image, accel string }{
		{"full", refs[0], "None"},
		{"lazy-full", refs[0] + accel.TagSuffix, "None"},
		{"lazy-index", refs[1] + accel.TagSuffix, "None"},
	}
	type series struct {
		first, warm []time.Duration
		fetched     []int64
		run         []float64
	}
	got := map[string]*series{}
	args := c.fcdArgs(b)
	for range b.N {
		for r := range rounds {
			for i := range cases {
				cs := cases[(i+r)%len(cases)]
				d, stop := startProcessWith(b, "fcdcold", args...)
				cold := coldStart(b, c, d, "cold", cs.image, cs.accel, runSecs)
				warm := coldStart(b, c, d, "warm", cs.image, cs.accel, 0)
				stop()
				s := got[cs.name]
				if s == nil {
					s = &series{}
					got[cs.name] = s
				}
				s.first = append(s.first, cold.first)
				s.warm = append(s.warm, warm.first)
				s.fetched = append(s.fetched, cold.fetched)
				s.run = append(s.run, cold.runMBps)
			}
		}
	}
	rows := [][]string{{"image", "first-resp", "fetched-MB", "run-MB/s", "warm-image"}}
	full := medianDur(got["full"].first)
	for _, cs := range cases {
		s := got[cs.name]
		first := medianDur(s.first)
		rows = append(rows, []string{cs.name, first.Round(time.Millisecond).String(),
			fmt.Sprintf("%.1f", float64(medianOf(s.fetched))/1e6), fmt.Sprintf("%.0f", medianOf(s.run)),
			medianDur(s.warm).Round(time.Millisecond).String()})
		b.ReportMetric(first.Seconds(), cs.name+"-first-s")
		b.ReportMetric(float64(medianOf(s.fetched))/1e6, cs.name+"-fetched-MB")
		b.ReportMetric(medianOf(s.run), cs.name+"-run-MB/s")
		if cs.name != "full" {
			b.ReportMetric(full.Seconds()/first.Seconds(), cs.name+"-speedup")
		}
	}
	fmt.Print("\n" + coldTable(rows))
}

// multiListener accepts from several listeners; Addr is the first one's.
type multiListener struct {
	lns   []net.Listener
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newMultiListener(lns ...net.Listener) *multiListener {
	m := &multiListener{lns: lns, conns: make(chan net.Conn), done: make(chan struct{})}
	for _, ln := range lns {
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				select {
				case m.conns <- c:
				case <-m.done:
					c.Close()
					return
				}
			}
		}()
	}
	return m
}

func (m *multiListener) Accept() (net.Conn, error) {
	select {
	case c := <-m.conns:
		return c, nil
	case <-m.done:
		return nil, net.ErrClosed
	}
}

func (m *multiListener) Close() error {
	m.once.Do(func() {
		close(m.done)
		for _, ln := range m.lns {
			ln.Close()
		}
	})
	return nil
}

func (m *multiListener) Addr() net.Addr { return m.lns[0].Addr() }
