package instance

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fcd-dev/fcd/internal/testenv"
)

func TestTasksFile(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"pids/fcd", "systemd/user.slice", "cpu,cpuacct"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, d, "tasks"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, cgroup, want string
	}{
		{"first existing v1 hierarchy", "12:memory:/gone\n8:pids:/fcd\n1:cpu,cpuacct:/\n0::/x\n", "pids/fcd/tasks"},
		{"named hierarchy", "9:name=systemd:/user.slice\n", "systemd/user.slice/tasks"},
		{"joined controllers", "2:cpu,cpuacct:/\n", "cpu,cpuacct/tasks"},
		{"cgroup v2 only", "0::/fcd\n", ""},
		{"nothing mounted", "4:memory:/\n", ""},
		{"garbage", "not a cgroup line\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want != "" {
				want = filepath.Join(root, want)
			}
			if got := tasksFile(root, []byte(tt.cgroup)); got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

// TestAttachWarmer holds the warmer on this host's v1 hierarchies: it
// writes while held, stops with the last release, and leaves every thread
// of the process in the cgroups it was in.
func TestAttachWarmer(t *testing.T) {
	testenv.RequireRoot(t)
	w := newAttachWarmer(cgroupRoot)
	testenv.Require(t, w != nil, "no cgroup v1 hierarchy mounted under "+cgroupRoot)
	before, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	release1 := w.hold()
	release2 := w.hold()
	w.mu.Lock()
	done := w.done
	w.mu.Unlock()
	release1()
	release1() // idempotent: the second hold still holds
	select {
	case <-done:
		t.Fatal("writer stopped while a hold remained")
	default:
	}
	release2()
	<-done
	if w.off.Load() {
		t.Fatal("a write failed")
	}
	if n := w.writes.Load(); n < 1 {
		t.Errorf("writes: got %d, want at least 1", n)
	}
	after, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Errorf("cgroups changed:\n%s\nwant\n%s", after, before)
	}
	if r := (*attachWarmer)(nil).hold(); r == nil {
		t.Error("nil warmer: got nil release")
	} else {
		r()
	}
}
