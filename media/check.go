package media

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrUnknownKind reports a Kind that is not one of KindImage, KindVoice, KindVideo and KindFile.
var ErrUnknownKind = errors.New("media: unknown media kind")

// Check reports whether data may be uploaded to WeCom as kind (cgi-bin/media/upload, doc 96484;
// §9), before spending an upload on it:
//
//   - every kind: larger than 5 bytes;
//   - image: JPG or PNG by its magic bytes, at most MaxImageBytes (10 MB) — FitImage makes any image fit;
//   - video: MP4 (an ISO base media file starting with an ftyp box of an MP4 brand, see IsMP4), at most
//     MaxVideoBytes (10 MB);
//   - file: at most MaxFileBytes (20 MB);
//   - voice: AMR-NB, at most 2 MB and 60 s (CheckVoice).
//
// A broken rule is reported as a *LimitError whose Limit names it ("image larger than 10 MB",
// "video is not MP4", "file must be larger than 5 bytes"). An unknown kind is ErrUnknownKind.
func Check(kind Kind, data []byte) error {
	switch kind {
	case KindVoice:
		return CheckVoice(data)
	case KindImage, KindVideo, KindFile:
	default:
		return fmt.Errorf("%w: %q", ErrUnknownKind, string(kind))
	}
	if len(data) < MinMediaBytes {
		return &LimitError{Kind: kind, Limit: string(kind) + " must be larger than 5 bytes", Got: checkSize(len(data))}
	}
	switch kind {
	case KindImage:
		if f := DetectImageFormat(data); f != ImageFormatJPEG && f != ImageFormatPNG {
			if f == "" {
				f = "unknown format"
			}
			return &LimitError{Kind: kind, Limit: "image is not JPG or PNG", Got: f}
		}
		if len(data) > MaxImageBytes {
			return &LimitError{Kind: kind, Limit: "image larger than 10 MB", Got: checkSize(len(data))}
		}
	case KindVideo:
		if brand, ok := mp4Brand(data); !ok {
			return &LimitError{Kind: kind, Limit: "video is not MP4", Got: brand}
		}
		if len(data) > MaxVideoBytes {
			return &LimitError{Kind: kind, Limit: "video larger than 10 MB", Got: checkSize(len(data))}
		}
	case KindFile:
		if len(data) > MaxFileBytes {
			return &LimitError{Kind: kind, Limit: "file larger than 20 MB", Got: checkSize(len(data))}
		}
	}
	return nil
}

// IsMP4 reports whether b starts like an MP4 file, the only video WeCom accepts (doc 96484): an ftyp
// box at offset 0 (its type at offset 4) with a sane size (16 bytes or more, whole brands, complete in
// b, at most 4 KiB) whose major or compatible brands include an ISO base media / MP4 brand (isom,
// iso2–iso9, mp41, mp42, avc1, M4V, dash, 3gp, …). QuickTime (qt) files and still images in the
// same container (HEIC, AVIF) are not MP4.
func IsMP4(b []byte) bool {
	_, ok := mp4Brand(b)
	return ok
}

// mp4MaxFtyp caps the ftyp box size IsMP4 accepts; real ones hold a handful of brands (< 100 bytes).
const mp4MaxFtyp = 4096

// mp4Brand checks the leading ftyp box. ok reports an MP4 brand; otherwise desc says what was found,
// for error messages ("no ftyp box", "ftyp brand \"qt  \"").
func mp4Brand(b []byte) (desc string, ok bool) {
	if len(b) < 16 || string(b[4:8]) != "ftyp" {
		return "no ftyp box", false
	}
	size := binary.BigEndian.Uint32(b[:4])
	if size < 16 || size > mp4MaxFtyp || uint64(size) > uint64(len(b)) || (size-16)%4 != 0 {
		return fmt.Sprintf("ftyp box of %d bytes", size), false
	}
	major := string(b[8:12])
	if mp4Brands[major] {
		return major, true
	}
	for i := 16; i < int(size); i += 4 {
		if mp4Brands[string(b[i:i+4])] {
			return major, true
		}
	}
	return fmt.Sprintf("ftyp brand %q", major), false
}

// mp4Brands are the ftyp brands of the ISO base media file format and the MP4 family built on it
// (ISO/IEC 14496-12 and -14, 3GPP TS 26.244, MPEG-DASH, CMAF, and common vendor MP4 brands).
var mp4Brands = map[string]bool{
	"isom": true, "iso2": true, "iso3": true, "iso4": true, "iso5": true, "iso6": true, "iso7": true,
	"iso8": true, "iso9": true, "mp41": true, "mp42": true, "mp71": true, "avc1": true, "M4V ": true,
	"M4VH": true, "M4VP": true, "dash": true, "msdh": true, "msix": true, "cmfc": true, "cmf2": true,
	"3gp4": true, "3gp5": true, "3gp6": true, "3gp7": true, "3gp8": true, "3gp9": true, "3gg6": true,
	"3g2a": true, "3g2b": true, "3g2c": true, "f4v ": true, "f4p ": true, "MSNV": true, "NDAS": true,
	"XAVC": true, "mmp4": true,
}

// checkSize renders a byte count for a LimitError: exact bytes, and MB (2^20 bytes) for scale.
func checkSize(n int) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%d bytes (%.2f MB)", n, float64(n)/(1<<20))
}
