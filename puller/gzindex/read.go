package gzindex

import (
	"bytes"
	"cmp"
	"compress/flate"
	"context"
	"crypto/sha256"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// Fetcher returns length bytes of the compressed layer blob starting at
// off, for instance as an HTTP range request to a registry. The reader is
// read until the needed bytes are decoded, then closed, possibly early.
type Fetcher func(ctx context.Context, off, length int64) (io.ReadCloser, error)

// Reader reads a layer's files through its index, fetching only the
// compressed bytes between the checkpoint before the requested data and
// the end of the deflate block holding its last byte. It is safe for
// concurrent use.
type Reader struct {
	x     *Index
	fetch Fetcher
	bufs  sync.Pool

	fetched      atomic.Int64
	decompressed atomic.Int64
	windowWait   atomic.Int64 // nanoseconds
}

// NewReader returns a Reader of the layer x indexes, whose blob fetch
// serves.
func NewReader(x *Index, fetch Fetcher) *Reader {
	r := &Reader{x: x, fetch: fetch}
	r.bufs.New = func() any {
		return &readBufs{in: make([]byte, 0, 64<<10), out: make([]byte, windowSize+outChunk+maxMatch)}
	}
	return r
}

type readBufs struct {
	d   inflater
	in  []byte
	out []byte
	win []byte
}

// Stats reports the compressed bytes fetched and the uncompressed bytes
// decoded (including those before the requested data) since the Reader
// was made.
func (r *Reader) Stats() (fetched, decompressed int64) {
	return r.fetched.Load(), r.decompressed.Load()
}

// WindowWait reports how long reads have waited, together, for the
// windows of an index loaded by LoadHead to be fetched.
func (r *Reader) WindowWait() time.Duration {
	return time.Duration(r.windowWait.Load())
}

// ReadAt reads len(p) bytes of the uncompressed tar stream at off, with
// io.ReaderAt's contract: fewer bytes only at the end of the stream, with
// io.EOF.
func (r *Reader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("gzindex: negative offset %d", off)
	}
	if off >= r.x.Size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), r.x.Size-off))
	if err := r.read(ctx, p[:n], off); err != nil {
		return 0, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// WindowSize is the most history a DEFLATE back-reference reaches: the
// window ReadAtFrom needs before its boundary.
const WindowSize = windowSize

// BlockBefore returns the uncompressed offset of the last deflate block
// or gzip member boundary at or before off: a reader holding the
// WindowSize bytes before it can resume there (ReadAtFrom). It returns
// 0 for an index without block starts.
func (x *Index) BlockBefore(off int64) int64 {
	i := sort.Search(len(x.blocks), func(i int) bool { return x.blocks[i].out > off })
	if i == 0 {
		return 0
	}
	return x.blocks[i-1].out
}

// ReadAtFrom is ReadAt for a caller that holds the uncompressed bytes
// before at, a boundary (BlockBefore) at or before off: window holds the
// min(WindowSize, at) bytes before at, and decoding starts there, not at
// the checkpoint before off, when that is later. The window is not
// checked: bytes not from the stream make the read return wrong bytes
// (callers hold verified ones).
func (r *Reader) ReadAtFrom(ctx context.Context, p []byte, off, at int64, window []byte) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("gzindex: negative offset %d", off)
	}
	if off >= r.x.Size {
		return 0, io.EOF
	}
	i := sort.Search(len(r.x.blocks), func(i int) bool { return r.x.blocks[i].out >= at })
	if at > off || i == len(r.x.blocks) || r.x.blocks[i].out != at || int64(len(window)) != min(windowSize, at) {
		return 0, fmt.Errorf("gzindex: no block boundary at %d with a %d-byte window for a read at %d", at, len(window), off)
	}
	n := int(min(int64(len(p)), r.x.Size-off))
	var err error
	if cp := r.x.checkpointFor(off); cp.out >= at {
		err = r.read(ctx, p[:n], off)
	} else {
		err = r.readFrom(ctx, p[:n], off, boundary{bit: r.x.blocks[i].bit, out: at, win: int32(len(window))}, window)
	}
	if err != nil {
		return 0, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (r *Reader) read(ctx context.Context, p []byte, off int64) (err error) {
	if len(p) == 0 {
		return nil
	}
	cp := r.x.checkpointFor(off)
	bufs := r.bufs.Get().(*readBufs)
	defer r.bufs.Put(bufs)

	var win []byte
	if cp.win > 0 {
		t0 := time.Now()
		z, err := r.x.window(ctx, cp)
		if cp.lazy != nil {
			r.windowWait.Add(int64(time.Since(t0)))
		}
		if err != nil {
			return err
		}
		if win, err = inflateWindow(cp, z, bufs.win[:0]); err != nil {
			return err
		}
		bufs.win = win
	}
	return r.decode(ctx, p, off, cp.boundary, win, bufs, false)
}

// readFrom reads p at off decoding from the block boundary b, with the
// window before it.
func (r *Reader) readFrom(ctx context.Context, p []byte, off int64, b boundary, window []byte) error {
	if len(p) == 0 {
		return nil
	}
	bufs := r.bufs.Get().(*readBufs)
	defer r.bufs.Put(bufs)
	return r.decode(ctx, p, off, b, window, bufs, true)
}

// decode fills p with the uncompressed bytes at off, decoding from the
// boundary b with window, the bytes before it. With peek, b is not a
// checkpoint, and byte-aligned it may be a gzip member's start rather than a deflate
// block's (the index does not tell them apart): it is one when the
// member magic's first byte, 0x1f, is there, since a block starting
// with it would be of the reserved type 3.
func (r *Reader) decode(ctx context.Context, p []byte, off int64, b boundary, win []byte, bufs *readBufs, peek bool) (err error) {
	end := off + int64(len(p))
	from, to := b.bit/8, r.x.fetchEnd(end)
	body, err := r.fetch(ctx, from, to-from)
	if err != nil {
		return fmt.Errorf("fetch layer bytes %d-%d: %w", from, to-1, err)
	}
	defer body.Close()
	var in io.Reader = body
	if peek && b.bit%8 == 0 {
		var c [1]byte
		if _, err := io.ReadFull(body, c[:]); err != nil {
			return fmt.Errorf("fetch layer bytes %d-%d: %w", from, to-1, err)
		}
		if c[0] == 0x1f {
			b.member, b.win = true, 0
		}
		in = io.MultiReader(bytes.NewReader(c[:]), body)
	}
	cr := &countReader{r: io.LimitReader(in, to-from)}
	defer func() { r.fetched.Add(cr.n) }()

	d := &bufs.d
	d.resetAt(cr, b, win, bufs.in, bufs.out)
	start := d.op
	defer func() { r.decompressed.Add(d.outBase + int64(d.op) - b.out) }()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.op+outChunk+maxMatch > len(d.out) {
			d.slide(windowSize)
			start = d.op
		}
		pos := d.outBase + int64(d.op)
		target := d.op + int(min(int64(outChunk), end-pos))
		derr := d.decode(target)
		// Copy what overlaps [off, end) of the newly decoded bytes.
		lo := max(d.outBase+int64(start), off)
		hi := min(d.outBase+int64(d.op), end)
		if lo < hi {
			copy(p[lo-off:hi-off], d.out[lo-d.outBase:hi-d.outBase])
		}
		start = d.op
		if derr != nil {
			if cr.n < to-from && cr.err == io.EOF {
				return fmt.Errorf("%w: got %d of %d bytes at %d", ErrShortFetch, cr.n, to-from, from)
			}
			return derr
		}
		if hi >= end {
			return nil
		}
		if d.st == stDone {
			return fmt.Errorf("%w: stream ends at %d, index says %d", ErrCorrupt, d.outBase+int64(d.op), r.x.Size)
		}
	}
}

