package instance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The Manager's footprint on the host outside containerd: the firewall of
// its bridge and the parent cgroup of its instances (/<Name> in every
// hierarchy), which caps their processes together. prepareHost sets both
// up before the first instance; cleanupHost removes them and whatever an
// earlier process of the same name left there.

// hostState records the set-up of the cgroup parent by this Manager.
type hostState struct {
	mu   sync.Mutex
	done bool
}

// cgroupRoot is where the cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// prepareHost installs the firewall and the instances' parent cgroup with
// its pids limit. It is cheap once done.
func (m *Manager) prepareHost(ctx context.Context) error {
	if err := m.net.firewall.ensure(ctx); err != nil {
		return err
	}
	m.host.mu.Lock()
	defer m.host.mu.Unlock()
	if m.host.done {
		return nil
	}
	if err := m.cgroupParent(); err != nil {
		return err
	}
	m.host.done = true
	return nil
}

// closeHost removes the instances' parent cgroup; the instances are
// already stopped. (The firewall goes with the network.)
func (m *Manager) closeHost(ctx context.Context) error {
	return removeCgroups(ctx, m.opts.Name)
}

// cgroupParent creates the parent cgroup of the Manager's instances in
// the pids hierarchy and sets its pids.max to Options.TotalPids.
func (m *Manager) cgroupParent() error {
	limit := strconv.Itoa(m.opts.TotalPids)
	root := filepath.Join(cgroupRoot, "pids")
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil {
		// cgroup v2: the controller must be enabled for the root's
		// children; it usually is.
		root = cgroupRoot
		_ = os.WriteFile(filepath.Join(root, "cgroup.subtree_control"), []byte("+pids"), 0)
	}
	dir := filepath.Join(root, m.opts.Name)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("instances' cgroup: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pids.max"), []byte(limit), 0); err != nil {
		return fmt.Errorf("instances' cgroup: pids.max: %w", err)
	}
	return nil
}

// removeUnusedHost removes the firewall and the instances' parent cgroup
// an earlier process of the same name set up, unless this Manager has set
// them up for itself meanwhile.
func (m *Manager) removeUnusedHost(ctx context.Context) error {
	var errs []error
	m.host.mu.Lock()
	if !m.host.done {
		errs = append(errs, removeCgroups(ctx, m.opts.Name))
	}
	m.host.mu.Unlock()
	errs = append(errs, m.net.firewall.removeUnlessInstalled(ctx))
	return errors.Join(errs...)
}

// shimPIDs returns the processes of containerd shims serving namespace ns.
func shimPIDs(ns string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if isShimOf(bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0}), ns) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// isShimOf reports whether argv is a containerd shim's serving ns, as
// containerd starts them: containerd-shim-<runtime> -namespace ns -id ...
func isShimOf(argv [][]byte, ns string) bool {
	if len(argv) == 0 || !strings.HasPrefix(filepath.Base(string(argv[0])), "containerd-shim") {
		return false
	}
	for i := 0; i+1 < len(argv); i++ {
		if string(argv[i]) == "-namespace" || string(argv[i]) == "--namespace" {
			return string(argv[i+1]) == ns
		}
	}
	return false
}

// cgroupDirs returns the directories of cgroup name in every mounted
// hierarchy that has one: /sys/fs/cgroup/name on cgroup v2,
// /sys/fs/cgroup/<controller>/name on v1.
func cgroupDirs(name string) []string {
	var dirs []string
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil {
		dirs = append(dirs, filepath.Join(cgroupRoot, name))
	} else {
		entries, _ := os.ReadDir(cgroupRoot)
		seen := map[string]bool{}
		for _, e := range entries {
			// cpu and cpuacct may be one hierarchy under two names.
			real, err := filepath.EvalSymlinks(filepath.Join(cgroupRoot, e.Name()))
			if err != nil || seen[real] {
				continue
			}
			seen[real] = true
			dirs = append(dirs, filepath.Join(real, name))
		}
	}
	out := dirs[:0]
	for _, d := range dirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			out = append(out, d)
		}
	}
	return out
}

// removeCgroups kills every process left in cgroup name's descendants,
// then removes them and name itself, in every hierarchy.
func removeCgroups(ctx context.Context, name string) error {
	var errs []error
	for _, d := range cgroupDirs(name) {
		errs = append(errs, removeCgroup(ctx, d))
	}
	return errors.Join(errs...)
}

// removeCgroup kills every process in cgroup dir and its descendants,
// then removes them, deepest first.
func removeCgroup(ctx context.Context, dir string) error {
	// Frozen processes cannot fork while they are being killed.
	frozen := os.WriteFile(filepath.Join(dir, "freezer.state"), []byte("FROZEN"), 0) == nil
	// cgroup v2 kills the whole subtree at once.
	_ = os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
	for _, pid := range cgroupProcs(dir) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if frozen {
		_ = os.WriteFile(filepath.Join(dir, "freezer.state"), []byte("THAWED"), 0)
	}
	return removeCgroupTree(ctx, dir)
}

// cgroupProcs returns the processes in dir and its descendants.
func cgroupProcs(dir string) []int {
	var pids []int
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}

// removeCgroupTree removes dir and its descendant cgroups, deepest first,
// retrying while killed processes are still exiting (EBUSY).
func removeCgroupTree(ctx context.Context, dir string) error {
	var tree []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			tree = append(tree, p)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for i := len(tree) - 1; i >= 0; i-- {
		for delay := 10 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
			err := syscall.Rmdir(tree[i])
			if err == nil || errors.Is(err, syscall.ENOENT) {
				break
			}
			if !errors.Is(err, syscall.EBUSY) {
				return fmt.Errorf("remove cgroup %s: %w", tree[i], err)
			}
			for _, pid := range cgroupProcs(tree[i]) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("remove cgroup %s: %w", tree[i], err)
			case <-time.After(delay):
			}
		}
	}
	return nil
}
