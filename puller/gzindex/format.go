package gzindex

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// Serialized form, version 2 (and 3). All integers are unsigned LEB128
// varints (uvarint) unless noted; strings are a uvarint length and the
// bytes.
//
//	magic       8 bytes "FCDGZIX\n"
//	version     uvarint, 3, 2 (or 1)
//	digest      32 bytes, the layer's sha256
//	csize       uvarint, compressed layer size
//	usize       uvarint, uncompressed tar size
//	span        uvarint, maxSpan uvarint (policy, informational; 0 = disabled)
//	chunkSize   uvarint (version 2 on), at least MinChunkSize
//	metaLen     uvarint, then metaLen bytes: raw DEFLATE of the table below
//	chunks      (version 2 on) 32 bytes per chunk, ceil(csize/chunkSize)
//	              of them: the sha256 of blob bytes
//	              [i*chunkSize, min((i+1)*chunkSize, csize))
//	files       (version 2 on) 32 bytes per regular, non-sparse entry
//	              with size > 0, in entry order: the sha256 of its data
//	              (an empty file's digest is implied)
//	winsums     (version 3 only) 32 bytes per checkpoint with a window, in
//	              checkpoint order: the sha256 of its compressed window
//	headsum     (version 3 only) 32 bytes, sha256 of everything before it
//	windows     the checkpoints' windows, each raw DEFLATE, concatenated
//	checksum    32 bytes, sha256 of everything before it
//
// Digests are stored raw, outside the DEFLATE table: they do not
// compress. They are most of a version 2 index's growth (32 bytes per
// file and per 512 KiB of blob).
//
// Version 3 is version 2 with winsums and headsum: everything up to and
// including headsum is the head (HeadSize), which LoadHead reads alone.
// Windows are most of an index with dense checkpoints (about 80% of
// index-only artifacts), and a cold start decodes from a fraction of the
// checkpoints, so a reader fetches the head before mounting and each
// window, verified against its winsum, when a read first needs it.
//
// The table (before DEFLATE):
//
//	entries     uvarint count, then per entry:
//	              shared uvarint (bytes of name shared with the previous name),
//	              name suffix string, type byte, mode uvarint, uid, gid uvarint,
//	              uname, gname string, size uvarint, mtime seconds (zigzag
//	              varint), nanoseconds uvarint, linkname string, devmajor,
//	              devminor uvarint, offset uvarint, crc32 4 bytes little
//	              endian, flags uvarint (bit 0 sparse), PAX record count
//	              uvarint and key, value strings
//	checkpoints uvarint count, then per checkpoint: bit offset delta, output
//	              offset delta, window length, flags (bit 0 member start),
//	              compressed window size (all uvarint)
//	blocks      uvarint count, then per block start: bit delta, output delta
//
// Windows hold the min(32 KiB, since member start) bytes before their
// checkpoint. Load verifies the checksum before parsing, and every offset
// against the sizes.
//
// Version 1 is version 2 without chunkSize, chunks and files. Load still
// reads it (Version reports 1, ChunkSize 0, Entry.Digest is empty and the
// chunk queries fail with ErrNoDigests), so old indexes keep serving
// unverified full-file reads; MarshalBinary writes an index back in the
// version it has. Build always makes version 2.

const (
	magic         = "FCDGZIX\n"
	formatVersion = 3
	// maxWindowLen bounds a compressed window's length: 32 KiB stored
	// uncompressed, plus DEFLATE's block overhead.
	maxWindowLen = windowSize + 1<<10
)

// WindowFetcher returns the n bytes at off of a serialized version 3
// index, which must hash to want (sha256): one window, for an index
// loaded by LoadHead; or, with want empty, a run of windows, unverified
// (each is checked against the head). A remote blob's range read plugs
// in.
type WindowFetcher func(ctx context.Context, off, n int64, want digest.Digest) ([]byte, error)

// hasFileDigest reports whether the format stores a digest for e.
func hasFileDigest(e *Entry) bool { return e.IsRegular() && !e.Sparse && e.Size > 0 }

// emptyDigest is the sha256 of no bytes, an empty file's digest.
var emptyDigest = digest.SHA256.FromBytes(nil)

