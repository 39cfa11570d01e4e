package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/examples/images"
)

// Tolerances of TestOpenLoopLoad: after the load, with its instances
// reclaimed and its connections closed, fcd's goroutines and RSS are back
// within these of what they were after a warm-up of the same shape.
const (
	loadGoroutineSlack = 10
	loadRSSSlackMB     = 32
	loadRSSSlackShare  = 0.25
)

// TestOpenLoopLoad sends signed InvokeFunction requests at a constant
// arrival rate, whatever the answers' pace (open loop), to a function
// whose instances serve up to 50 requests at once and take 200 ms each:
// FCD_LOAD_REQUESTS requests (default 10,000) at FCD_LOAD_INFLIGHT / 0.2 s
// per second (default 200 in flight, so 1,000/s and several instances),
// on loopback, bounded in time. Every request must be answered (none
// lost), every answer that is not the event back must be an FC error that
// explains itself (throttling), and fcd's goroutines and RSS must return
// to the level of after a warm-up.
func TestOpenLoopLoad(t *testing.T) {
	requireRuntime(t)
	total, inflight := envInt("FCD_LOAD_REQUESTS", 10000), envInt("FCD_LOAD_INFLIGHT", 200)
	const work = 200 * time.Millisecond
	rate := float64(inflight) / work.Seconds()
	refs := pushExamples(t, images.Misbehave)
	p := newFCDProcess(t, "fcdload", "10.132.0.0/16")
	logf := p.log
	// All the load comes from one address, with a connection per request
	// in flight (over 1,000 while cold starts queue requests): lift the
	// per-address connection cap that protects fcd from one client.
	// -debug-address: settle collects fcd's garbage before it samples, so
	// that the figures say what fcd holds, not when its GC last ran.
	debug := freePort(t)
	d := p.start(t, "-idle-timeout", "2s", "-max-conns-per-ip", "-1", "-debug-address", debug)
	c := sdkClient(t, d, d.creds.AccessKeySecret)
	createMisbehave(t, c, "load", refs[images.Misbehave], 30, 50)
	tr := &http.Transport{MaxIdleConnsPerHost: 2 * inflight, IdleConnTimeout: 30 * time.Second}
	lg := &loadGen{client: &http.Client{Transport: tr, Timeout: 30 * time.Second}, d: d, event: fmt.Sprintf("sleep %d", work.Milliseconds())}

	// A warm-up of the same shape sets the level fcd's pools and buffers
	// keep; the run must not grow it.
	warm := lg.run(t, min(total, 2000), rate)
	t.Logf("warm-up: %s", warm)
	tr.CloseIdleConnections()
	base := settle(t, d, debug, nil)

	res := lg.run(t, total, rate)
	tr.CloseIdleConnections()
	after := settle(t, d, debug, &base)

	t.Logf("open loop: %s", res)
	t.Logf("fcd before: %s; after: %s (tolerance +%d goroutines, RSS +max(%d MB, %.0f%%))",
		base, after, loadGoroutineSlack, loadRSSSlackMB, loadRSSSlackShare*100)
	if res.lost > 0 || res.unexplained > 0 {
		t.Errorf("%d requests lost, %d unexplained errors; want none: %v", res.lost, res.unexplained, res.samples)
	}
	if res.ok+res.explained+res.lost+res.unexplained != total {
		t.Errorf("accounted for %d requests, sent %d", res.ok+res.explained+res.lost+res.unexplained, total)
	}
	if !after.within(base) {
		t.Errorf("fcd after the load: %s; want within tolerance of %s", after, base)
	}
	if t.Failed() {
		if log, err := os.ReadFile(logf.Name()); err == nil {
			t.Logf("fcd's log:\n%s", log)
		}
	}
	p.stop(t)
	assertNoLeaks(t, p)
}

// loadGen sends signed InvokeFunction requests.
type loadGen struct {
	client *http.Client
	d      *daemon
	event  string
}

// loadResult counts the answers of one open-loop run.
type loadResult struct {
	sent, ok, explained, lost, unexplained int
	codes                                  map[string]int // FC error codes of the explained
	samples                                []string       // the first unexplained and lost
	p50, p99, max                          time.Duration
	maxInflight                            int64
	took                                   time.Duration
	rate                                   float64
}

func (r loadResult) String() string {
	return fmt.Sprintf("%d requests at %.0f/s in %s: %d ok, %d explained errors %v, %d lost, %d unexplained; latency p50 %s p99 %s max %s; in flight at most %d",
		r.sent, r.rate, r.took.Round(time.Millisecond), r.ok, r.explained, r.codes, r.lost, r.unexplained,
		r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond), r.max.Round(time.Millisecond), r.maxInflight)
}

