package lazyfs

import (
	"context"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/fcd-dev/fcd/puller/remote"
)

// Blob reads the compressed bytes of one layer blob. puller/remote's
// fetcher implements it: on-demand reads jump ahead of prefetch and
// background work, and chunks with a known digest are verified and shared
// through the host's cache.
type Blob interface {
	// ReadChunk returns the n bytes at off, which must hash to want
	// (sha256 of the compressed bytes), or an error.
	ReadChunk(ctx context.Context, off, n int64, want digest.Digest, prio remote.Priority) ([]byte, error)
	// ReadRange returns the n bytes at off, unverified: the caller checks
	// what it decodes from them.
	ReadRange(ctx context.Context, off, n int64, prio remote.Priority) ([]byte, error)
}

// Entry is one entry of a layer, as its tar header describes it. Names
// are clean and relative to the layer root ("a/b", never "./a/b/" or
// "/a/b"); a directory entry named "" sets the root's attributes.
type Entry struct {
	Name string
	// Type is the tar type flag: tar.TypeReg, TypeDir, TypeSymlink,
	// TypeLink, TypeChar, TypeBlock or TypeFifo. Whiteouts (".wh.name")
	// and opaque markers (".wh..wh..opq") are regular entries here with
	// their tar names; the file system turns them into overlayfs'
	// conventions.
	Type byte
	// Mode holds the permission bits plus setuid, setgid and sticky, as
	// in tar.Header.Mode (c_ISUID = 04000, ...).
	Mode     int64
	UID, GID int
	// Size is a regular file's size; zero for anything else.
	Size    int64
	ModTime time.Time
	// Linkname is a symlink's target, as stored, or a hard link's target
	// entry, cleaned like Name.
	Linkname string
	// Xattrs holds extended attributes (tar PAX "SCHILY.xattr.*"); nil if
	// none.
	Xattrs map[string]string
	// Devmajor and Devminor are a device node's numbers.
	Devmajor, Devminor int64
	// Digest is the sha256 of a regular file's data, if the source knows
	// it; materialized copies are verified against it.
	Digest digest.Digest
}

// Source is one layer as the file system sees it: its entries, and the
// bytes of its regular files, fetched on demand. Implementations must be
// safe for concurrent use and verify every byte they return against the
// digests their format records.
type Source interface {
	// Entries returns the layer's entries in tar order. The slice must not
	// be modified.
	Entries() []Entry
	// ReadAt reads len(p) bytes of the regular file name (an Entry.Name;
	// never a hard link) at off, with io.ReaderAt's contract: fewer bytes
	// only at the end of the file, with io.EOF. A cancelled ctx cancels
	// the fetch.
	ReadAt(ctx context.Context, name string, p []byte, off int64, prio remote.Priority) (int, error)
	// StartupOrder lists regular files (Entry.Name) an instance is expected
	// to read at start-up, in the order to prefetch them; nil if unknown.
	StartupOrder() []string
}
