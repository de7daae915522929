package kftest

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wxkf/wxkf/crypto"
)

// callbackCrypto signs and encrypts callbacks with package crypto (WXBizMsgCrypt, §2).
type callbackCrypto struct {
	c      *crypto.Crypto
	corpID string
}

func newCallbackCrypto(token, aesKey, corpID string) (callbackCrypto, error) {
	c, err := crypto.New(token, aesKey, corpID)
	if err != nil {
		return callbackCrypto{}, err
	}
	return callbackCrypto{c: c, corpID: corpID}, nil
}

// replyEnvelope is what crypto.EncryptMessage returns.
type replyEnvelope struct {
	Encrypt      string `xml:"Encrypt"`
	MsgSignature string `xml:"MsgSignature"`
	TimeStamp    string `xml:"TimeStamp"`
	Nonce        string `xml:"Nonce"`
}

// encrypt returns the Encrypt text of plaintext and its msg_signature for timestamp and nonce.
func (cc callbackCrypto) encrypt(plaintext []byte, timestamp, nonce string) (encrypted, signature string, err error) {
	env, err := cc.c.EncryptMessage(plaintext, timestamp, nonce)
	if err != nil {
		return "", "", err
	}
	var e replyEnvelope
	if err := xml.Unmarshal(env, &e); err != nil {
		return "", "", fmt.Errorf("kftest: crypto envelope: %w", err)
	}
	// Sign independently of the envelope: the query signature is WeCom's, over Encrypt.
	return e.Encrypt, cc.c.Signature(timestamp, nonce, e.Encrypt), nil
}

func cdata(s string) string {
	return "<![CDATA[" + strings.ReplaceAll(s, "]]>", "]]]]><![CDATA[>") + "]]>"
}

// kfEventXML is the decrypted kf_msg_or_event callback (§1, doc 94670).
func kfEventXML(corpID string, createTime int64, token, openKfID string) []byte {
	return []byte("<xml><ToUserName>" + cdata(corpID) + "</ToUserName><CreateTime>" +
		strconv.FormatInt(createTime, 10) + "</CreateTime><MsgType>" + cdata("event") +
		"</MsgType><Event>" + cdata("kf_msg_or_event") + "</Event><Token>" + cdata(token) +
		"</Token><OpenKfId>" + cdata(openKfID) + "</OpenKfId></xml>")
}

// SignedCallback makes a kf_msg_or_event callback for openKfID as WeCom would POST it: a fresh sync
// token (valid 10 min, usable as sync_msg's token), encrypted for CorpID, signed with the callback
// Token. query holds msg_signature, timestamp and nonce; body is the <xml> envelope with ToUserName,
// Encrypt and AgentID. It panics for an unknown openKfID.
func (s *Server) SignedCallback(openKfID string) (query url.Values, body []byte) {
	s.mu.Lock()
	tok := s.issueSyncTokenLocked(s.mustAccountLocked(openKfID))
	s.mu.Unlock()
	now := s.now()
	q, b, err := s.SignedEvent(kfEventXML(s.cfg.corpID, now.Unix(), tok, openKfID))
	if err != nil {
		panic("kftest: SignedCallback: " + err.Error())
	}
	return q, b
}

// SignedEvent encrypts and signs any decrypted callback XML (e.g. a kf_account_auth_change event),
// returning the query and POST body WeCom would send.
func (s *Server) SignedEvent(inner []byte) (query url.Values, body []byte, err error) {
	ts := strconv.FormatInt(s.now().Unix(), 10)
	nonce := s.randString(16, alnum)
	enc, sig, err := s.cbCrypto.encrypt(inner, ts, nonce)
	if err != nil {
		return nil, nil, err
	}
	body = []byte("<xml><ToUserName>" + cdata(s.cfg.corpID) + "</ToUserName><Encrypt>" + cdata(enc) +
		"</Encrypt><AgentID>" + cdata("") + "</AgentID></xml>")
	return url.Values{"msg_signature": {sig}, "timestamp": {ts}, "nonce": {nonce}}, body, nil
}

// SignedEcho makes the GET verification query of a callback URL (msg_signature, timestamp, nonce,
// echostr) and the plaintext the handler must answer (§1).
func (s *Server) SignedEcho() (query url.Values, plaintext string) {
	plaintext = s.randString(19, digits)
	ts := strconv.FormatInt(s.now().Unix(), 10)
	nonce := s.randString(16, alnum)
	var enc, sig string
	// WeCom's echostr is standard base64 and often holds '+', which frameworks mangle into ' ' (§1):
	// prefer one that does, so VerifyURL exercises that path.
	for range 32 {
		e, sg, err := s.cbCrypto.encrypt([]byte(plaintext), ts, nonce)
		if err != nil {
			panic("kftest: SignedEcho: " + err.Error())
		}
		enc, sig = e, sg
		if strings.Contains(enc, "+") {
			break
		}
	}
	return url.Values{"msg_signature": {sig}, "timestamp": {ts}, "nonce": {nonce}, "echostr": {enc}}, plaintext
}

// Notify delivers one kf_msg_or_event callback for openKfID to callbackURL (a POST with the signed
// query and encrypted body), and returns an error unless the answer is HTTP 200 within the callback
// timeout (5 s, §1).
func (s *Server) Notify(ctx context.Context, callbackURL, openKfID string) error {
	if err := s.checkAccount(openKfID); err != nil {
		return err
	}
	q, body := s.SignedCallback(openKfID)
	return s.post(ctx, callbackURL, q, body, openKfID)
}