// run sends n requests, one every 1/rate s from the start whatever the
// earlier ones do, and waits for their answers; the whole run is bounded
// by the arrival time plus the client timeout.
func (g *loadGen) run(t *testing.T, n int, rate float64) loadResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(float64(n)/rate*float64(time.Second))+time.Minute)
	defer cancel()
	res := loadResult{sent: n, rate: rate, codes: map[string]int{}}
	lat := make([]time.Duration, n)
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		inflight atomic.Int64
	)
	record := func(kind *int, sample string) {
		mu.Lock()
		defer mu.Unlock()
		*kind++
		if sample != "" && len(res.samples) < 10 {
			res.samples = append(res.samples, sample)
		}
	}
	begin := time.Now()
	for i := range n {
		at := begin.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		time.Sleep(time.Until(at))
		if ctx.Err() != nil {
			record(&res.lost, "not sent: the run's time bound passed")
			continue
		}
		wg.Go(func() {
			cur := inflight.Add(1)
			defer inflight.Add(-1)
			for {
				m := atomic.LoadInt64(&res.maxInflight)
				if cur <= m || atomic.CompareAndSwapInt64(&res.maxInflight, m, cur) {
					break
				}
			}
			status, code, body, err := g.invoke(ctx)
			lat[i] = time.Since(at)
			switch {
			case err != nil:
				record(&res.lost, err.Error())
			case status == http.StatusOK && body == g.event:
				record(&res.ok, "")
			case code != "" && (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable):
				mu.Lock()
				res.codes[code]++
				mu.Unlock()
				record(&res.explained, "")
			default:
				record(&res.unexplained, fmt.Sprintf("HTTP %d %s %q", status, code, body))
			}
		})
	}
	wg.Wait()
	res.took = time.Since(begin)
	slices.Sort(lat)
	res.p50, res.p99, res.max = lat[n/2], lat[n*99/100], lat[n-1]
	return res
}

// invoke sends one signed InvokeFunction and returns the status, the FC
// error code of an error body, and the body.
func (g *loadGen) invoke(ctx context.Context) (int, string, string, error) {
	body := []byte(g.event)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+g.d.endpoint+"/2023-03-30/functions/load/invocations", bytes.NewReader(body))
	if err != nil {
		return 0, "", "", err
	}
	if err := api.SignRequest(req, body, g.d.creds.AccessKeyID, g.d.creds.AccessKeySecret); err != nil {
		return 0, "", "", err
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, "", "", err
	}
	var e struct{ Code string }
	if resp.StatusCode != http.StatusOK {
		_ = json.Unmarshal(b, &e)
	}
	return resp.StatusCode, e.Code, string(b), nil
}

// processFigures are fcd's goroutines and resident memory.
type processFigures struct {
	goroutines int
	rssMB      float64
}

func (f processFigures) String() string {
	return fmt.Sprintf("%d goroutines, RSS %.1f MB", f.goroutines, f.rssMB)
}

// within reports whether f is within the tolerances of base.
func (f processFigures) within(base processFigures) bool {
	rss := max(loadRSSSlackMB, base.rssMB*loadRSSSlackShare)
	return f.goroutines <= base.goroutines+loadGoroutineSlack && f.rssMB <= base.rssMB+rss
}

// settle waits until the function's instances are reclaimed and fcd's
// goroutines stop falling (or, given base, are within tolerance of it),
// and returns fcd's figures then.
func settle(t *testing.T, d *daemon, debug string, base *processFigures) processFigures {
	t.Helper()
	eventually(t, "the function's instances to be reclaimed", time.Minute, func() bool {
		return metric(t, d, "fcd_instances", "load") == 0 && metric(t, d, "fcd_instances_starting", "load") == 0
	})
	figures := func() processFigures {
		// An idle fcd may not collect for minutes (Go forces a GC every
		// 2 min): a heap profile with gc=1 runs one, and the runtime
		// then returns the freed pages to the OS in the background.
		if resp, err := http.Get("http://" + debug + "/debug/pprof/heap?gc=1"); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return processFigures{goroutines: int(sample(t, d, "go_goroutines")), rssMB: sample(t, d, "process_resident_memory_bytes") / (1 << 20)}
	}
	// fasthttp's idle workers end 10 s after their last connection: the
	// figures have settled when the goroutines are what they were 12 s
	// before (or, given base, within its tolerance).
	const quiet = 12
	var hist []processFigures
	for range 60 {
		cur := figures()
		hist = append(hist, cur)
		if base != nil && cur.within(*base) || base == nil && len(hist) > quiet && hist[len(hist)-1-quiet].goroutines == cur.goroutines {
			return cur
		}
		time.Sleep(time.Second)
	}
	return hist[len(hist)-1]
}
