package lazyfs

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// applyReference unpacks layers into dir as a full pull would, written
// independently of the file system under test: archive/tar and syscalls.
// With overlay set, deletions are converted as containerd's overlayfs
// applier does (".wh.x" → character device 0/0 "x", ".wh..wh..opq" →
// trusted.overlay.opaque=y), for comparing with one FUSE layer; without,
// they are applied (x removed; an opaque directory loses what the layers
// below put in it), for comparing with an overlay of all layers.
func applyReference(t *testing.T, dir string, overlay bool, layers ...[]tarEntry) {
	t.Helper()
	for _, entries := range layers {
		mine := map[string]bool{}
		var dirTimes []tarEntry
		for _, e := range entries {
			name := cleanName(e.Name)
			p := filepath.Join(dir, name)
			base := filepath.Base(name)
			if name != "" {
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			switch {
			case base == whiteoutOpaque:
				d := filepath.Dir(p)
				if overlay {
					must(t, unix.Lsetxattr(d, overlayOpaque, []byte("y"), 0))
					continue
				}
				ents, _ := os.ReadDir(d)
				for _, de := range ents {
					if !mine[filepath.Join(filepath.Dir(name), de.Name())] {
						must(t, os.RemoveAll(filepath.Join(d, de.Name())))
					}
				}
				continue
			case strings.HasPrefix(base, whiteoutMeta):
				continue
			case strings.HasPrefix(base, whiteoutPrefix):
				target := filepath.Join(filepath.Dir(p), base[len(whiteoutPrefix):])
				must(t, os.RemoveAll(target))
				if overlay {
					must(t, unix.Mknod(target, syscall.S_IFCHR, 0))
					must(t, os.Lchown(target, e.Uid, e.Gid))
				}
				continue
			}
			mine[name] = true
			if st, err := os.Lstat(p); err == nil && !(st.IsDir() && e.Typeflag == tar.TypeDir) {
				must(t, os.RemoveAll(p))
			}
			switch e.Typeflag {
			case tar.TypeDir:
				if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
					t.Fatal(err)
				}
				dirTimes = append(dirTimes, e)
			case tar.TypeReg:
				must(t, os.WriteFile(p, e.data, 0o600))
			case tar.TypeSymlink:
				must(t, os.Symlink(e.Linkname, p))
			case tar.TypeLink:
				must(t, os.Link(filepath.Join(dir, cleanName(e.Linkname)), p))
				continue
			case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
				typ := map[byte]uint32{tar.TypeChar: syscall.S_IFCHR, tar.TypeBlock: syscall.S_IFBLK, tar.TypeFifo: syscall.S_IFIFO}[e.Typeflag]
				must(t, unix.Mknod(p, typ|uint32(e.Mode)&0o777, int(unix.Mkdev(uint32(e.Devmajor), uint32(e.Devminor)))))
			}
			must(t, os.Lchown(p, e.Uid, e.Gid))
			if e.Typeflag != tar.TypeSymlink {
				must(t, unix.Chmod(p, uint32(e.Mode)&0o7777)) // after chown, which clears setuid
			}
			for k, v := range e.PAXRecords {
				if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
					must(t, unix.Lsetxattr(p, x, []byte(v), 0))
				}
			}
			ts := []unix.Timespec{unix.NsecToTimespec(e.ModTime.UnixNano()), unix.NsecToTimespec(e.ModTime.UnixNano())}
			must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW))
		}
		for _, e := range dirTimes {
			ts := []unix.Timespec{unix.NsecToTimespec(e.ModTime.UnixNano()), unix.NsecToTimespec(e.ModTime.UnixNano())}
			must(t, unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(dir, cleanName(e.Name)), ts, unix.AT_SYMLINK_NOFOLLOW))
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fileState is what the comparison checks of one path.
type fileState struct {
	mode     uint32
	uid, gid uint32
	size     int64
	rdev     uint64
	mtime    time.Time // zero where it is not comparable
	nlink    uint64    // non-directories
	target   string
	content  string // sha256
	xattrs   string // sorted k=v list
}

