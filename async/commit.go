package async

import (
	"context"
	"errors"

	bolt "go.etcd.io/bbolt"
)

// op is one update waiting for the committer.
type op struct {
	fn   func(tx *bolt.Tx, ch *change) error
	ch   change
	err  error
	done chan struct{}
}

// maxBatch bounds the updates that share one transaction.
const maxBatch = 4096

// errOpFailed rolls back a batch one of whose updates failed.
var errOpFailed = errors.New("an update of the batch failed")

// committer runs updates in batches, each batch one transaction and one
// fsync: while a batch is on its way to disk, the next one gathers, so
// concurrent callers share commits without waiting on a timer. When idle
// it deletes old finished events (retention.go). When ctx ends it runs
// what was handed over and closes q.closed, after which update runs alone.
func (q *Queue) committer(ctx context.Context) {
	defer close(q.closed)
	for {
		var batch []*op
		select {
		case o := <-q.ops:
			batch = append(batch, o)
		default:
			q.maybeSweep()
			select {
			case o := <-q.ops:
				batch = append(batch, o)
			case <-ctx.Done():
				q.drainOps()
				return
			}
		}
	gather:
		for len(batch) < maxBatch {
			select {
			case o := <-q.ops:
				batch = append(batch, o)
			default:
				break gather
			}
		}
		q.runBatch(batch)
	}
}

// drainOps runs the updates that were handed over as Run ended.
func (q *Queue) drainOps() {
	for {
		select {
		case o := <-q.ops:
			q.runBatch([]*op{o})
		default:
			return
		}
	}
}

// runBatch commits batch in one transaction. An update that fails is
// answered with its error and the rest run again without it.
func (q *Queue) runBatch(batch []*op) {
	for len(batch) > 0 {
		failed := -1
		err := q.db.Update(func(tx *bolt.Tx) error {
			for i, o := range batch {
				o.ch = change{}
				if o.err = o.fn(tx, &o.ch); o.err != nil {
					failed = i
					return errOpFailed
				}
			}
			return nil
		})
		switch {
		case failed >= 0:
			close(batch[failed].done)
			batch = append(batch[:failed], batch[failed+1:]...)
			continue
		case err != nil:
			for _, o := range batch {
				o.err = err
			}
		}
		for _, o := range batch {
			close(o.done)
		}
		return
	}
}
