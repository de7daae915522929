package media

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFitImagePassThrough(t *testing.T) {
	t.Parallel()
	for _, f := range imageTestFormats(t)[:2] { // JPEG and PNG
		t.Run(f.format, func(t *testing.T) {
			t.Parallel()
			out, format, err := FitImage(f.data, len(f.data))
			require.NoError(t, err)
			assert.Equal(t, f.format, format)
			// The very same slice: nothing decoded, nothing copied.
			require.Len(t, out, len(f.data))
			assert.Same(t, &f.data[0], &out[0])
		})
	}
}

func TestFitImageEveryFormat(t *testing.T) {
	t.Parallel()
	for _, f := range imageTestFormats(t) {
		t.Run(f.format, func(t *testing.T) {
			t.Parallel()
			src := imagePadded(f.format, f.data)
			limit := imageReencodeLimit(src)
			out, format, err := FitImage(src, limit)
			require.NoError(t, err)
			assert.Equal(t, ImageFormatJPEG, format)
			assert.LessOrEqual(t, len(out), limit)
			img, err := jpeg.Decode(bytes.NewReader(out))
			require.NoError(t, err)
			assert.Equal(t, image.Rect(0, 0, 64, 32), img.Bounds())
			want := [4]color.NRGBA{imageRed, imageGreen, imageBlue, imageYellow}
			got := imageCorners(img)
			for i := range want {
				assert.True(t, imageClose(want[i], got[i], 24), "quadrant %d: want %v, got %v", i, want[i], got[i])
			}
			require.NoError(t, Check(KindImage, out))
		})
	}
}

func TestFitImageEXIFOrientation(t *testing.T) {
	t.Parallel()
	r, g, b, y := imageRed, imageGreen, imageBlue, imageYellow
	// The stored picture has red top-left, green top-right, blue bottom-left, yellow bottom-right.
	// Expected colours on screen, from where EXIF 2.3 (tag 0x0112) puts the stored row 0 and column 0.
	tests := []struct {
		orientation int
		w, h        int
		want        [4]color.NRGBA // top-left, top-right, bottom-left, bottom-right
	}{
		{1, 64, 32, [4]color.NRGBA{r, g, b, y}}, // row 0 top, column 0 left
		{2, 64, 32, [4]color.NRGBA{g, r, y, b}}, // row 0 top, column 0 right
		{3, 64, 32, [4]color.NRGBA{y, b, g, r}}, // row 0 bottom, column 0 right
		{4, 64, 32, [4]color.NRGBA{b, y, r, g}}, // row 0 bottom, column 0 left
		{5, 32, 64, [4]color.NRGBA{r, b, g, y}}, // row 0 left, column 0 top
		{6, 32, 64, [4]color.NRGBA{b, r, y, g}}, // row 0 right, column 0 top
		{7, 32, 64, [4]color.NRGBA{y, g, b, r}}, // row 0 right, column 0 bottom
		{8, 32, 64, [4]color.NRGBA{g, y, r, b}}, // row 0 left, column 0 bottom
	}
	stored := imageTestQuadrants(64, 32)
	check := func(t *testing.T, src []byte, w, h int, want [4]color.NRGBA) {
		t.Helper()
		src = imagePadded(DetectImageFormat(src), src)
		out, _, err := FitImage(src, imageReencodeLimit(src))
		require.NoError(t, err)
		img, _, err := image.Decode(bytes.NewReader(out))
		require.NoError(t, err)
		require.Equal(t, image.Rect(0, 0, w, h), img.Bounds())
		got := imageCorners(img)
		for i := range want {
			assert.True(t, imageClose(want[i], got[i], 24), "quadrant %d: want %v, got %v", i, want[i], got[i])
		}
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("JPEG/%d", tt.orientation), func(t *testing.T) {
			t.Parallel()
			for _, order := range []binary.ByteOrder{binary.BigEndian, binary.LittleEndian} {
				exif := append([]byte(imageExifHeader), imageExifTIFF(order, uint16(tt.orientation))...)
				check(t, imageWithJPEGSegment(imageEncodeJPEG(t, stored, 95), 0xe1, exif), tt.w, tt.h, tt.want)
			}
		})
	}
	t.Run("PNG eXIf/6", func(t *testing.T) {
		t.Parallel()
		src := imageWithPNGChunk(imageEncodePNG(t, stored), "eXIf", imageExifTIFF(binary.BigEndian, 6))
		check(t, src, 32, 64, tests[5].want)
	})
	t.Run("WebP EXIF/8", func(t *testing.T) {
		t.Parallel()
		exif := append([]byte(imageExifHeader), imageExifTIFF(binary.LittleEndian, 8)...)
		check(t, imageTestWebP(t, stored, exif), 32, 64, tests[7].want)
	})
	t.Run("transparent WebP EXIF/3 stays PNG", func(t *testing.T) {
		t.Parallel()
		m := imageTestQuadrants(64, 32)
		m.SetNRGBA(0, 0, color.NRGBA{255, 0, 0, 0}) // a transparent pixel
		src := imageTestWebP(t, m, imageExifTIFF(binary.BigEndian, 3))
		out, format, err := FitImage(src, 1<<20)
		require.NoError(t, err)
		require.Equal(t, ImageFormatPNG, format)
		img, err := png.Decode(bytes.NewReader(out))
		require.NoError(t, err)
		assert.Equal(t, [4]color.NRGBA{y, b, g, r}, imageCorners(img))
		_, _, _, a := img.At(63, 31).RGBA() // the stored (0, 0), now bottom-right
		assert.Zero(t, a)
	})
	t.Run("bad EXIF is ignored", func(t *testing.T) {
		t.Parallel()
		for _, exif := range [][]byte{
			append([]byte(imageExifHeader), imageExifTIFF(binary.BigEndian, 9)...),
			append([]byte(imageExifHeader), imageExifTIFF(binary.BigEndian, 0)...),
			append([]byte(imageExifHeader), imageExifTIFF(binary.BigEndian, 6)[:20]...),
			[]byte(imageExifHeader + "XX*\x00"),
		} {
			check(t, imageWithJPEGSegment(imageEncodeJPEG(t, stored, 95), 0xe1, exif), 64, 32, tests[0].want)
		}
	})
}

