package instance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
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

	err := stopWithin(t, inst, releaseOnce, "after its SIGKILL for an exit that never comes")
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
	// A shell waiting in its read builtin: one process. With a command
	// to run (sleep), it forked a child that, until its exec, had the
	// same command line and counted as a second shim.
	fake := exec.Command("/bin/sh", "-c", "read line", "containerd-shim-runc-v2", "-namespace", ns, "-id", "x")
	fake.Args[0] = "containerd-shim-runc-v2"
	stdin, err := fake.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
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

// stopWithin stops inst and returns Stop's error; when Stop still runs a
// minute later, it calls unblock and fails the test, saying Stop waits
// what.
func stopWithin(t *testing.T, inst *Instance, unblock func(), what string) error {
	t.Helper()
	stopped := make(chan error, 1)
	go func() { stopped <- inst.Stop(context.Background()) }()
	select {
	case err := <-stopped:
		return err
	case <-time.After(time.Minute):
		unblock()
		t.Fatalf("Stop still waits a minute %s", what)
		return nil
	}
}

// shimOf returns the process ID of inst's shim: its process's parent.
func shimOf(t *testing.T, inst *Instance) int {
	t.Helper()
	// state ppid ...
	f, ok := statFields(int(inst.task.Pid()))
	if !ok || len(f) < 2 {
		t.Fatalf("no stat of process %d", inst.task.Pid())
	}
	shim, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", shim)); err != nil || !bytes.Contains(b, []byte("containerd-shim")) {
		t.Fatalf("parent %d of the instance's process: %q, %v; want its shim", shim, b, err)
	}
	return shim
}

// TestStopEndsWhenShimIsStuck stops an instance whose shim answers
// nothing, as a shim does while its runtime hangs (seen in CI: crun start
// waiting forever on the exec FIFO of an init that was gone): Stop must
// end with an error saying so, not wait forever on the calls containerd
// passes on to the shim, and what it could not remove goes once the shim
// answers again.
func TestStopEndsWhenShimIsStuck(t *testing.T) {
	e := setup(t)
	defer func(d, k time.Duration) { taskCallTimeout, killWait = d, k }(taskCallTimeout, killWait)
	taskCallTimeout, killWait = time.Second, time.Second

	inst := start(t, e, Spec{Function: "stuckshim", Image: e.refs[images.Echo], MemoryMB: 128})
	shim := shimOf(t, inst)
	if err := unix.Kill(shim, unix.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			unix.Kill(shim, unix.SIGCONT)
		}
	}
	t.Cleanup(resume)

	err := stopWithin(t, inst, resume, "on a shim that answers nothing")
	if err == nil || !strings.Contains(err.Error(), "did not answer") {
		t.Errorf("Stop: %v, want it to say containerd did not answer", err)
	}

	resume()
	ctx := e.mgr.nsCtx(context.Background())
	if c, err := e.client.LoadContainer(ctx, inst.ID()); err == nil {
		if task, err := c.Task(ctx, nil); err == nil {
			if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil {
				t.Errorf("delete task: %v", err)
			}
		}
		if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil {
			t.Errorf("delete container: %v", err)
		}
	}
}

