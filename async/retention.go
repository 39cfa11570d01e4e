package async

import (
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"
)

// maxSweep bounds the events one sweep deletes, so one transaction stays
// short; the next sweep takes the rest.
const maxSweep = 10000

// sweep deletes events that ended more than Options.Retention ago. It
// reads every finished event's record: the events bucket is keyed by
// function and id, not by age.
func (q *Queue) sweep() (int, error) {
	cutoff := q.clock.Now().Add(-q.opts.Retention)
	var old [][]byte
	err := q.db.View(func(tx *bolt.Tx) error {
		pending := bucket(tx, bucketPending)
		return bucket(tx, bucketEvents).ForEach(func(k, v []byte) error {
			if len(old) == maxSweep || pending.Get(k) != nil {
				return nil
			}
			var ev struct {
				Ended time.Time `json:"ended"`
			}
			if json.Unmarshal(v, &ev) == nil && !ev.Ended.IsZero() && ev.Ended.Before(cutoff) {
				old = append(old, append([]byte(nil), k...))
			}
			return nil
		})
	})
	if err != nil || len(old) == 0 {
		return 0, err
	}
	err = q.db.Update(func(tx *bolt.Tx) error {
		events := bucket(tx, bucketEvents)
		for _, k := range old {
			if err := events.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	return len(old), err
}

// maybeSweep sweeps at most once per sweepEvery, from the committer when
// it is idle.
func (q *Queue) maybeSweep() {
	now := q.clock.Now()
	if now.Sub(q.swept) < sweepEvery {
		return
	}
	q.swept = now
	if n, err := q.sweep(); err != nil {
		q.log.Error("delete old async events", "error", err)
	} else if n > 0 {
		q.log.Info("deleted old async events", "events", n, "retention", q.opts.Retention)
	}
}

const sweepEvery = time.Hour
