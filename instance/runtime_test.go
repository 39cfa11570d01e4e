package instance

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fcd-dev/fcd/internal/testenv"
	"github.com/fcd-dev/fcd/puller"
)

func TestChooseRuntime(t *testing.T) {
	dir := t.TempDir()
	hybrid := filepath.Join(dir, "hybrid")
	if err := os.WriteFile(hybrid, []byte("hugetlb misc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	installed := func(string) (string, error) { return "/usr/bin/crun", nil }
	missing := func(string) (string, error) { return "", fs.ErrNotExist }
	for _, c := range []struct {
		name       string
		lookPath   func(string) (string, error)
		unified    string
		want       string
		passedHas  string
		dependency bool
	}{
		{"crun usable", installed, filepath.Join(dir, "not-hybrid"), RuntimeCrun, "", false},
		{"crun missing", missing, filepath.Join(dir, "not-hybrid"), RuntimeRunc, "crun is not installed", false},
		{"hybrid cgroups with v2 controllers", installed, hybrid, RuntimeRunc, "hugetlb, misc", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, passed := chooseRuntime(c.lookPath, c.unified)
			if got != c.want {
				t.Errorf("got runtime %q, want %q", got, c.want)
			}
			if c.passedHas == "" {
				if passed != nil {
					t.Errorf("got reason %v, want none", passed)
				}
				return
			}
			if passed == nil || !strings.Contains(passed.Error(), c.passedHas) {
				t.Errorf("got reason %v, want one mentioning %q", passed, c.passedHas)
			}
			if c.dependency && !errors.Is(passed, ErrMissingDependency) {
				t.Errorf("got reason %v, want ErrMissingDependency", passed)
			}
		})
	}
}

// TestExplicitRuntimeIsNotReplaced checks that a runtime named in Options
// that cannot run is an error, never a fall-back to another one.
func TestExplicitRuntimeIsNotReplaced(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "crun")
	_, err := Options{DataDir: t.TempDir(), Images: (*puller.Puller)(nil), Runtime: missing}.withDefaults()
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("got %v, want an error naming %s", err, missing)
	}
}

func TestEmptyRuntimeIsDefault(t *testing.T) {
	want, _ := DefaultRuntime()
	testenv.RequireCommand(t, want, want)
	o, err := Options{DataDir: t.TempDir(), Images: (*puller.Puller)(nil)}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.Runtime != want {
		t.Errorf("got runtime %q, want DefaultRuntime's %q", o.Runtime, want)
	}
}
