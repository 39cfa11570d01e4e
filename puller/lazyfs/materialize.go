package lazyfs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/fcd-dev/fcd/puller/remote"
)

// A file is materialized once every page of it has been served through
// the daemon (the kernel reads whole pages): one bit per page, 32 KiB of
// bitmap for a 1 GiB file while it is being read.
const seenBlock = 4 << 10

// initCache makes the cache directories and decides whether passthrough
// can work at all: a backing file on a stacked filesystem makes the
// kernel refuse the registration, and one refusal turns passthrough off
// for the whole mount (go-fuse), so such a cache is not used.
func (l *Layer) initCache() error {
	for _, d := range []string{"files", "tmp"} {
		if err := os.MkdirAll(filepath.Join(l.cacheDir, d), 0o700); err != nil {
			return err
		}
	}
	var st unix.Statfs_t
	if err := unix.Statfs(l.cacheDir, &st); err != nil {
		return err
	}
	if stackedFS(st.Type) {
		l.log.Warn("cache dir on a stacked filesystem; FUSE passthrough off", "layer", l.name, "cache", l.cacheDir)
		return nil
	}
	l.ptOK.Store(true)
	if k, ok := l.src.(wholeFileKeeper); ok {
		k.keepWholeFiles(l.small)
	}
	return nil
}

// localPath is where n's verified copy lives: by content digest when
// known, so a file is kept once for every layer that has it; else by
// layer and inode (inode numbers are assigned deterministically).
func (l *Layer) localPath(n *tnode) string {
	if n.sha256 {
		return filepath.Join(l.cacheDir, "files", digest.Digest(n.digest).Encoded())
	}
	return filepath.Join(l.cacheDir, "files", fmt.Sprintf("%s-%d", safeName(l.name), n.ino))
}

func safeName(s string) string {
	return strings.NewReplacer("/", "_", ":", "_").Replace(s)
}

// openLocal opens n's local copy for passthrough, if there is one.
func (l *Layer) openLocal(n *tnode) *os.File {
	n.mu.Lock()
	p := n.local
	n.mu.Unlock()
	if p == "" {
		p = l.localPath(n)
		if st, err := os.Stat(p); err != nil || st.Size() != n.size {
			return nil
		}
		n.mu.Lock()
		n.local = p
		n.mu.Unlock()
	}
	f, err := os.Open(p)
	if err != nil {
		l.log.Warn("open local copy", "layer", l.name, "file", n.file, "err", err)
		return nil
	}
	return f
}

// served records that [off, off+size) of n was served; when that
// completes the file, it is materialized in the background.
func (l *Layer) served(n *tnode, off, size int64) {
	if size <= 0 {
		return
	}
	blocks := (n.size + seenBlock - 1) / seenBlock
	if n.size <= l.small && l.deferring() {
		return // a later read or FetchAll makes it local
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.local != "" || n.busy {
		return
	}
	if n.seen == nil {
		n.seen = make([]uint64, (blocks+63)/64)
		n.unseen = blocks
	}
	end := off + size
	for b := (off + seenBlock - 1) / seenBlock; b*seenBlock < end; b++ {
		if bit := uint64(1) << (b % 64); min((b+1)*seenBlock, n.size) <= end && n.seen[b/64]&bit == 0 {
			n.seen[b/64] |= bit
			n.unseen--
		}
	}
	if n.unseen > 0 {
		return
	}
	n.busy = true
	l.bg.goFn(func() {
		if _, err := l.materialize(l.ctx, n, remote.Background); err != nil && l.ctx.Err() == nil {
			l.log.Warn("materialize", "layer", l.name, "file", n.file, "err", err)
		}
	})

}

// claim marks n as being materialized by the caller, unless it is local
// already or another materialization runs.
func (n *tnode) claim() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.local != "" || n.busy {
		return false
	}
	n.busy = true
	return true
}

