package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	fc "github.com/alibabacloud-go/fc-20230330/v4/client"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/chromedp/chromedp"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/examples/images"
	"github.com/fcd-dev/fcd/internal/testenv"
)

// consoleViewports are the sizes screenshots are taken at: a laptop and a
// phone.
var consoleViewports = []struct {
	name          string
	width, height int64
	mobile        bool
}{{"desktop", 1280, 800, false}, {"phone", 390, 844, true}}

// browser is a headless Chromium tab on the console, with the page's
// console errors collected.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	// shots is the folder screenshots go to; empty takes none.
	shots string

	mu     sync.Mutex
	errors []string
}

func startBrowser(t *testing.T, base, shots string) *browser {
	t.Helper()
	chromium := testenv.RequireCommand(t, "chromium", "chromium")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800))
	t.Cleanup(cancelAlloc)
	bctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(cancelTab)
	// An error in the page ends every action at once, instead of leaving
	// the test to wait for what the broken page never shows.
	actCtx, stop := context.WithCancel(bctx)
	b := &browser{t: t, ctx: actCtx, base: base, shots: shots}
	messages := chromedp.Console(bctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			// A refused API call (a validation error the page shows) is
			// logged by the browser's network stack, not by the page.
			if (m.Type == chromedp.ConsoleError || m.IsException()) && m.Source != "network" {
				b.mu.Lock()
				b.errors = append(b.errors, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line+1))
				b.mu.Unlock()
				stop()
			}
		}
	}()
	return b
}

// do runs actions, failing the test on an error or on anything the page
// logged as an error so far.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	err := chromedp.Do(b.ctx, actions...)
	b.checkErrors(what)
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

func (b *browser) checkErrors(what string) {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errors) > 0 {
		b.t.Fatalf("%s: the page logged errors:\n%s", what, strings.Join(b.errors, "\n"))
	}
}

// waitFor waits until the JavaScript expression is true.
func (b *browser) waitFor(what, expr string) {
	b.t.Helper()
	b.do(what, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(2*time.Minute), chromedp.WithPollingInterval(100*time.Millisecond)))
}

