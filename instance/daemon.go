package instance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"golang.org/x/sys/unix"
)

// maxSocketPath keeps unix socket paths under the kernel's 108 byte limit.
const maxSocketPath = 100

// Requirement is a host program or file fcd needs, and the Debian package
// that provides it.
type Requirement struct {
	// Path is a program name looked up on PATH, or an absolute file path.
	Path string
	// Package is the Debian package that provides it.
	Package string
}

// Requirements returns what running instances needs on the host, with
// CNI plugins looked up in pluginDir ("" means DefaultCNIPluginDir).
func Requirements(pluginDir string) []Requirement {
	if pluginDir == "" {
		pluginDir = DefaultCNIPluginDir
	}
	return []Requirement{
		{"containerd", "containerd"},
		{"containerd-shim-runc-v2", "containerd"},
		{"runc", "runc"},
		{filepath.Join(pluginDir, "bridge"), "containernetworking-plugins"},
		{filepath.Join(pluginDir, "host-local"), "containernetworking-plugins"},
		{filepath.Join(pluginDir, "loopback"), "containernetworking-plugins"},
		{"mkfs.ext4", "e2fsprogs"},
		{"iptables", "iptables"},
		{"nft", "nftables"},
		{"ip", "iproute2"},
	}
}

// CheckHost returns an error naming each missing program and the Debian
// package to install, or nil when everything in Requirements is present.
func CheckHost(pluginDir string) error {
	var missing []string
	for _, r := range Requirements(pluginDir) {
		var err error
		if filepath.IsAbs(r.Path) {
			_, err = os.Stat(r.Path)
		} else {
			_, err = exec.LookPath(r.Path)
		}
		if err != nil {
			missing = append(missing, fmt.Sprintf("%s (install Debian package %s)", r.Path, r.Package))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrMissingDependency, strings.Join(missing, ", "))
	}
	return nil
}

// DaemonOptions configures a supervised containerd. The zero value of each
// field means its default.
type DaemonOptions struct {
	// Name is the fcd instance name; "" means DefaultName. It names the
	// runtime directory that holds the socket when DataDir is long.
	Name string
	// DataDir holds containerd's config, root and state under
	// DataDir/containerd. It is required.
	DataDir string
	// Binary is the containerd program; "" means "containerd" on PATH.
	Binary string
	// Logger receives the daemon's lifecycle records; nil means silence.
	// containerd's own output goes to DataDir/containerd/containerd.log.
	Logger *slog.Logger
}

// Daemon is a containerd child process with its own config, root, state
// directory and socket. It is restarted when it dies until Close.
type Daemon struct {
	opts    DaemonOptions
	dir     string
	address string
	log     *slog.Logger

	mu sync.Mutex
	// proc is containerd: a child of this process, or one an earlier fcd
	// run started that this Daemon adopted.
	proc   *os.Process
	exited chan struct{}
	closed bool
	done   chan struct{} // closed when the supervising goroutine returns
}

// StartDaemon writes containerd's config, starts containerd and waits
// until it answers on its socket. The daemon runs until Close, independent
// of ctx, which only bounds the wait.
func StartDaemon(ctx context.Context, opts DaemonOptions) (_ *Daemon, err error) {
	if opts.DataDir == "" {
		return nil, errors.New("instance: DaemonOptions.DataDir is required")
	}
	if opts.Name == "" {
		opts.Name = DefaultName
	}
	if opts.Binary == "" {
		opts.Binary = "containerd"
	}
	if err := CheckHost(""); err != nil {
		return nil, err
	}
	d := &Daemon{opts: opts, dir: filepath.Join(opts.DataDir, "containerd"), log: opts.Logger, done: make(chan struct{})}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.address = filepath.Join(d.dir, "containerd.sock")
	if len(d.address) > maxSocketPath {
		d.address = filepath.Join(runDir(opts.Name), "containerd.sock")
	}
	for _, dir := range []string{d.dir, filepath.Dir(d.address)} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return nil, fmt.Errorf("containerd dir: %w", err)
		}
	}
	config := filepath.Join(d.dir, "config.toml")
	if old, err := os.ReadFile(config); err != nil || string(old) != d.config() || !d.adopt(ctx) {
		if err := os.WriteFile(config, []byte(d.config()), 0o600); err != nil {
			return nil, fmt.Errorf("containerd config: %w", err)
		}
		d.killStale()
		if err := d.spawn(); err != nil {
			return nil, err
		}
	}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	go d.supervise()
	if err := d.wait(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// Address is the containerd socket path.
func (d *Daemon) Address() string { return d.address }

// Close stops containerd (SIGTERM, then SIGKILL after 10 s) and stops
// restarting it. Containers' shims keep running; Manager.Cleanup removes
// them on the next start.
func (d *Daemon) Close() error {
	d.mu.Lock()
	d.closed = true
	proc, exited := d.proc, d.exited
	d.mu.Unlock()
	if proc != nil {
		_ = proc.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = proc.Kill()
			<-exited
		}
	}
	<-d.done
	return nil
}

