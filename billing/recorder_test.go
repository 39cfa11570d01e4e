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
	if len(recs) != n {
		t.Fatalf("got %d records, want %d", len(recs), n)
	}
	if totals.GBSeconds != n {
		t.Fatalf("got %v GB-s, want %d", totals.GBSeconds, n)
	}
}
