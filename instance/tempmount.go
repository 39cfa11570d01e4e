package instance

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// removeTempMounts unmounts the temporary mounts tempMounts lists.
func removeTempMounts(dataDir string) error {
	mounts, err := tempMounts(dataDir)
	var errs []error
	for _, p := range mounts {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount leftover %s: %w", p, err))
			continue
		}
		os.Remove(p)
	}
	return errors.Join(append(errs, err)...)
}

// tempMounts lists the temporary mounts containerd's client
// (mount.WithTempMount, under os.TempDir()/containerd-mount*) left when
// fcd died while it read an image's snapshot, e.g. for the image's user.
// Only mounts of snapshots under dataDir are listed: they are this fcd's.
func tempMounts(dataDir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	prefix := filepath.Join(os.TempDir(), "containerd-mount")
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint ...
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || !strings.HasPrefix(fields[4], prefix) || !strings.HasPrefix(fields[3], dataDir+"/") {
			continue
		}
		out = append(out, fields[4])
	}
	return out, sc.Err()
}
