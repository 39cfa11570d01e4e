package billing

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Filter selects ledger records. The zero value selects all.
type Filter struct {
	// Function selects one function's records; empty means all.
	Function string
	// Kind selects pull or invocation records; empty means both.
	Kind Kind
	// Since and Until select records whose Start is at or after Since and
	// before Until; zero means unbounded.
	Since, Until time.Time
	// Limit caps the number of records returned, keeping the newest; the
	// totals still cover every selected record. Zero means no cap.
	Limit int
}

// Totals sum the selected records.
type Totals struct {
	Records int `json:"records"`
	// ColdStarts counts pull records, CacheHits those that were hits.
	ColdStarts    int     `json:"coldStarts"`
	CacheHits     int     `json:"cacheHits"`
	PullSeconds   float64 `json:"pullSeconds"`
	PullGBSeconds float64 `json:"pullGBSeconds"`
	PullBytes     int64   `json:"pullBytes"`
	// Invocations counts invocations (an aggregated record counts Count).
	Invocations         int     `json:"invocations"`
	InvocationSeconds   float64 `json:"invocationSeconds"`
	InvocationGBSeconds float64 `json:"invocationGBSeconds"`
	// GBSeconds is PullGBSeconds + InvocationGBSeconds.
	GBSeconds float64 `json:"gbSeconds"`
}

func (t *Totals) add(r Record) {
	t.Records++
	switch r.Kind {
	case KindPull:
		t.ColdStarts++
		if r.CacheHit {
			t.CacheHits++
		}
		t.PullSeconds += r.Seconds
		t.PullGBSeconds += r.GBSeconds
		t.PullBytes += r.Bytes
	case KindInvocation:
		t.Invocations += max(r.Count, 1)
		t.InvocationSeconds += r.Seconds
		t.InvocationGBSeconds += r.GBSeconds
	}
	t.GBSeconds += r.GBSeconds
}

func (f Filter) match(r Record) bool {
	return (f.Kind == "" || r.Kind == f.Kind) &&
		(f.Since.IsZero() || !r.Start.Before(f.Since)) &&
		(f.Until.IsZero() || r.Start.Before(f.Until))
}

// Query returns the records f selects in append order, and their totals.
// With a Function it reads that function's index; otherwise it scans the
// ledger.
func (l *Ledger) Query(ctx context.Context, f Filter) ([]Record, Totals, error) {
	var (
		records []Record
		totals  Totals
	)
	visit := func(v []byte) error {
		var r Record
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		if (f.Function == "" || r.Function == f.Function) && f.match(r) {
			records = append(records, r)
			totals.add(r)
		}
		return nil
	}
	err := l.db.View(func(tx *bolt.Tx) error {
		all := bucket(tx, bucketRecords)
		if f.Function == "" {
			return all.ForEach(func(k, v []byte) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				return visit(v)
			})
		}
		fb := bucket(tx, bucketFunctions).Bucket([]byte(f.Function))
		if fb == nil {
			return nil
		}
		return fb.ForEach(func(k, _ []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			v := all.Get(k)
			if v == nil {
				return fmt.Errorf("index entry %x of %s has no record", k, f.Function)
			}
			return visit(v)
		})
	})
	if err != nil {
		return nil, Totals{}, fmt.Errorf("billing: query: %w", err)
	}
	if f.Limit > 0 && len(records) > f.Limit {
		records = records[len(records)-f.Limit:]
	}
	return records, totals, nil
}
