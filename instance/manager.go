package instance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/plugin"
	"github.com/containerd/containerd/runtime/v2/runc/options"
)

// labelFunction is the container label holding the function name.
const labelFunction = "fcd.dev/function"

// Manager starts and stops instances on one containerd. Everything it
// creates on the host carries Options.Name. It is safe for concurrent use.
type Manager struct {
	opts   Options
	client *containerd.Client
	images Images
	net    *network
	pool   *netPool // nil when Options.NetPool < 0
	// poolOnce starts the pool's filler on Prefill or the first Start,
	// after the caller listed the Leftovers, which would include its
	// namespaces.
	poolOnce sync.Once
	disks    *diskPool // nil when Options.DiskPool < 0
	// disksOnce starts the disk pool's filler on Prefill or the first
	// Start.
	disksOnce sync.Once
	logs      *logFiles
	http      *http.Client
	log       *slog.Logger

	host hostState
	// generation tells this Manager's shared host objects (its shim
	// group) from an earlier process's of the same name.
	generation string

	// ctx bounds the instance watchers (wait, watchHealth); Close cancels
	// it once every instance stopped and waits for them on wg.
	ctx     context.Context
	cancel  context.CancelFunc
	watches sync.WaitGroup

	timeline *timeline
	// seccomp holds crun's compiled filters; nil with other runtimes.
	seccomp *seccompFilters
	// groups deals out shim groups; nil without Options.ShimGroup.
	groups *shimGroups
	// warm keeps cgroup attaches quick while starts create their tasks;
	// nil on hosts without cgroup v1 hierarchies.
	warm *attachWarmer

	mu        sync.Mutex
	instances map[string]*Instance
}

// NewManager returns a Manager driving client, which stays owned by the
// caller. It checks the host (programs, subnet) but creates nothing; call
// Cleanup (or Leftovers, then Remove in the background) before the first
// Start to remove what an earlier run left.
func NewManager(client *containerd.Client, opts Options) (*Manager, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := CheckHost(opts.CNIPluginDir); err != nil {
		return nil, err
	}
	n, err := newNetwork(opts)
	if err != nil {
		return nil, err
	}
	var pool *netPool
	if opts.NetPool > 0 {
		pool = newNetPool(n, opts.NetPool, opts.Logger)
	}
	var disks *diskPool
	if opts.DiskPool > 0 {
		disks = newDiskPool(filepath.Join(opts.DataDir, "disks"), opts.DiskPool, opts.Logger)
	}
	var filters *seccompFilters
	if filepath.Base(opts.Runtime) == RuntimeCrun {
		filters = newSeccompFilters()
	}
	generation := newID()[:8]
	var groups *shimGroups
	if opts.ShimGroup {
		groups = newShimGroups(opts.Name+"-"+generation, opts.ShimGroupSize)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{
		pool:   pool,
		disks:  disks,
		ctx:    ctx,
		cancel: cancel,
		opts:   opts,
		client: client,
		images: opts.Images,
		net:    n,
		logs:   &logFiles{dataDir: opts.DataDir, maxSize: opts.LogMaxSize, maxFiles: opts.LogMaxFiles, files: map[string]*logFile{}},
		http: &http.Client{Transport: &http.Transport{
			DisableKeepAlives: true,
			Proxy:             nil,
		}},
		log:        opts.Logger,
		timeline:   newTimeline(),
		seccomp:    filters,
		groups:     groups,
		warm:       newAttachWarmer(cgroupRoot),
		instances:  map[string]*Instance{},
		generation: generation,
	}, nil
}

// Runtime returns the OCI runtime binary instances run with
// (Options.Runtime with its default applied).
func (m *Manager) Runtime() string { return m.opts.Runtime }

// ReadLogs returns the last tail lines of function's logs (all when tail
// <= 0), oldest first, including lines still pending in memory.
func (m *Manager) ReadLogs(function string, tail int) ([]string, error) {
	m.logs.flush(function)
	return ReadLogs(m.opts.DataDir, function, tail)
}

func (m *Manager) nsCtx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, m.opts.Name)
}

func (m *Manager) instanceDir(id string) string {
	return filepath.Join(m.opts.DataDir, "instances", id)
}

