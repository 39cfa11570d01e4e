package instance

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/fcd-dev/fcd/internal/testenv"
)

// TestRemoveOrphans leaves what a containerd killed mid-start can leave:
// a shim of the namespace and a process in an instance cgroup.
func TestRemoveOrphans(t *testing.T) {
	testenv.RequireRoot(t)
	const name = "fcdorphantest"
	hier := "/sys/fs/cgroup/memory"
	if _, err := os.Stat(filepath.Join(hier, "cgroup.procs")); err != nil {
		hier = "/sys/fs/cgroup" // cgroup v2
	}
	cg := filepath.Join(hier, name, "inst1")
	if err := os.MkdirAll(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(cg); os.Remove(filepath.Join(hier, name)) })
	start := func(args ...string) *exec.Cmd {
		// sh blocks reading a pipe nobody writes: one process, no child.
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("sh", append([]string{"-c", "read x"}, args...)...)
		cmd.Stdin = r
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r.Close()
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); w.Close() })
		return cmd
	}
	shim := start("containerd-shim-runc-v2", "-namespace", name, "-id", "inst1")
	other := start("containerd-shim-runc-v2", "-namespace", name+"x", "-id", "inst1")
	fn := start("function")
	if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(fn.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := removeOrphans(name); err != nil {
		t.Fatal(err)
	}
	for what, cmd := range map[string]*exec.Cmd{"shim": shim, "process in the cgroup": fn} {
		if err := cmd.Wait(); err == nil {
			t.Errorf("the %s exited by itself, want it killed", what)
		}
	}
	if _, err := os.Stat(cg); !os.IsNotExist(err) {
		t.Errorf("cgroup %s still exists (%v)", cg, err)
	}
	if other.ProcessState != nil {
		t.Errorf("another namespace's shim was killed")
	}
}
