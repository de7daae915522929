package kftest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image/jpeg"
	"image/png"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Upload limits (§9, doc 96484).
const (
	MinMediaBytes    = 6                // every file must be larger than 5 bytes (else 40006)
	MaxImageBytes    = 10 << 20         // image, JPG or PNG (else 40009 / 40005)
	MaxVoiceBytes    = 2 << 20          // voice, AMR-NB (else 40010 / 40005)
	MaxVoiceDuration = 60 * time.Second // voice playing time by AMR frame count (else 45007)
	MaxVideoBytes    = 10 << 20         // video, MP4 (else 40011 / 40005)
	MaxFileBytes     = 20 << 20         // any file (else 40006)
)

// MaxMediaGetBytes is the largest media/get answer: a file over 20 MB must be fetched with Range
// requests of at most 20 MB each, else WeCom answers 830002 (doc 96486). Uploads cannot exceed it,
// but media added with PutMedia or AddFile (what a customer sent) may.
const MaxMediaGetBytes = 20 << 20

type uploadResp struct {
	okBody
	Type      string `json:"type"`
	MediaID   string `json:"media_id"`
	CreatedAt string `json:"created_at"` // a string in WeCom's answer (§9)
}

// handleUpload is POST /cgi-bin/media/upload?type=image|voice|video|file (§9): multipart field
// "media" with a filename; > 5 bytes; image ≤ 10 MB decoding as JPG or PNG; voice ≤ 2 MB, AMR-NB,
// ≤ 60 s by frame count; video ≤ 10 MB MP4 (ftyp box); file ≤ 20 MB. Errors: 40004 bad type,
// 41005 no media part, 40005 no filename or bytes not of the kind, 40006 ≤ 5 bytes or file too big,
// 40009/40010/40011 image/voice/video too big, 45007 voice too long (codes are approximations).
func (s *Server) handleUpload(c *call) result {
	kind := c.query.Get("type")
	limit, sizeCode := 0, 0
	switch kind {
	case "image":
		limit, sizeCode = MaxImageBytes, CodeInvalidImageSize
	case "voice":
		limit, sizeCode = MaxVoiceBytes, CodeInvalidVoiceSize
	case "video":
		limit, sizeCode = MaxVideoBytes, CodeInvalidVideoSize
	case "file":
		limit, sizeCode = MaxFileBytes, CodeInvalidFileSize
	default:
		return fail(CodeInvalidMediaType, fmt.Sprintf("invalid media type %q", kind))
	}
	mr, err := c.r.MultipartReader()
	if err != nil {
		return fail(CodeMissingMedia, "media data missing: not multipart/form-data")
	}
	var (
		data             []byte
		filename, partCT string
		found            bool
	)
	for parts := 0; parts < 16; parts++ {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(CodeMissingMedia, "media data missing: bad multipart body")
		}
		if p.FormName() != "media" || found {
			_, _ = io.Copy(io.Discard, io.LimitReader(p, 1<<20))
			continue
		}
		found = true
		filename, partCT = p.FileName(), p.Header.Get("Content-Type")
		data, err = io.ReadAll(io.LimitReader(p, int64(limit)+1))
		if err != nil {
			return fail(CodeMissingMedia, "media data missing: truncated multipart body")
		}
		if len(data) > limit {
			return fail(sizeCode, fmt.Sprintf("invalid %s size: larger than %d bytes", kind, limit))
		}
	}
	rec := func() json.RawMessage {
		b, _ := json.Marshal(map[string]any{"type": kind, "filename": filename, "content_type": partCT, "size": len(data)})
		return b
	}
	if !found {
		return result{err: errf(CodeMissingMedia, `media data missing: no multipart field "media"`), recReq: rec()}
	}
	if filename == "" {
		return result{err: errf(CodeInvalidFileType, "invalid file type: filename missing"), recReq: rec()}
	}
	if len(data) < MinMediaBytes {
		return result{err: errf(CodeInvalidFileSize, "invalid file size: must be larger than 5 bytes"), recReq: rec()}
	}
	if e := checkMediaBytes(kind, data); e != nil {
		return result{err: e, recReq: rec()}
	}
	s.mu.Lock()
	ct := ""
	if kind == "file" && partCT != "" {
		ct = partCT
	}
	id := s.putMediaLocked(kind, filename, ct, data)
	s.mu.Unlock()
	return result{v: uploadResp{okBody: okay(), Type: kind, MediaID: id, CreatedAt: strconv.FormatInt(c.now.Unix(), 10)},
		recReq: rec()}
}

