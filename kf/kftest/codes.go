package kftest

// Error codes the fake answers with (§3–§10 of docs/wecom-api.md in this repository; WeCom's global
// error code page, doc 90313). Codes marked "approximation" are the fake's best plausible choice where
// no official page states which code WeCom returns for that case; a client must switch on the
// documented codes only.
const (
	// CodeOK is success.
	CodeOK = 0
	// CodeBusy is "system busy": retry with backoff (§10). Injected by Faults.BusyRate.
	CodeBusy = -1

	// CodeInvalidSecret: gettoken with a wrong corpsecret (§3, doc 91039). Do not loop on it.
	CodeInvalidSecret = 40001
	// CodeInvalidMediaType: media/upload with a type other than image|voice|video|file (approximation).
	CodeInvalidMediaType = 40004
	// CodeInvalidFileType: upload whose bytes are not the declared kind (image not JPG/PNG, voice not
	// AMR-NB, video not MP4) or that has no filename (approximation).
	CodeInvalidFileType = 40005
	// CodeInvalidFileSize: upload of at most 5 bytes, or a file over 20 MB (approximation).
	CodeInvalidFileSize = 40006
	// CodeInvalidMediaID: unknown, expired (3 days) or wrong-kind media_id (§9).
	CodeInvalidMediaID = 40007
	// CodeInvalidMsgType: send_msg with an unknown msgtype, or send_msg_on_event with a msgtype other
	// than text|msgmenu (approximation).
	CodeInvalidMsgType = 40008
	// CodeInvalidImageSize: image upload over 10 MB (approximation).
	CodeInvalidImageSize = 40009
	// CodeInvalidVoiceSize: voice upload over 2 MB (approximation).
	CodeInvalidVoiceSize = 40010
	// CodeInvalidVideoSize: video upload over 10 MB (approximation).
	CodeInvalidVideoSize = 40011
	// CodeInvalidCorpID: gettoken with an unknown corpid.
	CodeInvalidCorpID = 40013
	// CodeInvalidToken: access_token unknown or invalidated (§3). Refetch and retry once.
	CodeInvalidToken = 40014
	// CodeInvalidParameter: a malformed or missing parameter (§10): bad cursor, bad limit, bad client
	// msgid, missing required field, out-of-range statistics window, …
	CodeInvalidParameter = 40058
	// CodeInvalidExternalUserID: touser / external_userid empty or unknown where it must be known (§10).
	CodeInvalidExternalUserID = 40096
	// CodeMissingToken: no access_token in the query (§3).
	CodeMissingToken = 41001
	// CodeMissingCorpID: gettoken without corpid.
	CodeMissingCorpID = 41002
	// CodeMissingSecret: gettoken without corpsecret.
	CodeMissingSecret = 41004
	// CodeMissingMedia: media/upload without a multipart "media" part.
	CodeMissingMedia = 41005
	// CodeMissingMediaID: media/get without media_id.
	CodeMissingMediaID = 41006
	// CodeTokenExpired: access_token past its expires_in (§3). Refetch and retry once.
	CodeTokenExpired = 42001
	// CodeRequireGET: a GET endpoint called with another method.
	CodeRequireGET = 43001
	// CodeRequirePOST: a POST endpoint called with another method.
	CodeRequirePOST = 43002
	// CodeEmptyPost: a POST endpoint called with an empty body.
	CodeEmptyPost = 44002
	// CodeEmptyText: send_msg text with empty content.
	CodeEmptyText = 44004
	// CodeContentTooLong: text over 2048 bytes, a menu/link/miniprogram field over its byte limit, or
	// a request body over MaxRequestBytes (approximation for the last two).
	CodeContentTooLong = 45002
	// CodeVoiceTooLong: voice upload longer than 60 s by AMR frame count.
	CodeVoiceTooLong = 45007
	// CodeDataFormat: body is not valid JSON, not valid UTF-8, or a field has the wrong JSON type.
	CodeDataFormat = 47001

	// CodeInvalidOpenKfID: unknown open_kfid (§6).
	CodeInvalidOpenKfID = 95000
	// CodeQuotaExceeded: a 6th send_msg after the customer's latest message (§6).
	CodeQuotaExceeded = 95001
	// CodeWindowExpired: more than 48 h since the customer's latest message (§6).
	CodeWindowExpired = 95002
	// CodeMissingOpenKfID is 95004, "open_kfid does not exist" on the global error code page
	// (doc 90313). The fake answers it for an empty open_kfid (approximation); an unknown non-empty
	// one gets CodeInvalidOpenKfID.
	CodeMissingOpenKfID = 95004
	// CodeInvalidAccountName: kf/account add/update with an empty name or one over 16 characters (approximation).
	CodeInvalidAccountName = 95006
	// CodeInvalidMsgToken: sync_msg token that this account's callbacks never issued or that is past
	// its 10 minutes (§4, §6); also an unknown, used or expired send_msg_on_event code (approximation).
	CodeInvalidMsgToken = 95007
	// CodeTooManyMenuItems: msgmenu with more than 10 items (§6).
	CodeTooManyMenuItems = 95008
	// CodeInvalidMenuType: a msgmenu item whose type is not click|view|miniprogram|text (§6).
	CodeInvalidMenuType = 95009
	// CodeSessionEnded: send_msg while the session is in state 4 (ended) (§6). The fake answers
	// 95013 for state 4 and 95018 for states 2 and 3.
	CodeSessionEnded = 95013
	// CodeNotServicer is 95014, "not a servicer, or not activated" (§7, doc 90313): service_state/trans
	// or servicer statistics for a userid that is not an activated servicer of the account.
	CodeNotServicer = 95014
	// CodeBadTransition: a service_state/trans transition not in the stated table (§7).
	CodeBadTransition = 95016
	// CodeStateForbidsSend is 95018, "the session state does not allow sending" (§6), which the global
	// error code page also gives for a session older than 48 h (doc 90313). The fake answers it for
	// states 2 (queued) and 3 (human); past 48 h it answers CodeWindowExpired.
	CodeStateForbidsSend = 95018
	// CodeServicerNotReceiving: trans to a servicer who stopped receiving (§7).
	CodeServicerNotReceiving = 95019
	// CodeNoConsultation: send_msg to a customer who never messaged this account (§6).
	CodeNoConsultation = 95031
	// CodeMediaNeedsRange: media/get of a file over 20 MB without a Range header, or a Range chunk
	// over 20 MB (doc 96486: download such files in Range chunks of at most 20 MB).
	CodeMediaNeedsRange = 830002

	// DuplicateMsgIDCode is what send_msg / send_msg_on_event answer when the client msgid was already
	// used on an accepted send of the same kf account, with the errmsg "invalid parameter: msgid
	// duplicated". UNCONFIRMED: WeCom documents that a repeated client msgid fails (doc 94677, §6)
	// but not how; 40058 is its generic invalid-parameter code, so the fake answers every other
	// invalid parameter with 40058 too, but with an errmsg that does not name a duplicate msgid:
	// a client can tell the two apart only by the errmsg, as package kf does.
	DuplicateMsgIDCode = CodeInvalidParameter
)

// Error codes of WeCom's global error code page (doc 90313) that the fake's model never answers by
// itself, because they depend on the corp's setup rather than on the request. Tests make an endpoint
// answer them with FailWith.
const (
	// CodeAPIForbidden is 48002: the app may not call this API.
	CodeAPIForbidden = 48002
	// CodeIPNotTrusted is 60020: the caller's IP is not on the app's trusted IP list; WeCom's errmsg
	// names the IP ("… from ip: 203.0.113.7 …").
	CodeIPNotTrusted = 60020
	// CodeSecretMismatch is 95011: WeChat Customer Service is used inside WeCom (联合版) while the call
	// came as for the standalone edition (独立版) ("already use in wecom").
	CodeSecretMismatch = 95011
	// CodeEditionMismatch is 95012: the reverse mismatch between 联合版 and 独立版.
	CodeEditionMismatch = 95012
	// CodeAPISwitchOff is 95017: the API switch of WeChat Customer Service is off in the admin.
	CodeAPISwitchOff = 95017
)

// apiError is a WeCom error answer: errcode + errmsg.
type apiError struct {
	Code int
	Msg  string
}

func (e *apiError) Error() string { return e.Msg }

func errf(code int, msg string) *apiError { return &apiError{Code: code, Msg: msg} }
