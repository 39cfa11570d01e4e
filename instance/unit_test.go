package instance

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestProcessArgs(t *testing.T) {
	img := ocispec.ImageConfig{Entrypoint: []string{"/ep"}, Cmd: []string{"a", "b"}}
	tests := []struct {
		name string
		spec Spec
		want []string
	}{
		{"image's own", Spec{}, []string{"/ep", "a", "b"}},
		{"entrypoint replaced", Spec{Entrypoint: []string{"/other"}}, []string{"/other", "a", "b"}},
		{"command replaced", Spec{Command: []string{"c"}}, []string{"/ep", "c"}},
		{"both replaced", Spec{Entrypoint: []string{"/x"}, Command: []string{"y"}}, []string{"/x", "y"}},
		{"command emptied", Spec{Command: []string{}}, []string{"/ep"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := processArgs(tt.spec, img); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEnvironment(t *testing.T) {
	s := Spec{ID: "i1", Function: "f", MemoryMB: 256, Port: 8080, Region: "r", AccountID: "a",
		Timeout: 3 * time.Second, Env: map[string]string{"B": "2", "A": "1"}}
	got := environment(s, ocispec.ImageConfig{Env: []string{"PATH=/bin"}})
	want := []string{"PATH=/bin", "A=1", "B=2", "FC_FUNCTION_NAME=f", "FC_FUNCTION_MEMORY_SIZE=256",
		"FC_FUNCTION_HANDLER=", "FC_FUNCTION_TIMEOUT=3", "FC_CUSTOM_LISTEN_PORT=8080", "FC_SERVER_PORT=8080",
		"FC_INSTANCE_ID=i1", "FC_REGION=r", "FC_ACCOUNT_ID=a", "FC_QUALIFIER="}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestEnvironmentRoleKeys(t *testing.T) {
	s := Spec{ID: "i1", Function: "f", RoleKeys: Keys{AccessKeyID: "STS.id", AccessKeySecret: "sec", SecurityToken: "tok"}}
	got := environment(s, ocispec.ImageConfig{Env: []string{"ALIBABA_CLOUD_ACCESS_KEY_ID=image"}})
	want := []string{"ALIBABA_CLOUD_ACCESS_KEY_ID=STS.id", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=sec", "ALIBABA_CLOUD_SECURITY_TOKEN=tok"}
	// The runtime's come last, so they win over the image's.
	if tail := got[len(got)-len(want):]; !reflect.DeepEqual(tail, want) {
		t.Errorf("got %q, want it to end with %q", got, want)
	}
	if got := environment(Spec{ID: "i1"}, ocispec.ImageConfig{}); slices.ContainsFunc(got, func(v string) bool { return strings.HasPrefix(v, "ALIBABA_CLOUD_") }) {
		t.Errorf("without a role: got %q, want no ALIBABA_CLOUD_* variable", got)
	}
}

func TestSubnetOverlap(t *testing.T) {
	table := `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth0	00000000	010200C0	0003	0	0	0	00000000	0	0	0
eth0	000200C0	00000000	0001	0	0	0	00FFFFFF	0	0	0
fcd0	0000560A	00000000	0001	0	0	0	0000FFFF	0	0	0
`
	routes, err := parseRoutes(bufio.NewScanner(strings.NewReader(table)))
	if err != nil {
		t.Fatal(err)
	}
	want := []route{
		{"eth0", netip.MustParsePrefix("0.0.0.0/0")},
		{"eth0", netip.MustParsePrefix("192.0.2.0/24")},
		{"fcd0", netip.MustParsePrefix("10.86.0.0/16")},
	}
	if !reflect.DeepEqual(routes, want) {
		t.Fatalf("parseRoutes: got %v, want %v", routes, want)
	}
	if err := checkSubnetRoutes(netip.MustParsePrefix("192.0.2.128/25"), "fcd0", routes); !errors.Is(err, ErrSubnetOverlap) {
		t.Errorf("overlapping subnet: got %v, want ErrSubnetOverlap", err)
	}
	if err := checkSubnetRoutes(netip.MustParsePrefix("10.86.0.0/16"), "fcd0", routes); err != nil {
		t.Errorf("own bridge's subnet: got %v, want nil", err)
	}
	if err := checkSubnetRoutes(netip.MustParsePrefix("10.86.0.0/16"), "other0", routes); !errors.Is(err, ErrSubnetOverlap) {
		t.Errorf("another fcd's subnet: got %v, want ErrSubnetOverlap", err)
	}
}

func TestLogsRotateAndRead(t *testing.T) {
	dir := t.TempDir()
	files := &logFiles{dataDir: dir, maxSize: 200, maxFiles: 2, files: map[string]*logFile{}}
	lf, err := files.acquire("fn")
	if err != nil {
		t.Fatal(err)
	}
	il := newInstanceLog(lf, "inst")
	w := il.stream(StreamStdout)
	for i := range 20 {
		fmt.Fprintf(w, "line %02d\n", i)
	}
	fmt.Fprint(w, "partial")
	w.Flush()
	files.release("fn")

	all, err := ReadLogs(dir, "fn", 0)
	if err != nil {
		t.Fatal(err)
	}
	// 200-byte files of ~45-byte lines, current + 2 rotated: older lines
	// are gone, the newest are all there, in order.
	if len(all) == 0 || len(all) >= 21 {
		t.Fatalf("ReadLogs: got %d lines, want some lines dropped by rotation", len(all))
	}
	if !strings.HasSuffix(all[len(all)-1], " inst stdout partial") {
		t.Errorf("last line: got %q, want the flushed partial line", all[len(all)-1])
	}
	tail, err := ReadLogs(dir, "fn", 3)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range tail {
		got = append(got, strings.SplitN(l, " ", 4)[3])
	}
	if want := []string{"line 18", "line 19", "partial"}; !reflect.DeepEqual(got, want) {
		t.Errorf("tail 3: got %q, want %q", got, want)
	}
	if _, err := ReadLogs(dir, "../etc", 1); err == nil {
		t.Error("ReadLogs of ../etc: got nil error, want an invalid name")
	}
	if l, err := ReadLogs(dir, "never-ran", 5); err != nil || len(l) != 0 {
		t.Errorf("ReadLogs of a function without logs: got %q, %v; want nothing", l, err)
	}
}

// testLogFile returns the log files of a temporary data directory dir, and
// function "fn"'s, released when the test ends.
func testLogFile(t *testing.T) (dir string, files *logFiles, lf *logFile) {
	t.Helper()
	dir = t.TempDir()
	files = &logFiles{dataDir: dir, maxSize: 1 << 20, maxFiles: 1, files: map[string]*logFile{}}
	lf, err := files.acquire("fn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { files.release("fn") })
	return dir, files, lf
}

func TestRequestLogs(t *testing.T) {
	dir, _, lf := testLogFile(t)
	a, b := newInstanceLog(lf, "a"), newInstanceLog(lf, "b")
	a.line(StreamStdout, []byte("before"))
	r1 := a.requestLog(true)
	r1.Log("FC Invoke Start RequestId: ", "r1")
	b.line(StreamStdout, []byte("from b"))
	a.line(StreamStdout, []byte("from a"))
	r1.Log("FC Invoke End RequestId: ", "r1")
	// The tail comes from memory: with the log files gone, and any file
	// read failing or finding nothing, the request still has its lines.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	lines := r1.End()
	a.line(StreamStdout, []byte("after"))

	var got []string
	for _, l := range lines {
		got = append(got, strings.SplitN(l, " ", 2)[1])
	}
	want := []string{"a fc FC Invoke Start RequestId: r1", "a stdout from a", "a fc FC Invoke End RequestId: r1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if len(a.reqs) != 0 {
		t.Errorf("collecting RequestLogs after End: got %d, want 0", len(a.reqs))
	}
	if got := a.requestLog(false); got.End() != nil || len(a.reqs) != 0 {
		t.Errorf("a RequestLog that does not collect: kept %d registrations, want 0", len(a.reqs))
	}
}

// TestRequestLogAt: a line logged with LogAt carries the time it was
// given (the proxy's reading of the clock), not the time it was written.
func TestRequestLogAt(t *testing.T) {
	_, _, lf := testLogFile(t)
	il := newInstanceLog(lf, "a")
	r := il.requestLog(true)
	at := time.Date(2026, 11, 26, 13, 4, 5, 123456789, time.UTC)
	r.LogAt(at, "FC Invoke Start RequestId: ", "r1")
	lines := r.End()
	want := []string{"2026-11-26T13:04:05.123456Z a fc FC Invoke Start RequestId: r1"}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("got %q, want %q", lines, want)
	}
}

func TestRequestLogBounds(t *testing.T) {
	_, _, lf := testLogFile(t)
	il := newInstanceLog(lf, "a")

	t.Run("bytes", func(t *testing.T) {
		r := il.requestLog(true)
		for i := range 1000 {
			il.line(StreamStdout, fmt.Appendf(nil, "line %04d", i))
		}
		lines := r.End()
		size := 0
		for _, l := range lines {
			size += len(l) + 1
		}
		if size > RequestLogBytes || size < RequestLogBytes/2 {
			t.Errorf("kept %d bytes, want at most %d and most of it", size, RequestLogBytes)
		}
		if last := lines[len(lines)-1]; !strings.HasSuffix(last, "line 0999") {
			t.Errorf("last line: got %q, want line 0999", last)
		}
	})
	t.Run("requests", func(t *testing.T) {
		var rs []*RequestLog
		for range maxRequestLogs + 1 {
			rs = append(rs, il.requestLog(true))
		}
		if len(il.reqs) != maxRequestLogs {
			t.Errorf("collecting: got %d, want %d", len(il.reqs), maxRequestLogs)
		}
		il.line(StreamStdout, []byte("shared"))
		over := rs[maxRequestLogs]
		over.Log("FC Invoke Start RequestId: ", "over")
		if got := over.End(); len(got) != 1 || !strings.HasSuffix(got[0], "RequestId: over") {
			t.Errorf("RequestLog past the bound: got %q, want only its own line", got)
		}
		if got := rs[0].End(); len(got) != 2 {
			t.Errorf("RequestLog within the bound: got %q, want the shared line and the marker", got)
		}
		for _, r := range rs[1:maxRequestLogs] {
			r.End()
		}
		if len(il.reqs) != 0 {
			t.Errorf("collecting after End: got %d, want 0", len(il.reqs))
		}
	})
}

func TestStartErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  *StartError
		want []string
	}{
		{
			"not started",
			&StartError{InstanceID: "i", Duration: 1500 * time.Millisecond,
				Err: errors.New("dial tcp 10.86.0.2:9000: connect: connection refused"), LogTail: []string{"listening on 127.0.0.1:9000"}},
			[]string{"did not become ready", "1.5s", "connection refused", "listening on 127.0.0.1:9000"},
		},
		{
			"exited",
			&StartError{Exited: true, InstanceID: "i", Exit: ExitStatus{Code: 3}},
			[]string{"exited with code 3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := tt.err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q: want %q", msg, w)
				}
			}
		})
	}
}

// TestOCISpecSandbox checks the confinement every instance's spec asks
// for; TestSandbox checks what the process actually gets.
func TestOCISpecSandbox(t *testing.T) {
	ctx := namespaces.WithNamespace(context.Background(), "fcd")
	s, err := ociSpec(ctx, "fcd", Spec{ID: "i1", Function: "f"}.withDefaults(),
		ocispec.ImageConfig{Cmd: []string{"/app/f"}}, "/rootfs", "/run/netns/x")
	if err != nil {
		t.Fatal(err)
	}
	caps := s.Process.Capabilities
	for _, set := range [][]string{caps.Bounding, caps.Effective, caps.Permitted} {
		for _, c := range set {
			if slices.Contains(droppedCapabilities, c) {
				t.Errorf("capability %s kept, want it dropped (set %v)", c, set)
			}
		}
	}
	if !slices.Contains(caps.Bounding, "CAP_NET_BIND_SERVICE") {
		t.Errorf("bounding set %v lacks CAP_NET_BIND_SERVICE, want containerd's default set minus NET_RAW and MKNOD", caps.Bounding)
	}
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno || len(s.Linux.Seccomp.Syscalls) == 0 {
		t.Errorf("seccomp: got %+v, want containerd's default profile (default action errno)", s.Linux.Seccomp)
	}
	if !s.Process.NoNewPrivileges {
		t.Error("NoNewPrivileges: got false, want true")
	}
	if !slices.Contains(s.Linux.ReadonlyPaths, "/proc/sys") {
		t.Errorf("read-only paths %v lack /proc/sys", s.Linux.ReadonlyPaths)
	}
	if !slices.Contains(s.Linux.MaskedPaths, "/proc/kcore") {
		t.Errorf("masked paths %v lack /proc/kcore", s.Linux.MaskedPaths)
	}
	if s.Linux.Resources.Pids == nil || s.Linux.Resources.Pids.Limit != DefaultPidsLimit {
		t.Errorf("pids limit: got %+v, want %d", s.Linux.Resources.Pids, DefaultPidsLimit)
	}
}

func TestOptionsRequireImages(t *testing.T) {
	_, err := Options{DataDir: t.TempDir()}.withDefaults()
	if err == nil || !strings.Contains(err.Error(), "Images") {
		t.Errorf("Options without Images: got %v, want an error naming Images", err)
	}
}

// The kinds of start failure, as the proxy names them (FC's codes).
const (
	notStarted = "FunctionNotStarted"
	caExited   = "CAExited"
)

// startKind names the kind of se as FC does; the proxy's mapping is tested
// in package proxy.
func startKind(se *StartError) string {
	if se.Exited {
		return caExited
	}
	return notStarted
}

func TestStartErrorCategory(t *testing.T) {
	cause := errors.New("probe failed")
	err := error(&StartError{InstanceID: "i", Err: cause})
	if !errdefs.IsFailedPrecondition(err) {
		t.Errorf("got %v, want errdefs.ErrFailedPrecondition", err)
	}
	if !errors.Is(err, cause) {
		t.Errorf("errors.Is(%v, cause): got false, want true", err)
	}
}

// closeOnlyManager is a Manager with no instances and no host network, for
// testing Close's handling of its watcher goroutines.
func closeOnlyManager(t *testing.T) *Manager {
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{
		ctx: ctx, cancel: cancel,
		opts:      Options{Name: "fcd-unit-close-none"},
		net:       &network{bridge: "fcd-none-br0", nsDir: filepath.Join(t.TempDir(), "ns")},
		instances: map[string]*Instance{},
	}
}

func TestCloseWaitsForWatchers(t *testing.T) {
	m := closeOnlyManager(t)
	var ended atomic.Bool
	m.watch(func() {
		<-m.ctx.Done()
		ended.Store(true)
	})
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !ended.Load() {
		t.Error("Close returned before the instance watcher ended")
	}
}

func TestCloseBoundedByContext(t *testing.T) {
	m := closeOnlyManager(t)
	stuck := make(chan struct{})
	defer close(stuck)
	m.watch(func() { <-stuck }) // ignores the Manager's context
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want the context's error naming the watchers", err)
	}
}

