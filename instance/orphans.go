package instance

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// removeOrphans kills what a containerd that died mid-request can leave
// outside its own records, so Cleanup's pass over containers and tasks
// does not see it: shims of fcd's namespace (name) and the processes in
// the instance cgroups under /<name>/, whose directories it then removes.
// Cleanup calls it once every container of the namespace is gone, so
// whatever is left is an orphan.
func removeOrphans(name string) error {
	var errs []error
	killShims(name)
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*/" + name)
	if fi, err := os.Stat("/sys/fs/cgroup/" + name); err == nil && fi.IsDir() {
		hierarchies = append(hierarchies, "/sys/fs/cgroup/"+name)
	}
	for _, parent := range hierarchies {
		ents, err := os.ReadDir(parent)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if e.IsDir() {
				if err := removeCgroup(filepath.Join(parent, e.Name())); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// killShims kills containerd-shim processes serving namespace name.
func killShims(name string) {
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	want := []byte("\x00-namespace\x00" + name + "\x00")
	for _, f := range cmdlines {
		b, err := os.ReadFile(f)
		if err != nil || !bytes.Contains(b, want) || !bytes.Contains(b, []byte("containerd-shim")) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(f))); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// removeCgroup kills the processes of cgroup dir and removes it, waiting
// up to a second for them to exit.
func removeCgroup(dir string) error {
	var err error
	for i := 0; i < 100; i++ {
		procs, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		for _, p := range strings.Fields(string(procs)) {
			if pid, err := strconv.Atoi(p); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if err = os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("remove leftover cgroup %s: %w", dir, err)
}
