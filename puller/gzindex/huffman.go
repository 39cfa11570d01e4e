package gzindex

import "math/bits"

// Decoding tables for canonical Huffman codes (RFC 1951 section 3.2.2).
//
// A table is a primary array indexed by the next primaryBits bits of input
// (least significant bit first, as deflate packs codes reversed) plus
// second-level arrays for longer codes. Every entry is a uint32:
//
//	bits  0-7   number of input bits the entry consumes (whole code length),
//	            or for a link, the index width of the second-level table
//	bits  8-15  op: opLit, opBase|extra, opEOB, opLink or opBad
//	bits 16-31  value: literal byte, length/distance base, or link offset

const (
	opLit  = 0x00
	opBase = 0x10 // low nibble: number of extra bits
	opEOB  = 0x20
	opLink = 0x40
	opBad  = 0x80

	litPrimary  = 10
	distPrimary = 8
	maxCodeLen  = 15
)

type huffTable struct {
	t       []uint32
	primary uint
	mask    uint64
}

var (
	lenBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lenExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}

	distBase  = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}

	// codeOrder is the order in which code length code lengths are sent.
	codeOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
)

// Table kinds decide how a symbol maps to an entry.
const (
	kindLit  = iota // literal/length alphabet, 0..287
	kindDist        // distance alphabet, 0..31
	kindCode        // code length alphabet, 0..18: value is the symbol
)

func symEntry(kind, sym int, n uint) uint32 {
	switch kind {
	case kindLit:
		switch {
		case sym < 256:
			return uint32(sym)<<16 | opLit<<8 | uint32(n)
		case sym == 256:
			return opEOB<<8 | uint32(n)
		case sym < 286:
			i := sym - 257
			return uint32(lenBase[i])<<16 | uint32(opBase|lenExtra[i])<<8 | uint32(n)
		}
	case kindDist:
		if sym < 30 {
			return uint32(distBase[sym])<<16 | uint32(opBase|distExtra[sym])<<8 | uint32(n)
		}
	case kindCode:
		return uint32(sym)<<16 | opLit<<8 | uint32(n)
	}
	return opBad<<8 | uint32(n)
}

// init builds the table for the given code lengths. It reports false for an
// over-subscribed or incomplete code, except the single one-bit code zlib
// and compress/flate accept. All-zero lengths give a table whose every
// entry is opBad (a distance alphabet in a block of literals only).
func (h *huffTable) init(lens []uint8, primary uint, kind int) bool {
	var count [maxCodeLen + 1]int
	maxLen := 0
	for _, l := range lens {
		count[l]++
		if int(l) > maxLen {
			maxLen = int(l)
		}
	}
	count[0] = 0
	size := 1 << primary
	h.primary = primary
	h.mask = uint64(size - 1)
	if cap(h.t) < size {
		h.t = make([]uint32, size, size*2)
	}
	h.t = h.t[:size]
	bad := uint32(opBad << 8)
	for i := range h.t {
		h.t[i] = bad
	}
	if maxLen == 0 {
		return true
	}
	var next [maxCodeLen + 2]int
	code := 0
	for i := 1; i <= maxLen; i++ {
		code = (code + count[i-1]) << 1
		if i == 1 {
			code = 0
		}
		next[i] = code
	}
	if total := next[maxLen] + count[maxLen]; total != 1<<maxLen && !(total == 1 && maxLen == 1) {
		return false
	}
	subBits := uint(0)
	if maxLen > int(primary) {
		subBits = uint(maxLen) - primary
	}
	for sym, l := range lens {
		if l == 0 {
			continue
		}
		n := uint(l)
		c := next[n]
		next[n]++
		rev := int(reverseBits(uint16(c), n))
		e := symEntry(kind, sym, n)
		if n <= primary {
			for j := rev; j < size; j += 1 << n {
				h.t[j] = e
			}
			continue
		}
		low := rev & (size - 1)
		link := h.t[low]
		if link>>8&0xff != opLink {
			off := len(h.t)
			for range 1 << subBits {
				h.t = append(h.t, bad)
			}
			link = uint32(off)<<16 | opLink<<8 | uint32(subBits)
			h.t[low] = link
		}
		off := int(link >> 16)
		for j := rev >> primary; j < 1<<subBits; j += 1 << (n - primary) {
			h.t[off+j] = e
		}
	}
	return true
}

func reverseBits(c uint16, n uint) uint16 {
	return bits.Reverse16(c) >> (16 - n)
}

var fixedLit, fixedDist huffTable

func init() {
	var l [288]uint8
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	fixedLit.init(l[:], litPrimary, kindLit)
	var d [32]uint8
	for i := range d {
		d[i] = 5
	}
	fixedDist.init(d[:], distPrimary, kindDist)
}
