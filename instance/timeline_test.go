package instance

import (
	"fmt"
	"log/slog"
	"testing"
	"time"
)

func TestTimelineKeepsLastStarts(t *testing.T) {
	tl := newTimeline()
	for i := range startsKept + 3 {
		tl.add(StartRecord{Function: "f", Instance: fmt.Sprint(i), Stats: StartStats{Ready: time.Duration(i) * time.Millisecond}})
	}
	tl.add(StartRecord{Function: "g", Instance: "other"})
	all := tl.last("f", 0)
	if len(all) != startsKept {
		t.Fatalf("kept: got %d, want %d", len(all), startsKept)
	}
	if got, want := all[0].Instance, "3"; got != want {
		t.Errorf("oldest kept: got %s, want %s", got, want)
	}
	last := tl.last("f", 2)
	if len(last) != 2 || last[0].Instance != fmt.Sprint(startsKept+1) || last[1].Instance != fmt.Sprint(startsKept+2) {
		t.Errorf("last 2: got %+v, want instances %d and %d", last, startsKept+1, startsKept+2)
	}
	if got := tl.last("none", 5); len(got) != 0 {
		t.Errorf("unknown function: got %d records, want 0", len(got))
	}
}

func TestTimelineHistograms(t *testing.T) {
	tl := newTimeline()
	for _, d := range []time.Duration{500 * time.Microsecond, 3 * time.Millisecond, 3 * time.Millisecond, 2 * time.Minute} {
		tl.add(StartRecord{Function: "f", Stats: StartStats{Network: d}})
	}
	var net *PhaseHistogram
	hs := tl.histograms()
	for i := range hs {
		if hs[i].Phase == PhaseNetwork {
			net = &hs[i]
		}
	}
	if len(hs) != len((StartStats{}).Phases()) || net == nil {
		t.Fatalf("histograms: got %+v, want one per phase", hs)
	}
	if net.Count != 4 {
		t.Errorf("count: got %d, want 4", net.Count)
	}
	if want := (2*time.Minute + 6500*time.Microsecond).Seconds(); net.Sum < want-1e-9 || net.Sum > want+1e-9 {
		t.Errorf("sum: got %v, want %v", net.Sum, want)
	}
	for bound, want := range map[float64]uint64{.001: 1, .0025: 1, .005: 3, 60: 3} {
		if got := net.Buckets[bound]; got != want {
			t.Errorf("bucket le=%v: got %d, want %d", bound, got, want)
		}
	}
}

func TestPhasesOffsetsAndSteps(t *testing.T) {
	ms := time.Millisecond
	st := StartStats{
		PullAt: 1 * ms,
		Pull: PullStats{
			Duration: 50 * ms, BytesFetched: 4096,
			Resolve:  PullSpan{Offset: 0, Duration: 5 * ms},
			Auth:     PullSpan{Offset: 1 * ms, Duration: 2 * ms},
			Index:    PullSpan{Offset: 5 * ms, Duration: 10 * ms},
			Mount:    PullSpan{Offset: 15 * ms, Duration: 3 * ms},
			Prefetch: PullSpan{Offset: 18 * ms, Duration: 100 * ms}, PrefetchBytes: 1 << 20,
		},
		RootfsAt: 52 * ms, Rootfs: 2 * ms,
		NetworkAt: 54 * ms, Network: 1 * ms,
		ContainerAt: 55 * ms, Container: 3 * ms,
		TaskAt: 58 * ms, Task: 20 * ms,
		TaskStartAt: 78 * ms, TaskStart: 2 * ms,
		ReadyAt: 80 * ms, Ready: 10 * ms,
		Total: 91 * ms,
	}
	type row struct {
		name  string
		at, d time.Duration
		bytes int64
	}
	want := []row{
		{PhasePull, 1 * ms, 50 * ms, 4096},
		{PhaseResolve, 1 * ms, 5 * ms, 0},
		{PhaseAuth, 2 * ms, 2 * ms, 0},
		{PhaseIndex, 6 * ms, 10 * ms, 0},
		{PhaseMount, 16 * ms, 3 * ms, 0},
		{PhasePrefetch, 19 * ms, 100 * ms, 1 << 20},
		{PhaseRootfs, 52 * ms, 2 * ms, 0},
		{PhaseNetwork, 54 * ms, 1 * ms, 0},
		{PhaseContainer, 55 * ms, 3 * ms, 0},
		{PhaseTask, 58 * ms, 20 * ms, 0},
		{PhaseStart, 78 * ms, 2 * ms, 0},
		{PhaseProbe, 80 * ms, 10 * ms, 0},
	}
	check := func(got []Phase, want []row) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("Phases: got %d %+v, want %d", len(got), got, len(want))
		}
		for i, w := range want {
			if g := got[i]; g.Name != w.name || g.Offset != w.at || g.Duration != w.d || g.Bytes != w.bytes {
				t.Errorf("phase %d: got %+v, want %+v", i, g, w)
			}
		}
	}
	check(st.Phases(), want) // no fetch: a lazy image's start
	st.FirstResponse = 95 * ms
	check(st.Phases(), append(want, row{PhaseFirstResponse, 91 * ms, 4 * ms, 0}))
}

