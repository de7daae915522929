package media

import (
	"encoding/binary"
	"errors"
	"hash/adler32"
	"math/bits"
)

// A zlib/DEFLATE decoder (RFC 1950, RFC 1951) for PNG image data, written for speed on large
// images: the whole compressed stream is in memory and the exact output size is known from the
// PNG header, so it decodes straight into one preallocated buffer with a 64-bit bit buffer and
// two-level lookup tables. compress/flate decodes symbol by symbol through an io.ByteReader and
// spends most of FitImage's time on a big PNG; this is several times faster. Anything it does not
// expect is an error, never a panic: output past the expected size, distances before the start,
// truncated input, over-subscribed or incomplete codes, a bad checksum.

var (
	errInflateCorrupt   = errors.New("media: corrupt zlib/deflate data")
	errInflateTruncated = errors.New("media: truncated zlib/deflate data")
	errInflateSize      = errors.New("media: zlib/deflate data does not match the image size")
	errInflateChecksum  = errors.New("media: zlib Adler-32 checksum mismatch")
)

// Table entries (uint32): bits 0–3 code length to consume, 4–7 kind, 8–11 extra bits (or the
// sub-table's index bits for a link), 16–31 value (literal, length or distance base, or the
// sub-table offset for a link).
const (
	inflInvalid = iota << 4 // a zero entry: no code leads here (or symbols 286, 287, distances 30, 31)
	inflLiteral
	inflLength // also distances
	inflEnd
	inflLink
	inflKindMask = 0xf0
)

const (
	inflLitBits  = 10 // primary index bits of the literal/length table
	inflDistBits = 8  // primary index bits of the distance table
	inflCLBits   = 7  // the code length code has codes of at most 7 bits
)

// Base values and extra bits of length symbols 257–285 and distance symbols 0–29 (RFC 1951 §3.2.5).
var (
	inflLengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	inflLengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	inflDistBase    = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	inflDistExtra   = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	// Order in which code length code lengths are stored (RFC 1951 §3.2.7).
	inflCLOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
)

// inflater holds the decoding state: input position, bit buffer, output.
type inflater struct {
	// The input comes in pieces (a PNG's IDAT chunks), read in place: in is segs[seg], which starts
	// at offset base of the whole input.
	segs  [][]byte
	seg   int
	base  int
	in    []byte
	pos   int    // next byte of in to load into the bit buffer
	bits  uint64 // bit buffer, next bit in bit 0
	nbits uint
	pad   int // zero bytes loaded past the end of the input (an error if they are consumed)
	out   []byte
	o     int // bytes written to out
	// progress, when set, is told how many bytes of out are final, now and then.
	progress func(n int)
	lit      []uint32
	dist     []uint32
	cl       []uint32
	lens     [320]uint8
}

// inflateZlib decodes a zlib stream, given as consecutive pieces, into out, which must be exactly
// the decompressed size. progress, if set, is called now and then with how many bytes of out are
// final.
func inflateZlib(in [][]byte, out []byte, progress func(int)) error {
	if len(in) == 0 {
		return errInflateTruncated
	}
	f := &inflater{segs: in, in: in[0], out: out, progress: progress}
	var hdr [4]byte
	if !f.read(hdr[:2]) {
		return errInflateTruncated
	}
	cmf, flg := hdr[0], hdr[1]
	if cmf&0x0f != 8 || cmf>>4 > 7 || (uint16(cmf)<<8|uint16(flg))%31 != 0 || flg&0x20 != 0 {
		return errInflateCorrupt // not deflate, window too big, bad check bits, or a preset dictionary
	}
	end, err := f.inflate()
	if err != nil {
		return err
	}
	if f.o != len(out) {
		return errInflateSize
	}
	f.seek(end)
	if !f.read(hdr[:]) {
		return errInflateTruncated
	}
	if binary.BigEndian.Uint32(hdr[:]) != adler32.Checksum(out) {
		return errInflateChecksum
	}
	return nil
}

// seek moves the read position to offset g of the whole input.
func (f *inflater) seek(g int) {
	for g < f.base && f.seg > 0 {
		f.seg--
		f.in = f.segs[f.seg]
		f.base -= len(f.in)
	}
	for g > f.base+len(f.in) && f.seg+1 < len(f.segs) {
		f.base += len(f.in)
		f.seg++
		f.in = f.segs[f.seg]
	}
	f.pos = g - f.base
}

// next moves to the next piece of input; false at the end.
func (f *inflater) next() bool {
	if f.seg+1 >= len(f.segs) {
		return false
	}
	f.base += len(f.in)
	f.seg++
	f.in = f.segs[f.seg]
	f.pos = 0
	return true
}

