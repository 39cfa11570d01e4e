package instance

import (
	"testing"
	"time"
)

// TestAppendLogTime holds the cached-second formatting to time.Format's.
func TestAppendLogTime(t *testing.T) {
	east := time.FixedZone("east", 8*3600)
	base := time.Date(2026, 11, 25, 23, 59, 59, 0, time.UTC)
	for _, tm := range []time.Time{
		base,
		base.Add(999999 * time.Microsecond),
		base.Add(999999999), // sub-microsecond digits are cut, not rounded
		base.Add(time.Second),
		base.Add(time.Second + 7*time.Microsecond),
		base.Add(-time.Hour + 123456*time.Microsecond),
		base.In(east).Add(42 * time.Microsecond),
		time.Date(1999, 1, 2, 3, 4, 5, 60000, time.UTC),
	} {
		got := string(appendLogTime(nil, tm))
		if want := tm.UTC().Format(logTimeFmt); got != want {
			t.Errorf("appendLogTime(%v): got %s, want %s", tm, got, want)
		}
	}
}
