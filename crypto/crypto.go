package crypto

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

const (
	aesKeyLen   = 32 // AES-256
	randomLen   = 16 // random prefix of the plaintext
	padBlock    = 32 // WeCom pads PKCS#7 to multiples of 32 bytes, not AES's 16
	maxTokenLen = 32
)

// Crypto signs, verifies, encrypts and decrypts WeCom callback messages for one callback
// configuration (Token, EncodingAESKey, receiver id). It is safe for concurrent use.
type Crypto struct {
	token      string
	receiverID string
	key        [aesKeyLen]byte
	block      cipher.Block
	rand       io.Reader
	now        func() time.Time
	window     time.Duration
}

// Option configures a Crypto.
type Option func(*Crypto)

// WithRandom sets the source of the 16 random bytes that start every encrypted message.
// The default is crypto/rand. A fixed source makes EncryptMessage deterministic (tests only).
func WithRandom(r io.Reader) Option { return func(c *Crypto) { c.rand = r } }

// WithClock sets the clock used for the replay window and for EncryptMessage's default
// timestamp. The default is time.Now.
func WithClock(now func() time.Time) Option { return func(c *Crypto) { c.now = now } }

// WithReplayWindow rejects messages whose timestamp is further than d from the clock, with
// ErrStaleTimestamp (which also matches ErrInvalidSignature). Off (0) by default, because WeCom
// retries a callback with its original timestamp and a host's clock may drift.
func WithReplayWindow(d time.Duration) Option { return func(c *Crypto) { c.window = d } }

// New returns a Crypto for the callback settings configured in the WeCom admin (doc 94699):
// token (letters and digits, at most 32), encodingAESKey (exactly 43 characters of base64 that
// decode to 32 bytes) and receiverID (the corp id for a WeCom kf callback). A bad value is an
// error naming the field; nothing panics later.
func New(token, encodingAESKey, receiverID string, opts ...Option) (*Crypto, error) {
	if err := validToken(token); err != nil {
		return nil, err
	}
	if receiverID == "" {
		return nil, fmt.Errorf("crypto: receiverID must not be empty")
	}
	c := &Crypto{token: token, receiverID: receiverID, rand: rand.Reader, now: time.Now}
	if len(encodingAESKey) != 43 {
		return nil, newErr(ErrInvalidAESKey, CodeIllegalAESKey,
			fmt.Sprintf("EncodingAESKey must be 43 characters, got %d", len(encodingAESKey)))
	}
	// Not Strict(): 43 random characters leave two unused low bits that real keys often set.
	n, err := base64.StdEncoding.Decode(c.key[:], []byte(encodingAESKey+"="))
	if err != nil || n != aesKeyLen {
		return nil, newErr(ErrInvalidAESKey, CodeIllegalAESKey, "EncodingAESKey is not base64 of 32 bytes")
	}
	c.block, err = aes.NewCipher(c.key[:])
	if err != nil { // unreachable: the key is 32 bytes
		return nil, newErr(ErrInvalidAESKey, CodeIllegalAESKey, err.Error())
	}
	for _, o := range opts {
		o(c)
	}
	if c.rand == nil || c.now == nil || c.window < 0 {
		return nil, fmt.Errorf("crypto: nil random source or clock, or negative replay window")
	}
	return c, nil
}

func validToken(token string) error {
	if token == "" || len(token) > maxTokenLen {
		return fmt.Errorf("crypto: token must be 1 to %d letters or digits, got %d bytes", maxTokenLen, len(token))
	}
	for i := 0; i < len(token); i++ {
		if !isAlnum(token[i]) {
			return fmt.Errorf("crypto: token must be letters or digits only (byte %d is not)", i)
		}
	}
	return nil
}

