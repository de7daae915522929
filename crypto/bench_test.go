package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"encoding/base64"
	"sort"
	"strings"
	"testing"
)

// A typical kf_msg_or_event callback: ~400 bytes of inner XML.
var benchInner = []byte("<xml><ToUserName><![CDATA[ww5823bf96d3bd56c7]]></ToUserName>" +
	"<CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType>" +
	"<Event><![CDATA[kf_msg_or_event]]></Event>" +
	"<Token><![CDATA[ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NRENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR" +
	"ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR]]></Token>" +
	"<OpenKfId><![CDATA[wkAJ2GCAAAZSfhHCt7IFSvLKtMPxyJTw]]></OpenKfId>" +
	"<AgentID><![CDATA[1000002]]></AgentID></xml>")

func benchSetup(b *testing.B) (*Crypto, string, []byte) {
	c, err := New(tToken, tKey, tCorp)
	if err != nil {
		b.Fatal(err)
	}
	enc, err := c.encrypt(benchInner)
	if err != nil {
		b.Fatal(err)
	}
	body := []byte("<xml><ToUserName><![CDATA[" + tCorp + "]]></ToUserName><Encrypt><![CDATA[" + enc +
		"]]></Encrypt><AgentID><![CDATA[1000002]]></AgentID></xml>")
	return c, enc, body
}

func BenchmarkDecryptMessage(b *testing.B) {
	c, enc, body := benchSetup(b)
	sig := c.Signature("1700000000", "1372623149", enc)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		out, err := c.DecryptMessage(sig, "1700000000", "1372623149", body)
		if err != nil || len(out) != len(benchInner) {
			b.Fatal(err)
		}
	}
}

// BenchmarkFloor is the unavoidable work on the same ciphertext: SHA-1 of the sorted parts,
// base64 decode and AES-CBC decrypt (cipher prepared once, as DecryptMessage does).
func BenchmarkFloor(b *testing.B) {
	c, enc, body := benchSetup(b)
	block, _ := aes.NewCipher(c.key[:])
	iv := c.key[:16]
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		parts := []string{tToken, "1700000000", "1372623149", enc}
		sort.Strings(parts)
		_ = sha1.Sum([]byte(strings.Join(parts, "")))
		raw, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			b.Fatal(err)
		}
		cipher.NewCBCDecrypter(block, iv).CryptBlocks(raw, raw)
	}
}

func BenchmarkEncryptMessage(b *testing.B) {
	c, _, _ := benchSetup(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchInner)))
	for b.Loop() {
		if _, err := c.EncryptMessage(benchInner, "1700000000", "1372623149"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseEvent reads the decrypted kf_msg_or_event of every callback.
func BenchmarkParseEvent(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseEvent(benchInner); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseEventXML is the same through encoding/xml, for comparison.
func BenchmarkParseEventXML(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseEventXML(benchInner); err != nil {
			b.Fatal(err)
		}
	}
}