func TestTimelineFirstResponse(t *testing.T) {
	tl := newTimeline()
	tl.add(StartRecord{Function: "f", Instance: "a", Stats: StartStats{Total: 10 * time.Millisecond}})
	tl.add(StartRecord{Function: "f", Instance: "b", Stats: StartStats{Total: 20 * time.Millisecond}})
	r, ok := tl.firstResponse("f", "a", 13*time.Millisecond)
	if !ok || r.Instance != "a" || r.Stats.FirstResponse != 13*time.Millisecond {
		t.Fatalf("firstResponse: got %+v, %v, want instance a's record with 13ms", r, ok)
	}
	if _, ok := tl.firstResponse("f", "gone", time.Millisecond); ok {
		t.Error("firstResponse of an instance not kept: got ok, want not")
	}
	if got := tl.last("f", 0)[0].Stats.FirstResponse; got != 13*time.Millisecond {
		t.Errorf("kept record's FirstResponse: got %v, want 13ms", got)
	}
	for _, h := range tl.histograms() {
		if h.Phase != PhaseFirstResponse {
			continue
		}
		if want := 0.003; h.Count != 1 || h.Sum < want-1e-9 || h.Sum > want+1e-9 {
			t.Errorf("first_response histogram: got count %d sum %v, want 1 and %v (after the 10ms start)", h.Count, h.Sum, want)
		}
		return
	}
	t.Error("no first_response histogram")
}

func TestInstanceFirstResponse(t *testing.T) {
	begin := time.Now().Add(-time.Second)
	ready := begin.Add(500 * time.Millisecond)
	for _, tc := range []struct {
		name    string
		arrived time.Time
		want    bool
	}{
		{"waited for the start", begin.Add(time.Millisecond), true},
		{"came to a ready instance", ready.Add(time.Millisecond), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &Manager{timeline: newTimeline(), log: slog.New(slog.DiscardHandler)}
			i := &Instance{m: m, spec: Spec{ID: "a", Function: "f"}, begin: begin, readyAt: ready}
			m.timeline.add(StartRecord{Function: "f", Instance: "a", Stats: StartStats{Total: ready.Sub(begin)}})
			i.FirstResponse(tc.arrived)
			first := m.timeline.last("f", 0)[0].Stats.FirstResponse
			if got := first > 0; got != tc.want {
				t.Fatalf("recorded a first response: got %v (%v), want %v", got, first, tc.want)
			}
			i.FirstResponse(begin) // only the first call counts
			if again := m.timeline.last("f", 0)[0].Stats.FirstResponse; again != first {
				t.Errorf("second call: FirstResponse got %v, want %v unchanged", again, first)
			}
		})
	}
}