func (m *Manager) fifoDir() string { return filepath.Join(runDir(m.opts.Name), "fifo") }

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Start creates an instance of spec and waits until it is ready: its port
// accepts a TCP connection (or spec.HealthCheck passes) within
// Options.StartTimeout, and its initializer, if any, succeeded.
//
// When the instance was created but did not become ready, the error is a
// *StartError (Exited when the process exited first) and the instance is
// already removed. Other errors (image, host) are returned wrapped as they
// are. On error nothing is left behind.
func (m *Manager) Start(ctx context.Context, spec Spec) (_ *Instance, err error) {
	begin := time.Now()
	spec = spec.withDefaults()
	if spec.ID == "" {
		spec.ID = newID()
	}
	if spec.Function == "" || spec.Image == "" {
		return nil, errors.New("instance: Spec.Function and Spec.Image are required")
	}
	if _, err := LogDir(m.opts.DataDir, spec.Function); err != nil {
		return nil, err
	}
	i := &Instance{
		m:       m,
		spec:    spec,
		root:    rootfs{dir: m.instanceDir(spec.ID)},
		begin:   begin,
		exited:  make(chan struct{}),
		done:    make(chan struct{}),
		started: make(chan struct{}),
	}
	ctx, i.cancelStart = context.WithCancel(ctx)
	m.mu.Lock()
	if _, ok := m.instances[spec.ID]; ok {
		m.mu.Unlock()
		i.cancelStart()
		return nil, fmt.Errorf("instance %s: %w", spec.ID, errdefs.ErrAlreadyExists)
	}
	m.instances[spec.ID] = i
	m.mu.Unlock()
	// Run last: a Stop waiting for this start goes on once its
	// clean-up is done.
	defer func() {
		i.startErr = err
		close(i.started)
		i.cancelStart()
	}()
	defer func() {
		if err != nil {
			// The caller's context may be what failed; clean up anyway.
			if serr := i.stop(context.WithoutCancel(ctx), false); serr != nil {
				m.log.Warn("clean up failed start", "instance", spec.ID, "err", serr)
			}
		}
	}()

	lf, err := m.logs.acquire(spec.Function)
	if err != nil {
		return nil, err
	}
	i.log = newInstanceLog(lf, spec.ID)

	m.Prefill()
	if m.pool != nil {
		defer m.pool.refill()
	}
	if m.disks != nil {
		defer m.disks.refill()
	}
	nctx := m.nsCtx(ctx)
	if err := i.create(nctx); err != nil {
		if i.container != nil {
			// The image and host were fine; the function's process could
			// not be started (bad entrypoint, user, ...): that is the
			// function's failure to start, as FC reports it.
			return nil, i.startError(ctx, time.Now(), err)
		}
		return nil, err
	}
	if err := i.ready(nctx); err != nil {
		return nil, err
	}
	if err := i.img.Ready(ctx); err != nil {
		// The instance runs; a pull that could not be metered is fcd's
		// fault, not the caller's, and is loud in the log.
		m.log.Error("meter image pull", "function", spec.Function, "instance", spec.ID, "err", err)
	}
	if i.teach != nil {
		m.learnSeccomp(i, i.teach)
	}
	i.stats.Pull = i.img.Stats()
	i.readyAt = time.Now()
	i.stats.Total = i.readyAt.Sub(begin)
	m.timeline.add(StartRecord{Function: spec.Function, Instance: spec.ID, Runtime: m.opts.Runtime, At: begin, Stats: i.stats})
	m.log.Info("instance started", "function", spec.Function, "instance", spec.ID, "addr", i.Addr(), "runtime", m.opts.Runtime,
		slog.Attr{Key: "phases", Value: i.stats.logValue()})
	return i, nil
}

