package kf

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-resty/resty/v2"

	"github.com/wxkf/wxkf/media"
)

// UploadedMedia is the reply of media/upload (§9, doc 96484). The media_id is
// valid for 3 days.
type UploadedMedia struct {
	Type      media.Kind
	MediaID   string
	CreatedAt time.Time
}

type uploadReply struct {
	apiStatus
	Type      string   `json:"type"`
	MediaID   string   `json:"media_id"`
	CreatedAt flexUnix `json:"created_at"`
}

// flexUnix decodes unix seconds sent as a string (as media/upload does) or a number.
type flexUnix int64

func (f *flexUnix) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*f = 0
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("kf: created_at %s is not unix seconds", b)
	}
	*f = flexUnix(n)
	return nil
}

// uploadLimit is the largest upload of each kind (§9).
func uploadLimit(kind media.Kind) (int64, bool) {
	switch kind {
	case media.KindImage:
		return media.MaxImageBytes, true
	case media.KindVoice:
		return media.MaxVoiceBytes, true
	case media.KindVideo:
		return media.MaxVideoBytes, true
	case media.KindFile:
		return media.MaxFileBytes, true
	}
	return 0, false
}

// UploadMedia uploads temporary media (cgi-bin/media/upload, §9) and returns its media_id, valid
// for 3 days. It reads at most the kind's limit plus one byte from r and checks the data with
// media.Check before any I/O: every file > 5 bytes; image ≤ 10 MB JPG/PNG; voice ≤ 2 MB, ≤ 60 s
// AMR; video ≤ 10 MB MP4; file ≤ 20 MB. A broken limit is a *media.LimitError naming it.
// Retried on busy and network errors (a duplicate upload only costs a second media_id).
func (c *Client) UploadMedia(ctx context.Context, kind media.Kind, filename string, r io.Reader) (*UploadedMedia, error) {
	limit, ok := uploadLimit(kind)
	if !ok {
		return nil, invalidf("media/upload: unknown kind %q (image, voice, video, file)", kind)
	}
	if err := checkFilename(filename); err != nil {
		return nil, err
	}
	if r == nil {
		return nil, invalidf("media/upload: nil reader")
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("kf: media/upload: reading %q: %w", filename, err)
	}
	if err := media.Check(kind, data); err != nil {
		return nil, fmt.Errorf("kf: media/upload %q: %w", filename, err)
	}
	var out uploadReply
	err = c.call(ctx, &request{
		method:    methodPost,
		path:      pathMediaUpload,
		query:     []string{"type", string(kind)},
		multipart: &multipartFile{field: "media", filename: filename, contentType: uploadContentType(kind, filename, data), data: data},
		retry:     retryIdempotent,
	}, &out)
	if err != nil {
		return nil, err
	}
	if out.MediaID == "" {
		return nil, fmt.Errorf("%w: media/upload returned no media_id", ErrUnexpectedResponse)
	}
	typ := media.Kind(out.Type)
	if typ == "" {
		typ = kind
	}
	return &UploadedMedia{Type: typ, MediaID: out.MediaID, CreatedAt: unixTime(int64(out.CreatedAt))}, nil
}

// checkFilename requires the multipart filename doc 96484 asks for, as valid UTF-8 without control
// characters or path separators (which would break or misdirect the part header). No official page
// gives a length limit, so none is checked.
func checkFilename(name string) error {
	switch {
	case name == "":
		return invalidf("media/upload: filename is required")
	case !utf8.ValidString(name):
		return invalidf("media/upload: filename is not valid UTF-8")
	case strings.ContainsFunc(name, func(r rune) bool { return unicode.IsControl(r) || r == '/' || r == '\\' }):
		return invalidf("media/upload: filename %q has a control character or path separator", name)
	}
	return nil
}

// uploadContentType picks the part's Content-Type: AMR for voice, else by extension, else sniffed.
func uploadContentType(kind media.Kind, filename string, data []byte) string {
	if kind == media.KindVoice {
		return "audio/amr"
	}
	if t := mime.TypeByExtension(strings.ToLower(path.Ext(filename))); t != "" {
		return t
	}
	return http.DetectContentType(data)
}

// DownloadedMedia describes a media download.
type DownloadedMedia struct {
	// Filename is the name in Content-Disposition ("" when WeCom sent none).
	Filename    string
	ContentType string
	// Size is the number of bytes written.
	Size int64
}

// downloadReply is a classified media/get reply whose body is still to be streamed.
type downloadReply struct {
	r        io.Reader
	body     io.Closer
	length   int64
	filename string
	ctype    string
	// partial is set on a 206 answer to a Range request, with its Content-Range header.
	partial      bool
	contentRange string
}

// errPeekBytes is how much of a media/get reply is examined for a JSON error body.
const errPeekBytes = 64 << 10

