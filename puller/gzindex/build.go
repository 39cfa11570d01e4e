package gzindex

import (
	"archive/tar"
	"bytes"
	"cmp"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"strings"

	"github.com/opencontainers/go-digest"
)

const (
	// DefaultSpan is the default Options.Span: a file's data starts at most
	// this many compressed bytes (plus one deflate block) after a checkpoint.
	DefaultSpan = 512 << 10
	// DefaultMaxSpan is the default Options.MaxSpan.
	DefaultMaxSpan = 8 << 20

	inChunk  = 256 << 10
	outChunk = 256 << 10
)

// Options tune Build. The zero value gives the defaults.
type Options struct {
	// Span is the file-start policy: when a regular file's data starts
	// more than Span compressed bytes after the last checkpoint, the block
	// boundary before it becomes a checkpoint. Reading a small file then
	// fetches at most about Span bytes plus one block. Zero means
	// DefaultSpan; negative disables the policy.
	Span int64
	// MaxSpan is the fixed-span policy: a block boundary more than MaxSpan
	// compressed bytes after the last checkpoint becomes one, bounding
	// reads in the middle of large files. Zero means DefaultMaxSpan;
	// negative disables it.
	MaxSpan int64
	// Digest, when set ("sha256:<hex>"), is the digest the blob must have;
	// Build fails with ErrDigestMismatch otherwise.
	Digest string
	// MediaType, when set, is the layer's declared media type; non-gzip
	// types are refused with ErrUnsupported before anything is read.
	MediaType string
	// WindowLevel is the compress/flate level for windows. Zero means
	// flate.BestSpeed.
	WindowLevel int
	// ChunkSize is the size of the aligned compressed chunks whose sha256
	// the index records (the lazy reader's fetch and cache unit). Zero
	// means ChunkSize; it must be at least MinChunkSize.
	ChunkSize int64
	// Version is the format version MarshalBinary writes: 2 (zero means
	// 2) or 3, which puts the windows after a separately checksummed
	// head, so that a reader can load the head alone (LoadHead) and fetch
	// each window by range when a read first starts from its checkpoint.
	Version int
}

func (o Options) span() int64 {
	if o.Span == 0 {
		return DefaultSpan
	}
	return o.Span
}

func (o Options) maxSpan() int64 {
	if o.MaxSpan == 0 {
		return DefaultMaxSpan
	}
	return o.MaxSpan
}

// Build reads a gzip-compressed tar layer once, from r, and returns its
// index. It keeps no copy of the layer; memory is a few hundred KiB plus
// the index itself. The whole stream is verified (gzip CRC-32 and sizes)
// and hashed; the index records the sha256 digest. A malformed stream is
// an error wrapping ErrCorrupt, a non-gzip layer one wrapping
// ErrUnsupported.
func Build(ctx context.Context, r io.Reader, opts Options) (*Index, error) {
	if err := checkMediaType(opts.MediaType); err != nil {
		return nil, err
	}
	head := make([]byte, 512)
	n, err := io.ReadFull(r, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, fmt.Errorf("read layer: %w", err)
	}
	head = head[:n]
	if err := sniff(head); err != nil {
		return nil, err
	}
	chunk := cmp.Or(opts.ChunkSize, ChunkSize)
	if chunk < MinChunkSize {
		return nil, fmt.Errorf("gzindex: chunk size %d below the minimum %d", chunk, MinChunkSize)
	}
	in := &hashReader{ctx: ctx, r: io.MultiReader(bytes.NewReader(head), r), h: sha256.New(),
		chunks: chunkHasher{size: chunk, h: sha256.New()}}
	b := &builder{
		in:      in,
		fh:      sha256.New(),
		x:       &Index{Span: opts.span(), MaxSpan: opts.maxSpan(), version: cmp.Or(opts.Version, 2), chunkSize: chunk},
		s:       newStream(in, inChunk, outChunk, true),
		span:    opts.span() * 8,
		maxSpan: opts.maxSpan() * 8,
	}
	if v := b.x.version; v != 2 && v != formatVersion {
		return nil, fmt.Errorf("gzindex: cannot build format version %d (2 or %d)", v, formatVersion)
	}
	b.s.beforeSlide = b.beforeSlide
	b.level = cmp.Or(opts.WindowLevel, flate.BestSpeed)
	if b.level < flate.HuffmanOnly || b.level > flate.BestCompression {
		return nil, fmt.Errorf("gzindex: invalid window compression level %d", b.level)
	}
	if err := b.run(); err != nil {
		return nil, err
	}
	x := b.x
	x.CompressedSize = in.n
	x.Size = b.s.consumed()
	x.Digest = "sha256:" + hex.EncodeToString(in.h.Sum(nil))
	x.chunkSums = in.chunks.finish()
	if opts.Digest != "" && opts.Digest != x.Digest {
		return nil, fmt.Errorf("%w: layer is %s, want %s", ErrDigestMismatch, x.Digest, opts.Digest)
	}
	return x, nil
}