// create prepares the image, writable layer and network, then creates
// and starts the container.
func (i *Instance) create(ctx context.Context) error {
	m, spec := i.m, i.spec
	// The pull gets the start timeout too, whatever bounds the Images
	// implementation keeps itself.
	pctx, cancel := context.WithTimeout(ctx, m.opts.StartTimeout)
	defer cancel()
	i.stats.PullAt = time.Since(i.begin)
	img, err := m.images.Prepare(pctx, spec.Image, ImageOptions{
		Key:         "instance/" + spec.ID,
		Credentials: spec.Credentials,
		Role:        spec.Role,
		Function:    spec.Function,
		InstanceID:  spec.ID,
		MemoryMB:    spec.MemoryMB,
	})
	if err != nil {
		return fmt.Errorf("prepare image %s: %w", spec.Image, err)
	}
	i.img = img
	i.stats.Pull = img.Stats()

	// From here until the runtime has put the task in its cgroups.
	warmed := m.warm.hold()
	defer warmed()

	t := time.Now()
	i.stats.RootfsAt = t.Sub(i.begin)
	if err := i.root.create(ctx, m.disks, img.LowerDirs(), spec.DiskMB); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	i.stats.Rootfs = time.Since(t)

	t = time.Now()
	i.stats.NetworkAt = t.Sub(i.begin)
	if err := m.prepareHost(ctx); err != nil {
		return err
	}
	net, err := m.attach(ctx, i)
	if err == nil && spec.Offline {
		err = m.net.firewall.setOffline(ctx, net.id, net.ip)
	}
	if err != nil {
		return fmt.Errorf("network: %w", err)
	}
	nsPath := net.path
	i.addr = netip.AddrPortFrom(net.ip, uint16(spec.Port))
	i.stats.Network = time.Since(t)

	t = time.Now()
	i.stats.ContainerAt = t.Sub(i.begin)
	s, err := ociSpec(ctx, m.opts.Name, spec, img.Config(), i.root.path(), nsPath)
	if err != nil {
		return err
	}
	m.runtimeSpec(i, s)
	i.container, err = m.client.NewContainer(ctx, spec.ID,
		containerd.WithSpec(s),
		containerd.WithRuntime(plugin.RuntimeRuncV2, &options.Options{BinaryName: m.opts.Runtime}),
		containerd.WithContainerLabels(map[string]string{labelFunction: spec.Function}),
	)
	if err != nil {
		return fmt.Errorf("create container: %w", err)
	}
	i.stats.Container = time.Since(t)
	tt := time.Now()
	i.stats.TaskAt = tt.Sub(i.begin)
	if err := os.MkdirAll(m.fifoDir(), 0o700); err != nil {
		return err
	}
	stdout, stderr := i.log.stream(StreamStdout), i.log.stream(StreamStderr)
	i.outs = []*lineWriter{stdout, stderr}
	// The task's creation and start are not abandoned midway, bounded
	// by the start timeout instead: containerd and the shim go on with
	// a call whose caller went away (no cancellation reaches the shim),
	// and a task created that way is one fcd does not know to delete.
	// The caller's cancellation is honoured between and after them.
	tctx, tcancel := context.WithTimeout(context.WithoutCancel(ctx), m.opts.StartTimeout)
	defer tcancel()
	i.task, err = i.container.NewTask(tctx, cio.NewCreator(cio.WithStreams(nil, stdout, stderr), cio.WithFIFODir(m.fifoDir())))
	warmed()
	if err != nil {
		return fmt.Errorf("create task: %w", err)
	}
	i.stats.Task = time.Since(tt)
	tt = time.Now()
	i.stats.TaskStartAt = tt.Sub(i.begin)
	// The instance outlives the Start call: follow it on a context of its
	// own, cancelled by Stop.
	bg, cancel := context.WithCancel(m.nsCtx(m.ctx))
	i.cancel = cancel
	exitCh, err := i.task.Wait(bg)
	if err != nil {
		return fmt.Errorf("wait task: %w", err)
	}
	m.watch(func() { i.wait(bg, exitCh) })
	if testHookTaskStart != nil {
		testHookTaskStart(spec.ID)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("start task: %w", err)
	}
	if err := i.task.Start(tctx); err != nil {
		return fmt.Errorf("start task: %w", err)
	}
	i.stats.TaskStart = time.Since(tt)
	i.stats.Create = time.Since(t)
	return nil
}

// testHookTaskStart, when a test sets it, runs as Start asks the runtime
// to start instance id's task.
var testHookTaskStart func(id string)

