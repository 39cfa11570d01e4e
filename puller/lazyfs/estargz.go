package lazyfs

import (
	"archive/tar"
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/fcd-dev/fcd/puller/gzindex"
	"github.com/fcd-dev/fcd/puller/remote"
)

// EStargz is the Source of an eStargz layer: entries from its table of
// contents (TOC), file bytes from the gzip members that hold them, each
// chunk verified against the TOC's chunkDigest (sha256 of its
// uncompressed bytes) before use.
type EStargz struct {
	blob      Blob
	store     ChunkStore // nil: none
	tocDigest digest.Digest
	entries   []Entry
	files     map[string][]tocChunk // regular file name → chunks, by file offset
	byOff     []*tocChunk           // every chunk of files, by blob offset
	startup   []string

	flights flights[tocChunkKey]
	// members are the gzip members (by blob offset) fetchRanges calls
	// are fetching, so that concurrent calls, and reads, fetch each once.
	membersMu sync.Mutex
	members   map[int64]*memberClaim
	// wholeKept: the layer keeps files of up to this many bytes whole
	// and verified (materialized) by digest as soon as they are read, so
	// a chunk that is such a whole file is not also stored. A larger file
	// is made local only once read whole: until then its chunk is stored,
	// or a start-up that prefetched it would fetch it again once the
	// cache of decoded bytes dropped it.
	wholeKept atomic.Int64
}

var _ Source = (*EStargz)(nil)

// tocChunk is one verified unit of a file: ChunkSize bytes that start
// InnerOffset bytes into the decompression of the gzip member(s) at
// [off, end) of the blob.
type tocChunk struct {
	fileOff int64
	size    int64
	off     int64
	end     int64
	inner   int64
	digest  digest.Digest
	whole   bool // the file's only chunk: its digest is the file's
}

// memberClaim is a gzip member a fetchRanges call is fetching, as part
// of the read of the run [lo, hi) of the blob (zero until the run is
// formed). done is closed once its chunks are decoded (or failed).
type memberClaim struct {
	done    chan struct{}
	lo, hi  int64
	fetched bool // the run's read returned
}

type tocChunkKey struct {
	off, inner int64
}

// ChunkStore keeps verified chunks by digest for the whole host; package
// cache's Cache is one. Get returns only bytes that hash to d (an error
// wrapping errdefs.ErrNotFound when it has none).
type ChunkStore interface {
	Get(ctx context.Context, d digest.Digest) ([]byte, error)
	PutBytes(ctx context.Context, d digest.Digest, b []byte) error
}

// EStargzOptions configures OpenEStargz. The zero value reads an
// unauthenticated TOC and keeps chunks only in memory.
type EStargzOptions struct {
	// TOCDigest, when set (the layer's
	// "containerd.io/snapshot/stargz/toc.digest" annotation), is what the
	// TOC must hash to (ErrCorrupt otherwise); the TOC's chunk digests
	// then authenticate every byte read.
	TOCDigest digest.Digest
	// Chunks, when set, stores each verified chunk under its chunkDigest
	// (sha256 of its uncompressed bytes) and is asked first, so a chunk
	// is fetched once per host whatever image or layer holds it. The
	// fetcher cannot cache eStargz chunks itself: the TOC has no digest of
	// their compressed bytes.
	Chunks ChunkStore
}

// OpenEStargz reads the footer and TOC of the eStargz blob of size bytes
// that blob serves.
func OpenEStargz(ctx context.Context, blob Blob, size int64, opts EStargzOptions) (*EStargz, error) {
	toc, payload, dgst, err := readTOC(ctx, blob, size)
	if err != nil {
		return nil, err
	}
	if opts.TOCDigest != "" && dgst != opts.TOCDigest {
		return nil, fmt.Errorf("estargz TOC is %s, annotation says %s: %w", dgst, opts.TOCDigest, ErrCorrupt)
	}
	s := &EStargz{blob: blob, store: opts.Chunks, tocDigest: dgst, files: make(map[string][]tocChunk)}
	if err := s.load(toc, payload); err != nil {
		return nil, err
	}
	return s, nil
}

