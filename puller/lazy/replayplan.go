package lazy

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/fcd-dev/fcd/puller/lazyfs"
)

// A planned replay (the layers whose source can fetch extents: eStargz)
// fetches the compressed bytes the whole record needs, per layer, as few
// GETs of close members joined (replayRun), sent in the order of the
// earliest read each serves, replayStreams at a time; each read is then
// made local as soon as the GETs it needs have arrived. The node image's
// start reads ~2,000 small files scattered over its blob: one GET of
// ~22 KiB each (its record order, in groups) left the link mostly idle
// while the registry and fcd spent their CPU per request.
const (
	// replayStreams is how many runs are fetched at once: more than the
	// fetcher's streams (remote.DefaultStreams), so it always has the
	// next one queued, in record order, when a GET ends, and a run
	// being decoded leaves no stream idle.
	replayStreams = 10
	// replayRunMax bounds a run's bytes (but members that overlap are
	// one run whatever their size): small enough that the record's
	// order still decides what comes first, large enough that a run's
	// GET costs the registry little for its bytes.
	replayRunMax = 1 << 20
	// replaySlack is how many more bytes than the record needs a plan
	// may fetch to join members (the gaps between them), as a fraction.
	// Each GET costs the registry about as much CPU as 4 MiB (the
	// reference implementation reads that much for any range), on the
	// cores the instance starts on, but the node image's record lies
	// scattered: its 39.5 MB need 3,611 GETs joined only where adjacent,
	// 1,421 across gaps of 4 KiB (+7% bytes), 472 across 32 KiB (+39%).
	// 6% keeps a start's bytes within 1.1x its working set there.
	replaySlack = 0.06
	// replayGapMax bounds the gap whatever the slack allows: python's
	// record, less scattered, joined across 48 KiB for +6% bytes but
	// started no sooner for its 220 GETs instead of ~550 (one round
	// each); 8 KiB is what a group of reads joined before.
	replayGapMax = 8 << 10
)

// replayCurve are the gaps between members whose plans the replay's log
// line reports, to show how far apart a record's reads lie.
var replayCurve = []int64{64 << 10, 16 << 10, 4 << 10, 0}

// replaySpan is compressed bytes [off, end) of a layer's blob that the
// record's read pos needs.
type replaySpan struct {
	layer    int
	off, end int64
	pos      int
}

// replayRun is one GET of a planned replay: the bytes [off, end) of a
// layer's blob, which hold the spans of reads (the record's positions,
// ascending), of which pos is the first.
type replayRun struct {
	layer    int
	off, end int64
	pos      int
	reads    []int
}

// planRuns joins spans of one layer that overlap, or lie at most gap
// bytes apart while the run stays within maxRun bytes, into runs, and
// orders the runs by the first read each serves (then by layer and
// offset).
func planRuns(spans []replaySpan, gap, maxRun int64) []replayRun {
	sorted := slices.Clone(spans)
	slices.SortFunc(sorted, func(a, b replaySpan) int {
		return cmp.Or(cmp.Compare(a.layer, b.layer), cmp.Compare(a.off, b.off), cmp.Compare(a.end, b.end))
	})
	var runs []replayRun
	for _, s := range sorted {
		if k := len(runs) - 1; k >= 0 && runs[k].layer == s.layer &&
			(s.off < runs[k].end || s.off-runs[k].end <= gap && max(s.end, runs[k].end)-runs[k].off <= maxRun) {
			r := &runs[k]
			r.end, r.pos = max(r.end, s.end), min(r.pos, s.pos)
			r.reads = append(r.reads, s.pos)
			continue
		}
		runs = append(runs, replayRun{layer: s.layer, off: s.off, end: s.end, pos: s.pos, reads: []int{s.pos}})
	}
	for i := range runs {
		slices.Sort(runs[i].reads)
		runs[i].reads = slices.Compact(runs[i].reads)
	}
	slices.SortStableFunc(runs, func(a, b replayRun) int { return cmp.Compare(a.pos, b.pos) })
	return runs
}

// runBytes returns the bytes runs fetch together.
func runBytes(runs []replayRun) int64 {
	var n int64
	for _, r := range runs {
		n += r.end - r.off
	}
	return n
}

// spanBytes returns the bytes of spans together, each byte once.
func spanBytes(spans []replaySpan) int64 { return runBytes(planRuns(spans, -1, 0)) }

// pickGap returns the largest gap, at most maxGap, whose plan fetches at
// most slack (a fraction) more bytes than spans hold, and that plan. Joining across
// the smallest gaps first costs the fewest bytes per GET saved, so the
// gap is the largest g such that the gaps of at most g between spans
// (of one layer, in blob order) add up to the allowance; maxRun then
// refuses some joins, which only fetches less.
func pickGap(spans []replaySpan, maxGap, maxRun int64, slack float64) (int64, []replayRun) {
	union := planRuns(spans, -1, 0) // each byte once
	allow := int64(float64(runBytes(union)) * slack)
	slices.SortFunc(union, func(a, b replayRun) int { return cmp.Or(cmp.Compare(a.layer, b.layer), cmp.Compare(a.off, b.off)) })
	var gaps []int64
	for i := 1; i < len(union); i++ {
		if union[i].layer == union[i-1].layer {
			gaps = append(gaps, union[i].off-union[i-1].end)
		}
	}
	slices.Sort(gaps)
	gap, sum := int64(0), int64(0)
	for i, g := range gaps {
		if sum += g; sum > allow || g > maxGap {
			break
		}
		if i+1 == len(gaps) || gaps[i+1] != g {
			gap = g // all gaps of g fit
		}
	}
	return gap, planRuns(spans, gap, maxRun)
}