// Prefill starts filling the pools of network namespaces and writable
// layers (Options.NetPool, Options.DiskPool) now, in the background, so
// that even the first Start takes from them instead of making its own.
// Call it after Leftovers or Cleanup, whose lists must not include the
// pools' new namespaces; without it the first Start starts the fillers.
func (m *Manager) Prefill() {
	if m.pool != nil {
		m.poolOnce.Do(func() { m.watch(func() { m.pool.run(m.ctx) }) })
	}
	if m.disks != nil {
		m.disksOnce.Do(func() { m.watch(func() { m.disks.run(m.ctx) }) })
	}
}

// attach gives i a network namespace: a pooled one when there is one,
// else one made now. i.netID names it from then on, so release detaches
// it even when attach fails half way.
func (m *Manager) attach(ctx context.Context, i *Instance) (attachment, error) {
	if m.pool == nil {
		i.netID = i.spec.ID
		path, ip, err := m.net.attach(ctx, i.netID)
		return attachment{id: i.netID, path: path, ip: ip}, err
	}
	if a, ok := m.pool.take(ctx); ok {
		i.netID = a.id
		return a, nil
	}
	i.netID = i.spec.ID
	path, ip, err := m.net.attach(ctx, i.netID)
	return attachment{id: i.netID, path: path, ip: ip}, err
}

// loopbackOnly explains why a refused probe can never succeed: the server
// listens on a loopback address, unreachable from outside the instance. It
// answers only once the listener has been seen for loopbackGrace, which
// lets the process's last log lines reach the log before the start fails
// with them.
func (i *Instance) loopbackOnly() string {
	addr, ok := loopbackListener(i.task.Pid(), int(i.addr.Port()))
	if !ok {
		i.loopbackSeen = time.Time{}
		return ""
	}
	if i.loopbackSeen.IsZero() {
		i.loopbackSeen = time.Now()
	}
	if time.Since(i.loopbackSeen) < loopbackGrace {
		return ""
	}
	return fmt.Sprintf("the server listens on %s inside the instance, which is unreachable from outside it; it must listen on 0.0.0.0:%d", addr, i.addr.Port())
}

// loopbackGrace is how long a loopback-only listener must be seen before
// the start fails because of it.
const loopbackGrace = 200 * time.Millisecond

// ready probes the started instance and runs its initializer.
func (i *Instance) ready(ctx context.Context) error {
	m, spec := i.m, i.spec
	t := time.Now()
	i.stats.ReadyAt = t.Sub(i.begin)
	pctx, cancel := context.WithTimeout(ctx, m.opts.StartTimeout)
	defer cancel()
	var err error
	if spec.HealthCheck != nil {
		err = probeHTTP(pctx, m.http, i.Addr(), spec.HealthCheck.withDefaults(), i.exited)
	} else {
		err = probeTCP(pctx, i.Addr(), i.exited, i.loopbackOnly)
	}
	if err == nil && spec.Initializer && !isClosed(i.exited) {
		i.Log("FC Initialize Start RequestId: " + spec.ID)
		err = hook(pctx, m.http, i.Addr(), "POST", "/initialize", nil, spec.InitializerTimeout)
		if err != nil {
			i.Log("FC Initialize Error: " + err.Error())
		}
		i.Log("FC Initialize End RequestId: " + spec.ID)
	}
	if err == nil && isClosed(i.exited) {
		err = errors.New("process exited")
	}
	if err != nil && ctx.Err() != nil && !isClosed(i.exited) {
		// The probe reports its last failed attempt, which is not why
		// the start ended: the caller gave up (fcd shutting down, the
		// request gone).
		err = fmt.Errorf("start abandoned by its caller (%w); last probe: %v", ctx.Err(), err)
	}
	if err != nil {
		return i.startError(ctx, t, err)
	}
	i.stats.Ready = time.Since(t)
	if spec.HealthCheck != nil {
		bg, cancel := context.WithCancel(i.m.ctx)
		prev := i.cancel
		i.cancel = func() { cancel(); prev() }
		i.m.watch(func() { i.watchHealth(bg, spec.HealthCheck.withDefaults()) })
	}
	return nil
}

// startOutputWait bounds how long a start that failed because its process
// exited waits for that process's output: a process it left behind may
// hold the output open, until the start's cleanup ends it.
const startOutputWait = time.Second

