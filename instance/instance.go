package instance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ExitStatus describes how an instance ended. It is valid once Done is
// closed.
type ExitStatus struct {
	// Code is the process's exit code; 128+n for a signal n; -1 when
	// the process is still running (an unhealthy instance) or unknown.
	Code int
	// OOMKilled is true when the kernel killed a process of the instance
	// for passing its memory limit. An exit code of 137 alone is not OOM.
	OOMKilled bool
	// At is when the exit was noticed.
	At time.Time
	// Reason is "exited", "oom", "unhealthy" or "stopped".
	Reason string
}

// Exit reasons.
const (
	ReasonExited    = "exited"
	ReasonOOM       = "oom"
	ReasonUnhealthy = "unhealthy"
	ReasonStopped   = "stopped"
)

// StartStats are the measured phases of an instance's start.
type StartStats struct {
	// Pull is the image preparation (resolve, fetch, unpack, view).
	Pull PullStats
	// Rootfs is making and mounting the writable layer and overlay.
	Rootfs time.Duration
	// Network is creating the network namespace and its address.
	Network time.Duration
	// Create is creating and starting the container and its task: the
	// sum of Container, Task and TaskStart.
	Create time.Duration
	// Container is building the runtime spec and the container record.
	Container time.Duration
	// Task is creating the task: the shim, the runtime's create (the
	// process set up, stopped before exec) and the log pipes.
	Task time.Duration
	// TaskStart is following the task's exit and starting its process.
	TaskStart time.Duration
	// Ready is from task start until the probe (and initializer) passed.
	Ready time.Duration
	// Total is the whole Start call.
	Total time.Duration

	// When each phase began, counted from the start of the Start call;
	// Pull's own steps (Pull.Resolve, ...) are counted from PullAt.
	PullAt, RootfsAt, NetworkAt, ContainerAt, TaskAt, TaskStartAt, ReadyAt time.Duration
	// FirstResponse is from the start of the Start call until the proxy
	// began answering the request that waited for this start (see
	// Instance.FirstResponse); zero until then, and for a start no
	// request waited for (a provisioned instance).
	FirstResponse time.Duration
}

// Instance is one running container of a function with its own network
// namespace and writable layer.
//
// Lifecycle: Manager.Start returns an Instance once it is ready (its port
// accepts or its health check passes, and its initializer succeeded).
// Done is closed when its process exits or it becomes unhealthy; Exit then
// says how. Stop must be called in every case to release the container,
// writable layer, network namespace and address; it is idempotent.
type Instance struct {
	m     *Manager
	spec  Spec
	addr  netip.AddrPort
	img   Image
	root  rootfs
	log   *instanceLog
	outs  []*lineWriter
	stats StartStats
	// begin is when Start was called, readyAt when it returned;
	// responded is set by the first FirstResponse call.
	begin, readyAt time.Time
	responded      atomic.Bool

	// netID names the instance's network namespace in the network: the
	// instance ID, or the pooled namespace's.
	netID string

	container containerd.Container
	task      containerd.Task
	// teach is the spec whose compiled seccomp filter the instance's
	// process can give the Manager (Manager.learnSeccomp); nil when known.
	teach *specs.Spec
	// shimGroup is the shim group the instance's container joined; ""
	// without Options.ShimGroup or once left.
	shimGroup string

	// loopbackSeen is when the probe first found the server listening on
	// loopback only; the probe goroutine alone uses it.
	loopbackSeen time.Time

	exited chan struct{} // closed when the process has exited
	done   chan struct{} // closed on exit or when unhealthy
	cancel context.CancelFunc

	// started is closed when Manager.Start has returned, its clean-up
	// done, with startErr set; cancelStart cancels the start. Stop ends
	// a start under way this way rather than race it.
	started     chan struct{}
	startErr    error
	cancelStart context.CancelFunc

	mu       sync.Mutex
	stopping bool // set when fcd itself ends the process
	exit     ExitStatus
	doneSet  bool
	stopErr  error
	stopped  chan struct{} // non-nil once Stop started; closed when it ended
}

// ID returns the instance ID.
func (i *Instance) ID() string { return i.spec.ID }