// hashReader hashes and counts the compressed stream and stops it when
// the context ends.
type hashReader struct {
	ctx context.Context
	r   io.Reader
	h   hash.Hash
	n   int64

	// ret retains the compressed bytes from absolute offset retBase on,
	// for re-decoding after checkpoints (see builder.finalize).
	ret     []byte
	retBase int64
	retOff  bool // retention given up (ret grew past maxRetain)

	chunks chunkHasher
}

// chunkHasher takes the sha256 of each aligned chunk of a stream.
type chunkHasher struct {
	size int64
	h    hash.Hash
	n    int64  // bytes of the current chunk hashed so far
	sums []byte // 32 bytes per finished chunk
}

func (c *chunkHasher) write(p []byte) {
	for len(p) > 0 {
		k := int(min(int64(len(p)), c.size-c.n))
		c.h.Write(p[:k])
		c.n += int64(k)
		p = p[k:]
		if c.n == c.size {
			c.sums = c.h.Sum(c.sums)
			c.h.Reset()
			c.n = 0
		}
	}
}

// finish returns the digests, including that of a final partial chunk.
func (c *chunkHasher) finish() []byte {
	if c.n > 0 {
		c.sums = c.h.Sum(c.sums)
		c.h.Reset()
		c.n = 0
	}
	return c.sums
}

// maxRetain bounds the compressed bytes kept for window trimming; a
// stream with larger blocks keeps whole windows instead.
const maxRetain = 32 << 20

// trim drops retained bytes before absolute offset from.
func (r *hashReader) trim(from int64) {
	if r.retOff {
		return
	}
	if from > r.retBase {
		n := copy(r.ret, r.ret[min(from-r.retBase, int64(len(r.ret))):])
		r.ret = r.ret[:n]
		r.retBase = from
	}
}

func (r *hashReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := r.r.Read(p)
	r.h.Write(p[:n])
	r.chunks.write(p[:n])
	r.n += int64(n)
	if !r.retOff {
		if len(r.ret)+n > maxRetain {
			r.retOff, r.ret = true, nil
		} else {
			r.ret = append(r.ret, p[:n]...)
		}
	}
	return n, err
}

type builder struct {
	in    *hashReader
	x     *Index
	s     *stream
	fw    *flate.Writer // made on first use: it is large
	level int

	wbuf          bytes.Buffer
	span, maxSpan int64 // in bits

	next               int      // first boundary in s.d.bounds not yet seen by advance
	last               boundary // latest boundary at or before the reader
	haveLast           bool
	snap               []byte // last's window, saved when the stream slid past it
	snapOK             bool
	crc                uint32    // checksum of the current entry's data so far
	fh                 hash.Hash // sha256 of the current entry's data so far
	dataStart, dataEnd int64     // the current entry's data in the stream

	sum [sha256.Size]byte

	kept     boundary // latest checkpoint
	haveKept bool
	err      error

	pending []pendingWindow // checkpoints whose windows are not yet trimmed
	m       inflater        // re-decoder for trimming
	mIn     []byte
	mOut    []byte
}

// pendingWindow is a checkpoint waiting for 32 KiB of output after it,
// to learn which bytes of its window are referenced.
type pendingWindow struct {
	cp  int // index in x.checkpoints
	raw []byte
}

func (b *builder) run() error {
	tr := tar.NewReader(b)
	var prev *Entry
	for {
		hdr, err := tr.Next()
		if prev != nil {
			prev.CRC32 = b.crc
			prev.Digest = digest.NewDigestFromBytes(digest.SHA256, b.fh.Sum(b.sum[:0]))
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return b.wrap(err)
		}
		e := entryFromHeader(hdr, b.s.consumed())
		if e.IsRegular() && e.Size > 0 && !e.Sparse {
			b.fileStart()
		}
		b.x.Entries = append(b.x.Entries, e)
		prev = &b.x.Entries[len(b.x.Entries)-1]
		// The data's CRC is taken as tar reads or skips past it.
		b.crc, b.dataStart, b.dataEnd = 0, e.Offset, e.Offset
		b.fh.Reset()
		if e.IsRegular() && !e.Sparse {
			b.dataEnd += e.Size
		} else {
			prev = nil
		}
	}
	// The tar end-of-archive blocks, record padding and later gzip members
	// are part of the layer too: decode and verify them.
	if _, err := b.Seek(1<<62, io.SeekCurrent); err != nil {
		return b.wrap(err)
	}
	if b.s.err != io.EOF {
		return b.wrap(b.s.err)
	}
	b.advance()
	b.finishWindows(true)
	return b.err
}