// readTOC finds the TOC through the footer (current or legacy eStargz)
// and returns it with the size of the payload before it and its digest.
func readTOC(ctx context.Context, blob Blob, size int64) (*jtoc, int64, digest.Digest, error) {
	decs := []estargz.Decompressor{new(estargz.GzipDecompressor), new(estargz.LegacyGzipDecompressor)}
	n := int64(0)
	for _, d := range decs {
		n = max(n, min(d.FooterSize(), size))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // the TOC pieces not read
	footer, err := blob.ReadRange(ctx, size-n, n, remote.OnDemand)
	if err != nil {
		return nil, 0, "", fmt.Errorf("read estargz footer: %w", err)
	}
	var errs []error
	for _, d := range decs {
		fs := d.FooterSize()
		if int64(len(footer)) < fs {
			continue
		}
		if _, ok := d.(*estargz.GzipDecompressor); ok && !footerExtraOK(footer[int64(len(footer))-fs:]) {
			errs = append(errs, errors.New("footer: gzip extra field shorter than its STARGZ subfield"))
			continue
		}
		_, tocOff, tocSize, err := d.ParseFooter(footer[int64(len(footer))-fs:])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if tocOff < 0 || tocOff > size-fs {
			errs = append(errs, fmt.Errorf("TOC offset %d outside a blob of %d bytes", tocOff, size))
			continue
		}
		if tocSize <= 0 {
			tocSize = size - tocOff - fs
		}
		// The compressed TOC is shorter than its JSON: a longer one is
		// refused before its pieces are read at once.
		if tocSize > maxTOCBytes {
			errs = append(errs, fmt.Errorf("TOC of %d bytes, more than %d: %w", tocSize, maxTOCBytes, ErrUnsupported))
			continue
		}
		// Both footers point at the same TOC format.
		pr := readPieces(ctx, blob, tocOff, tocSize)
		toc, dgst, err := parseTOC(pr)
		if pr.err != nil {
			return nil, 0, "", fmt.Errorf("read estargz TOC: %w", pr.err)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		return toc, tocOff, dgst, nil
	}
	return nil, 0, "", fmt.Errorf("not an estargz blob: %w: %w", errors.Join(errs...), ErrUnsupported)
}

// footerExtraOK reports whether estargz.GzipDecompressor.ParseFooter
// may parse the footer p: it (v0.19.1) slices the gzip extra field by the
// length of the STARGZ subfield, and panics on a shorter field. The
// header is read with compress/gzip, as ParseFooter reads it.
func footerExtraOK(p []byte) bool {
	zr, err := gzip.NewReader(bytes.NewReader(p))
	if err != nil {
		return true // ParseFooter fails on it too
	}
	return len(zr.Extra) < 4 || len(zr.Extra) >= 4+16+len("STARGZ")
}

var tocTypes = map[string]byte{
	"dir":      tar.TypeDir,
	"reg":      tar.TypeReg,
	"symlink":  tar.TypeSymlink,
	"hardlink": tar.TypeLink,
	"char":     tar.TypeChar,
	"block":    tar.TypeBlock,
	"fifo":     tar.TypeFifo,
}

// load turns the TOC into entries and chunk lists. The landmark files
// eStargz adds are left out (they are not part of the image's tree); the
// regular files before ".prefetch.landmark" are the start-up order.
func (s *EStargz) load(toc *jtoc, payload int64) error {
	// A chunk's compressed bytes end where the next member starts.
	ends := make([]int64, len(toc.Entries))
	next := payload
	for i := len(toc.Entries) - 1; i >= 0; i-- {
		ends[i] = next
		if e := toc.Entries[i]; e.Offset != 0 && e.InnerOffset == 0 {
			next = e.Offset
		}
	}
	s.entries = make([]Entry, 0, len(toc.Entries))
	var last *Entry
	landmark := false
	var before []string
	for i := range toc.Entries {
		te := &toc.Entries[i]
		if te.Type == "chunk" {
			if last == nil {
				return fmt.Errorf("estargz TOC: chunk before any file: %w", ErrCorrupt)
			}
			if err := s.addChunk(last, te, ends[i]); err != nil {
				return err
			}
			continue
		}
		name := cleanName(te.Name)
		switch name {
		case estargz.PrefetchLandmark:
			landmark = true
			last = nil
			continue
		case estargz.NoPrefetchLandmark:
			last = nil
			continue
		}
		typ, ok := tocTypes[te.Type]
		if !ok {
			return fmt.Errorf("estargz entry %s of type %q: %w", name, te.Type, ErrUnsupported)
		}
		e := Entry{
			Name: name, Type: typ, Mode: te.Mode, UID: te.UID, GID: te.GID,
			Linkname: te.LinkName, Devmajor: int64(te.DevMajor), Devminor: int64(te.DevMinor),
		}
		if te.ModTime3339 != "" {
			if e.ModTime, _ = time.Parse(time.RFC3339, te.ModTime3339); !e.ModTime.IsZero() {
				e.ModTime = e.ModTime.UTC()
			}
		}
		if typ == tar.TypeLink {
			e.Linkname = cleanName(te.LinkName)
		}
		if len(te.Xattrs) > 0 {
			e.Xattrs = make(map[string]string, len(te.Xattrs))
			for k, v := range te.Xattrs {
				e.Xattrs[k] = string(v)
			}
		}
		if typ == tar.TypeReg {
			e.Size = te.Size
			e.Digest = digest.Digest(te.Digest)
			if !landmark {
				before = append(before, name)
			}
		}
		s.entries = append(s.entries, e)
		last = &s.entries[len(s.entries)-1]
		delete(s.files, name)
		if typ == tar.TypeReg {
			s.files[name] = nil
		}
		if typ == tar.TypeReg && te.Size > 0 {
			if err := s.addChunk(last, te, ends[i]); err != nil {
				return err
			}
		}
	}
	if landmark {
		s.startup = before
	}
	for name, cs := range s.files {
		sort.Slice(cs, func(i, j int) bool { return cs[i].fileOff < cs[j].fileOff })
		var want int64
		for _, c := range cs {
			if c.fileOff != want {
				return fmt.Errorf("estargz file %s: chunk at %d, want %d: %w", name, c.fileOff, want, ErrCorrupt)
			}
			want += c.size
		}
	}
	for i := range s.entries {
		e := &s.entries[i]
		if e.Type != tar.TypeReg || e.Size == 0 {
			continue
		}
		var got int64
		if cs := s.files[e.Name]; len(cs) > 0 {
			got = cs[len(cs)-1].fileOff + cs[len(cs)-1].size
		}
		if got != e.Size {
			return fmt.Errorf("estargz file %s: chunks cover %d of %d bytes: %w", e.Name, got, e.Size, ErrCorrupt)
		}
	}
	for _, cs := range s.files {
		for i := range cs {
			s.byOff = append(s.byOff, &cs[i])
		}
	}
	slices.SortFunc(s.byOff, func(a, b *tocChunk) int {
		return cmp.Or(cmp.Compare(a.off, b.off), cmp.Compare(a.inner, b.inner))
	})
	// Chunks are fetched, decoded and cached by where they start: two
	// that start at one place must be one.
	for i := 1; i < len(s.byOff); i++ {
		a, b := s.byOff[i-1], s.byOff[i]
		if a.off == b.off && a.inner == b.inner && (a.size != b.size || a.digest != b.digest) {
			return fmt.Errorf("estargz TOC: two chunks at %d+%d differ: %w", a.off, a.inner, ErrCorrupt)
		}
	}
	return nil
}

// maxChunkBytes bounds the bytes decoded to read one chunk (its inner
// offset and size), and twice as much the compressed bytes fetched for
// it: eStargz writers make chunks of 4 MiB (fcd's converter, estargz's
// default) and members of about that.
const maxChunkBytes = 64 << 20

// addChunk records the chunk te of file e. A chunk without a chunkDigest
// is accepted only when it is the whole file and the file has a digest.
func (s *EStargz) addChunk(e *Entry, te *tocEntry, end int64) error {
	size := te.ChunkSize
	if size == 0 {
		size = e.Size - te.ChunkOffset
	}
	d := digest.Digest(te.ChunkDigest)
	if d == "" && te.ChunkOffset == 0 && size == e.Size {
		d = e.Digest
	}
	if !isSHA256(d) && d.Validate() != nil {
		return fmt.Errorf("estargz file %s: chunk at %d has no valid digest %q: %w", e.Name, te.ChunkOffset, d, ErrCorrupt)
	}
	if te.Offset <= 0 || end <= te.Offset || size <= 0 || te.ChunkOffset < 0 || size > e.Size || te.ChunkOffset > e.Size-size {
		return fmt.Errorf("estargz file %s: bad chunk at %d: %w", e.Name, te.ChunkOffset, ErrCorrupt)
	}
	// A chunk is decoded whole into memory from the compressed bytes up
	// to the next member: both are bounded, whatever the TOC says.
	if te.InnerOffset < 0 || te.InnerOffset > maxChunkBytes-size || end-te.Offset > 2*maxChunkBytes {
		return fmt.Errorf("estargz file %s: chunk at %d decodes %d+%d bytes from %d: %w",
			e.Name, te.ChunkOffset, te.InnerOffset, size, end-te.Offset, ErrUnsupported)
	}
	s.files[e.Name] = append(s.files[e.Name], tocChunk{
		fileOff: te.ChunkOffset, size: size, off: te.Offset, end: end, inner: te.InnerOffset, digest: d,
		whole: te.ChunkOffset == 0 && size == e.Size && d == e.Digest,
	})
	return nil
}

// TOCDigest returns the digest of the TOC JSON.
func (s *EStargz) TOCDigest() digest.Digest { return s.tocDigest }

// Entries implements Source.
func (s *EStargz) Entries() []Entry { return s.entries }

// StartupOrder implements Source: the files before the prefetch landmark,
// or nil when the layer has none.
func (s *EStargz) StartupOrder() []string { return s.startup }

// ReadAt implements Source.
func (s *EStargz) ReadAt(ctx context.Context, name string, p []byte, off int64, prio remote.Priority) (int, error) {
	cs, ok := s.files[name]
	if !ok {
		return 0, fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	size := int64(0)
	if len(cs) > 0 {
		size = cs[len(cs)-1].fileOff + cs[len(cs)-1].size
	}
	if off < 0 {
		return 0, fmt.Errorf("%s: negative offset %d", name, off)
	}
	if off >= size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), size-off)
	i := sort.Search(len(cs), func(i int) bool { return cs[i].fileOff+cs[i].size > off })
	n := int64(0)
	for ; n < want && i < len(cs); i++ {
		c := &cs[i]
		b, err := s.chunk(ctx, c, prio)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		n += int64(copy(p[n:want], b[off+n-c.fileOff:]))
	}
	if n < int64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

// chunk returns c's verified bytes, fetching and decompressing them once
// for concurrent readers.
func (s *EStargz) chunk(ctx context.Context, c *tocChunk, prio remote.Priority) ([]byte, error) {
	key := tocChunkKey{c.off, c.inner}
	mk := memKey{s, c.off, c.inner}
	if b, ok := decoded.get(mk); ok {
		return b, nil
	}
	return s.flights.do(ctx, key, prio, func(ctx context.Context) ([]byte, error) {
		if s.store != nil {
			if b, err := s.store.Get(ctx, c.digest); err == nil && int64(len(b)) == c.size {
				decoded.add(mk, b)
				return b, nil
			}
		}
		if b, ok := s.awaitRun(ctx, c, prio); ok {
			return b, nil
		}
		b, err := s.fetchChunk(ctx, c, prio)
		if err != nil {
			return nil, err
		}
		decoded.add(mk, b)
		s.keep(ctx, c, b)
		return b, nil
	})
}

// keep stores a fetched chunk host-wide, unless it is a whole file the
// layer keeps itself once read: a second copy would only cost a file
// creation.
func (s *EStargz) keep(ctx context.Context, c *tocChunk, b []byte) {
	if s.store == nil || c.whole && c.size <= s.wholeKept.Load() {
		return
	}
	// A chunk not stored is fetched again next time; the read itself has
	// what it needs.
	_ = s.store.PutBytes(ctx, c.digest, b)
}

// keepWholeFiles implements wholeFileKeeper.
func (s *EStargz) keepWholeFiles(upTo int64) { s.wholeKept.Store(upTo) }

func (s *EStargz) fetchChunk(ctx context.Context, c *tocChunk, prio remote.Priority) ([]byte, error) {
	raw, err := s.blob.ReadRange(ctx, c.off, c.end-c.off, prio)
	if err != nil {
		return nil, fmt.Errorf("fetch chunk at %d: %w", c.fileOff, err)
	}
	return decodeChunk(c, raw)
}

// decodeChunk decompresses c from raw, the compressed bytes [c.off,
// c.end) of the blob, and verifies it against its chunkDigest (which is
// why gzindex.Gunzip, twice as fast as a gzip reader, may skip the gzip
// CRCs).
func decodeChunk(c *tocChunk, raw []byte) ([]byte, error) {
	b, err := gzindex.Gunzip(raw, c.inner, c.size)
	if err != nil {
		return nil, fmt.Errorf("chunk at %d: %w: %v", c.fileOff, ErrCorrupt, err)
	}
	if got := digest.FromBytes(b); got != c.digest {
		return nil, fmt.Errorf("chunk at %d is %s, TOC says %s: %w", c.fileOff, got, c.digest, ErrCorrupt)
	}
	return b, nil
}

// extent implements spanFetcher.
func (s *EStargz) extent(name string) (off, end int64, ok bool) {
	cs, ok := s.files[name]
	if !ok || len(cs) == 0 {
		return 0, 0, false
	}
	off, end = cs[0].off, cs[0].end
	for _, c := range cs[1:] {
		off, end = min(off, c.off), max(end, c.end)
	}
	return off, end, true
}

// fetchFiles implements spanFetcher: fetchRanges of the files whole.
func (s *EStargz) fetchFiles(ctx context.Context, names []string, prio remote.Priority) error {
	return s.fetchRanges(ctx, wholeFiles(names), prio)
}

// fetchRanges implements spanFetcher: the chunks holding rs's bytes (a
// negative N: the whole file) that are neither decoded nor in the chunk
// store are fetched, with those that lie between two of them at most
// spanGap apart (their bytes come with the GET anyway, and a start-up
// reads its neighbours' files too), in runs of at most spanBytes, then
// decoded, verified and kept in the cache of decoded bytes (and the
// chunk store, as chunk does), so that reading the files next finds them
// there. Concurrent calls fetch each gzip member once (the others wait
// for it); a call asks for all its runs at once, so that the fetcher
// joins adjacent ones into GETs.
func (s *EStargz) fetchRanges(ctx context.Context, rs []Range, prio remote.Priority) error {
	var cs []*tocChunk
	seen := make(map[*tocChunk]bool)
	for _, r := range rs {
		chunks := s.files[r.File]
		end := r.Off + r.N
		if r.N < 0 {
			end = math.MaxInt64
		}
		i := sort.Search(len(chunks), func(i int) bool { return chunks[i].fileOff+chunks[i].size > r.Off })
		for ; i < len(chunks) && chunks[i].fileOff < end; i++ {
			c := &chunks[i]
			if !seen[c] {
				seen[c] = true
				if !s.have(ctx, c) {
					cs = append(cs, c)
				}
			}
		}
	}
	slices.SortFunc(cs, func(a, b *tocChunk) int { return cmp.Compare(a.off, b.off) })
	cs, others := s.claimMembers(s.fillGaps(ctx, cs, seen))
	g, gctx := errgroup.WithContext(ctx)
	for len(cs) > 0 {
		lo, hi, n := cs[0].off, cs[0].end, 1
		for ; n < len(cs) && cs[n].off-hi <= spanGap && max(hi, cs[n].end)-lo <= spanBytes; n++ {
			hi = max(hi, cs[n].end)
		}
		run := cs[:n]
		cs = cs[n:]
		s.setRun(run, lo, hi, false)
		g.Go(func() error { return s.fetchRun(gctx, run, lo, hi, prio) })
	}
	err := g.Wait()
	if werr := waitClaims(ctx, others); werr != nil {
		return werr
	}
	return err
}

// fetchRun reads [lo, hi) of the blob, which holds the chunks of run
// (sorted by blob offset, their members claimed, setRun called), with
// one GET, then decodes and verifies them into the cache of decoded
// bytes (and the chunk store, as chunk does), and ends the claims.
func (s *EStargz) fetchRun(ctx context.Context, run []*tocChunk, lo, hi int64, prio remote.Priority) error {
	defer s.releaseMembers(run)
	raw, err := s.blob.ReadRange(ctx, lo, hi-lo, prio)
	s.setRun(run, lo, hi, true)
	if err != nil {
		return fmt.Errorf("fetch chunks at %d-%d: %w", lo, hi, err)
	}
	for _, c := range run {
		b, err := decodeChunk(c, raw[c.off-lo:c.end-lo])
		if err != nil {
			return err
		}
		decoded.add(memKey{s, c.off, c.inner}, b)
		s.keep(ctx, c, b)
	}
	return nil
}

// waitClaims waits until the fetches of the members others claimed end.
func waitClaims(ctx context.Context, others []*memberClaim) error {
	for _, mc := range others {
		select {
		case <-mc.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// setRun records the run that fetches run's members, and whether its
// read returned.
func (s *EStargz) setRun(run []*tocChunk, lo, hi int64, fetched bool) {
	s.membersMu.Lock()
	defer s.membersMu.Unlock()
	for _, c := range run {
		if mc := s.members[c.off]; mc != nil {
			mc.lo, mc.hi, mc.fetched = lo, hi, fetched
		}
	}
}

// awaitRun returns c's bytes when a fetchRanges call is fetching its
// member: a read does not fetch them again, but asks for the run's bytes
// at its own priority, which the fetcher shares with the run's read,
// moving it up the queue, then waits for the run to decode them.
func (s *EStargz) awaitRun(ctx context.Context, c *tocChunk, prio remote.Priority) ([]byte, bool) {
	s.membersMu.Lock()
	mc := s.members[c.off]
	var lo, hi int64
	var fetched bool
	if mc != nil {
		lo, hi, fetched = mc.lo, mc.hi, mc.fetched
	}
	s.membersMu.Unlock()
	if mc == nil {
		return nil, false
	}
	if hi > lo && !fetched {
		if _, err := s.blob.ReadRange(ctx, lo, hi-lo, prio); err != nil {
			return nil, false
		}
	}
	select {
	case <-mc.done:
	case <-ctx.Done():
		return nil, false
	}
	return decoded.get(memKey{s, c.off, c.inner})
}

// claimMembers takes, of the chunks cs (sorted by blob offset), those
// whose gzip members no other fetchRanges call is fetching, claiming
// their members; for the others it returns what to wait on.
func (s *EStargz) claimMembers(cs []*tocChunk) (mine []*tocChunk, others []*memberClaim) {
	s.membersMu.Lock()
	defer s.membersMu.Unlock()
	if s.members == nil {
		s.members = make(map[int64]*memberClaim)
	}
	var last *tocChunk
	for _, c := range cs {
		if last != nil && c.off == last.off {
			mine = append(mine, c) // another chunk of a member just claimed
			continue
		}
		if mc, ok := s.members[c.off]; ok {
			others = append(others, mc)
			continue
		}
		s.members[c.off] = &memberClaim{done: make(chan struct{})}
		mine = append(mine, c)
		last = c
	}
	return mine, others
}

// releaseMembers ends the claims on the members of run.
func (s *EStargz) releaseMembers(run []*tocChunk) {
	s.membersMu.Lock()
	defer s.membersMu.Unlock()
	for _, c := range run {
		if mc, ok := s.members[c.off]; ok {
			close(mc.done)
			delete(s.members, c.off)
		}
	}
}

// fillGaps returns cs, sorted by blob offset, with the chunks not seen
// yet, nor decoded or stored, that lie between two of cs at most spanGap
// apart.
func (s *EStargz) fillGaps(ctx context.Context, cs []*tocChunk, seen map[*tocChunk]bool) []*tocChunk {
	var out []*tocChunk
	for i, c := range cs {
		out = append(out, c)
		if i+1 == len(cs) || cs[i+1].off <= c.end || cs[i+1].off-c.end > spanGap {
			continue
		}
		j := sort.Search(len(s.byOff), func(j int) bool { return s.byOff[j].off >= c.end })
		for ; j < len(s.byOff) && s.byOff[j].end <= cs[i+1].off; j++ {
			if f := s.byOff[j]; !seen[f] {
				seen[f] = true
				if !s.have(ctx, f) {
					out = append(out, f)
				}
			}
		}
	}
	return out
}

// have reports whether c's bytes are decoded, putting them there from
// the chunk store if it holds them.
func (s *EStargz) have(ctx context.Context, c *tocChunk) bool {
	mk := memKey{s, c.off, c.inner}
	if _, ok := decoded.get(mk); ok {
		return true
	}
	if s.store == nil || c.whole && c.size <= s.wholeKept.Load() {
		return false // a whole file the layer keeps is not in the store
	}
	b, err := s.store.Get(ctx, c.digest)
	if err != nil || int64(len(b)) != c.size {
		return false
	}
	decoded.add(mk, b)
	return true
}

// cleanName is the entry name of a tar name: no leading "/" or "./", no
// trailing "/"; "" for the root.
func cleanName(name string) string {
	if isCleanName(name) {
		return name // most names of a TOC: no allocation
	}
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// isCleanName reports whether cleanName would return name unchanged.
func isCleanName(name string) bool {
	if name == "" || name[0] == '/' || name[len(name)-1] == '/' {
		return false
	}
	for elem := range strings.SplitSeq(name, "/") {
		if elem == "" || elem == "." || elem == ".." {
			return false
		}
	}
	return true
}
