package async

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Filter selects the tasks ListTasks returns.
type Filter struct {
	// Prefix selects task ids that start with it.
	Prefix string
	// Status selects one state; empty means all.
	Status string
	// Qualifier selects the events of one qualifier (a version id or an
	// alias, as the invocation named it; LATEST those of none); empty
	// means all.
	Qualifier string
	// StartedBegin and StartedEnd bound the creation time, inclusive;
	// zero means unbounded.
	StartedBegin, StartedEnd time.Time
	// Descending orders newest first; the default is oldest first.
	Descending bool
	// After continues a listing after the task of that id (a NextToken).
	After string
	// Limit caps the tasks returned. Zero means 20.
	Limit int
}

// ListTasks returns function's tasks that f selects, ordered by creation
// time, and the token of the next page ("" at the end).
func (q *Queue) ListTasks(ctx context.Context, function string, f Filter) ([]*Event, string, error) {
	if f.Limit <= 0 {
		f.Limit = 20
	}
	var all []*Event
	err := q.db.View(func(tx *bolt.Tx) error {
		prefix := []byte(function + "/")
		c := bucket(tx, bucketEvents).Cursor()
		for k, v := c.Seek(append(prefix, f.Prefix...)); k != nil && strings.HasPrefix(string(k), string(prefix)+f.Prefix); k, v = c.Next() {
			ev := &Event{}
			if err := json.Unmarshal(v, ev); err != nil {
				return fmt.Errorf("event %s: %w", k, err)
			}
			if !ev.Task || (f.Status != "" && ev.State != f.Status) ||
				(f.Qualifier != "" && ev.QualifierOrLatest() != f.Qualifier) ||
				(!f.StartedBegin.IsZero() && ev.Created.Before(f.StartedBegin)) ||
				(!f.StartedEnd.IsZero() && ev.Created.After(f.StartedEnd)) {
				continue
			}
			all = append(all, ev)
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	slices.SortStableFunc(all, func(a, b *Event) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if f.Descending {
		slices.Reverse(all)
	}
	if f.After != "" {
		i := slices.IndexFunc(all, func(e *Event) bool { return e.ID == f.After })
		if i < 0 {
			return nil, "", nil
		}
		all = all[i+1:]
	}
	var next string
	if len(all) > f.Limit {
		all = all[:f.Limit]
		next = all[len(all)-1].ID
	}
	return all, next, nil
}
