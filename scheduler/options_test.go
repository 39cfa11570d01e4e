package scheduler

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestFunctionIdleTimeout: a function's own IdleTimeout reclaims its idle
// instances sooner than the scheduler's, and another function keeps the
// scheduler's.
func TestFunctionIdleTimeout(t *testing.T) {
	st := &fakeStarter{}
	clk := newFakeClock()
	s := newTest(t, st, Options{IdleTimeout: time.Hour, Clock: clk})
	short := Function{Name: "short", Revision: "r1", MemoryMB: 128, IdleTimeout: 10 * time.Second}
	long := Function{Name: "long", Revision: "r1", MemoryMB: 128}
	for _, fn := range []Function{short, long} {
		l, err := s.Acquire(context.Background(), fn)
		if err != nil {
			t.Fatal(err)
		}
		l.Release()
	}
	clk.Tick(t, 10*time.Second)
	eventually(t, "the short-idle instance stopped", func() bool { return statsOf(s, "short").Instances == 0 })
	if got := statsOf(s, "long").Instances; got != 1 {
		t.Errorf("instances of the function with the scheduler's idle timeout: got %d, want 1", got)
	}
}

// TestProvisionedOnly: a function without on-demand instances is refused
// while it has no provisioned target, and then is served by provisioned
// instances only, requests beyond their slots waiting for one.
func TestProvisionedOnly(t *testing.T) {
	st := &fakeStarter{}
	s := newTest(t, st, Options{})
	fn := echoFn(1)
	fn.ProvisionedOnly = true
	if _, err := s.Acquire(context.Background(), fn); !errors.Is(err, ErrOnDemandDisabled) {
		t.Fatalf("Acquire without provisioned instances: got %v, want ErrOnDemandDisabled", err)
	}
	if got := st.attempted(); got != 0 {
		t.Fatalf("starts: got %d, want 0", got)
	}
	s.SetProvisioned(fn, 1)
	eventually(t, "one provisioned instance", func() bool { _, cur := s.Provisioned("echo"); return cur == 1 })
	first, err := s.Acquire(context.Background(), fn)
	if err != nil {
		t.Fatal(err)
	}
	second := acquireAsync(context.Background(), s, fn)
	eventually(t, "the second request queued", func() bool { return statsOf(s, "echo").Queued == 1 })
	if got := st.attempted(); got != 1 {
		t.Errorf("starts with a request waiting: got %d, want 1 (no on-demand start)", got)
	}
	first.Release()
	r := <-second
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.lease.in != first.in {
		t.Errorf("the waiting request got instance %s, want the provisioned %s", r.lease.in.ID(), first.in.ID())
	}
	r.lease.Release()
}

// TestStartError: the last failed start of a function is reported until
// a start succeeds.
func TestStartError(t *testing.T) {
	boom := errors.New("image not found")
	st := &fakeStarter{fail: func(attempt int) error {
		if attempt == 1 {
			return boom
		}
		return nil
	}}
	s := newTest(t, st, Options{})
	fn := echoFn(1)
	if err := s.StartError("echo"); err != nil {
		t.Fatalf("StartError before any start: got %v, want nil", err)
	}
	if _, err := s.Acquire(context.Background(), fn); !errors.Is(err, boom) {
		t.Fatalf("Acquire: got %v, want the start's error", err)
	}
	if err := s.StartError("echo"); !errors.Is(err, boom) {
		t.Errorf("StartError after a failed start: got %v, want %v", err, boom)
	}
	l, err := s.Acquire(context.Background(), fn)
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	if err := s.StartError("echo"); err != nil {
		t.Errorf("StartError after a successful start: got %v, want nil", err)
	}
}