// read copies input bytes from the read position into dst and moves past them; false if the input
// ends first.
func (f *inflater) read(dst []byte) bool {
	for len(dst) > 0 {
		if f.pos >= len(f.in) {
			if !f.next() {
				return false
			}
			continue
		}
		n := copy(dst, f.in[f.pos:])
		dst = dst[n:]
		f.pos += n
	}
	return true
}

// refill tops the bit buffer up to at least 56 bits, adding zero bytes past the end of the input
// (counted in pad so that consuming them is caught).
func (f *inflater) refill() {
	if f.pos+8 <= len(f.in) {
		f.bits |= binary.LittleEndian.Uint64(f.in[f.pos:]) << f.nbits
		f.pos += int(63-f.nbits) >> 3
		f.nbits |= 56
		return
	}
	for f.nbits <= 56 {
		for f.pos >= len(f.in) && f.next() {
		}
		if f.pos < len(f.in) {
			f.bits |= uint64(f.in[f.pos]) << f.nbits
			f.pos++
		} else {
			f.pad++
		}
		f.nbits += 8
	}
}

// overread reports whether bits past the end of the input were consumed.
func (f *inflater) overread() bool { return int(f.nbits) < 8*f.pad }

func (f *inflater) take(n uint) uint32 {
	v := uint32(f.bits & (1<<n - 1))
	f.bits >>= n
	f.nbits -= n
	return v
}

// inflate decodes DEFLATE blocks until the final one and returns the input offset after it.
func (f *inflater) inflate() (int, error) {
	last := 0
	for {
		f.refill()
		final := f.take(1)
		switch f.take(2) {
		case 0:
			if err := f.stored(); err != nil {
				return 0, err
			}
		case 1:
			if err := f.fixedTables(); err != nil {
				return 0, err
			}
			if err := f.codes(); err != nil {
				return 0, err
			}
		case 2:
			if err := f.dynamicTables(); err != nil {
				return 0, err
			}
			if err := f.codes(); err != nil {
				return 0, err
			}
		default:
			return 0, errInflateCorrupt
		}
		if f.overread() {
			return 0, errInflateTruncated
		}
		if f.progress != nil && f.o-last >= imagePNGProgressBytes {
			f.progress(f.o)
			last = f.o
		}
		if final == 1 {
			break
		}
	}
	// Give back the whole bytes still in the bit buffer: the Adler-32 follows the final block.
	f.take(f.nbits & 7)
	return f.base + f.pos - (int(f.nbits)>>3 - f.pad), nil
}

// stored copies an uncompressed block.
func (f *inflater) stored() error {
	f.take(f.nbits & 7)
	if f.overread() {
		return errInflateTruncated
	}
	// Give back the buffered whole bytes, then read LEN and NLEN and the data straight from the input.
	f.seek(f.base + f.pos - (int(f.nbits)>>3 - f.pad))
	f.bits, f.nbits, f.pad = 0, 0, 0
	var hdr [4]byte
	if !f.read(hdr[:]) {
		return errInflateTruncated
	}
	n := int(binary.LittleEndian.Uint16(hdr[:]))
	if uint16(n) != ^binary.LittleEndian.Uint16(hdr[2:]) {
		return errInflateCorrupt
	}
	if f.o+n > len(f.out) {
		return errInflateSize
	}
	if !f.read(f.out[f.o : f.o+n]) {
		return errInflateTruncated
	}
	f.o += n
	return nil
}

func (f *inflater) fixedTables() error {
	for i := range 144 {
		f.lens[i] = 8
	}
	for i := 144; i < 256; i++ {
		f.lens[i] = 9
	}
	for i := 256; i < 280; i++ {
		f.lens[i] = 7
	}
	for i := 280; i < 288; i++ {
		f.lens[i] = 8
	}
	for i := 288; i < 288+30; i++ {
		f.lens[i] = 5
	}
	var err error
	if f.lit, err = inflateTable(f.lit, f.lens[:288], inflLitBits, inflLitEntry, true); err != nil {
		return err
	}
	f.dist, err = inflateTable(f.dist, f.lens[288:288+30], inflDistBits, inflDistEntry, true)
	return err
}

