package lazyfs

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/fcd-dev/fcd/puller/gzindex"
	"github.com/fcd-dev/fcd/puller/remote"
)

// Reads through an index start at a checkpoint and decode forward, so a
// GzIndex reads the tar stream in aligned blocks, kept in the shared
// cache of decoded bytes. Blocks are small, so that a small file costs
// little more than its own compressed bytes beyond the checkpoint; a miss
// keeps every whole block it decoded on the way from the checkpoint (they
// cost nothing more to fetch), and a miss right after a cached block (a
// sequential reader) decodes gzReadahead ahead, so a long read decodes
// each stretch about once.
const (
	gzBlockSize = 16 << 10
	gzReadahead = 1 << 20
	// gzKeepBefore bounds the decoded bytes kept before a missed block.
	gzKeepBefore = 4 << 20
)

// GzIndex is the Source of an unmodified gzip layer with a gzindex index
// (index-only acceleration): file bytes are decoded from verified chunks
// of the original blob.
type GzIndex struct {
	x         *gzindex.Index
	blob      Blob
	blockSize int64 // gzBlockSize; benchmarks compare others
	r         *gzindex.Reader
	entries   []Entry
	files     map[string]*gzindex.Entry
	startup   []string

	flights  flights[int64]
	decoding decodes
	stats    gzStats
	// fetched: FetchChunks read every chunk, so fetchRanges has nothing
	// to add (the reads find the chunks in the fetcher's memory or cache).
	fetched atomic.Bool
}

var _ Source = (*GzIndex)(nil)

// gzStats counts what a GzIndex served and what its misses cost
// (DecodeStats).
type gzStats struct {
	served, misses, demandMisses, demandMissNanos, resumed atomic.Int64
}

func (s *GzIndex) decodeStats() DecodeStats {
	_, decoded := s.r.Stats()
	windows, gets, bytes := s.x.WindowStats()
	return DecodeStats{
		Served: s.stats.served.Load(), Decoded: decoded,
		Misses: s.stats.misses.Load(), Resumed: s.stats.resumed.Load(), DemandMisses: s.stats.demandMisses.Load(),
		DemandMissTime: time.Duration(s.stats.demandMissNanos.Load()),
		Windows:        windows, WindowGets: gets, WindowBytes: bytes, WindowWait: s.r.WindowWait(),
	}
}

// prioKey carries a read's priority through gzindex.Reader to the fetch.
type prioKey struct{}

func priority(ctx context.Context) remote.Priority {
	p, _ := ctx.Value(prioKey{}).(remote.Priority)
	return p
}

// NewGzIndex returns the Source of the layer x indexes, whose blob serves
// the compressed bytes. startup, if not nil, is the recorded start-up
// order (Entry names).
//
// Reads fetch whole aligned chunks through Blob.ReadChunk, each verified
// against the sha256 the index records, and files carry the index's
// digests for materialization. A version 1 index, which records neither,
// is refused (ErrUnsupported: rebuild it), as are layers with sparse files,
// which the index cannot read.
func NewGzIndex(x *gzindex.Index, blob Blob, startup []string) (*GzIndex, error) {
	if x.Version() < 2 {
		return nil, fmt.Errorf("gzindex version %d has no chunk digests: %w", x.Version(), ErrUnsupported)
	}
	// A read fetches (and holds) whole chunks: fcd's are 16 KiB.
	if cs := x.ChunkSize(); cs > maxChunkBytes {
		return nil, fmt.Errorf("gzindex chunks of %d bytes, more than %d: %w", cs, maxChunkBytes, ErrUnsupported)
	}
	fetch := x.ChunkFetcher(func(ctx context.Context, off, n int64, want digest.Digest) ([]byte, error) {
		return blob.ReadChunk(ctx, off, n, want, priority(ctx))
	})
	s := &GzIndex{
		x: x, blob: blob, blockSize: gzBlockSize, r: gzindex.NewReader(x, fetch), startup: startup,
		files: make(map[string]*gzindex.Entry),
	}
	for i := range x.Entries {
		ie := &x.Entries[i]
		e, err := entryFromIndex(ie)
		if err != nil {
			return nil, err
		}
		s.entries = append(s.entries, e)
		delete(s.files, e.Name)
		if e.Type == tar.TypeReg {
			s.files[e.Name] = ie
		}
	}
	return s, nil
}