func isAlnum(b byte) bool {
	return b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

// ReceiverID returns the receiver id (corp id) this Crypto checks decrypted messages against.
func (c *Crypto) ReceiverID() string { return c.receiverID }

// Signature returns WeCom's msg_signature: the lowercase hex SHA-1 of the lexicographically
// sorted concatenation of token, timestamp, nonce and the encrypted text (doc 91144).
func (c *Crypto) Signature(timestamp, nonce, encrypted string) string {
	sum := c.sum(timestamp, nonce, encrypted)
	return hex.EncodeToString(sum[:])
}

// sum computes the signature digest without allocating for typical sizes.
func (c *Crypto) sum(timestamp, nonce, encrypted string) [sha1.Size]byte {
	parts := [4]string{c.token, timestamp, nonce, encrypted}
	for i := 1; i < len(parts); i++ { // insertion sort: four items, no allocation
		for j := i; j > 0 && parts[j] < parts[j-1]; j-- {
			parts[j], parts[j-1] = parts[j-1], parts[j]
		}
	}
	n := len(parts[0]) + len(parts[1]) + len(parts[2]) + len(parts[3])
	var stack [2048]byte
	buf := stack[:0]
	if n > len(stack) {
		buf = make([]byte, 0, n)
	}
	for _, p := range parts {
		buf = append(buf, p...)
	}
	return sha1.Sum(buf)
}

// verify checks msgSignature in constant time, then the replay window if one is set.
func (c *Crypto) verify(msgSignature, timestamp, nonce, encrypted string) error {
	var got [sha1.Size]byte
	if len(msgSignature) != hex.EncodedLen(sha1.Size) {
		return errSignature
	}
	if _, err := hex.Decode(got[:], []byte(msgSignature)); err != nil {
		return errSignature
	}
	want := c.sum(timestamp, nonce, encrypted)
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return errSignature
	}
	if c.window > 0 {
		ts, err := strconv.ParseInt(timestamp, 10, 64)
		if err != nil {
			return errStale
		}
		d := c.now().Sub(time.Unix(ts, 0))
		if d > c.window || d < -c.window {
			return errStale
		}
	}
	return nil
}

// VerifyURL answers the GET verification of a callback URL (doc 94699): it checks msgSignature
// over echostr and returns the decrypted plaintext, which the handler must write back as the
// whole response body. A '+' that a framework turned into a space in echostr is restored.
func (c *Crypto) VerifyURL(msgSignature, timestamp, nonce, echostr string) ([]byte, error) {
	if strings.IndexByte(echostr, ' ') >= 0 {
		echostr = strings.ReplaceAll(echostr, " ", "+")
	}
	if err := c.verify(msgSignature, timestamp, nonce, echostr); err != nil {
		return nil, err
	}
	return c.decrypt([]byte(echostr))
}

// DecryptMessage verifies and decrypts a POSTed callback: body is the XML envelope
// (<xml><ToUserName/><Encrypt/><AgentID/></xml>, AgentID optional, values plain or CDATA).
// It returns the decrypted inner XML after checking msgSignature (constant time) and that the
// receiveid inside equals this Crypto's receiver id.
func (c *Crypto) DecryptMessage(msgSignature, timestamp, nonce string, body []byte) ([]byte, error) {
	enc, ok := envelopeField(body, "Encrypt")
	if !ok || len(enc) == 0 {
		return nil, errNoEncrypt
	}
	if err := c.verify(msgSignature, timestamp, nonce, bytesToString(enc)); err != nil {
		return nil, err
	}
	return c.decrypt(enc)
}