// pendingReads counts, per read of a plan, the runs it still waits for.
type pendingReads struct {
	mu   sync.Mutex
	left map[int]int
}

func newPendingReads(runs []replayRun) *pendingReads {
	p := &pendingReads{left: make(map[int]int)}
	for _, r := range runs {
		for _, pos := range r.reads {
			p.left[pos]++
		}
	}
	return p
}

// done records that run r has arrived (or failed) and returns the reads
// that wait for no other run now.
func (p *pendingReads) done(r replayRun) []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int
	for _, pos := range r.reads {
		if p.left[pos]--; p.left[pos] == 0 {
			delete(p.left, pos)
			out = append(out, pos)
		}
	}
	return out
}

// replayPlan is what replayPlanned fetches: the runs, and the reads
// that need none (local already) or could not be planned.
type replayPlan struct {
	runs   []replayRun
	now    []int // reads to prefetch at once
	gap    int64
	wanted int64 // the spans' bytes
	// curve is, for the log, the runs and bytes of each of replayCurve:
	// how far the record's reads lie apart in the blob.
	curve string
}

// planReplay plans the reads on the layers of use whose source can fetch
// extents, and returns the layers of use left to replayGroups.
func (v *view) planReplay(ctx context.Context, reads []Read, use []bool) (_ replayPlan, rest []bool) {
	var p replayPlan
	planned := make([]bool, len(use))
	rest = make([]bool, len(use))
	for i, l := range v.mounted {
		planned[i] = use[i] && l.FetchesExtents()
		rest[i] = use[i] && !planned[i]
	}
	var spans []replaySpan
	var ext []lazyfs.Extent
	for pos, rd := range reads {
		if rd.Layer < 0 || rd.Layer >= len(use) || !planned[rd.Layer] {
			continue
		}
		var err error
		ext, err = v.mounted[rd.Layer].Extents(ctx, lazyfs.Range{File: rd.File, Off: rd.Off, N: rd.N}, ext[:0])
		if err != nil || len(ext) == 0 {
			p.now = append(p.now, pos)
			continue
		}
		for _, e := range ext {
			spans = append(spans, replaySpan{layer: rd.Layer, off: e.Off, end: e.End, pos: pos})
		}
	}
	p.wanted = spanBytes(spans)
	p.gap, p.runs = pickGap(spans, replayGapMax, replayRunMax, replaySlack)
	for _, gap := range replayCurve {
		runs := planRuns(spans, gap, replayRunMax)
		p.curve += fmt.Sprintf("%dK:%d/%.1fMB ", gap>>10, len(runs), float64(runBytes(runs))/1e6)
	}
	return p, rest
}

// replayPlanned fetches p's runs, replayStreams at a time in order, and
// prefetches each read of reads (lazyfs.Layer.PrefetchRanges, which
// makes its file local or holds it) once the runs it needs are in. It
// returns the reads that failed.
func (v *view) replayPlanned(ctx context.Context, reads []Read, p replayPlan) (failed int) {
	var nfailed atomic.Int64
	var wg sync.WaitGroup
	finish := func(pos []int) {
		if len(pos) == 0 {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			nfailed.Add(int64(v.prefetchReads(ctx, reads, pos)))
		}()
	}
	finish(p.now)
	left := newPendingReads(p.runs)
	var next atomic.Int64
	for range min(replayStreams, len(p.runs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(p.runs) && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				r := p.runs[i]
				// A run that failed leaves its reads to fetch what they miss.
				if err := v.mounted[r.layer].FetchExtent(ctx, lazyfs.Extent{Off: r.off, End: r.end}); err != nil && ctx.Err() == nil {
					v.i.log.Debug("replay run", "image", v.digest, "layer", r.layer, "off", r.off, "end", r.end, "err", err)
				}
				finish(left.done(r))
			}
		}()
	}
	wg.Wait()
	return int(nfailed.Load())
}

// prefetchReads prefetches the reads at positions pos, per layer, and
// returns how many layers' prefetches failed.
func (v *view) prefetchReads(ctx context.Context, reads []Read, pos []int) (failed int) {
	perLayer := make(map[int][]lazyfs.Range)
	for _, i := range pos {
		rd := reads[i]
		perLayer[rd.Layer] = append(perLayer[rd.Layer], lazyfs.Range{File: rd.File, Off: rd.Off, N: rd.N})
	}
	for layer, rs := range perLayer {
		l := v.mounted[layer]
		g := replayGroup{layer: layer, ranges: rs}
		if err := l.PrefetchRanges(ctx, rs); err != nil {
			if ctx.Err() == nil {
				failed++
				v.i.log.Debug("replay reads", "image", v.digest, "file", rs[0].File, "err", err)
			}
			continue
		}
		v.timing.replayed(g.bytes())
		l.StoreHeld(g.files())
	}
	return failed
}
