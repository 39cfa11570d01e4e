package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	fc "github.com/alibabacloud-go/fc-20230330/v4/client"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/billing"
	"github.com/fcd-dev/fcd/examples/images"
	"github.com/fcd-dev/fcd/instance"
	"github.com/fcd-dev/fcd/internal/testenv"
	"github.com/fcd-dev/fcd/puller/accel"
)

// hookEvents serves a webhook that forwards the acceleration events it
// receives.
func hookEvents(t *testing.T) (string, <-chan accel.JobEvent) {
	events := make(chan accel.JobEvent, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev accel.JobEvent
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		events <- ev
	}))
	t.Cleanup(srv.Close)
	return srv.URL, events
}

func nextEvent(t *testing.T, events <-chan accel.JobEvent) accel.JobEvent {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(3 * time.Minute):
		t.Fatal("no acceleration event within 3 minutes")
		return accel.JobEvent{}
	}
}

func enableAcceleration(t *testing.T, d *daemon, repo string, set accel.Settings) {
	t.Helper()
	if status := call(t, d, http.MethodPut, "/fcd/v1/acceleration/repositories/"+url.PathEscape(repo), set, nil); status != http.StatusOK {
		t.Fatalf("enable acceleration on %s: status %d", repo, status)
	}
}

func pushExample(t *testing.T, d *daemon, ref string) v1.Hash {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	img, err := images.Build(ctx, images.Echo)
	if err != nil {
		t.Fatal(err)
	}
	if err := images.Push(ctx, ref, img, &authn.Basic{Username: d.creds.AccessKeyID, Password: d.creds.AccessKeySecret}); err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	return digest
}

func getFunction(t *testing.T, c *fc.Client, name string) *fc.Function {
	t.Helper()
	got, err := c.GetFunction(dara.String(name), &fc.GetFunctionRequest{})
	if err != nil {
		t.Fatalf("GetFunction %s: %v", name, err)
	}
	return got.Body
}

