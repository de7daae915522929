package kftest_test

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf/kftest"
)

func testImage(w, h int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x * 7), uint8(y * 13), uint8(x ^ y), 255})
		}
	}
	return img
}

func pngBytes(t testing.TB, w, h int) []byte {
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, testImage(w, h)))
	return b.Bytes()
}

func jpegBytes(t testing.TB, w, h int) []byte {
	var b bytes.Buffer
	require.NoError(t, jpeg.Encode(&b, testImage(w, h), nil))
	return b.Bytes()
}

// amrBytes builds an AMR-NB file of n frames of type ft (12.2 kbit/s = 7: 32 bytes a frame).
func amrBytes(n int, ft byte) []byte {
	sizes := map[byte]int{0: 13, 7: 32, 8: 6, 15: 1}
	b := []byte("#!AMR\n")
	for range n {
		f := make([]byte, sizes[ft])
		f[0] = ft<<3 | 0x04
		b = append(b, f...)
	}
	return b
}

// mp4Bytes is an ftyp box followed by padding to size bytes.
func mp4Bytes(size int) []byte {
	b := make([]byte, max(size, 24))
	binary.BigEndian.PutUint32(b, 24)
	copy(b[4:], "ftypisom\x00\x00\x02\x00isomiso2")
	return b
}

func TestAMRDuration(t *testing.T) {
	t.Parallel()
	mixed := append(amrBytes(10, 7), amrBytes(5, 0)[6:]...)
	mixed = append(mixed, amrBytes(3, 8)[6:]...)
	mixed = append(mixed, amrBytes(2, 15)[6:]...)
	tests := []struct {
		name string
		data []byte
		want time.Duration
		ok   bool
	}{
		{"one frame", amrBytes(1, 7), 20 * time.Millisecond, true},
		{"60 s exactly", amrBytes(3000, 7), 60 * time.Second, true},
		{"mixed frame types", mixed, 400 * time.Millisecond, true},
		{"AMR-WB magic", append([]byte("#!AMR-WB\n"), make([]byte, 20)...), 0, false},
		{"multichannel magic", append([]byte("#!AMR_MC1.0\n"), make([]byte, 20)...), 0, false},
		{"no magic", make([]byte, 40), 0, false},
		{"header only", []byte("#!AMR\n"), 0, false},
		{"truncated frame", amrBytes(2, 7)[:6+32+10], 0, false},
		{"reserved frame type 13", append([]byte("#!AMR\n"), 13<<3, 0, 0), 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := kftest.AMRDurationForTest(tc.data)
			if !tc.ok {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, d)
		})
	}
}

func TestUploadAccepts(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	tests := []struct {
		kind, filename string
		data           []byte
		ct             string
	}{
		{"image", "a.png", pngBytes(t, 8, 8), "image/png"},
		{"image", "a.jpg", jpegBytes(t, 8, 8), "image/jpeg"},
		{"voice", "a.amr", amrBytes(50, 7), "audio/amr"},
		{"voice", "long.amr", amrBytes(3000, 0), "audio/amr"},
		{"video", "a.mp4", mp4Bytes(1000), "video/mp4"},
		{"file", "a.bin", []byte("hello, file"), "application/octet-stream"},
	}
	for _, tc := range tests {
		t.Run(tc.filename, func(t *testing.T) {
			r := a.upload(tc.kind, "media", tc.filename, tc.data)
			require.Equal(t, 0, r.Code, r.Msg)
			assert.Equal(t, tc.kind, r.str("type"))
			id := r.str("media_id")
			require.NotEmpty(t, id)
			var created string
			require.NoError(t, jsonString(r.Fields["created_at"], &created), "created_at is a JSON string")
			_, err := strconv.ParseInt(created, 10, 64)
			assert.NoError(t, err)
			data, ct, name, ok := srv.Media(id)
			require.True(t, ok)
			assert.Equal(t, tc.data, data)
			assert.Equal(t, tc.ct, ct)
			assert.Equal(t, tc.filename, name)
			kind, _ := srv.MediaKind(id)
			assert.Equal(t, tc.kind, kind)
		})
	}
}

