package scheduler

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestStress mixes requests, failures, crashes, updates, provisioning and
// removals over three functions sharing a tight memory budget, then
// checks the invariants after Close: every instance stopped exactly once
// (fakeInstance panics otherwise), no memory held, no request left
// hanging. The work is bounded in count.
func TestStress(t *testing.T) {
	st := &fakeStarter{fail: func(attempt int) error {
		if attempt%7 == 0 {
			return errors.New("flaky start")
		}
		return nil
	}}
	s := New(st, Options{
		IdleTimeout:    5 * time.Millisecond,
		MemoryBudgetMB: 1024,
		MaxQueue:       50,
		QueueTimeout:   time.Second,
		ProvisionRetry: time.Millisecond,
	})
	fns := make([]Function, 3)
	for i := range fns {
		fns[i] = Function{Name: fmt.Sprintf("f%d", i), Revision: "0", MemoryMB: 128 << i, Concurrency: 1 + 2*i, MaxInstances: 4}
	}
	var mu sync.Mutex // guards fns
	fn := func(i int) Function { mu.Lock(); defer mu.Unlock(); return fns[i] }

	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range 150 {
				if m := s.MemoryUsedMB(); m > 1024 {
					t.Errorf("memory used %d MB, over the 1024 MB budget", m)
				}
				f := fn(r.IntN(len(fns)))
				switch op := r.IntN(20); {
				case op == 0 && w == 0:
					mu.Lock()
					fns[i%3].Revision = fmt.Sprint(i)
					f = fns[i%3]
					mu.Unlock()
					s.Update(f)
				case op == 1 && w == 1:
					s.SetProvisioned(f, r.IntN(3))
				case op == 2 && w == 2:
					s.Remove(f.Name)
				default:
					ctx, cancel := context.WithTimeout(context.Background(), time.Duration(r.IntN(20))*time.Millisecond)
					l, err := s.Acquire(ctx, f)
					cancel()
					if err != nil {
						continue
					}
					switch r.IntN(10) {
					case 0:
						l.Fail(errors.New("broken"))
					case 1:
						l.Instance().(*fakeInstance).kill()
						l.Release()
					default:
						l.Release()
					}
				}
			}
		}()
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, in := range st.started() {
		if !in.stopped.Load() {
			t.Errorf("instance %s not stopped", in.ID())
		}
	}
	if got := s.MemoryUsedMB(); got != 0 {
		t.Errorf("memory held after Close: got %d MB, want 0", got)
	}
	t.Logf("%d start attempts, %d instances", st.attempted(), len(st.started()))
}
