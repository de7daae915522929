package crypto

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type vector struct {
	Source       string `json:"source"`
	Kind         string `json:"kind"`
	Token        string `json:"token"`
	AESKey       string `json:"aes_key"`
	ReceiverID   string `json:"receiver_id"`
	MsgSignature string `json:"msg_signature"`
	Timestamp    string `json:"timestamp"`
	Nonce        string `json:"nonce"`
	Encrypt      string `json:"encrypt"`
	Plaintext    string `json:"plaintext"`
	Random       string `json:"random"`
	ExpectError  string `json:"expect_error"`
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	b, err := os.ReadFile("testdata/crypto-vectors.json")
	require.NoError(t, err)
	var f struct{ Vectors []vector }
	require.NoError(t, json.Unmarshal(b, &f))
	require.NotEmpty(t, f.Vectors)
	return f.Vectors
}

func envelope(encrypt string) []byte {
	return []byte("<xml><ToUserName><![CDATA[ww]]></ToUserName><Encrypt><![CDATA[" + encrypt +
		"]]></Encrypt><AgentID><![CDATA[1]]></AgentID></xml>")
}

func TestVectors(t *testing.T) {
	t.Parallel()
	var kinds = map[string]int{}
	for _, v := range loadVectors(t) {
		kinds[v.Kind]++
		t.Run(v.Source+"/"+v.Kind, func(t *testing.T) {
			var opts []Option
			if v.Random != "" {
				opts = append(opts, WithRandom(strings.NewReader(v.Random)))
			}
			c, err := New(v.Token, v.AESKey, v.ReceiverID, opts...)
			require.NoError(t, err)
			switch v.Kind {
			case "url":
				got, err := c.VerifyURL(v.MsgSignature, v.Timestamp, v.Nonce, v.Encrypt)
				if v.ExpectError != "" {
					require.ErrorIs(t, err, ErrInvalidSignature)
					assert.Contains(t, err.Error(), v.ExpectError)
					assert.Nil(t, got)
					return
				}
				require.NoError(t, err)
				assert.Equal(t, v.Plaintext, string(got))
				assert.Equal(t, v.MsgSignature, c.Signature(v.Timestamp, v.Nonce, v.Encrypt))
			case "message":
				got, err := c.DecryptMessage(v.MsgSignature, v.Timestamp, v.Nonce, envelope(v.Encrypt))
				require.NoError(t, err)
				assert.Equal(t, v.Plaintext, string(got))
				// Plain (non-CDATA) values and no AgentID are accepted as well.
				plain := []byte("<xml>\n <ToUserName>" + v.ReceiverID + "</ToUserName>\n <Encrypt>" + v.Encrypt + "</Encrypt>\n</xml>\n")
				got, err = c.DecryptMessage(v.MsgSignature, v.Timestamp, v.Nonce, plain)
				require.NoError(t, err)
				assert.Equal(t, v.Plaintext, string(got))
			case "encrypt":
				out, err := c.EncryptMessage([]byte(v.Plaintext), v.Timestamp, v.Nonce)
				require.NoError(t, err)
				enc, ok := envelopeField(out, "Encrypt")
				require.True(t, ok)
				assert.Equal(t, v.Encrypt, string(enc))
				sig, ok := envelopeField(out, "MsgSignature")
				require.True(t, ok)
				assert.Equal(t, v.MsgSignature, string(sig))
				ts, _ := envelopeField(out, "TimeStamp")
				nonce, _ := envelopeField(out, "Nonce")
				assert.Equal(t, v.Timestamp, string(ts))
				assert.Equal(t, v.Nonce, string(nonce))
			default:
				t.Fatalf("unknown vector kind %q", v.Kind)
			}
		})
	}
	assert.Positive(t, kinds["url"])
	assert.Positive(t, kinds["message"])
	assert.Positive(t, kinds["encrypt"])
}

const (
	tToken = "QDG6eK"
	tKey   = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
	tCorp  = "wx5823bf96d3bd56c7"
)

