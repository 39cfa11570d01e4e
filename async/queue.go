package async

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fcd-dev/fcd/api"
)

// Options configures a Queue. The zero value of each field is its default.
type Options struct {
	// Workers caps the events running at once, host-wide. Zero means 16.
	Workers int
	// PerFunction caps the events of one function running at once. Zero
	// means 4.
	PerFunction int
	// Policy sets the back-off between tries.
	Policy Policy
	// Clock is the queue's time. Nil means the system clock.
	Clock Clock
	// Retention is how long finished events stay readable (GetAsyncTask,
	// ListAsyncTasks) before they are deleted. Zero means 7 days.
	Retention time.Duration
	// FunctionARN names a function in the records sent to destinations.
	// Nil means the bare name.
	FunctionARN func(name string) string
	// Logger receives transitions that went wrong. Nil means silent.
	Logger *slog.Logger
	// observe, when set, sees every committed transition; tests wait on it.
	observe func(Event)
}

// Queue is the durable queue of asynchronous invocations. Create it with
// Open, run it with Run. Enqueue and the task and config methods are safe
// for concurrent use from the moment Open returns.
type Queue struct {
	db    *bolt.DB
	opts  Options
	clock Clock
	log   *slog.Logger
	d     Dispatcher

	ops     chan *op
	closed  chan struct{} // closed when Run's committer ended
	stopped atomic.Bool

	// mu guards the scheduling state below; see worker.go.
	mu      sync.Mutex
	live    map[string]time.Time // creation time of every pending event, by key
	runCtx  context.Context      // Run's; nil before Run and after it ends
	wg      sync.WaitGroup       // attempts in flight
	due     dueHeap
	blocked map[string][]item // due, but their function is at PerFunction
	perFn   map[string]int
	running map[string]context.CancelCauseFunc // by event key
	nrun    int
	timer   Stopper
	timerAt time.Time

	stats stats
	swept time.Time // last sweep; the committer's
}