func (i *Instance) startError(ctx context.Context, t time.Time, err error) error {
	se := &StartError{InstanceID: i.spec.ID, Duration: time.Since(t), Err: err}
	if isClosed(i.exited) {
		se.Exited = true
		se.Exit = i.Exit()
		// Its last words, most often why it exited, may still be on
		// their way.
		wctx, cancel := context.WithTimeout(ctx, startOutputWait)
		if i.awaitOutput(wctx) {
			// A partial last line is complete now. Before, the
			// output's copy may still be writing to it.
			for _, w := range i.outs {
				w.Flush()
			}
		}
		cancel()
	}
	se.LogTail = i.log.lastLines()
	return se
}

// release frees what the instance holds besides its container: writable
// layer, network, image view, log file, registration.
func (m *Manager) release(ctx context.Context, i *Instance) error {
	var errs []error
	if err := i.root.remove(); err != nil {
		errs = append(errs, err)
	}
	if i.netID == "" {
		i.netID = i.spec.ID
	}
	if err := m.net.detach(ctx, i.netID); err != nil {
		errs = append(errs, err)
	}
	if i.img != nil {
		if err := i.img.Release(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if i.shimGroup != "" {
		m.groups.leave(i.shimGroup)
		i.shimGroup = ""
	}
	m.mu.Lock()
	if m.instances[i.spec.ID] == i {
		delete(m.instances, i.spec.ID)
		if i.log != nil {
			m.logs.release(i.spec.Function)
		}
	}
	m.mu.Unlock()
	return errors.Join(errs...)
}

// Instances returns the live instances.
func (m *Manager) Instances() []*Instance {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Instance, 0, len(m.instances))
	for _, i := range m.instances {
		out = append(out, i)
	}
	return out
}

// watch runs an instance watcher that Close waits for.
func (m *Manager) watch(f func()) {
	m.watches.Add(1)
	go func() {
		defer m.watches.Done()
		f()
	}()
}

// shimExitWait bounds awaitShims' wait for shims to exit by themselves.
const shimExitWait = 2 * time.Second

// awaitShims waits, when the Manager's namespace holds no container any
// more, until the shims that served it have exited. containerd asks a
// shim to shut down once its last task is deleted but does not wait for
// it to exit, so a Close that returned at once could leave a shim running
// behind fcd. One still there after shimExitWait serves nothing and is
// killed. With containers left (a Stop that failed), their shims stay
// for the next Cleanup.
func (m *Manager) awaitShims(ctx context.Context) error {
	if len(shimPIDs(m.opts.Name)) == 0 {
		return nil
	}
	cs, err := m.client.Containers(m.nsCtx(ctx))
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	if len(cs) > 0 {
		return nil
	}
	deadline := time.Now().Add(shimExitWait)
	for {
		pids := shimPIDs(m.opts.Name)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			n := 0
			for _, pid := range pids {
				if syscall.Kill(pid, syscall.SIGKILL) == nil {
					n++
				}
			}
			m.log.Warn("killed containerd shims that outlived their tasks", "count", n)
			return nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Close stops every live instance and waits for the goroutines that
// watched them, or for ctx.
func (m *Manager) Close(ctx context.Context) error {
	var errs []error
	for _, i := range m.Instances() {
		errs = append(errs, i.Stop(ctx))
	}
	if err := m.awaitShims(ctx); err != nil {
		errs = append(errs, err)
	}
	m.cancel()
	watched := make(chan struct{})
	go func() {
		m.watches.Wait()
		close(watched)
	}()
	select {
	case <-watched:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("wait for instance watchers: %w", ctx.Err()))
	}
	if m.pool != nil {
		if err := m.pool.drain(ctx); err != nil {
			errs = append(errs, fmt.Errorf("empty network pool: %w", err))
		}
	}
	if err := m.net.close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("remove network: %w", err))
	}
	if err := m.closeHost(ctx); err != nil {
		errs = append(errs, err)
	}
	// The runtime directory goes too once empty; the supervised containerd
	// may still keep its socket there, and removes it when it stops.
	os.Remove(m.fifoDir())
	os.Remove(runDir(m.opts.Name))
	return errors.Join(errs...)
}