func newTest(t testing.TB, opts ...Option) *Crypto {
	t.Helper()
	c, err := New(tToken, tKey, tCorp, opts...)
	require.NoError(t, err)
	return c
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, token, key, recv string
		is                     error
		mention                string
	}{
		{"empty token", "", tKey, tCorp, nil, "token"},
		{"long token", strings.Repeat("a", 33), tKey, tCorp, nil, "token"},
		{"token punctuation", "abc-def", tKey, tCorp, nil, "token"},
		{"short key", tToken, tKey[:42], tCorp, ErrInvalidAESKey, "43"},
		{"long key", tToken, tKey + "A", tCorp, ErrInvalidAESKey, "43"},
		{"key not base64", tToken, strings.Repeat("*", 43), tCorp, ErrInvalidAESKey, "EncodingAESKey"},
		{"empty receiver", tToken, tKey, "", nil, "receiverID"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.token, tc.key, tc.recv)
			require.Error(t, err)
			assert.Nil(t, c)
			assert.Contains(t, err.Error(), tc.mention)
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
				var ce *Error
				require.ErrorAs(t, err, &ce)
				assert.Equal(t, CodeIllegalAESKey, ce.Code)
			}
		})
	}
	_, err := New(strings.Repeat("a", 32), tKey, tCorp)
	assert.NoError(t, err, "a 32-character token is allowed")
	_, err = New(tToken, tKey, tCorp, WithRandom(nil))
	assert.Error(t, err)
	_, err = New(tToken, tKey, tCorp, WithReplayWindow(-time.Second))
	assert.Error(t, err)
}

// rawEncrypt builds ciphertext for arbitrary plaintext layouts, so the decrypt checks can be
// exercised with inputs no conforming encrypter produces.
func rawEncrypt(t testing.TB, c *Crypto, plain []byte) string {
	t.Helper()
	require.Zero(t, len(plain)%16)
	out := make([]byte, len(plain))
	copy(out, plain)
	for i := 0; i < len(out); i += 16 { // CBC by hand
		prev := c.key[:16]
		if i > 0 {
			prev = out[i-16 : i]
		}
		for j := 0; j < 16; j++ {
			out[i+j] ^= prev[j]
		}
		c.block.Encrypt(out[i:i+16], out[i:i+16])
	}
	return base64.StdEncoding.EncodeToString(out)
}

// layout builds random16 | lenField | msg | recv, padded to a multiple of 16 with k bytes
// (k = 1..16) whose values padVal chooses; padVal nil means proper PKCS#7 (value k).
func layout(msg []byte, lenField uint32, recv string, padVal func(k, i int) byte) []byte {
	b := make([]byte, 16, 64)
	b = binary.BigEndian.AppendUint32(b, lenField)
	b = append(b, msg...)
	b = append(b, recv...)
	k := 16 - len(b)%16
	for i := 0; i < k; i++ {
		v := byte(k)
		if padVal != nil {
			v = padVal(k, i)
		}
		b = append(b, v)
	}
	return b
}

func constPad(v byte) func(k, i int) byte { return func(int, int) byte { return v } }