// Function returns the function name.
func (i *Instance) Function() string { return i.spec.Function }

// Spec returns the instance's spec with defaults applied.
func (i *Instance) Spec() Spec { return i.spec }

// Addr returns "ip:port" of the function's server, reachable from the host.
func (i *Instance) Addr() string { return i.addr.String() }

// Done returns a channel closed when the instance's process has exited or
// the instance became unhealthy.
func (i *Instance) Done() <-chan struct{} { return i.done }

// Exit returns how the instance ended; it is the zero ExitStatus before
// Done is closed.
func (i *Instance) Exit() ExitStatus {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.exit
}

// PullStats returns the image pull statistics of this instance's start.
func (i *Instance) PullStats() PullStats { return i.stats.Pull }

// StartStats returns the measured phases of this instance's start.
func (i *Instance) StartStats() StartStats { return i.stats }

// Log appends a line to the function's log under this instance's ID, e.g.
// "FC Invoke Start RequestId: <id>".
func (i *Instance) Log(line string) { writeLog(i.log, time.Now(), StreamFC, line, "", nil) }

// LogTail returns the instance's last log lines.
func (i *Instance) LogTail() []string { return i.log.lastLines() }

// finish records the end of the instance once and closes Done.
func (i *Instance) finish(st ExitStatus) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.doneSet {
		return
	}
	i.doneSet = true
	i.exit = st
	close(i.done)
}

// wait follows the task until its process exits. containerd restarts break
// the wait stream; the wait is then renewed. A task containerd no longer
// knows of has ended: its shim died (containerd then deletes the task and
// its processes), or someone else deleted it.
func (i *Instance) wait(ctx context.Context, first <-chan containerd.ExitStatus) {
	ch := first
	for {
		st := <-ch
		if st.Error() == nil {
			i.exited0(st.ExitCode(), st.ExitTime())
			return
		}
		if taskGone(st.Error()) {
			i.m.log.Warn("instance's task is gone", "function", i.spec.Function, "instance", i.spec.ID, "error", st.Error())
			i.exited0(containerd.UnknownExitStatus, time.Now())
			return
		}
		select {
		case <-ctx.Done():
			i.exited0(containerd.UnknownExitStatus, time.Now())
			return
		case <-time.After(200 * time.Millisecond):
		}
		next, err := i.task.Wait(ctx)
		if err != nil {
			ch = failed(err)
			continue
		}
		ch = next
	}
}

// taskGone reports whether err says containerd does not know the task
// (any more). The client hands a failed wait's error on as gRPC sent it.
func taskGone(err error) bool {
	return errdefs.IsNotFound(err) || errdefs.IsNotFound(errdefs.FromGRPC(err))
}

func failed(err error) <-chan containerd.ExitStatus {
	ch := make(chan containerd.ExitStatus, 1)
	ch <- *containerd.NewExitStatus(containerd.UnknownExitStatus, time.Time{}, err)
	return ch
}

func (i *Instance) exited0(code uint32, at time.Time) {
	if at.IsZero() {
		at = time.Now()
	}
	st := ExitStatus{Code: int(code), At: at, Reason: ReasonExited}
	if code == containerd.UnknownExitStatus {
		st.Code = -1
	}
	if oomKilled(i.m.opts.Name, i.spec.ID) {
		st.OOMKilled, st.Reason = true, ReasonOOM
	}
	i.mu.Lock()
	if i.stopping && !i.doneSet {
		st.Reason = ReasonStopped
	}
	i.mu.Unlock()
	i.finish(st)
	close(i.exited)
	if st.Reason != ReasonStopped {
		i.m.log.Warn("instance exited", "function", i.spec.Function, "instance", i.spec.ID,
			"code", st.Code, "oom", st.OOMKilled)
	}
}

// oomKilled reports whether the kernel OOM-killed a process in the
// instance's memory cgroup. It must run before the task is deleted, which
// removes the cgroup.
func oomKilled(name, id string) bool {
	v1, v2 := memoryCgroupDirs(name, id)
	paths := []string{filepath.Join(v1, "memory.oom_control"), filepath.Join(v2, "memory.events")}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "oom_kill "); ok {
				n, _ := strconv.Atoi(strings.TrimSpace(v))
				return n > 0
			}
		}
	}
	return false
}

