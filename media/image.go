package media

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
	"golang.org/x/image/webp"
)

// MaxImagePixels caps width × height of an image FitImage decodes, checked from the header before any
// pixel is decoded, so a small file claiming a huge picture (a decompression bomb) costs nothing.
// 64 Mi pixels (8192 × 8192) covers 48 and 50 megapixel phone cameras; decoding that needs about
// 256 MiB.
const MaxImagePixels = 64 << 20

// Errors FitImage returns (wrapped with details; match with errors.Is).
var (
	// ErrUnsupportedImage reports input that is none of the formats FitImage reads.
	ErrUnsupportedImage = errors.New("media: unsupported image format")
	// ErrImageTooManyPixels reports an image whose header claims more than MaxImagePixels pixels.
	ErrImageTooManyPixels = errors.New("media: image has too many pixels")
	// ErrCorruptImage reports an image FitImage could not decode.
	ErrCorruptImage = errors.New("media: corrupt image")
	// ErrImageCannotFit reports a size limit no encoding can meet (maxBytes of a few hundred bytes).
	ErrImageCannotFit = errors.New("media: image cannot be made to fit")
)

// FitImage turns src into an image WeCom accepts for upload: JPEG or PNG of at most maxBytes bytes
// (use MaxImageBytes, 10 MB; doc 96484, §9). format is ImageFormatJPEG or
// ImageFormatPNG.
//
// A JPEG or PNG that already fits is returned as is: out is src, nothing is decoded (only the header
// is checked). Anything else — a larger JPEG/PNG, or GIF (first frame), WebP, BMP, TIFF — is decoded
// (after checking the header against MaxImagePixels), turned upright according to its EXIF
// orientation (JPEG APP1, PNG eXIf, WebP EXIF, TIFF) and re-encoded:
//
//   - with real transparency (some pixel not fully opaque), as PNG if that fits and src was not
//     already a PNG (re-encoding a PNG rarely makes it smaller);
//   - otherwise as baseline JPEG, transparent parts painted white, at the best quality from 90 down
//     to 70 that fits. The size at a quality is predicted by encoding a sample of 1/8 of the image
//     (strips spread over its height), which is then part of the final encode. The final encode is
//     measured exactly; if the prediction was off, one corrective encode calibrated on the exact
//     size follows (should even that miss, the image is scaled down until it fits). If quality 70
//     is predicted not to fit, the image is scaled down (area-averaging bilinear) instead.
//
// A big 8-bit grey, RGB or RGBA PNG — the usual screenshot or exported photo — takes a faster road:
// a built-in decoder (its own zlib inflate, about twice as fast as image/png) feeds rows to JPEG
// encoders working at quality 90 while the rest is still being decompressed; when that result fits
// it is the answer, otherwise the decoded image goes the way described above.
//
// Encoding runs on up to GOMAXPROCS goroutines (strips joined with JPEG restart markers); all have
// ended when FitImage returns. The result always fits in maxBytes, or err says why: an
// ErrUnsupportedImage, ErrImageTooManyPixels, ErrCorruptImage or ErrImageCannotFit.
func FitImage(src []byte, maxBytes int) (out []byte, format string, err error) {
	return fitImage(src, maxBytes, MaxImagePixels)
}

// fitImage is FitImage with the pixel cap as a parameter (fuzzing uses a small one).
func fitImage(src []byte, maxBytes int, maxPixels int64) (out []byte, format string, err error) {
	if maxBytes <= 0 {
		return nil, "", fmt.Errorf("%w: limit of %d bytes", ErrImageCannotFit, maxBytes)
	}
	f := DetectImageFormat(src)
	if f == "" {
		return nil, "", fmt.Errorf("%w (first bytes %q)", ErrUnsupportedImage, src[:min(len(src), 8)])
	}
	cfg, err := imageDecodeConfig(src, f)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s header: %w", ErrCorruptImage, f, err)
	}
	if (f == ImageFormatJPEG || f == ImageFormatPNG) && len(src) <= maxBytes {
		return src, f, nil
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, "", fmt.Errorf("%w: %s of %d×%d pixels", ErrCorruptImage, f, cfg.Width, cfg.Height)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > maxPixels {
		return nil, "", fmt.Errorf("%w: %s of %d×%d = %d pixels, at most %d allowed",
			ErrImageTooManyPixels, f, cfg.Width, cfg.Height, px, maxPixels)
	}
	orientation := imageOrientation(src, f)
	var img image.Image
	if f == ImageFormatPNG && orientation == 1 {
		// The common big PNG: decode and encode at the same time.
		p, ok, err := imageParsePNG(src)
		if err != nil {
			return nil, "", fmt.Errorf("%w: %s: %w", ErrCorruptImage, f, err)
		}
		if ok {
			if out, img, err = imageFitPNGStreaming(p, maxBytes); err != nil {
				return nil, "", err
			}
			if out != nil {
				return out, ImageFormatJPEG, nil
			}
		}
	}
	if img == nil {
		if img, err = imageDecode(src, f); err != nil {
			return nil, "", fmt.Errorf("%w: %s: %w", ErrCorruptImage, f, err)
		}
	}
	if b := img.Bounds(); b.Empty() || int64(b.Dx())*int64(b.Dy()) > maxPixels {
		return nil, "", fmt.Errorf("%w: %s decoded to %v", ErrCorruptImage, f, b)
	}
	if imageHasAlpha(img) {
		n := imageOrient(imageToNRGBA(img), orientation)
		if f != ImageFormatPNG {
			if out, ok := imageTryPNG(n, maxBytes); ok {
				return out, ImageFormatPNG, nil
			}
		}
		img = imageOnWhite(n)
	} else if orientation > 1 {
		img = imageOrient(imageToRGBA(img), orientation)
	}
	out, err = imageFitJPEG(img, maxBytes)
	if err != nil {
		return nil, "", err
	}
	return out, ImageFormatJPEG, nil
}

