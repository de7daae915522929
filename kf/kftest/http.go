package kftest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

var errClosed = errors.New("kftest: server closed")

// call is one API request being handled.
type call struct {
	r     *http.Request
	w     http.ResponseWriter
	query url.Values
	body  []byte
	now   time.Time
}

// result is a handler's answer: a JSON value (with errcode 0 merged in) or an error, or a raw writer.
type result struct {
	v     any                         // JSON response fields (a struct embedding okBody or a map)
	raw   []byte                      // a ready JSON answer (sync_msg), used instead of v
	err   *apiError                   // non-nil: {errcode, errmsg}
	serve func(w http.ResponseWriter) // binary answers (media/get)
	// record overrides for the observer (binary answers, uploads)
	recReq, recResp json.RawMessage
}

type endpoint struct {
	method  string // http.MethodGet or http.MethodPost; "" = either
	noAuth  bool   // gettoken
	rawBody bool   // do not read / check the body as JSON (media upload)
	handle  func(c *call) result
}

// okBody is embedded in every success response.
type okBody struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// okay is the {errcode 0, errmsg "ok"} every success answer starts with.
func okay() okBody { return okBody{ErrCode: 0, ErrMsg: "ok"} }

func fail(code int, msg string) result { return result{err: errf(code, msg)} }
func failErr(e *apiError) result       { return result{err: e} }

func (s *Server) buildRoutes() map[string]*endpoint {
	get, post := http.MethodGet, http.MethodPost
	r := map[string]*endpoint{
		"/cgi-bin/gettoken":                               {method: get, noAuth: true, handle: s.handleGetToken},
		"/cgi-bin/kf/sync_msg":                            {method: post, handle: s.handleSyncMsg},
		"/cgi-bin/kf/send_msg":                            {method: post, handle: s.handleSendMsg},
		"/cgi-bin/kf/send_msg_on_event":                   {method: post, handle: s.handleSendMsgOnEvent},
		"/cgi-bin/kf/service_state/get":                   {method: post, handle: s.handleStateGet},
		"/cgi-bin/kf/service_state/trans":                 {method: post, handle: s.handleStateTrans},
		"/cgi-bin/media/upload":                           {method: post, rawBody: true, handle: s.handleUpload},
		"/cgi-bin/media/get":                              {method: get, handle: s.handleMediaGet},
		"/cgi-bin/kf/account/add":                         {method: post, handle: s.handleAccountAdd},
		"/cgi-bin/kf/account/del":                         {method: post, handle: s.handleAccountDel},
		"/cgi-bin/kf/account/update":                      {method: post, handle: s.handleAccountUpdate},
		"/cgi-bin/kf/account/list":                        {handle: s.handleAccountList},
		"/cgi-bin/kf/add_contact_way":                     {method: post, handle: s.handleAddContactWay},
		"/cgi-bin/kf/servicer/add":                        {method: post, handle: s.handleServicerAdd},
		"/cgi-bin/kf/servicer/del":                        {method: post, handle: s.handleServicerDel},
		"/cgi-bin/kf/servicer/list":                       {method: get, handle: s.handleServicerList},
		"/cgi-bin/kf/customer/batchget":                   {method: post, handle: s.handleCustomerBatchGet},
		"/cgi-bin/kf/get_corp_qualification":              {method: get, handle: s.handleCorpQualification},
		"/cgi-bin/kf/customer/get_upgrade_service_config": {method: get, handle: s.handleUpgradeConfig},
		"/cgi-bin/kf/customer/upgrade_service":            {method: post, handle: s.handleUpgradeService},
		"/cgi-bin/kf/customer/cancel_upgrade_service":     {method: post, handle: s.handleCancelUpgrade},
		"/cgi-bin/kf/get_corp_statistic":                  {method: post, handle: s.handleCorpStatistic},
		"/cgi-bin/kf/get_servicer_statistic":              {method: post, handle: s.handleServicerStatistic},
		"/cgi-bin/kf/knowledge/add_group":                 {method: post, handle: s.handleKnowledgeAddGroup},
		"/cgi-bin/kf/knowledge/del_group":                 {method: post, handle: s.handleKnowledgeDelGroup},
		"/cgi-bin/kf/knowledge/mod_group":                 {method: post, handle: s.handleKnowledgeModGroup},
		"/cgi-bin/kf/knowledge/list_group":                {method: post, handle: s.handleKnowledgeListGroup},
		"/cgi-bin/kf/knowledge/add_intent":                {method: post, handle: s.handleKnowledgeAddIntent},
		"/cgi-bin/kf/knowledge/del_intent":                {method: post, handle: s.handleKnowledgeDelIntent},
		"/cgi-bin/kf/knowledge/mod_intent":                {method: post, handle: s.handleKnowledgeModIntent},
		"/cgi-bin/kf/knowledge/list_intent":               {method: post, handle: s.handleKnowledgeListIntent},
	}
	return r
}