// TestSDKAccelerationOnPush pushes a new tag to an acceleration-enabled
// repository of the embedded registry: <tag>_accelerated appears and
// GetFunction goes from Preparing to Ready with no other action.
func TestSDKAccelerationOnPush(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	repo := d.creds.Registry + "/examples/echo"
	ref := repo + ":v1"
	hook, events := hookEvents(t)
	enableAcceleration(t, d, repo, accel.Settings{Enabled: true, Mode: accel.ModeFull, Webhook: hook})
	c := sdkClient(t, d, d.creds.AccessKeySecret)
	for _, f := range []struct{ name, acceleration string }{{"fast", api.AccelerationDefault}, {"plain", api.AccelerationNone}} {
		_, err := c.CreateFunction(&fc.CreateFunctionRequest{Body: &fc.CreateFunctionInput{
			FunctionName: dara.String(f.name),
			Runtime:      dara.String("custom-container"),
			CustomContainerConfig: &fc.CustomContainerConfig{
				Image:            dara.String(ref),
				AccelerationType: dara.String(f.acceleration),
			},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}

	// Not pushed yet: Preparing, optimizing.
	fn := getFunction(t, c, "fast")
	if got := fn.CustomContainerConfig.AccelerationInfo; got == nil || dara.StringValue(got.Status) != api.AccelerationPreparing ||
		dara.StringValue(fn.LastUpdateStatusReasonCode) != api.ReasonImageOptimizing {
		t.Fatalf("before the push: got %s, want Preparing and ImageOptimizing", fn.String())
	}

	source := pushExample(t, d, ref)
	ev := nextEvent(t, events)
	if ev.Event != "acceleration.ready" || ev.Job.Digest != source.String() || ev.Job.Ref != ref {
		t.Fatalf("got event %+v, want %s (%s) ready", ev, ref, source)
	}

	fn = getFunction(t, c, "fast")
	cc := fn.CustomContainerConfig
	if got := cc.AccelerationInfo; got == nil || dara.StringValue(got.Status) != api.AccelerationReady {
		t.Fatalf("after the conversion: got %s, want Ready", fn.String())
	}
	want := repo + "@" + ev.Job.Result.TargetDigest
	if got := dara.StringValue(cc.ResolvedImageUri); got != want {
		t.Errorf("resolvedImageUri: got %s, want the accelerated image %s", got, want)
	}
	if dara.StringValue(fn.LastUpdateStatusReasonCode) == api.ReasonImageOptimizing {
		t.Errorf("lastUpdateStatusReasonCode still ImageOptimizing when Ready")
	}
	plain := getFunction(t, c, "plain").CustomContainerConfig
	if got := dara.StringValue(plain.ResolvedImageUri); got != repo+"@"+source.String() || plain.AccelerationInfo != nil {
		t.Errorf("accelerationType None: got resolvedImageUri %s and %v, want the original %s@%s", got, plain.AccelerationInfo, repo, source)
	}

	// The accelerated image is in the registry, tagged and annotated with
	// its source.
	tag, _ := name.ParseReference(ref+accel.TagSuffix, name.Insecure)
	img, err := remote.Image(tag, remote.WithAuth(&authn.Basic{Username: d.creds.AccessKeyID, Password: d.creds.AccessKeySecret}))
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := img.Digest(); d.String() != ev.Job.Result.TargetDigest || m.Annotations[accel.AnnotationSource] != source.String() {
		t.Errorf("accelerated image %s: got digest %s and annotations %v", tag, d, m.Annotations)
	}
}

// holdConverter holds every conversion until its context ends, as if fcd
// were killed in the middle of it, and reports each start.
type holdConverter struct {
	accel.Converts
	started chan string
}

func (h holdConverter) Convert(ctx context.Context, req accel.Request) (accel.Result, error) {
	h.started <- req.Ref
	<-ctx.Done()
	return accel.Result{}, ctx.Err()
}

// TestAccelerationResumesAfterRestart stops fcd in the middle of a
// conversion; the next fcd on the same data dir finishes it.
func TestAccelerationResumesAfterRestart(t *testing.T) {
	dataDir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	registryAddr := ln.Addr().String()
	ln.Close()
	args := []string{"-registry-address", registryAddr}

	started := make(chan string, 4)
	d := startDaemonHook(t, dataDir, args, func(c accel.Converts) accel.Converts { return holdConverter{c, started} })
	repo := d.creds.Registry + "/examples/restart"
	hook, events := hookEvents(t)
	enableAcceleration(t, d, repo, accel.Settings{Enabled: true, Mode: accel.ModeIndexOnly, Webhook: hook})
	source := pushExample(t, d, repo+":v1")
	if got := <-started; got != repo+":v1" {
		t.Fatalf("got conversion of %s, want %s:v1", got, repo)
	}
	var job accel.Job
	if status := call(t, d, http.MethodGet, "/fcd/v1/acceleration/jobs/"+url.PathEscape(repo+":v1"), nil, &job); status != http.StatusOK || job.State != accel.StatePreparing {
		t.Fatalf("during the conversion: status %d, job %+v; want Preparing", status, job)
	}
	d.stop()

	d = startDaemonWith(t, dataDir, args, false)
	ev := nextEvent(t, events)
	if ev.Event != "acceleration.ready" || ev.Job.Digest != source.String() || ev.Job.Attempts != 2 {
		t.Fatalf("got event %+v, want %s ready on its second attempt", ev, source)
	}
	if status := call(t, d, http.MethodGet, "/fcd/v1/acceleration/jobs/"+url.PathEscape(source.String()), nil, &job); status != http.StatusOK || job.State != accel.StateReady {
		t.Fatalf("after the restart: status %d, job %+v; want Ready", status, job)
	}
}

// startDaemonHook is startDaemonWith (control API only) with the image
// converter wrapped.
func startDaemonHook(t *testing.T, dataDir string, args []string, wrap func(accel.Converts) accel.Converts) *daemon {
	t.Helper()
	return startDaemonConfig(t, dataDir, args, func(cfg *Config) {
		cfg.noRuntime, cfg.wrapConverter = true, wrap
	})
}

// createPulling creates function name of image with a role that may pull
// from examples/*, and returns an SDK client of d.
func createPulling(t *testing.T, d *daemon, name, image string) *fc.Client {
	t.Helper()
	if status := call(t, d, http.MethodPost, "/fcd/v1/roles", map[string]any{"roleName": "puller", "repositories": []string{"examples/*"}}, nil); status != http.StatusOK {
		t.Fatalf("create role: status %d", status)
	}
	c := sdkClient(t, d, d.creds.AccessKeySecret)
	if err := createWithRole(c, name, image, "acs:ram::1000000000000000:role/puller"); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAcceleratedImageRuns starts an instance of a function with
// accelerationType Default once its image's eStargz form is Ready: the
// instance pulls and runs the accelerated image (containerd's full pull),
// as the pull's billing record shows.
func TestAcceleratedImageRuns(t *testing.T) {
	requireRuntime(t)
	testenv.RequireFile(t, "/dev/fuse", "fuse3")
	for i, mode := range []accel.Mode{accel.ModeFull, accel.ModeIndexOnly} {
		t.Run(string(mode), func(t *testing.T) {
			dir := t.TempDir()
			d := startDaemonWith(t, dir, []string{"-name", fmt.Sprintf("fcdaccel%d", i), "-subnet", fmt.Sprintf("10.%d.0.0/16", 94+i)}, true)
			repo := d.creds.Registry + "/examples/echo"
			hook, events := hookEvents(t)
			enableAcceleration(t, d, repo, accel.Settings{Enabled: true, Mode: mode, Webhook: hook})
			pushExample(t, d, repo+":v1")
			ev := nextEvent(t, events)
			if ev.Event != "acceleration.ready" {
				t.Fatalf("got %+v, want the conversion ready", ev)
			}
			c := createPulling(t, d, "fast", repo+":v1")
			if _, out, err := invoke(c, "fast", "hello"); err != nil || !strings.Contains(out, "hello") {
				t.Fatalf("invoke: got %q, %v", out, err)
			}
			// Several instances starting at once exec the same binary
			// through the shared layer while its file materializes.
			if _, err := c.UpdateFunction(dara.String("fast"), &fc.UpdateFunctionRequest{Body: &fc.UpdateFunctionInput{InstanceConcurrency: dara.Int32(1)}}); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for i := range 6 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := sdkClient(t, d, d.creds.AccessKeySecret)
					if _, out, err := invoke(c, "fast", fmt.Sprint("hello ", i)); err != nil || !strings.Contains(out, "hello") {
						t.Errorf("concurrent invoke %d: got %q, %v", i, out, err)
					}
				}()
			}
			wg.Wait()
			// The instance runs on the lazily mounted layers, not on an
			// unpacked snapshot.
			if n := fuseMountsUnder(t, filepath.Join(dir, "lazy", "mnt")); n == 0 {
				t.Errorf("got no FUSE layer mounted under %s, want the image mounted lazily", dir)
			}
			// The first start's timeline has the lazy pull's steps: the
			// role's credentials (auth), the TOC or index, the FUSE mounts;
			// and the first response to the request it was made for.
			var starts api.ColdStartsPage
			if status := call(t, d, http.MethodGet, "/fcd/v1/coldstarts/fast?limit=0", nil, &starts); status != http.StatusOK || len(starts.ColdStarts) == 0 {
				t.Fatalf("coldstarts: status %d, %+v; want the starts", status, starts)
			}
			first := starts.ColdStarts[0]
			if want, _ := instance.DefaultRuntime(); first.Runtime != want {
				t.Errorf("first start's runtime: got %q, want fcd's default %q", first.Runtime, want)
			}
			for _, want := range []string{"pull", "resolve", "auth", "index", "mount", "probe", "first_response"} {
				if !slices.ContainsFunc(first.Phases, func(p api.ColdStartPhase) bool { return p.Name == want && p.Ms > 0 }) {
					t.Errorf("first start's phases %+v: want %s timed", first.Phases, want)
				}
			}
			var page struct{ Records []billing.Record }
			if status := call(t, d, http.MethodGet, "/fcd/v1/billing?function=fast&kind=pull", nil, &page); status != http.StatusOK || len(page.Records) < 2 {
				t.Fatalf("billing: status %d, records %+v; want the first start and more", status, page.Records)
			}
			for i, r := range page.Records {
				if want := "@" + ev.Job.Result.TargetDigest; !strings.HasSuffix(r.Image, want) {
					t.Errorf("pull %d: %s, want the accelerated image %s", i, r.Image, want)
				}
				// The first start fetched the image; the later ones found
				// every byte they read on the host.
				if first := i == 0; r.CacheHit == first || (r.Bytes > 0) != first {
					t.Errorf("pull %d: cache hit %v after %d bytes, want a hit only after the first", i, r.CacheHit, r.Bytes)
				}
			}
		})
	}
}

// fuseMountsUnder counts the FUSE mounts below dir.
func fuseMountsUnder(t *testing.T, dir string) int {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") && strings.Contains(line, " - fuse") {
			n++
		}
	}
	return n
}

