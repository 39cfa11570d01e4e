package lazyfs

import (
	"context"
	"fmt"
	"sort"

	"github.com/fcd-dev/fcd/puller/remote"
)

// Extent is the compressed bytes [Off, End) of a layer's blob.
type Extent struct{ Off, End int64 }

// extentFetcher is a Source that can say which compressed bytes hold a
// range of a file and fetch any stretch of its blob with one GET,
// decoding every chunk in it (EStargz): a start-up record's replay plans
// its GETs over the whole record rather than file by file.
type extentFetcher interface {
	// rangeExtents appends to out the extents of the gzip members that
	// hold r's bytes (N < 0: the rest of the file) and are neither
	// decoded nor stored, in file order, each member once.
	rangeExtents(ctx context.Context, r Range, out []Extent) []Extent
	// fetchExtent fetches the members wholly inside e that are neither
	// decoded nor stored, with one GET, and decodes them.
	fetchExtent(ctx context.Context, e Extent, prio remote.Priority) error
}

// FetchesExtents reports whether the layer's source can fetch extents
// (Extents, FetchExtent): an eStargz layer can, an index-only one not.
func (l *Layer) FetchesExtents() bool {
	_, ok := l.src.(extentFetcher)
	return ok
}

// Extents appends to out the extents of the compressed bytes that a
// PrefetchRanges of r would fetch (a small file: all of it), one per
// gzip member, none when r's file is local or held. A name the layer does
// not have is ErrNotFound; a layer that does not FetchesExtents,
// ErrUnsupported.
func (l *Layer) Extents(ctx context.Context, r Range, out []Extent) ([]Extent, error) {
	ef, ok := l.src.(extentFetcher)
	if !ok {
		return out, fmt.Errorf("layer %s: extents: %w", l.name, ErrUnsupported)
	}
	t, err := l.tree.lookup(r.File)
	if err != nil || t.file == "" {
		return out, fmt.Errorf("%s: %w", r.File, ErrNotFound)
	}
	if l.isLocal(t) || t.heldBytes() != nil {
		return out, nil
	}
	r.File = t.file
	if t.size <= l.small && l.materializable(t) {
		r.Off, r.N = 0, -1 // made local whole
	}
	return ef.rangeExtents(ctx, r, out), nil
}

// FetchExtent fetches e, which Extents returned or which joins several
// it returned, with one GET at Prefetch priority, and decodes and
// verifies the chunks wholly inside it that are neither decoded nor
// stored into the cache of decoded bytes (and the chunk store), so that
// a PrefetchRanges of the ranges it serves that follows soon finds them
// there. An on-demand read of its bytes meanwhile joins its GET and moves
// it up the fetcher's queue. It returns when ctx ends or the layer is
// unmounted.
func (l *Layer) FetchExtent(ctx context.Context, e Extent) error {
	ef, ok := l.src.(extentFetcher)
	if !ok {
		return fmt.Errorf("layer %s: extents: %w", l.name, ErrUnsupported)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(l.ctx, cancel)
	defer stop()
	if err := ef.fetchExtent(ctx, e, remote.Prefetch); err != nil {
		return fmt.Errorf("fetch %d-%d of layer %s: %w", e.Off, e.End, l.name, err)
	}
	return nil
}

var _ extentFetcher = (*EStargz)(nil)

// rangeExtents implements extentFetcher.
func (s *EStargz) rangeExtents(ctx context.Context, r Range, out []Extent) []Extent {
	chunks := s.files[r.File]
	end := r.Off + r.N
	if r.N < 0 {
		end = 1<<63 - 1
	}
	i := sort.Search(len(chunks), func(i int) bool { return chunks[i].fileOff+chunks[i].size > r.Off })
	for ; i < len(chunks) && chunks[i].fileOff < end; i++ {
		c := &chunks[i]
		if s.have(ctx, c) || len(out) > 0 && out[len(out)-1].Off == c.off {
			continue
		}
		out = append(out, Extent{c.off, c.end})
	}
	return out
}

// fetchExtent implements extentFetcher. Members another fetch is
// fetching are waited for, not fetched again.
func (s *EStargz) fetchExtent(ctx context.Context, e Extent, prio remote.Priority) error {
	var cs []*tocChunk
	i := sort.Search(len(s.byOff), func(i int) bool { return s.byOff[i].off >= e.Off })
	for ; i < len(s.byOff) && s.byOff[i].off < e.End; i++ {
		if c := s.byOff[i]; c.end <= e.End && !s.have(ctx, c) {
			cs = append(cs, c)
		}
	}
	mine, others := s.claimMembers(cs)
	var err error
	if len(mine) > 0 {
		hi := mine[0].end
		for _, c := range mine[1:] {
			hi = max(hi, c.end)
		}
		s.setRun(mine, mine[0].off, hi, false)
		err = s.fetchRun(ctx, mine, mine[0].off, hi, prio)
	}
	if werr := waitClaims(ctx, others); err == nil {
		err = werr
	}
	return err
}