// MarshalBinary serializes the index.
func (x *Index) MarshalBinary() ([]byte, error) {
	var t enc
	t.uvarint(uint64(len(x.Entries)))
	prev := ""
	for i := range x.Entries {
		e := &x.Entries[i]
		shared := 0
		for shared < len(prev) && shared < len(e.Name) && prev[shared] == e.Name[shared] {
			shared++
		}
		t.uvarint(uint64(shared))
		t.str(e.Name[shared:])
		prev = e.Name
		t.b = append(t.b, e.Type)
		t.uvarint(uint64(e.Mode))
		t.uvarint(uint64(e.UID))
		t.uvarint(uint64(e.GID))
		t.str(e.Uname)
		t.str(e.Gname)
		t.uvarint(uint64(e.Size))
		t.b = binary.AppendVarint(t.b, e.ModTime.Unix())
		t.uvarint(uint64(e.ModTime.Nanosecond()))
		t.str(e.Linkname)
		t.uvarint(uint64(e.Devmajor))
		t.uvarint(uint64(e.Devminor))
		t.uvarint(uint64(e.Offset))
		t.b = binary.LittleEndian.AppendUint32(t.b, e.CRC32)
		var flags uint64
		if e.Sparse {
			flags |= 1
		}
		t.uvarint(flags)
		t.uvarint(uint64(len(e.PAXRecords)))
		for _, k := range sortedKeys(e.PAXRecords) {
			t.str(k)
			t.str(e.PAXRecords[k])
		}
	}
	t.uvarint(uint64(len(x.checkpoints)))
	var pb, po int64
	for _, c := range x.checkpoints {
		t.uvarint(uint64(c.bit - pb))
		t.uvarint(uint64(c.out - po))
		pb, po = c.bit, c.out
		t.uvarint(uint64(c.win))
		var flags uint64
		if c.member {
			flags |= 1
		}
		t.uvarint(flags)
		t.uvarint(uint64(len(c.window)))
	}
	t.uvarint(uint64(len(x.blocks)))
	pb, po = 0, 0
	for _, b := range x.blocks {
		t.uvarint(uint64(b.bit - pb))
		t.uvarint(uint64(b.out - po))
		pb, po = b.bit, b.out
	}

	var meta bytes.Buffer
	fw, _ := flate.NewWriter(&meta, flate.BestCompression)
	fw.Write(t.b)
	if err := fw.Close(); err != nil {
		return nil, err
	}
	dg, err := digestBytes(x.Digest)
	if err != nil {
		return nil, err
	}
	v2, v3 := x.chunkSize > 0, x.version >= 3
	var o enc
	o.b = append(o.b, magic...)
	o.uvarint(uint64(x.Version()))
	o.b = append(o.b, dg[:]...)
	o.uvarint(uint64(x.CompressedSize))
	o.uvarint(uint64(x.Size))
	o.uvarint(uint64(max(x.Span, 0)))
	o.uvarint(uint64(max(x.MaxSpan, 0)))
	if v2 {
		o.uvarint(uint64(x.chunkSize))
	}
	o.uvarint(uint64(meta.Len()))
	o.b = append(o.b, meta.Bytes()...)
	if v2 {
		if int64(x.Chunks()) != chunkCount(x.CompressedSize, x.chunkSize) {
			return nil, fmt.Errorf("gzindex: %d chunk digests for %d bytes in chunks of %d", x.Chunks(), x.CompressedSize, x.chunkSize)
		}
		o.b = append(o.b, x.chunkSums...)
		for i := range x.Entries {
			e := &x.Entries[i]
			if !hasFileDigest(e) {
				continue
			}
			sum, err := digestBytes(string(e.Digest))
			if err != nil {
				return nil, fmt.Errorf("gzindex: entry %q: %w", e.Name, err)
			}
			o.b = append(o.b, sum[:]...)
		}
	}
	if v3 {
		for i := range x.checkpoints {
			c := &x.checkpoints[i]
			if c.lazy != nil {
				return nil, fmt.Errorf("gzindex: an index loaded without its windows cannot be serialized")
			}
			if len(c.window) > 0 {
				sum := sha256.Sum256(c.window)
				o.b = append(o.b, sum[:]...)
			}
		}
		sum := sha256.Sum256(o.b)
		o.b = append(o.b, sum[:]...)
	}
	for _, c := range x.checkpoints {
		o.b = append(o.b, c.window...)
	}
	sum := sha256.Sum256(o.b)
	return append(o.b, sum[:]...), nil
}

