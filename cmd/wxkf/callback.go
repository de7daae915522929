package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/wxkf/wxkf/config"
	"github.com/wxkf/wxkf/crypto"
	"github.com/wxkf/wxkf/kf"
)

// callbackPath is where the examples mount the Channel.
const callbackPath = "/wxkf/"

// callbackCheck signs a GET verification and a POST callback with the configured Token,
// EncodingAESKey and corp id, as WeCom would (doc 94699, 91144), and sends them to target: the
// running bot's URL, or, when target is empty, a kf.Channel of this configuration served on a
// local port (with its state in a temporary directory and its API calls going nowhere).
func callbackCheck(ctx context.Context, cfg *config.Config, target string) check {
	c := check{Name: checkCallback}
	cr, err := crypto.New(cfg.Token, cfg.AESKey, cfg.CorpID)
	if err != nil { // loadConfig already checked this
		c.Status, c.Summary = statusFail, err.Error()
		return c
	}
	local := target == ""
	if local {
		srv, stop, err := localChannel(cfg)
		if err != nil {
			c.Status, c.Summary = statusFail, "cannot start a local handler: "+err.Error()
			return c
		}
		defer stop()
		target = srv + callbackPath
	} else if u, err := url.Parse(target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		c.Status, c.Summary = statusFail, fmt.Sprintf("--url %q is not an http(s) URL", target)
		return c
	}

	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if p := probeGET(ctx, cr, target); p != nil {
		return p.check(c, target)
	}
	if p := probePOST(ctx, cr, cfg.CorpID, target); p != nil {
		return p.check(c, target)
	}
	c.Status = statusOK
	if local {
		c.Summary = "a local handler with this config answers a signed GET and POST"
		c.Details = []string{
			"checked on a local port; to check the running bot as WeCom reaches it:",
			"wxkf doctor --url https://YOUR-HOST" + callbackPath,
		}
		return c
	}
	c.Summary = target + " answers a signed GET and POST"
	c.Details = []string{"set this URL in " + enCallback}
	return c
}

