package async

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fcd-dev/fcd/api"
)

// change collects the events a transaction saved, so that once it commits
// they are observed, counted and scheduled; a transaction that rolls back
// leaves nothing behind.
type change struct {
	saved   []*Event
	spawned []*Event // new events (destinations), to schedule
	live    []*Event // pending events merely loaded (recovery)
	counts  struct{ succeeded, failed, expired, stopped, retries, throttled uint64 }
}

func (ch *change) put(tx *bolt.Tx, ev *Event) error {
	if err := saveEvent(tx, ev); err != nil {
		return err
	}
	ch.saved = append(ch.saved, ev)
	return nil
}

// update runs fn in a write transaction and, once it committed, applies
// what it changed to the in-memory schedule. While Run's committer runs,
// concurrent updates share transactions (see commit.go); before Run it
// waits for Run, after Run it runs alone. fn must return its error before
// it writes, or its writes are rolled back with it.
func (q *Queue) update(fn func(tx *bolt.Tx, ch *change) error) error {
	o := &op{fn: fn, done: make(chan struct{})}
	select {
	case q.ops <- o:
		<-o.done
	case <-q.closed:
		q.runBatch([]*op{o})
	}
	if o.err != nil {
		return o.err
	}
	q.committed(&o.ch)
	for _, ev := range o.ch.spawned {
		q.schedule(item{key: string(eventKey(ev.Function, ev.ID)), fn: ev.Function, at: ev.Due})
	}
	return nil
}

func (q *Queue) committed(ch *change) {
	c := &ch.counts
	q.stats.succeeded.Add(c.succeeded)
	q.stats.failed.Add(c.failed)
	q.stats.expired.Add(c.expired)
	q.stats.stopped.Add(c.stopped)
	q.stats.retries.Add(c.retries)
	q.stats.throttled.Add(c.throttled)
	q.mu.Lock()
	for _, ev := range append(ch.saved, ch.live...) {
		key := string(eventKey(ev.Function, ev.ID))
		if ev.Done() {
			delete(q.live, key)
		} else {
			q.live[key] = ev.Created
		}
	}
	q.mu.Unlock()
	for _, ev := range ch.saved {
		q.observe(*ev)
	}
}

// config returns function's async config, or the defaults.
func (q *Queue) config(tx *bolt.Tx, function string) api.AsyncConfig {
	c, err := getConfig(bucket(tx, bucketConfigs), function)
	if err != nil {
		return api.DefaultAsyncConfig()
	}
	return c
}

// failed records a failed attempt (ev.Attempts counts it, ev.Error says
// why): the event is retried after back-off while attempts remain, else
// it fails.
func (q *Queue) failed(tx *bolt.Tx, ch *change, ev *Event, now time.Time) error {
	cfg := q.config(tx, ev.Function)
	if int64(ev.Attempts) > cfg.MaxAsyncRetryAttempts {
		ch.counts.failed++
		return q.finish(tx, ch, ev, api.TaskFailed, now, fmt.Sprintf("attempt %d of %d failed: %s", ev.Attempts, cfg.MaxAsyncRetryAttempts+1, ev.Error))
	}
	ch.counts.retries++
	ev.Due = now.Add(q.opts.Policy.retryAfter(ev.Attempts))
	ev.step(api.TaskRetrying, now, fmt.Sprintf("attempt %d failed: %s", ev.Attempts, ev.Error))
	return ch.put(tx, ev)
}

// finish puts ev in end state and sends its outcome to the destination
// the function's config names for it, in the same transaction.
func (q *Queue) finish(tx *bolt.Tx, ch *change, ev *Event, state string, now time.Time, detail string) error {
	ev.step(state, now, detail)
	if state == api.TaskStopped {
		ch.counts.stopped++
	}
	if dc := q.config(tx, ev.Function).DestinationConfig; dc != nil {
		d := dc.OnFailure
		if state == api.TaskSucceeded {
			d = dc.OnSuccess
		}
		if d != nil && state != api.TaskStopped {
			dest, err := q.destination(tx, ev, api.DestinationFunction(d.Destination), api.DestinationQualifier(d.Destination), now)
			if err != nil {
				return err
			}
			if dest != nil {
				ch.spawned = append(ch.spawned, dest)
				if err := ch.put(tx, dest); err != nil {
					return err
				}
			}
			ev.Destination = api.TaskSucceeded
		}
	}
	return ch.put(tx, ev)
}

// destinationRecord is what a destination function receives: FC's
// asynchronous invocation record.
type destinationRecord struct {
	Timestamp      int64 `json:"timestamp"`
	RequestContext struct {
		RequestID              string `json:"requestId"`
		FunctionArn            string `json:"functionArn"`
		Condition              string `json:"condition"`
		ApproximateInvokeCount int    `json:"approximateInvokeCount"`
	} `json:"requestContext"`
	RequestPayload  string `json:"requestPayload"`
	ResponseContext struct {
		StatusCode    int    `json:"statusCode"`
		FunctionError string `json:"functionError"`
	} `json:"responseContext"`
	ResponsePayload string `json:"responsePayload"`
}

// destination builds the event that carries ev's outcome to function (its
// qualifier, "" for LATEST), nil when it was made already.
func (q *Queue) destination(tx *bolt.Tx, ev *Event, function, qualifier string, now time.Time) (*Event, error) {
	var rec destinationRecord
	rec.Timestamp = now.UnixMilli()
	rec.RequestContext.RequestID = ev.RequestID
	rec.RequestContext.FunctionArn = q.opts.FunctionARN(ev.Function)
	rec.RequestContext.Condition = ev.State
	rec.RequestContext.ApproximateInvokeCount = ev.Attempts
	rec.RequestPayload = string(ev.Payload)
	rec.ResponseContext.StatusCode = 200
	if ev.State != api.TaskSucceeded {
		rec.ResponseContext.FunctionError = ev.Error
		if ev.Error == "" {
			rec.ResponseContext.FunctionError = ev.State
		}
	}
	rec.ResponsePayload = string(ev.Result)
	payload, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	id := "dest-" + ev.Function + "-" + ev.ID
	if bucket(tx, bucketEvents).Get(eventKey(function, id)) != nil {
		return nil, nil
	}
	if qualifier == api.QualifierLatest {
		qualifier = ""
	}
	d := &Event{Function: function, Qualifier: qualifier, ID: id, RequestID: id, Payload: payload, Created: now, Due: now}
	d.Task = q.config(tx, function).AsyncTask
	d.step(api.TaskEnqueued, now, "destination of "+ev.Function+"/"+ev.ID)
	return d, nil
}
