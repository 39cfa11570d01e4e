package lazyfs

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/fcd-dev/fcd/puller/remote"
)

// ReadObserver is told of the reads instances make of a layer's regular
// files (Layer.Observe): file is the Source name of the data (a hard
// link's target), [off, off+n) the bytes read. It is called on the FUSE
// request path, so it must be quick, and it may be called concurrently.
type ReadObserver func(file string, off, n int64)

// observerSet is a layer's set of observers of one kind (ReadObserver,
// LookupObserver), read without a lock on every FUSE request.
type observerSet[F any] struct {
	mu   sync.Mutex
	next int
	m    map[int]F
	list atomic.Pointer[[]F]
}

func (o *observerSet[F]) add(f F) (remove func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = make(map[int]F)
	}
	id := o.next
	o.next++
	o.m[id] = f
	o.publishLocked()
	return func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		delete(o.m, id)
		o.publishLocked()
	}
}

func (o *observerSet[F]) publishLocked() {
	if len(o.m) == 0 {
		o.list.Store(nil)
		return
	}
	l := make([]F, 0, len(o.m))
	for _, f := range o.m {
		l = append(l, f)
	}
	o.list.Store(&l)
}

// load returns the observers, or nil when there are none.
func (o *observerSet[F]) load() []F {
	if l := o.list.Load(); l != nil {
		return *l
	}
	return nil
}

// readObservers is a layer's set of ReadObservers.
type readObservers struct{ observerSet[ReadObserver] }

func (o *readObservers) notify(file string, off, n int64) {
	if n <= 0 {
		return
	}
	for _, f := range o.load() {
		f(file, off, n)
	}
}

// Observe calls f for every read of a regular file that reaches the
// daemon from now on, and for every open served by passthrough (as a
// read of the whole file, since its reads are not seen), until remove is
// called. Reads served by the kernel's page cache are not seen: observe
// a layer from its first use to see what an instance reads. A layer is
// shared, so the reads of every image using it are seen.
func (l *Layer) Observe(f ReadObserver) (remove func()) { return l.observers.add(f) }

// PrefetchRange fetches the bytes [off, off+n) of the regular file name
// (a Source name, as a ReadObserver sees it) at Prefetch priority, so an
// instance's read of them finds them local: a small file, or a range
// that is the whole file, is made local whole (materialized) when it can
// be, so its open is served by passthrough (a small file is held in
// memory instead while the layer defers them, MountOptions.DeferSmall);
// other bytes land in the chunk cache and the cache of decoded bytes. A name the layer does not have is ErrNotFound. It returns
// when ctx ends or the layer is unmounted.
func (l *Layer) PrefetchRange(ctx context.Context, name string, off, n int64) error {
	t, err := l.tree.lookup(name)
	if err != nil || t.file == "" {
		return fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(l.ctx, cancel)
	defer stop()
	if t.size <= l.small || off == 0 && n >= t.size && l.materializable(t) {
		// Whole: made local (a small file is held instead while
		// deferring), so its reads are served by passthrough.
		return l.prefetch(ctx, t, remote.Prefetch)
	}
	end := min(off+n, t.size)
	buf := make([]byte, min(end-off, 1<<20))
	for off < end {
		m, err := l.src.ReadAt(ctx, t.file, buf[:min(int64(len(buf)), end-off)], off, remote.Prefetch)
		if err != nil && err != io.EOF {
			return fmt.Errorf("prefetch %s of layer %s: %w", name, l.name, err)
		}
		if m == 0 {
			return fmt.Errorf("%s: short read at %d: %w", name, off, ErrCorrupt)
		}
		off += int64(m)
	}
	return nil
}

// Range is a read of bytes [Off, Off+N) of the regular file File (a
// Source name, as a ReadObserver sees it).
type Range struct {
	File   string
	Off, N int64
}

// PrefetchRanges prefetches rs as PrefetchRange does each, but with
// fewer GETs: the small files among them are fetched whole, in blob
// order, those whose bytes lie close together in one GET, then the other
// ranges, in order, a few at once. It returns at the first error, when ctx ends or the
// layer is unmounted.
func (l *Layer) PrefetchRanges(ctx context.Context, rs []Range) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(l.ctx, cancel)
	defer stop()
	b := &batcher{l: l}
	b.sf, _ = l.src.(spanFetcher)
	type small struct {
		n   *tnode
		off int64
	}
	var smalls []small
	var rest, fetch []Range
	for _, r := range rs {
		t, err := l.tree.lookup(r.File)
		if err != nil || t.file == "" {
			return fmt.Errorf("%s: %w", r.File, ErrNotFound)
		}
		if l.isLocal(t) || t.heldBytes() != nil {
			continue
		}
		if off, _, ok := b.extent(t); ok {
			smalls = append(smalls, small{t, off})
			fetch = append(fetch, Range{File: t.file, N: -1})
			continue
		}
		rest = append(rest, r)
		fetch = append(fetch, Range{File: t.file, Off: r.Off, N: r.N})
	}
	// Ask for every range's bytes at once, so that those close together
	// in the blob share GETs; what follows finds them decoded.
	if b.sf != nil && len(fetch) > 1 {
		if err := b.sf.fetchRanges(ctx, fetch, remote.Prefetch); err != nil && ctx.Err() != nil {
			return err
		}
	}
	sort.SliceStable(smalls, func(i, j int) bool { return smalls[i].off < smalls[j].off })
	for _, sm := range smalls {
		if full, _ := b.add(sm.n); len(full) > 0 {
			if err := l.fetchSmall(ctx, full, remote.Prefetch); err != nil {
				return err
			}
		}
	}
	if ns := b.flush(); len(ns) > 0 {
		if err := l.fetchSmall(ctx, ns, remote.Prefetch); err != nil {
			return err
		}
	}
	// The other ranges are fetched rangeWorkers at a time, in order: a
	// source that does not batch small files (GzIndex) leaves them all
	// here, and one after another they would trail behind the reads that
	// wait for them.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(rangeWorkers)
	for _, r := range rest {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return l.PrefetchRange(gctx, r.File, r.Off, r.N) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// rangeWorkers is how many ranges PrefetchRanges fetches at once.
const rangeWorkers = 4
