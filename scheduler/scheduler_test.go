package scheduler

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestIssue4 is the acceptance case: 50 concurrent requests to a function
// with instanceConcurrency 10 all succeed on at most 5 instances; after
// the idle timeout none remain; with a provisioned target of 2, two stay.
func TestIssue4(t *testing.T) {
	st := &fakeStarter{gate: make(chan struct{})}
	clk := newFakeClock()
	const idle = 30 * time.Second
	s := newTest(t, st, Options{IdleTimeout: idle, Clock: clk})
	fn := echoFn(10)
	const n = 50

	var wg sync.WaitGroup
	var leased atomic.Int32
	hold := make(chan struct{})
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := s.Acquire(context.Background(), fn)
			if err != nil {
				errs <- err
				return
			}
			leased.Add(1)
			<-hold // all 50 hold their slots at once
			l.Release()
		}()
	}
	eventually(t, "50 requests queued behind 5 starts", func() bool {
		st := statsOf(s, "echo")
		return st.Queued == n && st.Starting == 5
	})
	close(st.gate)
	eventually(t, "50 leases", func() bool { return leased.Load() == n || len(errs) > 0 })
	if got := statsOf(s, "echo").Busy; got != 5 {
		t.Errorf("busy instances: got %d, want 5", got)
	}
	close(hold)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Acquire: %v", err)
	}
	if got := st.attempted(); got != 5 {
		t.Errorf("instances started: got %d, want 5", got)
	}

	clk.Tick(t, idle)
	eventually(t, "idle instances stopped", func() bool { return st.running() == 0 })
	if got := statsOf(s, "echo").Instances; got != 0 {
		t.Errorf("instances after the idle timeout: got %d, want 0", got)
	}

	s.SetProvisioned(fn, 2)
	eventually(t, "two provisioned instances", func() bool { _, cur := s.Provisioned("echo"); return cur == 2 })
	// Outlast several idle timeouts, each handled by the janitor.
	for range 5 {
		clk.Tick(t, idle)
	}
	if target, cur := s.Provisioned("echo"); target != 2 || cur != 2 {
		t.Errorf("Provisioned: got %d/%d, want 2/2", target, cur)
	}
	if got := st.running(); got != 2 {
		t.Errorf("running instances: got %d, want 2", got)
	}
}

func TestProvisioned(t *testing.T) {
	st := &fakeStarter{}
	s := newTest(t, st, Options{IdleTimeout: 20 * time.Millisecond})
	fn := echoFn(1)
	s.SetProvisioned(fn, 2)
	eventually(t, "two provisioned instances", func() bool { _, cur := s.Provisioned("echo"); return cur == 2 })

	// A burst beyond the target starts more, which idle away to it.
	var leases []*Lease
	for range 4 {
		l, err := s.Acquire(context.Background(), fn)
		if err != nil {
			t.Fatal(err)
		}
		leases = append(leases, l)
	}
	if got := st.attempted(); got != 4 {
		t.Errorf("starts for a burst of 4: got %d, want 4", got)
	}
	for _, l := range leases {
		l.Release()
	}
	eventually(t, "back to the target", func() bool { return st.running() == 2 })

	// A provisioned instance that dies is replaced.
	for _, in := range st.started() {
		if !in.stopped.Load() {
			in.kill()
			break
		}
	}
	eventually(t, "replacement", func() bool { return st.running() == 2 && st.attempted() == 5 })

	s.SetProvisioned(fn, 0)
	eventually(t, "none after target 0", func() bool { return st.running() == 0 })
	if target, cur := s.Provisioned("echo"); target != 0 || cur != 0 {
		t.Errorf("Provisioned: got %d/%d, want 0/0", target, cur)
	}
}