// route moves the single-page console to a hash route.
func (b *browser) route(hash string) {
	b.t.Helper()
	b.do("open "+hash, chromedp.Evaluate[chromedp.Void](fmt.Sprintf("location.hash = %q", hash)))
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// shot writes full-page PNGs of the page at each viewport, when screenshots
// are asked for.
func (b *browser) shot(name string) {
	b.t.Helper()
	if b.shots == "" {
		return
	}
	for _, vp := range consoleViewports {
		opts := []chromedp.EmulateViewportOption{}
		if vp.mobile {
			opts = append(opts, chromedp.EmulateMobile)
		}
		b.do("viewport", chromedp.EmulateViewport(vp.width, vp.height, opts...), chromedp.Evaluate[chromedp.Void]("window.scrollTo(0, 0)"))
		png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			b.t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(b.shots, "live-"+name+"-"+vp.name+".png"), png, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
	b.do("viewport", chromedp.EmulateViewport(1280, 800))
}

// TestConsoleBrowser drives the web console in headless Chromium against a
// real fcd: sign in, create a function from the example image (after a
// validation error), invoke it, find the invocation with its cold-start
// waterfall, read its logs, delete it. Any error the page logs fails it.
// With FCD_CONSOLE_SCREENSHOTS set to a folder, it also writes screenshots
// of every page at desktop and phone size (make console-screenshots).
func TestConsoleBrowser(t *testing.T) {
	requireRuntime(t)
	shots := os.Getenv("FCD_CONSOLE_SCREENSHOTS")
	if shots != "" {
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	refs := pushExamples(t, images.Echo)
	d := startDaemonWith(t, t.TempDir(), []string{"-name", "fcdconsole", "-subnet", "10.83.0.0/16"}, true)
	b := startBrowser(t, "http://"+d.endpoint+"/console/", shots)
	secret := d.creds.AccessKeySecret

	b.do("open the console", chromedp.Navigate(b.base), chromedp.WaitVisible(chromedp.ID("ak-id")))
	b.shot("signin")
	b.do("sign in",
		chromedp.SendKeys(chromedp.ID("ak-id"), d.creds.AccessKeyID),
		chromedp.SendKeys(chromedp.ID("ak-secret"), secret),
		chromedp.Click(chromedp.ID("sign-in")))
	b.waitFor("the empty functions page", `document.body.textContent.includes('No functions yet')`)
	b.shot("functions-empty")

	t.Run("the secret is kept nowhere", func(t *testing.T) {
		kept, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie + document.body.innerHTML`))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(kept, secret) {
			t.Fatal("the access key secret is in the page's storage, cookies or DOM after sign-in")
		}
	})

	t.Run("the fallback signer matches api.Sign", func(t *testing.T) {
		// Pages that are not a secure context have no crypto.subtle and
		// sign with sha256.js.
		const canonical = "POST\n/fcd/v1/session\n\nhost:h\n\nhost\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
		js := fmt.Sprintf(`import('./sha256.js').then((m) => {
			const e = new TextEncoder();
			return m.hex(m.hmacSHA256(e.encode(%q), e.encode('ACS3-HMAC-SHA256\n' + m.hex(m.sha256(e.encode(%q))))));
		})`, secret, canonical)
		got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		if want := api.Sign(secret, canonical); got != want {
			t.Fatalf("sha256.js signs %q, want %q", got, want)
		}
	})

	b.route("#/new")
	b.waitFor("the create form", `!!document.getElementById('functionName')`)
	b.do("fill the form",
		chromedp.SendKeys(chromedp.ID("functionName"), "hello"),
		chromedp.SendKeys(chromedp.ID("image"), refs[images.Echo]),
		chromedp.SetValue(chromedp.ID("memorySize"), "100"),
		chromedp.Click(chromedp.ID("save-function")))
	b.waitFor("FC's validation message", `document.querySelector('.error')?.textContent.includes('memorySize 100 is invalid')`)
	b.shot("function-new-invalid")
	b.do("fix the memory size",
		chromedp.SetValue(chromedp.ID("memorySize"), "128"),
		chromedp.Click(chromedp.ID("save-function")))
	b.waitFor("the function's page", `location.hash === '#/functions/hello' && !!document.getElementById('invoke')`)

	b.do("invoke", chromedp.Click(chromedp.ID("invoke")))
	b.waitFor("the invocation's answer", `document.getElementById('invoke-body')?.textContent === '{"hello":"console"}'`)
	// The panel refreshes after the invocation: the instance it started
	// is listed (ListInstances) with its state and age.
	b.waitFor("the started instance", `[...document.querySelectorAll('tr[data-instance-id]')].some((r) => r.textContent.includes('Running'))`)
	if row := b.text("tr[data-instance-id]"); !strings.Contains(row, "LATEST") {
		t.Errorf("instance row %q: want its version LATEST", row)
	}
	b.shot("function-detail")

	if shots != "" {
		// More requests, so the charts have something to draw.
		c := sdkClient(t, d, secret)
		for i := range 20 {
			if _, _, err := invoke(c, "hello", fmt.Sprintf(`{"n":%d}`, i)); err != nil {
				t.Fatal(err)
			}
		}
	}

	b.route("#/invocations/hello")
	b.waitFor("the cold invocation's waterfall", `!!document.querySelector('tr.cold-row') && !!document.querySelector('#waterfall svg.waterfall')`)
	wf := b.text("#waterfall")
	for _, want := range []string{"pull", "probe", "first response"} {
		if !strings.Contains(wf, want) {
			t.Errorf("waterfall %q: want a %q phase", wf, want)
		}
	}
	// A bar for each step the full pull and the instance took: the
	// image was new to this fcd, so its layers were fetched.
	bars, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#waterfall rect[data-phase]')].map((r) => r.dataset.phase)`))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"resolve", "fetch", "mount", "rootfs", "network", "container", "task", "task_start", "probe", "first_response"} {
		if !slices.Contains(bars, want) {
			t.Errorf("waterfall bars %v: want one for %s", bars, want)
		}
	}
	// The invocation the console made answered 200, and the list says so.
	b.waitFor("the invocation's HTTP status", `!!document.querySelector('tr.cold-row .http-status[data-status="200"]')`)
	b.shot("invocations")

	b.route("#/logs/hello")
	b.waitFor("the request's log lines", `document.getElementById('log-lines')?.textContent.includes('FC Invoke End RequestId')`)
	b.shot("logs")

	if shots != "" {
		b.route("#/metrics")
		b.waitFor("the metrics charts", `document.querySelectorAll('svg.chart').length >= 3`)
		b.shot("metrics")
		b.route("#/cost")
		b.waitFor("the cost chart", `!!document.querySelector('svg.chart')`)
		b.shot("cost")
		b.route("#/acceleration")
		b.waitFor("the acceleration page", `!!document.getElementById('accel-image')`)
		b.do("start a conversion", chromedp.SendKeys(chromedp.ID("accel-image"), refs[images.Echo]), chromedp.Click(chromedp.ID("accel-start")))
		b.waitFor("the job", `!!document.querySelector('.badge.Preparing, .badge.Ready, .badge.Failed')`)
		b.shot("acceleration")
		b.route("#/functions")
		b.waitFor("the function list", `!!document.querySelector('tr[data-name="hello"]')`)
		b.shot("functions")
		b.route("#/functions/hello/edit")
		b.waitFor("the edit form", `!!document.getElementById('save-function')`)
		b.shot("function-edit")
	}

	b.route("#/functions/hello")
	b.waitFor("the function's page", `!!document.getElementById('delete-function')`)
	b.do("delete", chromedp.Click(chromedp.ID("delete-function")), chromedp.Click(chromedp.ID("delete-function")))
	b.waitFor("the empty list again", `location.hash === '#/functions' && document.body.textContent.includes('No functions yet')`)
	if _, err := sdkClient(t, d, secret).GetFunction(dara.String("hello"), &fc.GetFunctionRequest{}); err == nil {
		t.Fatal("GetFunction hello after deleting it in the console: got it, want FunctionNotFound")
	}

	b.do("sign out", chromedp.Click(chromedp.ID("sign-out")))
	b.waitFor("the sign-in form", `!!document.getElementById('ak-id')`)
	resp, err := http.Get("http://" + d.endpoint + "/fcd/v1/session")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("GET /fcd/v1/session unsigned: got %d, want 403", resp.StatusCode)
	}
	b.checkErrors("end")
}
