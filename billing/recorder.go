package billing

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Recorder meters invocations off the request path: Record queues a record
// and returns, and one goroutine writes whatever has queued in a single
// transaction, so the ledger keeps up with any request rate at one fsync
// per batch. Within a batch, the invocations of one function on one
// instance become one record (Count, summed Seconds and GB·s), so a busy
// function costs one ledger write per commit rather than one per request;
// a lone request keeps its own record with its request id. A full queue
// blocks Record rather than drop a record. Close writes everything queued
// before it returns.
//
// A crash loses the invocations gathered since the last commit, at most
// flushInterval's worth; a clean shutdown loses none.
type Recorder struct {
	l     *Ledger
	log   *slog.Logger
	queue chan InvocationRecord
	done  chan struct{}

	mu     sync.RWMutex // held shared by Record, exclusively by Close
	closed bool
}

// recorderQueue bounds the records waiting to be written.
const recorderQueue = 8192

// maxBatch bounds the records written in one transaction.
const maxBatch = 4096

// NewRecorder starts a Recorder writing to l. log receives write errors;
// nil means silence.
func NewRecorder(l *Ledger, log *slog.Logger) *Recorder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Recorder{l: l, log: log, queue: make(chan InvocationRecord, recorderQueue), done: make(chan struct{})}
	go r.run()
	return r
}

// Record queues an invocation record. A record that arrives after Close
// (a request that outlived fcd's shutdown) is logged, not written.
func (r *Recorder) Record(in InvocationRecord) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		r.log.Error("billing: invocation after shutdown not recorded", "function", in.Function, "requestId", in.RequestID)
		return
	}
	r.queue <- in
}

// Close writes every queued record and stops the Recorder. It is
// idempotent.
func (r *Recorder) Close() {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.queue)
	}
	r.mu.Unlock()
	<-r.done
}

// flushInterval is how long the Recorder gathers invocations before it
// commits them: a commit (and its fsync) per interval, not per request.
const flushInterval = 200 * time.Millisecond

func (r *Recorder) run() {
	defer close(r.done)
	batch := make([]InvocationRecord, 0, maxBatch)
	timer := time.NewTimer(flushInterval)
	defer timer.Stop()
	for in := range r.queue {
		batch = append(batch[:0], in)
		timer.Reset(flushInterval)
	fill:
		for len(batch) < maxBatch {
			select {
			case in, ok := <-r.queue:
				if !ok {
					break fill
				}
				batch = append(batch, in)
			case <-timer.C:
				break fill
			}
		}
		records := aggregate(batch)
		if err := r.l.appendAll(records); err != nil {
			r.log.Error("billing: invocation records lost", "invocations", len(batch), "records", len(records), "error", err)
		}
	}
}

// aggregate folds the invocations of one function on one instance into
// one record, keeping batch order by first appearance.
func aggregate(batch []InvocationRecord) []Record {
	type key struct{ function, instance string }
	at := map[key]int{}
	var out []Record
	for _, in := range batch {
		k := key{in.Function, in.InstanceID}
		i, ok := at[k]
		if !ok {
			at[k] = len(out)
			out = append(out, invocation(in))
			continue
		}
		r := &out[i]
		if r.Count == 0 {
			r.Count, r.Seconds, r.RequestID = 1, r.End.Sub(r.Start).Seconds(), ""
		}
		r.Count++
		r.Seconds += in.End.Sub(in.Start).Seconds()
		if in.Start.Before(r.Start) {
			r.Start = in.Start
		}
		if in.End.After(r.End) {
			r.End = in.End
		}
		r.MemoryMB = max(r.MemoryMB, in.MemoryMB)
	}
	return out
}

func invocation(in InvocationRecord) Record {
	return Record{
		Kind:       KindInvocation,
		Function:   in.Function,
		RequestID:  in.RequestID,
		InstanceID: in.InstanceID,
		Start:      in.Start,
		End:        in.End,
		MemoryMB:   in.MemoryMB,
	}
}

// appendAll writes records in one transaction; invalid ones are skipped
// and reported.
func (l *Ledger) appendAll(records []Record) error {
	var invalid []error
	err := l.db.Update(func(tx *bolt.Tx) error {
		for i := range records {
			if err := price(&records[i]); err != nil {
				invalid = append(invalid, err)
				continue
			}
			if err := put(tx, &records[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("billing: append %d records: %w", len(records), err)
	}
	if len(invalid) > 0 {
		return fmt.Errorf("billing: %d invalid records skipped, first: %w", len(invalid), invalid[0])
	}
	return nil
}