func TestFitImageTransparency(t *testing.T) {
	t.Parallel()
	t.Run("GIF first frame with a hole becomes PNG", func(t *testing.T) {
		t.Parallel()
		out, format, err := FitImage(imageTestGIF(t, true), 1<<20)
		require.NoError(t, err)
		require.Equal(t, ImageFormatPNG, format)
		img, err := png.Decode(bytes.NewReader(out))
		require.NoError(t, err)
		assertNRGBA(t, color.NRGBA{255, 0, 0, 255}, img.At(2, 2), "first frame is red")
		_, _, _, a := img.At(15, 15).RGBA()
		assert.Zero(t, a, "the hole stays transparent")
	})
	t.Run("opaque GIF becomes JPEG of its first frame", func(t *testing.T) {
		t.Parallel()
		out, format, err := FitImage(imageTestGIF(t, false), 1<<20)
		require.NoError(t, err)
		require.Equal(t, ImageFormatJPEG, format)
		img, err := jpeg.Decode(bytes.NewReader(out))
		require.NoError(t, err)
		assert.True(t, imageClose(color.NRGBA{255, 0, 0, 255}, imageCorners(img)[0], 16))
	})
	t.Run("transparent PNG over the limit becomes JPEG on white", func(t *testing.T) {
		t.Parallel()
		m := image.NewNRGBA(image.Rect(0, 0, 300, 200))
		photo := imageTestPhoto(300, 200, 7, 20)
		for i := range m.Pix {
			m.Pix[i] = photo.Pix[i]
		}
		for y := 0; y < 100; y++ { // top half fully transparent
			for x := 0; x < 300; x++ {
				m.Pix[m.PixOffset(x, y)+3] = 0
			}
		}
		src := imageEncodePNG(t, m)
		out, format, err := FitImage(src, len(src)/2)
		require.NoError(t, err)
		require.Equal(t, ImageFormatJPEG, format)
		assert.LessOrEqual(t, len(out), len(src)/2)
		img, err := jpeg.Decode(bytes.NewReader(out))
		require.NoError(t, err)
		assert.True(t, imageClose(color.NRGBA{255, 255, 255, 255}, imageCorners(img)[0], 8), "transparent → white")
	})
	t.Run("PNG with an opaque alpha channel is not transparent", func(t *testing.T) {
		t.Parallel()
		m := image.NewNRGBA(image.Rect(0, 0, 40, 40))
		for i := range m.Pix {
			m.Pix[i] = 0xff
		}
		src := imagePadded(ImageFormatPNG, imageEncodePNG(t, m))
		_, format, err := FitImage(src, len(src)-1)
		require.NoError(t, err)
		assert.Equal(t, ImageFormatJPEG, format)
	})
}

