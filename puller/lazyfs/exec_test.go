package lazyfs

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestExec runs a program from a mounted layer: first read through the
// daemon, then, once the layer has materialized it, through passthrough,
// as a second instance of a function execs its binary.
func TestExec(t *testing.T) {
	requireFUSE(t)
	bin, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Skip("no /bin/true to run")
	}
	b := buildLayer(t, []tarEntry{dirE("./", 0o755, 0, 0), dirE("bin/", 0o755, 0, 0), fileE("bin/true", 0o755, bin)})
	for mode, src := range b.sources(t) {
		t.Run(mode, func(t *testing.T) {
			l := mountLayer(t, src, MountOptions{CacheDir: t.TempDir()})
			// As an instance sees it: an overlay with a writable layer on
			// top of the FUSE layer.
			root, upper, work := t.TempDir(), t.TempDir(), t.TempDir()
			if err := unix.Mount("overlay", root, "overlay", 0, "lowerdir="+l.Dir()+",upperdir="+upper+",workdir="+work); err != nil {
				t.Fatal(err)
			}
			defer unix.Unmount(root, unix.MNT_DETACH)
			prog := filepath.Join(root, "bin/true")
			if out, err := exec.Command(prog).CombinedOutput(); err != nil {
				t.Fatalf("first exec: %v: %s", err, out)
			}
			if err := l.FetchAll(context.Background()); err != nil {
				t.Fatal(err)
			}
			l.bg.wait()
			if st := l.Stats(); st.Materialized == 0 {
				t.Fatalf("stats %+v: want the binary materialized", st)
			}
			for i := range 3 {
				if out, err := exec.Command(prog).CombinedOutput(); err != nil {
					t.Fatalf("exec %d after materialization: %v: %s", i, err, out)
				}
			}
			if st := l.Stats(); st.PassthroughOpens == 0 {
				t.Errorf("stats %+v: want the later execs through passthrough", st)
			}
		})
	}
}
