package lazy

import (
	"context"
	"sync"
	"time"

	"github.com/fcd-dev/fcd/puller/lazyfs"
)

// DefaultRecordSettle is Options.RecordSettle's default.
const DefaultRecordSettle = 2 * time.Second

// Replay: how many reads of a record are outstanding at once (enough for
// the fetcher to fill its streams with coalesced GETs, in record order),
// and the largest piece one read asks for (a long read is split so its
// pieces go out in parallel).
const (
	replayWindow = 16
	replayPiece  = 1 << 20
	// replayWhole bounds a read from a file's start that is prefetched in
	// one piece, so that a whole file is made local (lazyfs
	// PrefetchRange) and its reads are then served by passthrough rather
	// than by the daemon, decoding again what the cache of decoded bytes
	// has let go.
	replayWhole = 32 << 20
	// replayGroupReads bounds the reads prefetched together: the small
	// files of a group are fetched in blob order, those close together
	// in one GET, before its other reads. A larger group needs fewer
	// GETs but follows the record's order less closely: on the node
	// image, groups of 64 took 2,399 GETs instead of 3,084 for 42 MB, but
	// the instance then waited ~1 s longer on reads of large files that
	// came after a group's small ones.
	replayGroupReads = 16
	// maxRecordReads bounds a record's reads, and so its size in bbolt.
	maxRecordReads = 1 << 16
	// maxRecordLookups bounds the names a record keeps looked up, over
	// all layers (the node image's start looks up ~16k).
	maxRecordLookups = 1 << 16
)

// startup decides, once every layer is mounted, whether this start
// replays the image's record (one exists) or makes it (none exists, and
// no other start of the image makes one now). Without a record of its
// own, an image replays the latest record of the image it shares a source
// with (its other acceleration mode, an earlier conversion), if any,
// while it records its own.
func (v *view) startup() {
	rs := v.i.opts.Records
	if rs == nil {
		return
	}
	rec, ok, err := rs.Get(v.digest)
	if err == nil && !ok {
		var kin Record
		if kin, ok, err = rs.Latest(v.source); ok && err == nil {
			v.replay(kin)
		}
		ok = false
	}
	if err != nil {
		v.i.log.Warn("read start-up record; starting without", "image", v.digest, "err", err)
		return
	}
	if ok {
		v.replay(rec)
		return
	}
	v.i.mu.Lock()
	defer v.i.mu.Unlock()
	if v.i.recording[v.digest] != nil {
		return
	}
	v.rec = newRecorder(v)
	v.i.recording[v.digest] = v.rec
}

// startupRecorder collects an image's start-up reads from its layers' observers.
type startupRecorder struct {
	v       *view
	started time.Time

	mu      sync.Mutex
	reads   []Read
	byFile  map[fileKey][]int // indexes in reads, per file
	lookups [][]string        // per layer, in order first looked up
	nlookup int               // names in lookups
	removes []func()
	timer   *time.Timer
	done    bool
}

type fileKey struct {
	layer int
	file  string
}

func newRecorder(v *view) *startupRecorder {
	r := &startupRecorder{v: v, started: time.Now(), byFile: make(map[fileKey][]int), lookups: make([][]string, len(v.mounted))}
	seen := make(map[*lazyfs.Layer]bool)
	for i, l := range v.mounted {
		if seen[l] {
			continue // the same layer twice: its reads are the first's
		}
		seen[l] = true
		r.removes = append(r.removes,
			l.Observe(func(file string, off, n int64) { r.note(i, file, off, n) }),
			l.ObserveLookups(func(name string, _ bool) { r.noteLookup(i, name) }))
	}
	return r
}

// noteLookup records a lookup. The kernel caches what a lookup answered,
// so a layer sees a name once.
func (r *startupRecorder) noteLookup(layer int, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done || r.nlookup >= maxRecordLookups {
		return
	}
	r.lookups[layer] = append(r.lookups[layer], name)
	r.nlookup++
}

// note records a read, merging it into a recorded read of the same file
// that it continues and leaving out one recorded already.
func (r *startupRecorder) note(layer int, file string, off, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done || len(r.reads) >= maxRecordReads {
		return
	}
	k := fileKey{layer, file}
	for _, i := range r.byFile[k] {
		rd := &r.reads[i]
		switch {
		case off >= rd.Off && off+n <= rd.Off+rd.N:
			return
		case off >= rd.Off && off <= rd.Off+rd.N:
			rd.N = off + n - rd.Off
			return
		}
	}
	r.byFile[k] = append(r.byFile[k], len(r.reads))
	r.reads = append(r.reads, Read{Layer: layer, File: file, Off: off, N: n})
}