// watchHealth runs the health check on a warm instance and marks it
// unhealthy after FailureThreshold consecutive failures.
func (i *Instance) watchHealth(ctx context.Context, h HealthCheck) {
	fails := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-i.done:
			return
		case <-time.After(h.Period):
		}
		err := checkHTTP(ctx, i.m.http, i.Addr(), h)
		if err == nil {
			fails = 0
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if fails++; fails >= h.FailureThreshold {
			i.Log(fmt.Sprintf("FC health check failed %d times: %v", fails, err))
			i.m.log.Warn("instance unhealthy", "function", i.spec.Function, "instance", i.spec.ID, "err", err)
			i.finish(ExitStatus{Code: -1, At: time.Now(), Reason: ReasonUnhealthy})
			return
		}
	}
}

// Stop ends the instance and releases everything it holds: it calls
// GET /pre-stop when the function has a pre-stop hook (bounded by
// PreStopTimeout), sends SIGTERM, waits Options.StopGrace, sends SIGKILL,
// then removes the container, the writable layer and its mounts, the
// network namespace and the address. Stop is idempotent and safe for
// concurrent use: later calls wait for the first and return its result.
//
// Stop of an instance still starting (Manager.Close at shutdown) cancels
// the start and waits for its clean-up instead: a kill between the
// runtime's creation and start of the task ends the init the start is
// about to release, and crun's start then waits forever for it, its shim
// answering nothing more.
func (i *Instance) Stop(ctx context.Context) error {
	if i.started != nil {
		select {
		case <-i.started:
		default:
			i.cancelStart()
			select {
			case <-i.started:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if i.startErr != nil {
			// The start removed what it had made.
			return nil
		}
	}
	i.mu.Lock()
	if i.stopped != nil {
		ch := i.stopped
		i.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		i.mu.Lock()
		defer i.mu.Unlock()
		return i.stopErr
	}
	i.stopped = make(chan struct{})
	i.mu.Unlock()

	err := i.stop(ctx, true)
	i.mu.Lock()
	i.stopErr = err
	close(i.stopped)
	i.mu.Unlock()
	return err
}

func (i *Instance) stop(ctx context.Context, graceful bool) error {
	ctx = i.m.nsCtx(context.WithoutCancel(ctx))
	i.mu.Lock()
	i.stopping = true
	i.mu.Unlock()
	if graceful && i.spec.PreStop && !isClosed(i.exited) {
		if err := hook(ctx, i.m.http, i.Addr(), "GET", "/pre-stop", nil, i.spec.PreStopTimeout); err != nil {
			i.Log("FC PreStop failed: " + err.Error())
		}
	}
	var errs []error
	if i.task != nil {
		if graceful {
			i.signal(ctx, syscall.SIGTERM)
			i.awaitTerm()
		}
		i.signal(ctx, syscall.SIGKILL)
		select {
		case <-i.exited:
		case <-time.After(killWait):
			errs = append(errs, fmt.Errorf("instance %s: process did not exit after SIGKILL", i.spec.ID))
		}
		// Not WithProcessKill: it waits for an exit without end, and ctx
		// has none. An exit that never came (a shim that never saw it)
		// leaves the task running for containerd, which refuses to
		// delete it: Stop reports that, and fcd's next Cleanup removes it.
		dctx, cancel := context.WithTimeout(ctx, taskCallTimeout)
		err := deleteTask(dctx, i.task)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("delete task: %w", shimSilent(dctx, err)))
		}
	}
	if i.cancel != nil {
		i.cancel()
	}
	for _, w := range i.outs {
		w.Flush()
	}
	if i.container != nil {
		// containerd asks the task's shim whether the task is gone.
		dctx, cancel := context.WithTimeout(ctx, taskCallTimeout)
		err := i.container.Delete(dctx)
		cancel()
		if err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete container: %w", shimSilent(dctx, err)))
		}
	}
	errs = append(errs, i.m.release(ctx, i))
	i.finish(ExitStatus{Code: -1, At: time.Now(), Reason: ReasonStopped})
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stop instance %s: %w", i.spec.ID, err)
	}
	return nil
}