func digestBytes(d string) ([32]byte, error) {
	var out [32]byte
	h, ok := strings.CutPrefix(d, "sha256:")
	b, err := hex.DecodeString(h)
	if !ok || err != nil || len(b) != 32 {
		return out, fmt.Errorf("gzindex: bad digest %q: want sha256:<64 hex digits>", d)
	}
	copy(out[:], b)
	return out, nil
}

// Load parses a serialized index and checks that it serves the layer
// with digest ("sha256:<hex>"). A damaged index is an error wrapping
// ErrBadIndex; one for another layer wraps ErrDigestMismatch.
func Load(data []byte, digest string) (*Index, error) {
	_, err := digestBytes(digest)
	if err != nil {
		return nil, err
	}
	if len(data) < len(magic)+32 || string(data[:len(magic)]) != magic {
		return nil, fmt.Errorf("%w: not an index (bad magic)", ErrBadIndex)
	}
	body, sum := data[:len(data)-32], data[len(data)-32:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrBadIndex)
	}
	x, err := parse(body, false)
	if err != nil {
		return nil, err
	}
	if x.Digest != digest {
		return nil, fmt.Errorf("%w: index is for %s, layer is %s", ErrDigestMismatch, x.Digest, digest)
	}
	return x, nil
}

// LoadHead parses the head of a serialized version 3 index (its first
// HeadSize bytes) and checks that it serves the layer with digest, as
// Load does. The index it returns serves reads like a whole one; a read
// that starts from a checkpoint whose window is not yet fetched gets it
// through fetch, verified against the head's sha256 of it, and keeps
// it. The caller authenticates the head itself (its digest named in a
// manifest, say): everything else is checked against it.
func LoadHead(head []byte, digest string, fetch WindowFetcher) (*Index, error) {
	if _, err := digestBytes(digest); err != nil {
		return nil, err
	}
	if len(head) < len(magic)+1 || string(head[:len(magic)]) != magic {
		return nil, fmt.Errorf("%w: not an index (bad magic)", ErrBadIndex)
	}
	if v, _ := binary.Uvarint(head[len(magic):]); v < 3 {
		return nil, fmt.Errorf("%w: version %d has no head; load it whole", ErrBadIndex, v)
	}
	x, err := parse(head, true)
	if err != nil {
		return nil, err
	}
	if x.Digest != digest {
		return nil, fmt.Errorf("%w: index is for %s, layer is %s", ErrDigestMismatch, x.Digest, digest)
	}
	x.windows = fetch
	return x, nil
}

// HeadSize returns the length of a serialized version 3 index's head,
// the part LoadHead reads; it fails for an earlier version, which has
// none, and for a damaged index.
func HeadSize(data []byte) (int64, error) {
	if len(data) < len(magic)+32 || string(data[:len(magic)]) != magic {
		return 0, fmt.Errorf("%w: not an index (bad magic)", ErrBadIndex)
	}
	x, err := parse(data[:len(data)-32], false)
	if err != nil {
		return 0, err
	}
	if x.version < 3 {
		return 0, fmt.Errorf("%w: version %d has no head", ErrBadIndex, x.version)
	}
	return x.headLen, nil
}

// Bounds on what parse accepts, which an index's deflated table does not
// bound: fcd's converter makes indexes of at most 1<<20 entries (the
// default of puller/accel's Options.MaxEntries), whose tables take tens of
// MiB; lazyfs mounts no layer of more entries either. Variables, so that
// tests can lower them.
var (
	maxEntries          = 1 << 20
	maxTableBytes int64 = 256 << 20
)

