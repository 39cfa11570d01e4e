package async

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fcd-dev/fcd/api"
)

// fakeClock is a Clock that moves only when a test advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	// armed receives the deadline of every timer set.
	armed chan time.Time
}

type fakeTimer struct {
	c    *fakeClock
	at   time.Time
	f    func()
	done bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Unix(1_700_000_000, 0), armed: make(chan time.Time, 1000)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Stopper {
	c.mu.Lock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	if d <= 0 {
		t.done = true
		c.mu.Unlock()
		go f()
		return t
	}
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	c.armed <- t.at
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.done
	t.done = true
	return was
}

// Advance moves the clock by d and fires the timers that came due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var fire []func()
	keep := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.done:
		case !t.at.After(c.now):
			t.done = true
			fire = append(fire, t.f)
		default:
			keep = append(keep, t)
		}
	}
	c.timers = keep
	c.mu.Unlock()
	for _, f := range fire {
		go f()
	}
}

// fakeDispatcher hands every attempt to the test, which decides whether
// it begins and what comes of it.
type fakeDispatcher struct{ calls chan *call }

type call struct {
	ctx   context.Context
	ev    *Event
	begin func(string) error
	reply chan Result
}

func newFakeDispatcher() *fakeDispatcher { return &fakeDispatcher{calls: make(chan *call, 100)} }

func (d *fakeDispatcher) Dispatch(ctx context.Context, ev *Event, begin func(string) error) Result {
	c := &call{ctx: ctx, ev: ev, begin: begin, reply: make(chan Result, 1)}
	d.calls <- c
	select {
	case r := <-c.reply:
		return r
	case <-ctx.Done():
		return Result{Outcome: FunctionError, Error: context.Cause(ctx).Error()}
	}
}

func (d *fakeDispatcher) next(t *testing.T) *call {
	t.Helper()
	select {
	case c := <-d.calls:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no attempt was dispatched")
		return nil
	}
}

// harness is a queue on a bbolt file with a fake clock and dispatcher,
// and a feed of every committed transition.
type harness struct {
	t      *testing.T
	path   string
	db     *bolt.DB
	q      *Queue
	clock  *fakeClock
	d      *fakeDispatcher
	events chan Event
	seen   []Event // received, not yet waited for
	stop   context.CancelFunc
	done   chan error
	opts   Options
}

func newHarness(t *testing.T, opts Options) *harness {
	h := &harness{t: t, path: filepath.Join(t.TempDir(), "fcd.db"), clock: newFakeClock(), d: newFakeDispatcher(), opts: opts}
	h.open()
	t.Cleanup(h.close)
	return h
}

func (h *harness) open() {
	h.t.Helper()
	db, err := bolt.Open(h.path, 0o600, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	h.db = db
	h.events = make(chan Event, 1000)
	h.seen = nil
	opts := h.opts
	opts.Clock = h.clock
	opts.observe = func(ev Event) { h.events <- ev }
	if h.q, err = Open(db, opts); err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.stop, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.q.Run(ctx, h.d) }()
}

// close stops the queue as a crash would leave it on disk: attempts in
// flight stay Running.
func (h *harness) close() {
	if h.db == nil {
		return
	}
	h.stop()
	if err := <-h.done; err != nil {
		h.t.Error(err)
	}
	h.d = newFakeDispatcher()
	h.db.Close()
	h.db = nil
}

// reopen simulates a restart of fcd on the same file.
func (h *harness) reopen() {
	h.close()
	h.open()
}

// wait returns the first transition of id to state not yet waited for,
// keeping the others for later waits.
func (h *harness) wait(id, state string) Event {
	h.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		for i, ev := range h.seen {
			if ev.ID == id && ev.State == state {
				h.seen = append(h.seen[:i], h.seen[i+1:]...)
				return ev
			}
		}
		select {
		case ev := <-h.events:
			h.seen = append(h.seen, ev)
		case <-timeout:
			h.t.Fatalf("event %s never became %s", id, state)
		}
	}
}

func (h *harness) setConfig(fn string, in api.AsyncConfigInput) {
	h.t.Helper()
	_, err := h.q.PutConfig(context.Background(), fn, func(prev *api.AsyncConfig) (api.AsyncConfig, error) {
		return in.AsyncConfig("acs:fc:local:0:functions/"+fn, prev, h.clock.Now())
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) enqueue(fn, id string) {
	h.t.Helper()
	if err := h.q.Enqueue(context.Background(), Invocation{Function: fn, RequestID: "req-" + id, TaskID: id, Payload: []byte("event " + id)}); err != nil {
		h.t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }
