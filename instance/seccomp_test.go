package instance

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fcd-dev/fcd/examples/images"
	"github.com/fcd-dev/fcd/internal/testenv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestCrunSeccompFilter starts instances with crun: the first teaches the
// Manager the filter crun compiled from its profile, the next is created
// with that filter (the annotation) and its process holds the very same
// program, so skipping the compilation leaves the sandbox as it was.
func TestCrunSeccompFilter(t *testing.T) {
	e := setup(t)
	testenv.RequireCommand(t, RuntimeCrun, "crun")
	testenv.Require(t, CheckRuntime(RuntimeCrun) == nil, "crun cannot run here: run scripts/cgroup-controllers.sh (make deps)")
	defer useRuntime(e.mgr, e.mgr.opts.Runtime, e.mgr.seccomp != nil)
	useRuntime(e.mgr, RuntimeCrun, true)

	first := start(t, e, Spec{Function: "seccomp", Image: e.refs[images.Echo], MemoryMB: 128})
	if first.teach == nil {
		t.Fatal("first crun start: no spec to learn the filter from, want one")
	}
	waitFilter(t, e.mgr)
	want, err := readSeccompFilter(int(first.task.Pid()))
	if err != nil {
		t.Fatal(err)
	}

	second := start(t, e, Spec{Function: "seccomp", Image: e.refs[images.Echo], MemoryMB: 128})
	if second.teach != nil {
		t.Error("second crun start would learn the filter again, want it given")
	}
	s, err := second.container.Spec(e.mgr.nsCtx(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	given, err := base64.StdEncoding.DecodeString(s.Annotations[crunSeccompAnnotation])
	if err != nil || !bytes.Equal(given, want) {
		t.Errorf("annotation %s: got %d bytes (err %v), want the first instance's %d-byte filter", crunSeccompAnnotation, len(given), err, len(want))
	}
	got, err := readSeccompFilter(int(second.task.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("filter of the second instance: got %d bytes, want the first's %d bytes, identical", len(got), len(want))
	}
	// The instance still serves.
	if body := get(t, "http://"+second.Addr()+"/"); len(body) == 0 {
		t.Error("second instance: empty answer")
	}
}

func TestSeccompFiltersAnnotate(t *testing.T) {
	profile := func(action specs.LinuxSeccompAction) *specs.Spec {
		return &specs.Spec{Linux: &specs.Linux{Seccomp: &specs.LinuxSeccomp{DefaultAction: action}}}
	}
	f := newSeccompFilters()
	s := profile(specs.ActErrno)
	if f.annotate(s) || s.Annotations[crunSeccompAnnotation] != "" {
		t.Fatal("annotate with nothing learnt: got an annotation, want none")
	}
	key, _ := profileKey(s)
	f.progs[key] = "cHJvZw=="
	if !f.annotate(s) || s.Annotations[crunSeccompAnnotation] != "cHJvZw==" {
		t.Errorf("annotate: got %q, want the learnt program", s.Annotations[crunSeccompAnnotation])
	}
	if other := profile(specs.ActKill); f.annotate(other) {
		t.Error("annotate of another profile: got the learnt program, want none")
	}
	if none := (&specs.Spec{Linux: &specs.Linux{}}); f.annotate(none) || !f.known(none) {
		t.Error("spec without a profile: got annotated or unknown, want neither")
	}
	var nilFilters *seccompFilters
	if nilFilters.annotate(s) {
		t.Error("nil filters: got an annotation, want none")
	}
}

func TestCheckUnified(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, content string
		wantErr       bool
	}{
		{"empty unified hierarchy", "\n", false},
		{"controllers in the unified hierarchy", "hugetlb misc\n", true},
		{"not hybrid", "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-"))
			if c.content != "" {
				if err := os.WriteFile(path, []byte(c.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := checkUnified(path)
			if (err != nil) != c.wantErr {
				t.Fatalf("got %v, want error %v", err, c.wantErr)
			}
			if err != nil && (!errors.Is(err, ErrMissingDependency) || !strings.Contains(err.Error(), "hugetlb, misc")) {
				t.Errorf("got %v, want ErrMissingDependency naming hugetlb, misc", err)
			}
		})
	}
	if err := CheckRuntime(RuntimeRunc); err != nil {
		t.Errorf("CheckRuntime(runc): got %v, want nil", err)
	}
}