// checkMediaBytes checks that data is what kind claims (§9).
func checkMediaBytes(kind string, data []byte) *apiError {
	switch kind {
	case "image":
		if _, err := imageFormat(data); err != nil {
			return errf(CodeInvalidFileType, "invalid file type: image must be JPG or PNG: "+err.Error())
		}
	case "voice":
		d, err := amrDuration(data)
		if err != nil {
			return errf(CodeInvalidFileType, "invalid file type: voice must be AMR-NB: "+err.Error())
		}
		if d > MaxVoiceDuration {
			return errf(CodeVoiceTooLong, fmt.Sprintf("voice playtime out of limit: %v > 60s", d))
		}
	case "video":
		if !isMP4(data) {
			return errf(CodeInvalidFileType, "invalid file type: video must be MP4")
		}
	}
	return nil
}

// imageFormat decodes the header of a JPG or PNG ("jpeg" / "png") with the standard decoders.
func imageFormat(data []byte) (string, error) {
	r := bytes.NewReader(data)
	switch {
	case bytes.HasPrefix(data, []byte("\xff\xd8\xff")):
		cfg, err := jpeg.DecodeConfig(r)
		if err != nil {
			return "", err
		}
		if cfg.Width <= 0 || cfg.Height <= 0 {
			return "", errors.New("empty image")
		}
		return "jpeg", nil
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		cfg, err := png.DecodeConfig(r)
		if err != nil {
			return "", err
		}
		if cfg.Width <= 0 || cfg.Height <= 0 {
			return "", errors.New("empty image")
		}
		return "png", nil
	}
	return "", errors.New("neither JPEG nor PNG")
}

// isMP4 reports whether data starts with an ISO BMFF ftyp box (MP4).
func isMP4(data []byte) bool {
	if len(data) < 16 || string(data[4:8]) != "ftyp" {
		return false
	}
	size := binary.BigEndian.Uint32(data[:4])
	return size >= 16 && uint64(size) <= uint64(len(data))
}

// amrFrameSizes holds the size in bytes, header octet included, of an AMR-NB storage-format frame of
// each frame type FT (RFC 4867 §5.3; payload bits from 3GPP TS 26.101: 95, 103, 118, 134, 148, 159,
// 204, 244 for modes 0–7, 39 for SID, 43/38/37 for the GSM-EFR/TDMA-EFR/PDC-EFR SIDs, 0 for
// NO_DATA). The reserved types 12–14 have no size (0 in the table).
const amrFrameSizes = "\x0d\x0e\x10\x12\x14\x15\x1b\x20\x06\x07\x06\x06\x00\x00\x00\x01"

const amrMagic = "#!AMR\n"

// amrDuration walks an AMR-NB file (RFC 4867 §5: "#!AMR\n" then frames) and returns its playing
// time, 20 ms per frame. It fails on another magic (AMR-WB, multichannel), a reserved frame type, a
// frame cut short, or a file with no frames.
func amrDuration(data []byte) (time.Duration, error) {
	if !bytes.HasPrefix(data, []byte(amrMagic)) {
		return 0, errors.New(`no "#!AMR\n" header`)
	}
	frames := 0
	for i := len(amrMagic); i < len(data); {
		ft := (data[i] >> 3) & 0x0f
		n := int(amrFrameSizes[ft])
		if n == 0 {
			return 0, fmt.Errorf("reserved frame type %d at byte %d", ft, i)
		}
		if i+n > len(data) {
			return 0, fmt.Errorf("frame at byte %d cut short", i)
		}
		i += n
		frames++
	}
	if frames == 0 {
		return 0, errors.New("no frames")
	}
	return time.Duration(frames) * 20 * time.Millisecond, nil
}