func TestDecryptRejects(t *testing.T) {
	t.Parallel()
	c := newTest(t)

	cases := []struct {
		name  string
		enc   string
		is    error
		code  int
		tweak func(string) string
	}{
		{name: "bad base64", enc: "!!!notbase64", is: ErrMalformed, code: CodeDecodeBase64},
		{name: "empty ciphertext after decode", enc: "====", is: ErrMalformed, code: CodeDecodeBase64},
		{name: "not block multiple", enc: base64.StdEncoding.EncodeToString(make([]byte, 20)), is: ErrMalformed, code: CodeDecryptAES},
		{name: "short ciphertext", enc: base64.StdEncoding.EncodeToString(make([]byte, 15)), is: ErrMalformed, code: CodeDecryptAES},
		{name: "pad zero", enc: rawEncrypt(t, c, layout([]byte("hi"), 2, tCorp, constPad(0))), is: ErrMalformed, code: CodeDecryptAES},
		{name: "pad over 32", enc: rawEncrypt(t, c, layout([]byte("hi"), 2, tCorp+strings.Repeat("x", 40), constPad(33))), is: ErrMalformed, code: CodeDecryptAES},
		{name: "pad bytes differ", enc: rawEncrypt(t, c, layout([]byte("hi"), 2, tCorp, func(k, i int) byte {
			if i == 0 {
				return byte(k + 1)
			}
			return byte(k)
		})), is: ErrMalformed, code: CodeDecryptAES},
		{name: "length past buffer", enc: rawEncrypt(t, c, layout([]byte("hi"), 1<<31, tCorp, nil)), is: ErrMalformed, code: CodeIllegalBuffer},
		{name: "length max uint32", enc: rawEncrypt(t, c, layout([]byte("hi"), 0xffffffff, tCorp, nil)), is: ErrMalformed, code: CodeIllegalBuffer},
		{name: "length one past", enc: rawEncrypt(t, c, layout([]byte("hi"), uint32(2+len(tCorp)+1), tCorp, nil)), is: ErrMalformed, code: CodeIllegalBuffer},
		{name: "buffer shorter than header", enc: rawEncrypt(t, c, bytes.Repeat([]byte{16}, 32)), is: ErrMalformed, code: CodeIllegalBuffer},
		{name: "receiver mismatch", enc: rawEncrypt(t, c, layout([]byte("hi"), 2, "wxOTHERCORP0000000", nil)), is: ErrReceiverMismatch, code: CodeValidateReceiver},
		{name: "receiver prefix only", enc: rawEncrypt(t, c, layout([]byte("hi"), 2, tCorp[:10], nil)), is: ErrReceiverMismatch, code: CodeValidateReceiver},
		{name: "receiver with suffix", enc: rawEncrypt(t, c, layout([]byte("hi"), 2, tCorp+"x", nil)), is: ErrReceiverMismatch, code: CodeValidateReceiver},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts, nonce := "1409659813", "1372623149"
			sig := c.Signature(ts, nonce, tc.enc)
			for _, call := range []func() ([]byte, error){
				func() ([]byte, error) { return c.DecryptMessage(sig, ts, nonce, envelope(tc.enc)) },
				func() ([]byte, error) { return c.VerifyURL(sig, ts, nonce, tc.enc) },
			} {
				got, err := call()
				require.Error(t, err)
				assert.Nil(t, got)
				assert.ErrorIs(t, err, tc.is)
				var ce *Error
				require.ErrorAs(t, err, &ce)
				assert.Equal(t, tc.code, ce.Code)
			}
		})
	}
	// The well-formed layout built the same way decrypts: the table is not failing for another reason.
	enc := rawEncrypt(t, c, layout([]byte("hi"), 2, tCorp, nil))
	ts, nonce := "1", "2"
	got, err := c.DecryptMessage(c.Signature(ts, nonce, enc), ts, nonce, envelope(enc))
	require.NoError(t, err)
	assert.Equal(t, "hi", string(got))
}

// A message padded to 16 (pad value 17..32 is the case a 16-byte unpad check rejects) must decrypt.
func TestPaddingUpTo32(t *testing.T) {
	t.Parallel()
	c := newTest(t)
	for msgLen := 0; msgLen < 64; msgLen++ {
		msg := bytes.Repeat([]byte{'a'}, msgLen)
		out, err := c.EncryptMessage(msg, "1", "2")
		require.NoError(t, err)
		enc, _ := envelopeField(out, "Encrypt")
		raw, _ := base64.StdEncoding.DecodeString(string(enc))
		assert.Zero(t, len(raw)%32, "WeCom pads to 32-byte blocks")
		got, err := c.DecryptMessage(c.Signature("1", "2", string(enc)), "1", "2", out)
		require.NoError(t, err, "len %d", msgLen)
		assert.Equal(t, msg, got)
	}
}