// TestLogLinesBufferedInOrder: fcd's markers and an instance's output share
// one buffer per function's log, so the file keeps their order, and a read
// through flush sees lines written a moment before.
func TestLogLinesBufferedInOrder(t *testing.T) {
	dir, files, lf := testLogFile(t)
	il := newInstanceLog(lf, "a")
	out := il.stream(StreamStdout)
	var want []string
	for i := range 50 {
		r := il.requestLog(false)
		r.Log("FC Invoke Start RequestId: ", fmt.Sprintf("r%d", i))
		fmt.Fprintf(out, "handling r%d\n", i)
		r.Log("FC Invoke End RequestId: ", fmt.Sprintf("r%d", i))
		want = append(want, fmt.Sprintf("fc FC Invoke Start RequestId: r%d", i), fmt.Sprintf("stdout handling r%d", i), fmt.Sprintf("fc FC Invoke End RequestId: r%d", i))
	}
	files.flush("fn")
	lines, err := ReadLogs(dir, "fn", 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range lines {
		got = append(got, strings.SplitN(l, " ", 3)[2])
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %d lines %q..., want %d lines in write order", len(got), got[:min(len(got), 3)], len(want))
	}
}

func TestProbeDelay(t *testing.T) {
	for _, tc := range []struct {
		elapsed, prev, want time.Duration
	}{
		{0, 0, probeFastStep},
		{probeFastFor - time.Millisecond, probeFastStep, probeFastStep},
		{probeFastFor, probeFastStep, 5 * time.Millisecond},
		{probeFastFor + 10*time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond},
		{time.Second, 80 * time.Millisecond, probeMaxStep},
		{time.Second, probeMaxStep, probeMaxStep},
	} {
		if got := probeDelay(tc.elapsed, tc.prev); got != tc.want {
			t.Errorf("probeDelay(%v, %v): got %v, want %v", tc.elapsed, tc.prev, got, tc.want)
		}
	}
}

// TestProbeTCPHopelessPacing checks that probeTCP asks hopeless only
// after the fast phase and at most every hopelessEvery (each question
// reads the host's socket tables), and that an answer ends the probe.
func TestProbeTCPHopelessPacing(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // dials to addr are refused from now on
	var asked []time.Time
	hopeless := func() string {
		asked = append(asked, time.Now())
		if len(asked) < 2 {
			return ""
		}
		return "listens on loopback"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	err = probeTCP(ctx, addr, nil, hopeless)
	if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "(listens on loopback)") {
		t.Fatalf("probeTCP: got %v, want the refused dial explained by hopeless", err)
	}
	if len(asked) != 2 {
		t.Fatalf("hopeless asked %d times, want 2 (the probe ends on its first answer)", len(asked))
	}
	if d := asked[0].Sub(start); d < probeFastFor {
		t.Errorf("hopeless first asked %v after the start, within the fast phase (%v)", d, probeFastFor)
	}
	if d := asked[1].Sub(asked[0]); d < hopelessEvery {
		t.Errorf("hopeless asked again after %v, want at least %v", d, hopelessEvery)
	}
}

func TestIsNetNS(t *testing.T) {
	plain := filepath.Join(t.TempDir(), "net")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if isNetNS(plain) {
		t.Errorf("isNetNS(%s): got true for a regular file, want false", plain)
	}
	if !isNetNS("/proc/self/ns/net") {
		t.Error("isNetNS(/proc/self/ns/net): got false, want true")
	}
}

// TestOCISpecResolvConf: a function's customDNS becomes the instance's
// /etc/resolv.conf, a file in the instance's directory mounted read-only.
func TestOCISpecResolvConf(t *testing.T) {
	ctx := namespaces.WithNamespace(context.Background(), "fcd")
	dir := t.TempDir()
	const conf = "nameserver 10.0.0.53\nsearch corp.example\noptions ndots:2\n"
	s, err := ociSpec(ctx, "fcd", Spec{ID: "i1", Function: "f", ResolvConf: conf}.withDefaults(),
		ocispec.ImageConfig{Cmd: []string{"/app/f"}}, filepath.Join(dir, "rootfs"), "/run/netns/x")
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/etc/resolv.conf" })
	if i < 0 {
		t.Fatalf("mounts %+v: no /etc/resolv.conf", s.Mounts)
	}
	m := s.Mounts[i]
	if want := filepath.Join(dir, "resolv.conf"); m.Source != want || !slices.Contains(m.Options, "ro") {
		t.Errorf("resolv.conf mount: got %s %v, want %s read-only", m.Source, m.Options, want)
	}
	if got, err := os.ReadFile(m.Source); err != nil || string(got) != conf {
		t.Errorf("resolv.conf: got %q (%v), want %q", got, err, conf)
	}
}

func TestShimGroups(t *testing.T) {
	g := newShimGroups("fcd-ab", 2)
	var got []string
	join := func() string {
		s := g.join()
		got = append(got, s)
		return s
	}
	first := join()
	join()
	third := join() // the first group is full
	g.leave(first)
	join() // the current group has room
	join() // full again
	g.leave(third)
	want := []string{"fcd-ab-0", "fcd-ab-0", "fcd-ab-1", "fcd-ab-1", "fcd-ab-2"}
	if !slices.Equal(got, want) {
		t.Errorf("groups: got %v, want %v", got, want)
	}
	if live := map[string]int{"fcd-ab-0": 1, "fcd-ab-1": 1, "fcd-ab-2": 1}; !maps.Equal(g.live, live) {
		t.Errorf("live instances: got %v, want %v", g.live, live)
	}
}

func TestLogTailKeepsLastLines(t *testing.T) {
	dir := t.TempDir()
	lf, err := openLogFile(dir, 1<<20, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.close()
	il := newInstanceLog(lf, "a")
	if got := il.lastLines(); got != nil {
		t.Fatalf("tail of an empty log: got %q, want nil", got)
	}
	out := il.stream(StreamStdout)
	r := il.requestLog(false)
	var want []string
	for i := range tailLines + 5 {
		if i%2 == 0 {
			fmt.Fprintf(out, "line %d\n", i)
			want = append(want, fmt.Sprintf("line %d", i))
		} else {
			r.Log("FC Invoke Start RequestId: ", fmt.Sprintf("r%d", i))
			want = append(want, fmt.Sprintf("FC Invoke Start RequestId: r%d", i))
		}
		n := min(len(want), tailLines)
		if got := il.lastLines(); !slices.Equal(got, want[len(want)-n:]) {
			t.Fatalf("after %d lines: got %q, want %q", i+1, got, want[len(want)-n:])
		}
	}
}

func BenchmarkRequestLogMarkers(b *testing.B) {
	lf, err := openLogFile(b.TempDir(), 1<<30, 2)
	if err != nil {
		b.Fatal(err)
	}
	defer lf.close()
	il := newInstanceLog(lf, "c-0123456789")
	b.ReportAllocs()
	for b.Loop() {
		r := il.requestLog(false)
		r.Log("FC Invoke Start RequestId: ", "1-0123456789ab-1f")
		r.Log("FC Invoke End RequestId: ", "1-0123456789ab-1f")
		r.End()
	}
}