func entryFromIndex(ie *gzindex.Entry) (Entry, error) {
	e := Entry{
		Name: cleanName(ie.Name), Type: ie.Type, Mode: ie.Mode, UID: ie.UID, GID: ie.GID,
		ModTime: ie.ModTime, Linkname: ie.Linkname, Xattrs: ie.Xattrs(),
		Devmajor: ie.Devmajor, Devminor: ie.Devminor,
	}
	switch ie.Type {
	case tar.TypeReg, tar.TypeRegA, tar.TypeCont:
		if ie.Sparse {
			return Entry{}, fmt.Errorf("sparse file %s: %w", e.Name, ErrUnsupported)
		}
		e.Type, e.Size, e.Digest = tar.TypeReg, ie.Size, ie.Digest
	case tar.TypeLink:
		e.Linkname = cleanName(ie.Linkname)
	case tar.TypeDir, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		return Entry{}, fmt.Errorf("tar entry %s of type %q: %w", e.Name, ie.Type, ErrUnsupported)
	}
	return e, nil
}

// Entries implements Source.
func (s *GzIndex) Entries() []Entry { return s.entries }

// StartupOrder implements Source.
func (s *GzIndex) StartupOrder() []string { return s.startup }

// ReadAt implements Source.
func (s *GzIndex) ReadAt(ctx context.Context, name string, p []byte, off int64, prio remote.Priority) (int, error) {
	ie, ok := s.files[name]
	if !ok {
		return 0, fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	if off < 0 {
		return 0, fmt.Errorf("%s: negative offset %d", name, off)
	}
	if off >= ie.Size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), ie.Size-off)
	for n := int64(0); n < want; {
		pos := ie.Offset + off + n
		start := pos / s.blockSize * s.blockSize
		b, err := s.block(ctx, start, ie.Offset+off+want, ie.Offset+ie.Size, prio)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		if pos-start >= int64(len(b)) {
			return 0, fmt.Errorf("%s: tar stream ends at %d: %w", name, start+int64(len(b)), ErrCorrupt)
		}
		n += int64(copy(p[n:want], b[pos-start:]))
	}
	s.stats.served.Add(want)
	if want < int64(len(p)) {
		return int(want), io.EOF
	}
	return int(want), nil
}

// block returns the blockSize bytes of the tar stream at start (fewer at
// its end), for a read that needs the stream up to need, of a file whose
// data ends at limit. A miss decodes up to need at once (one fetch for
// the read, however many blocks it spans), and a sequential read up to
// gzReadahead ahead, but not past the file. It decodes from the decoded
// bytes before start when the cache holds a window's worth before a
// block boundary (resume), else from the checkpoint before start; a
// prefetch miss whose window another miss is decoding waits for it.
func (s *GzIndex) block(ctx context.Context, start, need, limit int64, prio remote.Priority) ([]byte, error) {
	mk := memKey{s, start, 0}
	if b, ok := decoded.get(mk); ok {
		return b, nil
	}
	return s.flights.do(ctx, start, prio, func(ctx context.Context) ([]byte, error) {
		s.stats.misses.Add(1)
		if prio == remote.OnDemand {
			s.stats.demandMisses.Add(1)
			defer func(t0 time.Time) { s.stats.demandMissNanos.Add(int64(time.Since(t0))) }(time.Now())
		}
		end := max(start+s.blockSize, need)
		if _, ok := decoded.get(memKey{s, start - s.blockSize, 0}); ok && start > 0 {
			end = max(end, min(start+gzReadahead, limit))
		}
		end = min(end, s.x.Size)
		if prio != remote.OnDemand && s.awaitWindow(ctx, start, end, prio) {
			if b, ok := decoded.get(mk); ok {
				return b, nil
			}
		}
		done := s.decoding.add(start, end)
		defer done()
		cp := s.x.CheckpointBefore(start)
		from := start - min(start-cp, gzKeepBefore)/s.blockSize*s.blockSize
		at, win := s.resumeAt(cp, start)
		if win != nil {
			from = start
		}
		buf := make([]byte, end-from)
		rctx := context.WithValue(ctx, prioKey{}, prio)
		var n int
		var err error
		if win != nil {
			s.stats.resumed.Add(1)
			n, err = s.r.ReadAtFrom(rctx, buf, from, at, win)
		} else {
			n, err = s.r.ReadAt(rctx, buf, from)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		buf = buf[:n]
		for o := from; o < from+int64(n); o += s.blockSize {
			b := buf[o-from : min(o-from+s.blockSize, int64(n))]
			if o == start || int64(len(b)) == s.blockSize {
				decoded.add(memKey{s, o, 0}, b)
			}
		}
		return buf[start-from : min(start-from+s.blockSize, int64(n))], nil
	})
}

// resumeAt returns where a miss at start may decode from instead of the
// checkpoint cp: the last block boundary before start, past cp, whose
// window (the gzindex.WindowSize bytes before it) the cache of decoded
// bytes holds, with that window; a nil window when there is none.
func (s *GzIndex) resumeAt(cp, start int64) (at int64, win []byte) {
	at = s.x.BlockBefore(start)
	if at <= cp {
		return 0, nil
	}
	lo := at - min(gzindex.WindowSize, at)
	win = make([]byte, 0, at-lo)
	for b := lo / s.blockSize * s.blockSize; b < at; b += s.blockSize {
		d, ok := decoded.get(memKey{s, b, 0})
		if !ok || int64(len(d)) < min(s.blockSize, at-b) {
			return 0, nil
		}
		win = append(win, d[max(lo-b, 0):min(int64(len(d)), at-b)]...)
	}
	return at, win
}

// awaitWindow waits, when a decode under way will produce the window a
// miss at start would resume from (resumeAt), for it to end, having
// asked for the compressed bytes up to end meanwhile so that they are
// not fetched only once the decode starts. It reports whether it waited.
// Decoding from the checkpoint instead would decode again what the other
// decode does: a start-up replay reads a long range as pieces at once.
func (s *GzIndex) awaitWindow(ctx context.Context, start, end int64, prio remote.Priority) bool {
	cp := s.x.CheckpointBefore(start)
	at := s.x.BlockBefore(start)
	if at <= cp {
		return false
	}
	busy := s.decoding.covering(at-min(gzindex.WindowSize, at), at)
	if busy == nil {
		return false
	}
	if from, to := s.x.FetchRange(start, end-start); to > from && s.x.ChunkSize() > 0 {
		cs := s.x.ChunkSize()
		for i := int(from / cs); int64(i)*cs < to; i++ {
			off, n := s.x.Chunk(i)
			d := s.x.ChunkDigest(i)
			go s.blob.ReadChunk(ctx, off, n, d, prio) //nolint:errcheck // the decode reads it again
		}
	}
	select {
	case <-busy:
	case <-ctx.Done():
	}
	return true
}

// decodes are the decodes under way of a GzIndex, as ranges of the tar
// stream, for misses to wait for rather than decode the same bytes.
type decodes struct {
	mu  sync.Mutex
	all map[*decodeRun]bool
}

type decodeRun struct {
	from, end int64
	done      chan struct{}
}

// add registers a decode of [from, end); done ends it.
func (d *decodes) add(from, end int64) (done func()) {
	r := &decodeRun{from: from, end: end, done: make(chan struct{})}
	d.mu.Lock()
	if d.all == nil {
		d.all = make(map[*decodeRun]bool)
	}
	d.all[r] = true
	d.mu.Unlock()
	return func() {
		d.mu.Lock()
		delete(d.all, r)
		d.mu.Unlock()
		close(r.done)
	}
}

// covering returns a channel closed when a decode under way that
// produces [from, end) ends, or nil if there is none.
func (d *decodes) covering(from, end int64) <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	for r := range d.all {
		if r.from <= from && r.end >= end {
			return r.done
		}
	}
	return nil
}

