package lazyfs

import (
	"context"
	"errors"
	"os"
	"sort"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/fcd-dev/fcd/puller/remote"
)

// inode is the go-fuse face of a tnode.
type inode struct {
	fs.Inode
	l *Layer
	n *tnode
}

var (
	_ fs.NodeLookuper        = (*inode)(nil)
	_ fs.NodeReaddirer       = (*inode)(nil)
	_ fs.NodeGetattrer       = (*inode)(nil)
	_ fs.NodeReadlinker      = (*inode)(nil)
	_ fs.NodeOpener          = (*inode)(nil)
	_ fs.NodeReader          = (*inode)(nil)
	_ fs.NodeGetxattrer      = (*inode)(nil)
	_ fs.NodeListxattrer     = (*inode)(nil)
	_ fs.NodeStatfser        = (*inode)(nil)
	_ fs.NodeReleaser        = (*inode)(nil)
	_ fs.NodeOpendirer       = (*inode)(nil)
	_ fs.NodeFlusher         = (*inode)(nil)
	_ fs.NodeOnForgetter     = (*inode)(nil)
	_ fs.FilePassthroughFder = (*handle)(nil)
)

// Lookup implements fs.NodeLookuper. The tree is known up front and
// never changes, but go-fuse's inodes are made only for the names the
// kernel looks up, so a mount costs little however many entries the
// layer has; a hard link's names share one inode (go-fuse keys inodes by
// StableAttr, here the tree's inode number).
func (i *inode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	i.l.stats.lookups.Add(1)
	c, ok := i.n.children[name]
	i.l.lookups.notify(i.n, name, ok)
	if !ok {
		i.l.stats.negativeLookups.Add(1)
		return nil, syscall.ENOENT
	}
	child := &inode{l: i.l, n: c}
	child.fill(&out.Attr)
	out.SetEntryTimeout(i.l.timeout)
	out.SetAttrTimeout(i.l.timeout)
	ch := i.NewInode(ctx, child, fs.StableAttr{Mode: c.mode & syscall.S_IFMT, Ino: c.ino})
	if k, ok := ch.Operations().(*inode); ok && c.file != "" {
		c.kernel.Store(k)
	}
	return ch, 0
}

// OnForget implements fs.NodeOnForgetter: the kernel dropped the inode.
func (i *inode) OnForget() { i.n.kernel.CompareAndSwap(i, nil) }

// Readdir implements fs.NodeReaddirer: the directory's entries, by name.
func (i *inode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	names := make([]string, 0, len(i.n.children))
	for name := range i.n.children {
		names = append(names, name)
	}
	sort.Strings(names)
	ents := make([]fuse.DirEntry, 0, len(names))
	for _, name := range names {
		c := i.n.children[name]
		ents = append(ents, fuse.DirEntry{Name: name, Mode: c.mode, Ino: c.ino})
	}
	return fs.NewListDirStream(ents), 0
}

func (i *inode) fill(a *fuse.Attr) {
	n := i.n
	a.Ino = n.ino
	a.Mode = n.mode
	a.Size = uint64(n.size)
	a.Blocks = (uint64(n.size) + 511) / 512
	a.Blksize = 4096
	a.Nlink = n.nlink
	a.Uid, a.Gid = n.uid, n.gid
	a.Rdev = n.rdev
	if !n.mtime.IsZero() {
		t := n.mtime
		a.SetTimes(&t, &t, &t)
	}
}

// Getattr implements fs.NodeGetattrer.
func (i *inode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	i.fill(&out.Attr)
	out.SetTimeout(i.l.timeout)
	return 0
}

// Readlink implements fs.NodeReadlinker.
func (i *inode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	if i.n.mode&syscall.S_IFMT != syscall.S_IFLNK {
		return nil, syscall.EINVAL
	}
	return []byte(i.n.target), 0
}