// localChannel serves a kf.Channel of cfg on a loopback port. Its state lives in a temporary
// directory and its client points at a local stub that refuses every call, so the check never
// touches the bot's cursors or WeCom.
func localChannel(cfg *config.Config) (base string, stop func(), err error) {
	stateDir, err := os.MkdirTemp("", "wxkf-doctor-")
	if err != nil {
		return "", nil, err
	}
	nowhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"errcode":48002,"errmsg":"wxkf doctor: no API calls from the callback check"}`)
	}))
	ch, err := kf.NewChannel(cfg.KF(), kf.WithStateDir(stateDir), kf.WithClientOptions(kf.WithBaseURL(nowhere.URL)))
	if err != nil {
		nowhere.Close()
		_ = os.RemoveAll(stateDir)
		return "", nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(callbackPath, ch)
	srv := httptest.NewServer(mux)
	return srv.URL, func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ch.Shutdown(ctx)
		nowhere.Close()
		_ = os.RemoveAll(stateDir)
	}, nil
}

// probeFailure is what went wrong with one request of the callback check.
type probeFailure struct {
	method string
	status int    // 0: no answer
	err    error  // when there was no answer
	body   string // the start of the answer
	want   string // what the answer should have been (GET)
}

// signed is an encrypted message with the query WeCom would send it with.
type signed struct {
	encrypt, signature, timestamp, nonce string
}

// sign encrypts plaintext and signs it as WeCom does.
func sign(cr *crypto.Crypto, plaintext string) (signed, error) {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	nonce := crypto.GenerateToken()[:10]
	env, err := cr.EncryptMessage([]byte(plaintext), ts, nonce)
	if err != nil {
		return signed{}, err
	}
	var e struct {
		Encrypt string `xml:"Encrypt"`
	}
	if err := xml.Unmarshal(env, &e); err != nil {
		return signed{}, err
	}
	return signed{encrypt: e.Encrypt, signature: cr.Signature(ts, nonce, e.Encrypt), timestamp: ts, nonce: nonce}, nil
}

// probeGET sends the URL verification: the answer must be exactly the decrypted echostr.
func probeGET(ctx context.Context, cr *crypto.Crypto, target string) *probeFailure {
	echo := "wxkfdoctor" + crypto.GenerateToken()[:12]
	s, err := sign(cr, echo)
	if err != nil {
		return &probeFailure{method: http.MethodGet, err: err}
	}
	q := url.Values{"msg_signature": {s.signature}, "timestamp": {s.timestamp}, "nonce": {s.nonce}, "echostr": {s.encrypt}}
	status, body, err := do(ctx, http.MethodGet, withQuery(target, q), nil)
	if err != nil || status != http.StatusOK || body != echo {
		return &probeFailure{method: http.MethodGet, status: status, err: err, body: body, want: echo}
	}
	return nil
}

// probePOST sends a callback as WeCom posts it: a kf_account_auth_change event naming no account,
// which triggers no sync.
func probePOST(ctx context.Context, cr *crypto.Crypto, corpID, target string) *probeFailure {
	inner := fmt.Sprintf("<xml><ToUserName><![CDATA[%s]]></ToUserName><CreateTime>%d</CreateTime>"+
		"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[%s]]></Event></xml>",
		corpID, time.Now().Unix(), crypto.EventKfAccountAuthChange)
	s, err := sign(cr, inner)
	if err != nil {
		return &probeFailure{method: http.MethodPost, err: err}
	}
	body := fmt.Sprintf("<xml><ToUserName><![CDATA[%s]]></ToUserName><Encrypt><![CDATA[%s]]></Encrypt><AgentID><![CDATA[]]></AgentID></xml>",
		corpID, s.encrypt)
	q := url.Values{"msg_signature": {s.signature}, "timestamp": {s.timestamp}, "nonce": {s.nonce}}
	status, answer, err := do(ctx, http.MethodPost, withQuery(target, q), []byte(body))
	if err != nil || status != http.StatusOK {
		return &probeFailure{method: http.MethodPost, status: status, err: err, body: answer}
	}
	return nil
}

func withQuery(target string, q url.Values) string {
	sep := "?"
	if strings.Contains(target, "?") {
		sep = "&"
	}
	return target + sep + q.Encode()
}

// do sends one request and returns the status and the start of the answer.
func do(ctx context.Context, method, target string, body []byte) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if body != nil {
		req.Header.Set("Content-Type", "text/xml")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(b), err
}

// check fills c with what the failure means and how to fix it.
func (p *probeFailure) check(c check, target string) check {
	c.Status = statusFail
	sameConfig := &hint{
		EN: "The bot at this URL has another Token, EncodingAESKey or corp id than this configuration. Give the bot and wxkf the same config, " +
			"and restart the bot after changing them in " + enCallback + ".",
		ZH: "该 URL 上的机器人与本配置的 Token、EncodingAESKey 或企业ID不一致。请让机器人与 wxkf 使用同一份配置，并在修改" + zhCallback + "后重启机器人。",
	}
	switch {
	case p.err != nil && p.status == 0:
		cause := p.err
		var ue *url.Error
		if errors.As(p.err, &ue) { // its text repeats the signed query
			cause = ue.Err
		}
		c.Summary = fmt.Sprintf("%s %s: no answer: %v", p.method, target, cause)
		c.Fix = &hint{
			EN: "Start the bot (go run ./examples/echo) and make sure this URL reaches it from the internet: WeCom calls it from outside, " +
				"so use a public host name (HTTPS recommended). The examples serve the callback at " + callbackPath + ".",
			ZH: "请启动机器人（go run ./examples/echo），并确认该 URL 可从公网访问：企业微信从外网回调，请使用公网域名（建议 HTTPS）。示例程序的回调路径为 " + callbackPath + "。",
		}
		if errors.As(p.err, &ue) && ue.Timeout() {
			c.Summary = fmt.Sprintf("%s %s: no answer within %s", p.method, target, probeTimeout)
		}
	case p.status == http.StatusForbidden:
		c.Summary = fmt.Sprintf("%s %s: refused a correctly signed request (403)", p.method, target)
		c.Fix = sameConfig
	case p.status == http.StatusNotFound:
		c.Summary = fmt.Sprintf("%s %s: nothing is served there (404)", p.method, target)
		c.Fix = &hint{
			EN: "Use the path the bot mounts its handler at: the examples use " + callbackPath + ". Set the same URL in " + enCallback + ".",
			ZH: "请使用机器人挂载回调处理器的路径：示例程序为 " + callbackPath + "。并在" + zhCallback + "中填写同一 URL。",
		}
	case p.status == http.StatusServiceUnavailable:
		c.Summary = fmt.Sprintf("%s %s: the bot is shutting down (503)", p.method, target)
		c.Fix = &hint{EN: "Wait until it runs again, then run wxkf doctor again.", ZH: "请等机器人重新运行后再运行 wxkf doctor。"}
	case p.status == http.StatusOK && p.method == http.MethodGet:
		c.Summary = fmt.Sprintf("GET %s: the answer is not the decrypted echostr (%s)", target, describeAnswer(p.body, p.want))
		c.Fix = &hint{
			EN: "The URL verification must answer exactly the decrypted echostr: no quotes, BOM or newline (doc 94699). " +
				"Mount a kf.Channel there, or check the bot's Token, EncodingAESKey and corp id.",
			ZH: "URL 验证必须原样返回解密后的 echostr：不能带引号、BOM 或换行（文档 94699）。请在该路径挂载 kf.Channel，或检查机器人的 Token、EncodingAESKey 和企业ID。",
		}
	default:
		c.Summary = fmt.Sprintf("%s %s: answered %d: %s", p.method, target, p.status, firstLine(p.body))
		c.Fix = sameConfig
		if p.status == http.StatusBadRequest {
			c.Fix = &hint{
				EN: "The handler could not read a standard callback. Mount a kf.Channel at this path, or check the bot's EncodingAESKey.",
				ZH: "回调处理器无法解析标准回调。请在该路径挂载 kf.Channel，或检查机器人的 EncodingAESKey。",
			}
		}
	}
	return c
}

// describeAnswer says how a verification answer differs from want, without echoing much of it.
func describeAnswer(got, want string) string {
	switch {
	case strings.TrimSpace(got) == want:
		return "it has extra white space"
	case strings.Trim(got, `"`) == want:
		return "it is quoted"
	case strings.TrimPrefix(got, "\ufeff") == want:
		return "it starts with a BOM"
	}
	return fmt.Sprintf("got %d bytes: %q", len(got), firstLine(got))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if r := []rune(s); len(r) > 80 {
		s = string(r[:80]) + "…"
	}
	return s
}
