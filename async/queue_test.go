package async

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fcd-dev/fcd/api"
)

// step is what the fake dispatcher does with one attempt.
type step int

const (
	ok       step = iota // begins, succeeds
	fnErr                // begins, the function fails
	noStart              // the instance does not start: no begin, a function error
	throttle             // no capacity: no begin
)

func TestRetryPolicy(t *testing.T) {
	tests := []struct {
		name         string
		retries      *int64
		steps        []step
		wantState    string
		wantAttempts int
		wantRetries  uint64
	}{
		{"first try", nil, []step{ok}, api.TaskSucceeded, 1, 0},
		{"second try", nil, []step{fnErr, ok}, api.TaskSucceeded, 2, 1},
		{"default 3 retries used up", nil, []step{fnErr, fnErr, fnErr, fnErr}, api.TaskFailed, 4, 3},
		{"no retries", ptr[int64](0), []step{fnErr}, api.TaskFailed, 1, 0},
		{"eight retries", ptr[int64](8), []step{fnErr, fnErr, fnErr, fnErr, fnErr, fnErr, fnErr, fnErr, fnErr}, api.TaskFailed, 9, 8},
		{"start failure counts", ptr[int64](1), []step{noStart, noStart}, api.TaskFailed, 2, 1},
		{"throttling uses no attempt", ptr[int64](0), []step{throttle, throttle, throttle, ok}, api.TaskSucceeded, 1, 0},
		{"throttled between failures", ptr[int64](1), []step{fnErr, throttle, fnErr}, api.TaskFailed, 2, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Options{})
			h.setConfig("f", api.AsyncConfigInput{MaxAsyncRetryAttempts: tc.retries, AsyncTask: ptr(true)})
			h.enqueue("f", "t1")
			var waits []time.Duration
			last := h.clock.Now()
			for i, s := range tc.steps {
				c := h.d.next(t)
				waits = append(waits, h.clock.Now().Sub(last))
				last = h.clock.Now()
				if c.ev.RequestID != "req-t1" {
					t.Fatalf("attempt %d: request id %q, want req-t1", i+1, c.ev.RequestID)
				}
				switch s {
				case ok, fnErr:
					if err := c.begin("i1"); err != nil {
						t.Fatal(err)
					}
				}
				switch s {
				case ok:
					c.reply <- Result{Outcome: Succeeded, Payload: []byte("done")}
				case fnErr, noStart:
					c.reply <- Result{Outcome: FunctionError, Error: fmt.Sprintf("failure %d", i+1)}
				case throttle:
					c.reply <- Result{Outcome: Throttled, Error: "no capacity"}
				}
				if i < len(tc.steps)-1 {
					// Step the clock until the next attempt is due.
					h.advanceToTimer(t)
				}
			}
			ev := h.wait("t1", tc.wantState)
			if ev.Attempts != tc.wantAttempts {
				t.Errorf("got %d attempts, want %d", ev.Attempts, tc.wantAttempts)
			}
			if got := h.q.Stats().Retries; got != tc.wantRetries {
				t.Errorf("got %d retries, want %d", got, tc.wantRetries)
			}
			if st := h.q.Stats(); st.Depth != 0 {
				t.Errorf("got depth %d after the end, want 0", st.Depth)
			}
			// Back-off: function errors wait 1 s, 2 s, 4 s...; throttling
			// 0.5 s, 1 s, 2 s...
			fails, throttles := 0, 0
			for i := 1; i < len(tc.steps); i++ {
				var want time.Duration
				switch tc.steps[i-1] {
				case throttle:
					throttles++
					want = backoff(500*time.Millisecond, time.Minute, throttles)
				default:
					throttles = 0
					fails++
					want = backoff(time.Second, 5*time.Minute, fails)
				}
				if waits[i] != want {
					t.Errorf("attempt %d came %s after the one before, want %s", i+1, waits[i], want)
				}
			}
		})
	}
}

