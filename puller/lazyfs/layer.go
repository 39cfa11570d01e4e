package lazyfs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/fcd-dev/fcd/puller/remote"
)

// DefaultTimeout is how long the kernel may cache entries and attributes
// of a layer: they never change, so only memory pressure evicts them.
const DefaultTimeout = 24 * time.Hour

// MountOptions configures Mount. The zero value mounts without
// materialization or passthrough and logs nowhere.
type MountOptions struct {
	// Name identifies the layer in logs, usually its digest.
	Name string
	// CacheDir is where files whose bytes have all been read are
	// materialized, verified, for FUSE passthrough. It must be on a
	// filesystem that is not itself stacked (ext4, xfs; not overlayfs or
	// FUSE), or passthrough is left off. Empty: no materialization.
	CacheDir string
	// SmallFile: a file of at most this many bytes is read whole and
	// materialized at its first read. Zero means 128 KiB; negative, never.
	SmallFile int64
	// Timeout is the kernel's entry and attribute cache time. Zero means
	// DefaultTimeout.
	Timeout time.Duration
	// Logger receives read failures (with layer and file) and
	// materialization errors. Nil: silent.
	Logger *slog.Logger
	// Debug logs every FUSE request (go-fuse's debug output).
	Debug bool
	// DeferSmall keeps small files (SmallFile) from being made local
	// until StartBackground: while an instance starts, they are served
	// from memory through the daemon, prefetched ones included, and made
	// local afterwards (by FetchAll, or at a later read). Creating a file
	// costs more than the daemon serving a small one: on ext4 without a
	// journal about half a millisecond of CPU, as the allocator skips the
	// inodes freed in the last minute one by one.
	DeferSmall bool
}

// Stats counts what a mounted layer did since it was mounted.
type Stats struct {
	// Reads is the number of FUSE READ requests the daemon served; reads
	// served by passthrough or the page cache do not count.
	Reads int64
	// Materialized is the number of files made local.
	Materialized int64
	// PassthroughOpens is the number of opens handed a local file for
	// passthrough.
	PassthroughOpens int64
	// Opens and Flushes count the FUSE OPEN and FLUSH requests of regular
	// files: each is a round trip a process waits for.
	Opens, Flushes int64
	// Pushed is the number of held small files stored in the kernel's
	// page cache at their first open (DeferSmall), whose reads then
	// never reached the daemon.
	Pushed int64
	// Lookups counts the FUSE LOOKUP requests; NegativeLookups those of
	// a name the layer does not have.
	Lookups, NegativeLookups int64
	// ReadTime is the time the daemon spent serving READs, and
	// SlowReads the READs that took slowRead or longer: those waited
	// for a fetch or for decoding.
	ReadTime  time.Duration
	SlowReads int64
	// Decode is what an indexed source (GzIndex) decoded; zero for
	// others.
	Decode DecodeStats
}

// DecodeStats counts the decoding of an indexed layer (GzIndex): how many
// bytes were inflated, against how many its reads asked for, and what
// its reads waited for.
type DecodeStats struct {
	// Served is the uncompressed bytes the source's reads returned, and
	// Decoded the bytes it inflated to serve them, from the checkpoints
	// the reads started at (cache misses only).
	Served, Decoded int64
	// Misses is the number of reads of the tar stream that found their
	// bytes not decoded yet, DemandMisses those of on-demand reads, and
	// DemandMissTime how long those took (fetching and decoding).
	Misses, DemandMisses int64
	DemandMissTime       time.Duration
	// Resumed counts the misses decoded from the decoded bytes before
	// them rather than from a checkpoint.
	Resumed int64
	// Windows is the number of index windows fetched, in WindowGets
	// requests of WindowBytes, and WindowWait the time reads waited
	// for a window.
	Windows, WindowGets, WindowBytes int64
	WindowWait                       time.Duration
}

// slowRead is the time from which a READ counts in Stats.SlowReads.
const slowRead = time.Millisecond

type stats struct {
	reads, materialized, passthroughOpens, opens, flushes, pushed atomic.Int64
	lookups, negativeLookups                                      atomic.Int64
	readNanos, slowReads                                          atomic.Int64
}

// decodeStatser is a Source that counts its decoding (GzIndex).
type decodeStatser interface{ decodeStats() DecodeStats }