// imageFitPNGStreaming decodes a PNG on the fast path while JPEG-encoding it at the best quality,
// strip by strip as rows come out of the decoder, so both CPU cores work during the decode. If every
// strip got encoded and the whole fits in maxBytes, that is the result (out). Otherwise — the image
// has real transparency, or is too big at the best quality — out is nil and img is the decoded
// image for the general path.
func imageFitPNGStreaming(p *imagePNG, maxBytes int) (out []byte, img image.Image, err error) {
	img, pix, stride := p.newImage()
	if p.w > imageJPEGMaxSide || p.h > imageJPEGMaxSide {
		if err := p.decode(pix, stride, nil); err != nil {
			return nil, nil, fmt.Errorf("%w: png: %w", ErrCorruptImage, err)
		}
		return nil, img, nil
	}
	view := img // what the JPEG encoder reads: RGBA bytes are the same as NRGBA while opaque
	if m, ok := img.(*image.NRGBA); ok {
		view = &image.RGBA{Pix: m.Pix, Stride: m.Stride, Rect: m.Rect}
	}
	s := newImageStrips(view)
	st := newImageStreamJPEG(s, imageJPEGQualityMax, maxBytes)
	transparent := false
	err = p.decode(pix, stride, func(y0, y1 int) {
		if p.ctype == 6 && !transparent && imageAlphaBelow(pix[y0*stride:], stride, p.w, y1-y0, 4, 3) {
			transparent = true
			st.stop()
		}
		st.rowsReady(y1)
	})
	enc, encErr := st.end()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: png: %w", ErrCorruptImage, err)
	}
	if encErr != nil {
		return nil, nil, encErr
	}
	if enc != nil && !transparent && s.total(enc) <= maxBytes {
		out, err := s.assemble(enc)
		return out, nil, err
	}
	return nil, img, nil
}

// imageDecodeConfig reads the header of src in format f.
func imageDecodeConfig(src []byte, f string) (image.Config, error) {
	r := bytes.NewReader(src)
	switch f {
	case ImageFormatJPEG:
		return jpeg.DecodeConfig(r)
	case ImageFormatPNG:
		return png.DecodeConfig(r)
	case ImageFormatGIF:
		return gif.DecodeConfig(r)
	case ImageFormatWebP:
		return webp.DecodeConfig(r)
	case ImageFormatBMP:
		return bmp.DecodeConfig(r)
	case ImageFormatTIFF:
		return tiff.DecodeConfig(r)
	}
	return image.Config{}, ErrUnsupportedImage
}

// imageDecode decodes src in format f; a GIF yields its first frame.
func imageDecode(src []byte, f string) (image.Image, error) {
	r := bytes.NewReader(src)
	switch f {
	case ImageFormatJPEG:
		return jpeg.Decode(r)
	case ImageFormatPNG:
		if img, ok, err := imageDecodePNG(src); ok {
			return img, err
		}
		return png.Decode(r)
	case ImageFormatGIF:
		return gif.Decode(r)
	case ImageFormatWebP:
		return webp.Decode(r)
	case ImageFormatBMP:
		return bmp.Decode(r)
	case ImageFormatTIFF:
		return tiff.Decode(r)
	}
	return nil, ErrUnsupportedImage
}

// imageTryPNG encodes img as PNG and reports whether it fits in maxBytes; it stops as soon as the
// output grows past the limit.
func imageTryPNG(img image.Image, maxBytes int) ([]byte, bool) {
	w := &imageLimitWriter{max: maxBytes}
	if err := (&png.Encoder{CompressionLevel: png.DefaultCompression}).Encode(w, img); err != nil {
		return nil, false
	}
	return w.buf, true
}

var errImageLimit = errors.New("media: over the size limit")

// imageLimitWriter collects output up to max bytes and fails past that.
type imageLimitWriter struct {
	buf []byte
	max int
}

func (w *imageLimitWriter) Write(p []byte) (int, error) {
	if len(w.buf)+len(p) > w.max {
		return 0, errImageLimit
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}