// parse decodes an index body (without its checksum), or with headOnly
// a version 3 head, and validates it.
func parse(body []byte, headOnly bool) (*Index, error) {
	d := dec{b: body[len(magic):]}
	v := d.uvarint()
	if d.err == nil && (v < 1 || v > formatVersion) {
		return nil, fmt.Errorf("%w: unknown version %d (this build reads 1 to %d)", ErrBadIndex, v, formatVersion)
	}
	x := &Index{version: int(v)}
	x.Digest = "sha256:" + hex.EncodeToString(d.bytes(32))
	x.CompressedSize = d.int()
	x.Size = d.int()
	x.Span = d.int()
	x.MaxSpan = d.int()
	if v >= 2 {
		if x.chunkSize = d.int(); d.err == nil && x.chunkSize < MinChunkSize {
			return nil, fmt.Errorf("%w: chunk size %d", ErrBadIndex, x.chunkSize)
		}
	}
	metaZ := d.bytes(d.int())
	if v >= 2 && d.err == nil {
		n := chunkCount(x.CompressedSize, x.chunkSize)
		if n > int64(len(d.b)/sha256.Size) {
			return nil, fmt.Errorf("%w: chunk digests truncated", ErrBadIndex)
		}
		x.chunkSums = d.bytes(n * sha256.Size)
	}
	if d.err != nil {
		return nil, d.err
	}
	windows := d.b
	// The table is deflated: a few KiB of index may claim gigabytes.
	meta, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(metaZ)), maxTableBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: table: %v", ErrBadIndex, err)
	}
	if int64(len(meta)) > maxTableBytes {
		return nil, fmt.Errorf("%w: table of more than %d bytes", ErrBadIndex, maxTableBytes)
	}
	t := dec{b: meta}
	n := t.count(20)
	if n > maxEntries {
		return nil, fmt.Errorf("%w: %d entries, more than %d", ErrBadIndex, n, maxEntries)
	}
	x.Entries = make([]Entry, 0, n)
	prev := ""
	for range n {
		var e Entry
		shared := t.int()
		if shared > int64(len(prev)) {
			return nil, fmt.Errorf("%w: bad name prefix", ErrBadIndex)
		}
		e.Name = prev[:shared] + t.str()
		prev = e.Name
		e.Type = t.byte()
		e.Mode = t.int()
		e.UID = int(t.int())
		e.GID = int(t.int())
		e.Uname = t.str()
		e.Gname = t.str()
		e.Size = t.int()
		sec := t.varint()
		nsec := t.int()
		if nsec >= 1e9 {
			t.fail("bad mtime")
		}
		e.ModTime = time.Unix(sec, nsec)
		e.Linkname = t.str()
		e.Devmajor = t.int()
		e.Devminor = t.int()
		e.Offset = t.int()
		e.CRC32 = binary.LittleEndian.Uint32(t.bytes(4))
		e.Sparse = t.uvarint()&1 != 0
		if np := t.count(2); np > 0 {
			e.PAXRecords = make(map[string]string, np)
			for range np {
				k := t.str()
				e.PAXRecords[k] = t.str()
			}
		}
		if t.err != nil {
			return nil, t.err
		}
		if e.Offset > x.Size || e.IsRegular() && !e.Sparse && e.Size > x.Size-e.Offset {
			return nil, fmt.Errorf("%w: entry %q outside the layer", ErrBadIndex, e.Name)
		}
		x.Entries = append(x.Entries, e)
	}
	if v >= 2 {
		for i := range x.Entries {
			e := &x.Entries[i]
			switch {
			case hasFileDigest(e):
				if len(windows) < sha256.Size {
					return nil, fmt.Errorf("%w: file digests truncated", ErrBadIndex)
				}
				e.Digest = digest.NewDigestFromBytes(digest.SHA256, windows[:sha256.Size])
				windows = windows[sha256.Size:]
			case e.IsRegular() && !e.Sparse:
				e.Digest = emptyDigest
			}
		}
	}
	n = t.count(5)
	x.checkpoints = make([]checkpoint, 0, n)
	var pb, po int64
	for i := range n {
		var c checkpoint
		c.bit = pb + t.int()
		c.out = po + t.int()
		c.win = int32(min(t.int(), windowSize+1))
		c.member = t.uvarint()&1 != 0
		wl := t.int()
		if t.err != nil {
			return nil, t.err
		}
		if wl > maxWindowLen || c.win > windowSize || int64(c.win) > c.out ||
			c.bit > x.CompressedSize*8 || c.out > x.Size || (i > 0 && c.bit <= pb) ||
			(i == 0 && (c.bit != 0 || !c.member)) || (c.member && (c.win != 0 || c.bit%8 != 0)) ||
			(c.win > 0) != (wl > 0) {
			return nil, fmt.Errorf("%w: bad checkpoint %d", ErrBadIndex, i)
		}
		c.wlen = wl
		pb, po = c.bit, c.out
		x.checkpoints = append(x.checkpoints, c)
	}
	if len(x.checkpoints) == 0 {
		return nil, fmt.Errorf("%w: no checkpoints", ErrBadIndex)
	}
	if v >= 3 {
		var err error
		if windows, err = x.parseHeadEnd(body, windows, headOnly); err != nil {
			return nil, err
		}
	}
	if !headOnly || v < 3 {
		for i := range x.checkpoints {
			c := &x.checkpoints[i]
			if c.wlen > int64(len(windows)) {
				return nil, fmt.Errorf("%w: checkpoints and windows disagree", ErrBadIndex)
			}
			c.window, windows = windows[:c.wlen:c.wlen], windows[c.wlen:]
		}
	}
	if len(windows) != 0 {
		return nil, fmt.Errorf("%w: checkpoints and windows disagree", ErrBadIndex)
	}
	n = t.count(2)
	x.blocks = make([]blockPos, 0, n)
	pb, po = 0, 0
	for range n {
		b := blockPos{bit: pb + t.int(), out: po + t.int()}
		if t.err != nil {
			return nil, t.err
		}
		if b.bit > x.CompressedSize*8 || b.out > x.Size || b.bit < pb || b.out < po {
			return nil, fmt.Errorf("%w: bad block position", ErrBadIndex)
		}
		pb, po = b.bit, b.out
		x.blocks = append(x.blocks, b)
	}
	if t.err == nil && len(t.b) != 0 {
		t.fail("trailing bytes in table")
	}
	if t.err != nil {
		return nil, t.err
	}
	return x, nil
}

