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

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// DefaultCleanupWorkers is how many leftovers Leftovers.Remove removes at
// once when given no other bound. Removing one is mostly waiting (for a
// task to die, a shim to answer, a CNI plugin, an unmount), so more
// workers than cores pay off; too many would starve new starts.
const DefaultCleanupWorkers = 8

// Leftovers is what an earlier process of a Manager's name left on the
// host: its generation. Manager.Leftovers lists it before the Manager
// starts its first instance, so everything listed belongs to the earlier
// generation and nothing of the current one is ever in it: container,
// instance and namespace IDs are random and never reused, shims are known
// by process ID and start time, address leases by the ID that holds them.
// Remove can therefore run in the background while the Manager starts new
// instances of the same functions.
type Leftovers struct {
	m          *Manager
	containers []string
	shims      []process
	cgroups    []string          // instance cgroups, in every hierarchy
	instances  []string          // instance IDs with a directory under DataDir/instances
	netns      []string          // namespace IDs under the network's nsDir
	leases     map[string]string // lease file -> the ID that held it
	fifos      []string          // entries of the fifo directory
	tempMounts []string
}

// process is a process known by its ID and its start time, which tells
// it from a later process that reuses the ID.
type process struct {
	pid   int
	start string
}

// Leftovers lists what an earlier process of the same Name left behind:
// containers and tasks in its containerd namespace, shims serving that
// namespace, instance cgroups, writable layers and their mounts, network
// namespaces and address leases, fifo directories and containerd's
// temporary mounts of its snapshots. It only reads; it must be called
// before the first Start, and is cheap (no container is touched).
func (m *Manager) Leftovers(ctx context.Context) (*Leftovers, error) {
	ctx = m.nsCtx(ctx)
	l := &Leftovers{m: m, leases: map[string]string{}}
	containers, err := m.client.Containers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	for _, c := range containers {
		l.containers = append(l.containers, c.ID())
	}
	for _, pid := range shimPIDs(m.opts.Name) {
		if st, ok := startTime(pid); ok {
			l.shims = append(l.shims, process{pid: pid, start: st})
		}
	}
	for _, d := range cgroupDirs(m.opts.Name) {
		subs, _ := os.ReadDir(d)
		for _, s := range subs {
			if s.IsDir() {
				l.cgroups = append(l.cgroups, filepath.Join(d, s.Name()))
			}
		}
	}
	dirs, _ := os.ReadDir(filepath.Join(m.opts.DataDir, "instances"))
	for _, d := range dirs {
		l.instances = append(l.instances, d.Name())
	}
	if l.netns, err = m.net.leftovers(); err != nil {
		return nil, err
	}
	leases, _ := filepath.Glob(filepath.Join(m.net.ipamDir, "*", "*"))
	for _, p := range leases {
		if id, ok := leaseHolder(p); ok {
			l.leases[p] = id
		}
	}
	fifos, _ := os.ReadDir(m.fifoDir())
	for _, f := range fifos {
		l.fifos = append(l.fifos, filepath.Join(m.fifoDir(), f.Name()))
	}
	if l.tempMounts, err = tempMounts(m.opts.DataDir); err != nil {
		return nil, err
	}
	return l, nil
}

// Empty reports whether there is nothing to remove.
func (l *Leftovers) Empty() bool {
	return len(l.containers)+len(l.shims)+len(l.cgroups)+len(l.instances)+len(l.netns)+
		len(l.leases)+len(l.fifos)+len(l.tempMounts) == 0
}

func (l *Leftovers) String() string {
	return fmt.Sprintf("%d containers, %d shims, %d cgroups, %d writable layers, %d network namespaces, %d address leases",
		len(l.containers), len(l.shims), len(l.cgroups), len(l.instances), len(l.netns), len(l.leases))
}