// awaitTerm waits, after SIGTERM, for the instance's process to exit,
// at most Options.StopGrace. The process is the init of its PID
// namespace, to which the kernel delivers no signal it has no handler
// for: an application that runs as PID 1 without handling SIGTERM
// (python and node by default) is not ended by it. Once such an init's
// other processes, which the signal went to as well, are gone, nothing
// is left to wait for, and Stop goes on to SIGKILL at once instead of
// after the whole grace.
func (i *Instance) awaitTerm() {
	grace := time.NewTimer(i.m.opts.StopGrace)
	defer grace.Stop()
	pid := int(i.task.Pid())
	if catchesTerm(pid) {
		select {
		case <-i.exited:
		case <-grace.C:
		}
		return
	}
	poll := time.NewTicker(termPoll)
	defer poll.Stop()
	for {
		select {
		case <-i.exited:
			return
		case <-grace.C:
			return
		case <-poll.C:
			if onlyProcess(i.m.opts.Name, i.spec.ID, pid) {
				return
			}
		}
	}
}

// termPoll is how often awaitTerm looks whether an init that ignores
// SIGTERM is alone in its container.
const termPoll = 20 * time.Millisecond

// catchesTerm reports whether process pid has a SIGTERM handler
// (/proc/<pid>/status SigCgt). It says true when it cannot tell, which
// keeps the whole grace.
func catchesTerm(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return true
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "SigCgt:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err != nil || mask&(1<<(syscall.SIGTERM-1)) != 0
		}
	}
	return true
}

// onlyProcess reports whether pid is the only process left in the cgroup
// of instance id of the Manager name. It says false when it cannot tell.
func onlyProcess(name, id string, pid int) bool {
	v1, v2 := memoryCgroupDirs(name, id)
	for _, dir := range []string{v1, v2} {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			continue
		}
		return strings.TrimSpace(string(b)) == strconv.Itoa(pid)
	}
	return false
}

// killWait bounds Stop's wait for the process's exit after SIGKILL.
var killWait = 10 * time.Second

// taskCallTimeout bounds each call of Stop that containerd passes on to
// the task's shim (kill, delete). A shim stuck in its runtime answers
// none of them, and Stop must still end, and say so.
var taskCallTimeout = 30 * time.Second

// shimSilent returns err, saying why when it is ctx's deadline passing.
func shimSilent(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("containerd did not answer within %s, its shim may be stuck: %w", taskCallTimeout, err)
	}
	return err
}

func (i *Instance) signal(ctx context.Context, sig syscall.Signal) {
	if isClosed(i.exited) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, taskCallTimeout)
	defer cancel()
	if err := i.task.Kill(ctx, sig, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		level := slog.LevelDebug
		if ctx.Err() != nil {
			level = slog.LevelWarn
		}
		i.m.log.Log(ctx, level, "signal instance", "instance", i.spec.ID, "signal", sig, "err", shimSilent(ctx, err))
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// ExitError waits, while ctx allows, for the instance's process to end,
// as it does when a request to it breaks off because the process died,
// and then returns an *ExitError saying how it ended. It returns nil when
// the process still runs when ctx ends, or when fcd itself ended it.
func (i *Instance) ExitError(ctx context.Context) error {
	select {
	case <-i.exited:
	case <-ctx.Done():
		return nil
	}
	st := i.Exit()
	if st.Reason == ReasonStopped {
		return nil
	}
	i.awaitOutput(ctx)
	return &ExitError{InstanceID: i.spec.ID, Exit: st, MemoryMB: i.spec.MemoryMB, LogTail: i.log.lastLines()}
}

// awaitOutput waits, while ctx allows, for the output of the instance's
// exited process: its last words may still be on their way through the
// shim, and they are all through once the task's IO is drained. It
// reports whether they are.
func (i *Instance) awaitOutput(ctx context.Context) bool {
	if i.task == nil {
		return false
	}
	io := i.task.IO()
	if io == nil {
		return false
	}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		io.Wait()
	}()
	select {
	case <-drained:
		return true
	case <-ctx.Done():
		return false
	}
}