func (f *inflater) dynamicTables() error {
	f.refill()
	nlit := int(f.take(5)) + 257
	ndist := int(f.take(5)) + 1
	ncl := int(f.take(4)) + 4
	if nlit > 286 || ndist > 30 {
		return errInflateCorrupt
	}
	var clLens [19]uint8
	for i := range ncl {
		if i%16 == 0 {
			f.refill()
		}
		clLens[inflCLOrder[i]] = uint8(f.take(3))
	}
	var err error
	if f.cl, err = inflateTable(f.cl, clLens[:], inflCLBits, inflCLEntry, false); err != nil {
		return err
	}
	lens := f.lens[:nlit+ndist]
	for i := 0; i < len(lens); {
		f.refill()
		e := f.cl[f.bits&(1<<inflCLBits-1)]
		n := uint(e & 0xf)
		if e&inflKindMask != inflLiteral {
			return errInflateCorrupt
		}
		f.take(n)
		sym := e >> 16
		var rep int
		var val uint8
		switch {
		case sym < 16:
			lens[i] = uint8(sym)
			i++
			continue
		case sym == 16:
			if i == 0 {
				return errInflateCorrupt
			}
			rep, val = 3+int(f.take(2)), lens[i-1]
		case sym == 17:
			rep = 3 + int(f.take(3))
		default:
			rep = 11 + int(f.take(7))
		}
		if i+rep > len(lens) {
			return errInflateCorrupt
		}
		for j := range rep {
			lens[i+j] = val
		}
		i += rep
	}
	if f.overread() {
		return errInflateTruncated
	}
	if lens[256] == 0 {
		return errInflateCorrupt // no end-of-block code
	}
	if f.lit, err = inflateTable(f.lit, lens[:nlit], inflLitBits, inflLitEntry, false); err != nil {
		return err
	}
	f.dist, err = inflateTable(f.dist, lens[nlit:], inflDistBits, inflDistEntry, false)
	return err
}

// codes decodes one Huffman-coded block. The hot state lives in locals (the compiler keeps them in
// registers; as fields of f they would be reloaded around every store to out).
func (f *inflater) codes() error {
	lit, dist := f.lit, f.dist
	// Primary tables as arrays: indexing with a masked value needs no bounds check.
	litP := (*[1 << inflLitBits]uint32)(lit)
	distP := (*[1 << inflDistBits]uint32)(dist)
	out, o := f.out, f.o
	in, pos := f.in, f.pos
	bitbuf, nbits := f.bits, f.nbits
	var err error
	for {
		// ≥ 48 bits cover a literal/length code (15) + extra (5) + distance code (15) + extra (13).
		if nbits < 48 {
			if pos+8 <= len(in) {
				bitbuf |= binary.LittleEndian.Uint64(in[pos:]) << nbits
				pos += int(63-nbits) >> 3
				nbits |= 56
			} else {
				f.pos, f.bits, f.nbits = pos, bitbuf, nbits
				f.refill()
				in, pos, bitbuf, nbits = f.in, f.pos, f.bits, f.nbits
				if f.pad > 8 {
					err = errInflateTruncated
					break
				}
			}
		}
		e := litP[bitbuf&(1<<inflLitBits-1)]
		if e&inflKindMask == inflLink {
			bitbuf >>= inflLitBits
			nbits -= inflLitBits
			e = lit[e>>16+uint32(bitbuf&(1<<(e>>8&0xf)-1))]
		}
		n := uint(e & 0xf)
		bitbuf >>= n
		nbits -= n
		kind := e & inflKindMask
		if kind == inflLiteral {
			if o+1 >= len(out) {
				if o >= len(out) {
					err = errInflateSize
					break
				}
				out[o] = byte(e >> 16)
				o++
				continue
			}
			out[o] = byte(e >> 16)
			o++
			// Noisy images are mostly literals: take a second one in the same round when its code
			// is in the primary table and the buffer holds it (≥ 15 bits covers any primary code).
			if nbits >= 15 {
				if e = litP[bitbuf&(1<<inflLitBits-1)]; e&inflKindMask == inflLiteral {
					n = uint(e & 0xf)
					bitbuf >>= n
					nbits -= n
					out[o] = byte(e >> 16)
					o++
				}
			}
			continue
		}
		if kind != inflLength {
			if kind != inflEnd {
				err = errInflateCorrupt
			}
			break
		}
		x := uint(e >> 8 & 0xf)
		length := int(e>>16) + int(bitbuf&(1<<x-1))
		bitbuf >>= x
		nbits -= x
		d := distP[bitbuf&(1<<inflDistBits-1)]
		if d&inflKindMask == inflLink {
			bitbuf >>= inflDistBits
			nbits -= inflDistBits
			d = dist[d>>16+uint32(bitbuf&(1<<(d>>8&0xf)-1))]
		}
		if d&inflKindMask != inflLength {
			err = errInflateCorrupt
			break
		}
		n = uint(d & 0xf)
		bitbuf >>= n
		nbits -= n
		x = uint(d >> 8 & 0xf)
		distance := int(d>>16) + int(bitbuf&(1<<x-1))
		bitbuf >>= x
		nbits -= x
		if distance > o {
			err = errInflateCorrupt
			break
		}
		if o+length > len(out) {
			err = errInflateSize
			break
		}
		if distance >= length {
			copy(out[o:o+length], out[o-distance:o])
		} else {
			// Overlapping: the copy repeats the last distance bytes; copy in growing chunks.
			for done := 0; done < length; {
				done += copy(out[o+done:o+length], out[o-distance:o+done])
			}
		}
		o += length
	}
	f.o, f.pos, f.bits, f.nbits = o, pos, bitbuf, nbits
	return err
}