// pass accounts for the n bytes the reader is about to take at out[rd:].
func (b *builder) pass(n int) {
	pos := b.s.consumed()
	lo, hi := max(pos, b.dataStart), min(pos+int64(n), b.dataEnd)
	if lo < hi {
		base := b.s.d.outBase
		data := b.s.d.out[lo-base : hi-base]
		b.crc = crc32.Update(b.crc, crc32.IEEETable, data)
		b.fh.Write(data)
	}
}

// Seek lets archive/tar skip file data without copying it: only
// (offset, io.SeekCurrent) with offset >= 0 is supported. Skipping past
// the end stops there.
func (b *builder) Seek(offset int64, whence int) (int64, error) {
	if whence != io.SeekCurrent || offset < 0 {
		return 0, errors.New("gzindex: unsupported seek")
	}
	for offset > 0 && b.err == nil {
		if b.s.rd == b.s.d.op {
			if err := b.s.fill(); err == io.EOF {
				break
			} else if err != nil {
				return 0, err
			}
		}
		n := int(min(offset, int64(b.s.d.op-b.s.rd)))
		b.pass(n)
		b.s.rd += n
		offset -= int64(n)
		b.advance()
	}
	if b.err != nil {
		return 0, b.err
	}
	return b.s.consumed(), nil
}

// wrap prefers the builder's or the decoder's error over tar's reading of it.
func (b *builder) wrap(err error) error {
	if b.err != nil {
		return b.err
	}
	if b.s.err != nil && b.s.err != io.EOF {
		return b.s.err
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, tar.ErrHeader) {
		return fmt.Errorf("%w: tar: %w", ErrCorrupt, err)
	}
	return fmt.Errorf("read tar: %w", err)
}

func (b *builder) Read(p []byte) (int, error) {
	if b.s.rd == b.s.d.op {
		if err := b.s.fill(); err != nil {
			b.advance()
			return 0, err
		}
	}
	n := min(len(p), b.s.d.op-b.s.rd)
	b.pass(n)
	n, err := b.s.Read(p[:n])
	b.advance()
	if b.err != nil {
		return n, b.err
	}
	return n, err
}

// advance walks the boundaries the reader has passed, applying the
// fixed-span policy.
func (b *builder) advance() {
	pos := b.s.consumed()
	bounds := b.s.d.bounds
	for ; b.next < len(bounds) && bounds[b.next].out <= pos; b.next++ {
		bd := bounds[b.next]
		b.x.blocks = append(b.x.blocks, blockPos{bit: bd.bit, out: bd.out})
		b.last, b.haveLast, b.snapOK = bd, true, false
		if !b.haveKept || b.maxSpan > 0 && bd.bit-b.kept.bit > b.maxSpan {
			b.keep()
		}
	}
}

// fileStart applies the file-start policy for data starting at the reader.
func (b *builder) fileStart() {
	if b.span > 0 && b.haveLast && b.last.bit-b.kept.bit > b.span {
		b.keep()
	}
}

// keep makes b.last a checkpoint.
func (b *builder) keep() {
	if b.err != nil || b.haveKept && b.kept.bit == b.last.bit {
		return
	}
	bd := b.last
	b.kept, b.haveKept = bd, true
	cp := checkpoint{boundary: bd}
	if bd.win > 0 {
		var raw []byte
		if start := bd.out - int64(bd.win) - b.s.d.outBase; start >= 0 {
			raw = b.s.d.out[start : start+int64(bd.win)]
		} else if b.snapOK {
			raw = b.snap
		} else {
			b.err = fmt.Errorf("gzindex: internal error: window of boundary at bit %d lost", bd.bit)
			return
		}
		b.pending = append(b.pending, pendingWindow{cp: len(b.x.checkpoints), raw: bytes.Clone(raw)})
	}
	b.x.checkpoints = append(b.x.checkpoints, cp)
}