// config is containerd's configuration. Besides what fcd does not use, it
// disables the opt plugin (runtimes installed by `ctr install`): it puts
// "<opt>/lib:" in front of LD_LIBRARY_PATH for every shim and runtime
// containerd starts, so each exec of crun first probed ~300 library paths
// (every glibc-hwcaps and tls variant of that directory and, through the
// trailing empty entry, of the bundle directory crun runs in) before
// finding its libraries in the loader's cache: about a millisecond per
// exec, two execs per start (create, start).
func (d *Daemon) config() string {
	root := filepath.Join(d.dir, "root")
	state := filepath.Join(d.dir, "state")
	return fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.opt"]

[grpc]
  address = %q

[ttrpc]
  address = %q

[debug]
  address = ""

[metrics]
  address = ""
`, root, state, d.address, d.address+".ttrpc")
}

func (d *Daemon) spawn() error {
	logf, err := os.OpenFile(filepath.Join(d.dir, "containerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("containerd log: %w", err)
	}
	defer logf.Close()
	_ = os.Remove(d.address)
	cmd := exec.Command(d.opts.Binary, "--config", filepath.Join(d.dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a terminal's ^C for fcd must not kill
	// containerd before fcd has stopped its instances.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start containerd: %w", err)
	}
	_ = os.WriteFile(d.pidFile(), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600)
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	d.mu.Lock()
	d.proc, d.exited = cmd.Process, exited
	d.mu.Unlock()
	d.log.Info("containerd started", "pid", cmd.Process.Pid, "address", d.address)
	return nil
}

// adopt takes over the containerd an earlier fcd run started on the same
// root and config when it still runs and answers, instead of stopping it
// and starting another: a restart of fcd then waits neither for one
// containerd to stop nor for the next to load the earlier run's tasks.
// What the earlier run left in it is the Manager's to clean up.
func (d *Daemon) adopt(ctx context.Context) bool {
	pid := d.stalePID()
	if pid == 0 {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), "\x00"+filepath.Join(d.dir, "config.toml")+"\x00") {
		return false
	}
	// A pidfd follows this process, not a later one that reuses its ID.
	proc, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return false
	}
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		defer unix.Close(fd)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err != unix.EINTR {
				return
			}
		}
	}()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	d.mu.Lock()
	d.proc, d.exited = proc, exited
	d.mu.Unlock()
	if err := d.wait(wctx); err != nil {
		d.mu.Lock()
		d.proc, d.exited = nil, nil
		d.mu.Unlock()
		return false
	}
	d.log.Info("containerd adopted from an earlier run", "pid", pid, "address", d.address)
	return true
}

// supervise restarts containerd whenever it exits before Close.
func (d *Daemon) supervise() {
	defer close(d.done)
	backoff := 100 * time.Millisecond
	for {
		d.mu.Lock()
		exited := d.exited
		d.mu.Unlock()
		<-exited
		d.mu.Lock()
		closed := d.closed
		d.mu.Unlock()
		if closed {
			return
		}
		d.log.Warn("containerd exited, restarting", "backoff", backoff)
		time.Sleep(backoff)
		backoff = min(2*backoff, 5*time.Second)
		if err := d.spawn(); err != nil {
			d.log.Error("restart containerd", "err", err)
			// Try again later with a fresh process handle.
			d.mu.Lock()
			ch := make(chan struct{})
			close(ch)
			d.exited = ch
			d.mu.Unlock()
		}
	}
}

// wait polls the socket until containerd answers, it exits, or ctx ends.
func (d *Daemon) wait(ctx context.Context) error {
	d.mu.Lock()
	exited := d.exited
	d.mu.Unlock()
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		if _, err := os.Stat(d.address); err == nil {
			c, err := containerd.New(d.address, containerd.WithTimeout(time.Second))
			if err == nil {
				_, err = c.Version(ctx)
				c.Close()
				if err == nil {
					return nil
				}
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("containerd exited at start; see %s", filepath.Join(d.dir, "containerd.log"))
		case <-ctx.Done():
			return fmt.Errorf("wait for containerd: %w", ctx.Err())
		case <-time.After(delay):
		}
	}
}

func (d *Daemon) pidFile() string { return filepath.Join(d.dir, "containerd.pid") }

// stalePID returns the process ID of the containerd an earlier fcd run
// left behind on the same root, 0 when there is none.
func (d *Daemon) stalePID() int {
	b, err := os.ReadFile(d.pidFile())
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil || filepath.Base(exe) != filepath.Base(d.opts.Binary) {
		return 0
	}
	return pid
}

// killStale stops a containerd an earlier fcd run left behind on the same
// root: two daemons cannot share it.
func (d *Daemon) killStale() {
	pid := d.stalePID()
	if pid == 0 {
		return
	}
	d.log.Warn("stopping containerd left by an earlier run", "pid", pid)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 100; i++ {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// runDir is where fcd named name keeps sockets and network namespaces.
func runDir(name string) string { return filepath.Join("/run/fcd", name) }