// NotifyXML delivers any decrypted callback XML (e.g. kf_account_auth_change), encrypted and signed.
func (s *Server) NotifyXML(ctx context.Context, callbackURL string, inner []byte) error {
	q, body, err := s.SignedEvent(inner)
	if err != nil {
		return err
	}
	return s.post(ctx, callbackURL, q, body, "")
}

// Storm delivers n identical copies of one kf_msg_or_event callback concurrently (same token,
// signature, nonce and body, as WeCom's retries and parallel pushes look). It returns the joined
// errors of the deliveries that did not get HTTP 200.
func (s *Server) Storm(ctx context.Context, callbackURL, openKfID string, n int) error {
	if err := s.checkAccount(openKfID); err != nil {
		return err
	}
	q, body := s.SignedCallback(openKfID)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = s.post(ctx, callbackURL, q, body, openKfID) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// VerifyURL performs the GET echostr handshake against callbackURL (§1): it fails unless the answer
// is HTTP 200 whose body is exactly the decrypted plaintext (no quotes, BOM or newline).
func (s *Server) VerifyURL(ctx context.Context, callbackURL string) error {
	q, plain := s.SignedEcho()
	start := time.Now()
	status, answer, err := s.do(ctx, http.MethodGet, callbackURL, q, nil)
	if err == nil {
		switch {
		case status != http.StatusOK:
			err = fmt.Errorf("kftest: VerifyURL: HTTP %d", status)
		case string(answer) != plain:
			err = fmt.Errorf("kftest: VerifyURL: answer %q is not the echostr plaintext %q", truncate(answer, 64), plain)
		}
	}
	s.recordCallback(http.MethodGet, callbackURL, q, map[string]any{"echostr_plaintext": plain}, status, answer, err, start)
	return err
}

func (s *Server) checkAccount(openKfID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.accounts[openKfID] == nil {
		return fmt.Errorf("kftest: unknown open_kfid %q", openKfID)
	}
	return nil
}

func (s *Server) post(ctx context.Context, callbackURL string, q url.Values, body []byte, openKfID string) error {
	start := time.Now()
	status, answer, err := s.do(ctx, http.MethodPost, callbackURL, q, body)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("kftest: callback to %s: HTTP %d", redactURL(callbackURL), status)
	}
	s.recordCallback(http.MethodPost, callbackURL, q,
		map[string]any{"event": "kf_msg_or_event", "open_kfid": openKfID, "token": "…"}, status, answer, err, start)
	return err
}

// do sends one request with the callback timeout and returns status and (capped) answer.
func (s *Server) do(ctx context.Context, method, rawURL string, q url.Values, body []byte) (int, []byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return 0, nil, fmt.Errorf("kftest: callback URL: %w", err)
	}
	qq := u.Query()
	for k, v := range q {
		qq[k] = v
	}
	u.RawQuery = qq.Encode()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.callbackTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return 0, nil, fmt.Errorf("kftest: callback request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "text/xml")
	}
	req.Header.Set("User-Agent", "Mozilla/4.0 (kftest; WeCom callback)")
	resp, err := s.cbClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) { // its text holds the full URL: strip secrets a test URL may carry
			ue.URL = redactURL(ue.URL)
		}
		return 0, nil, fmt.Errorf("kftest: callback to %s: %w", redactURL(rawURL), err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return resp.StatusCode, answer, fmt.Errorf("kftest: callback to %s: reading answer: %w", redactURL(rawURL), err)
	}
	return resp.StatusCode, answer, nil
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	u.RawQuery = redactQuery(u.Query())
	u.User = nil
	return u.String()
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

func (s *Server) recordCallback(method, rawURL string, q url.Values, req map[string]any, status int, answer []byte,
	err error, start time.Time) {
	if err != nil {
		s.log.Debug("kftest: callback failed", "url", redactURL(rawURL), "err", err)
	}
	if !s.observed() {
		return
	}
	path := rawURL
	if u, perr := url.Parse(rawURL); perr == nil {
		path = u.Path
	}
	reqJSON, _ := json.Marshal(req)
	respJSON, _ := json.Marshal(map[string]string{"body": truncate(answer, 256)})
	rec := Record{Kind: RecordCallback, Method: method, Path: path, Query: redactQuery(q), Request: reqJSON,
		Response: respJSON, Status: status, Duration: time.Since(start), At: s.now()}
	if err != nil {
		rec.Err = err.Error()
	}
	s.emit(rec)
}

// deliverAsync pushes one callback in the background like WeCom: up to callbackAttempts tries of the
// same signed request until one gets HTTP 200.
func (s *Server) deliverAsync(callbackURL, openKfID string) {
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	if s.bgClosed {
		return
	}
	q, body := s.SignedCallback(openKfID)
	s.bg.Go(func() {
		for attempt := range s.cfg.callbackAttempts {
			if attempt > 0 {
				t := time.NewTimer(time.Duration(attempt) * 200 * time.Millisecond)
				select {
				case <-t.C:
				case <-s.bgCtx.Done():
					t.Stop()
					return
				}
			}
			if s.post(s.bgCtx, callbackURL, q, body, openKfID) == nil {
				return
			}
		}
	})
}
