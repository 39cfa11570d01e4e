package image

import (
	"sync"
	"testing"
	"time"
)

func TestSpanCover(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name       string
		a, b, want Span
	}{
		{"zero and zero", Span{}, Span{}, Span{}},
		{"zero holds nothing", Span{}, Span{2 * ms, 3 * ms}, Span{2 * ms, 3 * ms}},
		{"overlapping", Span{1 * ms, 4 * ms}, Span{3 * ms, 4 * ms}, Span{1 * ms, 6 * ms}},
		{"disjoint", Span{8 * ms, 1 * ms}, Span{1 * ms, 1 * ms}, Span{1 * ms, 8 * ms}},
		{"inside", Span{1 * ms, 9 * ms}, Span{2 * ms, 1 * ms}, Span{1 * ms, 9 * ms}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a.Cover(tc.b); got != tc.want {
				t.Errorf("%+v.Cover(%+v): got %+v, want %+v", tc.a, tc.b, got, tc.want)
			}
		})
	}
}

func TestTimeCredentials(t *testing.T) {
	if TimeCredentials(nil, &BusyRecorder{}) != nil {
		t.Error("TimeCredentials(nil): got a function, want nil")
	}
	origin := time.Now()
	r := &BusyRecorder{Origin: origin}
	var calls sync.WaitGroup
	creds := TimeCredentials(func(host string) (string, string, error) {
		time.Sleep(time.Millisecond) // the call's own duration, to be measured
		return "u-" + host, "s", nil
	}, r)
	for range 3 {
		calls.Go(func() {
			if u, _, err := creds("reg"); u != "u-reg" || err != nil {
				t.Errorf("creds: got %q, %v, want u-reg, nil", u, err)
			}
		})
	}
	calls.Wait()
	got, elapsed := r.Span(), time.Since(origin)
	if got.Offset < 0 || got.Duration < time.Millisecond || got.End() > elapsed {
		t.Errorf("Span: got %+v, want at least 1ms within the %v since origin", got, elapsed)
	}
}

func TestBusyRecorder(t *testing.T) {
	origin := time.Now()
	at := func(ms int) time.Time { return origin.Add(time.Duration(ms) * time.Millisecond) }
	ms := time.Millisecond
	for _, tc := range []struct {
		name  string
		spans [][2]int // begin, end in ms
		want  Span
	}{
		{"nothing", nil, Span{}},
		{"one", [][2]int{{2, 5}}, Span{2 * ms, 3 * ms}},
		// Credentials while resolving, then at a layer's first fetch a
		// second later: 12 ms spent, not the 1,010 ms they cover.
		{"far apart", [][2]int{{1000, 1006}, {0, 6}}, Span{0, 12 * ms}},
		{"overlapping counted once", [][2]int{{0, 4}, {2, 6}, {10, 11}}, Span{0, 7 * ms}},
		{"inside", [][2]int{{0, 10}, {2, 3}}, Span{0, 10 * ms}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &BusyRecorder{Origin: origin}
			for _, s := range tc.spans {
				r.Add(at(s[0]), at(s[1]))
			}
			if got := r.Span(); got != tc.want {
				t.Errorf("Span: got %+v, want %+v", got, tc.want)
			}
		})
	}
}
