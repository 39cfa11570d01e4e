package lazyfs

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/fcd-dev/fcd/puller/gzindex"
	"github.com/fcd-dev/fcd/puller/remote"
)

// Reads through an index start at a checkpoint and decode forward, so a
// GzIndex reads the tar stream in aligned blocks and keeps a few, so
// that the kernel's 128 KiB reads of a file decode each stretch once.
const (
	gzBlockSize    = 1 << 20
	gzBlockEntries = 8
)

// GzIndex is the Source of an unmodified gzip layer with a gzindex index
// (index-only acceleration). File bytes are decoded from byte ranges of
// the original blob; a whole file read for materialization is checked
// against the CRC-32 the index recorded (VerifyFile).
type GzIndex struct {
	x       *gzindex.Index
	r       *gzindex.Reader
	entries []Entry
	files   map[string]*gzindex.Entry
	startup []string

	blocks  *lru.Cache[int64, []byte]
	flights flights[int64]
}

var (
	_ Source       = (*GzIndex)(nil)
	_ FileVerifier = (*GzIndex)(nil)
)

type prioKey struct{}

// NewGzIndex returns the Source of the layer x indexes, whose blob serves
// the compressed bytes. startup, if not nil, is the recorded start-up
// order (Entry names). Layers with sparse files are refused
// (ErrUnsupported): the index cannot read them.
func NewGzIndex(x *gzindex.Index, blob Blob, startup []string) (*GzIndex, error) {
	fetch := func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
		prio, _ := ctx.Value(prioKey{}).(remote.Priority)
		b, err := blob.ReadRange(ctx, off, n, prio)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	blocks, err := lru.New[int64, []byte](gzBlockEntries)
	if err != nil {
		return nil, err
	}
	s := &GzIndex{
		x: x, r: gzindex.NewReader(x, fetch), startup: startup,
		files: make(map[string]*gzindex.Entry), blocks: blocks,
	}
	for i := range x.Entries {
		ie := &x.Entries[i]
		e, err := entryFromIndex(ie)
		if err != nil {
			return nil, err
		}
		s.entries = append(s.entries, e)
		delete(s.files, e.Name)
		if e.Type == tar.TypeReg {
			s.files[e.Name] = ie
		}
	}
	return s, nil
}

func entryFromIndex(ie *gzindex.Entry) (Entry, error) {
	e := Entry{
		Name: cleanName(ie.Name), Type: ie.Type, Mode: ie.Mode, UID: ie.UID, GID: ie.GID,
		ModTime: ie.ModTime, Linkname: ie.Linkname, Xattrs: ie.Xattrs(),
		Devmajor: ie.Devmajor, Devminor: ie.Devminor,
	}
	switch ie.Type {
	case tar.TypeReg, tar.TypeRegA, tar.TypeCont:
		if ie.Sparse {
			return Entry{}, fmt.Errorf("sparse file %s: %w", e.Name, ErrUnsupported)
		}
		e.Type, e.Size = tar.TypeReg, ie.Size
	case tar.TypeLink:
		e.Linkname = cleanName(ie.Linkname)
	case tar.TypeDir, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		return Entry{}, fmt.Errorf("tar entry %s of type %q: %w", e.Name, ie.Type, ErrUnsupported)
	}
	return e, nil
}

// Entries implements Source.
func (s *GzIndex) Entries() []Entry { return s.entries }

// StartupOrder implements Source.
func (s *GzIndex) StartupOrder() []string { return s.startup }

// ReadAt implements Source.
func (s *GzIndex) ReadAt(ctx context.Context, name string, p []byte, off int64, prio remote.Priority) (int, error) {
	ie, ok := s.files[name]
	if !ok {
		return 0, fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	if off < 0 {
		return 0, fmt.Errorf("%s: negative offset %d", name, off)
	}
	if off >= ie.Size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), ie.Size-off)
	for n := int64(0); n < want; {
		pos := ie.Offset + off + n
		start := pos / gzBlockSize * gzBlockSize
		b, err := s.block(ctx, start, prio)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		if pos-start >= int64(len(b)) {
			return 0, fmt.Errorf("%s: tar stream ends at %d: %w", name, start+int64(len(b)), ErrCorrupt)
		}
		n += int64(copy(p[n:want], b[pos-start:]))
	}
	if want < int64(len(p)) {
		return int(want), io.EOF
	}
	return int(want), nil
}

// block returns the gzBlockSize bytes of the tar stream at start (fewer at
// its end).
func (s *GzIndex) block(ctx context.Context, start int64, prio remote.Priority) ([]byte, error) {
	if b, ok := s.blocks.Get(start); ok {
		return b, nil
	}
	return s.flights.do(ctx, start, func(ctx context.Context) ([]byte, error) {
		b := make([]byte, min(gzBlockSize, s.x.Size-start))
		_, err := s.r.ReadAt(context.WithValue(ctx, prioKey{}, prio), b, start)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		s.blocks.Add(start, b)
		return b, nil
	})
}

// FileVerifier implements FileVerifier with the CRC-32 the index recorded.
func (s *GzIndex) FileVerifier(name string) (FileCheck, error) {
	ie, ok := s.files[name]
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	return &crcCheck{h: crc32.NewIEEE(), want: ie.CRC32, size: ie.Size}, nil
}

type crcCheck struct {
	h    hash.Hash32
	n    int64
	want uint32
	size int64
}

func (c *crcCheck) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

func (c *crcCheck) Verify() error {
	if c.n != c.size || c.h.Sum32() != c.want {
		return fmt.Errorf("CRC-32 or size differs from the index: %w", ErrCorrupt)
	}
	return nil
}
