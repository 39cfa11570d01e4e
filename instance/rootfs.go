package instance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/mount"
	"golang.org/x/sys/unix"
)

// ext4Overhead is the share of a disk file ext4 keeps for itself (inode
// tables, journal); the file is made this much larger than the disk size
// so that the writable layer really holds diskSize bytes.
const ext4Overhead = 1.07

// rootfs is an instance's root filesystem: the image's read-only layers
// under a writable upper layer that lives on a loop-mounted ext4 file of
// the function's disk size, so writes past it fail with ENOSPC inside the
// container. Everything lives under dir and is discarded with it.
type rootfs struct {
	dir string // <DataDir>/instances/<id>
}

func (r rootfs) diskFile() string { return filepath.Join(r.dir, "disk.ext4") }
func (r rootfs) diskDir() string  { return filepath.Join(r.dir, "disk") }
func (r rootfs) path() string     { return filepath.Join(r.dir, "rootfs") }

// create makes and mounts the writable layer, with a disk file from pool
// when it holds one (pool may be nil), and the overlay. On error nothing
// is left mounted.
func (r rootfs) create(ctx context.Context, pool *diskPool, lower []string, diskMB int) (err error) {
	defer func() {
		if err != nil {
			_ = r.remove()
		}
	}()
	for _, d := range []string{r.diskDir(), r.path()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if pool == nil || !pool.take(diskMB, r.diskFile()) {
		if err := makeDisk(ctx, r.diskFile(), diskMB); err != nil {
			return err
		}
	}
	disk := mount.Mount{Type: "ext4", Source: r.diskFile(), Options: []string{"loop", "noatime"}}
	if err := disk.Mount(r.diskDir()); err != nil {
		return fmt.Errorf("mount disk: %w", err)
	}
	upper, work := filepath.Join(r.diskDir(), "upper"), filepath.Join(r.diskDir(), "work")
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	if len(lower) == 0 {
		return errors.New("image has no layers")
	}
	ov := mount.Mount{Type: "overlay", Source: "overlay", Options: []string{
		"lowerdir=" + strings.Join(lower, ":"), "upperdir=" + upper, "workdir=" + work,
	}}
	if err := ov.Mount(r.path()); err != nil {
		return fmt.Errorf("mount overlay: %w", err)
	}
	return nil
}

// remove unmounts the overlay and the disk and deletes dir. It is safe on
// a partly created or already removed rootfs.
func (r rootfs) remove() error {
	var errs []error
	for _, m := range []string{r.path(), r.diskDir()} {
		if err := mount.UnmountAll(m, unix.MNT_DETACH); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
		}
	}
	if len(errs) == 0 {
		if err := os.RemoveAll(r.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
