package console_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/billing"
	"github.com/fcd-dev/fcd/console"
	"github.com/fcd-dev/fcd/internal/testenv"
	"github.com/fcd-dev/fcd/proxy"
	"github.com/fcd-dev/fcd/puller/accel"
	"github.com/fcd-dev/fcd/store"
)

// This test runs every page of the console in headless Chromium against
// fcd's real frontend (package proxy) with a real store, and stand-ins for
// what needs containerd: a log, start records and a ledger with a
// function's history. It needs no root, so it runs on every machine with
// Chromium; cmd/fcd's TestConsoleBrowser drives the same console against
// a whole fcd with real instances.

const (
	keyID  = "AKCONSOLE"
	secret = "console-test-secret"
)

// history is a function's recent past: its log lines, one instance start
// and the ledger records, as fcd would have them.
type history struct {
	lines  []string
	starts []api.ColdStart
	recs   []billing.Record
}

func newHistory(now time.Time) *history {
	h := &history{}
	t0 := now.Add(-20 * time.Minute)
	// A lazy start with a start-up record: the prefetch runs on beside
	// the container's start, and the first response follows the probe.
	cs := api.ColdStart{InstanceID: "c0ffee12ab34cd56", StartedAt: t0.Add(-600 * time.Millisecond), TotalMs: 386, FirstResponseMs: 402, FetchedBytes: 2 << 20,
		Phases: []api.ColdStartPhase{
			{Name: "pull", AtMs: 0.2, Ms: 61, Bytes: 2 << 20}, {Name: "resolve", AtMs: 0.3, Ms: 12}, {Name: "auth", AtMs: 1.1, Ms: 4.5},
			{Name: "index", AtMs: 13, Ms: 21}, {Name: "mount", AtMs: 34, Ms: 27}, {Name: "prefetch", AtMs: 61, Ms: 240, Bytes: 38 << 20},
			{Name: "rootfs", AtMs: 62, Ms: 18}, {Name: "network", AtMs: 80, Ms: 96}, {Name: "container", AtMs: 176, Ms: 19},
			{Name: "task", AtMs: 195, Ms: 160}, {Name: "task_start", AtMs: 355, Ms: 6}, {Name: "probe", AtMs: 361, Ms: 24},
			{Name: "first_response", AtMs: 386, Ms: 16}}}
	h.starts = []api.ColdStart{cs}
	h.recs = append(h.recs, billing.Record{Kind: billing.KindPull, Function: "hello", Start: cs.StartedAt, End: cs.StartedAt.Add(204 * time.Millisecond), GBSeconds: 0.026, Bytes: 2 << 20})
	line := func(at time.Time, stream, text string) {
		h.lines = append(h.lines, at.UTC().Format("2006-01-02T15:04:05.000000Z")+" "+cs.InstanceID+" "+stream+" "+text)
	}
	for i := range 40 {
		at := t0.Add(time.Duration(i) * 30 * time.Second)
		d := time.Duration(300+(i*37)%900) * time.Microsecond
		rid := fmt.Sprintf("1-test-%x", i)
		line(at, "fc", "FC Invoke Start RequestId: "+rid)
		line(at.Add(d/2), "stdout", fmt.Sprintf(`handling {"n":%d}`, i))
		line(at.Add(d), "fc", "FC Invoke End RequestId: "+rid)
		h.recs = append(h.recs, billing.Record{Kind: billing.KindInvocation, Function: "hello", Start: at, End: at.Add(d), Seconds: d.Seconds(), GBSeconds: 0.125 * d.Seconds(), MemoryMB: 128})
	}
	return h
}

func (h *history) ReadLogs(function string, tail int) ([]string, error) {
	if function != "hello" {
		return nil, nil
	}
	if tail > 0 && tail < len(h.lines) {
		return h.lines[len(h.lines)-tail:], nil
	}
	return h.lines, nil
}

func (h *history) ColdStarts(function string, n int) []api.ColdStart {
	if function != "hello" {
		return nil
	}
	return h.starts
}

func (h *history) Query(ctx context.Context, f billing.Filter) ([]billing.Record, billing.Totals, error) {
	var t billing.Totals
	for _, r := range h.recs {
		if r.Kind == billing.KindPull {
			t.ColdStarts++
			t.PullGBSeconds += r.GBSeconds
		} else {
			t.Invocations++
			t.InvocationGBSeconds += r.GBSeconds
		}
		t.GBSeconds += r.GBSeconds
	}
	return h.recs, t, nil
}

