package scheduler

import (
	"context"
	"errors"
	"testing"
	"time"
)

var errBoom = errors.New("boom")

// acquireSessionAsync calls AcquireSession in a goroutine.
func acquireSessionAsync(ctx context.Context, s *Scheduler, fn Function, key string) <-chan result {
	ch := make(chan result, 1)
	go func() {
		l, err := s.AcquireSession(ctx, fn, key)
		ch <- result{lease: l, err: err}
	}()
	return ch
}

func sessionFn() Function {
	fn := echoFn(1)
	fn.SessionAffinity = true
	fn.SessionIdleTimeout = time.Minute
	return fn
}

// TestSessionAffinity: a session's requests go to the instance that
// served it first, waiting for it when it is busy rather than taking
// another instance's free slot or starting one; when its instance is gone
// the session binds anew.
func TestSessionAffinity(t *testing.T) {
	st := &fakeStarter{}
	clk := newFakeClock()
	s := newTest(t, st, Options{IdleTimeout: time.Hour, Clock: clk})
	fn := sessionFn()
	ctx := context.Background()

	first, err := s.AcquireSession(ctx, fn, "k1")
	if err != nil {
		t.Fatal(err)
	}
	// Another request, without a session, starts a second instance,
	// which it leaves idle.
	other, err := s.Acquire(ctx, fn)
	if err != nil {
		t.Fatal(err)
	}
	if other.in == first.in {
		t.Fatal("a request found a free slot on a busy instance of concurrency 1")
	}
	other.Release()

	// k1's instance is busy: the next k1 request waits for it, though
	// the other instance is free, and starts nothing.
	second := acquireSessionAsync(ctx, s, fn, "k1")
	eventually(t, "the k1 request queued", func() bool { return statsOf(s, "echo").Queued == 1 })
	if got := st.attempted(); got != 2 {
		t.Errorf("starts: got %d, want 2 (none for a pinned request)", got)
	}
	// A request without a session takes the free instance meanwhile.
	free, err := s.Acquire(ctx, fn)
	if err != nil {
		t.Fatal(err)
	}
	if free.in != other.in {
		t.Errorf("a request without a session got %s, want the free %s", free.in.ID(), other.in.ID())
	}
	free.Release()
	first.Release()
	r := <-second
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.lease.in != first.in {
		t.Errorf("k1's second request got %s, want its instance %s", r.lease.in.ID(), first.in.ID())
	}
	r.lease.Release()

	// k1's instance dies: the session binds anew.
	first.in.Instance.(*fakeInstance).kill()
	eventually(t, "the dead instance evicted", func() bool { return statsOf(s, "echo").Instances == 1 })
	l, err := s.AcquireSession(ctx, fn, "k1")
	if err != nil {
		t.Fatal(err)
	}
	if l.in != other.in {
		t.Errorf("k1 after its instance died: got %s, want the remaining %s", l.in.ID(), other.in.ID())
	}
	l.Release()
	if got := s.Sessions("echo"); got != 1 {
		t.Errorf("sessions: got %d, want 1", got)
	}
	// Idle past SessionIdleTimeout, the session is forgotten.
	clk.Tick(t, time.Minute)
	eventually(t, "the idle session forgotten", func() bool { return s.Sessions("echo") == 0 })
}

// TestSessionPinnedWaitersNotFailedByAStart: a start that fails fails the
// requests it was for, not those waiting for their session's instance.
func TestSessionPinnedWaitersNotFailedByAStart(t *testing.T) {
	fail := make(chan struct{})
	st := &fakeStarter{fail: func(attempt int) error {
		if attempt == 2 {
			<-fail
			return errBoom
		}
		return nil
	}}
	s := newTest(t, st, Options{})
	fn := sessionFn()
	ctx := context.Background()
	held, err := s.AcquireSession(ctx, fn, "k1")
	if err != nil {
		t.Fatal(err)
	}
	pinned := acquireSessionAsync(ctx, s, fn, "k1")
	eventually(t, "the k1 request queued", func() bool { return statsOf(s, "echo").Queued == 1 })
	unpinned := acquireSessionAsync(ctx, s, fn, "")
	eventually(t, "a second start", func() bool { return statsOf(s, "echo").Starting == 1 })
	close(fail)
	if r := <-unpinned; r.err == nil {
		t.Fatal("the request the failed start was for succeeded")
	}
	held.Release()
	r := <-pinned
	if r.err != nil || r.lease.in != held.in {
		t.Fatalf("pinned request: got %v, want a lease on %s", r.err, held.in.ID())
	}
	r.lease.Release()
}
