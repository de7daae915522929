package media

import (
	"image"
	"image/draw"

	xdraw "golang.org/x/image/draw"
)

// imageHasAlpha reports whether some pixel of img is not fully opaque ("real" transparency, as
// opposed to a format that merely has an alpha channel).
func imageHasAlpha(img image.Image) bool {
	b := img.Bounds()
	switch m := img.(type) {
	case *image.YCbCr, *image.Gray, *image.Gray16, *image.CMYK:
		return false
	case *image.RGBA:
		return imageAlphaBelow(m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, b.Dx(), b.Dy(), 4, 3)
	case *image.NRGBA:
		return imageAlphaBelow(m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, b.Dx(), b.Dy(), 4, 3)
	case *image.RGBA64:
		return imageAlphaBelow(m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, b.Dx(), b.Dy(), 8, 6) ||
			imageAlphaBelow(m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, b.Dx(), b.Dy(), 8, 7)
	case *image.NRGBA64:
		return imageAlphaBelow(m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, b.Dx(), b.Dy(), 8, 6) ||
			imageAlphaBelow(m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, b.Dx(), b.Dy(), 8, 7)
	case *image.NYCbCrA:
		return imageAlphaBelow(m.A[m.AOffset(b.Min.X, b.Min.Y):], m.AStride, b.Dx(), b.Dy(), 1, 0)
	case *image.Paletted:
		var clear [256]bool
		someClear := false
		for i, c := range m.Palette {
			if _, _, _, a := c.RGBA(); a < 0xffff {
				clear[i], someClear = true, true
			}
		}
		if !someClear {
			return false
		}
		for y := 0; y < b.Dy(); y++ {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:b.Dx()]
			for _, p := range row {
				if clear[p] {
					return true
				}
			}
		}
		return false
	}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if _, _, _, a := img.At(x, y).RGBA(); a < 0xffff {
				return true
			}
		}
	}
	return false
}

// imageAlphaBelow reports whether any alpha byte (at offset off within each bpp-byte pixel) of the
// w×h pixels starting at pix is below 0xff.
func imageAlphaBelow(pix []byte, stride, w, h, bpp, off int) bool {
	for y := 0; y < h; y++ {
		row := pix[y*stride : y*stride+w*bpp]
		for i := off; i < len(row); i += bpp {
			if row[i] != 0xff {
				return true
			}
		}
	}
	return false
}

// imageToNRGBA returns img as an *image.NRGBA at the origin (img itself when it already is one).
func imageToNRGBA(img image.Image) *image.NRGBA {
	b := img.Bounds()
	if m, ok := img.(*image.NRGBA); ok && b.Min == (image.Point{}) {
		return m
	}
	dst := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Rect, img, b.Min, draw.Src)
	return dst
}

// imageToRGBA returns an opaque img as an *image.RGBA at the origin.
func imageToRGBA(img image.Image) *image.RGBA {
	b := img.Bounds()
	if m, ok := img.(*image.RGBA); ok && b.Min == (image.Point{}) {
		return m
	}
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Rect, img, b.Min, draw.Src)
	return dst
}

// imageOnWhite composites img over an opaque white background, as JPEG has no transparency.
func imageOnWhite(img image.Image) *image.RGBA {
	b := img.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	if p, ok := img.(*image.Paletted); ok {
		// Palette images (GIFs, small PNG screenshots) have no image/draw fast path: composite
		// the palette once, then look pixels up.
		var lut [256][4]byte
		for i := range lut {
			lut[i] = [4]byte{0, 0, 0, 0xff}
		}
		for i, c := range p.Palette[:min(len(p.Palette), 256)] {
			r, g, bl, a := c.RGBA() // premultiplied: over white adds the uncovered share
			lut[i] = [4]byte{byte((r + 0xffff - a) >> 8), byte((g + 0xffff - a) >> 8), byte((bl + 0xffff - a) >> 8), 0xff}
		}
		for y := 0; y < b.Dy(); y++ {
			src := p.Pix[p.PixOffset(b.Min.X, b.Min.Y+y):][:b.Dx()]
			row := dst.Pix[y*dst.Stride:][:4*b.Dx()]
			for x, idx := range src {
				copy(row[4*x:4*x+4], lut[idx][:])
			}
		}
		return dst
	}
	for i := range dst.Pix {
		dst.Pix[i] = 0xff
	}
	draw.Draw(dst, dst.Rect, img, b.Min, draw.Over)
	return dst
}

