package lazyfs

import (
	"archive/tar"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The tar conventions for deletions in a layer (OCI image spec, "Whiteouts").
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"

	// overlayOpaque is the xattr with which overlayfs marks a directory
	// that hides the lower layers' entries below it.
	overlayOpaque = "trusted.overlay.opaque"
)

// Bounds on what a layer may claim. Its creator is not trusted and fcd
// builds its tree as root, in memory, so a small table of contents must
// not make it allocate or work without bound: past them a layer is
// refused (ErrUnsupported: pull it whole). No layer that a full unpack
// applies comes near them: Linux refuses longer names (PATH_MAX,
// NAME_MAX) and symlink targets, and fcd refuses images of more than a
// few tens of GB.
const (
	maxNameLen = unix.PathMax  // bytes of an entry name or symlink target
	maxElemLen = unix.NAME_MAX // bytes of one name element
	// Linux's XATTR_NAME_MAX and XATTR_SIZE_MAX.
	maxXattrName  = 255
	maxXattrValue = 64 << 10
	// maxLayerBytes bounds the sum of a layer's regular file sizes:
	// what a file's size sizes (materialize.go's bitmap of the blocks
	// served, a small file read whole) stays bounded.
	maxLayerBytes = 64 << 30
)

// maxEntries bounds the entries of a layer (an eStargz TOC's chunks
// included), and twice as many the nodes of its tree (parents no entry
// names are made). A variable, so that tests can lower it.
var maxEntries = 1 << 20

// tnode is one inode of a layer's tree, as a full unpack of the layer with
// overlayfs whiteout conversion (containerd's archive.Apply with
// OverlayConvertWhiteout) would leave it.
type tnode struct {
	ino      uint64
	mode     uint32 // S_IFMT | permission bits
	uid, gid uint32
	size     int64
	mtime    time.Time
	rdev     uint32
	target   string            // symlink target
	file     string            // regular file: Source name of its data
	digest   string            // regular file: sha256 of its data, if known
	sha256   bool              // digest is a valid sha256 digest
	xattrs   map[string]string // nil if none
	nlink    uint32            // set by finish
	children map[string]*tnode // directories only
	// path is a directory's name from the root ("" for it): a directory
	// has one name (no hard links), that of the entry that made it, whose
	// string it shares, so that deep trees cost no copies of names.
	path string

	// Materialization state (materialize.go), guarded by mu.
	mu   sync.Mutex
	seen []uint64 // bitmap of blocks served through the daemon
	// unseen counts the blocks not yet served, so that a read need not
	// scan seen: a 1 GiB file read in order costs 8,192 reads.
	unseen int64
	local  string // path of the verified local copy, once made
	busy   bool   // a materialization runs
	// held is a small file's verified bytes, kept in memory while the
	// layer defers making small files local (Layer.hold).
	held []byte
	// pushed is set once held was stored in the kernel's page cache
	// (inode.pushHeld).
	pushed bool
	// kernel is n's go-fuse inode while the kernel knows it (a lookup
	// made it; OnForget clears it): what StoreHeld stores through.
	kernel atomic.Pointer[inode]
	// cached counts the open handles served through the daemon (the
	// kernel's cached I/O mode). The kernel fails an open for
	// passthrough with EIO while the inode has any such open, so none
	// is made until they are all released (node.go, Open).
	cached int
}

func (n *tnode) isDir() bool { return n.mode&syscall.S_IFMT == syscall.S_IFDIR }

// tree is a layer's inodes, built once at mount.
type tree struct {
	root *tnode
	// data is the node whose bytes Source.ReadAt serves under each name:
	// the last regular entry of that name.
	data   map[string]*tnode
	nodes  []*tnode // every reachable node, by ino-1; the root first
	xattrs bool     // some node has an extended attribute
}

// buildTree applies entries in order with tar's semantics: a later entry
// replaces an earlier one of the same name (a directory over a directory
// only updates its attributes); parents that no entry names are made 0755
// and owned by root; ".wh.name" becomes a character device 0/0 "name" (an
// overlayfs whiteout) and ".wh..wh..opq" the xattr trusted.overlay.opaque=y
// on its directory; other ".wh..wh." entries (AUFS metadata) are dropped.
// A hard link must name an earlier non-directory entry of the same layer
// (ErrUnsupported otherwise: the layer cannot see the layers below it).
//
// A layer past the bounds above, or with a name or extended attribute a
// full unpack could not create (a NUL byte, an element too long, a
// whiteout of "." or ".."), is refused with ErrUnsupported.
func buildTree(entries []Entry) (*tree, error) {
	if len(entries) > maxEntries {
		return nil, fmt.Errorf("layer of %d entries, more than %d: %w", len(entries), maxEntries, ErrUnsupported)
	}
	t := &tree{data: make(map[string]*tnode)}
	t.root = t.newNode(syscall.S_IFDIR|0o755, 0, 0, time.Time{})
	var bytes int64
	for i := range entries {
		e := &entries[i]
		if err := checkEntry(e); err != nil {
			return nil, err
		}
		if e.Type == tar.TypeReg {
			if bytes += e.Size; bytes > maxLayerBytes {
				return nil, fmt.Errorf("layer of more than %d bytes of files: %w", int64(maxLayerBytes), ErrUnsupported)
			}
		}
		if err := t.apply(e); err != nil {
			return nil, err
		}
		if len(t.nodes) > 2*maxEntries {
			return nil, fmt.Errorf("layer of more than %d nodes: %w", 2*maxEntries, ErrUnsupported)
		}
	}
	return t, t.finish()
}