// materialize makes n's verified local copy, for a caller that claimed
// n, and returns the file's bytes when it is small enough to hold
// (n.size <= l.small), else nil.
func (l *Layer) materialize(ctx context.Context, n *tnode, prio remote.Priority) (data []byte, err error) {
	defer func() {
		n.mu.Lock()
		n.busy = false
		if err != nil {
			n.seen = nil // start counting again; a later full read retries
		}
		n.mu.Unlock()
	}()
	final := l.localPath(n)
	tmp, err := os.CreateTemp(filepath.Join(l.cacheDir, "tmp"), "m-*")
	if err != nil {
		return nil, err
	}
	defer func() {
		tmp.Close()
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	// Passthrough bypasses the source's checks: a file without a digest
	// is not materialized.
	want := digest.Digest(n.digest)
	if !isSHA256(want) {
		return nil, fmt.Errorf("%s: no sha256 digest (%q) to verify a local copy: %w", n.file, want, ErrUnsupported)
	}
	check := sha256.New()
	var keep []byte
	if n.size <= l.small {
		keep = make([]byte, 0, n.size)
	}
	buf := make([]byte, min(n.size, 4<<20))
	held := n.heldBytes()
	for off := int64(0); off < n.size; {
		var m int
		var err error
		if held != nil {
			m = copy(buf, held[off:])
		} else {
			m, err = l.src.ReadAt(ctx, n.file, buf, off, prio)
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		if m == 0 {
			return nil, fmt.Errorf("%s: short read at %d of %d: %w", n.file, off, n.size, ErrCorrupt)
		}
		check.Write(buf[:m])
		if _, err := tmp.Write(buf[:m]); err != nil {
			return nil, err
		}
		if keep != nil {
			keep = append(keep, buf[:m]...)
		}
		off += int64(m)
	}
	if got := hex.EncodeToString(check.Sum(nil)); got != want.Encoded() {
		return nil, fmt.Errorf("%s: local copy is sha256:%s, want %s: %w", n.file, got, want, ErrCorrupt)
	}
	if err := tmp.Chmod(0o400); err != nil {
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return nil, err
	}
	n.mu.Lock()
	n.local = final
	freed := int64(len(n.held))
	n.held = nil
	n.mu.Unlock()
	l.heldSize.Add(-freed)
	l.stats.materialized.Add(1)
	return keep, nil
}

// heldBudget bounds the bytes of small files a layer holds in memory
// while it defers making them local; past it, they are made local at
// once.
const heldBudget = 256 << 20

// heldBytes returns n's bytes held in memory, or nil.
func (n *tnode) heldBytes() []byte {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.held
}

// hold keeps b, the verified bytes of the small file n, in memory until
// n is made local (materializeHeld, FetchAll), so that the daemon serves
// them without a fetch whatever the cache of decoded bytes evicts. It
// reports false when the layer's budget is spent.
func (l *Layer) hold(n *tnode, b []byte) bool {
	if l.heldSize.Add(int64(len(b))) > heldBudget {
		l.heldSize.Add(-int64(len(b)))
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.held != nil || n.local != "" {
		l.heldSize.Add(-int64(len(b)))
		return true
	}
	n.held = b
	return true
}

// materializeHeld makes the files held in memory local, once the
// instance has started (StartBackground).
func (l *Layer) materializeHeld() {
	if l.heldSize.Load() == 0 {
		return
	}
	for _, n := range l.tree.nodes {
		if l.ctx.Err() != nil {
			return
		}
		if n.heldBytes() == nil || !n.claim() {
			continue
		}
		if _, err := l.materialize(l.ctx, n, remote.Background); err != nil && l.ctx.Err() == nil {
			l.log.Warn("materialize", "layer", l.name, "file", n.file, "err", err)
		}
	}
}

// readSource reads all of n into b from the source.
func (l *Layer) readSource(ctx context.Context, n *tnode, b []byte, prio remote.Priority) error {
	for off := 0; off < len(b); {
		m, err := l.src.ReadAt(ctx, n.file, b[off:], int64(off), prio)
		if err != nil && err != io.EOF {
			return err
		}
		if m == 0 {
			return fmt.Errorf("%s: short read at %d of %d: %w", n.file, off, n.size, ErrCorrupt)
		}
		off += m
	}
	return nil
}

// prefetchWindow is how many files Prefetch fetches at once, in order:
// enough reads pending for the fetcher to keep the link full with
// coalesced GETs, whose queue serves them oldest first.
const prefetchWindow = 16

// Prefetch reads the files of the source's StartupOrder at Prefetch
// priority, prefetchWindow at a time in order, materializing those it
// can, so an instance's start-up reads find them local. It returns at the
// first error, or when ctx ends or the layer is unmounted.
func (l *Layer) Prefetch(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(l.ctx, cancel)
	defer stop()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(prefetchWindow)
	for _, name := range l.src.StartupOrder() {
		n, err := l.tree.lookup(name)
		if err != nil || n.file == "" {
			continue // replaced or deleted later in the layer
		}
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if err := l.prefetch(gctx, n, remote.Prefetch); err != nil {
				return fmt.Errorf("prefetch %s of layer %s: %w", name, l.name, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// fetchWorkers is how many files FetchAll fetches at once: enough
// pending reads for the fetcher to fill its background streams with
// coalesced GETs, whatever the files' sizes.
const fetchWorkers = 8

// chunkFetcher is a Source that can fetch its whole blob into the chunk
// cache at link speed, ahead of decoding it (GzIndex).
type chunkFetcher interface {
	FetchChunks(ctx context.Context, prio remote.Priority) error
}

// spanFetcher is a Source that can fetch many files whose compressed
// bytes lie close together with few GETs, ahead of reading them
// (EStargz): one GET per small file would cost the registry and this
// host far more than the bytes do, and never fill the link.
type spanFetcher interface {
	// extent returns the compressed bytes [off, end) of the blob that
	// hold file name.
	extent(name string) (off, end int64, ok bool)
	// fetchFiles fetches the bytes of files into the cache of decoded
	// bytes with one GET per run of close chunks.
	fetchFiles(ctx context.Context, names []string, prio remote.Priority) error
	// fetchRanges does the same for ranges of files (N < 0: the rest
	// of the file).
	fetchRanges(ctx context.Context, rs []Range, prio remote.Priority) error
}

// wholeFiles returns a Range of each of the files, whole (a negative N).
func wholeFiles(names []string) []Range {
	rs := make([]Range, 0, len(names))
	for _, name := range names {
		rs = append(rs, Range{File: name, N: -1})
	}
	return rs
}

// A span is what one read of spanFetcher.fetchFiles asks for at most
// (the fetcher joins adjacent spans into larger GETs), and spanGap the
// most bytes nobody asked for it reads, and decodes, to join two files:
// a registry request costs about as much as 32 KiB of the link, but a
// start-up of small scattered files (node) then fetches a fifth more
// than it reads: 8 KiB fetched 2% more on node, 0% on python.
const (
	spanBytes = 1 << 20
	spanGap   = 8 << 10
)

// wholeFileKeeper is a Source told up to which size the layer keeps
// files whole (materialized by digest) as soon as they are read, so it
// need not store a chunk that is such a whole file again (0: none).
type wholeFileKeeper interface{ keepWholeFiles(upTo int64) }

// fetchSmall fetches the small files ns, which must be materializable,
// with as few GETs as their source allows, then materializes each. A
// file that failed in the batch is left to its own read.
func (l *Layer) fetchSmall(ctx context.Context, ns []*tnode, prio remote.Priority) error {
	if sf, ok := l.src.(spanFetcher); ok && len(ns) > 1 {
		names := make([]string, 0, len(ns))
		for _, n := range ns {
			if !l.isLocal(n) {
				names = append(names, n.file)
			}
		}
		if err := sf.fetchFiles(ctx, names, prio); err != nil && ctx.Err() != nil {
			return err
		}
	}
	for _, n := range ns {
		if err := l.prefetch(ctx, n, prio); err != nil {
			return err
		}
	}
	return nil
}

// isLocal reports whether n has a verified local copy.
func (l *Layer) isLocal(n *tnode) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.local != ""
}

// batcher groups small files that lie close together in the blob, in the
// order they come, into batches for fetchSmall.
type batcher struct {
	l      *Layer
	sf     spanFetcher
	batch  []*tnode
	lo, hi int64
}

// add returns n's batch if n is a small materializable file that joins
// it; a full batch is returned (flushed) and n starts the next one. ok is
// false when n is not batched: the caller fetches it alone.
func (b *batcher) add(n *tnode) (full []*tnode, ok bool) {
	off, end, ok := b.extent(n)
	if !ok {
		return nil, false
	}
	if len(b.batch) > 0 && (off < b.lo || off-b.hi > spanGap || max(end, b.hi)-b.lo > spanBytes) {
		full = b.flush()
	}
	if len(b.batch) == 0 {
		b.lo, b.hi = off, end
	}
	b.batch = append(b.batch, n)
	b.hi = max(b.hi, end)
	return full, true
}

// extent returns the compressed bytes of n if n can be batched: a small
// materializable file of a source that fetches spans.
func (b *batcher) extent(n *tnode) (off, end int64, ok bool) {
	if b.sf == nil || n.size > b.l.small || !b.l.materializable(n) {
		return 0, 0, false
	}
	off, end, ok = b.sf.extent(n.file)
	return off, end, ok && end-off <= spanBytes
}

// flush returns the batch being built and starts a new one.
func (b *batcher) flush() []*tnode {
	out := b.batch
	b.batch = nil
	return out
}

// FetchAll reads every regular file of the layer at Background priority,
// several at once, in layer order, materializing those it can, so that
// nothing is left to fetch once it returns. A source that can
// (GzIndex) first fetches its whole blob, chunk by chunk with many reads
// outstanding, so the link stays full whatever the files' sizes. Like
// Prefetch, it returns at the first error, or when ctx ends or the
// layer is unmounted.
func (l *Layer) FetchAll(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(l.ctx, cancel)
	defer stop()
	if cf, ok := l.src.(chunkFetcher); ok {
		if err := cf.FetchChunks(ctx, remote.Background); err != nil {
			return fmt.Errorf("fetch chunks of layer %s: %w", l.name, err)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(fetchWorkers)
	b := &batcher{l: l}
	b.sf, _ = l.src.(spanFetcher)
	fetchBatch := func(ns []*tnode) {
		if len(ns) == 0 {
			return
		}
		g.Go(func() error {
			if err := l.fetchSmall(gctx, ns, remote.Background); err != nil {
				return fmt.Errorf("fetch files of layer %s: %w", l.name, err)
			}
			return nil
		})
	}
	for _, n := range l.tree.nodes {
		if n.file == "" || l.isLocal(n) {
			continue
		}
		if gctx.Err() != nil {
			break
		}
		if full, ok := b.add(n); ok {
			fetchBatch(full)
			continue
		}
		g.Go(func() error {
			if err := l.prefetch(gctx, n, remote.Background); err != nil {
				return fmt.Errorf("fetch %s of layer %s: %w", n.file, l.name, err)
			}
			return nil
		})
	}
	fetchBatch(b.flush())
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

func (l *Layer) prefetch(ctx context.Context, n *tnode, prio remote.Priority) error {
	if n.size <= l.small && l.deferring() && l.materializable(n) {
		if n.heldBytes() != nil || l.isLocal(n) {
			return nil
		}
		b := make([]byte, n.size)
		if err := l.readSource(ctx, n, b, prio); err != nil {
			return err
		}
		if l.hold(n, b) {
			return nil
		}
	}
	if l.materializable(n) {
		if !n.claim() {
			return nil
		}
		if st, err := os.Stat(l.localPath(n)); err == nil && st.Size() == n.size {
			n.mu.Lock()
			n.local, n.busy = l.localPath(n), false
			n.mu.Unlock()
			return nil
		}
		_, err := l.materialize(ctx, n, prio)
		return err
	}
	buf := make([]byte, min(n.size, 1<<20))
	for off := int64(0); off < n.size; {
		m, err := l.src.ReadAt(ctx, n.file, buf, off, prio)
		if err != nil && err != io.EOF {
			return err
		}
		if m == 0 {
			return fmt.Errorf("%s: short read at %d: %w", n.file, off, ErrCorrupt)
		}
		off += int64(m)
	}
	return nil
}
