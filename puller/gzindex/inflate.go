package gzindex

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// This file holds a DEFLATE (RFC 1951) and gzip (RFC 1952) decoder that,
// unlike compress/flate, reports where every block starts and can resume
// at any block start, bit-aligned, given the 32 KiB window before it.
//
// The decoder writes into a flat output buffer whose front holds the
// history that back-references may reach; the caller slides it when it
// fills. It stops once the output passes a target, so one Huffman symbol
// may overshoot the target by up to maxMatch bytes: the buffer must have
// that much room past any target.

const (
	windowSize = 32 << 10
	maxMatch   = 258
)

type inflateState uint8

const (
	stMember  inflateState = iota // a gzip member header, or the clean end of the stream
	stBlock                       // a block header
	stStored                      // inside a stored block
	stHuffman                     // inside a fixed or dynamic Huffman block
	stTrailer                     // the gzip trailer after a final block
	stDone                        // end of stream
)

// boundary is a place where a decoder can start: a block header or a gzip
// member header.
type boundary struct {
	bit    int64 // absolute bit offset in the compressed stream
	out    int64 // absolute offset in the uncompressed stream
	win    int32 // bytes of history back-references may use: min(32 KiB, since member start)
	member bool  // a gzip member header starts here (byte-aligned, win is 0)
}

type inflater struct {
	r      io.Reader
	rerr   error // sticky error of r, io.EOF included
	in     []byte
	ip     int   // next unread byte of in
	inBase int64 // absolute compressed offset of in[0]
	bb     uint64
	nb     uint // valid bits in bb
	pad    uint // zero bits appended to bb past the end of input

	out     []byte
	op      int   // next byte to write in out
	outBase int64 // absolute uncompressed offset of out[0]
	histLo  int   // earliest byte of out back-references may reach

	st      inflateState
	final   bool
	stored  int
	lit     *huffTable
	dist    *huffTable
	dynLit  huffTable
	dynDist huffTable
	codeTab huffTable
	lens    [286 + 30]uint8

	verify    bool // check gzip CRC-32 and ISIZE
	crc       uint32
	crcPos    int
	memberOut int64 // absolute uncompressed offset where the current member began
	members   int

	record bool // append boundaries to bounds
	bounds []boundary

	raw bool // a bare DEFLATE stream: no gzip framing, ends after the final block

	// mark, when markLim > 0, records which bytes of out[:markLim] (a
	// preset window) back-references copy from, one bit per byte.
	mark    []uint64
	markLim int
}

// resetStream prepares d to decode a gzip stream from its first byte.
func (d *inflater) resetStream(r io.Reader, in, out []byte) {
	*d = inflater{r: r, in: in[:0], out: out, verify: true, record: d.record, bounds: d.bounds[:0],
		dynLit: d.dynLit, dynDist: d.dynDist, codeTab: d.codeTab}
}

// resetRaw prepares d to decode a bare DEFLATE stream (RFC 1951).
func (d *inflater) resetRaw(r io.Reader, in, out []byte) {
	d.resetStream(r, in, out)
	d.raw, d.verify, d.members, d.st = true, false, 1, stBlock
}

// resetAt prepares d to decode from boundary b, with r yielding the
// compressed stream from byte b.bit/8 on and window holding the b.win
// bytes before b.out. CRC checks are off: the member is entered midway.
func (d *inflater) resetAt(r io.Reader, b boundary, window, in, out []byte) {
	*d = inflater{r: r, in: in[:0], out: out, inBase: b.bit / 8,
		dynLit: d.dynLit, dynDist: d.dynDist, codeTab: d.codeTab}
	d.op = copy(out, window)
	d.outBase = b.out - int64(d.op)
	d.memberOut = b.out - int64(b.win)
	d.members = 1
	d.crcPos = d.op
	if b.member {
		d.st = stMember
		return
	}
	d.st = stBlock
	if k := uint(b.bit % 8); k != 0 {
		d.refillSlow()
		d.bb >>= k
		d.nb -= k
	}
}

// bitPos is the absolute bit offset of the next unread bit.
func (d *inflater) bitPos() int64 {
	return (d.inBase+int64(d.ip))*8 - (int64(d.nb) - int64(d.pad))
}

func (d *inflater) corrupt(what string) error {
	return fmt.Errorf("%w: %s at bit %d", ErrCorrupt, what, d.bitPos())
}

// eofErr is the error for consuming bits past the end of input.
func (d *inflater) eofErr() error {
	if d.rerr != nil && d.rerr != io.EOF {
		return fmt.Errorf("read compressed stream: %w", d.rerr)
	}
	return fmt.Errorf("%w: %w at bit %d", ErrCorrupt, io.ErrUnexpectedEOF, d.bitPos())
}

