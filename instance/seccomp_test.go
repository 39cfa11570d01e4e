package instance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fcd-dev/fcd/examples/images"
	"github.com/fcd-dev/fcd/internal/testenv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestCrunSeccompFilter starts instances with crun: the first teaches the
// Manager the filter crun compiled from its profile, the next is created
// with that filter (the annotation) and its process holds the very same
// program, so skipping the compilation leaves the sandbox as it was.
func TestCrunSeccompFilter(t *testing.T) {
	e := setup(t)
	testenv.RequireCommand(t, RuntimeCrun, "crun")
	testenv.Require(t, CheckRuntime(RuntimeCrun) == nil, "crun cannot run here: run scripts/cgroup-controllers.sh (make deps)")
	defer useRuntime(e.mgr, e.mgr.opts.Runtime, e.mgr.seccomp != nil)
	useRuntime(e.mgr, RuntimeCrun, true)

	first := start(t, e, Spec{Function: "seccomp", Image: e.refs[images.Echo], MemoryMB: 128})
	if first.teach == nil {
		t.Fatal("first crun start: no spec to learn the filter from, want one")
	}
	waitFilter(t, e.mgr)
	want, err := readSeccompFilter(int(first.task.Pid()), cgroupPath(e.mgr.opts.Name, first.spec.ID))
	if err != nil {
		t.Fatal(err)
	}

	second := start(t, e, Spec{Function: "seccomp", Image: e.refs[images.Echo], MemoryMB: 128})
	if second.teach != nil {
		t.Error("second crun start would learn the filter again, want it given")
	}
	s, err := second.container.Spec(e.mgr.nsCtx(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	given, err := base64.StdEncoding.DecodeString(s.Annotations[crunSeccompAnnotation])
	if err != nil || !bytes.Equal(given, want) {
		t.Errorf("annotation %s: got %d bytes (err %v), want the first instance's %d-byte filter", crunSeccompAnnotation, len(given), err, len(want))
	}
	got, err := readSeccompFilter(int(second.task.Pid()), cgroupPath(e.mgr.opts.Name, second.spec.ID))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("filter of the second instance: got %d bytes, want the first's %d bytes, identical", len(got), len(want))
	}
	// The instance still serves.
	if body := get(t, "http://"+second.Addr()+"/"); len(body) == 0 {
		t.Error("second instance: empty answer")
	}
}

func TestSeccompFiltersAnnotate(t *testing.T) {
	profile := func(action specs.LinuxSeccompAction) *specs.Spec {
		return &specs.Spec{Linux: &specs.Linux{Seccomp: &specs.LinuxSeccomp{DefaultAction: action}}}
	}
	f := newSeccompFilters()
	s := profile(specs.ActErrno)
	if f.annotate(s) || s.Annotations[crunSeccompAnnotation] != "" {
		t.Fatal("annotate with nothing learnt: got an annotation, want none")
	}
	key, _ := profileKey(s)
	f.progs[key] = "cHJvZw=="
	if !f.annotate(s) || s.Annotations[crunSeccompAnnotation] != "cHJvZw==" {
		t.Errorf("annotate: got %q, want the learnt program", s.Annotations[crunSeccompAnnotation])
	}
	if other := profile(specs.ActKill); f.annotate(other) {
		t.Error("annotate of another profile: got the learnt program, want none")
	}
	if none := (&specs.Spec{Linux: &specs.Linux{}}); f.annotate(none) || !f.known(none) {
		t.Error("spec without a profile: got annotated or unknown, want neither")
	}
	var nilFilters *seccompFilters
	if nilFilters.annotate(s) {
		t.Error("nil filters: got an annotation, want none")
	}
}

func TestCheckUnified(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, content string
		wantErr       bool
	}{
		{"empty unified hierarchy", "\n", false},
		{"controllers in the unified hierarchy", "hugetlb misc\n", true},
		{"not hybrid", "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-"))
			if c.content != "" {
				if err := os.WriteFile(path, []byte(c.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := checkUnified(path)
			if (err != nil) != c.wantErr {
				t.Fatalf("got %v, want error %v", err, c.wantErr)
			}
			if err != nil && (!errors.Is(err, ErrMissingDependency) || !strings.Contains(err.Error(), "hugetlb, misc")) {
				t.Errorf("got %v, want ErrMissingDependency naming hugetlb, misc", err)
			}
		})
	}
	if err := CheckRuntime(RuntimeRunc); err != nil {
		t.Errorf("CheckRuntime(runc): got %v, want nil", err)
	}
}

