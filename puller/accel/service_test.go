package accel

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/types"
	bolt "go.etcd.io/bbolt"

	"github.com/fcd-dev/fcd/examples/images"
	"github.com/fcd-dev/fcd/puller/gzindex"
)

func openDB(t testing.TB, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// gatedConverter is a Converts that counts calls and the conversions in
// flight, and can hold conversions until hold is closed or their context
// ends, or fail them (fail), delegating the rest to a real Converter.
type gatedConverter struct {
	real    *Converter
	hold    atomic.Pointer[chan struct{}]
	fail    atomic.Pointer[error]
	started chan string // receives the ref of every conversion started

	calls, inFlight, maxInFlight atomic.Int32
}

func newGated(c *Converter) *gatedConverter {
	return &gatedConverter{real: c, started: make(chan string, 16)}
}

func (g *gatedConverter) Resolve(ctx context.Context, ref string) (string, error) {
	return g.real.Resolve(ctx, ref)
}

func (g *gatedConverter) Convert(ctx context.Context, req Request) (Result, error) {
	g.calls.Add(1)
	n := g.inFlight.Add(1)
	defer g.inFlight.Add(-1)
	for {
		m := g.maxInFlight.Load()
		if n <= m || g.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	g.started <- req.Ref
	if h := g.hold.Load(); h != nil {
		select {
		case <-*h:
		case <-ctx.Done():
			return Result{}, ctx.Err()
		}
	}
	if err := g.fail.Load(); err != nil {
		return Result{}, *err
	}
	return g.real.Convert(ctx, req)
}

// webhook records the events POSTed to it.
type webhook struct {
	srv    *httptest.Server
	events chan JobEvent
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{events: make(chan JobEvent, 16)}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var ev JobEvent
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		w.events <- ev
	}))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *webhook) next(t *testing.T) JobEvent {
	t.Helper()
	select {
	case ev := <-w.events:
		return ev
	case <-time.After(2 * time.Minute):
		t.Fatal("no webhook call within 2 minutes")
		return JobEvent{}
	}
}

