package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fcd-dev/fcd/examples/images"
)

// BenchmarkAsync measures async invocations end to end on fcd run as its
// own process, with the notify example (instanceConcurrency 10) reporting
// the start of each execution to a server in a network namespace of the
// benchmark's own:
//
//   - enqueue: 16 clients, closed loop, 1 KiB events, 4000 events in all;
//     events/s acknowledged (202, committed), and 202 → start of
//     execution while the queue drains behind them;
//   - paced: 50 events/s for 10 s from 8 clients, below the drain rate;
//     202 → start of execution p50/p99.
//
// Start of execution is when the function's report reaches the sink: one
// loopback-class network hop after the instance got the event.
//
//	sudo flock /tmp/fcd-integration.lock go test ./cmd/fcd -run '^$' -bench Async -benchtime 1x
func BenchmarkAsync(b *testing.B) {
	requireRuntime(b)
	refs := pushExamples(b, images.Notify)
	sk := startSink(b, "fcdasyncb", "10.216.0.8/30")
	dir := b.TempDir()
	logf, err := os.Create(filepath.Join(dir, "fcd.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close()
	p := &fcdProcess{bin: buildFCD(b, dir), dataDir: filepath.Join(dir, "data"), listen: freePort(b), name: "fcdasyncb", subnet: "10.98.0.0/16", log: logf}
	d := p.start(b)
	defer p.stop(b)
	c := sdkClient(b, d, d.creds.AccessKeySecret)
	createNotify(b, c, "job", refs[images.Notify], sk.url, 10)
	if _, _, err := invoke(c, "job", "warm"); err != nil {
		b.Fatal(err)
	}
	payload := string(bytes.Repeat([]byte("x"), 1024))
	for i := 0; i < b.N; i++ {
		// Closed loop: as fast as fcd acknowledges.
		acks, elapsed := asyncLoad(b, d, 16, 250, 0, payload, fmt.Sprintf("e%d", i))
		b.ReportMetric(float64(len(acks))/elapsed.Seconds(), "acked-events/s")
		p50, p99 := startLatency(b, sk, acks)
		b.ReportMetric(p50, "enqueue-p50-202-to-start-ms")
		b.ReportMetric(p99, "enqueue-p99-202-to-start-ms")
		// Paced: 8 clients, each one event every 160 ms: 50 events/s.
		acks, _ = asyncLoad(b, d, 8, 62, 160*time.Millisecond, payload, fmt.Sprintf("p%d", i))
		p50, p99 = startLatency(b, sk, acks)
		b.ReportMetric(p50, "paced-p50-202-to-start-ms")
		b.ReportMetric(p99, "paced-p99-202-to-start-ms")
	}
}

// ack is when a client got the 202 of a request id.
type ack struct {
	rid string
	at  time.Time
}

// asyncLoad sends clients × each async invocations, each client waiting
// every between sends (0: none), and returns the acknowledgements and the
// time they took.
func asyncLoad(b *testing.B, d *daemon, clients, each int, every time.Duration, payload, tag string) ([]ack, time.Duration) {
	var mu sync.Mutex
	var acks []ack
	var wg sync.WaitGroup
	start := time.Now()
	for w := range clients {
		c := sdkClient(b, d, d.creds.AccessKeySecret)
		wg.Go(func() {
			next := time.Now()
			for i := range each {
				if every > 0 {
					time.Sleep(time.Until(next))
					next = next.Add(every)
				}
				rid, err := invokeAsync(c, "job", fmt.Sprintf("%s-%d-%d", tag, w, i), payload)
				if err != nil {
					b.Error(err)
					return
				}
				now := time.Now()
				mu.Lock()
				acks = append(acks, ack{rid, now})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return acks, time.Since(start)
}

// startLatency waits until every acknowledged event ran and returns the
// p50 and p99 of 202 → first report, in milliseconds.
func startLatency(b *testing.B, sk *sink, acks []ack) (p50, p99 float64) {
	deadline := time.Now().Add(5 * time.Minute)
	var lat []float64
	for {
		lat = lat[:0]
		sk.mu.Lock()
		for _, a := range acks {
			if t, ok := sk.first[a.rid]; ok {
				lat = append(lat, float64(t.Sub(a.at).Microseconds())/1000)
			}
		}
		sk.mu.Unlock()
		if len(lat) == len(acks) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d events ran within 5 minutes", len(lat), len(acks))
		}
		time.Sleep(100 * time.Millisecond)
	}
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100]
}
