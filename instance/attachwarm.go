package instance

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// attachWarmer takes a grace period off each start on cgroup v1 hosts.
//
// On cgroup v1 the runtime (crun and runc alike) moves the new container
// process into its cgroups by writing its pid to cgroup.procs. Every such
// write takes the kernel's global cgroup_threadgroup_rwsem for writing,
// and the first writer after a quiet spell waits for an RCU grace period
// first (rcu_sync_enter from idle); writers that come within about a
// grace period of the previous one do not. Here that first write took
// 5-22 ms (median ~10 ms) of `crun create`, right on the start's critical
// path, because starts are rarely closer together than that.
//
// While a start holds the warmer (from the writable layer until the
// task is created), it writes the thread ID of one of fcd's own threads
// into the "tasks" file of the v1 cgroup that thread is already in,
// every attachWarmEvery. That is a migration to where the thread
// already is, so nothing moves, but it takes the same lock: the first
// such write waits out the grace period beside the start's other steps,
// and the later ones keep the lock warm until the runtime's own write.
// Concurrent starts share one writer. A failed write (a read-only
// cgroupfs, a host without v1 hierarchies) only stops the warming.
type attachWarmer struct {
	root  string // where the v1 hierarchies are mounted
	every time.Duration

	off atomic.Bool // a write failed: warm no more

	mu    sync.Mutex
	holds int
	stop  chan struct{} // closed when the last hold is released
	done  chan struct{} // closed when the writer of stop returned

	// writes counts the writes made, for tests.
	writes atomic.Int64
}

// attachWarmEvery is the pause between the warmer's writes: shorter than
// a grace period (~5-20 ms here), so the lock never goes cold between
// them; a write then costs tens of microseconds.
const attachWarmEvery = 2 * time.Millisecond

// newAttachWarmer returns a warmer for the v1 hierarchies mounted under
// root, or nil when the host has none (cgroup v2 alone, where the
// runtimes clone straight into the new cgroup).
func newAttachWarmer(root string) *attachWarmer {
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		return nil
	}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil || tasksFile(root, b) == "" {
		return nil
	}
	return &attachWarmer{root: root, every: attachWarmEvery}
}

// tasksFile returns the "tasks" file of the first v1 hierarchy listed in
// procCgroup (the text of /proc/<pid>/cgroup) that exists under root; ""
// when there is none.
func tasksFile(root string, procCgroup []byte) string {
	s := bufio.NewScanner(bytes.NewReader(procCgroup))
	for s.Scan() {
		// hierarchy-ID:controller-list:cgroup-path; ID 0 is cgroup v2.
		f := strings.SplitN(s.Text(), ":", 3)
		if len(f) != 3 || f[0] == "0" || f[1] == "" {
			continue
		}
		p := filepath.Join(root, strings.TrimPrefix(f[1], "name="), f[2], "tasks")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// hold keeps the lock warm until release is called; release is
// idempotent. A nil warmer holds nothing.
func (w *attachWarmer) hold() (release func()) {
	if w == nil || w.off.Load() {
		return func() {}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.holds++; w.holds == 1 {
		// A previous writer may still be in its last write (the first
		// one can take a grace period); it returns after it on its own.
		w.stop, w.done = make(chan struct{}), make(chan struct{})
		go w.run(w.stop, w.done)
	}
	var once sync.Once
	return func() { once.Do(w.release) }
}

func (w *attachWarmer) release() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.holds--; w.holds == 0 {
		close(w.stop)
	}
}

// run writes until stop is closed or a write fails. Its thread is locked,
// so the thread ID it writes is its own, and it reads that thread's
// cgroup itself: it never moves a thread anywhere else.
func (w *attachWarmer) run(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b, err := os.ReadFile("/proc/thread-self/cgroup")
	if err != nil {
		w.off.Store(true)
		return
	}
	path := tasksFile(w.root, b)
	tid := []byte(strconv.Itoa(unix.Gettid()))
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		if path == "" || os.WriteFile(path, tid, 0) != nil {
			w.off.Store(true)
			return
		}
		w.writes.Add(1)
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}