func TestProvisionBackOff(t *testing.T) {
	boom := errors.New("registry unreachable")
	st := &fakeStarter{fail: func(attempt int) error {
		if attempt <= 3 {
			return boom
		}
		return nil
	}}
	s := newTest(t, st, Options{IdleTimeout: 10 * time.Millisecond, ProvisionRetry: 5 * time.Millisecond})
	s.SetProvisioned(echoFn(1), 1)
	eventually(t, "provisioned after failures", func() bool { _, cur := s.Provisioned("echo"); return cur == 1 })
	if got := st.attempted(); got != 4 {
		t.Errorf("start attempts: got %d, want 4 (3 failures, 1 success)", got)
	}
	if got := statsOf(s, "echo").ColdStartFailures; got != 3 {
		t.Errorf("failed cold starts: got %d, want 3", got)
	}

	// A long back-off holds retries back across many janitor ticks.
	st2 := &fakeStarter{fail: func(int) error { return boom }}
	clk := newFakeClock()
	s2 := newTest(t, st2, Options{IdleTimeout: 10 * time.Second, ProvisionRetry: 5 * time.Minute, Clock: clk})
	s2.SetProvisioned(echoFn(1), 1)
	eventually(t, "first attempt", func() bool { return statsOf(s2, "echo").ColdStartFailures == 1 })
	for range 9 { // janitor ticks across 4.5 of the 5 minutes
		clk.Tick(t, 30*time.Second)
	}
	if got := st2.attempted(); got != 1 {
		t.Errorf("start attempts within the back-off: got %d, want 1", got)
	}
	clk.Tick(t, 30*time.Second)
	eventually(t, "a retry once the back-off is over", func() bool { return st2.attempted() == 2 })
}

func TestThrottle(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		fn   Function
		// queued requests to wait behind before the one under test
		queued int
	}{
		{name: "queue full", opts: Options{MaxQueue: 2}, fn: echoFn(1), queued: 2},
		{name: "queue deadline", opts: Options{QueueTimeout: 20 * time.Millisecond}, fn: echoFn(1)},
		{name: "larger than the memory budget", opts: Options{MemoryBudgetMB: 100}, fn: echoFn(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &fakeStarter{gate: make(chan struct{})}
			defer close(st.gate)
			s := newTest(t, st, tt.opts)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			for range tt.queued {
				acquireAsync(ctx, s, tt.fn)
			}
			eventually(t, "queued", func() bool { return statsOf(s, "echo").Queued == tt.queued })
			_, err := s.Acquire(context.Background(), tt.fn)
			if !errors.Is(err, ErrThrottled) {
				t.Fatalf("got %v, want ErrThrottled", err)
			}
			got := statsOf(s, "echo")
			if got.Queued != tt.queued {
				t.Errorf("queued after throttling: got %d, want %d", got.Queued, tt.queued)
			}
			if got.Throttled != 1 {
				t.Errorf("throttled count: got %d, want 1", got.Throttled)
			}
		})
	}
}

func TestCancelWhileWaiting(t *testing.T) {
	st := &fakeStarter{gate: make(chan struct{})}
	s := newTest(t, st, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	ch := acquireAsync(ctx, s, echoFn(1))
	eventually(t, "queued", func() bool { return statsOf(s, "echo").Queued == 1 })
	cancel()
	if r := recv(t, ch); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", r.err)
	}
	if st := statsOf(s, "echo"); st.Queued != 0 || st.Canceled != 1 {
		t.Fatalf("after cancel: queued %d, canceled %d; want 0 and 1", st.Queued, st.Canceled)
	}
	// The start goes on and leaves a warm instance for the next request.
	close(st.gate)
	eventually(t, "instance ready", func() bool { return statsOf(s, "echo").Instances == 1 })
	l, err := s.Acquire(context.Background(), echoFn(1))
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	if got := st.attempted(); got != 1 {
		t.Errorf("starts: got %d, want 1", got)
	}
	// An already cancelled request does not queue or start anything.
	l, _ = s.Acquire(context.Background(), echoFn(1))
	if _, err := s.Acquire(ctx, echoFn(1)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled request: got %v, want context.Canceled", err)
	}
	l.Release()
	if got := st.attempted(); got != 1 {
		t.Errorf("starts after a cancelled request: got %d, want 1", got)
	}
}