// advanceToTimer waits for the queue to arm its timer and moves the fake
// clock to its deadline.
func (h *harness) advanceToTimer(t *testing.T) {
	t.Helper()
	select {
	case at := <-h.clock.armed:
		h.clock.Advance(at.Sub(h.clock.Now()))
	case <-time.After(10 * time.Second):
		t.Fatal("the queue armed no timer")
	}
}

func TestDuplicateTaskID(t *testing.T) {
	h := newHarness(t, Options{})
	h.enqueue("f", "t1")
	err := h.q.Enqueue(context.Background(), Invocation{Function: "f", RequestID: "req-2", TaskID: "t1"})
	if !errors.Is(err, ErrTaskExists) {
		t.Fatalf("got %v, want ErrTaskExists", err)
	}
	// The same id under another function is another task.
	h.enqueue("g", "t1")
	c := h.d.next(t)
	c.begin("i1")
	c.reply <- Result{Outcome: Succeeded}
	c = h.d.next(t)
	c.begin("i1")
	c.reply <- Result{Outcome: Succeeded}
	h.wait("t1", api.TaskSucceeded)
	h.wait("t1", api.TaskSucceeded)
	ev, err := h.q.Get(context.Background(), "f", "t1")
	if err != nil {
		t.Fatal(err)
	}
	if ev.RequestID != "req-t1" || ev.Attempts != 1 {
		t.Errorf("got request %s with %d attempts, want req-t1 with 1", ev.RequestID, ev.Attempts)
	}
}

func TestConcurrentEnqueueGroupCommit(t *testing.T) {
	h := newHarness(t, Options{Workers: 1, PerFunction: 1})
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- h.q.Enqueue(context.Background(), Invocation{Function: "f", RequestID: fmt.Sprintf("r%d", i), TaskID: fmt.Sprintf("t%d", i)})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	h.reopen()
	if got := h.q.Stats().Depth; got != n {
		t.Fatalf("got %d pending events after reopen, want %d", got, n)
	}
}

func TestFairShare(t *testing.T) {
	h := newHarness(t, Options{Workers: 3, PerFunction: 2})
	for i := range 4 {
		h.enqueue("f", fmt.Sprintf("f%d", i))
	}
	h.enqueue("g", "g0")
	var calls []*call
	for range 3 {
		calls = append(calls, h.d.next(t))
	}
	perFn := map[string]int{}
	for _, c := range calls {
		perFn[c.ev.Function]++
	}
	if perFn["f"] != 2 || perFn["g"] != 1 {
		t.Fatalf("got %v running, want f:2 g:1", perFn)
	}
	h.q.mu.Lock()
	blocked, nrun := len(h.q.blocked["f"])+h.q.due.Len(), h.q.nrun
	h.q.mu.Unlock()
	if blocked != 2 || nrun != 3 {
		t.Fatalf("got %d waiting and %d running, want 2 and 3", blocked, nrun)
	}
	for _, c := range calls {
		c.begin("i")
		c.reply <- Result{Outcome: Succeeded}
	}
	for range 2 {
		c := h.d.next(t)
		c.begin("i")
		c.reply <- Result{Outcome: Succeeded}
	}
	for i := range 4 {
		h.wait(fmt.Sprintf("f%d", i), api.TaskSucceeded)
	}
}

func TestStop(t *testing.T) {
	h := newHarness(t, Options{Workers: 1})
	h.enqueue("f", "running")
	h.enqueue("f", "waiting")
	c := h.d.next(t)
	if c.ev.ID != "running" {
		t.Fatalf("got %s first, want running", c.ev.ID)
	}
	c.begin("i1")
	ctx := context.Background()
	if err := h.q.Stop(ctx, "f", "waiting"); err != nil {
		t.Fatal(err)
	}
	h.wait("waiting", api.TaskStopped)
	if err := h.q.Stop(ctx, "f", "running"); err != nil {
		t.Fatal(err)
	}
	h.wait("running", api.TaskStopping)
	<-c.ctx.Done() // the attempt is aborted
	ev := h.wait("running", api.TaskStopped)
	if ev.Attempts != 1 {
		t.Errorf("got %d attempts, want 1", ev.Attempts)
	}
	if err := h.q.Stop(ctx, "f", "running"); !errors.Is(err, ErrTaskFinished) {
		t.Errorf("stopping a stopped task: got %v, want ErrTaskFinished", err)
	}
	if err := h.q.Stop(ctx, "f", "nope"); !errors.Is(err, ErrTaskNotFound) {
		t.Errorf("stopping an unknown task: got %v, want ErrTaskNotFound", err)
	}
}

