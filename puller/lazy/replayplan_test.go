package lazy

import (
	"fmt"
	"slices"
	"testing"
)

func runsString(runs []replayRun) string {
	s := ""
	for _, r := range runs {
		s += fmt.Sprintf("[L%d %d-%d pos%d reads%v]", r.layer, r.off, r.end, r.pos, r.reads)
	}
	return s
}

func TestPlanRuns(t *testing.T) {
	for _, tc := range []struct {
		name        string
		spans       []replaySpan
		gap, maxRun int64
		want        []replayRun
	}{{
		name: "adjacent spans join, in blob order, first read first",
		spans: []replaySpan{
			{0, 200, 300, 0}, {0, 100, 200, 1}, {0, 0, 100, 2},
		},
		gap: 0, maxRun: 1000,
		want: []replayRun{{0, 0, 300, 0, []int{0, 1, 2}}},
	}, {
		name: "a gap larger than allowed splits; runs ordered by their first read",
		spans: []replaySpan{
			{0, 5000, 5100, 0}, {0, 0, 100, 1}, {0, 150, 250, 2}, {0, 5150, 5200, 3},
		},
		gap: 50, maxRun: 1000,
		want: []replayRun{{0, 5000, 5200, 0, []int{0, 3}}, {0, 0, 250, 1, []int{1, 2}}},
	}, {
		name: "a run stops at maxRun",
		spans: []replaySpan{
			{0, 0, 400, 0}, {0, 400, 800, 1}, {0, 800, 1200, 2},
		},
		gap: 0, maxRun: 800,
		want: []replayRun{{0, 0, 800, 0, []int{0, 1}}, {0, 800, 1200, 2, []int{2}}},
	}, {
		name: "overlapping spans (one member, several reads) join whatever maxRun",
		spans: []replaySpan{
			{0, 0, 1000, 3}, {0, 0, 1000, 1}, {0, 500, 1500, 2},
		},
		gap: 0, maxRun: 10,
		want: []replayRun{{0, 0, 1500, 1, []int{1, 2, 3}}},
	}, {
		name: "layers never join; a read in two runs is listed in both",
		spans: []replaySpan{
			{1, 0, 100, 0}, {0, 100, 200, 1}, {0, 0, 100, 0}, {1, 100, 200, 2},
		},
		gap: 0, maxRun: 1000,
		want: []replayRun{{0, 0, 200, 0, []int{0, 1}}, {1, 0, 200, 0, []int{0, 2}}},
	}, {
		name: "gap -1 joins only overlaps",
		spans: []replaySpan{
			{0, 0, 100, 0}, {0, 100, 200, 1},
		},
		gap: -1, maxRun: 1000,
		want: []replayRun{{0, 0, 100, 0, []int{0}}, {0, 100, 200, 1, []int{1}}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := planRuns(tc.spans, tc.gap, tc.maxRun)
			if runsString(got) != runsString(tc.want) {
				t.Errorf("got %s, want %s", runsString(got), runsString(tc.want))
			}
		})
	}
}

// TestPlanRunsCovers: every span lies in a run of its layer that lists
// its read, runs never overlap, and a run beyond maxRun is one of
// overlapping spans.
func TestPlanRunsCovers(t *testing.T) {
	var spans []replaySpan
	off := int64(0)
	for i := range 500 {
		size := int64(1000 + i*37%5000)
		spans = append(spans, replaySpan{layer: i % 3, off: off, end: off + size, pos: (i * 7919) % 500})
		off += size + int64(i*131%20000)
	}
	for _, gap := range []int64{0, 4096, 16384} {
		runs := planRuns(spans, gap, 64<<10)
		if !slices.IsSortedFunc(runs, func(a, b replayRun) int { return a.pos - b.pos }) {
			t.Errorf("gap %d: runs not ordered by first read", gap)
		}
		for _, s := range spans {
			n := 0
			for _, r := range runs {
				if r.layer == s.layer && r.off <= s.off && s.end <= r.end {
					n++
					if !slices.Contains(r.reads, s.pos) {
						t.Errorf("gap %d: run %d-%d holds span of read %d but does not list it", gap, r.off, r.end, s.pos)
					}
				}
			}
			if n != 1 {
				t.Errorf("gap %d: span %v in %d runs, want 1", gap, s, n)
			}
		}
		for i, a := range runs {
			for _, b := range runs[i+1:] {
				if a.layer == b.layer && a.off < b.end && b.off < a.end {
					t.Errorf("gap %d: runs %d-%d and %d-%d overlap", gap, a.off, a.end, b.off, b.end)
				}
			}
		}
	}
}

func TestPickGap(t *testing.T) {
	// 10 spans of 1000 bytes, 100 bytes apart, then one 10,100 bytes on.
	var spans []replaySpan
	for i := range 10 {
		spans = append(spans, replaySpan{off: int64(i) * 1100, end: int64(i)*1100 + 1000, pos: i})
	}
	spans = append(spans, replaySpan{off: 21000, end: 22000, pos: 10})
	// Spans of another layer, apart by 50, 100, 200: they count in the
	// allowance but never join the first layer's.
	other := []replaySpan{{1, 0, 1000, 11}, {1, 1050, 2000, 12}, {1, 2100, 3000, 13}, {1, 3200, 4000, 14}}
	for _, tc := range []struct {
		name     string
		spans    []replaySpan
		maxGap   int64
		slack    float64
		wantGap  int64
		wantRuns int
	}{
		{"all within 100%", spans, 1 << 20, 1.0, 10100, 1}, // 900 + 10,100 of 11,000
		{"all within 100%, but maxGap", spans, 1000, 1.0, 100, 2},
		{"the small gaps within 10%", spans, 1 << 20, 0.1, 100, 2}, // 900 of 1,100
		{"not all gaps of 100 fit: none", spans, 1 << 20, 0.05, 0, 11},
		{"the smaller gaps first", other, 1 << 20, 0.05, 100, 2}, // 150 of 182
		{"layers apart", append(slices.Clone(spans), other...), 1 << 20, 1.0, 10100, 2},
	} {
		gap, runs := pickGap(tc.spans, tc.maxGap, 1<<20, tc.slack)
		if gap != tc.wantGap || len(runs) != tc.wantRuns {
			t.Errorf("%s: got gap %d with %d runs, want %d with %d", tc.name, gap, len(runs), tc.wantGap, tc.wantRuns)
		}
		if budget := float64(runBytes(planRuns(tc.spans, -1, 0))) * (1 + tc.slack); float64(runBytes(runs)) > budget {
			t.Errorf("%s: plan fetches %d bytes, over the budget %.0f", tc.name, runBytes(runs), budget)
		}
	}
	if got := spanBytes(append(spans, spans[0])); got != 11000 {
		t.Errorf("spanBytes counts %d, want 11000 (each byte once)", got)
	}
}

func TestPendingReads(t *testing.T) {
	runs := []replayRun{
		{off: 0, end: 10, reads: []int{0, 1}},
		{off: 20, end: 30, reads: []int{1, 2}},
		{off: 40, end: 50, reads: []int{2}},
	}
	p := newPendingReads(runs)
	if got := p.done(runs[1]); len(got) != 0 {
		t.Errorf("after run 1: ready %v, want none", got)
	}
	if got := p.done(runs[0]); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("after runs 1, 0: ready %v, want [0 1]", got)
	}
	if got := p.done(runs[2]); !slices.Equal(got, []int{2}) {
		t.Errorf("after all: ready %v, want [2]", got)
	}
}