func TestSignatureChecks(t *testing.T) {
	t.Parallel()
	c := newTest(t)
	out, err := c.EncryptMessage([]byte("<xml>x</xml>"), "1700000000", "abc")
	require.NoError(t, err)
	enc, _ := envelopeField(out, "Encrypt")
	sig := c.Signature("1700000000", "abc", string(enc))
	_, err = c.DecryptMessage(sig, "1700000000", "abc", out)
	require.NoError(t, err)
	assert.Equal(t, strings.ToLower(sig), sig, "lowercase hex")

	bad := []struct{ name, sig, ts, nonce string }{
		{"other timestamp", sig, "1700000001", "abc"},
		{"other nonce", sig, "1700000000", "abd"},
		{"flipped hex digit", flip(sig), "1700000000", "abc"},
		{"empty", "", "1700000000", "abc"},
		{"short", sig[:39], "1700000000", "abc"},
		{"not hex", strings.Repeat("z", 40), "1700000000", "abc"},
	}
	for _, tc := range bad {
		_, err := c.DecryptMessage(tc.sig, tc.ts, tc.nonce, out)
		assert.ErrorIs(t, err, ErrInvalidSignature, tc.name)
		var ce *Error
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, CodeValidateSignature, ce.Code)
		assert.NotErrorIs(t, err, ErrMalformed)
	}
	// A body whose Encrypt was altered fails the signature, not the decryption.
	tampered := bytes.Replace(out, enc[:4], []byte("AAAA"), 1)
	_, err = c.DecryptMessage(sig, "1700000000", "abc", tampered)
	assert.ErrorIs(t, err, ErrInvalidSignature)
}

func flip(s string) string {
	b := []byte(s)
	if b[0] == 'a' {
		b[0] = 'b'
	} else {
		b[0] = 'a'
	}
	return string(b)
}

func TestVerifyURLRestoresPlus(t *testing.T) {
	t.Parallel()
	// The official sample's echostr contains '+'; a framework decoding the query may turn it into ' '.
	v := loadVectors(t)[0]
	require.Contains(t, v.Encrypt, "+")
	c, err := New(v.Token, v.AESKey, v.ReceiverID)
	require.NoError(t, err)
	got, err := c.VerifyURL(v.MsgSignature, v.Timestamp, v.Nonce, strings.ReplaceAll(v.Encrypt, "+", " "))
	require.NoError(t, err)
	assert.Equal(t, v.Plaintext, string(got))
}

func TestReplayWindow(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	c := newTest(t, WithClock(func() time.Time { return now }), WithReplayWindow(5*time.Minute))
	for _, tc := range []struct {
		ts string
		ok bool
	}{
		{"1700000000", true}, {"1699999701", true}, {"1700000299", true},
		{"1699999699", false}, {"1700000301", false}, {"notanumber", false},
	} {
		out, err := c.EncryptMessage([]byte("m"), tc.ts, "n")
		if tc.ts == "notanumber" {
			require.Error(t, err, "EncryptMessage refuses a non-numeric timestamp")
			enc, err := c.encrypt([]byte("m"))
			require.NoError(t, err)
			out = envelope(enc)
		}
		enc, _ := envelopeField(out, "Encrypt")
		_, err = c.DecryptMessage(c.Signature(tc.ts, "n", string(enc)), tc.ts, "n", out)
		if tc.ok {
			assert.NoError(t, err, tc.ts)
			continue
		}
		assert.ErrorIs(t, err, ErrStaleTimestamp, tc.ts)
		assert.ErrorIs(t, err, ErrInvalidSignature, tc.ts)
	}
	// Off by default: an old timestamp is fine.
	c2 := newTest(t, WithClock(func() time.Time { return now }))
	out, _ := c2.EncryptMessage([]byte("m"), "1", "n")
	enc, _ := envelopeField(out, "Encrypt")
	_, err := c2.DecryptMessage(c2.Signature("1", "n", string(enc)), "1", "n", out)
	assert.NoError(t, err)
}