// imageEncodable returns img as one of the types image/jpeg encodes without a per-pixel interface
// call (*image.RGBA, *image.YCbCr, *image.Gray), painting any transparency white.
func imageEncodable(img image.Image) image.Image {
	switch m := img.(type) {
	case *image.YCbCr, *image.Gray:
		return m
	case *image.RGBA:
		if !imageHasAlpha(m) {
			return m
		}
	case *image.NRGBA:
		if !imageHasAlpha(m) {
			// Fully opaque: premultiplied and straight alpha are the same bytes; no copy needed.
			return &image.RGBA{Pix: m.Pix, Stride: m.Stride, Rect: m.Rect}
		}
	}
	return imageOnWhite(img)
}

// imageOrient turns an *image.RGBA or *image.NRGBA upright according to an EXIF orientation
// (1 = already upright, 2–8 as in EXIF 2.3 tag 0x0112), returning the same type.
func imageOrient[T *image.RGBA | *image.NRGBA](m T, orientation int) T {
	if orientation < 2 || orientation > 8 {
		return m
	}
	var pix []byte
	var stride int
	var r image.Rectangle
	switch m := any(m).(type) {
	case *image.RGBA:
		pix, stride, r = m.Pix, m.Stride, m.Rect
	case *image.NRGBA:
		pix, stride, r = m.Pix, m.Stride, m.Rect
	}
	w, h := r.Dx(), r.Dy()
	ow, oh := w, h
	if orientation >= 5 {
		ow, oh = h, w
	}
	out := make([]byte, 4*ow*oh)
	for y := 0; y < h; y++ {
		// Destination pixel index of (0, y) and the step per x, for each EXIF orientation.
		var base, step int
		switch orientation {
		case 2: // mirrored left-right
			base, step = y*ow+w-1, -1
		case 3: // rotated 180°
			base, step = (h-1-y)*ow+w-1, -1
		case 4: // mirrored top-bottom
			base, step = (h-1-y)*ow, 1
		case 5: // transposed
			base, step = y, ow
		case 6: // needs 90° clockwise
			base, step = h-1-y, ow
		case 7: // transversed
			base, step = (w-1)*ow+h-1-y, -ow
		case 8: // needs 90° counter-clockwise
			base, step = (w-1)*ow+y, -ow
		}
		row := pix[y*stride : y*stride+4*w]
		d := base
		for x := 0; x < 4*w; x += 4 {
			copy(out[4*d:4*d+4], row[x:x+4])
			d += step
		}
	}
	rect := image.Rect(0, 0, ow, oh)
	switch any(m).(type) {
	case *image.NRGBA:
		return any(&image.NRGBA{Pix: out, Stride: 4 * ow, Rect: rect}).(T)
	default:
		return any(&image.RGBA{Pix: out, Stride: 4 * ow, Rect: rect}).(T)
	}
}

// imageScale resizes img by factor f (< 1) with a bilinear kernel widened to the reduction, so large
// reductions average all source pixels instead of skipping them (golang.org/x/image/draw).
func imageScale(img image.Image, f float64) *image.RGBA {
	b := img.Bounds()
	w := max(1, int(float64(b.Dx())*f+0.5))
	h := max(1, int(float64(b.Dy())*f+0.5))
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	xdraw.BiLinear.Scale(dst, dst.Rect, img, b, xdraw.Src, nil)
	return dst
}