// Remove removes the leftovers, up to workers (<= 0: DefaultCleanupWorkers)
// at a time: first the containers and their tasks, then shims and
// processes containerd no longer knows of with their cgroups, then the
// writable layers, network namespaces and addresses. Nothing the Manager
// started itself is touched. The firewall and the instances' parent
// cgroup go too unless the Manager has set them up for itself by then.
// Image views are the Images implementation's to remove.
func (l *Leftovers) Remove(ctx context.Context, workers int) error {
	if workers <= 0 {
		workers = DefaultCleanupWorkers
	}
	m := l.m
	nctx := m.nsCtx(ctx)
	var errs []error
	each := func(items []string, f func(string) error) {
		g := new(errgroup.Group)
		g.SetLimit(workers)
		errc := make(chan error, len(items))
		for _, it := range items {
			g.Go(func() error {
				errc <- f(it)
				return nil
			})
		}
		_ = g.Wait()
		close(errc)
		for err := range errc {
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	// A container whose shim does not answer is tried again once the
	// earlier run's shims are killed: containerd then forgets its task.
	var mu sync.Mutex
	var stuck []string
	each(l.containers, func(id string) error {
		if err := m.removeContainer(nctx, id); err != nil {
			m.log.Warn("remove leftover container, to be tried again once its shim is killed", "id", id, "error", err)
			mu.Lock()
			stuck = append(stuck, id)
			mu.Unlock()
		}
		return nil
	})
	// Shims and processes containerd no longer knows of, or whose
	// containers did not go, before their mounts and namespaces go.
	n := 0
	for _, p := range l.shims {
		if st, ok := startTime(p.pid); ok && st == p.start && syscall.Kill(p.pid, syscall.SIGKILL) == nil {
			n++
		}
	}
	if n > 0 {
		m.log.Warn("killed leftover containerd shims", "count", n)
	}
	each(stuck, func(id string) error { return m.removeContainer(nctx, id) })
	each(l.cgroups, func(dir string) error { return removeCgroup(ctx, dir) })
	each(l.instances, func(id string) error { return (rootfs{dir: m.instanceDir(id)}).remove() })
	each(l.netns, func(id string) error { return m.net.detach(ctx, id) })
	// Addresses of namespaces that vanished without a CNI DEL.
	if err := removeLeases(l.leases); err != nil {
		errs = append(errs, err)
	}
	for _, f := range l.fifos {
		_ = os.RemoveAll(f)
	}
	for _, p := range l.tempMounts {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount leftover %s: %w", p, err))
			continue
		}
		os.Remove(p)
	}
	if err := m.removeUnusedHost(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// removeContainer deletes container id with its task, killing its
// processes. The calls that reach the task's shim are bounded by
// taskCallTimeout, as Stop's are: a shim stuck in its runtime must not
// hold the clean-up.
func (m *Manager) removeContainer(ctx context.Context, id string) error {
	c, err := m.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load container %s: %w", id, err)
	}
	tctx, cancel := context.WithTimeout(ctx, taskCallTimeout)
	defer cancel()
	t, err := c.Task(tctx, nil)
	switch {
	case err == nil:
		if err := deleteTask(tctx, t, containerd.WithProcessKill); err != nil {
			return fmt.Errorf("delete task %s: %w", id, shimSilent(tctx, err))
		}
	case !errdefs.IsNotFound(err):
		return fmt.Errorf("load task %s: %w", id, shimSilent(tctx, err))
	}
	if err := c.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete container %s: %w", id, err)
	}
	m.log.Info("removed leftover container", "id", id)
	return nil
}

// Cleanup removes what an earlier run of an fcd with the same Name left
// behind (Leftovers, then Remove) and waits until it is gone. Image views
// are the Images implementation's to clean up (puller's RemoveViews),
// after this. Call it before the first Start.
func (m *Manager) Cleanup(ctx context.Context) error {
	l, err := m.Leftovers(ctx)
	if err != nil {
		return err
	}
	return l.Remove(ctx, 0)
}

// startTime returns the start time of process pid (field 22 of its
// stat, in clock ticks since boot).
func startTime(pid int) (string, bool) {
	f, ok := statFields(pid)
	// f[0] is field 3 (state): field 22 is f[19].
	if !ok || len(f) < 20 {
		return "", false
	}
	return f[19], true
}

// statFields returns the fields of process pid's /proc stat after the
// command name, from field 3 (state) on.
func statFields(pid int) ([]string, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil, false
	}
	// The command name, in parentheses, may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, false
	}
	return strings.Fields(string(b[i+1:])), true
}

// leaseHolder returns the ID that holds host-local's address lease file
// p: its first line. Other files (its lock, last_reserved_ip) hold none.
func leaseHolder(p string) (string, bool) {
	base := filepath.Base(p)
	if base == "lock" || strings.HasPrefix(base, "last_reserved_ip") {
		return "", false
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", false
	}
	id, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(id), true
}

// removeLeases removes the lease files still held by the IDs they were
// listed with, under host-local's own lock of their directory: a file
// released and leased again since belongs to someone else now.
func removeLeases(leases map[string]string) error {
	byDir := map[string][]string{}
	for p := range leases {
		byDir[filepath.Dir(p)] = append(byDir[filepath.Dir(p)], p)
	}
	var errs []error
	for dir, files := range byDir {
		if err := withFileLock(filepath.Join(dir, "lock"), func() error {
			for _, p := range files {
				if id, ok := leaseHolder(p); ok && id == leases[p] {
					if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
						return err
					}
				}
			}
			return nil
		}); err != nil {
			errs = append(errs, fmt.Errorf("remove address leases: %w", err))
		}
	}
	return errors.Join(errs...)
}

// withFileLock runs f holding an exclusive flock of path, the lock
// host-local takes around its changes.
func withFileLock(path string, f func() error) error {
	lf, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer lf.Close()
	if err := unix.Flock(int(lf.Fd()), unix.LOCK_EX); err != nil {
		return err
	}
	defer unix.Flock(int(lf.Fd()), unix.LOCK_UN)
	return f()
}
