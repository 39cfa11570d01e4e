package scheduler

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeInstance stands in for a container: it lives until stopped or
// killed, and records whether Stop was called.
type fakeInstance struct {
	id      string
	fn      Function
	done    chan struct{}
	stopped atomic.Bool
	once    sync.Once
}

var _ Instance = (*fakeInstance)(nil)

func (f *fakeInstance) ID() string            { return f.id }
func (f *fakeInstance) Addr() string          { return "addr-" + f.id }
func (f *fakeInstance) Done() <-chan struct{} { return f.done }

func (f *fakeInstance) Stop(context.Context) error {
	if f.stopped.Swap(true) {
		panic("instance " + f.id + " stopped twice")
	}
	f.kill()
	return nil
}

// kill makes the instance die on its own, as a crashed container does.
func (f *fakeInstance) kill() { f.once.Do(func() { close(f.done) }) }

// fakeStarter starts fakeInstances. A start waits for a receive from gate
// (or its close) when gate is set, then fails with the error fail returns
// for that attempt, if any. It counts attempts and records the instances
// it started.
type fakeStarter struct {
	gate chan struct{}
	fail func(attempt int) error

	mu        sync.Mutex
	attempts  int
	instances []*fakeInstance
}

var _ Starter = (*fakeStarter)(nil)

func (f *fakeStarter) Start(ctx context.Context, fn Function) (Instance, error) {
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts++
	if f.fail != nil {
		if err := f.fail(f.attempts); err != nil {
			return nil, err
		}
	}
	in := &fakeInstance{id: fmt.Sprintf("%s-%d", fn.Name, f.attempts), fn: fn, done: make(chan struct{})}
	f.instances = append(f.instances, in)
	return in, nil
}

func (f *fakeStarter) started() []*fakeInstance {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*fakeInstance(nil), f.instances...)
}

func (f *fakeStarter) attempted() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempts
}

// running counts started instances not yet stopped.
func (f *fakeStarter) running() int {
	n := 0
	for _, in := range f.started() {
		if !in.stopped.Load() {
			n++
		}
	}
	return n
}

// newTest returns a Scheduler closed when the test ends; Close must
// finish, which also checks that no goroutine of the scheduler is stuck.
func newTest(t testing.TB, st Starter, opts Options) *Scheduler {
	t.Helper()
	s := New(st, opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// eventually polls cond, for states reached by background work (janitor
// ticks, asynchronous starts and stops); it fails after 10 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// statsOf returns the stats of the named pool, or zero before it exists.
func statsOf(s *Scheduler, name string) FunctionStats {
	for _, st := range s.Stats() {
		if st.Function == name {
			return st
		}
	}
	return FunctionStats{}
}

func echoFn(concurrency int) Function {
	return Function{Name: "echo", Revision: "r1", MemoryMB: 128, Concurrency: concurrency}
}

// acquireAsync calls Acquire in a goroutine and delivers its outcome.
func acquireAsync(ctx context.Context, s *Scheduler, fn Function) <-chan result {
	ch := make(chan result, 1)
	go func() {
		l, err := s.Acquire(ctx, fn)
		ch <- result{lease: l, err: err}
	}()
	return ch
}

// recv waits for an asynchronous Acquire, failing after 10 s.
func recv(t testing.TB, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("Acquire did not return")
		return result{}
	}
}

// fakeClock is a Clock moved by hand. Its tickers deliver only on Tick,
// which waits until the scheduler's janitor has handled the tick, so a
// test can assert what a tick did, and did not do, without sleeping. Its
// timers fire when Tick moves the time past their deadline.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	tickers []*fakeTicker
	timers  []*fakeTimer
	ticking chan struct{} // closed when the first ticker exists
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), ticking: make(chan struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTicker(time.Duration) Ticker {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTicker{c: make(chan time.Time), stopped: make(chan struct{})}
	if len(c.tickers) == 0 {
		close(c.ticking)
	}
	c.tickers = append(c.tickers, t)
	return t
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: make(chan time.Time, 1), at: c.now.Add(d)}
	c.timers = append(c.timers, t)
	return t
}

// Tick moves the time by d, fires the timers now due, and delivers the
// new time to every ticker twice: the second delivery is taken only once
// the janitor has finished with the first.
func (c *fakeClock) Tick(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case <-c.ticking:
	case <-time.After(10 * time.Second):
		t.Fatal("no ticker was created")
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	now, tickers := c.now, append([]*fakeTicker(nil), c.tickers...)
	timers := c.timers[:0]
	for _, tm := range c.timers {
		if tm.stopped.Load() {
			continue
		}
		if !now.Before(tm.at) {
			tm.c <- now
			continue
		}
		timers = append(timers, tm)
	}
	c.timers = timers
	c.mu.Unlock()
	for _, tk := range tickers {
		for range 2 {
			select {
			case tk.c <- now:
			case <-tk.stopped:
			case <-time.After(10 * time.Second):
				t.Fatal("the janitor did not take a tick")
			}
		}
	}
}

type fakeTicker struct {
	c       chan time.Time
	stopped chan struct{}
	once    sync.Once
}

func (t *fakeTicker) C() <-chan time.Time { return t.c }
func (t *fakeTicker) Stop()               { t.once.Do(func() { close(t.stopped) }) }

type fakeTimer struct {
	c       chan time.Time
	at      time.Time
	stopped atomic.Bool
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }
func (t *fakeTimer) Stop() bool          { return !t.stopped.Swap(true) }
