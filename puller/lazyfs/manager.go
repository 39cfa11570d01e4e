package lazyfs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// DefaultIdleTimeout is how long a layer nobody uses stays mounted, so a
// function's next cold start finds it (and its kernel caches) still there.
const DefaultIdleTimeout = 5 * time.Minute

// ManagerOptions configures NewManager.
type ManagerOptions struct {
	// Root holds the mount points, one directory per layer digest. It
	// belongs to the manager: at start, whatever is mounted below it is
	// a previous process's and is detached. Required.
	Root string
	// CacheDir is where layers materialize files for passthrough
	// (MountOptions.CacheDir), shared by all layers. Empty: none.
	CacheDir string
	// IdleTimeout is how long an unreferenced layer stays mounted. Zero
	// means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// Background, if set, makes a newly mounted layer fetch all of its
	// files at Background priority (Layer.FetchAll) once its start-up
	// files are prefetched and an instance using it has started
	// (StartBackground), so later reads never wait on the network and
	// the start-up never shares the link with it. It costs the layer's
	// size in cache and local copies.
	Background bool
	// Logger receives mount, unmount and read-failure logs. Nil: silent.
	Logger *slog.Logger
}

// OpenFunc returns the Source of a layer when the layer is first mounted
// (reading its TOC or index, for instance).
type OpenFunc func(ctx context.Context) (Source, error)

// Manager shares one mount per layer digest among every image and
// instance that uses the layer. Acquire mounts on first use and counts
// references; Release drops one; a layer unreferenced for IdleTimeout is
// unmounted. It is safe for concurrent use.
//
// A FUSE mount lives only as long as the process serving it: go-fuse
// cannot hand a live /dev/fuse connection to a new process (it must see
// FUSE_INIT first, and it keeps node ids in memory). So mounts do not
// survive the manager's process; a new Manager finds the dead ones under
// Root and detaches them (MNT_DETACH, as `fusermount3 -u -z`), and
// instances using them must be restarted. Keeping them alive across a
// restart would need a separate long-lived process owning the mounts.
type Manager struct {
	opts ManagerOptions
	log  *slog.Logger

	mu     sync.Mutex
	layers map[digest.Digest]*managed
	closed bool

	stop chan struct{}
	done chan struct{}
}

type managed struct {
	ready     chan struct{} // closed once mounted or failed
	layer     *Layer
	err       error
	refs      int
	idleSince time.Time
}

// NewManager detaches the stale mounts under opts.Root and starts the
// idle sweeper; Close stops it.
func NewManager(opts ManagerOptions) (*Manager, error) {
	if opts.Root == "" {
		return nil, errors.New("lazyfs: ManagerOptions.Root is required")
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	m := &Manager{opts: opts, log: opts.Logger, layers: make(map[digest.Digest]*managed), stop: make(chan struct{}), done: make(chan struct{})}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(opts.Root, 0o700); err != nil {
		return nil, err
	}
	if err := m.cleanStale(); err != nil {
		return nil, err
	}
	go m.sweeper()
	return m, nil
}

// cleanStale detaches every mount below Root, deepest first, and removes
// the mount point directories.
func (m *Manager) cleanStale() error {
	root, err := filepath.EvalSymlinks(m.opts.Root)
	if err != nil {
		return err
	}
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(root))
	if err != nil {
		return fmt.Errorf("list stale mounts under %s: %w", root, err)
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	for _, mi := range mounts {
		if mi.Mountpoint == root {
			continue
		}
		if err := unix.Unmount(mi.Mountpoint, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("detach stale mount %s: %w", mi.Mountpoint, err)
		}
		m.log.Info("detached stale layer mount", "mountpoint", mi.Mountpoint, "fstype", mi.FSType)
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.Remove(filepath.Join(root, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			m.log.Warn("remove stale mount point", "path", filepath.Join(root, e.Name()), "err", err)
		}
	}
	return nil
}

// Dir returns the mount point of layer d (mounted or not).
func (m *Manager) Dir(d digest.Digest) string {
	return filepath.Join(m.opts.Root, strings.ReplaceAll(d.String(), ":", "-"))
}

// Acquire returns layer d mounted, mounting it with the Source open
// returns if this is its first user, and takes a reference the caller
// must Release. Concurrent Acquires of one d share one mount. d names the
// mount: the layer's digest when the blob alone decides the layer's files
// (eStargz), a digest of the layer and what else decides them otherwise
// (an index-only layer's index: puller/lazy's mountKey). A newly
// mounted layer starts prefetching its start-up files in the background
// (Layer.Prefetch), then, with Options.Background, the rest.
func (m *Manager) Acquire(ctx context.Context, d digest.Digest, open OpenFunc) (*Layer, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("acquire layer %q: %w", d, err)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, errors.New("lazyfs: manager closed")
	}
	e, ok := m.layers[d]
	if ok {
		e.refs++
		m.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			m.Release(d)
			return nil, ctx.Err()
		}
		if e.err != nil {
			return nil, e.err
		}
		return e.layer, nil
	}
	e = &managed{ready: make(chan struct{}), refs: 1}
	m.layers[d] = e
	m.mu.Unlock()

	l, err := m.mount(ctx, d, open)
	m.mu.Lock()
	if err == nil && m.closed {
		l.Unmount()
		os.Remove(l.Dir())
		l, err = nil, errors.New("lazyfs: manager closed")
	}
	e.layer, e.err = l, err
	if err != nil {
		delete(m.layers, d)
	}
	close(e.ready)
	m.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return l, nil
}

func (m *Manager) mount(ctx context.Context, d digest.Digest, open OpenFunc) (_ *Layer, err error) {
	dir := m.Dir(d)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.Remove(dir)
		}
	}()
	src, err := open(ctx)
	if err != nil {
		return nil, fmt.Errorf("open layer %s: %w", d, err)
	}
	l, err := Mount(dir, src, MountOptions{Name: d.String(), CacheDir: m.opts.CacheDir, Logger: m.log, DeferSmall: true})
	if err != nil {
		return nil, err
	}
	m.log.Debug("mounted layer", "layer", d, "dir", dir)
	pctx, cancel := context.WithCancel(l.ctx)
	l.skipPrefetch = cancel
	l.bg.goFn(func() {
		defer cancel()
		if err := l.Prefetch(pctx); err != nil && pctx.Err() == nil {
			m.log.Warn("prefetch failed; files are fetched when read", "layer", d, "err", err)
		}
		if !m.opts.Background {
			return
		}
		select {
		case <-l.started:
		case <-l.ctx.Done():
			return
		}
		if err := l.FetchAll(l.ctx); err != nil && l.ctx.Err() == nil {
			m.log.Warn("background fetch failed; files are fetched when read", "layer", d, "err", err)
		}
	})

	return l, nil
}

// StartBackground tells layer d that an instance using it has started:
// with Options.Background its background fetch may begin. Unknown layers
// are ignored.
func (m *Manager) StartBackground(d digest.Digest) {
	m.mu.Lock()
	e, ok := m.layers[d]
	m.mu.Unlock()
	if !ok {
		return
	}
	select {
	case <-e.ready:
		if e.layer != nil {
			e.layer.StartBackground()
		}
	default:
	}
}

// Release drops a reference Acquire took. A layer without references is
// unmounted once it has been idle for IdleTimeout.
func (m *Manager) Release(d digest.Digest) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.layers[d]
	if !ok || e.refs == 0 {
		m.log.Error("release of a layer not acquired", "layer", d)
		return
	}
	if e.refs--; e.refs == 0 {
		e.idleSince = time.Now()
	}
}

// Mounted lists the digests of the layers mounted now.
func (m *Manager) Mounted() []digest.Digest {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ds []digest.Digest
	for d, e := range m.layers {
		if e.layer != nil {
			ds = append(ds, d)
		}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds
}

func (m *Manager) sweeper() {
	defer close(m.done)
	t := time.NewTicker(max(m.opts.IdleTimeout/4, time.Second))
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case now := <-t.C:
			m.sweep(now)
		}
	}
}

// sweep unmounts the layers unreferenced since before now-IdleTimeout.
// It holds the lock while unmounting, so an Acquire of the same layer
// waits rather than mounting over a mount being torn down.
func (m *Manager) sweep(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for d, e := range m.layers {
		if e.refs > 0 || e.layer == nil || now.Sub(e.idleSince) < m.opts.IdleTimeout {
			continue
		}
		if err := e.layer.Unmount(); err != nil {
			m.log.Warn("unmount idle layer", "layer", d, "err", err)
			continue
		}
		os.Remove(e.layer.Dir())
		delete(m.layers, d)
		m.log.Debug("unmounted idle layer", "layer", d)
	}
}

// Close stops the sweeper and unmounts every layer. A layer still in use
// (an overlay on top of it) is detached lazily: the kernel drops it when
// its last user goes, and its reads fail from then on.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	close(m.stop)
	<-m.done

	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for d, e := range m.layers {
		if e.layer == nil {
			continue
		}
		if err := e.layer.Unmount(); err != nil {
			if derr := unix.Unmount(e.layer.Dir(), unix.MNT_DETACH); derr != nil {
				errs = append(errs, fmt.Errorf("detach layer %s: %w", d, derr))
			}
			e.layer.cancel()
		}
		os.Remove(e.layer.Dir())
		delete(m.layers, d)
	}
	return errors.Join(errs...)
}