// TestAcceleratedImageRebake: the first lazy start of a full-mode image
// converted without a start-up record records one, and fcd converts the
// image again with the record baked in (-accel-rebake-delay); the job
// stays Ready, and the next cold start runs the new image.
func TestAcceleratedImageRebake(t *testing.T) {
	requireRuntime(t)
	testenv.RequireFile(t, "/dev/fuse", "fuse3")
	// Recorded until ready; converted again at once.
	d := startDaemonWith(t, t.TempDir(), []string{"-name", "fcdrebake", "-subnet", "10.97.0.0/16",
		"-lazy-record-settle", "-1ns", "-accel-rebake-delay", "1ms", "-idle-timeout", "1s"}, true)
	repo := d.creds.Registry + "/examples/rebake"
	hook, events := hookEvents(t)
	enableAcceleration(t, d, repo, accel.Settings{Enabled: true, Mode: accel.ModeFull, Webhook: hook})
	pushExample(t, d, repo+":v1")
	ev := nextEvent(t, events)
	if ev.Event != "acceleration.ready" || ev.Job.Result.StartupFiles != 0 {
		t.Fatalf("got %+v, want the conversion ready, without a record", ev)
	}
	c := createPulling(t, d, "rebaked", repo+":v1")
	if _, out, err := invoke(c, "rebaked", "hello"); err != nil || !strings.Contains(out, "hello") {
		t.Fatalf("invoke: got %q, %v", out, err)
	}
	var job accel.Job
	deadline := time.Now().Add(2 * time.Minute)
	for {
		job = accel.Job{}
		if status := call(t, d, http.MethodGet, "/fcd/v1/acceleration/jobs/"+url.PathEscape(repo+":v1"), nil, &job); status != http.StatusOK || job.State != accel.StateReady {
			t.Fatalf("job: status %d, %+v; want it Ready throughout", status, job)
		}
		if job.Result.StartupFiles > 0 && job.RebakeAt == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no conversion with the start-up record within 2 minutes: job %+v", job)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if job.Result.TargetDigest == ev.Job.Result.TargetDigest {
		t.Fatalf("the image converted again has the first one's digest %s", job.Result.TargetDigest)
	}
	// Once the idle instance is gone, the next cold start pulls the new
	// image.
	deadline = time.Now().Add(time.Minute)
	for {
		list, err := c.ListInstances(dara.String("rebaked"), &fc.ListInstancesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Body.Instances) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the instance was not stopped within a minute of -idle-timeout 1s: %v", list.Body.Instances)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, out, err := invoke(c, "rebaked", "again"); err != nil || !strings.Contains(out, "again") {
		t.Fatalf("invoke: got %q, %v", out, err)
	}
	var page struct{ Records []billing.Record }
	if status := call(t, d, http.MethodGet, "/fcd/v1/billing?function=rebaked&kind=pull", nil, &page); status != http.StatusOK || len(page.Records) != 2 {
		t.Fatalf("billing: status %d, %+v; want two pulls", status, page.Records)
	}
	if got := page.Records[1].Image; !strings.HasSuffix(got, "@"+job.Result.TargetDigest) {
		t.Errorf("second cold start pulled %s, want the image with the record, %s", got, job.Result.TargetDigest)
	}
}