// imageReencodeLimit is a limit that makes FitImage re-encode src: just under its size for a
// (padded) JPEG or PNG, which would otherwise pass through; roomy for the other formats.
func imageReencodeLimit(src []byte) int {
	if f := DetectImageFormat(src); f == ImageFormatJPEG || f == ImageFormatPNG {
		return len(src) - 1
	}
	return 1 << 20
}

func assertNRGBA(t *testing.T, want color.NRGBA, got color.Color, msg string) {
	t.Helper()
	assert.Equal(t, want, color.NRGBAModel.Convert(got), msg)
}

func TestFitImageLimits(t *testing.T) {
	t.Parallel()
	photo := imageTestPhoto(1200, 900, 3, 6)
	src := imageEncodePNG(t, photo)
	for _, limit := range []int{2 << 10, 8 << 10, 30 << 10, 100 << 10, 250 << 10, 600 << 10, len(src) - 1} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			t.Parallel()
			out, format, err := FitImage(src, limit)
			require.NoError(t, err)
			require.Equal(t, ImageFormatJPEG, format)
			require.LessOrEqual(t, len(out), limit, "must fit")
			img, err := jpeg.Decode(bytes.NewReader(out))
			require.NoError(t, err)
			b := img.Bounds()
			// Aspect ratio kept when scaled.
			assert.InDelta(t, 1200.0/900, float64(b.Dx())/float64(b.Dy()), 0.02)
			if b.Dx() == 1200 {
				// Full size: the quality was chosen to use the room, not stepped far below it.
				q := imageGuessQuality(t, out)
				if q < imageJPEGQualityMax {
					assert.GreaterOrEqual(t, float64(len(out)), 0.8*float64(limit), "quality %d wastes room", q)
				}
			} else {
				// Scaled: only because quality 70 at full size would not fit.
				assert.Greater(t, len(imageEncodeJPEG(t, photo, imageJPEGQualityMin)), limit)
			}
		})
	}
}

// imageGuessQuality finds the quality whose image/jpeg luminance table matches the JPEG's.
func imageGuessQuality(t *testing.T, jpg []byte) int {
	t.Helper()
	dqt := imageFindSegment(jpg, 0xdb)
	require.Positive(t, dqt)
	table := jpg[dqt+5 : dqt+5+64]
	tiny := image.NewGray(image.Rect(0, 0, 8, 8))
	for q := 1; q <= 100; q++ {
		ref := imageEncodeJPEG(t, tiny, q)
		i := imageFindSegment(ref, 0xdb)
		if bytes.Equal(ref[i+5:i+5+64], table) {
			return q
		}
	}
	t.Fatal("no matching quality")
	return 0
}

