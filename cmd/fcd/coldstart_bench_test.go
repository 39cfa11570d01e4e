package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/alibabacloud-go/tea/dara"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/crane"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sirupsen/logrus"
	"github.com/valyala/fasthttp"
	bolt "go.etcd.io/bbolt"

	fc "github.com/alibabacloud-go/fc-20230330/v4/client"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/examples/bigimage"
	"github.com/fcd-dev/fcd/examples/images"
	"github.com/fcd-dev/fcd/internal/shapednet"
	"github.com/fcd-dev/fcd/internal/testenv"
	"github.com/fcd-dev/fcd/puller/accel"
	"github.com/fcd-dev/fcd/puller/lazy"
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
	runErr  error         // why the run phase failed, if it did
}

// coldStart creates function name on a fresh fcd and measures its first
// invocation and, when runSeconds > 0, its run phase. An error means the
// function did not answer its first request.
func coldStart(b *testing.B, c *coldLink, d *process, name, image, acceleration string, runSeconds int) (coldResult, error) {
	cl := sdkClient(b, &d.daemon, d.creds.AccessKeySecret)
	// Bytes are counted from before the function exists, so whatever
	// fcd fetches on CreateFunction counts as fetched before the first
	// response.
	sent0 := c.sent.Load()
	in := &fc.CreateFunctionInput{
		FunctionName:          dara.String(name),
		Runtime:               dara.String("custom-container"),
		MemorySize:            dara.Int32(1024),
		Timeout:               dara.Int32(120),
		InstanceConcurrency:   dara.Int32(4),
		CustomContainerConfig: &fc.CustomContainerConfig{Image: dara.String(image), AccelerationType: dara.String(acceleration)},
	}
	if _, err := cl.CreateFunction(&fc.CreateFunctionRequest{Body: in}); err != nil {
		return coldResult{}, err
	}
	if _, err := cl.CreateTrigger(dara.String(name), &fc.CreateTriggerRequest{Body: &fc.CreateTriggerInput{
		TriggerName:   dara.String("http"),
		TriggerType:   dara.String("http"),
		TriggerConfig: dara.String(`{"authType":"anonymous","methods":["GET","POST"]}`),
	}}); err != nil {
		return coldResult{}, err
	}
	client := &fasthttp.Client{ReadTimeout: 5 * time.Minute}
	stopPerf := startPerf(b, name, image)
	t0 := time.Now()
	status, body, err := client.Get(nil, "http://"+d.endpoint+"/fn/"+name+"/")
	r := coldResult{first: time.Since(t0), fetched: c.sent.Load() - sent0}
	stopPerf()
	if err != nil || status != 200 {
		return r, fmt.Errorf("first request to %s: %d %v: %.300s", name, status, err, body)
	}
	if !strings.HasPrefix(name, "prime") {
		printTimeline(b, d, name, body)
	}
	if runSeconds > 0 {
		stopPerf := startPerf(b, name+"-run", image)
		defer stopPerf()
		status, body, err := client.Get(nil, fmt.Sprintf("http://%s/fn/%s/run?seconds=%d", d.endpoint, name, runSeconds))
		var run struct {
			Bytes   int64
			Seconds float64
		}
		switch {
		case err != nil || status != 200:
			r.runErr = fmt.Errorf("run phase of %s: %d %v: %.300s", name, status, err, body)
		case json.Unmarshal(body, &run) != nil || run.Bytes == 0 || run.Seconds == 0:
			r.runErr = fmt.Errorf("run phase of %s read nothing: %.300s", name, body)
		default:
			r.runMBps = float64(run.Bytes) / run.Seconds / 1e6
		}
	}
	return r, nil
}

