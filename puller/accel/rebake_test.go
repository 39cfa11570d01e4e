package accel

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// lateRecords is a StartupRecords whose records can be added after the
// Converter is built, as puller/lazy's are.
type lateRecords struct {
	mu    sync.Mutex
	files map[string][]string
}

func (r *lateRecords) set(source string, files []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.files[source] = files
}

func (r *lateRecords) StartupFiles(_ context.Context, source string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.files[source], nil
}

// TestServiceRebake: a full-mode image converted before its source had a
// start-up record is converted again once it has one (Rebake), with the
// record baked in; it stays Ready, and its Result in use, meanwhile.
func TestServiceRebake(t *testing.T) {
	host := testRegistry(t)
	ref := host + "/svc/rebake:v1"
	src := generatedImage(t, compression.GZip, types.OCILayer)
	push(t, ref, src)
	srcDigest, _ := src.Digest()
	idxRef := host + "/svc/rebake-index:v1"
	// Another digest (generatedImage is deterministic), another job.
	push(t, idxRef, mutate.Annotations(generatedImage(t, compression.GZip, types.OCILayer), map[string]string{"test": "index-only"}).(v1.Image))

	records := &lateRecords{files: map[string][]string{}}
	g := newGated(NewConverter(Options{TempDir: t.TempDir(), Records: records}))
	s, err := NewService(openDB(t, filepath.Join(t.TempDir(), "fcd.db")), g, ServiceOptions{RebakeDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runService(t, s)
	ctx := context.Background()
	ready := func(j Job) bool { return j.State != StatePreparing }
	if _, err := s.Accelerate(ctx, Request{Ref: ref, Mode: ModeFull}); err != nil {
		t.Fatal(err)
	}
	first, err := s.Wait(ctx, ref, ready)
	if err != nil || first.State != StateReady || first.Result.StartupFiles != 0 {
		t.Fatalf("first conversion: got %+v, %v; want Ready without a record", first, err)
	}
	idx, err := s.Accelerate(ctx, Request{Ref: idxRef, Mode: ModeIndexOnly})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Wait(ctx, idxRef, ready); err != nil {
		t.Fatal(err)
	}
	<-g.started
	<-g.started

	// Nothing to bake: index-only jobs, unknown sources.
	for _, source := range []string{idx.Digest, "sha256:" + strings.Repeat("0", 64)} {
		if ok, err := s.Rebake(ctx, source); ok || err != nil {
			t.Errorf("Rebake(%s): got %v, %v; want nothing scheduled", source, ok, err)
		}
	}

	recorded := []string{"/usr/lib/app/small-150.py", "/etc/os-release"}
	records.set(srcDigest.String(), recorded)
	hold := make(chan struct{})
	g.hold.Store(&hold)
	if ok, err := s.Rebake(ctx, srcDigest.String()); !ok || err != nil {
		t.Fatalf("Rebake: got %v, %v; want a conversion scheduled", ok, err)
	}
	if ok, _ := s.Rebake(ctx, srcDigest.String()); ok {
		t.Error("a second Rebake scheduled another conversion")
	}
	<-g.started
	during, err := s.Job(ctx, ref)
	if err != nil || during.State != StateReady || during.Result.TargetDigest != first.Result.TargetDigest || during.RebakeAt == nil {
		t.Errorf("while converting again: got %+v, %v; want Ready with the first result", during, err)
	}
	if st := s.FunctionStatus(ref, true); st.State != StateReady {
		t.Errorf("FunctionStatus while converting again: got %+v, want Ready", st)
	}
	close(hold)
	baked, err := s.Wait(ctx, ref, func(j Job) bool { return j.RebakeAt == nil })
	if err != nil {
		t.Fatal(err)
	}
	if baked.State != StateReady || baked.Result.StartupFiles != len(recorded) || baked.Result.TargetDigest == first.Result.TargetDigest {
		t.Fatalf("after Rebake: got %+v; want Ready, a new image with %d start-up files", baked.Result, len(recorded))
	}
	m, err := pull(t, host+"/svc/rebake@"+baked.Result.TargetDigest).Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Annotations[AnnotationStartupFiles]; got != strconv.Itoa(len(recorded)) {
		t.Errorf("annotation %s: got %q, want %d", AnnotationStartupFiles, got, len(recorded))
	}
	if ok, _ := s.Rebake(ctx, srcDigest.String()); ok {
		t.Error("Rebake of an image that has its record scheduled a conversion")
	}
	// Another host (a Converter sharing the registry) finds it current.
	again, err := NewConverter(Options{TempDir: t.TempDir(), Records: records}).Convert(ctx, Request{Ref: ref, Mode: ModeFull})
	if err != nil || !again.Reused || again.StartupFiles != len(recorded) || again.TargetDigest != baked.Result.TargetDigest {
		t.Errorf("Convert after the rebake: got %+v, %v; want the baked image reused", again, err)
	}
	// A fresh request for the job resets nothing.
	if j, _ := s.Accelerate(ctx, Request{Ref: ref, Mode: ModeFull}); j.State != StateReady || j.Result.TargetDigest != baked.Result.TargetDigest {
		t.Errorf("Accelerate after the rebake: got %+v", j)
	}
}

// A rebake waits for ServiceOptions.RebakeDelay, and a negative delay
// turns it off.
func TestServiceRebakeDelay(t *testing.T) {
	host := testRegistry(t)
	ref := host + "/svc/delay:v1"
	src := generatedImage(t, compression.GZip, types.OCILayer)
	push(t, ref, src)
	srcDigest, _ := src.Digest()
	db := openDB(t, filepath.Join(t.TempDir(), "fcd.db"))
	now := time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC)
	s, err := NewService(db, NewConverter(Options{TempDir: t.TempDir()}), ServiceOptions{RebakeDelay: time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	job, err := s.Accelerate(ctx, Request{Ref: ref, Mode: ModeFull})
	if err != nil {
		t.Fatal(err)
	}
	// Run once, to Ready, then stop: the test drives pending itself.
	stop := runService(t, s)
	if _, err := s.Wait(ctx, ref, func(j Job) bool { return j.State != StatePreparing }); err != nil {
		t.Fatal(err)
	}
	stop()
	off, err := NewService(db, NewConverter(Options{}), ServiceOptions{RebakeDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := off.Rebake(ctx, job.Digest); ok || err != nil {
		t.Errorf("Rebake with a negative delay: got %v, %v; want nothing scheduled", ok, err)
	}
	if ok, err := s.Rebake(ctx, job.Digest); !ok || err != nil {
		t.Fatalf("Rebake: got %v, %v", ok, err)
	}
	due, next, err := s.pending()
	if err != nil || len(due) != 0 || !next.Equal(now.Add(time.Hour)) {
		t.Errorf("pending an hour early: got %d due, next %v, %v; want none due, next at %v", len(due), next, err, now.Add(time.Hour))
	}
	now = now.Add(time.Hour)
	if due, _, _ := s.pending(); len(due) != 1 || due[0].Digest != srcDigest.String() {
		t.Errorf("pending when due: got %+v, want the job", due)
	}

}