// checkEntry refuses an entry whose name, symlink target, extended
// attributes or size buildTree cannot take (see its comment). e.Name is clean (Entry).
func checkEntry(e *Entry) error {
	if err := checkName(e.Name); err != nil {
		return err
	}
	if e.Type == tar.TypeSymlink && len(e.Linkname) >= maxNameLen {
		return fmt.Errorf("symlink %q: target of %d bytes: %w", e.Name, len(e.Linkname), ErrUnsupported)
	}
	if e.Type == tar.TypeReg && (e.Size < 0 || e.Size > maxLayerBytes) {
		return fmt.Errorf("file %q of %d bytes: %w", e.Name, e.Size, ErrUnsupported)
	}
	for k, v := range e.Xattrs {
		if k == "" || len(k) > maxXattrName || strings.IndexByte(k, 0) >= 0 || len(v) > maxXattrValue {
			return fmt.Errorf("entry %q: extended attribute %q of %d bytes: %w", e.Name, k, len(v), ErrUnsupported)
		}
	}
	if base := path.Base(e.Name); strings.HasPrefix(base, whiteoutPrefix) && !strings.HasPrefix(base, whiteoutMeta) {
		if hidden := base[len(whiteoutPrefix):]; hidden == "" || hidden == "." || hidden == ".." {
			return fmt.Errorf("whiteout %q names no entry: %w", e.Name, ErrUnsupported)
		}
	}
	return nil
}

// checkName refuses a clean name a file system cannot hold: longer than
// PATH_MAX, an element longer than NAME_MAX, or a NUL byte.
func checkName(name string) error {
	if len(name) >= maxNameLen {
		return fmt.Errorf("entry name of %d bytes: %w", len(name), ErrUnsupported)
	}
	if strings.IndexByte(name, 0) >= 0 {
		return fmt.Errorf("entry name %q holds a NUL byte: %w", name, ErrUnsupported)
	}
	for elem := range strings.SplitSeq(name, "/") {
		if len(elem) > maxElemLen {
			return fmt.Errorf("entry name %q: an element of %d bytes: %w", name, len(elem), ErrUnsupported)
		}
	}
	return nil
}

func (t *tree) newNode(mode uint32, uid, gid int, mtime time.Time) *tnode {
	n := &tnode{mode: mode, uid: uint32(uid), gid: uint32(gid), mtime: mtime}
	if n.isDir() {
		n.children = make(map[string]*tnode)
	}
	t.nodes = append(t.nodes, n)
	n.ino = uint64(len(t.nodes))
	return n
}

// dir returns the directory name, making it and its parents if needed.
func (t *tree) dir(name string) (*tnode, error) {
	if name == "" {
		return t.root, nil
	}
	parent, err := t.dir(dirName(name))
	if err != nil {
		return nil, err
	}
	base := path.Base(name)
	if n, ok := parent.children[base]; ok {
		if !n.isDir() {
			return nil, fmt.Errorf("%s is not a directory but has entries below it: %w", name, ErrUnsupported)
		}
		return n, nil
	}
	n := t.newNode(syscall.S_IFDIR|0o755, 0, 0, time.Time{})
	n.path = name
	parent.children[base] = n
	return n, nil
}

func dirName(name string) string {
	d := path.Dir(name)
	if d == "." || d == "/" {
		return ""
	}
	return d
}

