package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeInstance is an instance that lives until stopped or killed.
type fakeInstance struct {
	id      string
	fn      Function
	done    chan struct{}
	stopped atomic.Bool
	once    sync.Once
}

func (f *fakeInstance) ID() string            { return f.id }
func (f *fakeInstance) Addr() string          { return "addr-" + f.id }
func (f *fakeInstance) Done() <-chan struct{} { return f.done }
func (f *fakeInstance) Stop(context.Context) error {
	f.stopped.Store(true)
	f.kill()
	return nil
}
func (f *fakeInstance) kill() { f.once.Do(func() { close(f.done) }) }

// fakeStarter starts fakeInstances after an optional delay or gate, or
// fails with err. It records every instance it started.
type fakeStarter struct {
	delay time.Duration
	gate  chan struct{} // when set, each start waits for a receive from it... or close

	mu        sync.Mutex
	err       error
	n         int
	instances []*fakeInstance
}

func (f *fakeStarter) Start(ctx context.Context, fn Function) (Instance, error) {
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	if f.err != nil {
		return nil, f.err
	}
	in := &fakeInstance{id: fmt.Sprintf("%s-%d", fn.Name, f.n), fn: fn, done: make(chan struct{})}
	f.instances = append(f.instances, in)
	return in, nil
}

func (f *fakeStarter) started() []*fakeInstance {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*fakeInstance(nil), f.instances...)
}

func (f *fakeStarter) running() int {
	n := 0
	for _, in := range f.started() {
		if !in.stopped.Load() {
			n++
		}
	}
	return n
}

func newTest(t *testing.T, st Starter, opts Options) *Scheduler {
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

// eventually polls cond, for conditions reached by background work
// (janitor ticks, asynchronous stops); it fails after 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// statsOf returns the stats of the only pool, or zero before it exists.
func statsOf(s *Scheduler) FunctionStats {
	if st := s.Stats(); len(st) > 0 {
		return st[0]
	}
	return FunctionStats{}
}

func echoFn(concurrency int) Function {
	return Function{Name: "echo", Revision: "r1", MemoryMB: 128, Concurrency: concurrency}
}

func TestConcurrentRequestsCoalesceColdStarts(t *testing.T) {
	st := &fakeStarter{delay: 50 * time.Millisecond}
	s := newTest(t, st, Options{IdleTimeout: 200 * time.Millisecond})
	fn := echoFn(10)
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	hold := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := s.Acquire(context.Background(), fn)
			if err != nil {
				errs <- err
				return
			}
			<-hold // all 50 hold their slots at once
			l.Release()
		}()
	}
	eventually(t, "all 50 leased", func() bool {
		busy := 0
		for _, fs := range s.Stats() {
			busy = fs.Instances * 10
			if fs.Queued > 0 || fs.Starting > 0 {
				return false
			}
		}
		return busy >= n
	})
	close(hold)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Acquire: %v", err)
	}
	if got := len(st.started()); got > 5 {
		t.Errorf("instances started: got %d, want at most 5", got)
	}
	eventually(t, "idle instances stopped", func() bool { return st.running() == 0 })
	if got := statsOf(s).Instances; got != 0 {
		t.Errorf("instances after idle timeout: got %d, want 0", got)
	}
}

func TestProvisionedStayWarm(t *testing.T) {
	st := &fakeStarter{}
	s := newTest(t, st, Options{IdleTimeout: 50 * time.Millisecond})
	fn := echoFn(1)
	s.SetProvisioned(fn, 2)
	eventually(t, "two provisioned instances", func() bool { _, cur := s.Provisioned("echo"); return cur == 2 })
	// A burst beyond the target starts more, which idle away to the target.
	var leases []*Lease
	for i := 0; i < 4; i++ {
		l, err := s.Acquire(context.Background(), fn)
		if err != nil {
			t.Fatal(err)
		}
		leases = append(leases, l)
	}
	for _, l := range leases {
		l.Release()
	}
	eventually(t, "back to the target", func() bool { return st.running() == 2 })
	time.Sleep(200 * time.Millisecond) // several idle timeouts
	if target, cur := s.Provisioned("echo"); target != 2 || cur != 2 {
		t.Errorf("Provisioned: got %d/%d, want 2/2", target, cur)
	}
	s.SetProvisioned(fn, 0)
	eventually(t, "none after target 0", func() bool { return st.running() == 0 })
}