// TestReadSeccompFilterLetsGo traces processes that are killed or
// signalled in the middle of the read, as an instance may be: whatever
// happens, the process's parent (here a shell, for an instance its shim)
// still learns how it ended, and a signal that arrived during the read is
// still delivered. A lost exit leaves the task running forever for
// containerd; a lost signal leaves a SIGTERM unanswered.
func TestReadSeccompFilterLetsGo(t *testing.T) {
	tests := []struct {
		name   string
		step   string // the trace step at which act runs
		act    func(t *testing.T, pid int)
		then   func(t *testing.T, pid int) // after the read, if set
		cgroup string                      // the instance's cgroup, if not the process's own
		want   string                      // the shell's report
	}{
		{name: "killed while stopped", step: "stopped", want: "reaped 137",
			act: func(t *testing.T, pid int) { kill(t, pid, unix.SIGKILL) }},
		{name: "killed while seized", step: "seized", want: "reaped 137",
			act: func(t *testing.T, pid int) { kill(t, pid, unix.SIGKILL) }},
		{name: "signal being delivered", step: "seized", want: "reaped 143",
			act: func(t *testing.T, pid int) {
				kill(t, pid, unix.SIGTERM)
				// The signal's delivery stops the tracee ('t') before
				// PTRACE_INTERRUPT is asked for.
				waitState(t, pid, 't')
			}},
		{name: "left running", want: "reaped 143",
			then: func(t *testing.T, pid int) {
				waitState(t, pid, 'S')
				kill(t, pid, unix.SIGTERM)
			}},
		// The pid is another process's now (a reused pid): its filter is
		// not read, and it is left as it was.
		{name: "another process", cgroup: "/fcd-test/0123456789abcdef", want: "reaped 143",
			then: func(t *testing.T, pid int) {
				waitState(t, pid, 'S')
				kill(t, pid, unix.SIGTERM)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("sh", "-c", `sleep 60 & echo $!; wait $!; echo "reaped $?"`)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			lines := make(chan string, 2)
			go func() {
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			pid, err := strconv.Atoi(readLine(t, lines))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { unix.Kill(pid, unix.SIGKILL) })

			old := traceStep
			t.Cleanup(func() { traceStep = old })
			traceStep = func(step string, p int) {
				if step == tt.step && p == pid {
					tt.act(t, pid)
				}
			}
			cgroup := tt.cgroup
			if cgroup == "" {
				cgroup = ownCgroup(t, pid)
			}
			_, err = readSeccompFilter(pid, cgroup)
			t.Logf("read: %v", err) // sleep holds no filter: an error either way
			if tt.cgroup != "" && (err == nil || !strings.Contains(err.Error(), "is not in cgroup")) {
				t.Errorf("read of a process outside %s: got %v, want it refused", tt.cgroup, err)
			}
			traceStep = old
			if tt.then != nil {
				tt.then(t, pid)
			}
			if got := readLine(t, lines); got != tt.want {
				t.Errorf("the shell reported %q, want %q", got, tt.want)
			}
		})
	}
}

func kill(t *testing.T, pid int, sig unix.Signal) {
	t.Helper()
	if err := unix.Kill(pid, sig); err != nil {
		t.Fatalf("kill %d %v: %v", pid, sig, err)
	}
}

// readLine returns the next line of lines, failing after 10 s.
func readLine(t *testing.T, lines <-chan string) string {
	t.Helper()
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatal("the shell ended without a line")
		}
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("no line from the shell in 10 s")
	}
	return ""
}

// waitState waits up to 10 s for process pid's state (/proc/pid/stat) to
// be state.
func waitState(t *testing.T, pid int, state byte) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var got byte
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
			if got = b[i+2]; got == state {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("process %d: state %q after 10 s, want %q", pid, got, state)
}

// ownCgroup returns a cgroup of process pid (its first hierarchy's path).
func ownCgroup(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	parts := strings.SplitN(first, ":", 3)
	if len(parts) != 3 {
		t.Fatalf("/proc/%d/cgroup: %q", pid, b)
	}
	return parts[2]
}
