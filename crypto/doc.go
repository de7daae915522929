// Package crypto implements WeCom's callback crypto (WXBizMsgCrypt, doc 91144): the SHA-1
// msg_signature, URL verification and AES-256-CBC decryption and encryption of callback
// envelopes, with PKCS#7 padding to 32-byte blocks. It does no I/O and no HTTP.
//
//	c, err := crypto.New(token, encodingAESKey, corpID)
//	plain, err := c.DecryptMessage(q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"), body)
//	ev, err := crypto.ParseEvent(plain) // ev.Event == "kf_msg_or_event", ev.Token, ev.OpenKfID
//
// GenerateToken and GenerateEncodingAESKey make fresh callback settings to paste into the WeCom
// admin. Signatures are compared in constant time; malformed input is an error (never a panic) that
// matches one of the sentinels with errors.Is and carries the official library's error code.
package crypto