func TestQueueBoundAndDeadline(t *testing.T) {
	st := &fakeStarter{gate: make(chan struct{})}
	defer close(st.gate)
	t.Run("queue full", func(t *testing.T) {
		s := newTest(t, st, Options{MaxQueue: 2})
		fn := echoFn(1)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		for i := 0; i < 2; i++ {
			go s.Acquire(ctx, fn)
		}
		eventually(t, "two queued", func() bool { return statsOf(s).Queued == 2 })
		if _, err := s.Acquire(context.Background(), fn); !errors.Is(err, ErrThrottled) {
			t.Fatalf("got %v, want ErrThrottled", err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		s := newTest(t, st, Options{QueueTimeout: 50 * time.Millisecond})
		if _, err := s.Acquire(context.Background(), echoFn(1)); !errors.Is(err, ErrThrottled) {
			t.Fatalf("got %v, want ErrThrottled", err)
		}
		if got := statsOf(s).Queued; got != 0 {
			t.Fatalf("waiter left behind: queued %d", got)
		}
	})
}

func TestCancelWhileWaiting(t *testing.T) {
	st := &fakeStarter{gate: make(chan struct{})}
	s := newTest(t, st, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { _, err := s.Acquire(ctx, echoFn(1)); errc <- err }()
	eventually(t, "queued", func() bool { return statsOf(s).Queued == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if got := statsOf(s).Queued; got != 0 {
		t.Fatalf("queued after cancel: got %d, want 0", got)
	}
	// The start goes on and leaves a warm instance for the next request.
	close(st.gate)
	eventually(t, "instance ready", func() bool { return statsOf(s).Instances == 1 })
	l, err := s.Acquire(context.Background(), echoFn(1))
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	if got := len(st.started()); got != 1 {
		t.Errorf("starts: got %d, want 1", got)
	}
}

func TestStartFailureReachesItsWaiters(t *testing.T) {
	boom := errors.New("image not found")
	st := &fakeStarter{err: boom, delay: 20 * time.Millisecond}
	s := newTest(t, st, Options{})
	fn := echoFn(2)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Acquire(context.Background(), fn)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, boom) {
			t.Errorf("got %v, want the start error", err)
		}
	}
	st.mu.Lock()
	n := st.n
	st.mu.Unlock()
	if n > 4 {
		t.Errorf("start attempts: got %d, want at most one per waiter", n)
	}
	// A later request tries again and succeeds.
	st.mu.Lock()
	st.err = nil
	st.mu.Unlock()
	l, err := s.Acquire(context.Background(), fn)
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
}

func TestDeadInstanceIsEvicted(t *testing.T) {
	st := &fakeStarter{}
	s := newTest(t, st, Options{})
	fn := echoFn(1)
	l, err := s.Acquire(context.Background(), fn)
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	first := st.started()[0]
	first.kill()
	eventually(t, "eviction", func() bool { return statsOf(s).Instances == 0 })
	l, err = s.Acquire(context.Background(), fn)
	if err != nil {
		t.Fatal(err)
	}
	if l.Instance().ID() == first.ID() {
		t.Fatal("got the dead instance again")
	}
	// Fail evicts too.
	l.Fail(errors.New("connection reset"))
	eventually(t, "eviction after Fail", func() bool { return statsOf(s).Instances == 0 })
	if got := statsOf(s).Evicted; got != 2 {
		t.Errorf("evicted: got %d, want 2", got)
	}
}

func TestUpdateDrains(t *testing.T) {
	st := &fakeStarter{}
	s := newTest(t, st, Options{})
	v1 := echoFn(1)
	busy, err := s.Acquire(context.Background(), v1)
	if err != nil {
		t.Fatal(err)
	}
	old := st.started()[0]
	v2 := v1
	v2.Revision = "r2"
	s.Update(v2)
	l, err := s.Acquire(context.Background(), v1) // a request with a stale view
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Instance().(*fakeInstance).fn.Revision; got != "r2" {
		t.Errorf("new request went to revision %s, want r2", got)
	}
	l.Release()
	if old.stopped.Load() {
		t.Fatal("busy old instance stopped before its lease ended")
	}
	busy.Release()
	eventually(t, "old instance stopped", func() bool { return old.stopped.Load() })
}

func TestRemove(t *testing.T) {
	st := &fakeStarter{gate: make(chan struct{})}
	s := newTest(t, st, Options{})
	errc := make(chan error)
	go func() { _, err := s.Acquire(context.Background(), echoFn(1)); errc <- err }()
	eventually(t, "queued", func() bool { return statsOf(s).Queued == 1 })
	s.Remove("echo")
	if err := <-errc; !errors.Is(err, ErrFunctionDeleted) {
		t.Fatalf("got %v, want ErrFunctionDeleted", err)
	}
	close(st.gate) // the start finishes for a removed function: stopped
	eventually(t, "started instance stopped", func() bool {
		ins := st.started()
		return len(ins) == 1 && ins[0].stopped.Load()
	})
}

func TestLimits(t *testing.T) {
	t.Run("max instances", func(t *testing.T) {
		st := &fakeStarter{}
		s := newTest(t, st, Options{QueueTimeout: 100 * time.Millisecond})
		fn := echoFn(1)
		fn.MaxInstances = 2
		a, _ := s.Acquire(context.Background(), fn)
		b, _ := s.Acquire(context.Background(), fn)
		if _, err := s.Acquire(context.Background(), fn); !errors.Is(err, ErrThrottled) {
			t.Fatalf("third: got %v, want ErrThrottled", err)
		}
		if got := len(st.started()); got != 2 {
			t.Fatalf("started: got %d, want 2", got)
		}
		// A released slot goes to the next waiter.
		done := make(chan error)
		go func() {
			l, err := s.Acquire(context.Background(), fn)
			if err == nil {
				l.Release()
			}
			done <- err
		}()
		a.Release()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		b.Release()
	})
	t.Run("memory budget reclaims idle instances of others", func(t *testing.T) {
		st := &fakeStarter{}
		s := newTest(t, st, Options{MemoryBudgetMB: 256, QueueTimeout: 2 * time.Second})
		other := Function{Name: "other", Revision: "r", MemoryMB: 256, Concurrency: 1}
		l, err := s.Acquire(context.Background(), other)
		if err != nil {
			t.Fatal(err)
		}
		// other holds the whole budget while busy: echo cannot start.
		short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if _, err := s.Acquire(short, echoFn(1)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("over budget: got %v, want to wait until the deadline", err)
		}
		l.Release()
		// Idle now: echo's start reclaims it.
		e, err := s.Acquire(context.Background(), echoFn(1))
		if err != nil {
			t.Fatal(err)
		}
		e.Release()
		if !st.started()[0].stopped.Load() {
			t.Error("idle instance of other was not stopped")
		}
		if used := s.MemoryUsedMB(); used > 256 {
			t.Errorf("memory used %d MB, over the 256 MB budget", used)
		}
	})
}

func TestLeastLoadedFirst(t *testing.T) {
	st := &fakeStarter{}
	s := newTest(t, st, Options{})
	fn := echoFn(4)
	s.SetProvisioned(fn, 2)
	eventually(t, "two instances", func() bool { _, cur := s.Provisioned("echo"); return cur == 2 })
	count := map[string]int{}
	var leases []*Lease
	for i := 0; i < 6; i++ {
		l, err := s.Acquire(context.Background(), fn)
		if err != nil {
			t.Fatal(err)
		}
		count[l.Instance().ID()]++
		leases = append(leases, l)
	}
	for id, n := range count {
		if n != 3 {
			t.Errorf("instance %s has %d leases, want 3 (spread evenly)", id, n)
		}
	}
	for _, l := range leases {
		l.Release()
		l.Release() // a second release does nothing
	}
	if got := statsOf(s).Busy; got != 0 {
		t.Errorf("busy after releases: %d", got)
	}
}

func TestCloseStopsEverything(t *testing.T) {
	st := &fakeStarter{}
	s := New(st, Options{})
	for _, name := range []string{"a", "b"} {
		l, err := s.Acquire(context.Background(), Function{Name: name, Revision: "1", Concurrency: 1})
		if err != nil {
			t.Fatal(err)
		}
		l.Release()
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, in := range st.started() {
		if !in.stopped.Load() {
			t.Errorf("instance %s not stopped", in.ID())
		}
	}
	if _, err := s.Acquire(context.Background(), echoFn(1)); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: got %v, want ErrClosed", err)
	}
}

func BenchmarkWarmAcquireRelease(b *testing.B) {
	st := &fakeStarter{}
	s := New(st, Options{})
	defer s.Close(context.Background())
	fn := echoFn(1000)
	l, err := s.Acquire(context.Background(), fn)
	if err != nil {
		b.Fatal(err)
	}
	l.Release()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l, err := s.Acquire(ctx, fn)
			if err != nil {
				b.Fatal(err)
			}
			l.Release()
		}
	})
}
