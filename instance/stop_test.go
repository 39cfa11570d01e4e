package instance

import (
	"context"
	"errors"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"golang.org/x/sys/unix"

	"github.com/fcd-dev/fcd/examples/images"
)

// TestStopEndsWhenExitIsLost stops an instance whose exit never reaches
// its shim, as happened when fcd's seccomp read traced a process that
// died: Stop must end with an error saying so, not wait forever for an
// exit (ctx has no end there), and the instance's cgroup process must be
// removable once the exit is released.
func TestStopEndsWhenExitIsLost(t *testing.T) {
	e := setup(t)
	defer func(d time.Duration) { killWait = d }(killWait)
	killWait = time.Second

	inst := start(t, e, Spec{Function: "lostexit", Image: e.refs[images.Echo], MemoryMB: 128})
	pid := int(inst.task.Pid())

	// Trace the process and never wait for it until released: its exit
	// is then this test's, not the shim's.
	seized, release, released := make(chan error, 1), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(released)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		// With crun, fcd itself may trace a new instance for a moment
		// to learn its compiled seccomp filter (learnSeccomp), and a
		// process has one tracer at a time: EPERM until it lets go.
		err := unix.PtraceSeize(pid)
		for deadline := time.Now().Add(10 * time.Second); errors.Is(err, unix.EPERM) && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
			err = unix.PtraceSeize(pid)
		}
		if err != nil {
			seized <- err
			return
		}
		seized <- nil
		<-release
		if err := reapTracee(pid); err != nil {
			t.Errorf("release the exit: %v", err)
		}
	}()
	if err := <-seized; err != nil {
		t.Fatalf("seize %d: %v", pid, err)
	}
	releaseOnce := func() {
		select {
		case <-release:
		default:
			close(release)
			<-released
		}
	}
	t.Cleanup(releaseOnce)

	stopped := make(chan error, 1)
	go func() { stopped <- inst.Stop(context.Background()) }()
	var err error
	select {
	case err = <-stopped:
	case <-time.After(time.Minute):
		releaseOnce()
		t.Fatalf("Stop still waits a minute after its SIGKILL for an exit that never comes")
	}
	if err == nil || !strings.Contains(err.Error(), "did not exit after SIGKILL") {
		t.Errorf("Stop: %v, want it to say the process did not exit after SIGKILL", err)
	}

	// Once the exit reaches the shim, what Stop could not remove goes.
	releaseOnce()
	ctx := e.mgr.nsCtx(context.Background())
	if c, err := e.client.LoadContainer(ctx, inst.ID()); err == nil {
		if task, err := c.Task(ctx, nil); err == nil {
			st, err := task.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-st:
			case <-time.After(time.Minute):
				t.Fatal("the released exit never reached containerd")
			}
			if _, err := task.Delete(ctx); err != nil {
				t.Errorf("delete task: %v", err)
			}
		}
		if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("delete container: %v", err)
		}
	}
}

// TestStopInitIgnoringTerm stops an instance whose process, its
// container's init, ignores SIGTERM, as python and node do when they run
// as PID 1: Stop does not wait out StopGrace for a signal the kernel
// never delivers, and still removes everything.
func TestStopInitIgnoringTerm(t *testing.T) {
	e := setup(t)
	defer func(g time.Duration) { e.mgr.opts.StopGrace = g }(e.mgr.opts.StopGrace)
	e.mgr.opts.StopGrace = 10 * time.Minute

	inst := start(t, e, Spec{Function: "ignoreterm", Image: e.refs[images.Misbehave], MemoryMB: 128,
		Env: map[string]string{"MISBEHAVE_SIGTERM": "ignore"}})
	if catchesTerm(int(inst.task.Pid())) {
		t.Fatal("the instance's process catches SIGTERM, want it ignored")
	}
	stopped := make(chan error, 1)
	go func() { stopped <- inst.Stop(context.Background()) }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		// End it, and Stop with it, before the grace is restored.
		unix.Kill(int(inst.task.Pid()), unix.SIGKILL)
		select {
		case <-stopped:
		case <-time.After(time.Minute):
		}
		t.Fatalf("Stop still waits 2 minutes into its 10-minute grace for a SIGTERM its process ignores")
	}
	assertGone(t, e, inst.ID())
}

// TestAwaitShims gives a Manager whose namespace holds no container a
// shim that does not exit by itself (a stand-in with a shim's command
// line): awaitShims must not return while it runs, and ends it.
func TestAwaitShims(t *testing.T) {
	e := setup(t)
	const ns = "fcdshimwait"
	fake := exec.Command("/bin/sh", "-c", "sleep 60; :", "containerd-shim-runc-v2", "-namespace", ns, "-id", "x")
	fake.Args[0] = "containerd-shim-runc-v2"
	if err := fake.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- fake.Wait() }()
	t.Cleanup(func() { fake.Process.Kill() })
	if pids := shimPIDs(ns); len(pids) != 1 || pids[0] != fake.Process.Pid {
		t.Fatalf("shims of %s: %v, want the stand-in %d", ns, pids, fake.Process.Pid)
	}
	m := &Manager{client: e.client, opts: Options{Name: ns}, log: e.mgr.log}
	if err := m.awaitShims(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(time.Minute):
		t.Fatal("the stand-in shim still runs after awaitShims")
	}
	if pids := shimPIDs(ns); len(pids) != 0 {
		t.Errorf("shims of %s after awaitShims: %v, want none", ns, pids)
	}
}
