package instance

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// crunSeccompAnnotation hands crun a compiled seccomp filter: the base64
// of the sock_filter array it passes to seccomp(SECCOMP_SET_MODE_FILTER)
// instead of compiling the spec's profile itself. The spec's profile
// stays in place for every other reader.
const crunSeccompAnnotation = "run.oci.seccomp_bpf_data"

// ptraceSeccompGetFilter is PTRACE_SECCOMP_GET_FILTER (linux/ptrace.h),
// which x/sys/unix does not wrap.
const ptraceSeccompGetFilter = 0x420c

// seccompFilters remembers, per seccomp profile, the BPF program crun
// compiled from it, so later creates skip the compilation: libseccomp
// takes 15-20 ms of a crun create here for containerd's default profile
// (three architectures, ~1000 instructions), most of crun's own work.
//
// fcd has no seccomp compiler of its own (libseccomp is C, and the filter
// must be the one crun would make). It reads the program crun installed
// in a started instance's process back with PTRACE_SECCOMP_GET_FILTER,
// and only when that process holds exactly one filter: crun installs one,
// so a second would be the function's own and the program is not taken.
// The program depends on the profile and on crun's libseccomp, both fixed
// for a Manager's life; the key is the profile's JSON.
type seccompFilters struct {
	mu    sync.Mutex
	progs map[[sha256.Size]byte]string // profile digest -> base64 program
	// first is closed when the first program is learnt.
	first     chan struct{}
	firstOnce sync.Once
}

func newSeccompFilters() *seccompFilters {
	return &seccompFilters{progs: map[[sha256.Size]byte]string{}, first: make(chan struct{})}
}

// profileKey digests s's seccomp profile; ok is false when it has none.
func profileKey(s *specs.Spec) (key [sha256.Size]byte, ok bool) {
	if s.Linux == nil || s.Linux.Seccomp == nil {
		return key, false
	}
	b, err := json.Marshal(s.Linux.Seccomp)
	if err != nil {
		return key, false
	}
	return sha256.Sum256(b), true
}

// annotate gives s the compiled program of its profile when one is known,
// and reports whether it did. A nil f annotates nothing.
func (f *seccompFilters) annotate(s *specs.Spec) bool {
	if f == nil {
		return false
	}
	key, ok := profileKey(s)
	if !ok {
		return false
	}
	f.mu.Lock()
	prog, ok := f.progs[key]
	f.mu.Unlock()
	if !ok {
		return false
	}
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[crunSeccompAnnotation] = prog
	return true
}

// known reports whether s's profile has a program already.
func (f *seccompFilters) known(s *specs.Spec) bool {
	key, ok := profileKey(s)
	if !ok {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok = f.progs[key]
	return ok
}

// learn reads the filter of process pid, created from spec s without the
// annotation in cgroup (see readSeccompFilter), and keeps it for s's
// profile.
func (f *seccompFilters) learn(s *specs.Spec, pid int, cgroup string) error {
	key, ok := profileKey(s)
	if !ok {
		return nil
	}
	prog, err := readSeccompFilter(pid, cgroup)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.progs[key] = base64.StdEncoding.EncodeToString(prog)
	f.mu.Unlock()
	f.firstOnce.Do(func() { close(f.first) })
	return nil
}

// errFilterCount is returned when a process does not hold exactly one
// seccomp filter.
var errFilterCount = errors.New("process does not hold exactly one seccomp filter")

// readSeccompFilter returns the only seccomp filter of process pid as its
// raw sock_filter array. It stops the process for the few microseconds
// of the read (PTRACE_SEIZE, PTRACE_INTERRUPT) and lets it go again.
//
// The process must be in cgroup (a path such as "/fcd/<instance id>",
// matched at the end of /proc/<pid>/cgroup's paths), checked while it is
// stopped, when its pid cannot be another's: pid was an instance's when
// the caller looked, and a process that took that pid since would
// otherwise lend its own filter to every later instance of the profile.
//
// While fcd traces the process, its exit is reported to fcd, not to its
// parent (the shim): the shim sees it only once fcd has waited for it.
// An instance that exits during the read, as one may at any time, would
// otherwise be a zombie nobody reaps, its task never exited. So every way
// out of the trace either detaches from the process in a stop or reaps
// its exit (see untrace).
func readSeccompFilter(pid int, cgroup string) ([]byte, error) {
	// ptrace requests come from the tracing thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.PtraceSeize(pid); err != nil {
		return nil, fmt.Errorf("seize %d: %w", pid, err)
	}
	traceStep("seized", pid)
	if err := unix.PtraceInterrupt(pid); err != nil {
		// Seized yet gone: it is exiting.
		return nil, errors.Join(fmt.Errorf("interrupt %d: %w", pid, err), reapTracee(pid))
	}
	ws, err := waitTracee(pid)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("wait %d: %w", pid, err), reapTracee(pid))
	}
	if !ws.Stopped() {
		// Its exit, which this wait reaped: the shim is told now.
		return nil, fmt.Errorf("process %d ended before it stopped: %v", pid, describeWait(ws))
	}
	traceStep("stopped", pid)
	if err := inCgroup(pid, cgroup); err != nil {
		return nil, errors.Join(err, untrace(pid, ws))
	}
	prog, err := readStoppedFilter(pid)
	return prog, errors.Join(err, untrace(pid, ws))
}

// inCgroup returns nil when one of process pid's cgroups (in any
// hierarchy) is cgroup, an absolute path.
func inCgroup(pid int, cgroup string) error {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return err
	}
	// Lines are "hierarchy-id:controllers:path". fcd in a cgroup
	// namespace of its own sees paths relative to its root: the path
	// then ends with cgroup.
	for _, l := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) == 3 && strings.HasPrefix(cgroup, "/") && strings.HasSuffix(parts[2], cgroup) {
			return nil
		}
	}
	return fmt.Errorf("process %d is not in cgroup %s", pid, cgroup)
}

// readStoppedFilter reads the only filter of the stopped tracee pid.
func readStoppedFilter(pid int) ([]byte, error) {
	// Index 0 is the oldest filter; a second one means the process
	// installed filters of its own.
	n, err := seccompGetFilter(pid, 0, nil)
	if err != nil {
		return nil, fmt.Errorf("read filter of %d: %w", pid, err)
	}
	if _, err := seccompGetFilter(pid, 1, nil); !errors.Is(err, unix.ENOENT) {
		return nil, errFilterCount
	}
	prog := make([]byte, n*int(unsafe.Sizeof(unix.SockFilter{})))
	if _, err := seccompGetFilter(pid, 0, prog); err != nil {
		return nil, fmt.Errorf("read filter of %d: %w", pid, err)
	}
	return prog, nil
}

// untrace lets the tracee pid, stopped as ws says, go on. A stop for a
// signal being delivered (rather than PTRACE_INTERRUPT's, or a group
// stop) hands that signal back, which a bare PTRACE_DETACH would drop. A
// tracee that is no longer stopped was killed (a thread of it called
// exit_group, or the instance was stopped): its exit is reaped instead.
func untrace(pid int, ws unix.WaitStatus) error {
	err := detach(pid, ws)
	if errors.Is(err, unix.ESRCH) {
		return reapTracee(pid)
	}
	return err
}

// detach is PTRACE_DETACH of the tracee pid in the stop ws, handing back
// the signal of a signal-delivery stop.
func detach(pid int, ws unix.WaitStatus) error {
	var sig unix.Signal
	if event := int(ws>>16) & 0xff; event != unix.PTRACE_EVENT_STOP {
		sig = ws.StopSignal()
	}
	_, _, errno := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_DETACH, uintptr(pid), 0, uintptr(sig), 0, 0)
	if errno != 0 {
		return fmt.Errorf("detach %d: %w", pid, errno)
	}
	return nil
}

// reapTracee waits until the dying tracee pid has exited. The tracer's
// wait passes the zombie on to its parent, which then reaps it.
func reapTracee(pid int) error {
	for {
		ws, err := waitTracee(pid)
		switch {
		case errors.Is(err, unix.ECHILD):
			return nil // not (or no longer) traced by fcd
		case err != nil:
			return fmt.Errorf("reap tracee %d: %w", pid, err)
		case ws.Exited() || ws.Signaled():
			return nil
		case ws.Stopped():
			// Alive after all, and stopped: let it go.
			if err := detach(pid, ws); !errors.Is(err, unix.ESRCH) {
				return err
			}
		}
	}
}

// waitTracee waits for the next state change of the tracee pid.
func waitTracee(pid int) (unix.WaitStatus, error) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, unix.WALL, nil)
		if err != unix.EINTR {
			return ws, err
		}
	}
}

func describeWait(ws unix.WaitStatus) string {
	if ws.Signaled() {
		return "killed by " + unix.SignalName(ws.Signal())
	}
	return fmt.Sprintf("exit status %d", ws.ExitStatus())
}

// traceStep, when a test sets it, runs at each step of
// readSeccompFilter's trace ("seized", "stopped") with the tracee's pid.
var traceStep = func(step string, pid int) {}

// seccompGetFilter is PTRACE_SECCOMP_GET_FILTER: it copies filter index of
// the stopped tracee pid into buf (when not empty) and returns its length
// in instructions.
func seccompGetFilter(pid, index int, buf []byte) (int, error) {
	var p uintptr
	if len(buf) > 0 {
		p = uintptr(unsafe.Pointer(&buf[0]))
	}
	n, _, errno := unix.Syscall6(unix.SYS_PTRACE, ptraceSeccompGetFilter, uintptr(pid), uintptr(index), p, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
