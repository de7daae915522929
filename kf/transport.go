package kf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-resty/resty/v2"
)

const (
	methodGet  = http.MethodGet
	methodPost = http.MethodPost

	paramAccessToken = "access_token"
)

// retryClass says which failures a call may be retried on.
type retryClass uint8

const (
	// retryIdempotent: -1, 45033, HTTP 5xx and network errors are retried (bounded by WithRetry).
	retryIdempotent retryClass = iota
	// retryUnsafe: the call has an effect WeCom cannot deduplicate (a send without client msgid):
	// only failures that prove the request had no effect are retried — a connection never made and
	// a rejected token.
	retryUnsafe
)

// request describes one API call.
type request struct {
	method  string
	path    string
	query   []string // extra query parameters as name, value pairs
	body    any      // JSON-encoded once; nil for none
	retry   retryClass
	noToken bool // gettoken itself

	// For media upload: a multipart body instead of JSON.
	multipart *multipartFile
	// For media download: the reply is streamed, not read into memory; a 206 answer to a Range
	// request counts as success.
	stream bool
	// header holds extra request headers as name, value pairs (media/get's Range).
	header []string
}

type multipartFile struct {
	field, filename, contentType string
	data                         []byte
}

// statusCarrier is implemented by reply types that hold errcode/errmsg themselves, so the reply is
// decoded once.
type statusCarrier interface {
	status() (code int, msg string)
}

// apiStatus is the errcode/errmsg pair every WeCom reply carries.
type apiStatus struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

func (s *apiStatus) status() (int, string) { return s.ErrCode, s.ErrMsg }

// newResty builds the resty client: its retry loop (Backoff: attempts, jittered exponential wait
// that ends with the context) runs every call; conditions set per call decide what is retried; a
// before-request hook puts the current access token on every attempt.
func (c *Client) newResty(cfg clientConfig) *resty.Client {
	rc := resty.NewWithClient(cfg.httpClient).
		SetBaseURL(cfg.baseURL).
		SetTimeout(cfg.timeout).
		SetLogger(discardLogger{}).
		SetResponseBodyLimit(MaxResponseBytes).
		// One extra attempt is reserved for the token refresh; callState enforces both budgets.
		SetRetryCount(cfg.maxAttempts).
		SetRetryWaitTime(cfg.wait).
		SetRetryMaxWaitTime(cfg.maxWait).
		SetRetryResetReaders(true).
		SetHeader("User-Agent", "wxkf (+https://github.com/wxkf/wxkf)")
	rc.OnBeforeRequest(c.waitRate) // first: the token is put on after the wait
	rc.OnBeforeRequest(c.injectToken)
	return rc
}

// injectToken sets access_token on calls that carry the (empty) placeholder parameter. It runs on
// every attempt, so a retry after a token refresh uses the new token.
func (c *Client) injectToken(_ *resty.Client, r *resty.Request) error {
	if _, ok := r.QueryParam[paramAccessToken]; !ok {
		return nil
	}
	tok, err := c.AccessToken(r.Context())
	if err != nil {
		return err
	}
	r.QueryParam.Set(paramAccessToken, tok)
	return nil
}

// attemptsKey carries an *atomic.Int32 in which a call records how many HTTP attempts it made.
type attemptsKey struct{}

// callState is the per-call retry policy: resty's Backoff loop asks retryCondition after every
// attempt. It also keeps the classification of the last reply so it is decoded once.
type callState struct {
	c       *Client
	req     *request
	ctx     context.Context
	out     any
	attempt int

	busyRetries  int
	tokenRetried bool

	lastResp *resty.Response
	lastErr  error
	// stream replies: the download handed over after classification.
	download *downloadReply
}

// call performs req and decodes the reply into out (which may be nil). It returns *APIError for
// errcode ≠ 0, *HTTPError for a status ≠ 200, *RequestError for transport failures and the
// token source's error when no token could be had.
func (c *Client) call(ctx context.Context, req *request, out any) error {
	_, err := c.do(ctx, req, out)
	return err
}

// exchange performs req: the HTTP attempts and the classification of the reply. do wraps it
// with the call's span and metrics.
func (c *Client) exchange(ctx context.Context, req *request, out any) (*callState, error) {
	if ctx == nil {
		return nil, invalidf("nil context")
	}
	if err := ctx.Err(); err != nil {
		return nil, &RequestError{Method: req.method, Path: req.path, Err: err}
	}
	st := &callState{c: c, req: req, ctx: ctx, out: out}
	r := c.rc.R().SetContext(ctx).AddRetryCondition(st.retryCondition)
	if !req.noToken {
		r.SetQueryParam(paramAccessToken, "")
	}
	for i := 0; i+1 < len(req.query); i += 2 {
		r.SetQueryParam(req.query[i], req.query[i+1])
	}
	for i := 0; i+1 < len(req.header); i += 2 {
		r.SetHeader(req.header[i], req.header[i+1])
	}
	switch {
	case req.multipart != nil:
		m := req.multipart
		r.SetMultipartField(m.field, m.filename, m.contentType, newBytesReader(m.data))
	case req.body != nil:
		b, err := json.Marshal(req.body)
		if err != nil {
			return nil, fmt.Errorf("kf: %s: encoding request: %w", req.path, err)
		}
		r.SetHeader("Content-Type", "application/json").SetBody(b)
	}
	if req.stream {
		r.SetDoNotParseResponse(true)
	}

	start := time.Now()
	resp, err := r.Execute(req.method, req.path)
	if err != nil {
		err = st.transportError(err)
		if resp != nil && req.stream {
			closeBody(resp)
		}
	} else {
		err = st.outcome(resp)
		if err != nil && req.stream {
			closeBody(resp)
		}
	}
	c.noteRateLimited(ctx, req.path, err)
	c.logCall(ctx, st, start, err)
	return st, err
}