// mediaChunkBytes is the Range chunk DownloadMedia asks for when WeCom answers 830002. Doc 96486
// allows chunks of at most "20M"; 16 MiB stays under that whether M means 10^6 or 2^20 bytes.
const mediaChunkBytes = 16 << 20

// DownloadMedia streams temporary media to w (GET cgi-bin/media/get, §9, doc 96486). WeCom reports
// failures with a JSON body and HTTP 200: such a body is returned as *APIError and nothing is written
// to w. A reply with a Content-Disposition attachment is always data, even if it is JSON.
//
// A file over 20 MB cannot be fetched in one piece: WeCom answers 830002 and wants Range requests
// of at most 20 MB each (doc 96486). DownloadMedia then fetches the file in chunks of 16 MiB, in
// order, each answered 206 Partial Content; Size counts the bytes of all chunks.
//
// Downloads over WithMaxDownloadBytes fail with ErrResponseTooLarge (what was written stays written).
// Each request (the whole file, or one chunk) is retried on busy and network errors before any of
// its bytes are written; a failure in the middle of a body is returned, with what was written kept.
func (c *Client) DownloadMedia(ctx context.Context, mediaID string, w io.Writer) (*DownloadedMedia, error) {
	if mediaID == "" {
		return nil, invalidf("media/get: media_id is required")
	}
	if w == nil {
		return nil, invalidf("media/get: nil writer")
	}
	d, err := c.getMedia(ctx, mediaID, "")
	if ErrorCode(err) == codeMediaNeedsRange {
		return c.downloadRanges(ctx, mediaID, w)
	}
	if err != nil {
		return nil, err
	}
	res := &DownloadedMedia{Filename: d.filename, ContentType: d.ctype}
	return res, c.copyMedia(d, w, res, 0)
}

// getMedia sends one media/get request, with a Range header when rng is not empty.
func (c *Client) getMedia(ctx context.Context, mediaID, rng string) (*downloadReply, error) {
	req := &request{method: methodGet, path: pathMediaGet, query: []string{"media_id", mediaID}, retry: retryIdempotent, stream: true}
	if rng != "" {
		req.header = []string{"Range", rng}
	}
	st, err := c.do(ctx, req, nil)
	if err != nil {
		return nil, err
	}
	return st.download, nil
}

// copyMedia copies the whole body of d (a full file, or a chunk whose length the caller checked) to
// w, adding to res.Size; written is what earlier chunks wrote. It closes d's body.
func (c *Client) copyMedia(d *downloadReply, w io.Writer, res *DownloadedMedia, written int64) error {
	defer d.body.Close()
	room := c.maxDownloadBytes - written
	if d.length > room {
		return fmt.Errorf("%w: media/get: Content-Length %d over the limit of %d bytes", ErrResponseTooLarge, written+d.length, c.maxDownloadBytes)
	}
	n, err := io.Copy(w, io.LimitReader(d.r, room+1))
	res.Size += min(n, room)
	if err != nil {
		return &RequestError{Method: methodGet, Path: pathMediaGet, Err: sanitizeError(err)}
	}
	if n > room {
		return fmt.Errorf("%w: media/get: more than %d bytes", ErrResponseTooLarge, c.maxDownloadBytes)
	}
	if d.length >= 0 && n != d.length {
		return &RequestError{Method: methodGet, Path: pathMediaGet, Err: fmt.Errorf("got %d of %d bytes: %w", n, d.length, io.ErrUnexpectedEOF)}
	}
	return nil
}

// downloadRanges fetches a file over 20 MB in Range chunks (doc 96486): bytes=0-…, then from the end
// of each 206 answer's Content-Range until its total size. A server that ignores Range and answers
// 200 to the first chunk has sent the whole file.
func (c *Client) downloadRanges(ctx context.Context, mediaID string, w io.Writer) (*DownloadedMedia, error) {
	res := &DownloadedMedia{}
	total := int64(-1)
	for off := int64(0); total < 0 || off < total; {
		last := off + mediaChunkBytes - 1
		if total >= 0 {
			last = min(last, total-1)
		}
		d, err := c.getMedia(ctx, mediaID, "bytes="+strconv.FormatInt(off, 10)+"-"+strconv.FormatInt(last, 10))
		if err != nil {
			if off == 0 {
				return nil, err
			}
			return res, err
		}
		if off == 0 {
			res.Filename, res.ContentType = d.filename, d.ctype
			if !d.partial {
				return res, c.copyMedia(d, w, res, 0)
			}
		}
		first, end, size, ok := parseContentRange(d.contentRange)
		switch {
		case !d.partial || !ok:
			d.body.Close()
			return res, fmt.Errorf("%w: media/get: Range %d-%d answered without a valid Content-Range (%q)", ErrUnexpectedResponse, off, last, d.contentRange)
		case first != off || end > last || (total >= 0 && size != total) || size < 0:
			d.body.Close()
			return res, fmt.Errorf("%w: media/get: Range %d-%d answered with Content-Range %q", ErrUnexpectedResponse, off, last, d.contentRange)
		case total < 0 && size > c.maxDownloadBytes:
			d.body.Close()
			return res, fmt.Errorf("%w: media/get: %d bytes over the limit of %d bytes", ErrResponseTooLarge, size, c.maxDownloadBytes)
		}
		total = size
		if d.length < 0 {
			d.length = end - first + 1
		} else if d.length != end-first+1 {
			d.body.Close()
			return res, fmt.Errorf("%w: media/get: Content-Range %q with Content-Length %d", ErrUnexpectedResponse, d.contentRange, d.length)
		}
		if err := c.copyMedia(d, w, res, off); err != nil {
			return res, err
		}
		off = end + 1
	}
	return res, nil
}

