package instance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/snapshots"
	"github.com/fcd-dev/fcd/examples/echoserver"
	"github.com/fcd-dev/fcd/examples/images"
)

func get(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, err %v", url, resp.StatusCode, err)
	}
	return b
}

func start(t *testing.T, e *env, spec Spec) *Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	inst, err := e.mgr.Start(ctx, spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = inst.Stop(context.Background()) })
	return inst
}

// assertGone checks that nothing of instance id is left on the host.
func assertGone(t *testing.T, e *env, id string) {
	t.Helper()
	ctx := e.mgr.nsCtx(context.Background())
	if _, err := e.client.LoadContainer(ctx, id); err == nil {
		t.Errorf("container %s still exists", id)
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(mounts), "\n") {
		if strings.Contains(l, id) {
			t.Errorf("mount left behind: %s", l)
		}
	}
	for _, p := range []string{e.mgr.instanceDir(id), filepath.Join(e.mgr.net.nsDir, id)} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists (stat err %v)", p, err)
		}
	}
	// host-local keeps one file per leased address holding the owner's ID.
	err = filepath.Walk(e.mgr.net.ipamDir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return nil
		}
		if b, _ := os.ReadFile(p); strings.Contains(string(b), id) {
			t.Errorf("address %s still leased to %s", filepath.Base(p), id)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	var snaps []string
	_ = e.client.SnapshotService("overlayfs").Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if strings.Contains(info.Name, id) {
			snaps = append(snaps, info.Name)
		}
		return nil
	})
	if len(snaps) > 0 {
		t.Errorf("snapshots left behind: %v", snaps)
	}
}