// ServeHTTP implements the fake API. Every answer is HTTP 200 with a JSON {errcode, errmsg, …} body,
// as WeCom does, except media/get's binary answers, 404 for unknown paths, and what an override set
// with Handle answers.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	path := r.URL.Path
	s.mu.Lock()
	s.calls[path]++
	f := s.faults
	ov := s.overrides[path]
	limited := s.rateLimitedLocked(path, s.now())
	s.mu.Unlock()

	ep := s.routes[path]
	if ep == nil && ov == nil {
		http.NotFound(w, r)
		s.finish(r, path, nil, result{err: errf(http.StatusNotFound, "not found")}, http.StatusNotFound, start)
		return
	}

	faulted := f.applies(path)
	if faulted {
		if d := f.Latency + s.randDuration(f.LatencyJitter); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			case <-s.closing:
				t.Stop()
				return
			}
		}
	}
	drop := faulted && s.chance(f.DropRate)
	if drop && !f.DropAfterProcessing {
		s.drop(w, r, path, start)
		return
	}
	if faulted && s.chance(f.BusyRate) {
		res := fail(CodeBusy, "system busy")
		s.writeResult(w, res)
		s.finish(r, path, nil, res, http.StatusOK, start)
		return
	}
	if limited {
		res := fail(CodeRateLimited, "api freq out of limit")
		s.writeResult(w, res)
		s.finish(r, path, nil, res, http.StatusOK, start)
		return
	}
	if ov != nil {
		s.serveOverride(ov, w, r, path, drop, start)
		return
	}

	c := &call{r: r, w: w, query: r.URL.Query()}
	res := s.prepare(ep, c)
	if res.err == nil && res.v == nil && res.raw == nil && res.serve == nil {
		c.now = s.now()
		res = ep.handle(c)
	}
	if drop {
		s.drop(w, r, path, start)
		return
	}
	s.writeResult(w, res)
	s.finish(r, path, c.body, res, http.StatusOK, start)
}

// prepare checks method, access_token and body; a non-empty result means the call failed.
func (s *Server) prepare(ep *endpoint, c *call) result {
	r := c.r
	if ep.method != "" && r.Method != ep.method {
		if ep.method == http.MethodGet {
			return fail(CodeRequireGET, "require GET method")
		}
		return fail(CodeRequirePOST, "require POST method")
	}
	if ep.method == "" && r.Method != http.MethodGet && r.Method != http.MethodPost {
		return fail(CodeRequirePOST, "require POST method")
	}
	if !ep.noAuth {
		if e := s.checkAccessToken(c.query.Get("access_token")); e != nil {
			return failErr(e)
		}
	}
	if ep.rawBody || r.Method != http.MethodPost {
		return result{}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestBytes+1))
	if err != nil {
		return fail(CodeDataFormat, "data format error: reading body")
	}
	c.body = body
	if len(body) > MaxRequestBytes {
		c.body = nil
		return fail(CodeContentTooLong, "request body too large")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return fail(CodeEmptyPost, "empty post data")
	}
	if e := checkJSONText(body); e != nil {
		return failErr(e)
	}
	return result{}
}

// checkJSONText rejects bodies that are not valid UTF-8 or that escape lone UTF-16 surrogates,
// which encoding/json would silently turn into U+FFFD.
func checkJSONText(body []byte) *apiError {
	if !utf8.Valid(body) {
		return errf(CodeDataFormat, "data format error: invalid UTF-8")
	}
	for i := 0; i < len(body); i++ {
		if body[i] != '\\' {
			continue
		}
		if i+1 >= len(body) {
			break
		}
		if body[i+1] != 'u' {
			i++ // skip the escaped character (which may be a backslash)
			continue
		}
		u, ok := hex4(body, i+2)
		if !ok {
			return errf(CodeDataFormat, "data format error: bad \\u escape")
		}
		switch {
		case u >= 0xD800 && u <= 0xDBFF:
			lo, ok2 := uint16(0), false
			if i+7 < len(body) && body[i+6] == '\\' && body[i+7] == 'u' {
				lo, ok2 = hex4(body, i+8)
			}
			if !ok2 || lo < 0xDC00 || lo > 0xDFFF {
				return errf(CodeDataFormat, "data format error: invalid UTF-8 (lone surrogate)")
			}
			i += 11
		case u >= 0xDC00 && u <= 0xDFFF:
			return errf(CodeDataFormat, "data format error: invalid UTF-8 (lone surrogate)")
		default:
			i += 5
		}
	}
	return nil
}

func hex4(b []byte, at int) (uint16, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	var v uint16
	for _, c := range b[at : at+4] {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		v = v<<4 | uint16(d)
	}
	return v, true
}

// decode unmarshals the request body into v; a failure is 47001.
func (c *call) decode(v any) *apiError {
	if err := json.Unmarshal(c.body, v); err != nil {
		return errf(CodeDataFormat, "data format error: "+jsonErrText(err))
	}
	return nil
}

func jsonErrText(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "field " + te.Field + " has the wrong type"
	}
	return "invalid JSON"
}

func (s *Server) writeResult(w http.ResponseWriter, res result) {
	if res.serve != nil && res.err == nil {
		res.serve(w)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(res.json())
}

func (res result) json() []byte {
	if res.err != nil {
		b, _ := json.Marshal(okBody{ErrCode: res.err.Code, ErrMsg: res.err.Msg})
		return b
	}
	if res.raw != nil {
		return res.raw
	}
	if res.v == nil {
		b, _ := json.Marshal(okay())
		return b
	}
	b, err := json.Marshal(res.v)
	if err != nil {
		b, _ = json.Marshal(okBody{ErrCode: CodeBusy, ErrMsg: "kftest: marshal: " + err.Error()})
	}
	return b
}

func (s *Server) drop(w http.ResponseWriter, r *http.Request, path string, start time.Time) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
		}
	} else {
		panic(http.ErrAbortHandler)
	}
	s.finish(r, path, nil, result{err: errf(0, "connection dropped")}, 0, start)
}

// finish records a rejection and notifies observers.
func (s *Server) finish(r *http.Request, path string, body []byte, res result, status int, start time.Time) {
	code := 0
	msg := ""
	if res.err != nil {
		code, msg = res.err.Code, res.err.Msg
	}
	dropped := status == 0
	if code != 0 || dropped {
		rj := Rejection{Path: path, Code: code, Msg: msg, Body: redactJSON(body)}
		if dropped {
			rj.Msg = "connection dropped"
		}
		s.mu.Lock()
		s.rejected = append(s.rejected, rj)
		s.mu.Unlock()
		s.log.Debug("kftest: call rejected", "path", path, "errcode", code, "errmsg", rj.Msg)
	}
	if !s.observed() {
		return
	}
	rec := Record{
		Kind:     RecordAPI,
		Method:   r.Method,
		Path:     path,
		Query:    redactQuery(r.URL.Query()),
		Status:   status,
		ErrCode:  code,
		Duration: time.Since(start),
		At:       s.now(),
	}
	if res.recReq != nil {
		rec.Request = res.recReq
	} else {
		rec.Request = redactJSON(body)
	}
	switch {
	case dropped:
		rec.Err = "connection dropped"
	case res.recResp != nil && res.err == nil:
		rec.Response = res.recResp
	default:
		rec.Response = redactJSON(res.json())
	}
	s.emit(rec)
}

// isSecretKey reports whether a query or JSON key holds a secret never shown in records.
func isSecretKey(k string) bool {
	switch strings.ToLower(k) {
	case "access_token", "corpsecret", "token":
		return true
	}
	return false
}

// redactQuery renders the query with secret values replaced by "…" (sorted by key, as url.Values.Encode).
func redactQuery(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	out := url.Values{}
	for k, vs := range q {
		if isSecretKey(k) {
			out[k] = []string{"…"}
			continue
		}
		out[k] = vs
	}
	return out.Encode()
}

// redactJSON returns a JSON object body with top-level secret fields replaced by "…"; bodies that are
// not a JSON object are returned as a JSON string summary (never the raw bytes).
func redactJSON(body []byte) json.RawMessage {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		b, _ := json.Marshal(map[string]any{"unparsed_bytes": len(body)})
		return b
	}
	for k := range m {
		if isSecretKey(k) {
			m[k] = json.RawMessage(`"…"`)
		}
	}
	b, _ := json.Marshal(m)
	return b
}
