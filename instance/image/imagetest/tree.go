package imagetest

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// mountLowers shows lowers (top-most first) as one read-only tree under a
// temporary directory, as instance's overlay does under its writable
// layer, and returns its path.
func mountLowers(t *testing.T, lowers []string) string {
	t.Helper()
	if len(lowers) == 1 {
		// overlayfs wants two lower layers when it has no upper one.
		return lowers[0]
	}
	dir := t.TempDir()
	if err := unix.Mount("overlay", dir, "overlay", unix.MS_RDONLY, "lowerdir="+strings.Join(lowers, ":")); err != nil {
		t.Fatalf("mount overlay of %v: %v", lowers, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// inode identifies a file on one file system.
type inode struct{ dev, ino uint64 }

// readTree reads the tree under root, with the inode of every path.
func readTree(root string) (tree, map[string]inode, error) {
	t, inodes := tree{}, map[string]inode{}
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		n, ino, err := readNode(p)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		t[rel], inodes[rel] = n, ino
		return nil
	})
	return t, inodes, err
}

func readNode(p string) (*node, inode, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, inode{}, err
	}
	st := fi.Sys().(*syscall.Stat_t)
	n := &node{mode: int64(st.Mode) & 0o7777, uid: int(st.Uid), gid: int(st.Gid), xattrs: map[string]string{}}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFREG:
		n.typ = tar.TypeReg
		if n.content, err = os.ReadFile(p); err != nil {
			return nil, inode{}, err
		}
	case syscall.S_IFDIR:
		n.typ = tar.TypeDir
	case syscall.S_IFLNK:
		n.typ = tar.TypeSymlink
		if n.target, err = os.Readlink(p); err != nil {
			return nil, inode{}, err
		}
	case syscall.S_IFCHR, syscall.S_IFBLK:
		n.typ = tar.TypeChar
		if st.Mode&syscall.S_IFMT == syscall.S_IFBLK {
			n.typ = tar.TypeBlock
		}
		n.major, n.minor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case syscall.S_IFIFO:
		n.typ = tar.TypeFifo
	default:
		return nil, inode{}, fmt.Errorf("unexpected file type %o", st.Mode&syscall.S_IFMT)
	}
	if n.xattrs, err = readXattrs(p); err != nil {
		return nil, inode{}, err
	}
	return n, inode{dev: st.Dev, ino: st.Ino}, nil
}

func readXattrs(p string) (map[string]string, error) {
	out := map[string]string{}
	size, err := unix.Llistxattr(p, nil)
	if errors.Is(err, unix.ENOTSUP) || size == 0 {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listxattr: %w", err)
	}
	buf := make([]byte, size)
	if size, err = unix.Llistxattr(p, buf); err != nil {
		return nil, fmt.Errorf("listxattr: %w", err)
	}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:size]), "\x00"), "\x00") {
		if !compared(name) {
			continue
		}
		vsize, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			return nil, fmt.Errorf("getxattr %s: %w", name, err)
		}
		v := make([]byte, vsize)
		if vsize, err = unix.Lgetxattr(p, name, v); err != nil {
			return nil, fmt.Errorf("getxattr %s: %w", name, err)
		}
		out[name] = string(v[:vsize])
	}
	return out, nil
}

// diff lists the differences between got and want, one line each.
func diff(got, want tree) []string {
	var out []string
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			out = append(out, fmt.Sprintf("%s: missing, want %s", p, w))
			continue
		}
		if d := g.diff(w); d != "" {
			out = append(out, fmt.Sprintf("%s: %s", p, d))
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			out = append(out, fmt.Sprintf("%s: got %s, want nothing", p, g))
		}
	}
	sort.Strings(out)
	return out
}

func (n *node) diff(w *node) string {
	var d []string
	check := func(what string, got, want any) {
		if fmt.Sprint(got) != fmt.Sprint(want) {
			d = append(d, fmt.Sprintf("%s: got %v, want %v", what, got, want))
		}
	}
	check("type", string(n.typ), string(w.typ))
	check("mode", fmt.Sprintf("%04o", n.mode), fmt.Sprintf("%04o", w.mode))
	check("owner", fmt.Sprintf("%d:%d", n.uid, n.gid), fmt.Sprintf("%d:%d", w.uid, w.gid))
	if !bytes.Equal(n.content, w.content) {
		d = append(d, fmt.Sprintf("content: got %d bytes %.20q, want %d bytes %.20q", len(n.content), n.content, len(w.content), w.content))
	}
	check("symlink target", n.target, w.target)
	check("device", fmt.Sprintf("%d:%d", n.major, n.minor), fmt.Sprintf("%d:%d", w.major, w.minor))
	check("xattrs", fmt.Sprintf("%q", n.xattrs), fmt.Sprintf("%q", w.xattrs))
	return strings.Join(d, "; ")
}

func (n *node) String() string {
	return fmt.Sprintf("%c %04o %d:%d", n.typ, n.mode, n.uid, n.gid)
}