// parseHeadEnd reads a version 3 index's window sums and head checksum
// from rest, the end of body, and returns what follows: the windows (none
// with headOnly). It records each window's offset and sets the head's
// length.
func (x *Index) parseHeadEnd(body, rest []byte, headOnly bool) ([]byte, error) {
	for i := range x.checkpoints {
		c := &x.checkpoints[i]
		if c.wlen == 0 {
			continue
		}
		if len(rest) < sha256.Size {
			return nil, fmt.Errorf("%w: window digests truncated", ErrBadIndex)
		}
		copy(c.wsum[:], rest)
		rest = rest[sha256.Size:]
	}
	if len(rest) < sha256.Size {
		return nil, fmt.Errorf("%w: head checksum truncated", ErrBadIndex)
	}
	end := len(body) - len(rest)
	if got := sha256.Sum256(body[:end]); !bytes.Equal(got[:], rest[:sha256.Size]) {
		return nil, fmt.Errorf("%w: head checksum mismatch", ErrBadIndex)
	}
	x.headLen = int64(end + sha256.Size)
	rest = rest[sha256.Size:]
	off := x.headLen
	for i := range x.checkpoints {
		c := &x.checkpoints[i]
		c.woff = off
		off += c.wlen
		if headOnly && c.wlen > 0 {
			c.lazy = &lazyWindow{}
		}
	}
	return rest, nil
}

// chunkCount is the number of chunks of size chunk in size bytes.
func chunkCount(size, chunk int64) int64 { return (size + chunk - 1) / chunk }

type enc struct{ b []byte }

func (e *enc) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }

// dec reads the encoding; the first error sticks and later reads return
// zero values.
type dec struct {
	b   []byte
	err error
}

func (d *dec) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrBadIndex, what)
	}
	d.b = nil
}

func (d *dec) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("truncated")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("truncated")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// int reads a uvarint that must fit a non-negative int64.
func (d *dec) int() int64 {
	v := d.uvarint()
	if v > 1<<62 {
		d.fail("value out of range")
		return 0
	}
	return int64(v)
}

// count reads an element count, each element at least minSize bytes.
func (d *dec) count(minSize int) int {
	v := d.int()
	if v > int64(len(d.b)/minSize) {
		d.fail("count larger than data")
		return 0
	}
	return int(v)
}

func (d *dec) bytes(n int64) []byte {
	if n > int64(len(d.b)) {
		d.fail("truncated")
		return make([]byte, n%64)
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) byte() byte {
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *dec) str() string { return string(d.bytes(d.int())) }

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
