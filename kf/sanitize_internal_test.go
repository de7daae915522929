package kf

import (
	"errors"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"https://qyapi.weixin.qq.com/cgi-bin/kf/sync_msg?access_token=TOK123", "https://qyapi.weixin.qq.com/cgi-bin/kf/sync_msg?access_token=REDACTED"},
		{"/cgi-bin/gettoken?corpid=ww1&corpsecret=S3CR3T", "/cgi-bin/gettoken?corpid=ww1&corpsecret=REDACTED"},
		{"/cgi-bin/gettoken?corpsecret=S3CR3T&corpid=ww1", "/cgi-bin/gettoken?corpsecret=REDACTED&corpid=ww1"},
		{"/x?ACCESS_TOKEN=T&media_id=m", "/x?ACCESS_TOKEN=REDACTED&media_id=m"},
		{"/x?access_token%3DT%26a", "/x?access_token%3DREDACTED%26a"},
		{`{"access_token":"TOK","expires_in":7200}`, `{"access_token":"REDACTED","expires_in":7200}`},
		{`{"access_token" : "TOK"}`, `{"access_token" : "REDACTED"}`},
		{`Get "http://h/p?access_token=T": dial tcp`, `Get "http://h/p?access_token=REDACTED": dial tcp`},
		{"no secrets here", "no secrets here"},
		{"access_token= leading space", "access_token=REDACTED leading space"},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, redact(tc.in), tc.in)
	}
}

func TestSanitizeError(t *testing.T) {
	t.Parallel()
	inner := errors.New("connection refused")
	err := &url.Error{Op: "Get", URL: "http://h/p?access_token=SECRETTOKEN", Err: &url.Error{Op: "Get", URL: "http://h/q?corpsecret=SEC", Err: inner}}
	s := sanitizeError(err)
	assert.NotContains(t, s.Error(), "SECRETTOKEN")
	assert.NotContains(t, s.Error(), "SEC\"")
	assert.ErrorIs(t, s, inner)
	var ue *url.Error
	assert.ErrorAs(t, s, &ue)
	assert.NotContains(t, ue.URL, "SECRETTOKEN")
}

func TestTokenStoreKeyHidesSecret(t *testing.T) {
	t.Parallel()
	k1 := tokenStoreKey("ww1", "the-secret-value")
	k2 := tokenStoreKey("ww1", "another-secret")
	assert.NotContains(t, k1, "the-secret-value")
	assert.Contains(t, k1, "ww1")
	assert.NotEqual(t, k1, k2, "one token per (corpid, secret) (§3)")
	assert.Equal(t, k1, tokenStoreKey("ww1", "the-secret-value"))
	assert.NotEqual(t, tokenStoreKey("ww1a", "b"), tokenStoreKey("ww1", "ab"), "corpid and secret are separated")
}

func TestDispositionFilename(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		``:                                "",
		`attachment; filename="a.jpg"`:    "a.jpg",
		`attachment; filename=a.jpg`:      "a.jpg",
		`attachment; filename="照片 1.jpg"`: "照片 1.jpg",
		`attachment; filename*=UTF-8''%E7%85%A7.png`: "照.png",
		`attachment; filename="../../etc/passwd"`:    "passwd",
		`attachment; filename="..\\..\\x.exe"`:       "x.exe",
		`attachment; filename=".."`:                  "",
		`attachment; filename="a.jpg`:                "a.jpg",
		`attachment; filename="a` + "\x00" + `b"`:    "",
		`attachment`:                      "",
		`garbage; filename=x.bin; size=3`: "x.bin",
	}
	for in, want := range cases {
		assert.Equal(t, want, dispositionFilename(in), in)
	}
}
