package lazyfs

import "sync"

// tasks counts a layer's background work (materialization, prefetch).
// Unlike a sync.WaitGroup, it may be waited for while tasks are added:
// FUSE reads start materializations at any time, and the order between a
// read's reply and a waiter goes through the kernel, where the race
// detector cannot see it.
type tasks struct {
	mu   sync.Mutex
	n    int
	idle *sync.Cond
}

// goFn runs f in a goroutine, counted until it returns.
func (ts *tasks) goFn(f func()) {
	ts.mu.Lock()
	ts.n++
	ts.mu.Unlock()
	go func() {
		defer ts.done()
		f()
	}()
}

func (ts *tasks) done() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.n--; ts.n == 0 && ts.idle != nil {
		ts.idle.Broadcast()
	}
}

// wait returns once no task runs.
func (ts *tasks) wait() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.idle == nil {
		ts.idle = sync.NewCond(&ts.mu)
	}
	for ts.n > 0 {
		ts.idle.Wait()
	}
}