// moreInput keeps the unread bytes of in and appends what r gives.
func (d *inflater) moreInput() error {
	if d.rerr != nil {
		return d.rerr
	}
	if d.ip > 0 {
		n := copy(d.in[:cap(d.in)], d.in[d.ip:])
		d.inBase += int64(d.ip)
		d.in = d.in[:n]
		d.ip = 0
	}
	for range 100 {
		n, err := d.r.Read(d.in[len(d.in):cap(d.in)])
		d.in = d.in[:len(d.in)+n]
		if err != nil {
			d.rerr = err
			if n > 0 {
				return nil
			}
			return err
		}
		if n > 0 {
			return nil
		}
	}
	d.rerr = io.ErrNoProgress
	return d.rerr
}

// refillSlow tops the bit buffer up to at least 56 bits, padding with
// zero bits once the input is exhausted; consuming padding is detected by
// the callers (nb < pad) and reported by eofErr.
func (d *inflater) refillSlow() {
	d.bb &= 1<<d.nb - 1
	for d.nb <= 56 {
		if d.ip < len(d.in) {
			d.bb |= uint64(d.in[d.ip]) << d.nb
			d.ip++
			d.nb += 8
			continue
		}
		if d.moreInput() == nil {
			continue
		}
		d.nb += 8
		d.pad += 8
	}
}

func (d *inflater) bits(n uint) (uint32, error) {
	if d.nb < n {
		d.refillSlow()
	}
	v := uint32(d.bb & (1<<n - 1))
	d.bb >>= n
	d.nb -= n
	if d.nb < d.pad {
		return 0, d.eofErr()
	}
	return v, nil
}

func (d *inflater) alignByte() {
	k := d.nb & 7
	d.bb >>= k
	d.nb -= k
}

// atEOF reports whether no input is left; it may read from r.
func (d *inflater) atEOF() bool {
	if d.nb > d.pad || d.ip < len(d.in) {
		return false
	}
	return d.moreInput() != nil
}