// Entry makers for each alphabet: a symbol and its code length → a table entry.
func inflLitEntry(sym int, n uint32) uint32 {
	switch {
	case sym < 256:
		return n | inflLiteral | uint32(sym)<<16
	case sym == 256:
		return n | inflEnd
	case sym < 286:
		return n | inflLength | uint32(inflLengthExtra[sym-257])<<8 | uint32(inflLengthBase[sym-257])<<16
	}
	return n | inflInvalid // 286, 287: never valid
}

func inflDistEntry(sym int, n uint32) uint32 {
	if sym < 30 {
		return n | inflLength | uint32(inflDistExtra[sym])<<8 | uint32(inflDistBase[sym])<<16
	}
	return n | inflInvalid
}

func inflCLEntry(sym int, n uint32) uint32 { return n | inflLiteral | uint32(sym)<<16 }

// inflateTable builds a two-level decoding table for the canonical Huffman code with the given code
// lengths (RFC 1951 §3.2.2): primary entries indexed by the next `primary` input bits, and for
// longer codes a link to a sub-table indexed by the bits after those. Slots no code reaches stay
// zero (code length 0), which the decoder treats as corrupt data. It reuses buf's storage.
// An over-subscribed code is an error; so is an incomplete one, except a single code of one bit
// (RFC 1951 allows one distance code), or none at all when allowEmpty (a block with literals only
// may have no distance codes).
func inflateTable(buf []uint32, lens []uint8, primary uint, entry func(sym int, n uint32) uint32, fixed bool) ([]uint32, error) {
	var count [16]int
	maxLen := 0
	for _, l := range lens {
		count[l]++
		maxLen = max(maxLen, int(l))
	}
	count[0] = 0
	left := 1
	for l := 1; l <= 15; l++ {
		left = left<<1 - count[l]
		if left < 0 {
			return nil, errInflateCorrupt // over-subscribed
		}
	}
	codes := len(lens) - func() int {
		z := 0
		for _, l := range lens {
			if l == 0 {
				z++
			}
		}
		return z
	}()
	if left > 0 && !fixed && !(codes == 1 && maxLen == 1) && codes != 0 {
		return nil, errInflateCorrupt // incomplete
	}
	var next [16]int // first code of each length
	for l := 2; l <= 15; l++ {
		next[l] = (next[l-1] + count[l-1]) << 1
	}
	// Sub-table sizes: for each primary prefix, the longest code that starts with it.
	size := 1 << primary
	var subBits [1 << inflLitBits]uint8
	if maxLen > int(primary) {
		nc := next
		for _, l := range lens {
			if int(l) <= int(primary) {
				if l > 0 {
					nc[l]++
				}
				continue
			}
			rev := int(bits.Reverse16(uint16(nc[l])) >> (16 - l))
			nc[l]++
			p := rev & (1<<primary - 1)
			subBits[p] = max(subBits[p], l-uint8(primary))
		}
		for p := range 1 << primary {
			if subBits[p] > 0 {
				size += 1 << subBits[p]
			}
		}
	}
	if cap(buf) < size {
		buf = make([]uint32, size)
	} else {
		buf = buf[:size]
		clear(buf)
	}
	// Lay out sub-tables after the primary table and link to them.
	offset := 1 << primary
	for p := range 1 << primary {
		if sb := subBits[p]; sb > 0 && maxLen > int(primary) {
			buf[p] = uint32(offset)<<16 | inflLink | uint32(sb)<<8 | uint32(primary)
			offset += 1 << sb
		}
	}
	for sym, l := range lens {
		if l == 0 {
			continue
		}
		code := next[l]
		next[l]++
		rev := int(bits.Reverse16(uint16(code)) >> (16 - l))
		if int(l) <= int(primary) {
			e := entry(sym, uint32(l))
			for i := rev; i < 1<<primary; i += 1 << l {
				buf[i] = e
			}
			continue
		}
		link := buf[rev&(1<<primary-1)]
		base, sb := int(link>>16), uint(link>>8&0xf)
		e := entry(sym, uint32(l)-uint32(primary))
		for i := rev >> primary; i < 1<<sb; i += 1 << (uint(l) - primary) {
			buf[base+i] = e
		}
	}
	return buf, nil
}