func TestExpiryAndDestinations(t *testing.T) {
	h := newHarness(t, Options{})
	h.setConfig("f", api.AsyncConfigInput{
		AsyncTask: ptr(true), MaxAsyncEventAgeInSeconds: ptr[int64](2),
		DestinationConfig: &api.DestinationConfig{
			OnSuccess: &api.Destination{Destination: "acs:fc:local:0:functions/ok"},
			OnFailure: &api.Destination{Destination: "acs:fc:local:0:functions/bad"},
		},
	})
	h.setConfig("bad", api.AsyncConfigInput{AsyncTask: ptr(true)})
	h.enqueue("f", "old")
	// Throttled at 0 s, 0.5 s and 1.5 s (back-off 0.5, 1, 2 s); due again
	// at 3.5 s, past the 2 s age.
	var c *call
	for i := range 3 {
		if i > 0 {
			h.advanceToTimer(t)
		}
		c = h.d.next(t)
		c.reply <- Result{Outcome: Throttled}
	}
	h.advanceToTimer(t)
	ev := h.wait("old", api.TaskExpired)
	if ev.Attempts != 0 || ev.Destination != api.TaskSucceeded {
		t.Errorf("expired event: got %d attempts, destination %q; want 0, Succeeded", ev.Attempts, ev.Destination)
	}
	// The failure reached function bad as a new event.
	c = h.d.next(t)
	if c.ev.Function != "bad" {
		t.Fatalf("got an attempt of %s, want the destination bad", c.ev.Function)
	}
	var rec destinationRecord
	if err := json.Unmarshal(c.ev.Payload, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.RequestContext.RequestID != "req-old" || rec.RequestContext.Condition != api.TaskExpired || rec.RequestPayload != "event old" {
		t.Errorf("destination record %+v", rec)
	}
	c.begin("i2")
	c.reply <- Result{Outcome: Succeeded}
	h.wait(c.ev.ID, api.TaskSucceeded)
}

// TestCrashRecovery stops the queue mid-transition as kill -9 would leave
// the file (the last committed state), reopens it and checks the event
// goes on from there.
func TestCrashRecovery(t *testing.T) {
	tests := []struct {
		name    string
		retries int64
		// crash runs the event up to the crash; the queue is then closed.
		crash        func(t *testing.T, h *harness)
		wantAfter    string // state on reopen
		wantAttempts int
		wantRuns     int // further attempts after reopen before the end
		wantEnd      string
	}{
		{"enqueued, never dispatched", 3, func(t *testing.T, h *harness) {}, api.TaskEnqueued, 0, 1, api.TaskSucceeded},
		{"waiting for a slot", 3, func(t *testing.T, h *harness) { h.d.next(t) }, api.TaskEnqueued, 0, 1, api.TaskSucceeded},
		{"running", 3, func(t *testing.T, h *harness) { h.d.next(t).begin("i1") }, api.TaskRetrying, 1, 1, api.TaskSucceeded},
		{"running, last attempt", 0, func(t *testing.T, h *harness) { h.d.next(t).begin("i1") }, api.TaskFailed, 1, 0, api.TaskFailed},
		{"stopping", 3, func(t *testing.T, h *harness) {
			h.d.next(t).begin("i1")
			if err := h.q.Stop(context.Background(), "f", "t1"); err != nil {
				t.Fatal(err)
			}
			h.wait("t1", api.TaskStopping)
		}, api.TaskStopped, 1, 0, api.TaskStopped},
		{"retrying", 3, func(t *testing.T, h *harness) {
			c := h.d.next(t)
			c.begin("i1")
			c.reply <- Result{Outcome: FunctionError, Error: "boom"}
			h.wait("t1", api.TaskRetrying)
		}, api.TaskRetrying, 1, 1, api.TaskSucceeded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Options{})
			h.setConfig("f", api.AsyncConfigInput{MaxAsyncRetryAttempts: ptr(tc.retries), AsyncTask: ptr(true)})
			h.enqueue("f", "t1")
			tc.crash(t, h)
			h.reopen()
			ev, err := h.q.Get(context.Background(), "f", "t1")
			if err != nil {
				t.Fatal(err)
			}
			if ev.State != tc.wantAfter || ev.Attempts != tc.wantAttempts {
				t.Fatalf("after reopen: got %s with %d attempts, want %s with %d", ev.State, ev.Attempts, tc.wantAfter, tc.wantAttempts)
			}
			for range tc.wantRuns {
				if ev.State == api.TaskRetrying {
					h.advanceToTimer(t)
				}
				c := h.d.next(t)
				c.begin("i2")
				c.reply <- Result{Outcome: Succeeded}
			}
			if tc.wantRuns > 0 {
				h.wait("t1", tc.wantEnd)
			}
			ev, err = h.q.Get(context.Background(), "f", "t1")
			if err != nil {
				t.Fatal(err)
			}
			if ev.State != tc.wantEnd || ev.Attempts != tc.wantAttempts+tc.wantRuns {
				t.Errorf("at the end: got %s with %d attempts, want %s with %d", ev.State, ev.Attempts, tc.wantEnd, tc.wantAttempts+tc.wantRuns)
			}
			if got := h.q.Stats().Depth; got != 0 {
				t.Errorf("got depth %d at the end, want 0", got)
			}
		})
	}
}