func TestStartFailure(t *testing.T) {
	boom := errors.New("image not found")
	tests := []struct {
		name        string
		concurrency int
		max         int
		requests    int
		wantStarts  int
	}{
		// Two starts, each failing the two requests it was for.
		{name: "coalesced", concurrency: 2, requests: 4, wantStarts: 2},
		// One start at a time: each waiter gets a start of its own and its
		// error; nobody hangs behind a failed start.
		{name: "one instance at most", concurrency: 1, max: 1, requests: 3, wantStarts: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &fakeStarter{gate: make(chan struct{}), fail: func(int) error { return boom }}
			s := newTest(t, st, Options{})
			fn := echoFn(tt.concurrency)
			fn.MaxInstances = tt.max
			var chs []<-chan result
			for range tt.requests {
				chs = append(chs, acquireAsync(context.Background(), s, fn))
			}
			eventually(t, "queued", func() bool { return statsOf(s, "echo").Queued == tt.requests })
			close(st.gate)
			for _, ch := range chs {
				if r := recv(t, ch); !errors.Is(r.err, boom) {
					t.Errorf("got %v, want the start's error", r.err)
				}
			}
			if got := st.attempted(); got != tt.wantStarts {
				t.Errorf("start attempts: got %d, want %d", got, tt.wantStarts)
			}
			// A later request tries again and succeeds.
			st.mu.Lock()
			st.fail = nil
			st.mu.Unlock()
			l, err := s.Acquire(context.Background(), fn)
			if err != nil {
				t.Fatal(err)
			}
			l.Release()
		})
	}
}

func TestEviction(t *testing.T) {
	st := &fakeStarter{}
	s := newTest(t, st, Options{})
	fn := echoFn(2)
	l, err := s.Acquire(context.Background(), fn)
	if err != nil {
		t.Fatal(err)
	}
	first := st.started()[0]
	first.kill() // dies with a request in flight
	eventually(t, "eviction", func() bool { return statsOf(s, "echo").Instances == 0 })
	l.Release() // the proxy fails that request; ending the lease is harmless

	l, err = s.Acquire(context.Background(), fn)
	if err != nil {
		t.Fatal(err)
	}
	if l.Instance().ID() == first.ID() {
		t.Fatal("got the dead instance again")
	}
	second := st.started()[1]
	// Fail evicts too, and the instance is not handed out again.
	l.Fail(errors.New("connection refused"))
	l.Fail(errors.New("again")) // a second end does nothing
	eventually(t, "eviction after Fail", func() bool { return second.stopped.Load() })
	if got := statsOf(s, "echo"); got.Evicted != 2 || got.Instances != 0 {
		t.Errorf("evicted %d, instances %d; want 2 and 0", got.Evicted, got.Instances)
	}
	l, err = s.Acquire(context.Background(), fn)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Instance().ID(); got == first.ID() || got == second.ID() {
		t.Errorf("got evicted instance %s", got)
	}
	l.Release()
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
	if _, cur := s.Provisioned("echo"); cur != 1 {
		t.Errorf("instances after the drain: got %d, want 1", cur)
	}
}

func TestUpdateDuringColdStart(t *testing.T) {
	st := &fakeStarter{gate: make(chan struct{})}
	s := newTest(t, st, Options{})
	v1 := echoFn(1)
	ch := acquireAsync(context.Background(), s, v1)
	eventually(t, "r1 start", func() bool { return statsOf(s, "echo").Starting == 1 })
	v2 := v1
	v2.Revision = "r2"
	s.Update(v2)
	// The waiter needs an r2 instance: a second start, not counting the
	// stale one.
	eventually(t, "r2 start", func() bool { return statsOf(s, "echo").Starting == 2 })
	close(st.gate)
	r := recv(t, ch)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := r.lease.Instance().(*fakeInstance).fn.Revision; got != "r2" {
		t.Errorf("waiter got revision %s, want r2", got)
	}
	r.lease.Release()
	eventually(t, "r1 instance stopped", func() bool {
		for _, in := range st.started() {
			if in.fn.Revision == "r1" {
				return in.stopped.Load()
			}
		}
		return false
	})
}

func TestRemove(t *testing.T) {
	st := &fakeStarter{}
	s := newTest(t, st, Options{})
	busy, err := s.Acquire(context.Background(), echoFn(2))
	if err != nil {
		t.Fatal(err)
	}
	first := st.started()[0]

	st.gate = make(chan struct{})
	other := Function{Name: "other", Revision: "r1", Concurrency: 1}
	ch := acquireAsync(context.Background(), s, other)
	eventually(t, "queued", func() bool { return statsOf(s, "other").Queued == 1 })
	s.Remove("other")
	if r := recv(t, ch); !errors.Is(r.err, ErrFunctionDeleted) {
		t.Fatalf("waiter: got %v, want ErrFunctionDeleted", r.err)
	}
	close(st.gate) // the start finishes for a removed function: stopped
	eventually(t, "late instance stopped", func() bool {
		ins := st.started()
		return len(ins) == 2 && ins[1].stopped.Load()
	})

	s.Remove("echo")
	if first.stopped.Load() {
		t.Fatal("busy instance stopped before its lease ended")
	}
	if len(s.Stats()) != 0 {
		t.Errorf("stats after Remove: got %v, want none", s.Stats())
	}
	busy.Release()
	eventually(t, "drained instance stopped", func() bool { return first.stopped.Load() })
	eventually(t, "removed pools forgotten", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.retired) == 0
	})

	// The name can be used again.
	l, err := s.Acquire(context.Background(), echoFn(2))
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
}