// Layer is one mounted layer: a read-only FUSE file system whose tree is
// the full unpack of the layer, fit as an overlayfs lower directory.
type Layer struct {
	dir     string
	name    string
	src     Source
	tree    *tree
	server  *fuse.Server
	log     *slog.Logger
	timeout time.Duration
	stats   stats

	cacheDir string
	small    int64
	defer_   bool         // MountOptions.DeferSmall
	heldSize atomic.Int64 // bytes of small files held in memory (hold)
	ptOK     atomic.Bool  // passthrough still usable on this mount
	ptWarn   sync.Once
	ctx      context.Context // cancelled by Unmount: stops materialization
	cancel   context.CancelFunc
	bg       tasks
	// started is closed by StartBackground: the instance that mounted
	// the layer is ready, so background fetching no longer competes with
	// its start-up reads.
	started     chan struct{}
	startedOnce sync.Once

	observers readObservers
	lookups   lookupObservers
	// skipPrefetch stops the prefetch of the source's StartupOrder that
	// Manager starts at mount (nil for a layer mounted by Mount alone).
	skipPrefetch context.CancelFunc
	startups     sync.Map // image keys whose start-up prefetch ran (MarkStartup)

	// backingFdHook, if set, replaces the fd handed to the kernel for
	// passthrough (tests make the registration fail with it).
	backingFdHook atomic.Pointer[func(*os.File) int]
}

