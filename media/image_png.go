package media

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
)

// A fast decoder for the PNGs that matter for speed: 8-bit, non-interlaced grayscale, RGB and RGBA
// without tRNS (PNG spec, 3rd edition §11–12). Everything else — palette, 16-bit, sub-byte, Adam7,
// tRNS, unknown critical chunks — is left to image/png (ok == false). Chunk CRCs and the zlib
// Adler-32 are verified like image/png does.

var errPNGCorrupt = errors.New("media: corrupt PNG")

// imagePNG is a parsed PNG the fast path can decode.
type imagePNG struct {
	w, h, bpp int
	ctype     byte     // 0 grey, 2 RGB, 6 RGBA
	z         [][]byte // the zlib stream: the IDAT chunks' data, in order
}

// imageDecodePNG decodes src if it is a PNG of the kinds above. ok reports whether it handled src;
// when false, decode with image/png instead.
func imageDecodePNG(src []byte) (img image.Image, ok bool, err error) {
	p, ok, err := imageParsePNG(src)
	if !ok || err != nil {
		return nil, ok, err
	}
	img, pix, stride := p.newImage()
	if err := p.decode(pix, stride, nil); err != nil {
		return nil, true, err
	}
	return img, true, nil
}

// imageParsePNG checks the chunks of src (CRCs, IHDR first, IEND last) and collects the image data.
// ok is false for PNGs the fast path leaves to image/png.
func imageParsePNG(src []byte) (p *imagePNG, ok bool, err error) {
	if len(src) < len(pngSignature)+25 || string(src[:len(pngSignature)]) != pngSignature {
		return nil, false, nil
	}
	p = &imagePNG{}
	var idat [][]byte
	idatLen := 0
	seenIHDR := false
	for i := len(pngSignature); ; {
		if i+12 > len(src) {
			return nil, true, errPNGCorrupt
		}
		n := int(binary.BigEndian.Uint32(src[i:]))
		if n < 0 || n > len(src)-i-12 {
			return nil, true, errPNGCorrupt
		}
		typ := string(src[i+4 : i+8])
		data := src[i+8 : i+8+n]
		if crc32.ChecksumIEEE(src[i+4:i+8+n]) != binary.BigEndian.Uint32(src[i+8+n:]) {
			return nil, true, errPNGCorrupt
		}
		i += 12 + n
		if !seenIHDR && typ != "IHDR" {
			return nil, true, errPNGCorrupt
		}
		switch typ {
		case "IHDR":
			if seenIHDR || n != 13 {
				return nil, true, errPNGCorrupt
			}
			seenIHDR = true
			p.w, p.h = int(binary.BigEndian.Uint32(data)), int(binary.BigEndian.Uint32(data[4:]))
			depth, comp, filter, interlace := data[8], data[10], data[11], data[12]
			p.ctype = data[9]
			if p.w <= 0 || p.h <= 0 || p.w > 1<<24 || p.h > 1<<24 || comp != 0 || filter != 0 {
				return nil, true, errPNGCorrupt
			}
			switch p.ctype {
			case 0:
				p.bpp = 1
			case 2:
				p.bpp = 3
			case 6:
				p.bpp = 4
			default:
				return nil, false, nil
			}
			if depth != 8 || interlace != 0 {
				return nil, false, nil
			}
		case "IDAT":
			idat = append(idat, data)
			idatLen += n
		case "tRNS":
			return nil, false, nil
		case "IEND":
			if idatLen == 0 {
				return nil, true, errPNGCorrupt
			}
			p.z = idat
			return p, true, nil
		default:
			if typ[0]&0x20 == 0 && typ != "PLTE" { // an unknown critical chunk
				return nil, false, nil
			}
		}
	}
}

// newImage allocates the image p decodes to (*image.Gray, *image.RGBA or *image.NRGBA) and returns
// its pixel buffer and stride.
func (p *imagePNG) newImage() (image.Image, []byte, int) {
	r := image.Rect(0, 0, p.w, p.h)
	switch p.ctype {
	case 0:
		m := image.NewGray(r)
		return m, m.Pix, m.Stride
	case 2:
		m := image.NewRGBA(r)
		return m, m.Pix, m.Stride
	}
	m := image.NewNRGBA(r)
	return m, m.Pix, m.Stride
}

// imagePNGProgressBytes: how often (in decompressed bytes) the inflater reports progress.
const imagePNGProgressBytes = 1 << 18