// printTimeline prints where a measured start's time went: fcd's record
// of its phases (GET /fcd/v1/coldstarts) and the application's own init
// time, which its first response reports (initSeconds).
func printTimeline(b *testing.B, d *process, name string, body []byte) {
	var app struct{ InitSeconds float64 }
	_ = json.Unmarshal(body, &app)
	req, err := http.NewRequest(http.MethodGet, "http://"+d.endpoint+"/fcd/v1/coldstarts/"+name+"?limit=1", nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := api.SignRequest(req, nil, d.creds.AccessKeyID, d.creds.AccessKeySecret); err != nil {
		b.Fatal(err)
	}
	var page api.ColdStartsPage
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
	}
	if err != nil || len(page.ColdStarts) == 0 {
		fmt.Printf("  %s: no cold start record (%v); app init %.2fs\n", name, err, app.InitSeconds)
		return
	}
	cs := page.ColdStarts[len(page.ColdStarts)-1]
	var sb strings.Builder
	for _, p := range cs.Phases {
		fmt.Fprintf(&sb, " %s@%.0f+%.0f", p.Name, p.AtMs, p.Ms)
		if p.Bytes > 0 {
			fmt.Fprintf(&sb, "(%.1fMB)", float64(p.Bytes)/1e6)
		}
	}
	fmt.Printf("  %s: app init %.2fs; phases (ms):%s\n", name, app.InitSeconds, sb.String())
}

// startPerf records, when FCD_BENCH_PERF names a directory, the whole
// machine with perf (CPU samples with call graphs, and every FUSE request
// sent and ended) from now until the returned stop is called, into
// <dir>/<image>-<what>.data: where a cold start's time goes, in fcd, the
// kernel and the instance. Priming starts are not recorded.
func startPerf(b *testing.B, what, image string) (stop func()) {
	dir := os.Getenv("FCD_BENCH_PERF")
	if dir == "" || strings.HasPrefix(what, "prime") {
		return func() {}
	}
	name := strings.NewReplacer("/", "_", ":", "_").Replace(image[strings.LastIndex(image, "/")+1:])
	out := filepath.Join(dir, name+"-"+what+".data")
	cmd := exec.Command("perf", "record", "-q", "-a", "-g", "-F", "499", "-o", out,
		"-e", "cpu-clock", "-e", "fuse:fuse_request_send", "-e", "fuse:fuse_request_end")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatalf("perf: %v", err)
	}
	time.Sleep(500 * time.Millisecond) // perf opens its events
	return sync.OnceFunc(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		fmt.Printf("perf record: %s\n", out)
	})
}

// caseData returns a new, empty data dir for an fcd under dir (a round's
// directory, removed when the round ends), so nothing is cached.
func caseData(b *testing.B, dir string) string {
	b.Helper()
	data, err := os.MkdirTemp(dir, "data-")
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// startProcessIn runs fcd on data dir data with extra flags.
func startProcessIn(b *testing.B, data, name string, args ...string) (*process, func()) {
	b.Helper()
	bin := fcdBinary(b)
	all := append([]string{"-data-dir", data, "-listen", "127.0.0.1:0", "-registry-address", "", "-registry-allow", testRegistries, "-name", name, "-subnet", "10.91.0.0/16", "-log-level", "info"}, args...)
	cmd := exec.Command(bin, all...)
	logDir := data
	if d := os.Getenv("FCD_BENCH_LOG_DIR"); d != "" {
		// Kept after the benchmark, to read what an fcd said.
		logDir = d
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	logf, err := os.CreateTemp(logDir, name+"-*.log")
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
			logf.Close()
		})
	}
	b.Cleanup(stop) // also when the benchmark fails before it stops fcd
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