// window returns cp's compressed window, fetching it (once it succeeds)
// for an index loaded by LoadHead, or waiting for a fetch of it already
// under way.
func (x *Index) window(ctx context.Context, cp *checkpoint) ([]byte, error) {
	if cp.lazy == nil {
		return cp.window, nil
	}
	for {
		if p := cp.lazy.p.Load(); p != nil {
			return *p, nil
		}
		busy, mine := cp.lazy.claim()
		if mine {
			if p := cp.lazy.p.Load(); p != nil { // fetched meanwhile
				cp.lazy.release()
				return *p, nil
			}
			break
		}
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	defer cp.lazy.release()
	if x.windows == nil {
		return nil, fmt.Errorf("%w: window at bit %d not loaded and no fetcher", ErrBadIndex, cp.bit)
	}
	b, err := x.windows(ctx, cp.woff, cp.wlen, digest.NewDigestFromBytes(digest.SHA256, cp.wsum[:]))
	if err != nil {
		return nil, fmt.Errorf("fetch window at bit %d: %w", cp.bit, err)
	}
	x.wstats.windows.Add(1)
	x.wstats.gets.Add(1)
	x.wstats.bytes.Add(int64(len(b)))
	if int64(len(b)) != cp.wlen || sha256.Sum256(b) != cp.wsum {
		return nil, fmt.Errorf("window at bit %d: %w", cp.bit, ErrChecksum)
	}
	cp.lazy.p.Store(&b)
	return b, nil
}

// claim makes the caller the fetcher of the window, unless a fetch is
// under way: then it returns a channel closed when that one ends.
func (w *lazyWindow) claim() (busy <-chan struct{}, mine bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.busy != nil {
		return w.busy, false
	}
	w.busy = make(chan struct{})
	return nil, true
}

// release ends the caller's fetch, successful or not.
func (w *lazyWindow) release() {
	w.mu.Lock()
	defer w.mu.Unlock()
	close(w.busy)
	w.busy = nil
}

// FetchWindow makes sure the window of the checkpoint a read at
// uncompressed offset off starts from is at hand: for an index loaded by
// LoadHead it fetches it, unless it was fetched before; for others it
// does nothing.
func (x *Index) FetchWindow(ctx context.Context, off int64) error {
	if len(x.checkpoints) == 0 {
		return nil
	}
	_, err := x.window(ctx, x.checkpointFor(off))
	return err
}

// FetchWindows is FetchWindow for reads at each of offs, with fewer
// requests: the windows missing, and not being fetched already, are read
// in runs, one request each, a run going on over at most gap bytes of
// windows not needed (fetched and kept too), and each window is verified
// against its sha256 on its own, so a run is read unverified
// (WindowFetcher's want is empty). Windows another call is fetching are
// waited for (and fetched again if that failed). Prefetchers call it so
// that windows arrive with the compressed bytes, not before them.
func (x *Index) FetchWindows(ctx context.Context, offs []int64, gap int64) error {
	var mine, others []*checkpoint
	seen := make(map[*checkpoint]bool, len(offs))
	for _, off := range offs {
		if len(x.checkpoints) == 0 {
			break
		}
		cp := x.checkpointFor(off)
		if cp.lazy == nil || cp.lazy.p.Load() != nil || seen[cp] {
			continue
		}
		seen[cp] = true
		if _, ok := cp.lazy.claim(); !ok {
			others = append(others, cp)
		} else if cp.lazy.p.Load() != nil { // fetched meanwhile
			cp.lazy.release()
		} else {
			mine = append(mine, cp)
		}
	}
	if len(mine)+len(others) == 0 {
		return nil
	}
	slices.SortFunc(mine, func(a, b *checkpoint) int { return cmp.Compare(a.woff, b.woff) })
	g, gctx := errgroup.WithContext(ctx)
	for len(mine) > 0 {
		n := 1
		for n < len(mine) && mine[n].woff-(mine[n-1].woff+mine[n-1].wlen) <= gap {
			n++
		}
		run := mine[:n]
		mine = mine[n:]
		g.Go(func() error {
			defer func() {
				for _, cp := range run {
					cp.lazy.release()
				}
			}()
			if x.windows == nil {
				return fmt.Errorf("%w: windows not loaded and no fetcher", ErrBadIndex)
			}
			return x.fetchRun(gctx, run)
		})
	}
	for _, cp := range others {
		g.Go(func() error {
			_, err := x.window(gctx, cp)
			return err
		})
	}
	return g.Wait()
}

// fetchRun reads the windows of run (sorted by offset) in one request,
// with whatever lies between them, and keeps each that matches its
// sha256.
func (x *Index) fetchRun(ctx context.Context, run []*checkpoint) error {
	first, last := run[0], run[len(run)-1]
	b, err := x.windows(ctx, first.woff, last.woff+last.wlen-first.woff, "")
	if err != nil {
		return fmt.Errorf("fetch windows at bits %d-%d: %w", first.bit, last.bit, err)
	}
	x.wstats.windows.Add(int64(len(run)))
	x.wstats.gets.Add(1)
	x.wstats.bytes.Add(int64(len(b)))
	if int64(len(b)) != last.woff+last.wlen-first.woff {
		return fmt.Errorf("windows at bits %d-%d: got %d bytes: %w", first.bit, last.bit, len(b), ErrShortFetch)
	}
	for _, cp := range run {
		w := b[cp.woff-first.woff : cp.woff-first.woff+cp.wlen : cp.woff-first.woff+cp.wlen]
		if sha256.Sum256(w) != cp.wsum {
			return fmt.Errorf("window at bit %d: %w", cp.bit, ErrChecksum)
		}
		cp.lazy.p.Store(&w)
	}
	return nil
}

// inflateWindow decompresses a checkpoint's window, z, into buf.
func inflateWindow(cp *checkpoint, z, buf []byte) ([]byte, error) {
	fr := flate.NewReader(bytes.NewReader(z))
	defer fr.Close()
	buf = append(buf[:0], make([]byte, cp.win)...)
	if _, err := io.ReadFull(fr, buf); err != nil {
		return nil, fmt.Errorf("%w: window at bit %d: %v", ErrBadIndex, cp.bit, err)
	}
	if n, _ := fr.Read(make([]byte, 1)); n != 0 {
		return nil, fmt.Errorf("%w: window at bit %d too long", ErrBadIndex, cp.bit)
	}
	return buf, nil
}

type countReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil {
		c.err = err
	}
	return n, err
}

