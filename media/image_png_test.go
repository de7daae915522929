package media

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// imagePNGVariants encodes pictures as PNGs of every colour type and compression level image/png
// writes, so both the fast decoder and its fallback to image/png are exercised.
func imagePNGVariants(t testing.TB) map[string][]byte {
	t.Helper()
	photo := imageTestPhoto(97, 61, 9, 12)
	nrgba := image.NewNRGBA(photo.Rect)
	gray := image.NewGray(photo.Rect)
	gray16 := image.NewGray16(photo.Rect)
	pal := image.NewPaletted(photo.Rect, color.Palette{color.Black, color.White, color.RGBA{200, 10, 10, 255}})
	for y := 0; y < photo.Rect.Dy(); y++ {
		for x := 0; x < photo.Rect.Dx(); x++ {
			c := photo.RGBAAt(x, y)
			nrgba.SetNRGBA(x, y, color.NRGBA{c.R, c.G, c.B, uint8(x * 255 / 96)})
			gray.SetGray(x, y, color.Gray{c.G})
			gray16.SetGray16(x, y, color.Gray16{uint16(c.G) * 257})
			pal.SetColorIndex(x, y, uint8((x+y)%3))
		}
	}
	out := map[string][]byte{}
	for _, level := range []png.CompressionLevel{png.DefaultCompression, png.NoCompression, png.BestSpeed, png.BestCompression} {
		for name, img := range map[string]image.Image{"rgb": photo, "rgba": nrgba, "gray": gray, "gray16": gray16, "paletted": pal} {
			var b bytes.Buffer
			require.NoError(t, (&png.Encoder{CompressionLevel: level}).Encode(&b, img))
			out[fmt.Sprintf("%s/level%d", name, level)] = b.Bytes()
		}
	}
	// A flat image: long runs, overlapping back-references.
	flat := image.NewRGBA(image.Rect(0, 0, 300, 200))
	for i := range flat.Pix {
		flat.Pix[i] = 0x80
	}
	out["flat"] = imageEncodePNG(t, flat)
	return out
}

func TestImageDecodePNGMatchesImagePNG(t *testing.T) {
	t.Parallel()
	for name, data := range imagePNGVariants(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want, err := png.Decode(bytes.NewReader(data))
			require.NoError(t, err)
			got, ok, err := imageDecodePNG(data)
			require.NoError(t, err)
			if !ok {
				assert.Contains(t, []string{"gray16", "paletted"}, name[:bytes.IndexByte([]byte(name), '/')], "fast path declined %s", name)
				return
			}
			assert.Equal(t, want, got)
		})
	}
}

func TestImageDecodePNGCorrupt(t *testing.T) {
	t.Parallel()
	data := imagePNGVariants(t)["rgb/level0"]
	idat := bytes.Index(data, []byte("IDAT"))
	flip := func(i int) []byte {
		b := bytes.Clone(data)
		b[i] ^= 0x40
		return b
	}
	tests := map[string][]byte{
		"truncated":            data[:len(data)/2],
		"no IEND":              data[:len(data)-12],
		"bad chunk CRC":        flip(idat + 10),
		"IHDR not first":       append([]byte(pngSignature), data[33:]...),
		"zero width":           imageWithIHDR(data, 0, 61),
		"huge chunk length":    append(append([]byte{}, data[:33]...), 0x7f, 0xff, 0xff, 0xff, 'I', 'D', 'A', 'T'),
		"image data too short": imageWithIHDR(data, 97, 62),
		"image data too long":  imageWithIHDR(data, 97, 60),
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, ok, err := imageDecodePNG(b)
			if ok {
				require.Error(t, err)
			}
			_, err = imageDecode(b, ImageFormatPNG)
			require.Error(t, err, "image/png must agree")
		})
	}
}

// imageWithIHDR rewrites a PNG's width and height (with a valid CRC).
func imageWithIHDR(data []byte, w, h uint32) []byte {
	b := bytes.Clone(data)
	binaryPut32(b[16:], w)
	binaryPut32(b[20:], h)
	binaryPut32(b[29:], crc32Of(b[12:29]))
	return b
}

