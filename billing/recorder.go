package billing

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Recorder meters invocations off the request path: Record appends a
// record to a pending batch under a lock and returns, waking nothing but
// for the first record of a batch, and one goroutine writes the batch in a
// single transaction flushInterval later, so the ledger keeps up with any
// request rate at one fsync per batch and a warm request costs no
// goroutine wake-up. Within a batch, the invocations of one function on
// one instance become one record (Count, summed Seconds and GB·s), so a
// busy function costs one ledger write per commit rather than one per
// request; a lone request keeps its own record with its request id. A
// full queue blocks Record rather than drop a record. Close writes
// everything queued before it returns.
//
// A crash loses the invocations gathered since the last commit, at most
// flushInterval's worth; a clean shutdown loses none.
type Recorder struct {
	l    *Ledger
	log  *slog.Logger
	kick chan struct{} // cap 1: a batch has started
	full chan struct{} // cap 1: a batch reached maxBatch
	stop chan struct{} // closed by Close
	done chan struct{}

	mu      sync.Mutex
	room    sync.Cond // signalled when the run loop takes the pending batch
	pending []InvocationRecord
	closed  bool
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
	r := &Recorder{
		l: l, log: log,
		kick: make(chan struct{}, 1), full: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	r.room.L = &r.mu
	go r.run()
	return r
}

// Record queues an invocation record. A record that arrives after Close
// (a request that outlived fcd's shutdown) is logged, not written.
func (r *Recorder) Record(in InvocationRecord) {
	r.mu.Lock()
	for len(r.pending) >= recorderQueue && !r.closed {
		r.room.Wait()
	}
	if r.closed {
		r.mu.Unlock()
		r.log.Error("billing: invocation after shutdown not recorded", "function", in.Function, "requestId", in.RequestID)
		return
	}
	r.pending = append(r.pending, in)
	n := len(r.pending)
	r.mu.Unlock()
	switch n {
	case 1:
		signal(r.kick)
	case maxBatch:
		signal(r.full)
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Close writes every queued record and stops the Recorder. It is
// idempotent.
func (r *Recorder) Close() {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.stop)
		r.room.Broadcast()
	}
	r.mu.Unlock()
	<-r.done
}

// flushInterval is how long the Recorder gathers invocations before it
// commits them: a commit (and its fsync) per interval, not per request.
const flushInterval = 200 * time.Millisecond

func (r *Recorder) run() {
	defer close(r.done)
	timer := time.NewTimer(flushInterval)
	timer.Stop()
	var batch []InvocationRecord
	for {
		stopped := false
		select {
		case <-r.kick:
			timer.Reset(flushInterval)
			select {
			case <-timer.C:
			case <-r.full:
			case <-r.stop:
				stopped = true
			}
			timer.Stop()
		case <-r.stop:
			stopped = true
		}
		batch = r.take(batch[:0])
		for rest := batch; len(rest) > 0; {
			n := min(len(rest), maxBatch)
			r.write(rest[:n])
			rest = rest[n:]
		}
		if stopped {
			// Close refuses records from now on: the batch was the last.
			return
		}
	}
}

// take swaps the pending records for the empty buf and wakes any Record
// waiting for room.
func (r *Recorder) take(buf []InvocationRecord) []InvocationRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	batch := r.pending
	r.pending = buf
	r.room.Broadcast()
	return batch
}

func (r *Recorder) write(batch []InvocationRecord) {
	records := aggregate(batch)
	if err := r.l.appendAll(records); err != nil {
		r.log.Error("billing: invocation records lost", "invocations", len(batch), "records", len(records), "error", err)
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