func TestUploadRejects(t *testing.T) {
	t.Parallel()
	_, a := newAPI(t)
	var gifBuf bytes.Buffer
	require.NoError(t, gif.Encode(&gifBuf, testImage(4, 4), nil))
	bigPNG := append(pngBytes(t, 2, 2), make([]byte, kftest.MaxImageBytes)...)
	tests := []struct {
		name, kind, field, filename string
		data                        []byte
		code                        int
	}{
		{"bad type", "sticker", "media", "a.png", pngBytes(t, 2, 2), kftest.CodeInvalidMediaType},
		{"no type", "", "media", "a.png", pngBytes(t, 2, 2), kftest.CodeInvalidMediaType},
		{"wrong field", "image", "file", "a.png", pngBytes(t, 2, 2), kftest.CodeMissingMedia},
		{"no filename", "file", "media", "", []byte("0123456789"), kftest.CodeInvalidFileType},
		{"5 bytes", "file", "media", "a.txt", []byte("12345"), kftest.CodeInvalidFileSize},
		{"6 bytes ok", "file", "media", "a.txt", []byte("123456"), 0},
		{"GIF image", "image", "media", "a.gif", gifBuf.Bytes(), kftest.CodeInvalidFileType},
		{"corrupt PNG header", "image", "media", "a.png", pngBytes(t, 2, 2)[:20], kftest.CodeInvalidFileType},
		{"image over 10 MB", "image", "media", "big.png", bigPNG, kftest.CodeInvalidImageSize},
		{"voice not AMR", "voice", "media", "a.mp3", []byte("ID3\x03\x00\x00\x00\x00\x00\x00"), kftest.CodeInvalidFileType},
		{"voice AMR-WB", "voice", "media", "a.amr", append([]byte("#!AMR-WB\n"), make([]byte, 100)...), kftest.CodeInvalidFileType},
		{"voice truncated frame", "voice", "media", "a.amr", amrBytes(10, 7)[:100], kftest.CodeInvalidFileType},
		{"voice over 60 s", "voice", "media", "a.amr", amrBytes(3001, 0), kftest.CodeVoiceTooLong},
		{"voice over 2 MB", "voice", "media", "a.amr", amrBytes(kftest.MaxVoiceBytes/32+1, 7), kftest.CodeInvalidVoiceSize},
		{"video not MP4", "video", "media", "a.avi", []byte("RIFF\x00\x00\x00\x00AVI LIST"), kftest.CodeInvalidFileType},
		{"video over 10 MB", "video", "media", "a.mp4", mp4Bytes(kftest.MaxVideoBytes + 1), kftest.CodeInvalidVideoSize},
		{"file over 20 MB", "file", "media", "a.bin", make([]byte, kftest.MaxFileBytes+1), kftest.CodeInvalidFileSize},
		{"file of 20 MB ok", "file", "media", "a.bin", make([]byte, kftest.MaxFileBytes), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := a.upload(tc.kind, tc.field, tc.filename, tc.data)
			assert.Equal(t, tc.code, r.Code, r.Msg)
		})
	}
	// Not multipart at all.
	r := a.post("/cgi-bin/media/upload?type=image", `{}`)
	assert.NotEqual(t, 0, r.Code)
}

