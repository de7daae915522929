package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkFtyp builds an ISO base media file: an ftyp box with the given brands, then an mdat box
// padded so the whole file is size bytes (at least the two box headers).
func checkFtyp(size int, major string, compatible ...string) []byte {
	ftyp := make([]byte, 16, 16+4*len(compatible))
	binary.BigEndian.PutUint32(ftyp, uint32(16+4*len(compatible)))
	copy(ftyp[4:], "ftyp")
	copy(ftyp[8:], major)
	for _, c := range compatible {
		ftyp = append(ftyp, c...)
	}
	out := make([]byte, max(size, len(ftyp)+8))
	copy(out, ftyp)
	binary.BigEndian.PutUint32(out[len(ftyp):], uint32(len(out)-len(ftyp)))
	copy(out[len(ftyp)+4:], "mdat")
	return out
}

// checkPadded returns magic followed by zero bytes up to size.
func checkPadded(magic string, size int) []byte {
	b := make([]byte, size)
	copy(b, magic)
	return b
}

func TestCheck(t *testing.T) {
	t.Parallel()
	jpegMagic, pngMagic := "\xff\xd8\xff\xe0", pngSignature
	tests := []struct {
		name      string
		kind      Kind
		data      []byte
		wantLimit string // "" = accepted
	}{
		{"image: JPEG", KindImage, checkPadded(jpegMagic, 100), ""},
		{"image: PNG", KindImage, checkPadded(pngMagic, 100), ""},
		{"image: JPEG of exactly 10 MB", KindImage, checkPadded(jpegMagic, MaxImageBytes), ""},
		{"image: JPEG one byte over 10 MB", KindImage, checkPadded(jpegMagic, MaxImageBytes+1), "image larger than 10 MB"},
		{"image: PNG one byte over 10 MB", KindImage, checkPadded(pngMagic, MaxImageBytes+1), "image larger than 10 MB"},
		{"image: 6 bytes", KindImage, checkPadded(jpegMagic, 6), ""},
		{"image: 5 bytes", KindImage, checkPadded(jpegMagic, 5), "image must be larger than 5 bytes"},
		{"image: empty", KindImage, nil, "image must be larger than 5 bytes"},
		{"image: GIF", KindImage, checkPadded("GIF89a", 100), "image is not JPG or PNG"},
		{"image: WebP", KindImage, checkPadded("RIFF\x00\x00\x00\x00WEBPVP8L", 100), "image is not JPG or PNG"},
		{"image: text", KindImage, []byte("hello, world"), "image is not JPG or PNG"},
		{"video: MP4 isom", KindVideo, checkFtyp(100, "isom", "isom", "iso2", "avc1", "mp41"), ""},
		{"video: MP4 mp42 without compatible brands", KindVideo, checkFtyp(100, "mp42"), ""},
		{"video: unknown major brand, MP4 compatible brand", KindVideo, checkFtyp(100, "XYZW", "mp42"), ""},
		{"video: exactly 10 MB", KindVideo, checkFtyp(MaxVideoBytes, "isom"), ""},
		{"video: one byte over 10 MB", KindVideo, checkFtyp(MaxVideoBytes+1, "isom"), "video larger than 10 MB"},
		{"video: 5 bytes", KindVideo, checkFtyp(100, "isom")[:5], "video must be larger than 5 bytes"},
		{"video: QuickTime MOV", KindVideo, checkFtyp(100, "qt  ", "qt  "), "video is not MP4"},
		{"video: HEIC still image", KindVideo, checkFtyp(100, "heic", "mif1", "heic"), "video is not MP4"},
		{"video: AVIF still image", KindVideo, checkFtyp(100, "avif", "avif", "mif1", "miaf"), "video is not MP4"},
		{"video: no ftyp box", KindVideo, checkPadded("\x00\x00\x00\x08mdat", 100), "video is not MP4"},
		{"video: ftyp not at offset 4", KindVideo, append([]byte{0}, checkFtyp(100, "isom")...), "video is not MP4"},
		{"video: ftyp size 0 (to end of file)", KindVideo, checkBox(0, checkFtyp(100, "isom")), "video is not MP4"},
		{"video: ftyp size 1 (64-bit size)", KindVideo, checkBox(1, checkFtyp(100, "isom")), "video is not MP4"},
		{"video: ftyp smaller than its brands", KindVideo, checkBox(12, checkFtyp(100, "isom")), "video is not MP4"},
		{"video: ftyp not whole brands", KindVideo, checkBox(18, checkFtyp(100, "isom", "mp41")), "video is not MP4"},
		{"video: ftyp longer than the data", KindVideo, checkFtyp(100, "isom", "mp41")[:19], "video is not MP4"},
		{"video: absurd ftyp size", KindVideo, checkBox(8192, checkFtyp(10000, "isom")), "video is not MP4"},
		{"video: a JPEG", KindVideo, checkPadded(jpegMagic, 100), "video is not MP4"},
		{"file: 6 bytes", KindFile, []byte("abcdef"), ""},
		{"file: 5 bytes", KindFile, []byte("abcde"), "file must be larger than 5 bytes"},
		{"file: empty", KindFile, nil, "file must be larger than 5 bytes"},
		{"file: exactly 20 MB", KindFile, make([]byte, MaxFileBytes), ""},
		{"file: one byte over 20 MB", KindFile, make([]byte, MaxFileBytes+1), "file larger than 20 MB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Check(tt.kind, tt.data)
			if tt.wantLimit == "" {
				require.NoError(t, err)
				return
			}
			var le *LimitError
			require.ErrorAs(t, err, &le)
			assert.Equal(t, tt.kind, le.Kind)
			assert.Equal(t, tt.wantLimit, le.Limit)
			assert.NotEmpty(t, le.Got)
			assert.Contains(t, err.Error(), tt.wantLimit)
		})
	}
}

