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

// imageDecodePNG decodes src if it is a PNG of the kinds above. ok reports whether it handled src;
// when false, decode with image/png instead.
func imageDecodePNG(src []byte) (img image.Image, ok bool, err error) {
	if len(src) < len(pngSignature)+25 || string(src[:len(pngSignature)]) != pngSignature {
		return nil, false, nil
	}
	var (
		w, h, bpp int
		ctype     byte
		idat      [][]byte
		idatLen   int
	)
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
			w, h = int(binary.BigEndian.Uint32(data)), int(binary.BigEndian.Uint32(data[4:]))
			depth, comp, filter, interlace := data[8], data[10], data[11], data[12]
			ctype = data[9]
			if w <= 0 || h <= 0 || w > 1<<24 || h > 1<<24 || comp != 0 || filter != 0 {
				return nil, true, errPNGCorrupt
			}
			switch ctype {
			case 0:
				bpp = 1
			case 2:
				bpp = 3
			case 6:
				bpp = 4
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
			return imagePNGPixels(idat, idatLen, w, h, bpp, ctype)
		default:
			if typ[0]&0x20 == 0 && typ != "PLTE" { // an unknown critical chunk
				return nil, false, nil
			}
		}
	}
}

// imagePNGPixels inflates and unfilters the image data into an image of the PNG's colour type.
func imagePNGPixels(idat [][]byte, idatLen, w, h, bpp int, ctype byte) (image.Image, bool, error) {
	if idatLen == 0 {
		return nil, true, errPNGCorrupt
	}
	z := idat[0]
	if len(idat) > 1 {
		z = make([]byte, 0, idatLen)
		for _, d := range idat {
			z = append(z, d...)
		}
	}
	stride := w * bpp
	raw := make([]byte, h*(stride+1))
	if err := inflateZlib(z, raw, nil); err != nil {
		return nil, true, err
	}
	var (
		pix       []byte // output pixels
		outStride int
		r         = image.Rect(0, 0, w, h)
		img       image.Image
	)
	switch ctype {
	case 0:
		m := image.NewGray(r)
		pix, outStride, img = m.Pix, m.Stride, m
	case 2:
		m := image.NewRGBA(r)
		pix, outStride, img = m.Pix, m.Stride, m
	default:
		m := image.NewNRGBA(r)
		pix, outStride, img = m.Pix, m.Stride, m
	}
	var prev []byte // the previous unfiltered row; nil for the first
	for y := 0; y < h; y++ {
		row := raw[y*(stride+1) : (y+1)*(stride+1)]
		cur := row[1:]
		if !imagePNGUnfilter(row[0], cur, prev, bpp) {
			return nil, true, errPNGCorrupt
		}
		prev = cur
		if ctype == 2 {
			dst := pix[y*outStride : y*outStride+4*w]
			for x, s := 0, 0; x < len(dst); x, s = x+4, s+3 {
				dst[x], dst[x+1], dst[x+2], dst[x+3] = cur[s], cur[s+1], cur[s+2], 0xff
			}
			continue
		}
		copy(pix[y*outStride:y*outStride+stride], cur)
	}
	return img, true, nil
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