// finishWindows trims and compresses the pending windows that have 32
// KiB of output after them, or all of them at the end of the stream.
func (b *builder) finishWindows(all bool) {
	produced := b.s.d.outBase + int64(b.s.d.op)
	done := 0
	for _, p := range b.pending {
		cp := &b.x.checkpoints[p.cp]
		if !all && produced < cp.out+windowSize {
			break
		}
		if b.err != nil {
			return
		}
		b.trimWindow(cp, p.raw)
		b.wbuf.Reset()
		if b.fw == nil {
			b.fw, _ = flate.NewWriter(&b.wbuf, b.level) // level checked in Build
		}
		b.fw.Reset(&b.wbuf)
		b.fw.Write(p.raw)
		if err := b.fw.Close(); err != nil {
			b.err = err
			return
		}
		cp.window = bytes.Clone(b.wbuf.Bytes())
		done++
	}
	b.pending = b.pending[:copy(b.pending, b.pending[done:])]
}

// trimWindow zeroes the bytes of raw that no back-reference in the 32
// KiB after the checkpoint copies from, so the window compresses to
// little more than its referenced bytes. It re-decodes that stretch from
// the retained compressed bytes; without them the window stays whole.
func (b *builder) trimWindow(cp *checkpoint, raw []byte) {
	if noTrim {
		return
	}
	in := b.in
	from := cp.bit/8 - in.retBase
	if in.retOff || from < 0 || from >= int64(len(in.ret)) {
		return
	}
	if b.mOut == nil {
		b.mIn = make([]byte, 0, 32<<10)
		b.mOut = make([]byte, 2*windowSize+maxMatch)
	}
	m := &b.m
	m.resetAt(bytes.NewReader(in.ret[from:]), cp.boundary, raw, b.mIn, b.mOut)
	m.mark = make([]uint64, windowSize/64)
	m.markLim = len(raw)
	if err := m.decode(len(raw) + windowSize); err != nil {
		return
	}
	for i := range raw {
		if m.mark[i>>6]&(1<<(i&63)) == 0 {
			raw[i] = 0
		}
	}
}

// noTrim turns window trimming off, for benchmarks comparing with whole
// windows.
var noTrim bool

// retainFrom is the earliest compressed offset a later trimWindow may
// need: the oldest pending checkpoint, the boundary a file start may
// still promote, and the boundaries not yet walked.
func (b *builder) retainFrom() int64 {
	from := b.s.d.bitPos() / 8
	if len(b.pending) > 0 {
		from = min(from, b.x.checkpoints[b.pending[0].cp].bit/8)
	}
	if b.haveLast {
		from = min(from, b.last.bit/8)
	}
	if b.next < len(b.s.d.bounds) {
		from = min(from, b.s.d.bounds[b.next].bit/8)
	}
	return from
}

// beforeSlide runs when the stream is about to drop all but the last 32
// KiB of its output: it saves the window of the latest boundary, which a
// file starting later may still need, and forgets older boundaries.
func (b *builder) beforeSlide() {
	b.advance()
	d := &b.s.d
	if b.haveLast && !b.snapOK && b.last.win > 0 {
		keepFrom := d.outBase + int64(d.op) - windowSize
		if b.last.out-int64(b.last.win) < keepFrom {
			start := b.last.out - int64(b.last.win) - d.outBase
			b.snap = append(b.snap[:0], d.out[start:start+int64(b.last.win)]...)
			b.snapOK = true
		}
	}
	n := copy(d.bounds, d.bounds[b.next:])
	d.bounds = d.bounds[:n]
	b.next = 0
	b.finishWindows(false)
	b.in.trim(b.retainFrom())
}

// Reflected PAX records are dropped: the header fields carry them.
var reflectedPAX = map[string]bool{
	"path": true, "linkpath": true, "size": true, "uid": true, "gid": true,
	"uname": true, "gname": true, "mtime": true,
}

func entryFromHeader(h *tar.Header, off int64) Entry {
	e := Entry{
		Name: h.Name, Linkname: h.Linkname, Type: h.Typeflag, Mode: h.Mode,
		UID: h.Uid, GID: h.Gid, Uname: h.Uname, Gname: h.Gname, Size: h.Size,
		ModTime: h.ModTime, Devmajor: h.Devmajor, Devminor: h.Devminor, Offset: off,
	}
	if h.Typeflag == tar.TypeGNUSparse {
		e.Sparse = true
		e.Type = tar.TypeReg
	}
	for k, v := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			e.Sparse = true
		}
		if reflectedPAX[k] {
			continue
		}
		if e.PAXRecords == nil {
			e.PAXRecords = make(map[string]string)
		}
		e.PAXRecords[k] = v
	}
	return e
}