func TestInflateMatchesZlib(t *testing.T) {
	t.Parallel()
	inputs := map[string][]byte{
		"empty":      {},
		"one byte":   {42},
		"text":       bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog. "), 500),
		"zeros":      make([]byte, 100000),
		"noise":      imageTestPhoto(200, 100, 4, 40).Pix,
		"photo":      imageTestPhoto(200, 100, 4, 2).Pix,
		"period 3":   bytes.Repeat([]byte{1, 2, 3}, 30000),
		"large":      imageTestPhoto(600, 400, 8, 5).Pix,
		"long match": append(bytes.Repeat([]byte{7}, 40000), bytes.Repeat([]byte("ab"), 40000)...),
	}
	for name, in := range inputs {
		for _, level := range []int{zlib.NoCompression, zlib.BestSpeed, 5, zlib.BestCompression, zlib.HuffmanOnly} {
			t.Run(fmt.Sprintf("%s/%d", name, level), func(t *testing.T) {
				t.Parallel()
				var z bytes.Buffer
				w, err := zlib.NewWriterLevel(&z, level)
				require.NoError(t, err)
				_, err = w.Write(in)
				require.NoError(t, err)
				require.NoError(t, w.Close())
				out := make([]byte, len(in))
				require.NoError(t, inflateZlib([][]byte{z.Bytes()}, out, nil))
				require.Equal(t, in, out)
				// The same stream in pieces, as a PNG's IDAT chunks hold it, down to single bytes.
				for _, size := range []int{1, 3, 8, 9, 1000} {
					clear(out)
					require.NoError(t, inflateZlib(inflateSplit(z.Bytes(), size), out, nil), "pieces of %d", size)
					require.Equal(t, in, out, "pieces of %d", size)
				}
				// The exact size is part of the contract.
				require.Error(t, inflateZlib([][]byte{z.Bytes()}, make([]byte, len(in)+1), nil))
				if len(in) > 0 {
					require.Error(t, inflateZlib([][]byte{z.Bytes()}, make([]byte, len(in)-1), nil))
					require.Error(t, inflateZlib([][]byte{z.Bytes()[:z.Len()-1]}, out, nil), "truncated checksum")
					bad := bytes.Clone(z.Bytes())
					bad[len(bad)-1] ^= 1
					require.ErrorIs(t, inflateZlib([][]byte{bad}, out, nil), errInflateChecksum)
				}
			})
		}
	}
}

func FuzzInflate(f *testing.F) {
	for _, s := range [][]byte{nil, []byte("hello hello hello hello"), bytes.Repeat([]byte{0, 1}, 300)} {
		for _, level := range []int{0, 1, 9, -2} {
			var z bytes.Buffer
			w, _ := zlib.NewWriterLevel(&z, level)
			_, _ = w.Write(s)
			_ = w.Close()
			f.Add(z.Bytes(), uint8(0))
			f.Add(z.Bytes(), uint8(5))
		}
	}
	f.Fuzz(func(t *testing.T, z []byte, piece uint8) {
		// Differential: compress/zlib is the reference.
		r, err := zlib.NewReader(bytes.NewReader(z))
		var want []byte
		if err == nil {
			want, err = io.ReadAll(io.LimitReader(r, 1<<20))
		}
		got := make([]byte, len(want))
		mine := inflateZlib(inflateSplit(z, int(piece)), got, nil)
		if err == nil {
			require.NoError(t, mine, "compress/zlib decodes this")
			require.Equal(t, want, got)
		} else if mine == nil {
			t.Fatalf("accepted what compress/zlib rejects (%v)", err)
		}
	})
}

func FuzzImageDecodePNG(f *testing.F) {
	for _, data := range imagePNGVariants(f) {
		if len(data) < 4000 {
			f.Add(data)
		}
	}
	f.Add(imagePNGVariants(f)["gray/level0"])
	f.Fuzz(func(t *testing.T, data []byte) {
		// Mutations nearly always break a chunk CRC, which stops both decoders at once; repair the
		// CRCs so that the fuzzer reaches inflate and unfilter.
		data = imageFixCRCs(data)
		cfg, err := png.DecodeConfig(bytes.NewReader(data))
		if err != nil || cfg.Width*cfg.Height > 1<<20 {
			return
		}
		got, ok, err := imageDecodePNG(data)
		if !ok {
			return
		}
		want, werr := png.Decode(bytes.NewReader(data))
		if err == nil {
			require.NoError(t, werr, "image/png rejects what the fast path accepted")
			require.Equal(t, want, got)
		}
	})
}

func binaryPut32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}