// Getxattr implements fs.NodeGetxattrer. (A layer without any xattrs is
// mounted with xattrs disabled, so the kernel stops asking at the first
// call: SOCI #971.)
func (i *inode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	v, ok := i.n.xattrs[attr]
	if !ok {
		return 0, syscall.ENODATA
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

// Listxattr implements fs.NodeListxattrer.
func (i *inode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	var b []byte
	for k := range i.n.xattrs {
		b = append(append(b, k...), 0)
	}
	if len(dest) < len(b) {
		return uint32(len(b)), syscall.ERANGE
	}
	return uint32(copy(dest, b)), 0
}

// Statfs implements fs.NodeStatfser.
func (i *inode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	out.Bsize, out.Frsize, out.NameLen = 4096, 4096, 255
	out.Files = uint64(len(i.l.tree.nodes))
	return 0
}

// Opendir implements fs.NodeOpendirer.
func (i *inode) Opendir(ctx context.Context) syscall.Errno { return 0 }

// handle is an open regular file. local, when set, is its verified local
// copy, handed to the kernel for passthrough.
type handle struct {
	local  *os.File
	cached bool // counted in tnode.cached

	passthrough atomic.Bool // handed to the kernel for passthrough
	backingFd   func(*os.File) int
}

// PassthroughFd implements fs.FilePassthroughFder. go-fuse calls it once
// per open, before the handle is used.
func (h *handle) PassthroughFd() (int, bool) {
	if h.local == nil {
		return -1, false
	}
	h.passthrough.Store(true)
	if h.backingFd != nil {
		return h.backingFd(h.local), true
	}
	return int(h.local.Fd()), true
}

// openFlags are every open's reply flags: reads stay in the page cache
// across opens, as the layer never changes, and a close sends no FLUSH
// (nothing is ever written): a start that opens thousands of files would
// otherwise wait for a round trip to the daemon at each close.
const openFlags = fuse.FOPEN_KEEP_CACHE | fuse.FOPEN_NOFLUSH

// Open implements fs.NodeOpener. Writes are refused; a file already
// local is opened for passthrough, unless the file is still open through
// the daemon (the kernel refuses to mix the two modes on one inode: the
// open would fail with EIO); see openFlags.
func (i *inode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND) != 0 {
		return nil, 0, syscall.EROFS
	}
	i.l.stats.opens.Add(1)
	h := &handle{}
	if hook := i.l.backingFdHook.Load(); hook != nil {
		h.backingFd = *hook
	}
	var local *os.File
	if i.l.passthrough() && i.n.heldBytes() == nil {
		// (A held file is not local: it is made so after the start.)
		local = i.l.openLocal(i.n)
	}
	i.n.mu.Lock()
	if local != nil && i.n.cached == 0 {
		h.local = local
	} else {
		h.cached = true
		i.n.cached++
	}
	i.n.mu.Unlock()
	if h.local != nil {
		i.l.stats.passthroughOpens.Add(1)
		i.l.observers.notify(i.n.file, 0, i.n.size)
	} else if local != nil {
		local.Close()
	}
	if h.cached {
		i.pushHeld()
	}
	return h, openFlags, 0
}

// pushHeld stores the bytes of a small file held in memory (DeferSmall)
// in the kernel's page cache at its first open through the daemon
// (FUSE_NOTIFY_STORE, before the open's reply), so the reads that follow
// are served there without a round trip each; they are noted as a read
// of the whole file, as a passthrough open is. The kernel keeps the pages
// across opens (openFlags); should it evict them, reads come to the
// daemon again.
func (i *inode) pushHeld() {
	n := i.n
	n.mu.Lock()
	b := n.held
	if len(b) == 0 || n.pushed {
		n.mu.Unlock()
		return
	}
	n.pushed = true
	n.mu.Unlock()
	if errno := i.WriteCache(0, b); errno != 0 {
		i.l.log.Debug("store file in the page cache", "layer", i.l.name, "file", n.file, "err", errno)
		n.mu.Lock()
		n.pushed = false // the next open tries again
		n.mu.Unlock()
		return
	}
	i.l.stats.pushed.Add(1)
	i.l.observers.notify(n.file, 0, n.size)
}

// StoreHeld stores the bytes of the files names (Source names) that the
// layer holds in memory (DeferSmall) in the kernel's page cache now, as
// their first open would (pushHeld), for those the kernel knows (a
// lookup, WarmLookups for one, made its inode) and was not given yet: an
// instance's open of one then costs the daemon no copy while the
// instance waits. It is noted as a read of the whole file (Observe).
func (l *Layer) StoreHeld(names []string) {
	for _, name := range names {
		n := l.tree.data[name]
		if n == nil {
			continue
		}
		if k := n.kernel.Load(); k != nil {
			k.pushHeld()
		}
	}
}

// Flush implements fs.NodeFlusher. Opens ask for no FLUSH (openFlags);
// one that arrives all the same has nothing to do.
func (i *inode) Flush(ctx context.Context, f fs.FileHandle) syscall.Errno {
	i.l.stats.flushes.Add(1)
	return 0
}

// Release implements fs.NodeReleaser.
func (i *inode) Release(ctx context.Context, f fs.FileHandle) syscall.Errno {
	h, ok := f.(*handle)
	if !ok {
		return 0
	}
	if h.local != nil {
		h.local.Close()
	}
	if h.cached {
		i.n.mu.Lock()
		i.n.cached--
		i.n.mu.Unlock()
	}
	return 0
}

// Read implements fs.NodeReader: the bytes of a file not (yet) served by
// passthrough. A failed fetch is EIO, logged with the layer and file; the
// mount stays up and a later read fetches again. An interrupted read
// cancels its fetch.
func (i *inode) Read(ctx context.Context, f fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	i.l.stats.reads.Add(1)
	if off < i.n.size {
		i.l.observers.notify(i.n.file, off, min(int64(len(dest)), i.n.size-off))
	}
	if h, ok := f.(*handle); ok && h.local != nil {
		if h.passthrough.Load() {
			i.l.passthroughFailed(i.n.file, off)
		}
		n, err := h.local.ReadAt(dest, off)
		if err != nil && n == 0 && off < i.n.size {
			return nil, syscall.EIO
		}
		return fuse.ReadResultData(dest[:n]), 0
	}
	if off >= i.n.size {
		return fuse.ReadResultData(nil), 0
	}
	t0 := time.Now()
	n, err := i.l.read(ctx, i.n, dest, off, remote.OnDemand)
	d := time.Since(t0)
	i.l.stats.readNanos.Add(int64(d))
	if d >= slowRead {
		i.l.stats.slowReads.Add(1)
		i.l.log.Debug("slow lazy read", "layer", i.l.name, "file", i.n.file, "offset", off, "size", len(dest), "duration", d)
	}
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil, syscall.EINTR
		}
		i.l.log.Error("lazy read failed", "layer", i.l.name, "file", i.n.file, "offset", off, "size", len(dest), "err", err)
		return nil, syscall.EIO
	}
	return fuse.ReadResultData(dest[:n]), 0
}
