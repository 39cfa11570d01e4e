package instance

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/fcd-dev/fcd/examples/images"
	"github.com/fcd-dev/fcd/puller"
)

// TestCleanupAfterKill abandons a Manager with running instances, as a
// kill -9 of fcd does, and lets its containerd forget their tasks (as a
// containerd killed during a cold start may: the shim runs, the task was
// never recorded). A new Manager's Cleanup must then leave nothing of its
// name behind: shims, processes, cgroups, mounts, netns, veths, rules.
func TestCleanupAfterKill(t *testing.T) {
	e := setup(t)
	const name = "fcdleak"
	subnet := netip.MustParsePrefix("10.87.1.0/24")
	dir, err := os.MkdirTemp("", name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	open := func() (*Daemon, *containerd.Client, *Manager) {
		t.Helper()
		d, err := StartDaemon(ctx, DaemonOptions{Name: name, DataDir: dir, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		c, err := containerd.New(d.Address())
		if err != nil {
			t.Fatal(err)
		}
		m, err := openManager(ctx, c, Options{Name: name, DataDir: dir, Subnet: subnet, StopGrace: time.Second, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		return d, c, m
	}

	d1, c1, m1 := open()
	var ids []string
	var pids []int
	for i := 0; i < 2; i++ {
		inst, err := m1.Start(ctx, Spec{Function: "leak", Image: e.refs[images.Echo], MemoryMB: 128})
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		ids = append(ids, inst.ID())
		pids = append(pids, int(inst.task.Pid()))
	}
	if n := len(shimPIDs(name)); n == 0 {
		t.Fatalf("no shim of namespace %s found while instances run: the test cannot see what it checks", name)
	}
	// m1 is abandoned without Close. Its containerd stops (the shims live
	// on) and loses the tasks' records.
	c1.Close()
	_ = d1.Close()
	if err := os.RemoveAll(filepath.Join(dir, "containerd", "state", "io.containerd.runtime.v2.task", name)); err != nil {
		t.Fatal(err)
	}

	d2, c2, m2 := open()
	t.Logf("after Cleanup: %s", footprint(name, dir, ids, pids))
	assertNoFootprint(t, name, dir, ids, pids, false)

	if err := m2.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	c2.Close()
	_ = d2.Close()
	t.Logf("after Close: %s", footprint(name, dir, ids, pids))
	assertNoFootprint(t, name, dir, ids, pids, true)
}

// leftovers is what of an fcd named name is on the host.
type leftovers struct {
	shims, processes, cgroups, mounts, loops, netns, veths, ips int
	rules                                                       bool
	bridge                                                      bool
}

func (l leftovers) String() string {
	return fmt.Sprintf("%d shims, %d instance processes, %d cgroups, %d mounts, %d loop devices, %d netns, %d veths, %d leased IPs, rules=%v, bridge=%v",
		l.shims, l.processes, l.cgroups, l.mounts, l.loops, l.netns, l.veths, l.ips, l.rules, l.bridge)
}

func footprint(name, dir string, ids []string, pids []int) leftovers {
	var l leftovers
	l.shims = len(shimPIDs(name))
	for _, pid := range pids {
		if alive(pid) {
			l.processes++
		}
	}
	for _, d := range cgroupDirs(name) {
		_ = filepath.WalkDir(d, func(_ string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				l.cgroups++
			}
			return nil
		})
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mounts), "\n") {
		if strings.Contains(line, filepath.Join(dir, "instances")) || strings.Contains(line, runDir(name)) {
			l.mounts++
			continue
		}
		for _, id := range ids {
			if strings.Contains(line, id) {
				l.mounts++
				break
			}
		}
	}
	backing, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, b := range backing {
		if f, err := os.ReadFile(b); err == nil && strings.HasPrefix(string(f), dir) {
			l.loops++
		}
	}
	// host-local keeps one file per leased address, named after it.
	leases, _ := filepath.Glob(filepath.Join(dir, "cni", "ipam", "*", "*"))
	for _, p := range leases {
		if _, err := netip.ParseAddr(filepath.Base(p)); err == nil {
			l.ips++
		}
	}
	ns, _ := os.ReadDir(filepath.Join(runDir(name), "netns"))
	l.netns = len(ns)
	ports, err := os.ReadDir(filepath.Join("/sys/class/net", bridgeName(name), "brif"))
	l.veths = len(ports)
	l.bridge = err == nil
	l.rules = exec.Command("nft", "list", "table", "inet", "fcd-"+name).Run() == nil
	return l
}

func assertNoFootprint(t *testing.T, name, dir string, ids []string, pids []int, closed bool) {
	t.Helper()
	got := footprint(name, dir, ids, pids)
	want := leftovers{}
	if !closed {
		// A Manager that has not started an instance yet has no rules,
		// but may have kept an empty bridge.
		want.bridge = got.bridge
	}
	if got != want {
		t.Errorf("left behind: %s; want %s", got, want)
	}
}

// alive reports whether pid is a process that has not exited.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie has exited; only its parent's wait is missing.
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z")
}

// Environment of TestHelperStorm, the process TestCleanupAfterKillStorm
// kills.
const (
	stormDirEnv   = "FCD_TEST_STORM_DIR"
	stormImageEnv = "FCD_TEST_STORM_IMAGE"
	// Not cmd/fcd's "fcdstorm": packages' tests run at once, and two
	// names alike share a bridge, a firewall table and a namespace.
	stormName = "fcdistorm"
)

var stormSubnet = netip.MustParsePrefix("10.87.2.0/24")

// TestCleanupAfterKillStorm kill -9s, round after round, a process that
// is starting instances as fast as it can (and, every other round, its
// containerd too); each next process's Cleanup must leave nothing of the
// previous ones behind, and neither must the last Close.
func TestCleanupAfterKillStorm(t *testing.T) {
	e := setup(t)
	const rounds = 10
	dir, err := os.MkdirTemp("", stormName+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	for round := 0; round < rounds; round++ {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperStorm$", "-test.v")
		cmd.Env = append(os.Environ(), stormDirEnv+"="+dir, stormImageEnv+"="+e.refs[images.Echo])
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		started := 0
		var cleaned string
		s := bufio.NewScanner(out)
		for s.Scan() {
			line := s.Text()
			t.Log("helper: " + line)
			if c, ok := strings.CutPrefix(line, "cleaned: "); ok {
				cleaned = c
			}
			if strings.HasPrefix(line, "started ") {
				started++
				if started == 2 {
					break
				}
			}
		}
		// Other starts are under way: kill now.
		_ = cmd.Process.Kill()
		if round%2 == 1 {
			killDaemon(t, dir)
		}
		go func() { _, _ = io.Copy(io.Discard, out) }()
		_ = cmd.Wait()
		t.Logf("round %d: %d instances started, then killed; its start-up cleanup left %s", round, started, cleaned)
		if started < 2 {
			t.Fatalf("round %d: the helper started %d instances before it ended, want 2", round, started)
		}
		if round > 0 && cleaned != (leftovers{bridge: true}).String() && cleaned != (leftovers{}).String() {
			t.Errorf("round %d: the start-up cleanup left %s", round, cleaned)
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	t.Logf("before the last clean-up: %s", footprint(stormName, dir, nil, nil))
	d, err := StartDaemon(ctx, DaemonOptions{Name: stormName, DataDir: dir, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	c, err := containerd.New(d.Address())
	if err != nil {
		t.Fatal(err)
	}
	m, err := openManager(ctx, c, Options{Name: stormName, DataDir: dir, Subnet: stormSubnet, Logger: log})
	if err != nil {
		t.Error(err)
	}
	t.Logf("after Cleanup: %s", footprint(stormName, dir, nil, nil))
	assertNoFootprint(t, stormName, dir, nil, nil, false)
	if err := m.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	c.Close()
	_ = d.Close()
	t.Logf("after Close: %s", footprint(stormName, dir, nil, nil))
	assertNoFootprint(t, stormName, dir, nil, nil, true)
}

// killDaemon SIGKILLs the containerd the helper supervised.
func killDaemon(t *testing.T, dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "containerd", "containerd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// TestHelperStorm is not a test: TestCleanupAfterKillStorm runs it in a
// process of its own, which starts instances until it is killed.
func TestHelperStorm(t *testing.T) {
	dir := os.Getenv(stormDirEnv)
	if dir == "" {
		t.Skip("run by TestCleanupAfterKillStorm")
	}
	ctx := context.Background()
	d, err := StartDaemon(ctx, DaemonOptions{Name: stormName, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c, err := containerd.New(d.Address())
	if err != nil {
		t.Fatal(err)
	}
	m, err := openManager(ctx, c, Options{Name: stormName, DataDir: dir, Subnet: stormSubnet})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("cleaned: %s\n", footprint(stormName, dir, nil, nil))
	spec := Spec{Function: "storm", Image: os.Getenv(stormImageEnv), MemoryMB: 128}
	errc := make(chan error)
	for w := 0; w < 4; w++ {
		go func() {
			for {
				inst, err := m.Start(ctx, spec)
				if err != nil {
					errc <- err
					return
				}
				fmt.Printf("started %s\n", inst.ID())
			}
		}()
	}
	t.Fatal(<-errc)
}

// openManager returns a Manager of opts on c with a puller of its own,
// after the start-up clean-up fcd does: Manager.Cleanup, then the
// puller's image views.
func openManager(ctx context.Context, c *containerd.Client, opts Options) (*Manager, error) {
	p, err := puller.New(c, puller.Options{Namespace: opts.Name, Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	opts.Images = p
	m, err := NewManager(c, opts)
	if err != nil {
		return nil, err
	}
	if err := m.Cleanup(ctx); err != nil {
		return m, fmt.Errorf("Cleanup: %w", err)
	}
	if err := p.RemoveViews(ctx); err != nil {
		return m, fmt.Errorf("remove image views: %w", err)
	}
	return m, nil
}
