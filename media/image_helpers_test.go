package media

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// Fixtures for the image tests, all generated here: no downloaded samples.

// imageTestPhoto draws a photo-like w×h picture: smooth gradients, a few soft discs and edges, and
// Gaussian sensor noise of standard deviation sigma (0 for none). Deterministic for a seed.
func imageTestPhoto(w, h int, seed uint64, sigma float64) *image.RGBA {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	type disc struct{ x, y, r, c0, c1, c2 float64 }
	discs := make([]disc, 6)
	for i := range discs {
		discs[i] = disc{r.Float64() * float64(w), r.Float64() * float64(h), (0.05 + 0.2*r.Float64()) * float64(min(w, h)),
			r.Float64() * 255, r.Float64() * 255, r.Float64() * 255}
	}
	for y := 0; y < h; y++ {
		fy := float64(y) / float64(h)
		for x := 0; x < w; x++ {
			fx := float64(x) / float64(w)
			c := [3]float64{40 + 150*fx, 60 + 120*fy, 90 + 80*math.Sin(6*fx+3*fy)}
			for _, d := range discs {
				dx, dy := float64(x)-d.x, float64(y)-d.y
				if dist := math.Sqrt(dx*dx+dy*dy) - d.r; dist < 2 {
					t := min(1, (2-dist)/4) // soft edge
					c[0], c[1], c[2] = c[0]*(1-t)+d.c0*t, c[1]*(1-t)+d.c1*t, c[2]*(1-t)+d.c2*t
				}
			}
			i := m.PixOffset(x, y)
			for k := range 3 {
				v := c[k]
				if sigma > 0 {
					v += r.NormFloat64() * sigma
				}
				m.Pix[i+k] = uint8(min(255, max(0, v+0.5)))
			}
			m.Pix[i+3] = 0xff
		}
	}
	return m
}

// Quadrant colours of imageTestQuadrants.
var (
	imageRed    = color.NRGBA{255, 0, 0, 255}
	imageGreen  = color.NRGBA{0, 255, 0, 255}
	imageBlue   = color.NRGBA{0, 0, 255, 255}
	imageYellow = color.NRGBA{255, 255, 0, 255}
)

// imageTestQuadrants is a w×h image with four flat quadrants: red top-left, green top-right, blue
// bottom-left, yellow bottom-right. It shows any rotation or mirroring.
func imageTestQuadrants(w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := imageRed
			switch {
			case x >= w/2 && y < h/2:
				c = imageGreen
			case x < w/2 && y >= h/2:
				c = imageBlue
			case x >= w/2 && y >= h/2:
				c = imageYellow
			}
			m.SetNRGBA(x, y, c)
		}
	}
	return m
}

// imageCorners samples the middle of each quadrant of img: top-left, top-right, bottom-left, bottom-right.
func imageCorners(img image.Image) [4]color.NRGBA {
	b := img.Bounds()
	at := func(fx, fy float64) color.NRGBA {
		x := b.Min.X + int(fx*float64(b.Dx()))
		y := b.Min.Y + int(fy*float64(b.Dy()))
		return color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
	}
	return [4]color.NRGBA{at(0.25, 0.25), at(0.75, 0.25), at(0.25, 0.75), at(0.75, 0.75)}
}

// imageClose reports whether two colours are within tol per channel (JPEG is lossy).
func imageClose(a, b color.NRGBA, tol int) bool {
	d := func(x, y uint8) bool { return int(x)-int(y) <= tol && int(y)-int(x) <= tol }
	return d(a.R, b.R) && d(a.G, b.G) && d(a.B, b.B) && d(a.A, b.A)
}

func imageEncodeJPEG(t testing.TB, img image.Image, q int) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, jpeg.Encode(&b, img, &jpeg.Options{Quality: q}))
	return b.Bytes()
}

func imageEncodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, img))
	return b.Bytes()
}

