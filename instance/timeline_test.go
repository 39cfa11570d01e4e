package instance

import (
	"fmt"
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