// decode inflates and unfilters p into pix (from newImage). When rows is set, inflating runs on a
// goroutine of its own, rows are unfiltered here as soon as they are decompressed, and rows(y0, y1)
// is called each time rows [y0, y1) are final, so that the caller can use them before the whole
// image is done. The goroutine has ended when decode returns.
func (p *imagePNG) decode(pix []byte, stride int, rows func(y0, y1 int)) error {
	rowLen := p.w*p.bpp + 1
	raw := make([]byte, p.h*rowLen)
	have := len(raw) // bytes of raw that are final
	var next func() (int, error)
	if rows != nil {
		have = 0
		avail := make(chan int, 16)
		done := make(chan struct{})
		var inflErr error
		go func() {
			defer close(done)
			defer close(avail)
			inflErr = inflateZlib(p.z, raw, func(n int) { avail <- n })
		}()
		defer func() {
			for range avail { // let the inflater finish even if we stop early
			}
			<-done
		}()
		next = func() (int, error) {
			if n, ok := <-avail; ok {
				return n, nil
			}
			if inflErr != nil {
				return 0, inflErr
			}
			return len(raw), nil
		}
	} else if err := inflateZlib(p.z, raw, nil); err != nil {
		return err
	}
	// Rows are unfiltered into two row buffers, never in raw: while streaming, the inflater still
	// reads raw as its history (back-references) and checksums it at the end.
	cur, prevBuf := make([]byte, rowLen-1), make([]byte, rowLen-1)
	var prev []byte // the previous unfiltered row; nil for the first
	y0 := 0
	for y := 0; y < p.h; y++ {
		for have < (y+1)*rowLen {
			if rows != nil && y > y0 {
				rows(y0, y)
				y0 = y
			}
			n, err := next()
			if err != nil {
				return err
			}
			have = n
		}
		row := raw[y*rowLen : (y+1)*rowLen]
		copy(cur, row[1:])
		if !imagePNGUnfilter(row[0], cur, prev, p.bpp) {
			return errPNGCorrupt
		}
		prev, cur, prevBuf = cur, prevBuf, cur
		dst := pix[y*stride:]
		if p.ctype == 2 {
			dst = dst[:4*p.w]
			for x, s := 0, 0; x < len(dst); x, s = x+4, s+3 {
				dst[x], dst[x+1], dst[x+2], dst[x+3] = prev[s], prev[s+1], prev[s+2], 0xff
			}
			continue
		}
		copy(dst[:len(prev)], prev)
	}
	if rows != nil && y0 < p.h {
		rows(y0, p.h)
	}
	return nil
}

// imagePNGUnfilter reverses a PNG row filter in place (PNG spec §9.2). prev is the previous
// unfiltered row, nil for the first row (treated as zeros). It reports false for an unknown filter.
func imagePNGUnfilter(ft byte, cur, prev []byte, bpp int) bool {
	switch ft {
	case 0: // None
	case 1: // Sub
		for i := bpp; i < len(cur); i++ {
			cur[i] += cur[i-bpp]
		}
	case 2: // Up
		if prev == nil {
			return true
		}
		prev = prev[:len(cur)]
		for i := range cur {
			cur[i] += prev[i]
		}
	case 3: // Average
		if prev == nil {
			for i := bpp; i < len(cur); i++ {
				cur[i] += cur[i-bpp] / 2
			}
			return true
		}
		prev = prev[:len(cur)]
		for i := 0; i < bpp && i < len(cur); i++ {
			cur[i] += prev[i] / 2
		}
		for i := bpp; i < len(cur); i++ {
			cur[i] += uint8((int(cur[i-bpp]) + int(prev[i])) / 2)
		}
	case 4: // Paeth
		if prev == nil { // Paeth with a zero row above is Sub
			for i := bpp; i < len(cur); i++ {
				cur[i] += cur[i-bpp]
			}
			return true
		}
		prev = prev[:len(cur)]
		for i := 0; i < bpp && i < len(cur); i++ {
			cur[i] += prev[i] // left and upper-left are zero: the predictor is the byte above
		}
		for i := bpp; i < len(cur); i++ {
			a, b, c := int(cur[i-bpp]), int(prev[i]), int(prev[i-bpp])
			p := b - c // = predictor - a
			q := a - c // = predictor - b
			pa, pb, pc := imageAbs(p), imageAbs(q), imageAbs(p+q)
			if pa <= pb && pa <= pc {
				cur[i] += uint8(a)
			} else if pb <= pc {
				cur[i] += uint8(b)
			} else {
				cur[i] += uint8(c)
			}
		}
	default:
		return false
	}
	return true
}

func imageAbs(x int) int {
	m := x >> 63
	return (x ^ m) - m
}