// fcdBinary builds fcd once per test binary; FCD_BENCH_FCD_BIN names one
// built already.
func fcdBinary(b *testing.B) string {
	if fcdBin.path == "" {
		fcdBin.path = os.Getenv("FCD_BENCH_FCD_BIN")
	}
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

// The cases of BenchmarkColdStart, in the order of its table.
const (
	caseFull        = "full"           // the original image, pulled and unpacked whole
	caseWarm        = "warm"           // the same image again, now local, on the same fcd
	caseLazyFull    = "lazy-full"      // eStargz (<tag>_accelerated, full mode), no record
	caseLazyFullRec = "lazy-full-rec"  // the same with the start-up record present
	caseLazyBaked   = "lazy-baked"     // eStargz converted again with the record baked in, no record
	caseLazyIdx     = "lazy-index"     // the original with an index-only artifact, no record
	caseLazyIdxRec  = "lazy-index-rec" // the same with the start-up record present
	caseWSFull      = "ws-full"        // lazy-full without background fetch: the working set
	caseWSIdx       = "ws-index"       // lazy-index without background fetch: the working set
)

// coldCases are the cases a round runs, each on fresh fcds ("warm" runs
// inside "full"; the working-set cases run in the first round only).
var coldCases = []string{caseFull, caseLazyFull, caseLazyFullRec, caseLazyBaked, caseLazyIdx, caseLazyIdxRec, caseWSFull, caseWSIdx}

// benchImage is one image of BenchmarkColdStart, pushed to three
// repositories of the link's registry: plain (converted in full mode),
// index (converted index-only) and baked (converted in full mode with a
// start-up record, by bake).
type benchImage struct {
	name              string
	plain, idx, baked string // the original image's references in the three repositories
	layers            int64  // compressed layer bytes of the original
	uncompr           int64  // uncompressed layer bytes (tar), when known
	esgz, index       int64  // compressed bytes of the eStargz layers; of the indexes
	bakedFiles        int    // start-up files baked into baked's conversion; 0 until bake
}

func (im *benchImage) ref(cs string) string {
	switch cs {
	case caseFull, caseWarm:
		return im.plain
	case caseLazyFull, caseLazyFullRec, caseWSFull:
		return im.plain + accel.TagSuffix
	case caseLazyBaked:
		return im.baked + accel.TagSuffix
	default:
		return im.idx + accel.TagSuffix
	}
}

// loadBenchImage returns image name: a function image of examples/bigimage
// (python, node) or the synthetic image.
func loadBenchImage(ctx context.Context, name string) (v1.Image, error) {
	if name == "synthetic" {
		opts := images.SyntheticOptions{Size: int64(envInt("FCD_BENCH_SIZE_MB", 1024)) << 20, Seed: 1}
		return images.Synthetic(ctx, opts, benchCacheDir())
	}
	return bigimage.Function(ctx, name, benchCacheDir(), os.Stderr)
}

// prepareBenchImage builds (or reuses) image name, pushes it to the
// link's registry over loopback and converts it in both modes.
func prepareBenchImage(b *testing.B, c *coldLink, conv *accel.Converter, name string) *benchImage {
	ctx := context.Background()
	img, err := loadBenchImage(ctx, name)
	if err != nil {
		b.Fatalf("image %s: %v", name, err)
	}
	im := &benchImage{name: name, plain: c.host + "/bench/" + name + ":v1", idx: c.host + "/bench/" + name + "-index:v1",
		baked: c.host + "/bench/" + name + "-baked:v1"}
	t0 := time.Now()
	if err := images.Push(ctx, c.loopback(im.plain), img, c.auth()); err != nil {
		b.Fatal(err)
	}
	// The other repositories mount the first one's blobs.
	src, err := crane.Pull(c.loopback(im.plain), crane.Insecure, crane.WithAuth(c.auth()))
	if err != nil {
		b.Fatal(err)
	}
	for _, ref := range []string{im.idx, im.baked} {
		if err := crane.Push(src, c.loopback(ref), crane.Insecure, crane.WithAuth(c.auth())); err != nil {
			b.Fatal(err)
		}
	}
	fmt.Printf("%s: pushed in %s\n", name, time.Since(t0).Round(time.Millisecond))
	for _, s := range []struct {
		ref  string
		mode accel.Mode
	}{{im.plain, accel.ModeFull}, {im.idx, accel.ModeIndexOnly}} {
		t0 := time.Now()
		res, err := conv.Convert(ctx, accel.Request{Ref: c.loopback(s.ref), Mode: s.mode})
		if err != nil {
			b.Fatalf("convert %s %s: %v", name, s.mode, err)
		}
		im.layers = res.SourceSize
		if res.UncompressedSize > 0 {
			im.uncompr = res.UncompressedSize
		}
		if s.mode == accel.ModeFull {
			im.esgz = res.TargetSize
		} else {
			im.index = res.TargetSize
		}
		fmt.Printf("%s: converted %s in %s: %d of %d compressed bytes\n", name, s.mode, time.Since(t0).Round(time.Millisecond), res.TargetSize, res.SourceSize)
	}
	return im
}

// coldSeries holds one case's figures over the rounds.
type coldSeries struct {
	first    []time.Duration
	fetched  []int64
	run      []float64
	failures int
}

// add adds one start, or its failure, which is printed.
func (s *coldSeries) add(what string, r coldResult, err error) {
	if err != nil {
		s.failures++
		fmt.Printf("%s FAILED: %v\n", what, err)
		return
	}
	s.first = append(s.first, r.first)
	s.fetched = append(s.fetched, r.fetched)
	if r.runErr != nil {
		fmt.Printf("%s: %v\n", what, r.runErr)
	}
	if r.runMBps > 0 {
		s.run = append(s.run, r.runMBps)
	}
}

// runColdCase runs one case of image im on fresh fcds and adds its
// figures to got.
// runColdCase runs case cs of im, with the fcds' data dirs under dir.
func runColdCase(b *testing.B, c *coldLink, dir string, args []string, im *benchImage, cs string, runSecs int, got map[string]*coldSeries) {
	series := func(name string) *coldSeries {
		if got[name] == nil {
			got[name] = &coldSeries{}
		}
		return got[name]
	}
	ref := im.ref(cs)
	what := im.name + " " + cs
	t0 := time.Now()
	switch cs {
	case caseFull:
		d, stop := startProcessIn(b, caseData(b, dir), "fcdcold", args...)
		r, err := coldStart(b, c, d, "cold", ref, "None", runSecs)
		series(caseFull).add(what, r, err)
		if err == nil {
			r, err := coldStart(b, c, d, "warm", ref, "None", 0)
			series(caseWarm).add(im.name+" "+caseWarm, r, err)
		}
		stop()
	case caseLazyFull, caseLazyIdx:
		d, stop := startProcessIn(b, caseData(b, dir), "fcdcold", args...)
		r, err := coldStart(b, c, d, "cold", ref, "None", runSecs)
		series(cs).add(what, r, err)
		stop()
	case caseWSFull, caseWSIdx:
		d, stop := startProcessIn(b, caseData(b, dir), "fcdcold", append(args, "-lazy-background=false")...)
		r, err := coldStart(b, c, d, "cold", ref, "None", 0)
		series(cs).add(what, r, err)
		stop()
	case caseLazyBaked:
		// A host without the record starts the image converted again
		// with it, as the acceleration service does once a start has
		// recorded (accel.Service.Rebake): the mount prefetches what lies
		// before the prefetch landmark, the start-up files in the order
		// first read.
		if err := im.bake(b, c, caseData(b, dir), args); err != nil {
			series(cs).add(what+" (baking)", coldResult{}, err)
			break
		}
		d, stop := startProcessIn(b, caseData(b, dir), "fcdcold", args...)
		r, err := coldStart(b, c, d, "cold", ref, "None", runSecs)
		series(cs).add(what, r, err)
		stop()
	case caseLazyFullRec, caseLazyIdxRec:
		// Prime: one cold start records what the image reads. Then the
		// host keeps only its metadata (fcd.db, where records live) and
		// loses every cached byte, and starts the image again.
		data := caseData(b, dir)
		d, stop := startProcessIn(b, data, "fcdcold", args...)
		_, err := coldStart(b, c, d, "prime", ref, "None", 0)
		stop()
		if err != nil {
			series(cs).add(what+" (priming)", coldResult{}, err)
			break
		}
		keepOnlyDB(b, data)
		d, stop = startProcessIn(b, data, "fcdcold", args...)
		r, err := coldStart(b, c, d, "cold", ref, "None", runSecs)
		series(cs).add(what, r, err)
		stop()
	}
	fmt.Printf("%s %s: %s\n", im.name, cs, time.Since(t0).Round(time.Millisecond))
}

// bake makes im.baked's accelerated image, once: a priming start of the
// plain eStargz image on a fresh fcd in data records what the image reads
// (the baked repository holds the same source image, so the record
// applies to it), then the image is converted again with that record,
// which puts the files read at start-up first, before the prefetch
// landmark.
func (im *benchImage) bake(b *testing.B, c *coldLink, data string, args []string) error {
	if im.bakedFiles > 0 {
		return nil
	}
	d, stop := startProcessIn(b, data, "fcdcold", args...)
	_, err := coldStart(b, c, d, "prime", im.plain+accel.TagSuffix, "None", 0)
	stop()
	if err != nil {
		return err
	}
	db, err := bolt.Open(filepath.Join(data, "fcd.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	records, err := lazy.OpenRecords(db)
	if err != nil {
		return err
	}
	conv := accel.NewConverter(accel.Options{
		Credentials: func(string) (string, string, error) { return c.user, c.pass, nil },
		TempDir:     b.TempDir(),
		Records:     records,
	})
	t0 := time.Now()
	res, err := conv.Convert(context.Background(), accel.Request{Ref: c.loopback(im.baked), Mode: accel.ModeFull})
	if err != nil {
		return err
	}
	if res.StartupFiles == 0 {
		return fmt.Errorf("bake %s: the priming start left no start-up record", im.name)
	}
	im.bakedFiles = res.StartupFiles
	fmt.Printf("%s: converted full with %d start-up files in %s: %d compressed bytes\n",
		im.name, res.StartupFiles, time.Since(t0).Round(time.Millisecond), res.TargetSize)
	return nil
}

// roundPause separates BenchmarkColdStart's rounds, after one's data is
// removed (see keepOnlyDB).
const roundPause = 65 * time.Second

// keepOnlyDB removes everything in fcd's data dir but fcd.db.
func keepOnlyDB(b *testing.B, data string) {
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], data+"/") {
			b.Fatalf("fcd left %s mounted after it stopped", f[4])
		}
	}
	entries, err := os.ReadDir(data)
	if err != nil {
		b.Fatal(err)
	}
	// The rest is moved aside and removed after the benchmark, not now:
	// on ext4 without a journal (this VM's root) the allocator skips
	// inodes freed in the last minute one by one, so deleting the priming
	// start's tens of thousands of files right before the measured start
	// would make every file it creates pay for them. A host that lost
	// its caches did not just delete them.
	trash, err := os.MkdirTemp(filepath.Dir(data), "lost-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(trash) })
	for _, e := range entries {
		if e.Name() == "fcd.db" {
			continue
		}
		if err := os.Rename(filepath.Join(data, e.Name()), filepath.Join(trash, e.Name())); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkColdStart measures what a user waits for on a cold start of a
// large image over a slow link, side by side in one run, for each image
// of FCD_BENCH_IMAGES (default "python,node": the function images of
// examples/bigimage, 2.5 and 2.1 GB, whose servers import a scientific
// Python stack or require a few dozen npm packages before they listen;
// "synthetic" is examples/images.Synthetic). The images are served by the
// embedded registry from inside a network namespace behind a tc tbf link
// of FCD_BENCH_MBIT (default 300) Mbit/s; each case starts fresh fcds
// (nothing cached) and creates a function of the image:
//
//	full            the original image, pulled and unpacked whole
//	warm            then again on the same fcd, the image local
//	lazy-full       its eStargz form (<tag>_accelerated, full mode), mounted lazily
//	lazy-full-rec   the same after a priming start on a host that then kept
//	                only fcd.db (where start-up records live) and lost its caches
//	lazy-baked      lazy-full's image converted again with the record of a
//	                priming start (files read at start-up first, before
//	                the prefetch landmark), on a host without the record
//	lazy-index      the original with an index-only artifact, mounted lazily
//	lazy-index-rec  as lazy-full-rec
//	ws-full         lazy-full without background fetch (first round only):
//	ws-index        the bytes it fetches are the start-up working set
//
// For each it reports, as medians over FCD_BENCH_ROUNDS (default 3): the
// time from the first request to the first response; the compressed
// bytes the registry sent from CreateFunction to the first response; each
// lazy figure as a multiple of the lower bound, which is the working set
// at the link's rate plus the warm start (create, start and the
// application's init on local disk); and, in the first
// FCD_BENCH_RUN_ROUNDS rounds (default 1), the read throughput of the
// first FCD_BENCH_RUN_SECONDS (default 30) after start, the function
// reading the image's files in a fixed random order. FCD_BENCH_CASES
// (comma-separated) runs only some cases.
//
//	sudo flock -o /tmp/fcd-integration.lock go test ./cmd/fcd -run '^$' -bench ColdStart -benchtime 1x -timeout 60m
//
// The images are built once and kept under FCD_BENCH_CACHE (default
// /var/cache/fcd-bench).
func BenchmarkColdStart(b *testing.B) {
	requireRuntime(b)
	testenv.RequireFile(b, "/dev/fuse", "fuse3")
	// distribution logs every request through logrus at info.
	logrus.SetLevel(logrus.FatalLevel)
	rounds, runSecs, runRounds := envInt("FCD_BENCH_ROUNDS", 3), envInt("FCD_BENCH_RUN_SECONDS", 30), envCount(b, "FCD_BENCH_RUN_ROUNDS", 1)
	mbit := envInt("FCD_BENCH_MBIT", 300)
	names := envList("FCD_BENCH_IMAGES", bigimage.Python+","+bigimage.Node)
	cases := envList("FCD_BENCH_CASES", strings.Join(coldCases, ","))
	c := startColdLink(b, mbit)
	conv := accel.NewConverter(accel.Options{
		Credentials: func(string) (string, string, error) { return c.user, c.pass, nil },
		TempDir:     b.TempDir(),
	})
	var ims []*benchImage
	for _, name := range names {
		ims = append(ims, prepareBenchImage(b, c, conv, name))
	}
	got := map[string]map[string]*coldSeries{}
	for _, im := range ims {
		got[im.name] = map[string]*coldSeries{}
	}
	args := c.fcdArgs(b)
	start := time.Now()
	for range b.N {
		for r := range rounds {
			// A round's data dirs (an unpacked image, caches) go when it
			// ends: three rounds of both images kept to the end filled
			// this VM's disk.
			dir := b.TempDir()
			for _, im := range ims {
				for i := range cases {
					cs := cases[(i+r)%len(cases)]
					if r > 0 && (cs == caseWSFull || cs == caseWSIdx) {
						continue
					}
					secs := 0
					if r < runRounds {
						secs = runSecs
					}
					runColdCase(b, c, dir, args, im, cs, secs, got[im.name])
				}
			}
			if err := os.RemoveAll(dir); err != nil {
				b.Fatal(err)
			}
			if r < rounds-1 {
				// See keepOnlyDB: files created within a minute of
				// deleting so many would be slower to create.
				fmt.Printf("round %d done, its data removed; waiting %s before the next\n", r+1, roundPause)
				time.Sleep(roundPause)
			}
		}
	}
	fmt.Printf("\ncases took %s\n", time.Since(start).Round(time.Second))
	for _, im := range ims {
		fmt.Print(coldReport(b, im, got[im.name], mbit))
	}
}

// coldReport formats one image's table and goals and reports its metrics.
func coldReport(b *testing.B, im *benchImage, got map[string]*coldSeries, mbit int) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n%s: %.2f GB uncompressed, %.1f MB gzip layers, %.1f MB eStargz, %.1f MB indexes; link %d Mbit/s\n",
		im.name, float64(im.uncompr)/1e9, float64(im.layers)/1e6, float64(im.esgz)/1e6, float64(im.index)/1e6, mbit)
	med := func(cs string) (time.Duration, int64, bool) {
		s := got[cs]
		if s == nil || len(s.first) == 0 {
			return 0, 0, false
		}
		return medianDur(s.first), medianOf(s.fetched), true
	}
	warm, _, haveWarm := med(caseWarm)
	full, _, haveFull := med(caseFull)
	// bound is the lower bound of a lazy mode: its working set at the
	// link's rate plus the warm start.
	bound := func(ws string) (time.Duration, int64, bool) {
		_, bytes, ok := med(ws)
		if !ok || !haveWarm {
			return 0, bytes, false
		}
		return warm + time.Duration(float64(bytes)*8/(float64(mbit)*1e6)*float64(time.Second)), bytes, true
	}
	wsOf := map[string]string{caseLazyFull: caseWSFull, caseLazyFullRec: caseWSFull, caseLazyBaked: caseWSFull, caseLazyIdx: caseWSIdx, caseLazyIdxRec: caseWSIdx}
	fmt.Fprintf(&sb, "%-15s %11s %11s %8s %9s %8s %9s %9s %5s\n", "case", "first-resp", "fetched-MB", "ws-MB", "x-ws", "bound", "x-bound", "run-MB/s", "n/fail")
	for _, cs := range []string{caseFull, caseWarm, caseLazyFull, caseLazyFullRec, caseLazyBaked, caseLazyIdx, caseLazyIdxRec, caseWSFull, caseWSIdx} {
		first, fetched, ok := med(cs)
		if !ok {
			if s := got[cs]; s != nil && s.failures > 0 {
				fmt.Fprintf(&sb, "%-15s %11s %71s\n", cs, "FAILED", fmt.Sprintf("0/%d", s.failures))
			}
			continue
		}
		row := []string{cs, first.Round(time.Millisecond).String(), fmt.Sprintf("%.1f", float64(fetched)/1e6), "-", "-", "-", "-", "-", fmt.Sprintf("%d/%d", len(got[cs].first), got[cs].failures)}
		if ws, ok := wsOf[cs]; ok {
			if bd, wsBytes, ok := bound(ws); ok {
				row[3] = fmt.Sprintf("%.1f", float64(wsBytes)/1e6)
				row[4] = fmt.Sprintf("%.2f", float64(fetched)/float64(wsBytes))
				row[5] = bd.Round(time.Millisecond).String()
				row[6] = fmt.Sprintf("%.2f", first.Seconds()/bd.Seconds())
				b.ReportMetric(first.Seconds()/bd.Seconds(), im.name+"-"+cs+"-x-bound")
			}
		}
		if run := got[cs].run; len(run) > 0 {
			row[7] = fmt.Sprintf("%.0f", medianOf(run))
		}
		b.ReportMetric(first.Seconds(), im.name+"-"+cs+"-first-s")
		fmt.Fprintf(&sb, "%-15s %11s %11s %8s %9s %8s %9s %9s %5s\n", row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8])
	}
	for _, cs := range []string{caseLazyFullRec, caseLazyBaked, caseLazyIdxRec} {
		first, _, ok := med(cs)
		if !ok {
			continue
		}
		var parts []string
		if haveFull {
			parts = append(parts, fmt.Sprintf("%.1fx faster than full pull", full.Seconds()/first.Seconds()))
		}
		if haveWarm {
			parts = append(parts, fmt.Sprintf("%.2fx the warm start", first.Seconds()/warm.Seconds()))
		}
		fmt.Fprintf(&sb, "%s: %s\n", cs, strings.Join(parts, ", "))
	}
	return sb.String()
}

// envCount returns env var name as a count, zero included (envInt wants
// a positive integer), else def when it is unset; another value fails b.
func envCount(b *testing.B, name string, def int) int {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		b.Fatalf("%s=%q: want a count (0 or more)", name, v)
	}
	return n
}

// envList returns the comma-separated list in env var name, else def's.
func envList(name, def string) []string {
	v := os.Getenv(name)
	if v == "" {
		v = def
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
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
