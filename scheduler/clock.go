package scheduler

import "time"

// Clock is the scheduler's source of time: idle reclaim, provisioning
// back-off, queue deadlines and cold-start durations all read it. The
// default is the real clock; tests give a fake one to move time by hand.
type Clock interface {
	Now() time.Time
	// NewTicker returns a ticker that delivers the time every d.
	NewTicker(d time.Duration) Ticker
	// NewTimer returns a timer that delivers the time once, after d.
	NewTimer(d time.Duration) Timer
}

// Ticker is a time.Ticker behind an interface.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// Timer is a time.Timer behind an interface.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

// realClock is the wall clock.
type realClock struct{}

func (realClock) Now() time.Time                   { return time.Now() }
func (realClock) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }
func (realClock) NewTimer(d time.Duration) Timer   { return realTimer{time.NewTimer(d)} }

type realTicker struct{ t *time.Ticker }

func (t realTicker) C() <-chan time.Time { return t.t.C }
func (t realTicker) Stop()               { t.t.Stop() }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }
