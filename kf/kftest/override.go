package kftest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Handle makes the Server answer every request for path (e.g. "/cgi-bin/gettoken") with h instead of
// its own model of that endpoint, like slack-go's slacktest Handle; Handle(path, nil) removes the
// override and the modelled endpoint answers again. Any path may be overridden, including one the fake
// does not model.
//
// The override sees the request exactly as the client sent it: the fake checks no access_token and no
// body for it, and the request changes no state of the fake. Faults set with SetFaults still apply in
// front of it. The call is still counted by Calls, reported to Observe (request body, answer body,
// status and errcode) and, when the answer's errcode is not 0, listed by Rejected.
func (s *Server) Handle(path string, h http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h == nil {
		delete(s.overrides, path)
		return
	}
	if s.overrides == nil {
		s.overrides = map[string]http.Handler{}
	}
	s.overrides[path] = h
}

// FailWith makes every request for path answer HTTP 200 with {"errcode": code, "errmsg": errmsg}, as
// WeCom answers a failed call (doc 90313, the global error code page): for example
// FailWith("/cgi-bin/gettoken", 60020, "not allow to access from your ip, from ip: 203.0.113.7") or
// FailWith("/cgi-bin/kf/sync_msg", 95017, "api forbidden"). It is Handle with a fixed answer; remove it
// with Handle(path, nil).
func (s *Server) FailWith(path string, code int, errmsg string) {
	body, _ := json.Marshal(okBody{ErrCode: code, ErrMsg: errmsg})
	s.Handle(path, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	}))
}

// maxRecorded caps how much of an overridden call's request and answer is kept for the record.
const maxRecorded = 64 << 10

// serveOverride runs an override and records the call like a modelled one. With drop set, the
// override runs against a discarding writer and the connection is then closed without an answer.
func (s *Server) serveOverride(h http.Handler, w http.ResponseWriter, r *http.Request, path string, drop bool, start time.Time) {
	reqTee := &capBuffer{}
	if r.Body != nil {
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.TeeReader(r.Body, reqTee), r.Body}
	}
	cw := &captureWriter{header: http.Header{}, status: http.StatusOK}
	if !drop {
		cw.w = w
		cw.header = w.Header()
	}
	h.ServeHTTP(cw, r)
	if r.Body != nil { // what the override did not read still belongs in the record
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxRecorded))
	}
	if drop {
		s.drop(w, r, path, start)
		return
	}
	// A JSON answer is recorded as it is (an errcode ≠ 0 also as a Rejection); anything else (binary,
	// truncated) as a summary {content_type, size}.
	var res result
	var ans struct {
		ErrCode int    `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}
	switch {
	case !cw.body.truncated && json.Unmarshal(cw.body.Bytes(), &ans) == nil && ans.ErrCode != 0:
		res.err = errf(ans.ErrCode, ans.ErrMsg)
	case !cw.body.truncated && json.Valid(cw.body.Bytes()):
		res.recResp = redactJSON(cw.body.Bytes())
	default:
		res.recResp, _ = json.Marshal(map[string]any{"content_type": cw.header.Get("Content-Type"), "size": cw.size})
	}
	s.finish(r, path, reqTee.Bytes(), res, cw.status, start)
}

// capBuffer keeps the first maxRecorded bytes written to it.
type capBuffer struct {
	bytes.Buffer
	truncated bool
}

func (b *capBuffer) Write(p []byte) (int, error) {
	if room := maxRecorded - b.Len(); room < len(p) {
		b.truncated = true
		if room > 0 {
			b.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

// captureWriter passes an override's answer through to w (nil: discards it) and keeps its status and
// the first maxRecorded bytes.
type captureWriter struct {
	w           http.ResponseWriter
	header      http.Header
	status      int
	wroteHeader bool
	body        capBuffer
	size        int64
}

func (c *captureWriter) Header() http.Header { return c.header }

func (c *captureWriter) WriteHeader(code int) {
	if c.wroteHeader {
		return
	}
	c.wroteHeader = true
	c.status = code
	if c.w != nil {
		c.w.WriteHeader(code)
	}
}

func (c *captureWriter) Write(p []byte) (int, error) {
	if !c.wroteHeader {
		c.WriteHeader(http.StatusOK)
	}
	_, _ = c.body.Write(p)
	c.size += int64(len(p))
	if c.w == nil {
		return len(p), nil
	}
	return c.w.Write(p)
}

// Flush lets a streaming override flush through.
func (c *captureWriter) Flush() {
	if f, ok := c.w.(http.Flusher); ok {
		f.Flush()
	}
}
