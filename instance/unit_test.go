package instance

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/namespaces"
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
	il := &instanceLog{file: lf, id: "inst"}
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

func TestRequestLogs(t *testing.T) {
	dir := t.TempDir()
	files := &logFiles{dataDir: dir, maxSize: 1 << 20, maxFiles: 1, files: map[string]*logFile{}}
	lf, err := files.acquire("fn")
	if err != nil {
		t.Fatal(err)
	}
	a, b := &instanceLog{file: lf, id: "a"}, &instanceLog{file: lf, id: "b"}
	a.line(StreamFC, []byte("FC Invoke Start RequestId: r1"))
	b.line(StreamStdout, []byte("from b"))
	a.line(StreamStdout, []byte("from a"))
	a.line(StreamFC, []byte("FC Invoke End RequestId: r1"))
	a.line(StreamStdout, []byte("after"))
	files.release("fn")

	lines, err := RequestLogs(dir, "fn", "r1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range lines {
		got = append(got, strings.SplitN(l, " ", 2)[1])
	}
	want := []string{"a fc FC Invoke Start RequestId: r1", "a stdout from a", "a fc FC Invoke End RequestId: r1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestStartErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  *StartError
		want []string
	}{
		{
			"not started",
			&StartError{Code: CodeFunctionNotStarted, InstanceID: "i", Duration: 1500 * time.Millisecond,
				Err: errors.New("dial tcp 10.86.0.2:9000: connect: connection refused"), LogTail: []string{"listening on 127.0.0.1:9000"}},
			[]string{"FunctionNotStarted", "1.5s", "connection refused", "listening on 127.0.0.1:9000"},
		},
		{
			"exited",
			&StartError{Code: CodeCAExited, InstanceID: "i", Exit: ExitStatus{Code: 3}},
			[]string{"CAExited", "exited with code 3"},
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