// imageWithJPEGSegment inserts a marker segment (e.g. APP1 Exif, or a COM padding) right after SOI.
func imageWithJPEGSegment(jpg []byte, marker byte, payload []byte) []byte {
	seg := []byte{0xff, marker, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	out = append(out, payload...)
	return append(out, jpg[2:]...)
}

// imageExifTIFF builds a minimal TIFF structure holding only the Orientation tag.
func imageExifTIFF(order binary.ByteOrder, orientation uint16) []byte {
	t := make([]byte, 8+2+12+4)
	if order == binary.LittleEndian {
		copy(t, "II")
	} else {
		copy(t, "MM")
	}
	order.PutUint16(t[2:], 42)
	order.PutUint32(t[4:], 8)
	order.PutUint16(t[8:], 1)
	order.PutUint16(t[10:], 0x0112) // Orientation
	order.PutUint16(t[12:], 3)      // SHORT
	order.PutUint32(t[14:], 1)
	order.PutUint16(t[18:], orientation)
	return t
}

// imageWithPNGChunk inserts a chunk right after IHDR.
func imageWithPNGChunk(p []byte, typ string, data []byte) []byte {
	ihdrEnd := 8 + 12 + 13
	c := make([]byte, 8, 12+len(data))
	binary.BigEndian.PutUint32(c, uint32(len(data)))
	copy(c[4:], typ)
	c = append(c, data...)
	c = binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
	out := append([]byte{}, p[:ihdrEnd]...)
	out = append(out, c...)
	return append(out, p[ihdrEnd:]...)
}

// imageTestWebP encodes img as a lossless WebP (VP8L, WebP Lossless Bitstream Specification): no
// transforms, no colour cache, one prefix-code group of "simple" codes. Each channel may take at
// most two distinct values, which is all the test pictures need. exif, when set, adds a VP8X header
// and an EXIF chunk.
func imageTestWebP(t testing.TB, img *image.NRGBA, exif []byte) []byte {
	t.Helper()
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	var bw imageBitWriter
	bw.write(0x2f, 8)
	bw.write(uint32(w-1), 14)
	bw.write(uint32(h-1), 14)
	bw.write(1, 1) // alpha is used
	bw.write(0, 3) // version
	bw.write(0, 1) // no transform
	bw.write(0, 1) // no colour cache
	bw.write(0, 1) // no meta prefix codes
	// Channel values, in VP8L symbol order: green, red, blue, alpha.
	var vals [4][]uint8
	channel := func(c color.NRGBA, k int) uint8 { return [4]uint8{c.G, c.R, c.B, c.A}[k] }
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := img.NRGBAAt(b.Min.X+x, b.Min.Y+y)
			for k := range 4 {
				v := channel(c, k)
				if len(vals[k]) == 0 || (len(vals[k]) == 1 && vals[k][0] != v) {
					vals[k] = append(vals[k], v)
				}
				require.Contains(t, vals[k], v, "imageTestWebP: more than two values in a channel")
			}
		}
	}
	for k := range 4 {
		if len(vals[k]) == 2 && vals[k][0] > vals[k][1] {
			vals[k][0], vals[k][1] = vals[k][1], vals[k][0] // canonical code: smaller symbol gets 0
		}
		bw.write(1, 1) // simple code
		bw.write(uint32(len(vals[k])-1), 1)
		bw.write(1, 1) // 8-bit symbols
		for _, v := range vals[k] {
			bw.write(uint32(v), 8)
		}
	}
	bw.write(1, 1) // distance code: simple, one symbol (0)
	bw.write(0, 1)
	bw.write(0, 1)
	bw.write(0, 1)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := img.NRGBAAt(b.Min.X+x, b.Min.Y+y)
			for k := range 4 {
				if len(vals[k]) == 2 {
					bw.write(uint32(bytes.IndexByte(vals[k], channel(c, k))), 1)
				}
			}
		}
	}
	vp8l := bw.bytes()
	var body bytes.Buffer
	body.WriteString("WEBP")
	chunk := func(fourcc string, data []byte) {
		body.WriteString(fourcc)
		_ = binary.Write(&body, binary.LittleEndian, uint32(len(data)))
		body.Write(data)
		if len(data)%2 == 1 {
			body.WriteByte(0)
		}
	}
	if exif != nil {
		x := make([]byte, 10)
		x[0] = 1<<3 | 1<<4 // EXIF, alpha
		x[4], x[5], x[6] = byte(w-1), byte((w-1)>>8), byte((w-1)>>16)
		x[7], x[8], x[9] = byte(h-1), byte((h-1)>>8), byte((h-1)>>16)
		chunk("VP8X", x)
	}
	chunk("VP8L", vp8l)
	if exif != nil {
		chunk("EXIF", exif)
	}
	out := []byte("RIFF")
	out = binary.LittleEndian.AppendUint32(out, uint32(body.Len()))
	return append(out, body.Bytes()...)
}