func TestFitImageErrors(t *testing.T) {
	t.Parallel()
	q := imageTestQuadrants(64, 32)
	jpg := imageEncodeJPEG(t, q, 90)
	pngData := imageEncodePNG(t, q)
	// A PNG whose header claims 20000×20000 pixels: rejected before any pixel is decoded.
	bomb := append([]byte{}, pngData...)
	binary.BigEndian.PutUint32(bomb[16:], 20000)
	binary.BigEndian.PutUint32(bomb[20:], 20000)
	binary.BigEndian.PutUint32(bomb[29:], crc32Of(bomb[12:29]))
	tests := []struct {
		name  string
		src   []byte
		limit int
		want  error
	}{
		{"not an image", []byte("hello, world, this is text"), 1 << 20, ErrUnsupportedImage},
		{"empty", nil, 1 << 20, ErrUnsupportedImage},
		{"truncated JPEG", jpg[:len(jpg)/2], 10, ErrCorruptImage},
		{"truncated PNG", pngData[:len(pngData)/2], 10, ErrCorruptImage},
		{"JPEG header only", jpg[:20], 1 << 20, ErrCorruptImage},
		{"decompression bomb", bomb, 10, ErrImageTooManyPixels},
		{"limit too small for any JPEG", jpg, 100, ErrImageCannotFit},
		{"zero limit", jpg, 0, ErrImageCannotFit},
		{"negative limit", jpg, -1, ErrImageCannotFit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, format, err := FitImage(tt.src, tt.limit)
			require.ErrorIs(t, err, tt.want)
			assert.Nil(t, out)
			assert.Empty(t, format)
		})
	}
}

func crc32Of(b []byte) uint32 { return crc32.ChecksumIEEE(b) }

// imageBenchPNG generates the benchmark input once per run: 4000×3000, photo-like, noisy enough
// that PNG (default compression) needs about 25 MB.
func imageBenchPNG(b *testing.B) []byte {
	b.Helper()
	src := imageEncodePNG(b, imageTestPhoto(4000, 3000, 1, 7))
	b.Logf("input PNG: %d bytes", len(src))
	return src
}

// TestImageStripsMatchWholeEncode: splicing strips with restart markers decodes to exactly the same
// pixels as image/jpeg encoding the whole picture at once.
func TestImageStripsMatchWholeEncode(t *testing.T) {
	t.Parallel()
	photo := imageTestPhoto(333, 517, 5, 10) // sides not multiples of 16
	gray := image.NewGray(photo.Rect)
	for i := range gray.Pix {
		gray.Pix[i] = photo.Pix[4*i+1]
	}
	ycc := image.NewYCbCr(photo.Rect, image.YCbCrSubsampleRatio422)
	for y := 0; y < photo.Rect.Dy(); y++ {
		for x := 0; x < photo.Rect.Dx(); x++ {
			c := photo.RGBAAt(x, y)
			yy, cb, cr := color.RGBToYCbCr(c.R, c.G, c.B)
			ycc.Y[ycc.YOffset(x, y)] = yy
			ycc.Cb[ycc.COffset(x, y)], ycc.Cr[ycc.COffset(x, y)] = cb, cr
		}
	}
	for _, img := range []image.Image{photo, gray, ycc, photo.SubImage(image.Rect(7, 9, 300, 500))} {
		t.Run(fmt.Sprintf("%T%v", img, img.Bounds()), func(t *testing.T) {
			t.Parallel()
			s := newImageStrips(img)
			require.Greater(t, len(s.rects), 2)
			all := make([]int, len(s.rects))
			for i := range all {
				all[i] = i
			}
			enc, err := s.encode(nil, 85, all)
			require.NoError(t, err)
			spliced, err := s.assemble(enc)
			require.NoError(t, err)
			assert.Equal(t, s.total(enc), len(spliced))
			whole := imageEncodeJPEG(t, img, 85)
			a, err := jpeg.Decode(bytes.NewReader(spliced))
			require.NoError(t, err)
			b, err := jpeg.Decode(bytes.NewReader(whole))
			require.NoError(t, err)
			require.Equal(t, b.Bounds().Size(), a.Bounds().Size())
			assert.Equal(t, b, a, "spliced strips must decode to the same pixels")
		})
	}
}

func TestFitImageQualityAndScale(t *testing.T) {
	t.Parallel()
	photo := imageTestPhoto(800, 600, 11, 4)
	src := imageEncodePNG(t, photo)
	out, _, err := FitImage(src, len(src)-1)
	require.NoError(t, err)
	assert.Equal(t, imageJPEGQualityMax, imageGuessQuality(t, out), "room to spare: best quality")
	img, err := jpeg.Decode(bytes.NewReader(out))
	require.NoError(t, err)
	assert.Greater(t, imagePSNR(photo, img), 35.0)
}

