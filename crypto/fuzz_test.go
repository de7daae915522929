package crypto

import (
	"bytes"
	"testing"
)

// FuzzDecryptMessage feeds arbitrary bodies and query values: no panic, and any success must
// be a message that really was signed with the token and encrypted for the receiver.
func FuzzDecryptMessage(f *testing.F) {
	c, err := New(tToken, tKey, tCorp)
	if err != nil {
		f.Fatal(err)
	}
	for _, v := range loadVectors(f) {
		f.Add(v.MsgSignature, v.Timestamp, v.Nonce, envelope(v.Encrypt))
	}
	good, _ := c.EncryptMessage([]byte("<xml>hi</xml>"), "1", "2")
	enc, _ := envelopeField(good, "Encrypt")
	f.Add(c.Signature("1", "2", string(enc)), "1", "2", good)
	f.Add("", "", "", []byte("<xml><Encrypt><![CDATA[]]></Encrypt></xml>"))
	f.Fuzz(func(t *testing.T, sig, ts, nonce string, body []byte) {
		out, err := c.DecryptMessage(sig, ts, nonce, body)
		if err != nil {
			if out != nil {
				t.Fatal("output with an error")
			}
			return
		}
		e, ok := envelopeField(body, "Encrypt")
		if !ok || c.Signature(ts, nonce, string(e)) != sig {
			t.Fatal("accepted a message whose signature does not verify")
		}
		// VerifyURL over the same Encrypt must agree.
		out2, err := c.VerifyURL(sig, ts, nonce, string(e))
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("VerifyURL disagrees: %v", err)
		}
		_, _ = ParseEvent(out)
	})
}

// FuzzRoundTrip: EncryptMessage → DecryptMessage returns any plaintext (0..64 KB) unchanged.
func FuzzRoundTrip(f *testing.F) {
	c, err := New(tToken, tKey, tCorp)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(""), "1409659813", "1372623149")
	f.Add([]byte("<xml><Content><![CDATA[你好]]></Content></xml>"), "1", "n")
	f.Add(bytes.Repeat([]byte{0xff, 0}, 1000), "123", "abc")
	f.Fuzz(func(t *testing.T, plain []byte, ts, nonce string) {
		if len(plain) > 64<<10 {
			plain = plain[:64<<10]
		}
		if !allDigits(ts) {
			ts = "1700000000"
		}
		if !allAlnum(nonce) || len(nonce) > 64 {
			nonce = "nonce"
		}
		out, err := c.EncryptMessage(plain, ts, nonce)
		if err != nil {
			t.Fatal(err)
		}
		sig, _ := envelopeField(out, "MsgSignature")
		got, err := c.DecryptMessage(string(sig), ts, nonce, out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatal("round trip changed the plaintext")
		}
	})
}

// FuzzParseEvent: arbitrary decrypted XML never panics.
func FuzzParseEvent(f *testing.F) {
	f.Add([]byte("<xml><Event>kf_msg_or_event</Event><OpenKfId>wk1</OpenKfId><Token>t</Token></xml>"))
	f.Add([]byte("<xml><AuthAddOpenKfId><OpenKfId>a</OpenKfId></AuthAddOpenKfId></xml>"))
	f.Add([]byte("<xml><ToUserName><![CDATA[ww1]]></ToUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType>" +
		"<Event><![CDATA[kf_msg_or_event]]></Event><Token><![CDATA[tok]]></Token><OpenKfId><![CDATA[wk1]]></OpenKfId></xml>"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEvent(b)
		if err == nil && e.Event == EventKfMsgOrEvent && e.OpenKfID == "" {
			t.Fatal("kf_msg_or_event without OpenKfId accepted")
		}
		// The fast path agrees with encoding/xml wherever both read the document.
		fast, ok := parseFlatEvent(b)
		slow, serr := parseEventXML(b)
		if ok && serr == nil {
			if fast.ToUserName != slow.ToUserName || fast.CreateTime != slow.CreateTime || fast.MsgType != slow.MsgType ||
				fast.Event != slow.Event || fast.Token != slow.Token || fast.OpenKfID != slow.OpenKfID {
				t.Fatalf("fast path %+v, encoding/xml %+v", fast, slow)
			}
		}
	})
}
