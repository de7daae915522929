package crypto

import "fmt"

// Error is a failure of the callback crypto. Code is the error code the official WXBizMsgCrypt
// libraries return for the same failure (-40001 … -40011, doc 91144), for code ported from them.
//
// Every Error matches, with errors.Is, the sentinel of its class (ErrInvalidSignature,
// ErrInvalidAESKey, ErrReceiverMismatch, ErrMalformed, ErrEncrypt), through any wrapping.
type Error struct {
	// Code is the official library's error code, e.g. -40001 for a bad signature.
	Code int
	// Reason says what failed, without secrets.
	Reason string

	class *Error // the sentinel this error belongs to; nil for the sentinels themselves
}

// Error returns "crypto: " and the reason.
func (e *Error) Error() string {
	if e.class == nil {
		return "crypto: " + e.Reason
	}
	return fmt.Sprintf("crypto: %s: %s (%d)", e.class.Reason, e.Reason, e.Code)
}

// Is reports whether target is e itself or one of the sentinels e belongs to.
func (e *Error) Is(target error) bool {
	for c := e; c != nil; c = c.class {
		if c == target {
			return true
		}
	}
	return false
}

// Official WXBizMsgCrypt error codes (doc 91144).
const (
	CodeValidateSignature = -40001 // signature check failed
	CodeParseXML          = -40002 // the XML envelope could not be parsed
	CodeComputeSignature  = -40003 // SHA-1 of the signature failed
	CodeIllegalAESKey     = -40004 // EncodingAESKey is invalid
	CodeValidateReceiver  = -40005 // receiveid does not match
	CodeEncryptAES        = -40006 // AES encryption failed
	CodeDecryptAES        = -40007 // AES decryption failed
	CodeIllegalBuffer     = -40008 // the decrypted buffer is invalid
	CodeEncodeBase64      = -40009 // base64 encoding failed
	CodeDecodeBase64      = -40010 // base64 decoding failed
	CodeGenXML            = -40011 // building the XML envelope failed
)

// Sentinel errors. Compare with errors.Is; errors.As to *Error gives the official code.
var (
	// ErrInvalidSignature: msg_signature does not match (-40001). A timestamp outside the
	// replay window (WithReplayWindow) also matches it.
	ErrInvalidSignature = &Error{Code: CodeValidateSignature, Reason: "invalid signature"}
	// ErrInvalidAESKey: the EncodingAESKey is not 43 characters of base64 for 32 bytes (-40004).
	ErrInvalidAESKey = &Error{Code: CodeIllegalAESKey, Reason: "invalid EncodingAESKey"}
	// ErrReceiverMismatch: the decrypted receiveid is not this receiver's (-40005).
	ErrReceiverMismatch = &Error{Code: CodeValidateReceiver, Reason: "receiver id mismatch"}
	// ErrMalformed: the envelope, base64, ciphertext, padding or length field is invalid
	// (-40002, -40007, -40008 or -40010; the *Error says which).
	ErrMalformed = &Error{Code: CodeParseXML, Reason: "malformed message"}
	// ErrEncrypt: encryption could not be done, e.g. the random source failed or an
	// argument cannot be put in the envelope (-40006, -40011).
	ErrEncrypt = &Error{Code: CodeEncryptAES, Reason: "encrypt failed"}
	// ErrStaleTimestamp: the timestamp is outside the replay window. It matches
	// ErrInvalidSignature too, so code that only checks signatures treats it as forged.
	ErrStaleTimestamp = &Error{Code: CodeValidateSignature, Reason: "timestamp outside replay window", class: ErrInvalidSignature}
)

func newErr(class *Error, code int, reason string) *Error {
	return &Error{Code: code, Reason: reason, class: class}
}

// Pre-built errors for the hot path: no allocation when a forged request is rejected.
var (
	errSignature   = newErr(ErrInvalidSignature, CodeValidateSignature, "msg_signature does not match")
	errNoEncrypt   = newErr(ErrMalformed, CodeParseXML, "no single <Encrypt> element in an <xml> envelope")
	errBase64      = newErr(ErrMalformed, CodeDecodeBase64, "Encrypt is not valid base64")
	errCipherLen   = newErr(ErrMalformed, CodeDecryptAES, "ciphertext length is not a positive multiple of the AES block size")
	errPadding     = newErr(ErrMalformed, CodeDecryptAES, "invalid PKCS#7 padding")
	errShortBuffer = newErr(ErrMalformed, CodeIllegalBuffer, "decrypted buffer shorter than its length field")
	errReceiver    = newErr(ErrReceiverMismatch, CodeValidateReceiver, "receiveid does not match")
	errStale       = newErr(ErrStaleTimestamp, CodeValidateSignature, "timestamp is not a unix time inside the window")
)