// imagePSNR compares the RGB of two same-sized images, in dB.
func imagePSNR(a, b image.Image) float64 {
	var se float64
	n := 0
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			ca := color.NRGBAModel.Convert(a.At(x, y)).(color.NRGBA)
			cb := color.NRGBAModel.Convert(b.At(x, y)).(color.NRGBA)
			for _, d := range []float64{float64(ca.R) - float64(cb.R), float64(ca.G) - float64(cb.G), float64(ca.B) - float64(cb.B)} {
				se += d * d
			}
			n += 3
		}
	}
	return 10 * math.Log10(255*255/(se/float64(n)))
}

func FuzzFitImage(f *testing.F) {
	for _, tf := range imageTestFormats(f) {
		f.Add(tf.data, 500)
	}
	f.Add(imageTestGIF(f, true), 300)
	f.Fuzz(func(t *testing.T, src []byte, maxBytes int) {
		maxBytes %= 1 << 20
		out, format, err := fitImage(src, maxBytes, 1<<18)
		if err != nil {
			require.Nil(t, out)
			return
		}
		require.LessOrEqual(t, len(out), maxBytes)
		require.Equal(t, format, DetectImageFormat(out))
		require.NoError(t, Check(KindImage, out))
	})
}

// BenchmarkFitImage: a 4000×3000 noisy photo-like PNG (~25 MB) fitted under WeCom's 10 MB image limit.
func BenchmarkFitImage(b *testing.B) {
	src := imageBenchPNG(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(src)))
	var out []byte
	cpu := imageCPUTime()
	for b.Loop() {
		var err error
		if out, _, err = FitImage(src, MaxImageBytes); err != nil {
			b.Fatal(err)
		}
	}
	// CPU time (all goroutines) per op: comparable across runs on a busy machine, unlike ns/op.
	b.ReportMetric(float64(imageCPUTime()-cpu)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(len(src)), "in-bytes")
	b.ReportMetric(float64(len(out)), "out-bytes")
}

func TestImageOrientationParsers(t *testing.T) {
	t.Parallel()
	tiffBE := imageExifTIFF(binary.BigEndian, 6)
	tiffLE := imageExifTIFF(binary.LittleEndian, 8)
	jpg := imageEncodeJPEG(t, imageTestQuadrants(16, 16), 80)
	pngData := imageEncodePNG(t, imageTestQuadrants(16, 16))
	tests := []struct {
		name   string
		format string
		src    []byte
		want   int
	}{
		{"JPEG big-endian", ImageFormatJPEG, imageWithJPEGSegment(jpg, 0xe1, append([]byte(imageExifHeader), tiffBE...)), 6},
		{"JPEG little-endian", ImageFormatJPEG, imageWithJPEGSegment(jpg, 0xe1, append([]byte(imageExifHeader), tiffLE...)), 8},
		{"JPEG after another APP segment", ImageFormatJPEG,
			imageWithJPEGSegment(imageWithJPEGSegment(jpg, 0xe1, append([]byte(imageExifHeader), tiffBE...)), 0xe0, []byte("JFIF\x00\x01\x01")), 6},
		{"JPEG XMP APP1 is not EXIF", ImageFormatJPEG, imageWithJPEGSegment(jpg, 0xe1, append([]byte("http://ns.adobe.com/xap/1.0/\x00"), tiffBE...)), 1},
		{"JPEG without EXIF", ImageFormatJPEG, jpg, 1},
		{"PNG eXIf", ImageFormatPNG, imageWithPNGChunk(pngData, "eXIf", tiffLE), 8},
		{"PNG eXIf with Exif header", ImageFormatPNG, imageWithPNGChunk(pngData, "eXIf", append([]byte(imageExifHeader), tiffBE...)), 6},
		{"PNG without eXIf", ImageFormatPNG, pngData, 1},
		{"TIFF file", ImageFormatTIFF, tiffBE, 6},
		{"GIF has no EXIF", ImageFormatGIF, imageTestGIF(t, false), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, imageOrientation(tt.src, tt.format))
		})
	}
}

