package async

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fcd-dev/fcd/api"
)

// Dispatcher runs one attempt of an event. The proxy implements it on the
// same path as a synchronous invocation.
type Dispatcher interface {
	// Dispatch acquires a slot on an instance of ev.Function, then calls
	// begin with the instance's id just before it sends the event. begin
	// commits the attempt; when it fails (the event was stopped, the
	// queue is closing) Dispatch gives the slot back without sending and
	// returns. ctx ends when the attempt is stopped or fcd shuts down.
	Dispatch(ctx context.Context, ev *Event, begin func(instanceID string) error) Result
}

// Outcome is what came of an attempt.
type Outcome int

const (
	// Succeeded: the function answered without error.
	Succeeded Outcome = iota
	// FunctionError: the function failed (an error status, x-fc-status:
	// 404, a timeout, an instance that died) or its instance did not
	// start. It uses an attempt and is retried while attempts remain.
	FunctionError
	// Throttled: no capacity; nothing was sent. Retried with back-off,
	// using no attempt.
	Throttled
	// Gone: the function no longer exists. The event fails at once.
	Gone
)

// Result is the outcome of one attempt.
type Result struct {
	Outcome Outcome
	// Error describes a failed attempt.
	Error string
	// Payload is the function's response body, for the task and its
	// destination; it is kept up to MaxResult bytes.
	Payload []byte
}

// errShutdown is the cause of attempts aborted because Run ended; they
// stay as they are on disk, for the next Open.
var errShutdown = errors.New("async queue shutting down")

// item is a scheduled event: its key, function and due time.
type item struct {
	key, fn string
	at      time.Time
}

type dueHeap []item

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(item)) }
func (h *dueHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}
func (h *dueHeap) push(it item) { heap.Push(h, it) }

// Run runs the queue's committer, and attempts through d, until ctx ends, then aborts
// the attempts in flight (they stay Running on disk and count when the
// queue is next opened) and returns once every goroutine it started has.
// Run may be called once.
func (q *Queue) Run(parent context.Context, d Dispatcher) error {
	// Attempts must learn that they end for a shutdown, not for a stop:
	// their context ends only with errShutdown.
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(parent))
	cdone := make(chan struct{})
	go func() {
		defer close(cdone)
		q.committer(ctx)
	}()
	q.mu.Lock()
	q.d = d
	q.runCtx = ctx
	q.pump()
	q.mu.Unlock()

	<-parent.Done()
	q.stopped.Store(true)
	q.mu.Lock()
	q.runCtx = nil
	if q.timer != nil {
		q.timer.Stop()
		q.timer = nil
	}
	for _, c := range q.running {
		c(errShutdown)
	}
	q.mu.Unlock()
	cancel(errShutdown)
	<-cdone
	q.wg.Wait()
	return nil
}

// schedule adds it to the schedule and starts what is due.
func (q *Queue) schedule(it item) {
	q.mu.Lock()
	q.due.push(it)
	q.pump()
	q.mu.Unlock()
}

// pump starts the due events there is room for and sets the timer for
// the next one. q.mu is held.
func (q *Queue) pump() {
	if q.runCtx == nil {
		return
	}
	now := q.clock.Now()
	for q.due.Len() > 0 && !q.due[0].at.After(now) && q.nrun < q.opts.Workers {
		it := heap.Pop(&q.due).(item)
		if q.perFn[it.fn] >= q.opts.PerFunction {
			q.blocked[it.fn] = append(q.blocked[it.fn], it)
			continue
		}
		if _, dup := q.running[it.key]; dup {
			continue
		}
		q.start(it)
	}
	if q.due.Len() == 0 || q.nrun >= q.opts.Workers {
		return
	}
	next := q.due[0].at
	if q.timer != nil && !q.timerAt.After(next) {
		return
	}
	if q.timer != nil {
		q.timer.Stop()
	}
	q.timerAt = next
	q.timer = q.clock.AfterFunc(next.Sub(now), q.tick)
}

func (q *Queue) tick() {
	q.mu.Lock()
	q.timer = nil
	q.pump()
	q.mu.Unlock()
}

// start runs one attempt of it in its own goroutine. q.mu is held.
func (q *Queue) start(it item) {
	ctx, cancel := context.WithCancelCause(q.runCtx)
	q.running[it.key] = cancel
	q.nrun++
	q.perFn[it.fn]++
	q.wg.Add(1)
	go func() {
		defer q.wg.Done()
		next := q.attempt(ctx, it)
		cancel(nil)
		q.mu.Lock()
		defer q.mu.Unlock()
		delete(q.running, it.key)
		q.nrun--
		if q.perFn[it.fn]--; q.perFn[it.fn] == 0 {
			delete(q.perFn, it.fn)
		}
		for _, b := range q.blocked[it.fn] {
			q.due.push(b)
		}
		delete(q.blocked, it.fn)
		if next != nil {
			q.due.push(*next)
		}
		q.pump()
	}()
}