// jobs stands in for the acceleration service: three jobs, one of each
// state, and a repository converted on push.
type jobs struct{}

var _ proxy.Accelerator = jobs{}

func (jobs) Jobs(context.Context) ([]accel.Job, error) {
	now := time.Now()
	return []accel.Job{
		{Ref: "127.0.0.1:5000/examples/bigimage:v1", Mode: accel.ModeFull, State: accel.StatePreparing, Created: now, Updated: now,
			Progress: accel.Progress{LayersDone: 2, Layers: 5, BytesDone: 420 << 20, Bytes: 1100 << 20, BytesPerSecond: 60 << 20, ETA: 11 * time.Second}},
		{Ref: "127.0.0.1:5000/examples/echo:latest", Mode: accel.ModeIndexOnly, State: accel.StateReady, Created: now.Add(-time.Hour), Updated: now.Add(-time.Hour),
			Progress: accel.Progress{LayersDone: 1, Layers: 1, BytesDone: 2 << 20, Bytes: 2 << 20}},
		{Ref: "127.0.0.1:5000/examples/zstd:v2", Mode: accel.ModeIndexOnly, State: accel.StateFailed, Created: now.Add(-2 * time.Hour), Updated: now.Add(-2 * time.Hour),
			Error: "layer sha256:ab12… is zstd: index-only takes gzip layers only"},
	}, nil
}

func (jobs) AllSettings(context.Context) ([]accel.Settings, error) {
	return []accel.Settings{{Repository: "127.0.0.1:5000/examples/bigimage", Enabled: true, Mode: accel.ModeFull}}, nil
}

func (jobs) Accelerate(context.Context, accel.Request) (accel.Job, error) { return accel.Job{}, nil }
func (jobs) Job(context.Context, string) (accel.Job, error)               { return accel.Job{}, nil }
func (jobs) SetSettings(_ context.Context, s accel.Settings) (accel.Settings, error) {
	return s, nil
}
func (jobs) Settings(context.Context, string) (accel.Settings, error) { return accel.Settings{}, nil }
func (jobs) FunctionStatus(string, bool) accel.Status                 { return accel.Status{} }

// pools stands in for the scheduler's instance list: the history's
// instance, running, and an older one draining.
type pools struct{ created time.Time }

var _ proxy.VersionPools = pools{}

func (pools) RemoveVersion(function, version string)       {}
func (pools) SetConcurrencyLimit(function string, max int) {}
func (pools) ProvisionedVersion(string, string) (int, int) { return 0, 0 }
func (p pools) Instances(function string) []proxy.InstanceInfo {
	if function != "hello" {
		return nil
	}
	return []proxy.InstanceInfo{
		{ID: "c0ffee12ab34cd56", Created: p.created},
		{ID: "0ldbeef0ab34cd56", VersionID: "1", Created: p.created.Add(-time.Hour), Draining: true},
	}
}