func FuzzImageOrientation(f *testing.F) {
	f.Add(uint8(0), imageWithJPEGSegment(imageEncodeJPEG(f, imageTestQuadrants(16, 16), 80), 0xe1,
		append([]byte(imageExifHeader), imageExifTIFF(binary.BigEndian, 6)...)))
	f.Add(uint8(1), imageWithPNGChunk(imageEncodePNG(f, imageTestQuadrants(8, 8)), "eXIf", imageExifTIFF(binary.LittleEndian, 3)))
	f.Add(uint8(2), imageTestWebP(f, imageTestQuadrants(8, 8), imageExifTIFF(binary.LittleEndian, 5)))
	f.Add(uint8(3), imageExifTIFF(binary.BigEndian, 7))
	formats := []string{ImageFormatJPEG, ImageFormatPNG, ImageFormatWebP, ImageFormatTIFF}
	f.Fuzz(func(t *testing.T, k uint8, src []byte) {
		o := imageOrientation(src, formats[int(k)%len(formats)])
		require.True(t, o >= 1 && o <= 8, "orientation %d", o)
	})
}

func TestImageOnWhite(t *testing.T) {
	t.Parallel()
	pal := color.Palette{color.NRGBA{200, 100, 0, 255}, color.NRGBA{0, 0, 0, 0}, color.NRGBA{0, 0, 255, 128}}
	p := image.NewPaletted(image.Rect(3, 4, 6, 5), pal)
	p.Pix = []uint8{0, 1, 2}
	n := image.NewNRGBA(p.Rect)
	for i, c := range []color.NRGBA{{200, 100, 0, 255}, {0, 0, 0, 0}, {0, 0, 255, 128}} {
		n.SetNRGBA(3+i, 4, c)
	}
	want := []color.RGBA{{200, 100, 0, 255}, {255, 255, 255, 255}, {127, 127, 255, 255}}
	for _, img := range []image.Image{p, n} {
		got := imageOnWhite(img)
		require.Equal(t, image.Rect(0, 0, 3, 1), got.Rect, "%T", img)
		for x, w := range want {
			c := got.RGBAAt(x, 0)
			assert.True(t, imageClose(color.NRGBA(c), color.NRGBA(w), 1), "%T pixel %d: got %v want %v", img, x, c, w)
		}
	}
}

// TestFitImageFoolsTheSample: the strips the estimator samples are flat while all the others are
// noise, so the first prediction is far too small. The exact check after the encode must catch it
// and the corrective steps must still end within the limit.
func TestFitImageFoolsTheSample(t *testing.T) {
	t.Parallel()
	noise := imageTestPhoto(1024, 2048, 13, 40)
	img := image.NewRGBA(noise.Rect)
	copy(img.Pix, noise.Pix)
	s := newImageStrips(img)
	f := newImageFitter(s, 1)
	require.Less(t, len(f.sample), len(s.rects), "the image must be big enough to be sampled")
	for _, i := range f.sample {
		r := s.rects[i]
		for y := r.Min.Y; y < r.Max.Y; y++ {
			row := img.Pix[img.PixOffset(0, y):img.PixOffset(0, y+1)]
			for x := range row {
				row[x] = 0x80 // flat grey
			}
			for x := 3; x < len(row); x += 4 {
				row[x] = 0xff // opaque
			}
		}
	}
	full := len(imageEncodeJPEG(t, img, imageJPEGQualityMax))
	for _, limit := range []int{full / 3} {
		out, err := imageFitJPEG(img, limit)
		require.NoError(t, err)
		require.LessOrEqual(t, len(out), limit)
		_, err = jpeg.Decode(bytes.NewReader(out))
		require.NoError(t, err)
	}
}

func TestImageJPEGQualityScale(t *testing.T) {
	t.Parallel()
	for q := 1; q <= 100; q++ {
		// imageJPEGQualityFor inverts imageJPEGScale (rounding to the lower quality).
		require.Equal(t, q, imageJPEGQualityFor(imageJPEGScale(q)), "quality %d", q)
		require.LessOrEqual(t, imageJPEGQualityFor(imageJPEGScale(q)*1.01), q)
	}
}