// extent implements spanFetcher: the whole chunks a read of all of file
// name decodes from, from the checkpoint before it.
func (s *GzIndex) extent(name string) (off, end int64, ok bool) {
	ie, ok := s.files[name]
	if !ok || ie.Size == 0 {
		return 0, 0, false
	}
	first, last, err := s.x.FileChunks(ie, 0, ie.Size)
	if err != nil || first == last {
		return 0, 0, false
	}
	off, _ = s.x.Chunk(first)
	lo, n := s.x.Chunk(last - 1)
	return off, lo + n, true
}

// fetchFiles implements spanFetcher: fetchRanges of the files whole.
func (s *GzIndex) fetchFiles(ctx context.Context, names []string, prio remote.Priority) error {
	return s.fetchRanges(ctx, wholeFiles(names), prio)
}

// fetchRanges implements spanFetcher: every chunk that reading rs's bytes
// (a negative N: the rest of the file) decodes from, unless those bytes
// are decoded already, is asked for at once, with those between them at
// most spanGap apart, so that the fetcher joins them into few GETs;
// verified, they wait in the fetcher's memory or cache for the reads that
// decode them.
func (s *GzIndex) fetchRanges(ctx context.Context, rs []Range, prio remote.Priority) error {
	if s.fetched.Load() {
		return nil
	}
	want := make(map[int]bool)
	var starts []int64 // where the reads of rs decode from
	for _, r := range rs {
		ie, n, ok := s.rangeOf(r)
		if !ok || s.isDecoded(ie.Offset+r.Off, n) {
			continue
		}
		first, end, err := s.x.FileChunks(ie, r.Off, n)
		if err != nil {
			continue // the read itself reports it
		}
		for i := first; i < end; i++ {
			want[i] = true
		}
		starts = s.appendStarts(starts, ie.Offset+r.Off, n)
	}
	ids := slices.Sorted(maps.Keys(want))
	// The chunks between two wanted ones at most spanGap apart come too:
	// a GET joining them would read their bytes anyway, and a start-up
	// reads its neighbours' files too.
	if cs := s.x.ChunkSize(); cs > 0 {
		for k := range len(ids) - 1 {
			if gap := int64(ids[k+1]-ids[k]-1) * cs; gap > 0 && gap <= spanGap {
				for i := ids[k] + 1; i < ids[k+1]; i++ {
					ids = append(ids, i)
				}
			}
		}
		slices.Sort(ids)
	}
	g, gctx := errgroup.WithContext(ctx)
	// The windows the reads will start from come with the chunks, not
	// one round trip before their decoding (an index loaded whole has
	// them all).
	if len(starts) > 0 {
		wctx := context.WithValue(gctx, prioKey{}, prio)
		g.Go(func() error { return s.x.FetchWindows(wctx, starts, windowGap) })
	}
	for _, i := range ids {
		off, n := s.x.Chunk(i)
		d := s.x.ChunkDigest(i)
		g.Go(func() error {
			_, err := s.blob.ReadChunk(gctx, off, n, d, prio)
			return err
		})
	}
	return g.Wait()
}

