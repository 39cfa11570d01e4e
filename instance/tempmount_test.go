package instance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fcd-dev/fcd/internal/testenv"
)

func TestRemoveTempMounts(t *testing.T) {
	testenv.RequireRoot(t)
	dataDir := t.TempDir()
	src := filepath.Join(dataDir, "containerd", "root", "snapshots", "1", "fs")
	if err := os.MkdirAll(src, 0o700); err != nil {
		t.Fatal(err)
	}
	mine, err := os.MkdirTemp("", "containerd-mount")
	if err != nil {
		t.Fatal(err)
	}
	// Another fcd's temporary mount, in flight: not ours to remove.
	otherSrc := t.TempDir()
	other, err := os.MkdirTemp("", "containerd-mount")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range [][2]string{{src, mine}, {otherSrc, other}} {
		if err := unix.Mount(m[0], m[1], "", unix.MS_BIND, ""); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		unix.Unmount(other, unix.MNT_DETACH)
		os.Remove(other)
	})
	if err := removeTempMounts(dataDir); err != nil {
		t.Fatal(err)
	}
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(info), mine+" ") {
		t.Errorf("the leftover mount %s is still mounted", mine)
	}
	if _, err := os.Stat(mine); !os.IsNotExist(err) {
		t.Errorf("the leftover mount point %s still exists (%v)", mine, err)
	}
	if !strings.Contains(string(info), other+" ") {
		t.Errorf("another fcd's mount %s was removed", other)
	}
}