// Open opens the queue's buckets in db (migrating them), recovers what a
// crash left (see the package comment) and loads the pending events.
// Nothing runs before Run.
func Open(db *bolt.DB, opts Options) (*Queue, error) {
	if opts.Workers <= 0 {
		opts.Workers = 16
	}
	if opts.PerFunction <= 0 {
		opts.PerFunction = 4
	}
	opts.Policy = opts.Policy.withDefaults()
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.Retention <= 0 {
		opts.Retention = 7 * 24 * time.Hour
	}
	if opts.FunctionARN == nil {
		opts.FunctionARN = func(name string) string { return name }
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := schema.Migrate(db, schema.Latest()); err != nil {
		return nil, fmt.Errorf("migrate async queue: %w", err)
	}
	q := &Queue{
		db: db, opts: opts, clock: opts.Clock, log: log,
		ops:     make(chan *op),
		closed:  make(chan struct{}),
		blocked: map[string][]item{},
		perFn:   map[string]int{},
		running: map[string]context.CancelCauseFunc{},
		live:    map[string]time.Time{},
	}
	if err := q.recover(); err != nil {
		return nil, err
	}
	return q, nil
}

// recover ends the attempts a crash cut short and loads every pending
// event into the schedule.
func (q *Queue) recover() error {
	now := q.clock.Now()
	var keys [][]byte
	q.db.View(func(tx *bolt.Tx) error {
		return bucket(tx, bucketPending).ForEach(func(k, _ []byte) error {
			keys = append(keys, append([]byte(nil), k...))
			return nil
		})
	})
	var items []item
	o := &op{done: make(chan struct{}), fn: func(tx *bolt.Tx, ch *change) error {
		items = items[:0]
		events := bucket(tx, bucketEvents)
		for _, k := range keys {
			ev, err := getEvent(events, k)
			if err != nil {
				return err
			}
			switch ev.State {
			case api.TaskRunning:
				ev.Interrupted++
				ev.Error = fmt.Sprintf("attempt %d was cut short: fcd restarted while it ran", ev.Attempts)
				if err := q.failed(tx, ch, ev, now); err != nil {
					return err
				}
			case api.TaskStopping:
				if err := q.finish(tx, ch, ev, api.TaskStopped, now, "stopped while fcd restarted"); err != nil {
					return err
				}
			default:
				ch.live = append(ch.live, ev)
			}
			if !ev.Done() {
				items = append(items, item{key: string(k), fn: ev.Function, at: ev.Due})
			}
		}
		return nil
	}}
	q.runBatch([]*op{o})
	if o.err != nil {
		return fmt.Errorf("recover async events: %w", o.err)
	}
	q.committed(&o.ch)
	q.mu.Lock()
	for _, it := range items {
		q.due.push(it)
	}
	q.mu.Unlock()
	return nil
}

// Invocation is one asynchronous invocation to enqueue.
type Invocation struct {
	Function string
	// Qualifier is the version id or alias the invocation runs; "" or
	// LATEST means the function's current configuration. The queue
	// stores it as given: the caller checks that it exists.
	Qualifier string
	RequestID string
	// TaskID is the caller's x-fc-async-task-id; empty means none, and
	// the event's id is RequestID.
	TaskID  string
	Payload []byte
}

// Enqueue commits inv as a new event and schedules it. It returns once
// the event is on disk, or with an error, in which case it was not
// accepted: ErrTaskExists, ErrClosed, or the database's.
func (q *Queue) Enqueue(ctx context.Context, inv Invocation) error {
	if q.stopped.Load() {
		return ErrClosed
	}
	now := q.clock.Now()
	ev := &Event{
		Function: inv.Function, ID: inv.TaskID, RequestID: inv.RequestID,
		Qualifier: inv.Qualifier,
		Task:      inv.TaskID != "", Payload: inv.Payload,
		Created: now, Due: now,
	}
	if ev.ID == "" {
		ev.ID = inv.RequestID
	}
	if ev.Qualifier == api.QualifierLatest {
		ev.Qualifier = ""
	}
	if len(ev.Payload) == 0 {
		ev.Payload = nil
	}
	ev.step(api.TaskEnqueued, now, "")
	err := q.update(func(tx *bolt.Tx, ch *change) error {
		if bucket(tx, bucketEvents).Get(eventKey(ev.Function, ev.ID)) != nil {
			return fmt.Errorf("task %s of %s: %w", ev.ID, ev.Function, ErrTaskExists)
		}
		if !ev.Task {
			if cfg, err := getConfig(bucket(tx, bucketConfigs), ev.Function); err == nil && cfg.AsyncTask {
				ev.Task = true
			}
		}
		return ch.put(tx, ev)
	})
	if err != nil {
		return err
	}
	q.stats.enqueued.Add(1)
	q.schedule(item{key: string(eventKey(ev.Function, ev.ID)), fn: ev.Function, at: ev.Due})
	return nil
}

// save writes ev and keeps the pending index in step with its state.
func saveEvent(tx *bolt.Tx, ev *Event) error {
	key := eventKey(ev.Function, ev.ID)
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	if err := bucket(tx, bucketEvents).Put(key, data); err != nil {
		return err
	}
	pending := bucket(tx, bucketPending)
	if ev.Done() {
		return pending.Delete(key)
	}
	return pending.Put(key, nil)
}

func getEvent(b *bolt.Bucket, key []byte) (*Event, error) {
	data := b.Get(key)
	if data == nil {
		return nil, fmt.Errorf("event %s: %w", key, ErrTaskNotFound)
	}
	ev := &Event{}
	if err := json.Unmarshal(data, ev); err != nil {
		return nil, fmt.Errorf("event %s: %w", key, err)
	}
	return ev, nil
}

func (q *Queue) observe(ev Event) {
	if q.opts.observe != nil {
		q.opts.observe(ev)
	}
}

// Get returns the task id of function.
func (q *Queue) Get(ctx context.Context, function, id string) (*Event, error) {
	var ev *Event
	err := q.db.View(func(tx *bolt.Tx) error {
		var err error
		ev, err = getEvent(bucket(tx, bucketEvents), eventKey(function, id))
		if err == nil && !ev.Task {
			err = ErrTaskNotFound
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("async task %s of %s: %w", id, function, err)
	}
	return ev, nil
}

// Stop stops task id of function: at once when it waits, by aborting its
// attempt when it runs (then it is Stopping until the attempt ends).
func (q *Queue) Stop(ctx context.Context, function, id string) error {
	now := q.clock.Now()
	key := eventKey(function, id)
	err := q.update(func(tx *bolt.Tx, ch *change) error {
		ev, err := getEvent(bucket(tx, bucketEvents), key)
		switch {
		case err != nil:
			return err
		case !ev.Task:
			return ErrTaskNotFound
		case ev.Done():
			return fmt.Errorf("%w: it is %s", ErrTaskFinished, ev.State)
		case ev.State == api.TaskStopping:
			return nil
		case ev.State == api.TaskRunning:
			ev.step(api.TaskStopping, now, "StopAsyncTask")
			return ch.put(tx, ev)
		default:
			return q.finish(tx, ch, ev, api.TaskStopped, now, "StopAsyncTask")
		}
	})
	if err != nil {
		return fmt.Errorf("stop async task %s of %s: %w", id, function, err)
	}
	q.mu.Lock()
	if cancel := q.running[string(key)]; cancel != nil {
		cancel(errStopped)
	}
	q.mu.Unlock()
	return nil
}

// errStopped is the cause of an attempt aborted by Stop.
var errStopped = errors.New("stopped by StopAsyncTask")