// decode runs until the output reaches target or the stream ends
// (d.st == stDone). target must leave maxMatch bytes of room in out.
func (d *inflater) decode(target int) error {
	for d.op < target {
		var err error
		switch d.st {
		case stMember:
			err = d.memberHeader()
		case stBlock:
			err = d.blockHeader()
		case stStored:
			err = d.storedCopy(target)
		case stHuffman:
			err = d.huffman(target)
		case stTrailer:
			err = d.trailer()
		case stDone:
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (d *inflater) memberHeader() error {
	if d.atEOF() {
		if d.rerr != io.EOF {
			return d.eofErr()
		}
		if d.members == 0 {
			return fmt.Errorf("%w: empty stream", ErrCorrupt)
		}
		d.st = stDone
		return nil
	}
	start := d.bitPos()
	var hdr [10]byte
	for i := range hdr {
		v, err := d.bits(8)
		if err != nil {
			return err
		}
		hdr[i] = byte(v)
	}
	if hdr[0] != 0x1f || hdr[1] != 0x8b {
		return d.corrupt("bad gzip magic")
	}
	if hdr[2] != 8 {
		return d.corrupt("gzip compression method is not deflate")
	}
	flg := hdr[3]
	if flg&0xe0 != 0 {
		return d.corrupt("reserved gzip flags set")
	}
	if flg&0x04 != 0 { // FEXTRA
		xlen, err := d.bits(16)
		if err != nil {
			return err
		}
		for range xlen {
			if _, err := d.bits(8); err != nil {
				return err
			}
		}
	}
	for _, f := range []byte{0x08, 0x10} { // FNAME, FCOMMENT: zero-terminated
		if flg&f == 0 {
			continue
		}
		for {
			c, err := d.bits(8)
			if err != nil {
				return err
			}
			if c == 0 {
				break
			}
		}
	}
	if flg&0x02 != 0 { // FHCRC
		if _, err := d.bits(16); err != nil {
			return err
		}
	}
	if d.record {
		d.bounds = append(d.bounds, boundary{bit: start, out: d.outBase + int64(d.op), member: true})
	}
	d.members++
	d.memberOut = d.outBase + int64(d.op)
	d.crc = 0
	d.crcPos = d.op
	d.histLo = d.op
	d.st = stBlock
	return nil
}

func (d *inflater) blockHeader() error {
	if d.record {
		out := d.outBase + int64(d.op)
		d.bounds = append(d.bounds, boundary{bit: d.bitPos(), out: out, win: int32(min(windowSize, out-d.memberOut))})
	}
	v, err := d.bits(3)
	if err != nil {
		return err
	}
	d.final = v&1 != 0
	switch v >> 1 {
	case 0:
		d.alignByte()
		v, err := d.bits(32)
		if err != nil {
			return err
		}
		if uint16(v) != ^uint16(v>>16) {
			return d.corrupt("stored block length check failed")
		}
		d.stored = int(uint16(v))
		d.st = stStored
	case 1:
		d.lit, d.dist = &fixedLit, &fixedDist
		d.st = stHuffman
	case 2:
		if err := d.dynamicHeader(); err != nil {
			return err
		}
		d.lit, d.dist = &d.dynLit, &d.dynDist
		d.st = stHuffman
	default:
		return d.corrupt("reserved block type")
	}
	return nil
}

func (d *inflater) endBlock() {
	if d.final && d.raw {
		d.st = stDone
	} else if d.final {
		d.st = stTrailer
	} else {
		d.st = stBlock
	}
}

func (d *inflater) dynamicHeader() error {
	v, err := d.bits(14)
	if err != nil {
		return err
	}
	nlit := int(v&31) + 257
	ndist := int(v>>5&31) + 1
	nclen := int(v>>10) + 4
	if nlit > 286 || ndist > 30 {
		return d.corrupt("too many length or distance codes")
	}
	var clens [19]uint8
	for i := range nclen {
		l, err := d.bits(3)
		if err != nil {
			return err
		}
		clens[codeOrder[i]] = uint8(l)
	}
	if !d.codeTab.init(clens[:], 7, kindCode) {
		return d.corrupt("invalid code length code")
	}
	lens := d.lens[:nlit+ndist]
	for i := 0; i < len(lens); {
		if d.nb < 7+7 {
			d.refillSlow()
		}
		e := d.codeTab.t[d.bb&d.codeTab.mask]
		n := uint(e & 0xff)
		if e>>8&0xff == opBad {
			return d.corrupt("invalid code length symbol")
		}
		d.bb >>= n
		d.nb -= n
		if d.nb < d.pad {
			return d.eofErr()
		}
		sym := int(e >> 16)
		if sym < 16 {
			lens[i] = uint8(sym)
			i++
			continue
		}
		var rep int
		var val uint8
		switch sym {
		case 16:
			if i == 0 {
				return d.corrupt("repeat with no previous length")
			}
			x, err := d.bits(2)
			if err != nil {
				return err
			}
			rep, val = 3+int(x), lens[i-1]
		case 17:
			x, err := d.bits(3)
			if err != nil {
				return err
			}
			rep = 3 + int(x)
		default:
			x, err := d.bits(7)
			if err != nil {
				return err
			}
			rep = 11 + int(x)
		}
		if i+rep > len(lens) {
			return d.corrupt("code lengths overflow")
		}
		for range rep {
			lens[i] = val
			i++
		}
	}
	if lens[256] == 0 {
		return d.corrupt("no end-of-block code")
	}
	if !d.dynLit.init(lens[:nlit], litPrimary, kindLit) {
		return d.corrupt("invalid literal/length code")
	}
	if !d.dynDist.init(lens[nlit:], distPrimary, kindDist) {
		return d.corrupt("invalid distance code")
	}
	return nil
}

func (d *inflater) storedCopy(target int) error {
	for d.stored > 0 && d.op < target {
		if d.nb > d.pad {
			// Whole bytes already in the bit buffer come first.
			d.out[d.op] = byte(d.bb)
			d.bb >>= 8
			d.nb -= 8
			d.op++
			d.stored--
			continue
		}
		if d.pad > 0 {
			return d.eofErr()
		}
		d.bb = 0
		if d.ip == len(d.in) {
			if err := d.moreInput(); err != nil {
				return d.eofErr()
			}
		}
		n := copy(d.out[d.op:min(target, d.op+d.stored)], d.in[d.ip:])
		d.ip += n
		d.op += n
		d.stored -= n
	}
	if d.stored == 0 {
		d.endBlock()
	}
	return nil
}

// huffman is the hot loop: it decodes literal/length and distance symbols
// of one block until the block ends or the output reaches target.
func (d *inflater) huffman(target int) error {
	bb, nb, ip, w := d.bb, d.nb, d.ip, d.op
	in, out, pad, histLo := d.in, d.out, d.pad, d.histLo
	// Primary tables as fixed-size arrays: indexing by a masked value
	// needs no bounds check.
	lt, dt := d.lit.t, d.dist.t
	lp := (*[1 << litPrimary]uint32)(lt)
	dp := (*[1 << distPrimary]uint32)(dt)
	const lmask, lprim = 1<<litPrimary - 1, litPrimary
	const dmask, dprim = 1<<distPrimary - 1, distPrimary
	markLim := d.markLim
	var err error
	for w < target {
		if nb < 48 {
			if ip+8 <= len(in) {
				bb |= binary.LittleEndian.Uint64(in[ip:]) << nb
				ip += int((63 - nb) >> 3)
				nb |= 56
			} else {
				d.bb, d.nb, d.ip = bb, nb, ip
				d.refillSlow()
				bb, nb, ip, in, pad = d.bb, d.nb, d.ip, d.in, d.pad
			}
		}
		e := lp[bb&lmask]
		if e>>8&0xff == opLink {
			e = lt[int(e>>16)+int(bb>>lprim&(1<<(e&0xff)-1))]
		}
		n := uint(e & 0xff)
		bb >>= n
		nb -= n
		op := e >> 8 & 0xff
		if op == opLit {
			if nb < pad {
				err = io.ErrUnexpectedEOF
				break
			}
			out[w] = byte(e >> 16)
			w++
			// Literals come in runs: take a second one without a refill
			// (at least 33 bits remain).
			if e = lp[bb&lmask]; e>>8&0xff == opLit {
				n = uint(e & 0xff)
				bb >>= n
				nb -= n
				if nb < pad {
					err = io.ErrUnexpectedEOF
					break
				}
				out[w] = byte(e >> 16)
				w++
			}
			continue
		}
		if op&opBase == 0 {
			if op == opEOB && nb >= pad {
				d.endBlock()
			} else if op == opEOB {
				err = io.ErrUnexpectedEOF
			} else {
				err = errBadSymbol
			}
			break
		}
		x := uint(op & 15)
		length := int(e>>16) + int(bb&(1<<x-1))
		bb >>= x
		nb -= x
		de := dp[bb&dmask]
		if de>>8&0xff == opLink {
			de = dt[int(de>>16)+int(bb>>dprim&(1<<(de&0xff)-1))]
		}
		n = uint(de & 0xff)
		bb >>= n
		nb -= n
		dop := de >> 8 & 0xff
		if dop&opBase == 0 {
			err = errBadSymbol
			break
		}
		x = uint(dop & 15)
		dist := int(de>>16) + int(bb&(1<<x-1))
		bb >>= x
		nb -= x
		if nb < pad {
			err = io.ErrUnexpectedEOF
			break
		}
		if dist > w-histLo {
			err = errBadDistance
			break
		}
		src := w - dist
		if src < markLim {
			d.markRange(src, min(src+length, markLim))
		}
		if dist >= 8 && length <= 64 && w+72 <= len(out) {
			// Short matches eight bytes at a time: a source at least 8
			// back is written before it is read, and bytes past the match
			// are scratch that later output overwrites.
			end := w + length
			for ; w < end; w, src = w+8, src+8 {
				binary.LittleEndian.PutUint64(out[w:], binary.LittleEndian.Uint64(out[src:]))
			}
			w = end
			continue
		}
		if dist >= length {
			copy(out[w:w+length], out[src:src+length])
			w += length
			continue
		}
		for end := w + length; w < end; {
			w += copy(out[w:end], out[src:w])
		}
	}
	d.bb, d.nb, d.ip, d.op = bb, nb, ip, w
	switch err {
	case nil:
		return nil
	case io.ErrUnexpectedEOF:
		return d.eofErr()
	default:
		return d.corrupt(err.Error())
	}
}

func (d *inflater) markRange(lo, hi int) {
	for i := lo; i < hi; i++ {
		d.mark[i>>6] |= 1 << (i & 63)
	}
}

var (
	errBadSymbol   = errors.New("invalid Huffman code")
	errBadDistance = errors.New("distance too far back")
)

func (d *inflater) flushCRC() {
	if d.verify {
		d.crc = crc32.Update(d.crc, crc32.IEEETable, d.out[d.crcPos:d.op])
	}
	d.crcPos = d.op
}

func (d *inflater) trailer() error {
	d.alignByte()
	crc, err := d.bits(32)
	if err != nil {
		return err
	}
	size, err := d.bits(32)
	if err != nil {
		return err
	}
	if d.verify {
		d.flushCRC()
		if crc != d.crc {
			return d.corrupt("gzip CRC-32 mismatch")
		}
		if size != uint32(d.outBase+int64(d.op)-d.memberOut) {
			return d.corrupt("gzip size mismatch")
		}
	}
	d.st = stMember
	return nil
}

// slide moves the last keep bytes of output to the front of out.
func (d *inflater) slide(keep int) {
	d.flushCRC()
	keep = min(keep, d.op)
	n := d.op - keep
	copy(d.out, d.out[n:d.op])
	d.op = keep
	d.outBase += int64(n)
	d.histLo = max(d.histLo-n, 0)
	d.crcPos = d.op
}