// parseContentRange parses a 206 answer's "bytes first-last/size" (RFC 9110 §14.4; size "*" is
// reported as -1). ok is false for anything else, including last < first.
func parseContentRange(v string) (first, last, size int64, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	span, sz, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, 0, false
	}
	a, b, found := strings.Cut(span, "-")
	if !found {
		return 0, 0, 0, false
	}
	num := func(s string) (int64, bool) {
		if s == "" || len(s) > 18 || strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
			return 0, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil
	}
	var okA, okB bool
	first, okA = num(a)
	last, okB = num(b)
	if !okA || !okB || last < first {
		return 0, 0, 0, false
	}
	if sz == "*" {
		return first, last, -1, true
	}
	size, ok = num(sz)
	if !ok || size <= last {
		return 0, 0, 0, false
	}
	return first, last, size, true
}

// classifyDownload examines a 200 media/get reply: a small JSON object with errcode and no
// Content-Disposition is WeCom's error reply; anything else is the media.
func (c *Client) classifyDownload(req *request, resp *resty.Response) (*downloadReply, error) {
	rb := resp.RawBody()
	if rb == nil {
		return nil, fmt.Errorf("%w: media/get: no body", ErrUnexpectedResponse)
	}
	h := resp.Header()
	br := bufio.NewReaderSize(rb, errPeekBytes)
	peek, perr := br.Peek(errPeekBytes)
	if perr != nil && perr != io.EOF && perr != bufio.ErrBufferFull {
		_ = rb.Close()
		return nil, &RequestError{Method: req.method, Path: req.path, Err: sanitizeError(perr)}
	}
	cd := h.Get("Content-Disposition")
	if cd == "" && perr == io.EOF {
		if t := bytes.TrimSpace(peek); len(t) > 0 && t[0] == '{' {
			var s struct {
				ErrCode *int   `json:"errcode"`
				ErrMsg  string `json:"errmsg"`
			}
			if json.Unmarshal(t, &s) == nil && s.ErrCode != nil {
				_ = rb.Close()
				if *s.ErrCode == 0 {
					return nil, fmt.Errorf("%w: media/get answered errcode 0 without media", ErrUnexpectedResponse)
				}
				return nil, &APIError{Code: *s.ErrCode, Msg: c.scrub(s.ErrMsg), Path: req.path}
			}
		}
	}
	return &downloadReply{
		r:            br,
		body:         rb,
		length:       resp.RawResponse.ContentLength,
		filename:     dispositionFilename(cd),
		ctype:        h.Get("Content-Type"),
		partial:      resp.StatusCode() == http.StatusPartialContent,
		contentRange: h.Get("Content-Range"),
	}, nil
}

// dispositionFilename extracts the filename of a Content-Disposition header (RFC 6266, including
// filename*), tolerating the raw UTF-8 names WeCom sends.
func dispositionFilename(cd string) string {
	if cd == "" {
		return ""
	}
	if _, params, err := mime.ParseMediaType(cd); err == nil {
		if f := params["filename"]; f != "" {
			return baseName(f)
		}
	}
	// Lenient fallback: filename="..." or filename=...
	i := strings.Index(strings.ToLower(cd), "filename=")
	if i < 0 {
		return ""
	}
	v := strings.TrimSpace(cd[i+len("filename="):])
	if strings.HasPrefix(v, `"`) {
		if j := strings.Index(v[1:], `"`); j >= 0 {
			v = v[1 : 1+j]
		} else {
			v = v[1:]
		}
	} else if j := strings.IndexByte(v, ';'); j >= 0 {
		v = v[:j]
	}
	v = strings.TrimSpace(v)
	if v == "" || !utf8.ValidString(v) {
		return ""
	}
	return baseName(v)
}

// baseName keeps the last path element of a name WeCom sent, so that a hostile name cannot point
// outside the directory a caller saves it in; "", "." and ".." become "".
func baseName(name string) string {
	b := path.Base(strings.ReplaceAll(name, "\\", "/"))
	if b == "." || b == ".." || b == "/" || strings.ContainsFunc(b, unicode.IsControl) {
		return ""
	}
	return b
}

func newBytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