func (s fileState) String() string {
	return fmt.Sprintf("mode=%o uid=%d gid=%d size=%d rdev=%d mtime=%s nlink=%d target=%q content=%.12s xattrs=%s",
		s.mode, s.uid, s.gid, s.size, s.rdev, s.mtime.Format(time.RFC3339), s.nlink, s.target, s.content, s.xattrs)
}

// snapshot describes a tree: each path's state, and which paths are one
// inode (hard links).
type snapshot struct {
	files map[string]fileState
	links []string // groups of names sharing an inode, each sorted, joined by " = "
}

// takeSnapshot walks root. Times are compared for everything but
// directories no entry names (their time is the time of unpack), the
// root, and whiteouts (containerd's applier stamps them with the time of
// unpack).
func takeSnapshot(t *testing.T, root string, explicit map[string]bool) snapshot {
	t.Helper()
	s := snapshot{files: map[string]fileState{}}
	inodes := map[[2]uint64][]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			rel = ""
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		fsx := fileState{mode: st.Mode, uid: st.Uid, gid: st.Gid, rdev: st.Rdev}
		typ := st.Mode & syscall.S_IFMT
		whiteout := typ == syscall.S_IFCHR && st.Rdev == 0
		if explicit[rel] && !whiteout {
			fsx.mtime = time.Unix(st.Mtim.Unix()).UTC()
		}
		switch typ {
		case syscall.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			fsx.content, fsx.size = hex.EncodeToString(sum[:]), st.Size
		case syscall.S_IFLNK:
			fsx.target, _ = os.Readlink(p)
		}
		if typ != syscall.S_IFDIR {
			fsx.nlink = st.Nlink
			inodes[[2]uint64{st.Dev, st.Ino}] = append(inodes[[2]uint64{st.Dev, st.Ino}], rel)
		}
		fsx.xattrs = xattrList(t, p)
		s.files[rel] = fsx
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	for _, names := range inodes {
		if len(names) > 1 {
			sort.Strings(names)
			s.links = append(s.links, strings.Join(names, " = "))
		}
	}
	sort.Strings(s.links)
	return s
}

// xattrList lists a path's extended attributes; a file system that does
// not support them has none.
func xattrList(t *testing.T, p string) string {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if errors.Is(err, unix.ENOTSUP) {
		return ""
	}
	if err != nil {
		t.Fatalf("listxattr %s: %v", p, err)
	}
	var kv []string
	for _, k := range strings.Split(string(buf[:n]), "\x00") {
		if k == "" || strings.HasPrefix(k, "security.selinux") {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, k, v)
		if err != nil {
			t.Fatalf("getxattr %s %s: %v", p, k, err)
		}
		kv = append(kv, k+"="+string(bytes.Clone(v[:m])))
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

// compareSnapshots reports every difference between got and want.
func compareSnapshots(t *testing.T, got, want snapshot) {
	t.Helper()
	for _, name := range slices.Sorted(mapKeys(want.files)) {
		g, ok := got.files[name]
		if !ok {
			t.Errorf("%q missing, want %s", name, want.files[name])
			continue
		}
		if g != want.files[name] {
			t.Errorf("%q:\n got %s\nwant %s", name, g, want.files[name])
		}
	}
	for name := range got.files {
		if _, ok := want.files[name]; !ok {
			t.Errorf("%q present (%s), want absent", name, got.files[name])
		}
	}
	if !slices.Equal(got.links, want.links) {
		t.Errorf("hard links %q, want %q", got.links, want.links)
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// explicitNames lists the paths tar entries name, after whiteout
// conversion, for the time comparison.
func explicitNames(layers ...[]tarEntry) map[string]bool {
	m := map[string]bool{}
	for _, entries := range layers {
		for _, e := range entries {
			name := cleanName(e.Name)
			if name == "" || strings.HasPrefix(filepath.Base(name), whiteoutPrefix) {
				continue
			}
			m[name] = true
		}
	}
	return m
}
