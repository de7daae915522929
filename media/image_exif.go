package media

import (
	"bytes"
	"encoding/binary"
)

// imageOrientation returns the EXIF orientation (1–8, EXIF 2.3 tag 0x0112) of an image in format f,
// or 1 (upright) when it has none or it cannot be read. It looks in a JPEG's APP1 "Exif" segment, a
// PNG's eXIf chunk, a WebP's EXIF chunk, and a TIFF file's own first IFD.
func imageOrientation(src []byte, f string) int {
	switch f {
	case ImageFormatJPEG:
		return imageExifOrientation(imageJPEGExif(src))
	case ImageFormatPNG:
		return imageExifOrientation(imagePNGExif(src))
	case ImageFormatWebP:
		return imageExifOrientation(imageWebPExif(src))
	case ImageFormatTIFF:
		return imageExifOrientation(src)
	}
	return 1
}

// imageExifHeader prefixes the TIFF structure inside a JPEG APP1 segment (and, by some writers,
// inside PNG eXIf and WebP EXIF chunks).
const imageExifHeader = "Exif\x00\x00"

// imageJPEGExif returns the TIFF structure of a JPEG's Exif APP1 segment, or nil. It walks the marker
// segments before the first scan (ITU T.81 §B.1.1.4, EXIF 2.3 §4.5.4).
func imageJPEGExif(b []byte) []byte {
	for i := 2; i+4 <= len(b); {
		if b[i] != 0xff {
			return nil
		}
		m := b[i+1]
		switch {
		case m == 0xff: // fill byte
			i++
			continue
		case m == 0x01 || m == 0xd8 || (m >= 0xd0 && m <= 0xd7): // no payload
			i += 2
			continue
		case m == 0xda || m == 0xd9: // start of scan, end of image: no metadata after this
			return nil
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if n < 2 || i+2+n > len(b) {
			return nil
		}
		if p := b[i+4 : i+2+n]; m == 0xe1 && bytes.HasPrefix(p, []byte(imageExifHeader)) {
			return p[len(imageExifHeader):]
		}
		i += 2 + n
	}
	return nil
}

// imagePNGExif returns the data of a PNG's eXIf chunk (PNG 3rd edition §11.3.4.7), or nil.
func imagePNGExif(b []byte) []byte {
	for i := len(pngSignature); i+12 <= len(b); {
		n := uint64(binary.BigEndian.Uint32(b[i:]))
		typ := string(b[i+4 : i+8])
		if uint64(i)+12+n > uint64(len(b)) {
			return nil
		}
		if typ == "eXIf" {
			return bytes.TrimPrefix(b[i+8:i+8+int(n)], []byte(imageExifHeader))
		}
		if typ == "IEND" {
			return nil
		}
		i += 12 + int(n)
	}
	return nil
}

// imageWebPExif returns the data of a WebP's EXIF chunk (RIFF container of the WebP spec), or nil.
func imageWebPExif(b []byte) []byte {
	for i := 12; i+8 <= len(b); {
		n := uint64(binary.LittleEndian.Uint32(b[i+4:]))
		if uint64(i)+8+n > uint64(len(b)) {
			return nil
		}
		if string(b[i:i+4]) == "EXIF" {
			return bytes.TrimPrefix(b[i+8:i+8+int(n)], []byte(imageExifHeader))
		}
		i += 8 + int(n) + int(n&1) // chunks are padded to an even size
	}
	return nil
}

// imageExifOrientation reads the Orientation tag (0x0112) from the first IFD of a TIFF structure
// (TIFF 6.0 §2; EXIF 2.3 §4.6.4). Missing, malformed or out-of-range values give 1.
func imageExifOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var order binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		order = binary.LittleEndian
	case "MM":
		order = binary.BigEndian
	default:
		return 1
	}
	if order.Uint16(t[2:]) != 42 {
		return 1
	}
	ifd := uint64(order.Uint32(t[4:]))
	if ifd+2 > uint64(len(t)) {
		return 1
	}
	count := uint64(order.Uint16(t[ifd:]))
	for k := uint64(0); k < count; k++ {
		e := ifd + 2 + 12*k
		if e+12 > uint64(len(t)) {
			return 1
		}
		if order.Uint16(t[e:]) != 0x0112 {
			continue
		}
		var v uint32
		switch typ := order.Uint16(t[e+2:]); {
		case order.Uint32(t[e+4:]) < 1:
			return 1
		case typ == 3: // SHORT
			v = uint32(order.Uint16(t[e+8:]))
		case typ == 4: // LONG
			v = order.Uint32(t[e+8:])
		default:
			return 1
		}
		if v < 1 || v > 8 {
			return 1
		}
		return int(v)
	}
	return 1
}