func (t *tree) apply(e *Entry) error {
	if e.Name == "" {
		if e.Type == tar.TypeDir {
			r := t.root
			r.mode, r.uid, r.gid, r.mtime = syscall.S_IFDIR|uint32(e.Mode)&0o7777, uint32(e.UID), uint32(e.GID), e.ModTime
			r.xattrs = mergeXattrs(e.Xattrs, r.xattrs[overlayOpaque])
		}
		return nil
	}
	parent, err := t.dir(dirName(e.Name))
	if err != nil {
		return err
	}
	base := path.Base(e.Name)
	switch {
	case base == whiteoutOpaque:
		if parent.xattrs == nil {
			parent.xattrs = make(map[string]string)
		}
		parent.xattrs[overlayOpaque] = "y"
		return nil
	case strings.HasPrefix(base, whiteoutMeta):
		return nil
	case strings.HasPrefix(base, whiteoutPrefix):
		wh := t.newNode(syscall.S_IFCHR, e.UID, e.GID, e.ModTime)
		return t.link(parent, base[len(whiteoutPrefix):], wh)
	}
	perm := uint32(e.Mode) & 0o7777
	var n *tnode
	switch e.Type {
	case tar.TypeDir:
		if old, ok := parent.children[base]; ok && old.isDir() {
			old.mode, old.uid, old.gid, old.mtime = syscall.S_IFDIR|perm, uint32(e.UID), uint32(e.GID), e.ModTime
			old.xattrs = mergeXattrs(e.Xattrs, old.xattrs[overlayOpaque])
			return nil
		}
		n = t.newNode(syscall.S_IFDIR|perm, e.UID, e.GID, e.ModTime)
		n.path = e.Name
	case tar.TypeReg:
		n = t.newNode(syscall.S_IFREG|perm, e.UID, e.GID, e.ModTime)
		n.size, n.file, n.digest = e.Size, e.Name, string(e.Digest)
		n.sha256 = isSHA256(e.Digest)
		t.data[e.Name] = n
	case tar.TypeSymlink:
		n = t.newNode(syscall.S_IFLNK|0o777, e.UID, e.GID, e.ModTime)
		n.target, n.size = e.Linkname, int64(len(e.Linkname))
	case tar.TypeLink:
		target, err := t.lookup(e.Linkname)
		if err != nil || target.isDir() {
			return fmt.Errorf("hard link %s to %s, not a file of this layer: %w", e.Name, e.Linkname, ErrUnsupported)
		}
		return t.link(parent, base, target)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		typ := map[byte]uint32{tar.TypeChar: syscall.S_IFCHR, tar.TypeBlock: syscall.S_IFBLK, tar.TypeFifo: syscall.S_IFIFO}[e.Type]
		n = t.newNode(typ|perm, e.UID, e.GID, e.ModTime)
		n.rdev = uint32(unix.Mkdev(uint32(e.Devmajor), uint32(e.Devminor)))
	default:
		return fmt.Errorf("entry %s of type %q: %w", e.Name, e.Type, ErrUnsupported)
	}
	if len(e.Xattrs) > 0 {
		n.xattrs = mergeXattrs(e.Xattrs, "")
	}
	return t.link(parent, base, n)
}

// mergeXattrs copies xs, keeping an opaque marker an earlier entry set.
func mergeXattrs(xs map[string]string, opaque string) map[string]string {
	if len(xs) == 0 && opaque == "" {
		return nil
	}
	m := make(map[string]string, len(xs)+1)
	for k, v := range xs {
		m[k] = v
	}
	if opaque != "" {
		m[overlayOpaque] = opaque
	}
	return m
}

// link names n base in parent, replacing what was there.
func (t *tree) link(parent *tnode, base string, n *tnode) error {
	parent.children[base] = n
	return nil
}

func (t *tree) lookup(name string) (*tnode, error) {
	n := t.root
	if name == "" {
		return n, nil
	}
	for _, c := range strings.Split(name, "/") {
		if !n.isDir() {
			return nil, ErrNotFound
		}
		var ok bool
		if n, ok = n.children[c]; !ok {
			return nil, ErrNotFound
		}
	}
	return n, nil
}

// finish drops unreachable nodes (replaced entries), renumbers inodes
// densely in tree order, and counts links. A file replaced by a later
// entry of the same name but still reachable through a hard link is
// refused: a Source serves only the last entry of a name.
func (t *tree) finish() error {
	var nodes []*tnode
	seen := make(map[*tnode]bool)
	var walk func(n *tnode)
	walk = func(n *tnode) {
		if seen[n] {
			return
		}
		seen[n] = true
		nodes = append(nodes, n)
		n.ino = uint64(len(nodes))
		n.nlink = 1
		if len(n.xattrs) > 0 {
			t.xattrs = true
		}
		if !n.isDir() {
			return
		}
		n.nlink = 2
		names := make([]string, 0, len(n.children))
		for cn, c := range n.children {
			names = append(names, cn)
			if c.isDir() {
				n.nlink++
			}
		}
		sort.Strings(names)
		for _, childName := range names {
			c := n.children[childName]
			if !c.isDir() && seen[c] {
				c.nlink++ // another name of a hard-linked file
			}
			walk(c)
		}
	}
	walk(t.root)
	t.nodes = nodes
	for _, n := range nodes {
		if n.file != "" && t.data[n.file] != n {
			return fmt.Errorf("%s: a hard link keeps an entry that a later one of the same name replaced: %w", n.file, ErrUnsupported)
		}
	}
	return nil
}
