package remote

import (
	"testing"
	"time"
)

func TestBreaker(t *testing.T) {
	ms := time.Millisecond
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	b := newBreaker(2, 100*ms, 150*ms)
	steps := []struct {
		name string
		do   func()
		at   time.Duration
		want time.Duration
	}{
		{"closed", nil, 0, 0},
		{"one failure", func() { b.failure(at(0)) }, 0, 0},
		{"opens at the threshold", func() { b.failure(at(10 * ms)) }, 10 * ms, 100 * ms},
		{"still open", nil, 60 * ms, 50 * ms},
		{"probe", nil, 110 * ms, 0},
		{"others wait for the probe", nil, 120 * ms, 90 * ms},
		{"failed probe reopens", func() { b.failure(at(130 * ms)) }, 130 * ms, 100 * ms},
		{"probe again", nil, 230 * ms, 0},
		{"failed probe doubles the cooldown, capped", func() { b.failure(at(240 * ms)) }, 240 * ms, 150 * ms},
		{"probe once more", nil, 390 * ms, 0},
		{"success closes", func() { b.success() }, 391 * ms, 0},
		{"closed again", nil, 392 * ms, 0},
	}
	for _, s := range steps {
		if s.do != nil {
			s.do()
		}
		if got := b.wait(at(s.at)); got != s.want {
			t.Fatalf("%s: wait at %v: got %v, want %v", s.name, s.at, got, s.want)
		}
	}
}