// rangeOf returns the file r reads and how many of its bytes from r.Off
// (a negative r.N: the rest of the file); false when r names no file of
// the layer or no bytes.
func (s *GzIndex) rangeOf(r Range) (ie *gzindex.Entry, n int64, ok bool) {
	ie, ok = s.files[r.File]
	if !ok {
		return ie, 0, false
	}
	n = r.N
	if n < 0 || r.Off+n > ie.Size {
		n = ie.Size - r.Off
	}
	return ie, n, n > 0
}

// appendStarts appends to starts where reads of the tar stream's n bytes
// at off decode from: the checkpoints before and in them.
func (s *GzIndex) appendStarts(starts []int64, off, n int64) []int64 {
	for o := off; o < off+n; o = s.x.CheckpointAfter(o) {
		if cp := s.x.CheckpointBefore(o); len(starts) == 0 || starts[len(starts)-1] != cp {
			starts = append(starts, cp)
		}
	}
	return starts
}

// fetchWindows fetches the windows that reading rs (as fetchRanges) will
// decode from, in few requests, unless they are at hand or being fetched.
func (s *GzIndex) fetchWindows(ctx context.Context, rs []Range, prio remote.Priority) error {
	var starts []int64
	for _, r := range rs {
		if ie, n, ok := s.rangeOf(r); ok {
			starts = s.appendStarts(starts, ie.Offset+r.Off, n)
		}
	}
	return s.x.FetchWindows(context.WithValue(ctx, prioKey{}, prio), starts, windowGap)
}

// PrefetchWindows fetches, in few requests, the windows of the index
// checkpoints that reads of rs will decode from, when the layer is read
// through an index loaded by its head (LayerOptions.IndexBlob); it
// returns nil at once for other layers. A start-up replay calls it with
// all its ranges first, so that its reads, in whatever order they come,
// find the windows fetched or being fetched.
func (l *Layer) PrefetchWindows(ctx context.Context, rs []Range) error {
	s, ok := l.src.(*GzIndex)
	if !ok {
		return nil
	}
	return s.fetchWindows(ctx, rs, remote.Prefetch)
}

// isDecoded reports whether the tar stream's n bytes at off are in the
// cache of decoded bytes.
func (s *GzIndex) isDecoded(off, n int64) bool {
	for b := off / s.blockSize * s.blockSize; b < off+n; b += s.blockSize {
		if _, ok := decoded.get(memKey{s, b, 0}); !ok {
			return false
		}
	}
	return true
}

// windowGap is how many bytes of windows no read needs a run of windows
// that fetchRanges reads in one request may span: a few windows' worth,
// cheaper than a request of its own.
const windowGap = 16 << 10

// FetchChunks keeps chunkWindowBytes of chunk reads outstanding (at least
// 64 reads): the fetcher coalesces adjacent ones into GETs and runs
// several at once, so it needs several GETs' worth pending.
const chunkWindowBytes = 16 << 20

// FetchChunks reads every chunk of the blob, in order, at priority prio,
// with chunkWindowBytes of reads outstanding, so the chunks land verified
// in the fetcher's cache at link speed; decoding them later needs no
// network.
// It returns at the first error or when ctx ends.
func (s *GzIndex) FetchChunks(ctx context.Context, prio remote.Priority) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(64, int(chunkWindowBytes/max(s.x.ChunkSize(), 1))))
	for i := range s.x.Chunks() {
		if gctx.Err() != nil {
			break
		}
		off, n := s.x.Chunk(i)
		want := s.x.ChunkDigest(i)
		g.Go(func() error {
			_, err := s.blob.ReadChunk(gctx, off, n, want, prio)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.fetched.Store(true)
	return nil
}
