package billing

import (
	"fmt"
	"log/slog"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// Recorder meters invocations off the request path: Record queues a record
// and returns, and one goroutine writes whatever has queued in a single
// transaction, so the ledger keeps up with any request rate at one fsync
// per batch. A full queue blocks Record rather than drop a record. Close
// writes everything queued before it returns.
//
// A crash loses the records of the batch being written and those queued,
// at most the requests of the last commit interval; a clean shutdown loses
// none.
type Recorder struct {
	l     *Ledger
	log   *slog.Logger
	queue chan InvocationRecord
	done  chan struct{}
	once  sync.Once
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

// Record queues an invocation record. It must not be called after Close.
func (r *Recorder) Record(in InvocationRecord) {
	r.queue <- in
}

// Close writes every queued record and stops the Recorder.
func (r *Recorder) Close() {
	r.once.Do(func() { close(r.queue) })
	<-r.done
}

func (r *Recorder) run() {
	defer close(r.done)
	batch := make([]Record, 0, maxBatch)
	for in := range r.queue {
		batch = append(batch[:0], invocation(in))
	fill:
		for len(batch) < maxBatch {
			select {
			case in, ok := <-r.queue:
				if !ok {
					break fill
				}
				batch = append(batch, invocation(in))
			default:
				break fill
			}
		}
		if err := r.l.appendAll(batch); err != nil {
			r.log.Error("billing: invocation records lost", "records", len(batch), "error", err)
		}
	}
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