func TestListTasks(t *testing.T) {
	h := newHarness(t, Options{Workers: 1, PerFunction: 1})
	for i := range 5 {
		h.enqueue("f", fmt.Sprintf("a%d", i))
		h.clock.Advance(time.Second)
	}
	h.enqueue("f", "b0")
	ctx := context.Background()
	var ids []string
	next := ""
	for {
		evs, tok, err := h.q.ListTasks(ctx, "f", Filter{Prefix: "a", Limit: 2, After: next, Descending: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			ids = append(ids, e.ID)
		}
		if next = tok; next == "" {
			break
		}
	}
	if got, want := fmt.Sprint(ids), "[a4 a3 a2 a1 a0]"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	evs, _, err := h.q.ListTasks(ctx, "f", Filter{Status: api.TaskEnqueued, StartedBegin: h.clock.Now().Add(-1500 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Errorf("got %d enqueued tasks of the last 1.5 s, want 2 (a4, b0)", len(evs))
	}
}

// TestBatchIsolatesFailure runs three updates in one batch, the middle one
// failing after it wrote: its write is rolled back, the others commit.
func TestBatchIsolatesFailure(t *testing.T) {
	h := newHarness(t, Options{})
	write := func(id string, fail bool) *op {
		return &op{done: make(chan struct{}), fn: func(tx *bolt.Tx, ch *change) error {
			if err := ch.put(tx, &Event{Function: "f", ID: id, State: api.TaskEnqueued}); err != nil {
				return err
			}
			if fail {
				return errors.New("boom")
			}
			return nil
		}}
	}
	ops := []*op{write("a", false), write("b", true), write("c", false)}
	h.q.runBatch(append([]*op(nil), ops...))
	for i, want := range []bool{false, true, false} {
		<-ops[i].done
		if (ops[i].err != nil) != want {
			t.Errorf("op %d: got error %v, want error %v", i, ops[i].err, want)
		}
	}
	h.db.View(func(tx *bolt.Tx) error {
		for id, want := range map[string]bool{"a": true, "b": false, "c": true} {
			if got := bucket(tx, bucketEvents).Get(eventKey("f", id)) != nil; got != want {
				t.Errorf("event %s stored: got %v, want %v", id, got, want)
			}
		}
		return nil
	})
}

func TestRetention(t *testing.T) {
	h := newHarness(t, Options{Retention: 24 * time.Hour})
	h.enqueue("f", "old")
	h.enqueue("f", "waiting")
	c := h.d.next(t)
	c.begin("i")
	c.reply <- Result{Outcome: Succeeded}
	h.wait("old", api.TaskSucceeded)
	h.clock.Advance(25 * time.Hour)
	if n, err := h.q.sweep(); err != nil || n != 1 {
		t.Fatalf("sweep: got %d deleted, %v; want 1", n, err)
	}
	ctx := context.Background()
	if _, err := h.q.Get(ctx, "f", "old"); !errors.Is(err, ErrTaskNotFound) {
		t.Errorf("a task finished 25 h ago: got %v, want ErrTaskNotFound", err)
	}
	// The second event waits behind the fake dispatcher: never swept.
	if _, err := h.q.Get(ctx, "f", "waiting"); err != nil {
		t.Errorf("a pending task: %v", err)
	}
}

// TestConcurrentDuplicates enqueues one task id from many goroutines at
// once, so that they share commits: exactly one is accepted.
func TestConcurrentDuplicates(t *testing.T) {
	h := newHarness(t, Options{})
	const n = 50
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted, refused := 0, 0
	for i := range n {
		wg.Go(func() {
			err := h.q.Enqueue(context.Background(), Invocation{Function: "f", RequestID: fmt.Sprintf("r%d", i), TaskID: "same"})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				accepted++
			case errors.Is(err, ErrTaskExists):
				refused++
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if accepted != 1 || refused != n-1 {
		t.Errorf("got %d accepted and %d refused, want 1 and %d", accepted, refused, n-1)
	}
}

// TestQualifier: an event keeps the qualifier it was enqueued with across
// a restart and hands it to every attempt; LATEST is stored as none, so a
// record written before qualifiers existed reads as LATEST.
func TestQualifier(t *testing.T) {
	h := newHarness(t, Options{})
	h.setConfig("f", api.AsyncConfigInput{AsyncTask: ptr(true)})
	for id, q := range map[string]string{"t1": "prod", "t2": "LATEST", "t3": ""} {
		err := h.q.Enqueue(context.Background(), Invocation{Function: "f", Qualifier: q, RequestID: "req-" + id, TaskID: id})
		if err != nil {
			t.Fatal(err)
		}
	}
	h.reopen()
	want := map[string]string{"t1": "prod", "t2": "", "t3": ""}
	for range want {
		c := h.d.next(t)
		if got := c.ev.Qualifier; got != want[c.ev.ID] {
			t.Errorf("attempt of %s: qualifier %q, want %q", c.ev.ID, got, want[c.ev.ID])
		}
		c.begin("i1")
		c.reply <- Result{Outcome: Succeeded}
	}
	for id, q := range map[string]string{"t1": "prod", "t2": "LATEST", "t3": "LATEST"} {
		ev := h.wait(id, api.TaskSucceeded)
		if got := ev.AsyncTask("arn", false).Qualifier; got != q {
			t.Errorf("GetAsyncTask %s: qualifier %q, want %q", id, got, q)
		}
	}

	// A record from before qualifiers (no "qualifier" key).
	legacy := `{"function":"f","id":"old","requestId":"r","task":true,"payload":null,"state":"Enqueued","attempts":0,"created":"2026-01-01T00:00:00Z","due":"2026-01-01T00:00:00Z","history":[]}`
	var ev Event
	if err := json.Unmarshal([]byte(legacy), &ev); err != nil {
		t.Fatal(err)
	}
	if got := ev.AsyncTask("arn", false).Qualifier; ev.Qualifier != "" || got != api.QualifierLatest {
		t.Errorf("legacy record: qualifier %q shown as %q, want none shown as LATEST", ev.Qualifier, got)
	}
	data, _ := json.Marshal(&Event{Function: "f"})
	if strings.Contains(string(data), "qualifier") {
		t.Errorf("a LATEST event is stored as %s: it must not carry a qualifier key", data)
	}
}
