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

// removeTempMounts unmounts the temporary mounts containerd's client
// (mount.WithTempMount, under os.TempDir()/containerd-mount*) left when
// fcd died while it read an image's snapshot, e.g. for the image's user.
// Only mounts of snapshots under dataDir are touched: they are this fcd's.
func removeTempMounts(dataDir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	prefix := filepath.Join(os.TempDir(), "containerd-mount")
	var errs []error
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint ...
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || !strings.HasPrefix(fields[4], prefix) || !strings.HasPrefix(fields[3], dataDir+"/") {
			continue
		}
		if err := unix.Unmount(fields[4], unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount leftover %s: %w", fields[4], err))
			continue
		}
		os.Remove(fields[4])
	}
	return errors.Join(append(errs, sc.Err())...)
}