// checkBox returns b with its first box size field set to size.
func checkBox(size uint32, b []byte) []byte {
	binary.BigEndian.PutUint32(b, size)
	return b
}

func TestCheckVoiceIsCheckVoice(t *testing.T) {
	t.Parallel()
	for _, data := range [][]byte{nil, []byte("#!AMR\n\x7c"), []byte("#!AMR-WB\n\x00\x00"), []byte("hello world")} {
		assert.Equal(t, CheckVoice(data), Check(KindVoice, data), "%q", data)
	}
	require.NoError(t, Check(KindVoice, []byte("#!AMR\n\x7c"))) // one NO_DATA frame
}

func TestCheckUnknownKind(t *testing.T) {
	t.Parallel()
	err := Check(Kind("gif"), []byte("GIF89a....."))
	require.ErrorIs(t, err, ErrUnknownKind)
	var le *LimitError
	assert.False(t, errors.As(err, &le))
}

func TestCheckErrorMessages(t *testing.T) {
	t.Parallel()
	err := Check(KindImage, checkPadded("\xff\xd8\xff", MaxImageBytes+1))
	assert.EqualError(t, err, "media: image: image larger than 10 MB (got 10485761 bytes (10.00 MB))")
	err = Check(KindVideo, checkFtyp(100, "qt  "))
	assert.EqualError(t, err, `media: video: video is not MP4 (got ftyp brand "qt  ")`)
	err = Check(KindFile, []byte("abc"))
	assert.EqualError(t, err, "media: file: file must be larger than 5 bytes (got 3 bytes)")
}

func TestDetectImageFormat(t *testing.T) {
	t.Parallel()
	for _, f := range imageTestFormats(t) {
		assert.Equal(t, f.format, DetectImageFormat(f.data), f.format)
	}
	for _, b := range [][]byte{nil, []byte("\xff\xd8"), []byte("\x89PNG\r\n"), []byte("GIF90a"), []byte("RIFF1234WAVE"),
		[]byte("BM"), []byte("II+\x00"), []byte("hello")} {
		assert.Empty(t, DetectImageFormat(b), "%q", b)
	}
}

func FuzzCheck(f *testing.F) {
	f.Add(uint8(0), []byte("\xff\xd8\xff\xe0\x00\x10JFIF"))
	f.Add(uint8(1), []byte("#!AMR\n\x7c\x7c"))
	f.Add(uint8(2), checkFtyp(64, "isom", "mp41"))
	f.Add(uint8(3), []byte("abcdef"))
	kinds := []Kind{KindImage, KindVoice, KindVideo, KindFile, Kind("other")}
	f.Fuzz(func(t *testing.T, k uint8, data []byte) {
		kind := kinds[int(k)%len(kinds)]
		err := Check(kind, data)
		if kind == Kind("other") {
			require.ErrorIs(t, err, ErrUnknownKind)
			return
		}
		if err != nil {
			var le *LimitError
			require.ErrorAs(t, err, &le)
			require.Equal(t, kind, le.Kind)
			return
		}
		require.Greater(t, len(data), 5)
		switch kind {
		case KindImage:
			require.Contains(t, []string{ImageFormatJPEG, ImageFormatPNG}, DetectImageFormat(data))
		case KindVideo:
			require.True(t, IsMP4(data))
			require.True(t, bytes.Equal(data[4:8], []byte("ftyp")))
		}
	})
}