// ReadFileAt reads len(p) bytes of a regular file's data at off, with
// io.ReaderAt's contract. Hard links read their target's data.
func (r *Reader) ReadFileAt(ctx context.Context, e *Entry, p []byte, off int64) (int, error) {
	e, err := r.x.dataEntry(e)
	if err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, fmt.Errorf("gzindex: negative offset %d", off)
	}
	if off >= e.Size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), e.Size-off))
	if err := r.read(ctx, p[:n], e.Offset+off); err != nil {
		return 0, fmt.Errorf("read %s: %w", e.Name, err)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// ReadFile returns a regular file's whole data, checked against the CRC-32
// and, in a version 2 index, the sha256 recorded at build time
// (ErrChecksum).
func (r *Reader) ReadFile(ctx context.Context, e *Entry) ([]byte, error) {
	e, err := r.x.dataEntry(e)
	if err != nil {
		return nil, err
	}
	b := make([]byte, e.Size)
	if err := r.read(ctx, b, e.Offset); err != nil {
		return nil, fmt.Errorf("read %s: %w", e.Name, err)
	}
	if crc32.ChecksumIEEE(b) != e.CRC32 {
		return nil, fmt.Errorf("read %s: %w", e.Name, ErrChecksum)
	}
	if e.Digest != "" && digest.SHA256.FromBytes(b) != e.Digest {
		return nil, fmt.Errorf("read %s: %w (sha256)", e.Name, ErrChecksum)
	}
	return b, nil
}

// dataEntry resolves a hard link to its target and refuses entries with
// no readable data.
func (x *Index) dataEntry(e *Entry) (*Entry, error) {
	if e.Type == '1' {
		t, ok := x.Lookup(e.Linkname)
		if !ok {
			return nil, fmt.Errorf("%s: hard link target %s: %w", e.Name, e.Linkname, ErrNotRegular)
		}
		e = t
	}
	if e.Sparse {
		return nil, fmt.Errorf("%s: %w", e.Name, ErrSparse)
	}
	if !e.IsRegular() {
		return nil, fmt.Errorf("%s: %w", e.Name, ErrNotRegular)
	}
	return e, nil
}

// FileFetcher serves a Fetcher from a local blob, for tests and tools.
func FileFetcher(ra io.ReaderAt) Fetcher {
	return func(_ context.Context, off, length int64) (io.ReadCloser, error) {
		return io.NopCloser(io.NewSectionReader(ra, off, length)), nil
	}
}