func TestMediaGet(t *testing.T) {
	t.Parallel()
	clk := clockAt(t0)
	srv, a := newAPI(t, kftest.WithClock(clk.Now))
	data := pngBytes(t, 16, 16)
	r := a.upload("image", "media", "pic.png", data)
	require.Equal(t, 0, r.Code)
	id := r.str("media_id")

	got := a.get("/cgi-bin/media/get", map[string][]string{"media_id": {id}}, true)
	assert.Equal(t, http.StatusOK, got.Status)
	assert.Equal(t, data, got.Raw)
	assert.Equal(t, "image/png", got.Header.Get("Content-Type"))
	assert.Equal(t, `attachment; filename="pic.png"`, got.Header.Get("Content-Disposition"))

	// Range requests.
	req, _ := http.NewRequest(http.MethodGet, a.url("/cgi-bin/media/get", map[string][]string{"media_id": {id}}, true), nil)
	req.Header.Set("Range", "bytes=4-9")
	part := a.do(req)
	assert.Equal(t, http.StatusPartialContent, part.Status)
	assert.Equal(t, data[4:10], part.Raw)
	assert.Equal(t, "bytes 4-9/"+strconv.Itoa(len(data)), part.Header.Get("Content-Range"))

	// A non-ASCII filename is still given.
	fid := srv.PutMedia("file", "报告.pdf", []byte("%PDF-1.4 ..."))
	f := a.get("/cgi-bin/media/get", map[string][]string{"media_id": {fid}}, true)
	assert.Contains(t, f.Header.Get("Content-Disposition"), "attachment")
	assert.Contains(t, f.Header.Get("Content-Disposition"), "filename")

	// Errors are JSON with HTTP 200.
	for _, tc := range []struct {
		name string
		q    map[string][]string
		code int
	}{
		{"unknown", map[string][]string{"media_id": {"3nope"}}, kftest.CodeInvalidMediaID},
		{"missing", nil, kftest.CodeMissingMediaID},
	} {
		e := a.get("/cgi-bin/media/get", tc.q, true)
		assert.Equal(t, http.StatusOK, e.Status, tc.name)
		assert.Equal(t, tc.code, e.Code, tc.name)
		assert.Contains(t, e.Header.Get("Content-Type"), "application/json")
	}

	// media_id is valid 3 days.
	clk.Advance(72*time.Hour + time.Second)
	a.token = a.fetchToken()
	assert.Equal(t, kftest.CodeInvalidMediaID, a.get("/cgi-bin/media/get", map[string][]string{"media_id": {id}}, true).Code)
}

// A file over 20 MB must be fetched in Range chunks of at most 20 MB; otherwise WeCom answers
// 830002 (doc 96486).
func TestMediaGetOver20MB(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	data := make([]byte, 45<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	id := srv.PutMedia("file", "big.bin", data)
	get := func(rng string) reply {
		req, err := http.NewRequest(http.MethodGet, a.url("/cgi-bin/media/get", map[string][]string{"media_id": {id}}, true), nil)
		require.NoError(t, err)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		return a.do(req)
	}

	whole := get("")
	assert.Equal(t, http.StatusOK, whole.Status)
	assert.Equal(t, kftest.CodeMediaNeedsRange, whole.Code)
	assert.Contains(t, whole.Header.Get("Content-Type"), "application/json")

	for _, rng := range []string{"bytes=0-20971520", "bytes=0-", "bytes=1-10,20-30000000", "bytes=-20971521"} {
		assert.Equal(t, kftest.CodeMediaNeedsRange, get(rng).Code, rng)
	}

	var got []byte
	for off := 0; off < len(data); off += 20 << 20 {
		end := min(off+20<<20, len(data)) - 1
		part := get("bytes=" + strconv.Itoa(off) + "-" + strconv.Itoa(end))
		require.Equal(t, http.StatusPartialContent, part.Status)
		assert.Equal(t, "bytes "+strconv.Itoa(off)+"-"+strconv.Itoa(end)+"/"+strconv.Itoa(len(data)), part.Header.Get("Content-Range"))
		got = append(got, part.Raw...)
	}
	assert.True(t, bytes.Equal(data, got), "the chunks make up the file")
	assert.Equal(t, http.StatusPartialContent, get("bytes=-20971520").Status, "the last 20 MB")

	// 20 MB exactly still comes in one piece.
	small := srv.PutMedia("file", "20mb.bin", data[:20<<20])
	assert.Equal(t, http.StatusOK, a.get("/cgi-bin/media/get", map[string][]string{"media_id": {small}}, true).Status)
}
