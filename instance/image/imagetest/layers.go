package imagetest

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

// entry is one tar header of a test layer; body is a regular file's
// contents.
type entry struct {
	hdr  tar.Header
	body string
}

func dir(name string, mode int64) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode}}
}

func file(name string, mode int64, body string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body))}, body: body}
}

func owned(e entry, uid, gid int) entry { e.hdr.Uid, e.hdr.Gid = uid, gid; return e }

func xattr(e entry, name, value string) entry {
	if e.hdr.PAXRecords == nil {
		e.hdr.PAXRecords = map[string]string{}
	}
	e.hdr.PAXRecords["SCHILY.xattr."+name] = value
	return e
}

func symlink(name, target string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}

// hardlink links name to target, whose mode it carries as tar writers
// do (an applier may chmod the shared inode with it).
func hardlink(name string, to entry) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: to.hdr.Name, Mode: to.hdr.Mode, Uid: to.hdr.Uid, Gid: to.hdr.Gid}}
}

func device(typ byte, name string, mode, major, minor int64) entry {
	return entry{hdr: tar.Header{Typeflag: typ, Name: name, Mode: mode, Devmajor: major, Devminor: minor}}
}

func whiteout(name string) entry {
	i := strings.LastIndex(name, "/") + 1
	return file(name[:i]+whiteoutPrefix+name[i:], 0o644, "")
}

func opaque(dirName string) entry { return file(dirName+"/"+opaqueMarker, 0o644, "") }

// capability is a security.capability value (VFS_CAP_REVISION_2,
// effective) granting CAP_NET_BIND_SERVICE.
func capability() string {
	var b [20]byte
	binary.LittleEndian.PutUint32(b[0:], 0x02000001)
	binary.LittleEndian.PutUint32(b[4:], 1<<10)
	return string(b[:])
}

// featureLayers exercise every tar feature the suite checks, bottom
// first: the second layer changes, deletes and hides what the first made,
// the third re-creates deleted names as other types.
func featureLayers() [][]entry {
	long := strings.Repeat("n", 200)
	hello := file("etc/hello", 0o644, "hello\n")
	tool := file("bin/tool", 0o4755, "#!/bin/tool\n")
	return [][]entry{{
		dir("etc", 0o755),
		hello,
		hardlink("etc/hello-hard", hello),
		symlink("etc/abs", "/etc/hello"),
		dir("bin", 0o755),
		tool,
		hardlink("bin/tool-hard", tool),
		file("bin/sgid", 0o2755, "sgid"),
		symlink("bin/link", "tool"),
		xattr(file("bin/capped", 0o755, "capped"), "security.capability", capability()),
		dir("tmp", 0o1777),
		dir("home", 0o755),
		owned(dir("home/user", 0o750), 1000, 1000),
		owned(file("home/user/data", 0o600, "secret"), 1000, 1001),
		xattr(xattr(file("home/attr", 0o644, "attr"), "user.fcd", "v"), "user.other", "w"),
		xattr(dir("home/xdir", 0o755), "user.dir", "d"),
		dir("empty", 0o700),
		dir("olddir", 0o755),
		dir("olddir/sub", 0o755),
		file("olddir/sub/file", 0o644, "old"),
		dir("dev", 0o755),
		device(tar.TypeChar, "dev/null", 0o666, 1, 3),
		device(tar.TypeBlock, "dev/loop", 0o660, 7, 0),
		device(tar.TypeFifo, "dev/fifo", 0o644, 0, 0),
		dir("long", 0o755),
		file("long/"+long, 0o644, "long name"),
		symlink("long/link", "/long/"+long),
	}, {
		dir("etc", 0o755),
		file("etc/hello", 0o640, "hello again\n"),
		whiteout("etc/hello-hard"),
		dir("bin", 0o755),
		whiteout("bin/link"),
		dir("home", 0o755),
		owned(dir("home/user", 0o750), 1000, 1000),
		opaque("home/user"),
		owned(file("home/user/new", 0o644, "new"), 1000, 1000),
		whiteout("olddir"),
		dir("tmp", 0o1777),
		file("tmp/scratch", 0o666, "x"),
	}, {
		dir("bin", 0o755),
		file("bin/link", 0o755, "now a file\n"),
		file("olddir", 0o600, "now a file too\n"),
		dir("empty2", 0o711),
	}}
}

// tarLayer writes entries as an uncompressed tar stream.
func tarLayer(t *testing.T, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, e := range entries {
		h := e.hdr
		h.ModTime = mtime
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("tar %s: %v", h.Name, err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
