package billing

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestRecorderWritesEverythingByClose(t *testing.T) {
	l := openLedger(t, openDB(t, filepath.Join(t.TempDir(), "b.db")))
	r := NewRecorder(l, nil)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 3000
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < n/4; i++ {
				r.Record(InvocationRecord{Function: "f", RequestID: fmt.Sprintf("%d-%d", w, i), MemoryMB: 1024, Start: start, End: start.Add(time.Second)})
			}
		}(w)
	}
	wg.Wait()
	r.Close()
	recs, totals, err := l.Query(context.Background(), Filter{Function: "f"})
	if err != nil {
		t.Fatal(err)
	}
	if totals.Invocations != n || totals.GBSeconds != n || totals.InvocationSeconds != n {
		t.Fatalf("totals: got %d invocations, %v s, %v GB-s; want %d of each", totals.Invocations, totals.InvocationSeconds, totals.GBSeconds, n)
	}
	if len(recs) > n {
		t.Fatalf("got %d records for %d invocations", len(recs), n)
	}
}

func TestAggregate(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	batch := []InvocationRecord{
		{Function: "f", InstanceID: "i1", RequestID: "r1", MemoryMB: 1024, Start: t0, End: t0.Add(time.Second)},
		{Function: "g", InstanceID: "i2", RequestID: "r2", MemoryMB: 512, Start: t0, End: t0.Add(2 * time.Second)},
		{Function: "f", InstanceID: "i1", RequestID: "r3", MemoryMB: 1024, Start: t0.Add(time.Second), End: t0.Add(4 * time.Second)},
	}
	got := aggregate(batch)
	if len(got) != 2 {
		t.Fatalf("got %d records, want 2 (f on i1, g on i2)", len(got))
	}
	f, g := got[0], got[1]
	if f.Count != 2 || f.Seconds != 4 || !f.Start.Equal(t0) || !f.End.Equal(t0.Add(4*time.Second)) || f.RequestID != "" {
		t.Errorf("f: got %+v, want 2 invocations, 4 s, spanning 0-4 s, no single request id", f)
	}
	if g.Count != 0 || g.RequestID != "r2" {
		t.Errorf("g: got %+v, want the lone request kept as is", g)
	}
	if err := price(&f); err != nil || f.GBSeconds != 4 {
		t.Errorf("priced f: %v GB-s (%v), want 4", f.GBSeconds, err)
	}
}