// ready ends the record settle after the instance is ready.
func (r *startupRecorder) ready(settle time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done || r.timer != nil {
		return
	}
	r.timer = time.AfterFunc(settle, func() { r.finish(true) })
}

// isReady reports whether the instance was ready (the settle runs).
func (r *startupRecorder) isReady() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.timer != nil
}

// Close ends the recordings in progress, keeping those whose instance was
// ready (their settle is cut short), so a record is not lost when fcd
// stops right after a first start. Call it before the layers go.
func (i *Images) Close() error {
	i.mu.Lock()
	recs := make([]*startupRecorder, 0, len(i.recording))
	for _, r := range i.recording {
		recs = append(recs, r)
	}
	i.mu.Unlock()
	for _, r := range recs {
		r.finish(r.isReady())
	}
	return nil
}

// finish stops recording and, if keep, saves the record.
func (r *startupRecorder) finish(keep bool) {
	r.mu.Lock()
	if r.done {
		r.mu.Unlock()
		return
	}
	r.done = true
	if r.timer != nil {
		r.timer.Stop()
	}
	removes, reads, lookups := r.removes, r.reads, r.lookups
	r.mu.Unlock()
	for _, rm := range removes {
		rm()
	}
	v := r.v
	defer func() {
		v.i.mu.Lock()
		if v.i.recording[v.digest] == r {
			delete(v.i.recording, v.digest)
		}
		v.i.mu.Unlock()
	}()
	if !keep || len(reads) == 0 {
		return
	}
	rec := Record{Image: v.digest, Source: v.source, Layers: v.layers, Reads: reads, Created: time.Now().UTC()}
	nlookups := 0
	for _, names := range lookups {
		rec.Lookups = append(rec.Lookups, leafNames(names))
		nlookups += len(names)
	}
	if err := v.i.opts.Records.Put(rec); err != nil {
		v.i.log.Warn("save start-up record", "image", v.digest, "err", err)
		return
	}
	v.i.log.Info("start-up recorded", "image", v.digest, "ref", v.ref, "reads", len(reads), "files", len(rec.Files()), "lookups", nlookups,
		"bytes", rec.Bytes(), "duration", time.Since(r.started).Round(time.Millisecond))
	if v.i.opts.Recorded != nil {
		v.i.opts.Recorded(rec)
	}
}

// replay prefetches rec's reads, in order, on the layers this image has
// not replayed on yet since they were mounted: on layers that can fetch
// extents (eStargz), as a plan of few large GETs over the whole record
// (replayPlanned); on the others, in groups with replayWindow groups
// outstanding. Their start-up order prefetch is stopped: the record
// says exactly what to fetch. A record of another image of the same
// source (other layer digests, the same files) is replayed by file name,
// layer by layer. It runs until done or Release.
func (v *view) replay(rec Record) {
	if len(rec.Layers) != len(v.mounted) {
		return
	}
	use := make([]bool, len(v.mounted))
	any := false
	for i, l := range v.mounted {
		if rec.Image == v.digest && rec.Layers[i] != v.layers[i] {
			return
		}
		if use[i] = l.MarkStartup(v.digest.String()); use[i] {
			l.SkipStartupOrder()
			any = true
		}
	}
	if !any {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	v.stopReplay, v.replayDone = cancel, done
	var warm sync.WaitGroup
	v.warmLookups(ctx, &warm, rec, use)
	go func() {
		defer close(done)
		defer cancel()
		defer warm.Wait()
		start := time.Now()
		fetched := v.i.opts.Fetcher.Stats()
		v.timing.replayBegan(start)
		defer func() { v.timing.replayEnded(v.start, time.Now()) }()
		sem := make(chan struct{}, replayWindow)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failed int
		var waited, longest time.Duration // for a free window slot; the longest group
		// The layers that can fetch extents replay a plan; the others (an
		// index-only image's), groups of reads.
		plan, rest := v.planReplay(ctx, rec.Reads, use)
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := v.replayPlanned(ctx, rec.Reads, plan)
			mu.Lock()
			failed += n
			mu.Unlock()
		}()
		groups := replayGroups(rec.Reads, rest)
		// An index-only layer read by its index's head needs windows of
		// the index too: all the record's at once, in few requests, so
		// that no group waits for its own.
		perLayer := make(map[int][]lazyfs.Range)
		for _, grp := range groups {
			perLayer[grp.layer] = append(perLayer[grp.layer], grp.ranges...)
		}
		for i, rs := range perLayer {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = v.mounted[i].PrefetchWindows(ctx, rs) // reads fetch what this misses
			}()
		}
		for _, grp := range groups {
			t0 := time.Now()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
			waited += time.Since(t0)
			l := v.mounted[grp.layer]
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				t0 := time.Now()
				err := l.PrefetchRanges(ctx, grp.ranges)
				mu.Lock()
				longest = max(longest, time.Since(t0))
				mu.Unlock()
				if err == nil {
					v.timing.replayed(grp.bytes())
					l.StoreHeld(grp.files())
				}
				if err != nil && ctx.Err() == nil {
					mu.Lock()
					failed++
					mu.Unlock()
					v.i.log.Debug("replay reads", "image", v.digest, "file", grp.ranges[0].File, "err", err)
				}
			}()
		}
		wg.Wait()
		// The fetcher's counts include what other reads fetched meanwhile
		// (the instance's own, other images').
		now := v.i.opts.Fetcher.Stats()
		v.i.log.Info("start-up record replayed", "image", v.digest, "ref", v.ref, "reads", len(rec.Reads),
			"bytes", rec.Bytes(), "failed", failed, "cancelled", ctx.Err() != nil,
			"duration", time.Since(start).Round(time.Millisecond), "groups", len(groups),
			"runs", len(plan.runs), "run_bytes", runBytes(plan.runs), "wanted_bytes", plan.wanted, "gap", plan.gap, "plan_curve", plan.curve,
			"window_wait", waited.Round(time.Millisecond), "longest_group", longest.Round(time.Millisecond),
			"gets", now.Requests-fetched.Requests, "network_bytes", now.NetworkBytes-fetched.NetworkBytes,
			"get_mean", meanPer(now.RequestTime-fetched.RequestTime, now.Requests-fetched.Requests),
			"get_header_mean", meanPer(now.HeaderTime-fetched.HeaderTime, now.Requests-fetched.Requests))
	}()
}

// meanPer returns d/n (zero when n is), rounded for a log.
func meanPer(d time.Duration, n int64) time.Duration {
	if n <= 0 {
		return 0
	}
	return (d / time.Duration(n)).Round(10 * time.Microsecond)
}

// warmLookups looks rec's lookups up in the layers in use, one goroutine
// per layer counted in wg, so that the instance's own lookups (a
// module loader's probes of many names, most of them absent from most
// layers) are answered by the kernel's dentry cache rather than each by
// a round trip to the daemon per layer of the overlay. They are CPU
// work, done while the container is created and the reads are fetched.
// Then the small files prefetched so far are stored in the page cache
// (lazyfs.Layer.StoreHeld; each group of reads stores its own once
// fetched), so the instance's opens of them do not wait for the copy.
func (v *view) warmLookups(ctx context.Context, wg *sync.WaitGroup, rec Record, use []bool) {
	if len(rec.Lookups) != len(v.mounted) {
		return
	}
	for i, names := range rec.Lookups {
		if !use[i] || len(names) == 0 {
			continue
		}
		l := v.mounted[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			n, err := l.WarmLookups(ctx, names)
			if err != nil && ctx.Err() == nil {
				v.i.log.Debug("warm lookups", "image", v.digest, "layer", v.layers[i], "err", err)
			}
			// The files prefetched before their inodes were known.
			l.StoreHeld(layerFiles(rec.Reads, i))
			// (The layer's lookups so far, the instance's included: those
			// the layer serves later are names the record missed.)
			v.i.log.Info("start-up lookups warmed", "image", v.digest, "layer", i, "names", len(names), "looked_up", n,
				"duration", time.Since(start).Round(time.Millisecond), "layer_lookups", l.Stats().Lookups)
		}()
	}
}

// replayGroup is a run of a record's reads on one layer, prefetched
// together: the small files among them that lie close together in the
// blob share GETs (lazyfs.Layer.PrefetchRanges).
type replayGroup struct {
	layer  int
	ranges []lazyfs.Range
	piece  bool // a piece of a long read: nothing joins it
}

// files returns the files of g's ranges.
func (g replayGroup) files() []string {
	out := make([]string, len(g.ranges))
	for i, r := range g.ranges {
		out[i] = r.File
	}
	return out
}

// layerFiles returns the files of the reads of layer, in order.
func layerFiles(reads []Read, layer int) []string {
	var out []string
	for _, rd := range reads {
		if rd.Layer == layer {
			out = append(out, rd.File)
		}
	}
	return out
}