// transportError turns a failure without a usable reply into the error returned to the caller.
func (st *callState) transportError(err error) error {
	var tfe *tokenFetchError
	if errors.As(err, &tfe) {
		return tfe
	}
	if errors.Is(err, resty.ErrResponseBodyTooLarge) {
		err = fmt.Errorf("%w (limit %d bytes)", ErrResponseTooLarge, MaxResponseBytes)
	}
	return &RequestError{Method: st.req.method, Path: st.req.path, Err: sanitizeError(err)}
}

// outcome classifies the final reply, reusing what retryCondition already decoded.
func (st *callState) outcome(resp *resty.Response) error {
	if st.lastResp == resp {
		return st.lastErr
	}
	return st.classify(resp)
}

// classify decodes a reply: a status ≠ 200 is an *HTTPError, errcode ≠ 0 an *APIError, otherwise
// the reply is decoded into out (at most once per attempt).
func (st *callState) classify(resp *resty.Response) error {
	st.lastResp = resp
	st.lastErr = st.classifyOnce(resp)
	return st.lastErr
}

func (st *callState) classifyOnce(resp *resty.Response) error {
	if resp.StatusCode() != http.StatusOK && (!st.req.stream || resp.StatusCode() != http.StatusPartialContent) {
		return st.httpError(resp)
	}
	if st.req.stream {
		d, err := st.c.classifyDownload(st.req, resp)
		st.download = d
		return err
	}
	body := resp.Body()
	var code int
	var msg string
	if rd, ok := st.out.(replyDecoder); ok {
		if err := rd.decodeReply(body); err != nil {
			return st.decodeError(err)
		}
		code, msg = rd.status()
	} else if sc, ok := st.out.(statusCarrier); ok {
		if err := json.Unmarshal(body, st.out); err != nil {
			return st.decodeError(err)
		}
		code, msg = sc.status()
	} else {
		var s apiStatus
		if err := json.Unmarshal(body, &s); err != nil {
			return st.decodeError(err)
		}
		code, msg = s.ErrCode, s.ErrMsg
		if code == 0 && st.out != nil {
			if err := json.Unmarshal(body, st.out); err != nil {
				return st.decodeError(err)
			}
		}
	}
	if code != 0 {
		return &APIError{Code: code, Msg: st.c.scrub(msg), Path: st.req.path}
	}
	return nil
}

func (st *callState) decodeError(err error) error {
	return fmt.Errorf("%w: %s: decoding reply: %v", ErrUnexpectedResponse, st.req.path, err)
}

func (st *callState) httpError(resp *resty.Response) error {
	e := &HTTPError{Method: st.req.method, Path: st.req.path, StatusCode: resp.StatusCode()}
	var snippet []byte
	if st.req.stream {
		if rb := resp.RawBody(); rb != nil {
			snippet, _ = io.ReadAll(io.LimitReader(rb, 256))
		}
	} else {
		snippet = resp.Body()
	}
	if len(snippet) > 256 {
		snippet = snippet[:256]
	}
	e.Body = st.c.scrub(string(snippet))
	return e
}

// retryCondition is the resty retry condition of one call. resty calls it after every attempt with
// either a reply or the error of the attempt.
func (st *callState) retryCondition(resp *resty.Response, err error) bool {
	st.attempt++
	if n, ok := st.ctx.Value(attemptsKey{}).(*atomic.Int32); ok {
		n.Store(int32(st.attempt))
	}
	if resp == nil {
		// No attempt was made (the token source or building the request failed): nothing to retry,
		// and resty could not reset a nil response's readers anyway.
		return false
	}
	if err != nil {
		return st.retryError(err)
	}
	cerr := st.classify(resp)
	retry, reason := st.retryReply(resp, cerr)
	if retry {
		if st.req.stream {
			closeBody(resp)
		}
		st.c.log.LogAttrs(st.ctx, slog.LevelWarn, "kf: retrying", messageAttrs(st.ctx,
			slog.String("path", st.req.path), slog.Int("attempt", st.attempt), slog.Int("errcode", ErrorCode(cerr)),
			slog.String("reason", reason))...)
	}
	return retry
}