func TestEnvelopeParsing(t *testing.T) {
	t.Parallel()
	ok := []string{
		"<xml><Encrypt>QUJD</Encrypt></xml>",
		"  <xml><Encrypt> QUJD </Encrypt></xml>\n",
		"<?xml version=\"1.0\"?><xml><ToUserName><![CDATA[a]]></ToUserName><Encrypt><![CDATA[QUJD]]></Encrypt></xml>",
		"\xef\xbb\xbf<xml><Encrypt><![CDATA[QUJD]]></Encrypt><AgentID>1</AgentID></xml>",
	}
	for _, s := range ok {
		v, found := envelopeField([]byte(s), "Encrypt")
		assert.True(t, found, s)
		assert.Equal(t, "QUJD", string(v), s)
	}
	bad := []string{
		"", "<xml></xml>", "<Encrypt>QUJD</Encrypt>", "<xml><Encrypt>QUJD</xml>",
		"<xml><Encrypt>QUJD</Encrypt><Encrypt>QUJD</Encrypt></xml>",
		"<xml><Encrypt><![CDATA[QUJD</Encrypt></xml>",
		"<xml><Encrypt><![CDATA[QU]]>JD]]></Encrypt></xml>",
		"<xml><Encrypt>QU&amp;JD</Encrypt></xml>",
		"<xml><Encrypt><b>QUJD</b></Encrypt></xml>",
		"<?xml <xml><Encrypt>QUJD</Encrypt></xml>",
	}
	c := newTest(t)
	for _, s := range bad {
		_, found := envelopeField([]byte(s), "Encrypt")
		assert.False(t, found, s)
		_, err := c.DecryptMessage("x", "1", "2", []byte(s))
		assert.ErrorIs(t, err, ErrMalformed, s)
	}
}

func TestEncryptMessageArgs(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_123, 0)
	c := newTest(t, WithClock(func() time.Time { return now }))
	out, err := c.EncryptMessage([]byte("x"), "", "")
	require.NoError(t, err)
	ts, _ := envelopeField(out, "TimeStamp")
	nonce, _ := envelopeField(out, "Nonce")
	assert.Equal(t, "1700000123", string(ts))
	assert.NotEmpty(t, nonce)
	for _, bad := range [][2]string{{"12a", "n"}, {"1", "a]]>b"}, {"1", "a b"}, {"1", strings.Repeat("n", 65)}} {
		_, err := c.EncryptMessage([]byte("x"), bad[0], bad[1])
		assert.ErrorIs(t, err, ErrEncrypt, bad)
	}
	failing := newTest(t, WithRandom(strings.NewReader("short")))
	_, err = failing.EncryptMessage([]byte("x"), "1", "2")
	assert.ErrorIs(t, err, ErrEncrypt)
}

// Two encryptions of the same plaintext differ (random prefix) and both decrypt.
func TestEncryptIsRandomised(t *testing.T) {
	t.Parallel()
	c := newTest(t)
	a, err := c.EncryptMessage([]byte("same"), "1", "2")
	require.NoError(t, err)
	b, err := c.EncryptMessage([]byte("same"), "1", "2")
	require.NoError(t, err)
	assert.NotEqual(t, a, b)
}

func TestErrorsWrap(t *testing.T) {
	t.Parallel()
	c := newTest(t)
	_, err := c.DecryptMessage("0000000000000000000000000000000000000000", "1", "2", envelope("QUJD"))
	wrapped := errors.Join(errors.New("outer"), err)
	assert.ErrorIs(t, wrapped, ErrInvalidSignature)
	assert.NotErrorIs(t, wrapped, ErrMalformed)
	assert.NotErrorIs(t, wrapped, ErrStaleTimestamp)
	assert.Contains(t, err.Error(), "-40001")
	assert.NotContains(t, err.Error(), tKey)
	assert.NotContains(t, err.Error(), tToken)
}