func mediaContentType(kind string, data []byte) string {
	switch kind {
	case "image":
		if f, err := imageFormat(data); err == nil {
			return "image/" + f
		}
	case "voice":
		return "audio/amr"
	case "video":
		return "video/mp4"
	}
	ct := http.DetectContentType(data)
	if ct == "text/plain; charset=utf-8" && kind == "file" {
		return "application/octet-stream"
	}
	return ct
}

// handleMediaGet is GET /cgi-bin/media/get?media_id (§9, doc 96486): the bytes with Content-Type and
// Content-Disposition: attachment; filename="…", Range requests supported (206); an unknown or
// expired (3 days) media_id is a JSON error body with HTTP 200 (40007), missing media_id 41006. A
// file over MaxMediaGetBytes without a Range header, or a Range asking for more than that, is
// answered 830002 as WeCom does.
func (s *Server) handleMediaGet(c *call) result {
	id := c.query.Get("media_id")
	if id == "" {
		return fail(CodeMissingMediaID, "media_id missing")
	}
	s.mu.Lock()
	m := s.media[id]
	s.mu.Unlock()
	if m == nil {
		return fail(CodeInvalidMediaID, "invalid media_id")
	}
	if c.now.Sub(m.created) > MediaTTL {
		return fail(CodeInvalidMediaID, "invalid media_id: expired")
	}
	switch rng := c.r.Header.Get("Range"); {
	case rng == "" && len(m.data) > MaxMediaGetBytes:
		return fail(CodeMediaNeedsRange, fmt.Sprintf("media size %d over 20M, download it with Range in chunks of at most 20M", len(m.data)))
	case rng != "" && rangeBytes(rng, int64(len(m.data))) > MaxMediaGetBytes:
		return fail(CodeMediaNeedsRange, "range chunk over 20M, use Range chunks of at most 20M")
	}
	summary, _ := json.Marshal(map[string]any{"content_type": m.contentType, "filename": m.filename, "size": len(m.data)})
	return result{
		serve: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", m.contentType)
			w.Header().Set("Content-Disposition", contentDisposition(m.filename))
			http.ServeContent(w, c.r, "", m.created, bytes.NewReader(m.data))
		},
		recResp: summary,
	}
}

// rangeBytes is how many bytes a Range header value asks of a size-byte file ("bytes=a-b", "a-",
// "-n", comma-separated), counting what each range covers within the file; an unparsable value
// counts 0 and is left to http.ServeContent to answer.
func rangeBytes(v string, size int64) int64 {
	spec, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes=")
	if !ok {
		return 0
	}
	var total int64
	for _, r := range strings.Split(spec, ",") {
		a, b, ok := strings.Cut(strings.TrimSpace(r), "-")
		if !ok {
			return 0
		}
		from, errA := strconv.ParseInt(a, 10, 64)
		to, errB := strconv.ParseInt(b, 10, 64)
		switch {
		case a == "" && errB == nil && to >= 0: // the last n bytes
			total += min(to, size)
		case errA == nil && from >= 0 && b == "": // from a to the end
			total += max(0, size-from)
		case errA == nil && errB == nil && from >= 0 && to >= from:
			total += max(0, min(to, size-1)-from+1)
		default:
			return 0
		}
	}
	return total
}

func contentDisposition(filename string) string {
	ascii := true
	for i := 0; i < len(filename); i++ {
		if filename[i] < 0x20 || filename[i] >= 0x7f || filename[i] == '"' || filename[i] == '\\' {
			ascii = false
			break
		}
	}
	if ascii {
		return `attachment; filename="` + filename + `"`
	}
	if v := mime.FormatMediaType("attachment", map[string]string{"filename": filename}); v != "" {
		return v
	}
	return "attachment"
}
