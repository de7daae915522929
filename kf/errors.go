package kf

import (
	"errors"
	"fmt"
	"strconv"
)

// APIError is a WeCom reply whose errcode is not 0 (§10: switch on errcode, never
// on errmsg). Every endpoint of [Client] returns one, possibly wrapped, for such a reply.
//
// Match codes with errors.Is against the sentinels of this package (ErrQuotaExceeded, ...): Is
// compares only Code, so it works through any wrapping with %w. [ErrorCode] extracts the code.
type APIError struct {
	// Code is WeCom's errcode.
	Code int
	// Msg is WeCom's errmsg, with any access_token or corpsecret value redacted.
	Msg string
	// Path is the API path that answered, e.g. "/cgi-bin/kf/send_msg" (never a query string).
	Path string
}

// Error describes the failure with its code, this package's description of the code and errmsg.
func (e *APIError) Error() string {
	s := "kf: "
	if e.Path != "" {
		s += e.Path + ": "
	}
	s += "errcode " + strconv.Itoa(e.Code)
	if d := describe(e.Code); d.en != "" {
		s += " (" + d.en + ")"
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	return s
}

// Is reports whether target is an *APIError with the same Code, so errors.Is(err, ErrSystemBusy)
// matches any -1 reply whatever its Path and Msg.
func (e *APIError) Is(target error) bool {
	t, ok := target.(*APIError)
	return ok && t != nil && t.Code == e.Code
}

// Description is this package's English text for e.Code ("" for a code it does not know); see
// [CodeDescription].
func (e *APIError) Description() string { return describe(e.Code).en }

// Retryable reports whether WeCom documents the failure as transient: -1 (system busy) and 45033
// (concurrency limit). The client already retried such replies for idempotent calls (see WithRetry).
func (e *APIError) Retryable() bool {
	return e.Code == codeSystemBusy || e.Code == codeConcurrencyLimit
}

// ErrorCode returns the errcode of the first *APIError in err's chain, or 0 when there is none
// (WeCom's 0 means success, so 0 never names a failure).
func ErrorCode(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return 0
}

// Error codes this package treats specially.
const (
	codeSystemBusy       = -1
	codeInvalidSecret    = 40001
	codeInvalidCorpID    = 40013
	codeInvalidToken     = 40014
	codeTokenMissing     = 41001
	codeTokenExpired     = 42001
	codeRateLimited      = 45009
	codeConcurrencyLimit = 45033
	// codeMediaNeedsRange: media/get of a file over 20 MB without Range, or a chunk over 20 MB
	// (doc 96486). DownloadMedia handles it by downloading in chunks.
	codeMediaNeedsRange = 830002
)

// Sentinels for the WeCom errcodes callers branch on (§3, §6, §7, §10). Each is an
// *APIError with only Code set; use errors.Is(err, kf.ErrX).
var (
	// ErrSystemBusy is -1: WeCom is busy. Idempotent calls are retried with backoff first (§10).
	ErrSystemBusy error = &APIError{Code: codeSystemBusy}
	// ErrInvalidSecret is 40001: the corpsecret is wrong. Never retried: repeated wrong secrets get
	// the server's IP banned for an hour (§3, doc 91039).
	ErrInvalidSecret error = &APIError{Code: codeInvalidSecret}
	// ErrInvalidMediaID is 40007: the media_id is unknown or expired (media lives 3 days, §9).
	ErrInvalidMediaID error = &APIError{Code: 40007}
	// ErrInvalidCorpID is 40013: the corpid is wrong.
	ErrInvalidCorpID error = &APIError{Code: codeInvalidCorpID}
	// ErrInvalidToken is 40014: the access_token is invalid; the client refetches it and retries
	// once before returning this (§3).
	ErrInvalidToken error = &APIError{Code: codeInvalidToken}
	// ErrInvalidParameter is 40058: a request field is invalid (§10).
	ErrInvalidParameter error = &APIError{Code: 40058}
	// ErrInvalidExternalUserID is 40096: the external_userid is invalid (§10).
	ErrInvalidExternalUserID error = &APIError{Code: 40096}
	// ErrTokenMissing is 41001: the access_token was missing; refetched and retried once (§3).
	ErrTokenMissing error = &APIError{Code: codeTokenMissing}
	// ErrTokenExpired is 42001: the access_token expired; refetched and retried once (§3).
	ErrTokenExpired error = &APIError{Code: codeTokenExpired}
	// ErrRateLimited is 45009: the frequency limit of the API was hit (doc 90454: per corp per API
	// 10,000/min and 150,000/h). Not retried by the client, which reports it to its RateLimiter:
	// that pauses the API for the corp (see NewRateLimiter).
	ErrRateLimited error = &APIError{Code: codeRateLimited}
	// ErrConcurrencyLimit is 45033: too many concurrent calls; idempotent calls are retried first.
	ErrConcurrencyLimit error = &APIError{Code: codeConcurrencyLimit}
	// ErrAPIForbidden is 48002: the app may not call this API (§10).
	ErrAPIForbidden error = &APIError{Code: 48002}
	// ErrIPNotTrusted is 60020: the calling IP is not in the app's trusted IP list (§10).
	ErrIPNotTrusted error = &APIError{Code: 60020}
	// ErrInvalidOpenKfID is 95000: the open_kfid is invalid (§6).
	ErrInvalidOpenKfID error = &APIError{Code: 95000}
	// ErrQuotaExceeded is 95001: the customer already got 5 messages since their last message (§6).
	// The Replier refuses such a send itself, with a *ReplyError whose Reason is this sentinel.
	ErrQuotaExceeded error = &APIError{Code: 95001}
	// ErrSessionExpired is 95002: more than 48 h passed since the customer's last message (§6).
	// The Replier refuses such a send itself, with a *ReplyError whose Reason is this sentinel.
	ErrSessionExpired error = &APIError{Code: 95002}
	// ErrReceptionLimit is 95003: the account's reception cap is reached (§6).
	ErrReceptionLimit error = &APIError{Code: 95003}
	// ErrOpenKfIDNotFound is 95004: the open_kfid does not exist (global error code page, doc 90313).
	ErrOpenKfIDNotFound error = &APIError{Code: 95004}
	// ErrInvalidMsgToken is 95007: the sync_msg token is invalid (it lives 10 minutes, §1, §6).
	ErrInvalidMsgToken error = &APIError{Code: 95007}
	// ErrTooManyMenuItems is 95008: a msgmenu has more than 10 items (§6).
	ErrTooManyMenuItems error = &APIError{Code: 95008}
	// ErrInvalidMenuType is 95009: a msgmenu item has an unknown type (§6).
	ErrInvalidMenuType error = &APIError{Code: 95009}
	// ErrSecretMismatch is 95011: the call does not match how the corp uses WeChat Customer Service:
	// it is used inside WeCom (联合版, "already use in wecom") while the call came as for the
	// standalone edition (独立版) (§10; global error code page, doc 90313).
	ErrSecretMismatch error = &APIError{Code: 95011}
	// ErrEditionMismatch is 95012: the other half of 95011, a mismatch between 联合版 (used inside
	// WeCom) and 独立版 (standalone): the call came as for WeCom while the corp does not use WeChat
	// Customer Service inside WeCom (§10; doc 90313).
	ErrEditionMismatch error = &APIError{Code: 95012}
	// ErrSessionEnded is 95013: the session has ended (§6). Also the Reason of a *ReplyError when
	// the Replier knows the session ended (state 4).
	ErrSessionEnded error = &APIError{Code: 95013}
	// ErrServicerNotActivated is 95014: the userid is not a servicer (接待人员) of the account, or
	// is one whose WeCom account is not activated (§7; doc 90313).
	ErrServicerNotActivated error = &APIError{Code: 95014}
	// ErrInvalidStateTransition is 95016: the session cannot move to that state (§7).
	ErrInvalidStateTransition error = &APIError{Code: 95016}
	// ErrAPISwitchOff is 95017: the kf API switch is off in the WeCom admin (§10).
	ErrAPISwitchOff error = &APIError{Code: 95017}
	// ErrStateForbidsSend is 95018: the session does not allow the API to send — sending is
	// allowed only in states 0 and 1, e.g. not while a human servicer has the session — or the
	// session is older than 48 h (§6, §7, §10; doc 90313).
	ErrStateForbidsSend error = &APIError{Code: 95018}
	// ErrServicerNotReceiving is 95019: the servicer is not receiving (§7).
	ErrServicerNotReceiving error = &APIError{Code: 95019}
	// ErrMsgTypeBanned is 95030: this message type may not be sent (§6).
	ErrMsgTypeBanned error = &APIError{Code: 95030}
	// ErrNoConsultation is 95031: the customer has not consulted in the last 48 h (§6).
	ErrNoConsultation error = &APIError{Code: 95031}
)

type codeText struct{ en, zh string }

// describe is the code → text table behind CodeDescription; a switch keeps it immutable.
func describe(code int) codeText {
	switch code {
	case -1:
		return codeText{"system busy", "系统繁忙"}
	case 40001:
		return codeText{"invalid corpsecret", "不合法的secret参数"}
	case 40007:
		return codeText{"invalid media_id", "不合法的媒体文件id"}
	case 40013:
		return codeText{"invalid corpid", "不合法的corpid"}
	case 40014:
		return codeText{"invalid access_token", "不合法的access_token"}
	case 40058:
		return codeText{"invalid parameter", "不合法的参数"}
	case 40096:
		return codeText{"invalid external_userid", "不合法的外部联系人userid"}
	case 41001:
		return codeText{"missing access_token", "缺少access_token参数"}
	case 42001:
		return codeText{"access_token expired", "access_token已过期"}
	case 45009:
		return codeText{"API frequency limit exceeded", "接口调用超过限制"}
	case 45033:
		return codeText{"API concurrency limit exceeded", "接口并发调用超过限制"}
	case 48002:
		return codeText{"API not permitted", "API接口无权限调用"}
	case 60020:
		return codeText{"IP not trusted", "不安全的访问IP"}
	case 95000:
		return codeText{"invalid open_kfid", "非法的open_kfid"}
	case 95001:
		return codeText{"send quota exceeded (5 messages per customer message)", "发送消息条数超过限制"}
	case 95002:
		return codeText{"more than 48 h since the customer's last message", "发送消息时间超过限制（48小时）"}
	case 95003:
		return codeText{"reception limit reached", "客服帐号接待人数超过限制"}
	case 95004:
		return codeText{"open_kfid does not exist", "open_kfid不存在"}
	case 95007:
		return codeText{"invalid msg token", "不合法的消息token"}
	case 95008:
		return codeText{"too many menu items (max 10)", "菜单消息的菜单项个数超过上限"}
	case 95009:
		return codeText{"invalid menu item type", "不合法的菜单消息的菜单项类型"}
	case 95011:
		return codeText{"edition mismatch: WeChat Customer Service is used inside WeCom (联合版), not standalone (独立版)", "已在企业微信使用微信客服"}
	case 95012:
		return codeText{"edition mismatch: WeChat Customer Service is not used inside WeCom (联合版) but standalone (独立版)", "未在企业微信使用微信客服"}
	case 95013:
		return codeText{"session ended", "会话已经结束"}
	case 95014:
		return codeText{"not a servicer of the account, or not activated", "不是接待人员或接待人员未激活"}
	case 95016:
		return codeText{"session state transition not allowed", "不允许这种会话状态转换"}
	case 95017:
		return codeText{"kf API switch is off", "API开关处于关闭状态"}
	case 95018:
		return codeText{"session state does not allow sending, or the session is older than 48 h", "当前会话状态不允许发送消息或会话已超过48小时"}
	case 95019:
		return codeText{"servicer not receiving", "接待人员处于停止接待状态"}
	case 95030:
		return codeText{"message type not allowed", "不允许发送该类型的消息"}
	case 95031:
		return codeText{"no consultation from the customer in 48 h", "用户48小时内没有咨询"}
	case codeMediaNeedsRange:
		return codeText{"media over 20 MB: download it in Range chunks of at most 20 MB", "文件超过20M，需使用Range分块下载"}
	}
	return codeText{}
}

// CodeDescription returns this package's English and Chinese text for a WeCom errcode, for logs,
// or two empty strings for a code it does not know. The texts paraphrase WeCom's global error code
// page; they are descriptions, not WeCom's exact wording.
func CodeDescription(code int) (en, zh string) {
	d := describe(code)
	return d.en, d.zh
}

// HTTPError is a WeCom reply whose HTTP status is not 200 (WeCom answers 200 even for API errors,
// so any other status comes from a proxy or an outage).
type HTTPError struct {
	Method     string
	Path       string // API path, never the query string
	StatusCode int
	// Body is the start of the reply (at most 256 bytes), redacted of secrets.
	Body string
}

// Error describes the method, path and status, and quotes the start of the body.
func (e *HTTPError) Error() string {
	s := fmt.Sprintf("kf: %s %s: HTTP %d", e.Method, e.Path, e.StatusCode)
	if e.Body != "" {
		s += ": " + strconv.Quote(e.Body)
	}
	return s
}

// RequestError is a failure to get any reply: network error, timeout, cancelled context, oversized
// reply. Err is the cause (a *url.Error has its URL stripped of access_token and corpsecret); Error
// redacts them from the whole text as well.
type RequestError struct {
	Method string
	Path   string // API path, never the query string
	Err    error
}

// Error describes the failed call with access_token and corpsecret values redacted.
func (e *RequestError) Error() string {
	return "kf: " + e.Method + " " + e.Path + ": " + redact(e.Err.Error())
}

// Unwrap returns the cause, so errors.Is(err, context.DeadlineExceeded) and the like work.
func (e *RequestError) Unwrap() error { return e.Err }

// Timeout reports whether the failure was a timeout.
func (e *RequestError) Timeout() bool {
	var t interface{ Timeout() bool }
	return errors.As(e.Err, &t) && t.Timeout()
}

// Local failures, detected before any I/O.
var (
	// ErrInvalidArgument is wrapped by every validation error of a request: a field WeCom would
	// reject (too long, wrong charset, missing) is reported before any network call, naming the
	// field and the rule.
	ErrInvalidArgument = errors.New("kf: invalid argument")
	// ErrResponseTooLarge reports a reply larger than the client's cap (8 MB for JSON, see
	// WithMaxDownloadBytes for media).
	ErrResponseTooLarge = errors.New("kf: response too large")
	// ErrUnexpectedResponse reports a 200 reply that is not what the endpoint returns (e.g. a JSON
	// body without errcode where media was expected).
	ErrUnexpectedResponse = errors.New("kf: unexpected response")
)

// invalidf returns an error wrapping ErrInvalidArgument.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidArgument}, args...)...)
}