func TestMaxInstances(t *testing.T) {
	st := &fakeStarter{}
	s := newTest(t, st, Options{QueueTimeout: 20 * time.Millisecond})
	fn := echoFn(1)
	fn.MaxInstances = 2
	a, err := s.Acquire(context.Background(), fn)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Acquire(context.Background(), fn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Acquire(context.Background(), fn); !errors.Is(err, ErrThrottled) {
		t.Fatalf("third: got %v, want ErrThrottled", err)
	}
	if got := st.attempted(); got != 2 {
		t.Fatalf("started: got %d, want 2", got)
	}
	// A released slot goes to the next waiter.
	ch := acquireAsync(context.Background(), s, fn)
	eventually(t, "queued", func() bool { return statsOf(s, "echo").Queued == 1 })
	a.Release()
	r := recv(t, ch)
	if r.err != nil {
		t.Fatal(r.err)
	}
	r.lease.Release()
	b.Release()
	if got := st.attempted(); got != 2 {
		t.Errorf("started: got %d, want 2", got)
	}
}

func TestMemoryBudget(t *testing.T) {
	other := Function{Name: "other", Revision: "r1", MemoryMB: 256, Concurrency: 1}
	t.Run("idle instance of another function is reclaimed", func(t *testing.T) {
		st := &fakeStarter{}
		s := newTest(t, st, Options{MemoryBudgetMB: 256})
		l, err := s.Acquire(context.Background(), other)
		if err != nil {
			t.Fatal(err)
		}
		l.Release()
		e, err := s.Acquire(context.Background(), echoFn(1))
		if err != nil {
			t.Fatal(err)
		}
		e.Release()
		if !st.started()[0].stopped.Load() {
			t.Error("idle instance of other was not stopped")
		}
		if got := s.MemoryUsedMB(); got != 128 {
			t.Errorf("memory used: got %d MB, want 128", got)
		}
	})
	t.Run("waiter gets memory when a busy instance goes idle", func(t *testing.T) {
		st := &fakeStarter{}
		s := newTest(t, st, Options{MemoryBudgetMB: 256})
		l, err := s.Acquire(context.Background(), other)
		if err != nil {
			t.Fatal(err)
		}
		ch := acquireAsync(context.Background(), s, echoFn(1))
		eventually(t, "echo waits for memory", func() bool { return statsOf(s, "echo").Queued == 1 })
		if got := st.attempted(); got != 1 {
			t.Fatalf("starts while over budget: got %d, want 1", got)
		}
		l.Release()
		r := recv(t, ch)
		if r.err != nil {
			t.Fatal(r.err)
		}
		r.lease.Release()
		if !st.started()[0].stopped.Load() {
			t.Error("idle instance of other was not stopped")
		}
	})
	t.Run("provisioned instances are not reclaimed", func(t *testing.T) {
		st := &fakeStarter{}
		s := newTest(t, st, Options{MemoryBudgetMB: 256})
		s.SetProvisioned(other, 1)
		eventually(t, "provisioned", func() bool { _, cur := s.Provisioned("other"); return cur == 1 })
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if _, err := s.Acquire(ctx, echoFn(1)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want to wait until the deadline", err)
		}
		if st.started()[0].stopped.Load() {
			t.Error("provisioned instance was reclaimed")
		}
		if got := s.MemoryUsedMB(); got != 256 {
			t.Errorf("memory used: got %d MB, want 256", got)
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
	for range 6 {
		l, err := s.Acquire(context.Background(), fn)
		if err != nil {
			t.Fatal(err)
		}
		count[l.Instance().ID()]++
		leases = append(leases, l)
	}
	for id, n := range count {
		if n != 3 {
			t.Errorf("instance %s: got %d leases, want 3 (spread evenly)", id, n)
		}
	}
	for _, l := range leases {
		l.Release()
		l.Release() // a second release does nothing
	}
	if got := statsOf(s, "echo").Busy; got != 0 {
		t.Errorf("busy after releases: got %d, want 0", got)
	}
}

func TestStats(t *testing.T) {
	st := &fakeStarter{}
	s := newTest(t, st, Options{})
	for range 3 {
		l, err := s.Acquire(context.Background(), echoFn(1))
		if err != nil {
			t.Fatal(err)
		}
		l.Release()
	}
	got := statsOf(s, "echo")
	if got.Acquires != 3 || got.ColdStarts != 1 || got.ColdStartCount != 1 || got.Instances != 1 {
		t.Errorf("got acquires %d, cold starts %d (%d done), instances %d; want 3, 1 (1), 1",
			got.Acquires, got.ColdStarts, got.ColdStartCount, got.Instances)
	}
	last := got.ColdStartBuckets[len(got.ColdStartBuckets)-1]
	if last.UpperBound != 120 || last.Count != 1 {
		t.Errorf("last bucket: got %+v, want {120 1}", last)
	}
	for i := 1; i < len(got.ColdStartBuckets); i++ {
		if got.ColdStartBuckets[i].Count < got.ColdStartBuckets[i-1].Count {
			t.Errorf("buckets not cumulative: %+v", got.ColdStartBuckets)
		}
	}
}

func TestClose(t *testing.T) {
	t.Run("stops everything", func(t *testing.T) {
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
	})
	t.Run("waits for busy instances", func(t *testing.T) {
		st := &fakeStarter{}
		s := New(st, Options{})
		l, err := s.Acquire(context.Background(), echoFn(1))
		if err != nil {
			t.Fatal(err)
		}
		s.Remove("echo") // a draining pool is waited for too
		l2, err := s.Acquire(context.Background(), echoFn(1))
		if err != nil {
			t.Fatal(err)
		}
		st.gate = make(chan struct{})
		ch := acquireAsync(context.Background(), s, Function{Name: "starting", Concurrency: 1})
		eventually(t, "start in flight", func() bool { return statsOf(s, "starting").Starting == 1 })

		closed := make(chan error, 1)
		go func() { closed <- s.Close(context.Background()) }()
		if r := recv(t, ch); !errors.Is(r.err, ErrClosed) {
			t.Errorf("waiter: got %v, want ErrClosed", r.err)
		}
		select {
		case err := <-closed:
			t.Fatalf("Close returned %v with leases out", err)
		case <-time.After(20 * time.Millisecond):
		}
		l.Release()
		l2.Release()
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
		for _, in := range st.started() {
			if !in.stopped.Load() {
				t.Errorf("instance %s not stopped", in.ID())
			}
		}
	})
	t.Run("deadline stops busy instances", func(t *testing.T) {
		st := &fakeStarter{}
		s := New(st, Options{})
		l, err := s.Acquire(context.Background(), echoFn(1))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		if err := s.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close: got %v, want DeadlineExceeded", err)
		}
		eventually(t, "busy instance stopped", func() bool { return st.started()[0].stopped.Load() })
		l.Release() // after Close: does nothing
		s.wg.Wait()
	})
}

func BenchmarkWarmAcquireRelease(b *testing.B) {
	s := newTest(b, &fakeStarter{}, Options{})
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
				b.Error(err)
				return
			}
			l.Release()
		}
	})
}

// TestUpdateBeforeFirstAcquire: a request that read the function before an
// update and acquires after it must get the new revision.
func TestUpdateBeforeFirstAcquire(t *testing.T) {
	st := &fakeStarter{}
	s := newTest(t, st, Options{})
	v1 := echoFn(1)
	v2 := v1
	v2.Revision = "r2"
	s.Update(v2)
	l, err := s.Acquire(context.Background(), v1)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if got := l.Instance().(*fakeInstance).fn.Revision; got != "r2" {
		t.Fatalf("got an instance of revision %s, want r2", got)
	}
}