// decrypt turns base64 ciphertext into the message, checking padding, length and receiver.
// The result aliases one buffer: one allocation for the plaintext plus the CBC mode.
func (c *Crypto) decrypt(b64 []byte) ([]byte, error) {
	buf := make([]byte, base64.StdEncoding.DecodedLen(len(b64)))
	n, err := base64.StdEncoding.Decode(buf, b64)
	if err != nil {
		return nil, errBase64
	}
	buf = buf[:n]
	if n == 0 || n%aes.BlockSize != 0 {
		return nil, errCipherLen
	}
	cipher.NewCBCDecrypter(c.block, c.key[:aes.BlockSize]).CryptBlocks(buf, buf)

	pad := int(buf[n-1])
	if pad < 1 || pad > padBlock || pad > n {
		return nil, errPadding
	}
	for _, p := range buf[n-pad:] {
		if int(p) != pad {
			return nil, errPadding
		}
	}
	buf = buf[:n-pad]
	if len(buf) < randomLen+4 {
		return nil, errShortBuffer
	}
	msgLen := binary.BigEndian.Uint32(buf[randomLen:])
	rest := buf[randomLen+4:]
	if uint64(msgLen) > uint64(len(rest)) {
		return nil, errShortBuffer
	}
	if string(rest[msgLen:]) != c.receiverID {
		return nil, errReceiver
	}
	return rest[:msgLen:msgLen], nil
}

// EncryptMessage encrypts plaintext for the receiver and returns the reply envelope
// <xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/></xml> that DecryptMessage of any conforming
// implementation accepts (with the envelope's MsgSignature, TimeStamp and Nonce as the query).
// An empty timestamp means the clock's now; an empty nonce means a random one. timestamp must be
// digits and nonce letters or digits, so they can be placed in the XML unescaped.
func (c *Crypto) EncryptMessage(plaintext []byte, timestamp, nonce string) ([]byte, error) {
	if timestamp == "" {
		timestamp = strconv.FormatInt(c.now().Unix(), 10)
	}
	if nonce == "" {
		var nb [8]byte
		if _, err := io.ReadFull(c.rand, nb[:]); err != nil {
			return nil, newErr(ErrEncrypt, CodeEncryptAES, "random source: "+err.Error())
		}
		nonce = strconv.FormatUint(binary.BigEndian.Uint64(nb[:])%1e10, 10)
	}
	if !allDigits(timestamp) || !allAlnum(nonce) || len(nonce) > 64 {
		return nil, newErr(ErrEncrypt, CodeGenXML, "timestamp must be digits and nonce 1 to 64 letters or digits")
	}
	enc, err := c.encrypt(plaintext)
	if err != nil {
		return nil, err
	}
	sig := c.Signature(timestamp, nonce, enc)
	var b bytes.Buffer
	b.Grow(len(enc) + len(sig) + len(timestamp) + len(nonce) + 128)
	b.WriteString("<xml><Encrypt><![CDATA[")
	b.WriteString(enc)
	b.WriteString("]]></Encrypt><MsgSignature><![CDATA[")
	b.WriteString(sig)
	b.WriteString("]]></MsgSignature><TimeStamp>")
	b.WriteString(timestamp)
	b.WriteString("</TimeStamp><Nonce><![CDATA[")
	b.WriteString(nonce)
	b.WriteString("]]></Nonce></xml>")
	return b.Bytes(), nil
}

// encrypt returns base64(AES-256-CBC(random16 | len32be | msg | receiveid | PKCS#7 to 32)).
func (c *Crypto) encrypt(msg []byte) (string, error) {
	if uint64(len(msg)) > 1<<31 {
		return "", newErr(ErrEncrypt, CodeEncryptAES, "message too large")
	}
	n := randomLen + 4 + len(msg) + len(c.receiverID)
	pad := padBlock - n%padBlock
	buf := make([]byte, n+pad)
	if _, err := io.ReadFull(c.rand, buf[:randomLen]); err != nil {
		return "", newErr(ErrEncrypt, CodeEncryptAES, "random source: "+err.Error())
	}
	binary.BigEndian.PutUint32(buf[randomLen:], uint32(len(msg)))
	copy(buf[randomLen+4:], msg)
	copy(buf[randomLen+4+len(msg):], c.receiverID)
	for i := n; i < len(buf); i++ {
		buf[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(c.block, c.key[:aes.BlockSize]).CryptBlocks(buf, buf)
	return base64.StdEncoding.EncodeToString(buf), nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func allAlnum(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) {
			return false
		}
	}
	return true
}