// bytes is the length of g's ranges together.
func (g replayGroup) bytes() int64 {
	var n int64
	for _, r := range g.ranges {
		n += r.N
	}
	return n
}

// replayGroups cuts reads, in order, into groups of at most replayGroupReads
// consecutive reads of one layer in use; a read longer than replayPiece is
// a group of its own, split into pieces that go out in parallel unless it
// starts at the file's start and is at most replayWhole long (it may be
// the whole file).
func replayGroups(reads []Read, use []bool) []replayGroup {
	var out []replayGroup
	for _, rd := range reads {
		if rd.Layer < 0 || rd.Layer >= len(use) || !use[rd.Layer] {
			continue
		}
		if rd.N > replayPiece && rd.Off == 0 && rd.N <= replayWhole {
			out = append(out, replayGroup{rd.Layer, []lazyfs.Range{{File: rd.File, Off: rd.Off, N: rd.N}}, true})
			continue
		}
		if rd.N > replayPiece {
			for off := rd.Off; off < rd.Off+rd.N; off += replayPiece {
				out = append(out, replayGroup{rd.Layer, []lazyfs.Range{{File: rd.File, Off: off, N: min(replayPiece, rd.Off+rd.N-off)}}, true})
			}
			continue
		}
		if k := len(out) - 1; k >= 0 && out[k].layer == rd.Layer && !out[k].piece && len(out[k].ranges) < replayGroupReads {
			out[k].ranges = append(out[k].ranges, lazyfs.Range{File: rd.File, Off: rd.Off, N: rd.N})
			continue
		}
		out = append(out, replayGroup{layer: rd.Layer, ranges: []lazyfs.Range{{File: rd.File, Off: rd.Off, N: rd.N}}})
	}
	return out
}

// endStartup stops recording (keeping the record only if the instance
// was ready) and the replay, and waits for the replay to return.
func (v *view) endStartup(ready bool) {
	if v.rec != nil {
		v.rec.finish(ready)
	}
	if v.stopReplay != nil {
		v.stopReplay()
		<-v.replayDone
	}
}

// logLayerOps logs what the image's layers served since they were
// mounted (for a layer mounted for this start: what it cost), summed
// over the layers, with the lookups per layer, bottom first.
func (v *view) logLayerOps() {
	var sum lazyfs.Stats
	perLayer := make([]int64, 0, len(v.mounted))
	seen := make(map[*lazyfs.Layer]bool)
	for _, l := range v.mounted {
		if seen[l] {
			continue
		}
		seen[l] = true
		st := l.Stats()
		sum.Lookups += st.Lookups
		sum.NegativeLookups += st.NegativeLookups
		sum.Opens += st.Opens
		sum.Reads += st.Reads
		sum.Flushes += st.Flushes
		sum.Pushed += st.Pushed
		sum.PassthroughOpens += st.PassthroughOpens
		sum.ReadTime += st.ReadTime
		sum.SlowReads += st.SlowReads
		d := &sum.Decode
		d.Served += st.Decode.Served
		d.Decoded += st.Decode.Decoded
		d.Misses += st.Decode.Misses
		d.Resumed += st.Decode.Resumed
		d.DemandMisses += st.Decode.DemandMisses
		d.DemandMissTime += st.Decode.DemandMissTime
		d.Windows += st.Decode.Windows
		d.WindowGets += st.Decode.WindowGets
		d.WindowBytes += st.Decode.WindowBytes
		d.WindowWait += st.Decode.WindowWait
		perLayer = append(perLayer, st.Lookups)
	}
	d := sum.Decode
	v.i.log.Info("layer ops at ready", "image", v.digest, "lookups", sum.Lookups, "negative_lookups", sum.NegativeLookups,
		"opens", sum.Opens, "passthrough_opens", sum.PassthroughOpens, "reads", sum.Reads, "flushes", sum.Flushes,
		"pushed", sum.Pushed, "lookups_per_layer", perLayer,
		"read_time", sum.ReadTime.Round(time.Millisecond), "slow_reads", sum.SlowReads,
		"served", d.Served, "decoded", d.Decoded, "misses", d.Misses, "resumed", d.Resumed, "demand_misses", d.DemandMisses,
		"demand_miss_time", d.DemandMissTime.Round(time.Millisecond), "windows", d.Windows,
		"window_gets", d.WindowGets, "window_bytes", d.WindowBytes, "window_wait", d.WindowWait.Round(time.Millisecond))
}