// attempt runs one attempt of the event it names and returns when it is
// next due, nil when it ended or the queue is stopping.
func (q *Queue) attempt(ctx context.Context, it item) *item {
	key := []byte(it.key)
	var ev *Event
	err := q.update(func(tx *bolt.Tx, ch *change) error {
		ev = nil
		cur, err := getEvent(bucket(tx, bucketEvents), key)
		if err != nil || cur.Done() || (cur.State != api.TaskEnqueued && cur.State != api.TaskRetrying) {
			return err
		}
		now := q.clock.Now()
		cfg := q.config(tx, cur.Function)
		if age := now.Sub(cur.Created); age > time.Duration(cfg.MaxAsyncEventAgeInSeconds)*time.Second {
			ch.counts.expired++
			return q.finish(tx, ch, cur, api.TaskExpired, now, fmt.Sprintf("the event is %s old, past maxAsyncEventAgeInSeconds (%d)", age.Truncate(time.Millisecond), cfg.MaxAsyncEventAgeInSeconds))
		}
		ev = cur
		return nil
	})
	if err != nil {
		q.log.Error("async event unreadable", "event", it.key, "error", err)
		return nil
	}
	if ev == nil {
		return nil
	}
	begun := false
	res := q.d.Dispatch(ctx, ev, func(instanceID string) error {
		return q.update(func(tx *bolt.Tx, ch *change) error {
			begun = false
			cur, err := getEvent(bucket(tx, bucketEvents), key)
			if err != nil {
				return err
			}
			if cur.State != api.TaskEnqueued && cur.State != api.TaskRetrying {
				return fmt.Errorf("event is %s: %w", cur.State, errStopped)
			}
			if err := context.Cause(ctx); err != nil {
				return err
			}
			now := q.clock.Now()
			cur.Attempts++
			cur.Throttles = 0
			cur.InstanceID = instanceID
			if cur.Started.IsZero() {
				cur.Started = now
			}
			cur.step(api.TaskRunning, now, fmt.Sprintf("attempt %d on instance %s", cur.Attempts, instanceID))
			begun = true
			return ch.put(tx, cur)
		})
	})
	if errors.Is(context.Cause(ctx), errShutdown) {
		return nil
	}
	var next *item
	err = q.update(func(tx *bolt.Tx, ch *change) error {
		next = nil
		cur, err := getEvent(bucket(tx, bucketEvents), key)
		if err != nil {
			return err
		}
		now := q.clock.Now()
		switch {
		case cur.Done():
			return nil
		case cur.State == api.TaskStopping:
			return q.finish(tx, ch, cur, api.TaskStopped, now, "the attempt was aborted by StopAsyncTask")
		case begun != (cur.State == api.TaskRunning):
			// begin failed, or the record moved on without this attempt.
			return nil
		}
		cur.Error = res.Error
		switch res.Outcome {
		case Succeeded:
			if len(res.Payload) > MaxResult {
				res.Payload = res.Payload[:MaxResult]
			}
			cur.Result, cur.Error = res.Payload, ""
			ch.counts.succeeded++
			err = q.finish(tx, ch, cur, api.TaskSucceeded, now, "")
		case Gone:
			err = q.finish(tx, ch, cur, api.TaskFailed, now, res.Error)
		case Throttled:
			if begun {
				// Capacity vanished after the event was sent: it may have
				// run, so it is a failed attempt.
				err = q.failed(tx, ch, cur, now)
				break
			}
			cur.Throttles++
			ch.counts.throttled++
			cur.Due = now.Add(q.opts.Policy.throttleAfter(cur.Throttles))
			err = ch.put(tx, cur)
		default:
			if !begun {
				// A start failure: the attempt happened, on no instance.
				cur.Attempts++
				cur.step(api.TaskRunning, now, fmt.Sprintf("attempt %d: the instance did not start", cur.Attempts))
			}
			err = q.failed(tx, ch, cur, now)
		}
		if err == nil && !cur.Done() {
			next = &item{key: it.key, fn: it.fn, at: cur.Due}
		}
		return err
	})
	if err != nil {
		q.log.Error("async event outcome not recorded", "event", it.key, "error", err)
		// Retried from disk: the record still says what it said.
		return &item{key: it.key, fn: it.fn, at: q.clock.Now().Add(q.opts.Policy.RetryBase)}
	}
	return next
}
