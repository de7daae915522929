package media

import "bytes"

// Image formats, as DetectImageFormat and FitImage name them. WeCom accepts only JPEG and PNG
// images (doc 96484); FitImage reads all of them.
const (
	ImageFormatJPEG = "jpeg"
	ImageFormatPNG  = "png"
	ImageFormatGIF  = "gif"
	ImageFormatWebP = "webp"
	ImageFormatBMP  = "bmp"
	ImageFormatTIFF = "tiff"
)

// DetectImageFormat names the image format of b by its magic bytes: ImageFormatJPEG, ImageFormatPNG,
// ImageFormatGIF, ImageFormatWebP, ImageFormatBMP or ImageFormatTIFF; "" when b is none of them. It
// reads only the first bytes and does not validate the rest.
func DetectImageFormat(b []byte) string {
	switch {
	case len(b) >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff:
		return ImageFormatJPEG
	case bytes.HasPrefix(b, []byte(pngSignature)):
		return ImageFormatPNG
	case bytes.HasPrefix(b, []byte("GIF87a")) || bytes.HasPrefix(b, []byte("GIF89a")):
		return ImageFormatGIF
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return ImageFormatWebP
	case len(b) >= 26 && b[0] == 'B' && b[1] == 'M':
		// 14-byte file header and at least the 12-byte core info header.
		return ImageFormatBMP
	case bytes.HasPrefix(b, []byte("II*\x00")) || bytes.HasPrefix(b, []byte("MM\x00*")):
		return ImageFormatTIFF
	}
	return ""
}

// pngSignature starts every PNG file (PNG spec §5.2).
const pngSignature = "\x89PNG\r\n\x1a\n"