// runService runs s until the test ends or stop is called.
func runService(t *testing.T, s *Service) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestServiceLifecycle(t *testing.T) {
	host := testRegistry(t)
	ref := host + "/svc/app:v1"
	push(t, ref, generatedImage(t, compression.GZip, types.OCILayer))
	hook := newWebhook(t)
	db := openDB(t, filepath.Join(t.TempDir(), "fcd.db"))
	g := newGated(NewConverter(Options{TempDir: t.TempDir()}))
	s, err := NewService(db, g, ServiceOptions{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetSettings(context.Background(), Settings{Repository: host + "/svc/app", Webhook: hook.srv.URL}); err != nil {
		t.Fatal(err)
	}
	runService(t, s)
	ctx := context.Background()

	// A failure keeps its reason.
	boom := errors.New("registry on fire")
	g.fail.Store(&boom)
	job, err := s.Accelerate(ctx, Request{Ref: ref, Mode: ModeFull})
	if err != nil || job.State != StatePreparing || !strings.HasPrefix(job.Digest, "sha256:") {
		t.Fatalf("Accelerate: got %+v, %v; want a Preparing job", job, err)
	}
	<-g.started
	ev := hook.next(t)
	if ev.Event != "acceleration.failed" || ev.Job.State != StateFailed || !strings.Contains(ev.Job.Error, "on fire") {
		t.Fatalf("got event %+v, want acceleration.failed with the reason", ev)
	}
	if got, _ := s.Job(ctx, ref); got.State != StateFailed || got.Error != ev.Job.Error {
		t.Errorf("Job after failure: got %+v", got)
	}
	if st := s.FunctionStatus(ref, true); st.State != StateFailed || !strings.Contains(st.Reason, "on fire") {
		t.Errorf("FunctionStatus after failure: got %+v", st)
	}

	// A retry, asked for three times while converting, converts once.
	g.fail.Store(nil)
	hold := make(chan struct{})
	g.hold.Store(&hold)
	for i := range 3 {
		j, err := s.Accelerate(ctx, Request{Ref: ref, Mode: ModeFull})
		if err != nil || j.State != StatePreparing {
			t.Fatalf("retry: got %+v, %v", j, err)
		}
		if i == 0 {
			<-g.started
		}
	}
	close(hold)
	ev = hook.next(t)
	if ev.Event != "acceleration.ready" || ev.Job.Result == nil || ev.Job.Result.Target != ref+TagSuffix {
		t.Fatalf("got event %+v, want acceleration.ready for %s", ev, ref+TagSuffix)
	}
	if got := g.maxInFlight.Load(); got != 1 {
		t.Errorf("got %d conversions of one digest at once, want 1", got)
	}
	job, _ = s.Job(ctx, ref)
	if job.State != StateReady || job.Attempts != 2 || job.Error != "" || job.Progress.LayersDone != 3 {
		t.Errorf("Job: got %+v, want Ready after 2 attempts with 3 layers done", job)
	}
	if key := host + "/svc/app@" + job.Digest; job.Key() != key {
		t.Errorf("Key: got %s, want %s", job.Key(), key)
	}
	for _, by := range []string{job.Key(), job.Digest} {
		if got, err := s.Job(ctx, by); err != nil || got.Key() != job.Key() {
			t.Errorf("Job by %s: got %+v, %v", by, got, err)
		}
	}

	res, err := s.Resolve(ctx, ref)
	if err != nil || !res.Accelerated || res.Ref != host+"/svc/app@"+job.Result.TargetDigest || res.Source != host+"/svc/app@"+job.Digest {
		t.Errorf("Resolve: got %+v, %v; want the accelerated image pinned", res, err)
	}
	st := s.FunctionStatus(ref, true)
	if st.State != StateReady || st.ResolvedImage != res.Ref {
		t.Errorf("FunctionStatus Default: got %+v, want Ready and %s", st, res.Ref)
	}
	if st := s.FunctionStatus(ref, false); st.ResolvedImage != res.Source {
		t.Errorf("FunctionStatus None: got %+v, want %s", st, res.Source)
	}
	all, err := s.Jobs(ctx)
	if err != nil || len(all) != 1 {
		t.Errorf("Jobs: got %d, %v; want 1", len(all), err)
	}
}

// Stopping the runner mid-conversion (fcd killed) and reopening the bbolt
// file in a new Service finishes the job.
func TestServiceRestart(t *testing.T) {
	host := testRegistry(t)
	ref := host + "/svc/restart:v1"
	push(t, ref, generatedImage(t, compression.GZip, types.OCILayer))
	path := filepath.Join(t.TempDir(), "fcd.db")
	ctx := context.Background()

	db := openDB(t, path)
	g := newGated(NewConverter(Options{TempDir: t.TempDir()}))
	hold := make(chan struct{})
	g.hold.Store(&hold)
	s, err := NewService(db, g, ServiceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stop := runService(t, s)
	job, err := s.Accelerate(ctx, Request{Ref: ref, Mode: ModeIndexOnly})
	if err != nil {
		t.Fatal(err)
	}
	<-g.started
	stop()
	if j, _ := s.Job(ctx, ref); j.State != StatePreparing || j.Attempts != 1 {
		t.Fatalf("after the stop: got %+v, want Preparing after 1 attempt", j)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openDB(t, path)
	hook := newWebhook(t)
	// The webhook was not set when the job was recorded; set it on the
	// record as an operator would by setting the repository first.
	s2, err := NewService(db, NewConverter(Options{TempDir: t.TempDir()}), ServiceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.update(job.Key(), func(j *Job) { j.Webhook = hook.srv.URL }); err != nil {
		t.Fatal(err)
	}
	runService(t, s2)
	ev := hook.next(t)
	if ev.Event != "acceleration.ready" || ev.Job.Attempts != 2 || ev.Job.Digest != job.Digest {
		t.Fatalf("got event %+v, want the job Ready on its second attempt", ev)
	}
	if ev.Job.Result.Reused {
		t.Error("the first, interrupted attempt wrote nothing, yet the result was reused")
	}
}

func TestServiceOnPush(t *testing.T) {
	host := testRegistry(t)
	push(t, host+"/push/on:v1", generatedImage(t, compression.GZip, types.OCILayer))
	db := openDB(t, filepath.Join(t.TempDir(), "fcd.db"))
	g := newGated(NewConverter(Options{}))
	s, err := NewService(db, g, ServiceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	hook := newWebhook(t)
	if _, err := s.SetSettings(ctx, Settings{Repository: host + "/push/on", Enabled: true, Mode: ModeIndexOnly, Webhook: hook.srv.URL}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetSettings(ctx, Settings{Repository: host + "/push/off", Enabled: false}); err != nil {
		t.Fatal(err)
	}
	digest, err := g.Resolve(ctx, host+"/push/on:v1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		repo, tag string
		want      bool
	}{
		{host + "/push/off", "v1", false},
		{host + "/push/none", "v1", false},
		{host + "/push/on", "v1" + TagSuffix, false},
		{host + "/push/on", "sha256-" + strings.Repeat("ab", 32), false},
		{host + "/push/on", "v1", true},
	} {
		queued, err := s.OnPush(ctx, tc.repo, tc.tag, digest)
		if err != nil || queued != tc.want {
			t.Errorf("OnPush(%s:%s): got %v, %v; want %v", tc.repo, tc.tag, queued, err, tc.want)
		}
	}
	runService(t, s)
	ev := hook.next(t)
	if ev.Event != "acceleration.ready" || ev.Job.Ref != host+"/push/on:v1" || ev.Job.Mode != ModeIndexOnly {
		t.Fatalf("got %+v, want the pushed tag converted index-only", ev)
	}
	if n := g.calls.Load(); n != 1 {
		t.Errorf("got %d conversions, want 1", n)
	}
}

// FunctionStatus of an image with no job reports Preparing and queues an
// index-only conversion, which Run resolves and converts.
func ended(j Job) bool { return j.State != StatePreparing }

func TestServiceOnDemand(t *testing.T) {
	host := testRegistry(t)
	ref := host + "/demand/app:v1"
	push(t, ref, generatedImage(t, compression.GZip, types.OCILayer))
	db := openDB(t, filepath.Join(t.TempDir(), "fcd.db"))
	g := newGated(NewConverter(Options{}))
	s, err := NewService(db, g, ServiceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if st := s.FunctionStatus(ref, true); st.State != StatePreparing {
		t.Fatalf("got %+v, want Preparing", st)
	}
	if st := s.FunctionStatus(host+"/demand/missing:v1", true); st.State != StatePreparing {
		t.Fatalf("got %+v, want Preparing", st)
	}
	runService(t, s)
	if got := <-g.started; got != ref {
		t.Fatalf("got conversion of %s, want %s", got, ref)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	j, err := s.Wait(wctx, ref, ended)
	if err != nil || j.State != StateReady || j.Mode != ModeIndexOnly {
		t.Fatalf("got %+v, %v; want Ready index-only", j, err)
	}
	// An image that is not there (yet) stays Preparing: it may be pushed.
	if st := s.FunctionStatus(host+"/demand/missing:v1", true); st.State != StatePreparing {
		t.Errorf("got %+v, want Preparing", st)
	}

	// A refusal is recorded Failed with its reason, and not retried.
	other, _ := images.FromBinary("other", []byte("other"))
	od, _ := other.Digest()
	pinned := host + "/demand/other@" + od.String()
	push(t, pinned, other)
	if st := s.FunctionStatus(pinned, true); st.State != StatePreparing {
		t.Errorf("got %+v, want Preparing", st)
	}
	j, err = s.Wait(wctx, pinned, func(j Job) bool { return j.State == StateFailed })
	if err != nil || !strings.Contains(j.Error, "is a digest") {
		t.Errorf("on-demand digest reference: got %+v, %v; want Failed saying a tag is needed", j, err)
	}
	res, err := s.Resolve(ctx, ref)
	if err != nil || !res.Accelerated || res.Ref != res.Source || !strings.Contains(res.Index, "@sha256:") {
		t.Errorf("Resolve index-only: got %+v, %v; want the original with its index", res, err)
	}
}

func TestMigrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fcd.db")
	db := openDB(t, path)
	// A file an fcd with the first schema left.
	if err := schema.Migrate(db, 1); err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketRoot).Bucket(bucketIndexes) != nil {
			t.Error("version 1 has the indexes bucket")
		}
		return nil
	})
	if _, err := NewService(db, nil, ServiceOptions{}); err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *bolt.Tx) error {
		if v := schema.Version(tx); v != SchemaVersion() {
			t.Errorf("got version %d, want %d", v, SchemaVersion())
		}
		for _, b := range [][]byte{bucketJobs, bucketRefs, bucketRepos, bucketIndexes} {
			if tx.Bucket(bucketRoot).Bucket(b) == nil {
				t.Errorf("bucket %s missing", b)
			}
		}
		return nil
	})
	db.Update(func(tx *bolt.Tx) error { return schema.SetVersion(tx, SchemaVersion()+1) })
	if _, err := NewService(db, nil, ServiceOptions{}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("got %v, want a newer schema refused", err)
	}
}

// readOnly refuses every write to the registry behind it, as a registry
// fcd may only pull from does.
func readOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"errors":[{"code":"DENIED","message":"read-only"}]}`))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Index-only conversion of an image in a registry fcd may not push to
// keeps the indexes in fcd's store, and they serve the original layers.
func TestServiceKeepsIndexesLocally(t *testing.T) {
	mem := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	writable := httptest.NewServer(mem)
	t.Cleanup(writable.Close)
	ro := httptest.NewServer(readOnly(mem))
	t.Cleanup(ro.Close)
	img := generatedImage(t, compression.GZip, types.OCILayer)
	push(t, strings.TrimPrefix(writable.URL, "http://")+"/ro/app:v1", img)
	ref := strings.TrimPrefix(ro.URL, "http://") + "/ro/app:v1"

	db := openDB(t, filepath.Join(t.TempDir(), "fcd.db"))
	s, err := NewService(db, NewConverter(Options{}), ServiceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	runService(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := s.Accelerate(ctx, Request{Ref: ref, Mode: ModeIndexOnly}); err != nil {
		t.Fatal(err)
	}
	j, err := s.Wait(ctx, ref, ended)
	if err != nil || j.State != StateReady || j.Result == nil || !j.Result.Local || j.Result.Target != "" {
		t.Fatalf("got %+v, %v; want Ready with the indexes kept locally", j, err)
	}
	res, err := s.Resolve(ctx, ref)
	if err != nil || !res.Accelerated || !res.LocalIndex || res.Ref != res.Source {
		t.Errorf("Resolve: got %+v, %v; want the original with a local index", res, err)
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		d, _ := l.Digest()
		data, err := s.Index(ctx, d.String())
		if err != nil {
			t.Fatal(err)
		}
		x, err := gzindex.Load(data, d.String())
		if err != nil {
			t.Fatal(err)
		}
		rc, _ := l.Compressed()
		blob, _ := io.ReadAll(rc)
		rc.Close()
		r := gzindex.NewReader(x, gzindex.FileFetcher(bytes.NewReader(blob)))
		for i := range x.Entries {
			if e := &x.Entries[i]; e.IsRegular() {
				if _, err := r.ReadFile(ctx, e); err != nil {
					t.Errorf("%s: %v", e.Name, err)
				}
			}
		}
	}
	if _, err := s.Index(ctx, "sha256:"+strings.Repeat("0", 64)); !errors.Is(err, ErrNotFound) {
		t.Errorf("Index of an unknown layer: got %v, want ErrNotFound", err)
	}
}

// TestMigrationV3 opens a file a version-2 fcd left, whose jobs are keyed
// by digest alone: each job moves to its repository and digest and goes
// on (the Ready one stays Ready, its image in use; the Preparing one is
// converted), a job naming no repository is dropped, and a tag of another
// repository that shared a job gets its own when asked for (Ensure).
func TestMigrationV3(t *testing.T) {
	host := testRegistry(t)
	shared := generatedImage(t, compression.GZip, types.OCILayer)
	other := linuxAMD64(t, imageOf(t, gzipTar(t, []tarFile{{name: "app", typ: tar.TypeReg, mode: 0o755, data: []byte("other")}})))
	theirs, mine, mineOther := host+"/theirs/app:v1", host+"/mine/app:v1", host+"/mine/app:v2"
	push(t, theirs, shared)
	push(t, mine, shared)
	push(t, mineOther, other)
	d, _ := shared.Digest()
	od, _ := other.Digest()
	lost := "sha256:" + strings.Repeat("1", 64)
	res, err := NewConverter(Options{TempDir: t.TempDir()}).Convert(context.Background(), Request{Ref: theirs, Mode: ModeFull})
	if err != nil {
		t.Fatal(err)
	}

	db := openDB(t, filepath.Join(t.TempDir(), "fcd.db"))
	if err := schema.Migrate(db, 2); err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	refused := host + "/mine/app:v1" + TagSuffix
	err = db.Update(func(tx *bolt.Tx) error {
		for _, j := range []Job{
			{Digest: d.String(), Ref: theirs, Mode: ModeFull, State: StateReady, Result: &res, Attempts: 1, Created: created, Updated: created},
			{Digest: od.String(), Ref: mineOther, Mode: ModeIndexOnly, State: StatePreparing, Attempts: 1, Created: created, Updated: created},
			{Digest: lost, Mode: ModeFull, State: StatePreparing, Created: created, Updated: created},
		} {
			if err := putJSON(jobs(tx), j.Digest, &j); err != nil {
				return err
			}
		}
		// A refusal (Ensure) is keyed by its reference.
		if err := putJSON(jobs(tx), refused, &Job{Ref: refused, Mode: ModeIndexOnly, State: StateFailed, Error: "accelerated tag", Created: created, Updated: created}); err != nil {
			return err
		}
		for ref, v := range map[string]string{theirs: d.String(), mine: d.String(), mineOther: od.String(), host + "/lost/app:v1": lost, refused: refused} {
			if err := refs(tx).Put([]byte(ref), []byte(v)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	s, err := NewService(db, NewConverter(Options{TempDir: t.TempDir()}), ServiceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var keys, refKeys []string
	db.View(func(tx *bolt.Tx) error {
		if v := schema.Version(tx); v != 3 {
			t.Errorf("got version %d, want 3", v)
		}
		jobs(tx).ForEach(func(k, _ []byte) error { keys = append(keys, string(k)); return nil })
		refs(tx).ForEach(func(k, v []byte) error { refKeys = append(refKeys, string(k)+" "+string(v)); return nil })
		return nil
	})
	mineKey, theirsKey := host+"/mine/app@"+od.String(), host+"/theirs/app@"+d.String()
	wantKeys := []string{mineKey, refused, theirsKey}
	slices.Sort(wantKeys)
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("jobs: got keys %q, want %q", keys, wantKeys)
	}
	wantRefs := []string{refused + " " + refused, mineOther + " " + mineKey, theirs + " " + theirsKey}
	slices.Sort(wantRefs)
	if !slices.Equal(refKeys, wantRefs) {
		t.Errorf("refs: got %q, want %q", refKeys, wantRefs)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if j, err := s.Job(ctx, theirs); err != nil || j.State != StateReady || j.Result == nil || j.Result.TargetDigest != res.TargetDigest {
		t.Errorf("Job %s: got %+v, %v; want it Ready as before", theirs, j, err)
	}
	// Resolve needs no conversion: the Ready job is used as it was.
	want := host + "/theirs/app@" + res.TargetDigest
	if r, err := s.Resolve(ctx, theirs); err != nil || !r.Accelerated || r.Ref != want {
		t.Errorf("Resolve %s: got %+v, %v; want %s", theirs, r, err, want)
	}
	if j, err := s.Job(ctx, mine); !errors.Is(err, ErrNotFound) {
		t.Errorf("Job %s: got %+v, %v; want none: the job it shared is %s's", mine, j, err, theirs)
	}
	if st := s.FunctionStatus(mine, true); st.State != StatePreparing {
		t.Errorf("FunctionStatus %s: got %+v, want Preparing, its own conversion queued", mine, st)
	}
	runService(t, s)
	if j, err := s.Wait(ctx, mineOther, ended); err != nil || j.State != StateReady || j.Attempts != 2 {
		t.Errorf("%s: got %+v, %v; want the Preparing job resumed and Ready", mineOther, j, err)
	}
	j, err := s.Wait(ctx, mine, ended)
	if err != nil || j.State != StateReady || j.Result == nil || j.Result.Source != host+"/mine/app@"+d.String() {
		t.Fatalf("%s: got %+v, %v; want its own job Ready", mine, j, err)
	}
	if r, err := s.Resolve(ctx, mine); err != nil || !r.Accelerated || !strings.HasPrefix(r.Lazy, mine+TagSuffix+"@") {
		t.Errorf("Resolve %s: got %+v, %v; want its own accelerated form", mine, r, err)
	}
	if j, err := s.Job(ctx, theirs); err != nil || j.State != StateReady || j.Result.TargetDigest != res.TargetDigest || j.Attempts != 1 {
		t.Errorf("Job %s after the conversions: got %+v, %v; want it untouched", theirs, j, err)
	}
}