// imageBitWriter packs bits least significant first, as VP8L reads them.
type imageBitWriter struct {
	buf   []byte
	acc   uint64
	nbits uint
}

func (w *imageBitWriter) write(v uint32, n uint) {
	w.acc |= uint64(v) << w.nbits
	w.nbits += n
	for w.nbits >= 8 {
		w.buf = append(w.buf, byte(w.acc))
		w.acc >>= 8
		w.nbits -= 8
	}
}

func (w *imageBitWriter) bytes() []byte {
	if w.nbits > 0 {
		return append(w.buf, byte(w.acc))
	}
	return w.buf
}

type imageTestFile struct {
	format string
	data   []byte
}

// imageTestFormats encodes one small opaque picture in every format FitImage reads.
func imageTestFormats(t testing.TB) []imageTestFile {
	t.Helper()
	q := imageTestQuadrants(64, 32)
	var g, bm, tf bytes.Buffer
	pq := image.NewPaletted(q.Rect, color.Palette{imageRed, imageGreen, imageBlue, imageYellow})
	for i := range pq.Pix {
		pq.Pix[i] = uint8(pq.Palette.Index(q.At(i%64, i/64)))
	}
	require.NoError(t, gif.Encode(&g, pq, nil))
	require.NoError(t, bmp.Encode(&bm, q))
	require.NoError(t, tiff.Encode(&tf, q, nil))
	return []imageTestFile{
		{ImageFormatJPEG, imageEncodeJPEG(t, q, 90)},
		{ImageFormatPNG, imageEncodePNG(t, q)},
		{ImageFormatGIF, g.Bytes()},
		{ImageFormatWebP, imageTestWebP(t, q, nil)},
		{ImageFormatBMP, bm.Bytes()},
		{ImageFormatTIFF, tf.Bytes()},
	}
}

// imageTestGIF makes a two-frame animated GIF: the first frame red with a transparent hole when
// transparent is set, the second frame blue.
func imageTestGIF(t testing.TB, transparent bool) []byte {
	t.Helper()
	pal := color.Palette{color.RGBA{255, 0, 0, 255}, color.RGBA{0, 0, 255, 255}, color.RGBA{}}
	f1 := image.NewPaletted(image.Rect(0, 0, 40, 30), pal)
	f2 := image.NewPaletted(image.Rect(0, 0, 40, 30), pal)
	for i := range f2.Pix {
		f2.Pix[i] = 1
	}
	if transparent {
		for y := 10; y < 20; y++ {
			for x := 10; x < 30; x++ {
				f1.SetColorIndex(x, y, 2)
			}
		}
	}
	var b bytes.Buffer
	require.NoError(t, gif.EncodeAll(&b, &gif.GIF{Image: []*image.Paletted{f1, f2}, Delay: []int{10, 10}}))
	return b.Bytes()
}

// imagePadded makes a JPEG or PNG 4 KB larger with a comment (a COM segment, a tEXt chunk), so that
// FitImage must re-encode it for a limit of len(result)-1 even when the picture itself is tiny.
func imagePadded(format string, data []byte) []byte {
	pad := bytes.Repeat([]byte("padding "), 512)
	switch format {
	case ImageFormatJPEG:
		return imageWithJPEGSegment(data, 0xfe, pad)
	case ImageFormatPNG:
		return imageWithPNGChunk(data, "tEXt", append([]byte("Comment\x00"), pad...))
	}
	return data
}