// Mount mounts src read-only at dir, which must exist. The tree is built
// from src.Entries() first (ErrUnsupported for what a FUSE layer cannot
// reproduce); a layer without any extended attribute is mounted with
// xattr requests disabled, so the kernel stops sending them.
func Mount(dir string, src Source, opts MountOptions) (*Layer, error) {
	t, err := buildTree(src.Entries())
	if err != nil {
		return nil, fmt.Errorf("mount layer %s: %w", opts.Name, err)
	}
	l := &Layer{
		dir: dir, name: opts.Name, src: src, tree: t, log: opts.Logger,
		timeout: opts.Timeout, cacheDir: opts.CacheDir, small: opts.SmallFile, defer_: opts.DeferSmall,
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.timeout == 0 {
		l.timeout = DefaultTimeout
	}
	if l.small == 0 {
		l.small = 128 << 10
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.started = make(chan struct{})
	if l.cacheDir != "" {
		if err := l.initCache(); err != nil {
			l.cancel()
			return nil, fmt.Errorf("mount layer %s: %w", opts.Name, err)
		}
	}
	timeout := l.timeout
	root := &inode{l: l, n: t.root}
	server, err := fs.Mount(dir, root, &fs.Options{
		EntryTimeout:    &timeout,
		AttrTimeout:     &timeout,
		NegativeTimeout: &timeout,
		// Mode 0 is real here: whiteouts are character devices 0/0 with
		// no permission bits.
		NullPermissions: true,
		MountOptions: fuse.MountOptions{
			FsName:        "fcd-lazy",
			Name:          "fcdlazy",
			AllowOther:    true,
			Options:       []string{"ro", "default_permissions", "suid", "dev"},
			DirectMount:   true,
			DisableXAttrs: !t.xattrs,
			MaxReadAhead:  1 << 20,
			Debug:         opts.Debug,
		},
		RootStableAttr: &fs.StableAttr{Ino: t.root.ino},
	})
	if err != nil {
		l.cancel()
		return nil, fmt.Errorf("mount layer %s at %s: %w", opts.Name, dir, err)
	}
	l.server = server
	return l, nil
}

// Dir returns the mount point.
func (l *Layer) Dir() string { return l.dir }

// Stats returns the layer's counters.
func (l *Layer) Stats() Stats {
	var decode DecodeStats
	if d, ok := l.src.(decodeStatser); ok {
		decode = d.decodeStats()
	}
	return Stats{
		Reads:            l.stats.reads.Load(),
		Materialized:     l.stats.materialized.Load(),
		PassthroughOpens: l.stats.passthroughOpens.Load(),
		Opens:            l.stats.opens.Load(),
		Flushes:          l.stats.flushes.Load(),
		Pushed:           l.stats.pushed.Load(),
		Lookups:          l.stats.lookups.Load(),
		NegativeLookups:  l.stats.negativeLookups.Load(),
		ReadTime:         time.Duration(l.stats.readNanos.Load()),
		SlowReads:        l.stats.slowReads.Load(),
		Decode:           decode,
	}
}

// Wait blocks until the layer is unmounted, by Unmount or from outside
// (umount, fusermount3 -u).
func (l *Layer) Wait() { l.server.Wait() }

// Unmount stops materialization and unmounts the layer; it fails (EBUSY)
// while the mount is in use, an overlayfs on top of it for one.
func (l *Layer) Unmount() error {
	if err := l.server.Unmount(); err != nil {
		return fmt.Errorf("unmount layer %s: %w", l.name, err)
	}
	l.cancel()
	l.bg.wait()
	return nil
}

// read serves a read through the source, then notes which blocks of the
// file the daemon has served, to materialize it once all were.
func (l *Layer) read(ctx context.Context, n *tnode, p []byte, off int64, prio remote.Priority) (int, error) {
	if b := n.heldBytes(); b != nil {
		if off >= int64(len(b)) {
			return 0, nil
		}
		return copy(p, b[off:]), nil
	}
	if n.size <= l.small && l.deferring() && l.materializable(n) {
		// Held, not made local, while the instance starts (DeferSmall).
		if err := l.prefetch(ctx, n, prio); err != nil {
			return 0, err
		}
		if b := n.heldBytes(); b != nil {
			if off >= int64(len(b)) {
				return 0, nil
			}
			return copy(p, b[off:]), nil
		}
	}
	if n.size <= l.small && !l.deferring() && l.materializable(n) && n.claim() {
		data, err := l.materialize(ctx, n, prio)
		if err == nil {
			if off >= int64(len(data)) {
				return 0, nil
			}
			return copy(p, data[off:]), nil
		}
		if ctx.Err() != nil {
			return 0, err
		}
		l.log.Warn("materialize", "layer", l.name, "file", n.file, "err", err)
		// Serve the read from the source all the same.
	}
	m, err := l.src.ReadAt(ctx, n.file, p, off, prio)
	if err == io.EOF {
		err = nil
	}
	if err == nil && l.materializable(n) {
		l.served(n, off, int64(m))
	}
	return m, err
}

// deferring reports whether small files wait to be made local
// (MountOptions.DeferSmall): the instance that mounted the layer has not
// started yet.
func (l *Layer) deferring() bool {
	if !l.defer_ {
		return false
	}
	select {
	case <-l.started:
		return false
	default:
		return true
	}
}

func (l *Layer) passthrough() bool { return l.cacheDir != "" && l.ptOK.Load() }

// materializable reports whether n may be made local: passthrough works
// and the file has a digest to verify the copy against (passthrough
// bypasses the source's own checks).
func (l *Layer) materializable(n *tnode) bool { return l.passthrough() && n.sha256 }

// passthroughFailed is called when a read reaches the daemon on a handle
// that was given to the kernel for passthrough: the kernel refused the
// backing file, and go-fuse then turns passthrough off for the whole
// mount. Later opens stop materializing for nothing.
func (l *Layer) passthroughFailed(file string, off int64) {
	l.ptOK.Store(false)
	if k, ok := l.src.(wholeFileKeeper); ok {
		k.keepWholeFiles(0)
	}
	l.ptWarn.Do(func() {
		l.log.Warn("FUSE passthrough refused by the kernel; this layer's reads go through the daemon", "layer", l.name, "cache", l.cacheDir, "file", file, "offset", off)
	})
}

// stackedFS reports whether a filesystem magic is one the kernel refuses
// as a passthrough backing file (it would exceed the stacking depth).
func stackedFS(magic int64) bool {
	switch magic {
	case unix.FUSE_SUPER_MAGIC, unix.OVERLAYFS_SUPER_MAGIC, unix.ECRYPTFS_SUPER_MAGIC:
		return true
	}
	return false
}

// StartBackground lets a background fetch of the whole layer
// (ManagerOptions.Background) begin: an instance using the layer has
// started, so its start-up reads are satisfied. Later calls do nothing.
func (l *Layer) StartBackground() {
	l.startedOnce.Do(func() {
		close(l.started)
		l.bg.goFn(l.materializeHeld)
	})
}

// SkipStartupOrder stops the prefetch of the source's StartupOrder that
// the manager started when it mounted the layer, for a user that
// prefetches exactly what it needs instead (a recorded start-up).
func (l *Layer) SkipStartupOrder() {
	if l.skipPrefetch != nil {
		l.skipPrefetch()
	}
}

// MarkStartup reports whether this is the first call for key (an image)
// on this mount: a start-up prefetch for an image needs to run once per
// mount, as its bytes stay local while the layer is mounted.
func (l *Layer) MarkStartup(key string) bool {
	_, loaded := l.startups.LoadOrStore(key, true)
	return !loaded
}