// serve runs fcd's frontend with the console on a loopback port.
func serve(t *testing.T) string {
	t.Helper()
	st, err := store.Open(t.TempDir()+"/fcd.db", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	name, rt, img := "hello", api.RuntimeCustomContainer, "127.0.0.1:5000/examples/echo:latest"
	f, err := api.NewFunction(&api.Input{FunctionName: &name, Runtime: &rt, CustomContainerConfig: &api.ContainerInput{Image: &img}}, "id", "local", "1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateFunction(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	h := newHistory(time.Now())
	srv := proxy.New(proxy.Options{
		Functions: st, Keys: proxy.StaticKeys{keyID: secret},
		Logs: h, ColdStarts: h, Ledger: h, Accelerator: jobs{}, Console: console.Handler(),
		Versions: st, VersionPools: pools{created: h.starts[0].StartedAt},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// TestPagesInBrowser signs in, opens every page, creates a function
// (after FC refuses a bad memory size) and deletes it, and signs out; any
// error the page logs fails it. With FCD_CONSOLE_SCREENSHOTS set to a
// folder it writes a PNG of every page at desktop and phone size there
// (make console-screenshots).
func TestPagesInBrowser(t *testing.T) {
	chromium := testenv.RequireCommand(t, "chromium", "chromium")
	addr := serve(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.UserDataDir(t.TempDir()))
	defer cancelAlloc()
	tab, cancelTab := chromedp.NewContext(actx)
	defer cancelTab()
	act, stop := context.WithCancel(tab)
	var mu sync.Mutex
	var pageErrors []string
	messages := chromedp.Console(tab)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if (m.Type == chromedp.ConsoleError || m.IsException()) && m.Source != "network" {
				mu.Lock()
				pageErrors = append(pageErrors, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line+1))
				mu.Unlock()
				stop()
			}
		}
	}()
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		err := chromedp.Do(act, actions...)
		mu.Lock()
		defer mu.Unlock()
		if len(pageErrors) > 0 {
			t.Fatalf("%s: the page logged errors:\n%s", what, strings.Join(pageErrors, "\n"))
		}
		if err != nil {
			text, _ := chromedp.Run(tab, chromedp.Evaluate[string](`location.hash + ': ' + document.getElementById('main').innerText.slice(0, 400)`))
			t.Fatalf("%s: %v; the page shows %q", what, err, text)
		}
	}
	wait := func(what, expr string) {
		t.Helper()
		do(what, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(30*time.Second)))
	}
	route := func(hash, ready string) {
		t.Helper()
		do("open "+hash, chromedp.Evaluate[chromedp.Void](fmt.Sprintf("location.hash = %q", hash)))
		wait(hash, ready)
	}
	shots := os.Getenv("FCD_CONSOLE_SCREENSHOTS")
	// shot writes the page at each size; charts are drawn for the width
	// they are shown at, so the page is drawn again (hashchange) after
	// each resize, and ready says when it is.
	shot := func(name, ready string) {
		t.Helper()
		if shots == "" {
			return
		}
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, vp := range []struct {
			name          string
			width, height int64
			mobile        bool
		}{{"desktop", 1280, 800, false}, {"phone", 390, 844, true}} {
			opts := []chromedp.EmulateViewportOption{}
			if vp.mobile {
				opts = append(opts, chromedp.EmulateMobile)
			}
			do("resize", chromedp.EmulateViewport(vp.width, vp.height, opts...))
			if ready != "" {
				do("redraw", chromedp.Evaluate[chromedp.Void](`document.title = ''; window.dispatchEvent(new HashChangeEvent('hashchange'))`))
				wait("redraw", ready)
			}
			do("top", chromedp.Evaluate[chromedp.Void]("window.scrollTo(0, 0)"))
			png, err := chromedp.Run(act, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(shots, name+"-"+vp.name+".png"), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		do("resize", chromedp.EmulateViewport(1280, 800))
	}
	page := func(name, hash, ready string) {
		t.Helper()
		route(hash, ready)
		shot(name, ready)
	}

	do("open", chromedp.Navigate("http://"+addr+"/console/"), chromedp.WaitVisible(chromedp.ID("ak-id")))
	shot("signin", "")
	do("sign in with a wrong secret", chromedp.SendKeys(chromedp.ID("ak-id"), keyID), chromedp.SendKeys(chromedp.ID("ak-secret"), "wrong"), chromedp.Click(chromedp.ID("sign-in")))
	wait("the refusal", `document.querySelector('.error')?.textContent.includes('SignatureNotMatch')`)
	do("sign in", chromedp.SetValue(chromedp.ID("ak-secret"), secret), chromedp.Click(chromedp.ID("sign-in")))
	wait("the function list", `!!document.querySelector('tr[data-name="hello"]')`)

	shot("functions", "")
	page("function", "#/functions/hello", `document.title.startsWith('hello') && !!document.getElementById('invoke') && document.querySelectorAll('tr[data-instance-id]').length === 2`)
	t.Run("instances with state and age", func(t *testing.T) {
		rows, err := chromedp.Run(act, chromedp.Evaluate[[]string](`[...document.querySelectorAll('tr[data-instance-id]')].map((r) => r.innerText.replace(/\s+/g, ' ').trim())`))
		if err != nil {
			t.Fatal(err)
		}
		// Newest first: the running instance (20 minutes old, its start
		// took 386 ms), then the draining one of version 1.
		for i, want := range [][]string{{"c0ffee12ab34cd56", "Running", "20 min", "LATEST", "386 ms"}, {"0ldbeef0ab34cd56", "Stopping", "1 h", "1"}} {
			for _, w := range want {
				if i >= len(rows) || !strings.Contains(rows[i], w) {
					t.Errorf("instance row %d of %q: want %q", i, rows, w)
				}
			}
		}
	})
	page("invocations", "#/invocations/hello", `document.title.startsWith('Invocations') && !!document.querySelector('#waterfall svg.waterfall') && document.querySelectorAll('tr[data-request-id]').length === 40`)
	t.Run("waterfall bars of every phase, to scale", func(t *testing.T) {
		// Each bar's x and width over the plot, per phase.
		bars, err := chromedp.Run(act, chromedp.Evaluate[map[string][]float64](`Object.fromEntries([...document.querySelectorAll('#waterfall rect[data-phase]')].map((r) => [r.dataset.phase, [+r.getAttribute('x'), +r.getAttribute('width')]]))`))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"resolve", "auth", "index", "mount", "prefetch", "container", "task", "task_start", "probe", "first_response"} {
			if _, ok := bars[p]; !ok {
				t.Errorf("waterfall bars %v: want one for %s", bars, p)
			}
		}
		if t.Failed() {
			return
		}
		// To scale: ms per pixel is the same for every bar, and bars start
		// at their offsets (prefetch at 61 ms overlaps the task at 195).
		scale := bars["prefetch"][1] / 240
		for p, msLen := range map[string]float64{"task": 160, "network": 96, "index": 21} {
			if got := bars[p][1] / msLen; got < scale*0.97 || got > scale*1.03 {
				t.Errorf("%s: %.3f px/ms, want the prefetch's %.3f", p, got, scale)
			}
		}
		if px := bars["task"][0] - bars["prefetch"][0]; px < (195-61)*scale*0.97 || px > (195-61)*scale*1.03 {
			t.Errorf("task starts %.1f px after prefetch, want %.1f (134 ms)", px, (195-61)*scale)
		}
		text, err := chromedp.Run(act, chromedp.Evaluate[string](`document.getElementById('waterfall').textContent`))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"first response", "create task", "38.0 MB", "402 ms"} {
			if !strings.Contains(text, want) {
				t.Errorf("waterfall panel %q: want %q", text, want)
			}
		}
	})
	page("logs", "#/logs/hello", `document.title.startsWith('Logs') && document.getElementById('log-lines')?.textContent.includes('FC Invoke End RequestId: 1-test-27')`)
	page("metrics", "#/metrics", `document.title.startsWith('Metrics') && document.querySelectorAll('svg.chart path.line').length >= 3`)
	page("cost", "#/cost", `document.title.startsWith('Cost') && !!document.querySelector('svg.chart path.line')`)

	page("acceleration", "#/acceleration", `document.title.startsWith('Image acceleration') && document.querySelectorAll('.badge.Preparing, .badge.Ready, .badge.Failed').length === 3`)
	page("function-edit", "#/functions/hello/edit", `document.title.startsWith('Edit hello') && !!document.getElementById('save-function')`)
	route("#/new", `document.title.startsWith('New function') && !!document.getElementById('functionName')`)
	do("fill the form",
		chromedp.SendKeys(chromedp.ID("functionName"), "second"),
		chromedp.SendKeys(chromedp.ID("image"), "127.0.0.1:5000/examples/echo:latest"),
		chromedp.SetValue(chromedp.ID("memorySize"), "100"),
		chromedp.Click(chromedp.ID("save-function")))
	wait("FC's validation message on the field", `document.querySelector('.error')?.textContent.includes('memorySize 100 is invalid') && document.activeElement.id === 'memorySize'`)
	shot("function-new-refused", "")
	do("fix it", chromedp.SetValue(chromedp.ID("memorySize"), "256"), chromedp.Click(chromedp.ID("save-function")))
	wait("the new function", `location.hash === '#/functions/second' && !!document.getElementById('delete-function')`)
	do("delete it", chromedp.Click(chromedp.ID("delete-function")), chromedp.Click(chromedp.ID("delete-function")))
	wait("the list without it", `location.hash === '#/functions' && !!document.querySelector('tr[data-name="hello"]') && !document.querySelector('tr[data-name="second"]')`)
	do("delete hello", chromedp.Evaluate[chromedp.Void](`fetch('/2023-03-30/functions/hello', {method: 'DELETE', headers: {'x-fcd-csrf': sessionStorage.getItem('fcd.csrf')}}).then(() => { location.hash = '#/x'; location.hash = '#/functions'; })`))
	wait("the empty state", `document.body.textContent.includes('No functions yet')`)
	shot("functions-empty", "")

	stored, err := chromedp.Run(act, chromedp.Evaluate[string](`JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie + document.documentElement.outerHTML`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stored, secret) {
		t.Fatal("the secret is in the page's storage, cookies or DOM")
	}
	do("sign out", chromedp.Click(chromedp.ID("sign-out")))
	wait("the sign-in form", `!!document.getElementById('ak-id')`)
	do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("ak-id")))
}