func (st *callState) retryError(err error) bool {
	// Only failures of the HTTP exchange itself (always a *url.Error) are retried: not the token
	// source's (gettoken had its own retries), not the caller's cancelled context, not an oversized
	// reply, not a request that could not be built.
	var ue *url.Error
	var tfe *tokenFetchError
	if errors.As(err, &tfe) || !errors.As(err, &ue) || st.ctx.Err() != nil || errors.Is(err, resty.ErrResponseBodyTooLarge) {
		return false
	}
	ok := st.req.retry == retryIdempotent || isDialError(err)
	if !ok || !st.spendBusyRetry() {
		return false
	}
	st.c.log.LogAttrs(st.ctx, slog.LevelWarn, "kf: retrying", messageAttrs(st.ctx,
		slog.String("path", st.req.path), slog.Int("attempt", st.attempt),
		slog.String("reason", redact(sanitizeError(err).Error())))...)
	return true
}

func (st *callState) retryReply(resp *resty.Response, err error) (bool, string) {
	var ae *APIError
	var he *HTTPError
	switch {
	case err == nil:
		return false, ""
	case errors.As(err, &ae):
		switch ae.Code {
		case codeInvalidToken, codeTokenExpired, codeTokenMissing:
			if st.req.noToken || st.tokenRetried {
				return false, ""
			}
			st.tokenRetried = true
			st.c.tokens.invalidate(resp.Request.QueryParam.Get(paramAccessToken))
			return true, fmt.Sprintf("errcode %d: token refreshed", ae.Code)
		case codeSystemBusy, codeConcurrencyLimit:
			if st.req.retry == retryIdempotent && st.spendBusyRetry() {
				return true, fmt.Sprintf("errcode %d", ae.Code)
			}
		}
	case errors.As(err, &he):
		if he.StatusCode >= 500 && st.req.retry == retryIdempotent && st.spendBusyRetry() {
			return true, fmt.Sprintf("HTTP %d", he.StatusCode)
		}
	}
	return false, ""
}

// spendBusyRetry uses one retry of the WithRetry budget, reporting false when none is left.
func (st *callState) spendBusyRetry() bool {
	if st.busyRetries+1 >= st.c.maxAttempts {
		return false
	}
	st.busyRetries++
	return true
}

// isDialError reports a connection that was never made (refused, unreachable, DNS): the request
// cannot have had an effect, so even a send may be retried.
func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

func (c *Client) logCall(ctx context.Context, st *callState, start time.Time, err error) {
	if !c.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := messageAttrs(ctx,
		slog.String("path", st.req.path),
		slog.Int("attempt", max(st.attempt, 1)),
		slog.Duration("duration", time.Since(start)),
	)
	if err != nil {
		if code := ErrorCode(err); code != 0 {
			attrs = append(attrs, slog.Int("errcode", code))
		}
		attrs = append(attrs, slog.String("err", c.scrub(err.Error())))
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "kf: call", attrs...)
}

// logMessageKey carries, in the context of a handler run, the message the Channel is handling:
// the client's log lines for calls made with that context (a send retried, a call logged at Debug)
// name it by open_kfid and msgid, like the Channel's own lines.
type logMessageKey struct{}

// withLogMessage returns ctx naming m in the client's log lines.
func withLogMessage(ctx context.Context, m *Message) context.Context {
	return context.WithValue(ctx, logMessageKey{}, m)
}

// messageAttrs returns attrs after the open_kfid and msgid of the message ctx names, if any.
func messageAttrs(ctx context.Context, attrs ...slog.Attr) []slog.Attr {
	m, _ := ctx.Value(logMessageKey{}).(*Message)
	if m == nil {
		return attrs
	}
	return append([]slog.Attr{slog.String("open_kfid", m.OpenKfID), slog.String("msgid", m.MsgID)}, attrs...)
}

// scrub redacts s like redact and also removes the client's secret and current access token
// wherever they appear, for text that comes from the other side (errmsg, error bodies).
func (c *Client) scrub(s string) string {
	s = redact(s)
	if c.secret != "" && strings.Contains(s, c.secret) {
		s = strings.ReplaceAll(s, c.secret, redacted)
	}
	c.tokens.mu.Lock()
	tok, bad := c.tokens.token, c.tokens.bad
	c.tokens.mu.Unlock()
	for _, t := range []string{tok, bad} {
		if t != "" && strings.Contains(s, t) {
			s = strings.ReplaceAll(s, t, redacted)
		}
	}
	return s
}

func closeBody(resp *resty.Response) {
	if rb := resp.RawBody(); rb != nil {
		_ = rb.Close()
	}
}

// discardLogger silences resty's own logging: it prints raw URLs, which carry the access token.
// This package logs through its *slog.Logger instead.
type discardLogger struct{}

func (discardLogger) Errorf(string, ...any) {}
func (discardLogger) Warnf(string, ...any)  {}
func (discardLogger) Debugf(string, ...any) {}