// TestCleanupEndsWhenShimIsStuck is TestCleanupAfterCrash with the
// instance's shim stopped: the next run's Cleanup must end all the same,
// the container gone with its shim.
func TestCleanupEndsWhenShimIsStuck(t *testing.T) {
	e := setup(t)
	defer func(d time.Duration) { taskCallTimeout = d }(taskCallTimeout)
	taskCallTimeout = time.Second

	inst := start(t, e, Spec{Function: "crashstuck", Image: e.refs[images.Echo], MemoryMB: 128})
	shim := shimOf(t, inst)
	if err := unix.Kill(shim, unix.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Harmless once Cleanup killed it; else it lets the test end.
	t.Cleanup(func() { unix.Kill(shim, unix.SIGCONT) })

	m2, err := NewManager(e.client, e.mgr.opts)
	if err != nil {
		t.Fatal(err)
	}
	cleaned := make(chan error, 1)
	go func() { cleaned <- m2.Cleanup(context.Background()) }()
	select {
	case err := <-cleaned:
		if err != nil {
			t.Fatalf("Cleanup: %v", err)
		}
	case <-time.After(time.Minute):
		unix.Kill(shim, unix.SIGCONT)
		<-cleaned
		t.Fatal("Cleanup still ran a minute later, on a stuck shim")
	}
	if err := e.puller.RemoveViews(context.Background()); err != nil {
		t.Fatalf("RemoveViews: %v", err)
	}
	assertGone(t, e, inst.ID())
	afterCrash(t, e, inst)
}

// TestDoneWhenShimIsKilled kills an instance's shim: containerd then
// deletes the task, and the instance must end (Done), not be waited on
// for ever; Stop removes the rest.
func TestDoneWhenShimIsKilled(t *testing.T) {
	e := setup(t)
	inst := start(t, e, Spec{Function: "shimkilled", Image: e.refs[images.Echo], MemoryMB: 128})
	shim := shimOf(t, inst)
	if err := unix.Kill(shim, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-inst.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("Done not closed 30s after the instance's shim was killed")
	}
	if st := inst.Exit(); st.Reason != ReasonExited || st.Code != -1 {
		t.Errorf("exit: %+v, want exited with an unknown code", st)
	}
	if err := stopWithin(t, inst, func() {}, "after its shim was killed"); err != nil {
		t.Errorf("Stop: %v", err)
	}
	assertGone(t, e, inst.ID())
}

// TestStartCancelledAtTaskStart cancels Start's context as it asks the
// runtime to start the task, at several delays into the call, as fcd's
// shutdown does to the starts in flight: Start must end soon, with
// nothing of the instance left.
func TestStartCancelledAtTaskStart(t *testing.T) {
	e := setup(t)
	defer func() { testHookTaskStart = nil }()
	for k, d := range []time.Duration{0, time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond, 8 * time.Millisecond, 16 * time.Millisecond} {
		id := fmt.Sprintf("cancelstart%d-%d", k, time.Now().UnixNano())
		ctx, cancel := context.WithCancel(context.Background())
		testHookTaskStart = func(string) {
			go func() {
				time.Sleep(d)
				cancel()
			}()
		}
		started := make(chan error, 1)
		var inst *Instance
		go func() {
			var err error
			inst, err = e.mgr.Start(ctx, Spec{ID: id, Function: "cancelstart", Image: e.refs[images.Echo], MemoryMB: 128})
			started <- err
		}()
		select {
		case err := <-started:
			if err == nil {
				// The start beat the cancellation.
				if err := inst.Stop(context.Background()); err != nil {
					t.Errorf("cancelled %s into the task's start: Stop: %v", d, err)
				}
			} else if !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled %s into the task's start: Start: %v, want context.Canceled", d, err)
			}
		case <-time.After(time.Minute):
			t.Fatalf("cancelled %s into the task's start: Start still runs a minute later", d)
		}
		cancel()
		assertGone(t, e, id)
	}
}

// TestStopDuringStart stops an instance as Start is about to start its
// task, as Manager.Close does at shutdown to the starts in flight. Stop
// must end the start, which reports its cancellation, rather than race
// it, and nothing of the instance may be left. Raced, Stop killed the
// task's init between the runtime's create and start, and crun's start
// waited forever for it (a CI run hung 25 minutes so).
func TestStopDuringStart(t *testing.T) {
	e := setup(t)
	defer func() { testHookTaskStart = nil }()
	id := fmt.Sprintf("stopstart-%d", time.Now().UnixNano())
	stopped := make(chan error, 1)
	testHookTaskStart = func(got string) {
		if got != id {
			return
		}
		for _, i := range e.mgr.Instances() {
			if i.ID() == id {
				go func() { stopped <- i.Stop(context.Background()) }()
			}
		}
		// Time for a racing Stop's signals to reach the task.
		time.Sleep(300 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	started := make(chan error, 1)
	go func() {
		_, err := e.mgr.Start(ctx, Spec{ID: id, Function: "stopstart", Image: e.refs[images.Echo], MemoryMB: 128})
		started <- err
	}()
	select {
	case err := <-started:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Start: %v, want it cancelled by the Stop", err)
		}
	case <-time.After(time.Minute):
		killRuntimeStart(t, id)
		t.Fatal("Start still runs a minute after Stop began")
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Stop: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Stop still runs a minute after Start ended")
	}
	assertGone(t, e, id)
}

// killRuntimeStart kills the runtime's start of container id, when it
// hangs, so that its shim serves the tests that follow.
func killRuntimeStart(t *testing.T, id string) {
	entries, _ := os.ReadDir("/proc")
	for _, en := range entries {
		pid, err := strconv.Atoi(en.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(string(b), "\x00")
		if slices.Contains(args, "start") && slices.Contains(args, id) {
			t.Logf("killing the runtime's start of %s, pid %d: %q", id, pid, args)
			unix.Kill(pid, unix.SIGKILL)
		}
	}
}