func TestStartEcho(t *testing.T) {
	e := setup(t)
	inst := start(t, e, Spec{Function: "echo", Image: e.refs[images.Echo], MemoryMB: 128, Env: map[string]string{"GREETING": "hi"}})

	var got echoserver.Request
	if err := json.Unmarshal(get(t, "http://"+inst.Addr()+"/hello/world?x=1"), &got); err != nil {
		t.Fatal(err)
	}
	if got.Method != "GET" || got.Path != "/hello/world" || got.Query["x"][0] != "1" {
		t.Errorf("got %+v, want GET /hello/world?x=1", got)
	}
	resp, err := http.Post("http://"+inst.Addr()+"/invoke", "application/octet-stream", strings.NewReader(`{"event":1}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != `{"event":1}` {
		t.Errorf("POST /invoke: got %q, want the event body", body)
	}

	rl := inst.RequestLog(true)
	rl.Log("FC Invoke Start RequestId: ", "r1")
	rl.Log("FC Invoke End RequestId: ", "r1")
	req := rl.End()
	// The process's own output reaches fcd through the shim, on its own
	// schedule: the line it wrote before it listened may still be on its
	// way when the probe and the requests are done.
	want := inst.ID() + " stderr " // Go's log package writes to stderr
	var lines []string
	found := false
	for deadline := time.Now().Add(10 * time.Second); !found && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if lines, err = e.mgr.ReadLogs("echo", 0); err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			if strings.Contains(l, want) && strings.Contains(l, "listening on 0.0.0.0:9000") {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("logs %q after 10 s: want a line with %q and the listen address", lines, want)
	}
	if len(req) != 2 {
		t.Errorf("RequestLog: got %q; want the two markers", req)
	}
	if st := inst.StartStats(); st.Pull.Duration <= 0 || st.Create <= 0 || st.Ready <= 0 {
		t.Errorf("StartStats: got %+v, want every phase measured", st)
	}

	id := inst.ID()
	if err := inst.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := inst.Stop(context.Background()); err != nil {
		t.Errorf("second Stop: got %v, want nil", err)
	}
	select {
	case <-inst.Done():
	default:
		t.Error("Done not closed after Stop")
	}
	if got := inst.Exit().Reason; got != ReasonStopped {
		t.Errorf("Exit().Reason: got %q, want %q", got, ReasonStopped)
	}
	assertGone(t, e, id)
}

func TestStartFailures(t *testing.T) {
	e := setup(t)
	tests := []struct {
		name     string
		spec     Spec
		code     string
		exitCode int
		errHas   string
		// crunErrHas replaces errHas with crun, whose words differ.
		crunErrHas string
		logHas     string
		// outputLate delays each write of the instance's output to its
		// log.
		outputLate time.Duration
	}{
		{
			name:   "bound to localhost",
			spec:   Spec{Function: "localhost", Image: e.refs[images.EchoLocalhost], MemoryMB: 128},
			code:   notStarted,
			errHas: "connect: connection refused (the server listens on 127.0.0.1:9000 inside the instance, which is unreachable from outside it; it must listen on 0.0.0.0:9000)",
			logHas: "listening on 127.0.0.1:9000",
		},
		{
			name:     "exits at start",
			spec:     Spec{Function: "exiter", Image: e.refs[images.Misbehave], Command: []string{"exit", "3"}, MemoryMB: 128},
			code:     caExited,
			exitCode: 3,
			logHas:   "misbehave: exiting with code 3",
		},
		{
			// Its exit is known before its output has come through (as
			// on a busy host): the error waits for its last words.
			name:       "exits at start, output late",
			spec:       Spec{Function: "exiter", Image: e.refs[images.Misbehave], Command: []string{"exit", "3"}, MemoryMB: 128},
			code:       caExited,
			exitCode:   3,
			logHas:     "misbehave: exiting with code 3",
			outputLate: 300 * time.Millisecond,
		},
		{
			name:       "entrypoint not found",
			spec:       Spec{Function: "noentry", Image: e.refs[images.Echo], Entrypoint: []string{"/nonexistent"}},
			code:       notStarted,
			errHas:     "/nonexistent: no such file or directory",
			crunErrHas: "executable file `/nonexistent` not found",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.ID = fmt.Sprintf("fail%d", time.Now().UnixNano())
			if tt.outputLate > 0 {
				testHookLineWrite = func(id string) {
					if id == tt.spec.ID {
						time.Sleep(tt.outputLate)
					}
				}
				defer func() { testHookLineWrite = nil }()
			}
			_, err := e.mgr.Start(context.Background(), tt.spec)
			if err == nil {
				t.Fatal("Start: got nil error, want a failure")
			}
			if tt.crunErrHas != "" && filepath.Base(e.mgr.opts.Runtime) == RuntimeCrun {
				tt.errHas = tt.crunErrHas
			}
			if tt.errHas != "" && !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("error %q: want it to mention %q", err, tt.errHas)
			}
			if testing.Verbose() {
				t.Logf("error: %v", err)
			}
			var se *StartError
			if tt.code == "" {
				if errors.As(err, &se) {
					t.Errorf("got StartError %v, want another error", se)
				}
			} else {
				if !errors.As(err, &se) {
					t.Fatalf("got %T %v, want *StartError", err, err)
				}
				if got := startKind(se); got != tt.code {
					t.Errorf("kind: got %q, want %q", got, tt.code)
				}
				if tt.code == caExited && se.Exit.Code != tt.exitCode {
					t.Errorf("exit code: got %d, want %d", se.Exit.Code, tt.exitCode)
				}
				if !strings.Contains(err.Error(), tt.logHas) {
					t.Errorf("error %q: want the log line %q", err, tt.logHas)
				}
			}
			assertGone(t, e, tt.spec.ID)
		})
	}
}

func TestOOMReported(t *testing.T) {
	e := setup(t)
	inst := start(t, e, Spec{Function: "oom", Image: e.refs[images.Misbehave], MemoryMB: 64})
	// The request never completes: the server dies answering it.
	go func() {
		c := http.Client{Timeout: time.Minute}
		if resp, err := c.Get("http://" + inst.Addr() + "/oom"); err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case <-inst.Done():
	case <-time.After(time.Minute):
		t.Fatal("instance did not die allocating past its memory limit")
	}
	st := inst.Exit()
	if !st.OOMKilled || st.Reason != ReasonOOM {
		t.Errorf("Exit: got %+v, want OOMKilled with reason %q", st, ReasonOOM)
	}
	id := inst.ID()
	if err := inst.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	assertGone(t, e, id)
}

func TestStopIsNotOOM(t *testing.T) {
	e := setup(t)
	inst := start(t, e, Spec{Function: "echo", Image: e.refs[images.Echo], MemoryMB: 128})
	if err := inst.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := inst.Exit(); st.OOMKilled || st.Reason != ReasonStopped {
		t.Errorf("Exit after Stop: got %+v, want reason %q and no OOM", st, ReasonStopped)
	}
}

func TestDiskLimit(t *testing.T) {
	e := setup(t)
	inst := start(t, e, Spec{Function: "disk", Image: e.refs[images.Misbehave], MemoryMB: 128, DiskMB: 32})
	tests := []struct {
		mb      int
		wantErr string
	}{
		{mb: 8},
		{mb: 64, wantErr: "no space left on device"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%dMiB", tt.mb), func(t *testing.T) {
			var got struct {
				Written int64  `json:"written"`
				Error   string `json:"error"`
			}
			if err := json.Unmarshal(get(t, fmt.Sprintf("http://%s/fill?mb=%d", inst.Addr(), tt.mb)), &got); err != nil {
				t.Fatal(err)
			}
			if tt.wantErr == "" && (got.Error != "" || got.Written != int64(tt.mb)<<20) {
				t.Errorf("got %+v, want %d bytes written", got, tt.mb<<20)
			}
			if tt.wantErr != "" && !strings.Contains(got.Error, tt.wantErr) {
				t.Errorf("got %+v, want error %q", got, tt.wantErr)
			}
		})
	}
}

func TestHealthCheckAndInitializer(t *testing.T) {
	e := setup(t)
	inst := start(t, e, Spec{
		Function:    "hooks",
		Image:       e.refs[images.Echo],
		MemoryMB:    128,
		Initializer: true,
		PreStop:     true,
		HealthCheck: &HealthCheck{HTTPGetURL: "/ready", Period: 100 * time.Millisecond},
	})
	lines, err := e.mgr.ReadLogs("hooks", 0)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(lines, "\n")
	for _, want := range []string{"FC Initialize Start RequestId: " + inst.ID(), "FC Initialize End RequestId: " + inst.ID()} {
		if !strings.Contains(joined, want) {
			t.Errorf("logs %q: want %q", lines, want)
		}
	}
	if strings.Contains(joined, "FC Initialize Error") {
		t.Errorf("logs %q: initializer failed", lines)
	}
	if err := inst.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if lines, _ := e.mgr.ReadLogs("hooks", 0); strings.Contains(strings.Join(lines, "\n"), "PreStop failed") {
		t.Errorf("logs %q: pre-stop failed", lines)
	}
}

func TestCleanupAfterCrash(t *testing.T) {
	e := setup(t)
	inst := start(t, e, Spec{Function: "crash", Image: e.refs[images.Echo], MemoryMB: 128})
	// A second Manager of the same name stands for fcd after a crash: it
	// knows nothing of the instance and must remove it all.
	m2, err := NewManager(e.client, e.mgr.opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Cleanup(context.Background()); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if err := e.puller.RemoveViews(context.Background()); err != nil {
		t.Fatalf("RemoveViews: %v", err)
	}
	assertGone(t, e, inst.ID())
	afterCrash(t, e, inst)
}

// afterCrash lets the test environment's Manager, which stood for the
// crashed fcd, live on after a second one cleaned up after it.
func afterCrash(t *testing.T, e *env, inst *Instance) {
	t.Helper()
	// The first Manager's view of it ends: the process was killed.
	select {
	case <-inst.Done():
	case <-time.After(30 * time.Second):
		t.Error("Done not closed after the container was removed")
	}
	e.mgr.mu.Lock()
	delete(e.mgr.instances, inst.ID())
	e.mgr.mu.Unlock()
	// Cleanup also removed the firewall and cgroup parent that the first
	// Manager set up, which a crashed fcd cannot mind; this one lives on
	// for the next tests and must set them up again.
	e.mgr.net.firewall.mu.Lock()
	e.mgr.net.firewall.installed = false
	e.mgr.net.firewall.mu.Unlock()
	e.mgr.host = hostState{}
}

func TestDaemonRestarts(t *testing.T) {
	e := setup(t)
	e.daemon.mu.Lock()
	old := e.daemon.proc
	exited := e.daemon.exited
	e.daemon.mu.Unlock()
	if err := old.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		if _, err := e.client.Version(ctx); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("containerd not back within a minute after it was killed")
		case <-time.After(100 * time.Millisecond):
		}
	}
	e.daemon.mu.Lock()
	pid := e.daemon.proc.Pid
	e.daemon.mu.Unlock()
	if pid == old.Pid {
		t.Errorf("containerd pid: got %d again, want a new process", pid)
	}
	// The restarted daemon serves instances.
	inst := start(t, e, Spec{Function: "echo", Image: e.refs[images.Echo], MemoryMB: 128})
	get(t, "http://"+inst.Addr()+"/")
}

func TestNetPool(t *testing.T) {
	e := setup(t)
	if e.mgr.pool == nil {
		t.Skip("the test Manager has no network pool")
	}
	ctx := context.Background()
	// Earlier tests may have left the pool holding namespaces that another
	// Manager's Cleanup removed; start from fresh ones.
	if err := e.mgr.pool.drain(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.mgr.pool.fill(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.mgr.pool.len(); got != e.mgr.pool.size {
		t.Fatalf("pooled namespaces: got %d, want %d", got, e.mgr.pool.size)
	}
	inst := start(t, e, Spec{Function: "echo", Image: e.refs[images.Echo], MemoryMB: 128})
	if !strings.HasPrefix(inst.netID, "pool-") {
		t.Errorf("instance network: got %q, want a pooled namespace", inst.netID)
	}
	get(t, "http://"+inst.Addr()+"/")
	if rs := e.mgr.ColdStarts("echo", 1); len(rs) != 1 || rs[0].Instance != inst.ID() {
		t.Errorf("ColdStarts(echo, 1): got %+v, want the start of %s", rs, inst.ID())
	}
	if err := inst.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// The pooled namespace went with the instance, never back to the pool.
	assertGone(t, e, inst.netID)
	e.mgr.pool.mu.Lock()
	for _, a := range e.mgr.pool.ready {
		if a.id == inst.netID {
			t.Errorf("namespace %s back in the pool after its instance stopped", a.id)
		}
	}
	e.mgr.pool.mu.Unlock()
}

// TestPrefill checks that Prefill fills the pools before any Start, so a
// fresh Manager's first cold start takes a namespace and a disk instead of
// making them.
func TestPrefill(t *testing.T) {
	e := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	m, err := NewManager(e.client, Options{Name: "fcdpf", DataDir: dir, Subnet: netip.MustParsePrefix("10.87.5.0/24"),
		StopGrace: time.Second, NetPool: 2, DiskPool: 1, Images: e.puller, Runtime: *flagRuntime})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := m.Close(context.WithoutCancel(ctx)); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	if err := m.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	m.Prefill()
	for {
		_, disksShort := m.disks.short()
		if m.pool.len() == m.pool.size && !disksShort {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("pools after Prefill: %d of %d namespaces, disks short: %v", m.pool.len(), m.pool.size, disksShort)
		case <-time.After(20 * time.Millisecond):
		}
	}
	inst, err := m.Start(ctx, Spec{Function: "echo", Image: e.refs[images.Echo], MemoryMB: 128})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(inst.netID, "pool-") {
		t.Errorf("first instance's network: got %q, want a pooled namespace", inst.netID)
	}
	get(t, "http://"+inst.Addr()+"/")
}
