package gzindex

import (
	"archive/tar"
	"path"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
)

// Index maps the files of one gzip-compressed tar layer to byte ranges of
// the layer blob. It is immutable once built or loaded and safe for
// concurrent use.
type Index struct {
	// Digest is the layer blob's digest, "sha256:<hex>".
	Digest string
	// CompressedSize is the blob's size in bytes.
	CompressedSize int64
	// Size is the size of the uncompressed tar stream.
	Size int64
	// Entries lists the tar entries in stream order.
	Entries []Entry
	// Span and MaxSpan record the checkpoint policy the index was built
	// with (see Options); they are informational.
	Span, MaxSpan int64

	checkpoints []checkpoint
	blocks      []blockPos

	version   int    // format version it was built for or loaded from
	chunkSize int64  // 0 in version 1
	chunkSums []byte // sha256 of each chunk, 32 bytes apiece

	// Version 3: the head's length in the serialized index, and, for an
	// index loaded by LoadHead, what fetches the windows left out.
	headLen int64
	windows WindowFetcher
	wstats  windowStats

	once   sync.Once
	byName map[string]int
}

// Entry is one tar entry: its header, and where its data starts in the
// uncompressed stream.
type Entry struct {
	Name     string // as stored in the tar header
	Linkname string // target of a symlink or hard link
	Type     byte   // tar type flag (tar.TypeReg, tar.TypeDir, ...)
	Mode     int64  // permission and mode bits, as in tar.Header.Mode
	UID, GID int
	Uname    string
	Gname    string
	Size     int64
	ModTime  time.Time
	Devmajor int64
	Devminor int64
	// PAXRecords holds the PAX records not reflected in the fields above:
	// xattrs ("SCHILY.xattr.*"), atime, ctime, vendor records. Nil if none.
	PAXRecords map[string]string
	// Offset is where the entry's data starts in the uncompressed stream.
	Offset int64
	// CRC32 is the IEEE CRC-32 of the entry's data (zero if it has none).
	CRC32 uint32
	// Digest is the sha256 of a regular, non-sparse file's data (empty
	// files included), "" for other entries and in version 1 indexes.
	// Materializing a file checks its bytes against it.
	Digest digest.Digest
	// Sparse is set for sparse files, whose data is not contiguous in the
	// stream and cannot be read through the index.
	Sparse bool
}

// Xattrs returns the entry's extended attributes, or nil.
func (e *Entry) Xattrs() map[string]string {
	var m map[string]string
	for k, v := range e.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if m == nil {
				m = make(map[string]string)
			}
			m[name] = v
		}
	}
	return m
}

// IsRegular reports whether the entry is a regular file with data of its own.
func (e *Entry) IsRegular() bool {
	return e.Type == tar.TypeReg || e.Type == tar.TypeRegA || e.Type == tar.TypeCont
}

// checkpoint is a boundary a reader may start from, with its window
// (flate-compressed; nil when the boundary has no history, or when the
// index was loaded by LoadHead: then lazy holds it once fetched).
type checkpoint struct {
	boundary
	window []byte

	// Version 3: the window's sha256, its offset in the serialized index
	// and its length (len(window) when it is present).
	wsum [32]byte
	woff int64
	wlen int64
	lazy *lazyWindow
}

// lazyWindow is a window fetched after LoadHead, verified, and the fetch
// of it under way, which later readers wait for instead of fetching it
// again.
type lazyWindow struct {
	p    atomic.Pointer[[]byte]
	mu   sync.Mutex
	busy chan struct{} // closed when the fetch under way ends; nil if none
}

// windowStats counts the windows an index loaded by LoadHead fetched.
type windowStats struct{ windows, gets, bytes atomic.Int64 }

// WindowStats reports how many windows an index loaded by LoadHead has
// fetched so far, in how many requests of how many bytes together (runs
// include the windows between those asked for).
func (x *Index) WindowStats() (windows, gets, bytes int64) {
	return x.wstats.windows.Load(), x.wstats.gets.Load(), x.wstats.bytes.Load()
}

// blockPos is the start of a deflate block or gzip member: reads fetch up
// to the first one at or past the end of the requested data.
type blockPos struct {
	bit int64
	out int64
}

// cleanName is the lookup key of a tar name: no leading "/" or "./", no
// trailing "/".
func cleanName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// Lookup returns the last entry named name ("./a/b", "/a/b" and "a/b/"
// all name "a/b"), as a tar extraction would leave it.
func (x *Index) Lookup(name string) (*Entry, bool) {
	x.once.Do(func() {
		x.byName = make(map[string]int, len(x.Entries))
		for i := range x.Entries {
			x.byName[cleanName(x.Entries[i].Name)] = i
		}
	})
	i, ok := x.byName[cleanName(name)]
	if !ok {
		return nil, false
	}
	return &x.Entries[i], true
}

// Checkpoints reports how many checkpoints the index holds.
func (x *Index) Checkpoints() int { return len(x.checkpoints) }

// CheckpointBefore returns the uncompressed offset of the last checkpoint
// at or before off: a read of off decodes from there, so the bytes in
// between come at no extra fetch.
func (x *Index) CheckpointBefore(off int64) int64 {
	if len(x.checkpoints) == 0 {
		return 0
	}
	return x.checkpointFor(off).out
}

// CheckpointAfter returns the uncompressed offset of the first
// checkpoint after off, or Size if there is none: with CheckpointBefore,
// it walks the checkpoints reads of a range may start from.
func (x *Index) CheckpointAfter(off int64) int64 {
	i := sort.Search(len(x.checkpoints), func(i int) bool { return x.checkpoints[i].out > off })
	if i == len(x.checkpoints) {
		return x.Size
	}
	return x.checkpoints[i].out
}

// checkpointFor returns the last checkpoint at or before uncompressed
// offset off.
func (x *Index) checkpointFor(off int64) *checkpoint {
	i := sort.Search(len(x.checkpoints), func(i int) bool { return x.checkpoints[i].out > off })
	return &x.checkpoints[max(i-1, 0)]
}

// fetchEnd returns the compressed byte offset up to which a decoder must
// read to produce all uncompressed bytes before end.
func (x *Index) fetchEnd(end int64) int64 {
	i := sort.Search(len(x.blocks), func(i int) bool { return x.blocks[i].out >= end })
	if i == len(x.blocks) {
		return x.CompressedSize
	}
	return min((x.blocks[i].bit+7)/8, x.CompressedSize)
}