// imageBuildPNG wraps raw (already filtered) scanlines into a PNG of the given colour type, with
// valid CRCs; keep cuts the zlib stream short.
func imageBuildPNG(t testing.TB, w, h int, ctype byte, raw []byte, keep int) []byte {
	t.Helper()
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	_, err := zw.Write(raw)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	data := z.Bytes()
	if keep > 0 {
		data = data[:keep]
	}
	chunk := func(typ string, d []byte) []byte {
		c := make([]byte, 8, 12+len(d))
		binaryPut32(c, uint32(len(d)))
		copy(c[4:], typ)
		c = append(c, d...)
		var crc [4]byte
		binaryPut32(crc[:], crc32Of(c[4:]))
		return append(c, crc[:]...)
	}
	ihdr := make([]byte, 13)
	binaryPut32(ihdr, uint32(w))
	binaryPut32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = 8, ctype
	out := []byte(pngSignature)
	out = append(out, chunk("IHDR", ihdr)...)
	out = append(out, chunk("IDAT", data)...)
	return append(out, chunk("IEND", nil)...)
}

// TestFitImageStreamingSameAsWhole: the PNG path that encodes while decoding gives byte for byte
// what decoding first and fitting afterwards gives.
func TestFitImageStreamingSameAsWhole(t *testing.T) {
	t.Parallel()
	photo := imageTestPhoto(1500, 1000, 21, 5)
	src := imageEncodePNG(t, photo)
	out, format, err := FitImage(src, len(src)-1)
	require.NoError(t, err)
	require.Equal(t, ImageFormatJPEG, format)
	img, err := png.Decode(bytes.NewReader(src))
	require.NoError(t, err)
	want, err := imageFitJPEG(img, len(src)-1)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, out), "streaming result differs")
	assert.Equal(t, imageJPEGQualityMax, imageGuessQuality(t, out))
}

// TestFitImageStreamingErrors: broken image data found while strips are being encoded is an error,
// and no goroutine outlives the call. Not parallel: goleak sees every goroutine.
func TestFitImageStreamingErrors(t *testing.T) {
	defer goleak.VerifyNone(t)
	const w, h = 700, 900
	photo := imageTestPhoto(w, h, 2, 30)
	raw := make([]byte, 0, h*(3*w+1))
	for y := 0; y < h; y++ {
		raw = append(raw, 0)
		for x := 0; x < w; x++ {
			c := photo.RGBAAt(x, y)
			raw = append(raw, c.R, c.G, c.B)
		}
	}
	good := imageBuildPNG(t, w, h, 2, raw, 0)
	out, _, err := FitImage(good, len(good)-1)
	require.NoError(t, err, "the well-formed file decodes")
	require.NotEmpty(t, out)

	badFilter := bytes.Clone(raw)
	badFilter[(h*3/4)*(3*w+1)] = 9 // no such filter type, three quarters down
	z := bytes.Clone(good)
	for name, src := range map[string][]byte{
		"bad filter type late in the image": imageBuildPNG(t, w, h, 2, badFilter, 0),
		"zlib stream cut short":             imageBuildPNG(t, w, h, 2, raw, len(good)*2/3),
		"image data longer than the header": imageBuildPNG(t, w, h-10, 2, raw, 0),
		"checksum wrong":                    imageWithAdler(z),
	} {
		_, _, err := FitImage(src, len(src)-1)
		require.ErrorIs(t, err, ErrCorruptImage, name)
	}
}

// imageWithAdler flips a bit of the zlib checksum at the end of the (single) IDAT chunk and fixes
// the chunk CRC.
func imageWithAdler(p []byte) []byte {
	i := bytes.Index(p, []byte("IDAT")) - 4
	n := int(p[i])<<24 | int(p[i+1])<<16 | int(p[i+2])<<8 | int(p[i+3])
	p[i+8+n-1] ^= 1
	binaryPut32(p[i+8+n:], crc32Of(p[i+4:i+8+n]))
	return p
}

// imageFixCRCs returns a copy of a PNG with every complete chunk's CRC recomputed.
func imageFixCRCs(b []byte) []byte {
	b = bytes.Clone(b)
	for i := len(pngSignature); i+12 <= len(b); {
		n := int(b[i])<<24 | int(b[i+1])<<16 | int(b[i+2])<<8 | int(b[i+3])
		if n < 0 || n > len(b)-i-12 {
			break
		}
		binaryPut32(b[i+8+n:], crc32Of(b[i+4:i+8+n]))
		i += 12 + n
	}
	return b
}

// inflateSplit cuts b into pieces of size bytes (0: one piece), with an empty piece thrown in.
func inflateSplit(b []byte, size int) [][]byte {
	if size <= 0 {
		return [][]byte{b}
	}
	var out [][]byte
	for len(b) > size {
		out = append(out, b[:size], nil)
		b = b[size:]
	}
	return append(out, b)
}
