package kf

import (
	"errors"
	"net/url"
	"regexp"
)

// redacted replaces secret values in every URL, error and log line this package produces.
const redacted = "REDACTED"

// secretValue finds the value of an access_token or corpsecret in a query string
// (access_token=…), a percent-encoded one (access_token%3D…) or a JSON object ("access_token":"…").
// It is compiled once and never changes.
//
// The value runs to the next separator of its form: & for a query, " for JSON, or whitespace and
// punctuation around it. A value may hold percent escapes (a secret with + or / in it), so an
// escape does not end it, except the escapes of those separators (%26 &, %22 ", %20 space, %27 ',
// %2C comma, %3B ;), which end it in a percent-encoded query.
var secretValue = regexp.MustCompile(`(?i)((?:access_token|corpsecret)(?:=|%3D|"\s*:\s*"))((?:[^&"\s;,'%]|%(?:[014-9a-f][0-9a-f]|2[13-589abd-f]|3[0-9ac-f]))*)`)

// redact removes access_token and corpsecret values from s (§3: never log or return
// them). It is applied to every error text and URL this package emits.
func redact(s string) string {
	if !containsFold(s, "access_token") && !containsFold(s, "corpsecret") {
		return s
	}
	return secretValue.ReplaceAllString(s, "${1}"+redacted)
}

// containsFold is a cheap ASCII case-insensitive substring test.
func containsFold(s, sub string) bool {
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		match := true
		for j := 0; j < n; j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != sub[j] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// sanitizeURL returns u with the values of access_token and corpsecret replaced.
func sanitizeURL(u string) string { return redact(u) }

// sanitizeError rebuilds a *url.Error at the head of err with a sanitised URL, so that even a caller
// who unwraps to the *url.Error and prints it sees no secret.
func sanitizeError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: sanitizeURL(ue.URL), Err: sanitizeInner(ue.Err)}
	}
	return err
}

// sanitizeInner handles url.Errors nested in url.Errors (redirect failures).
func sanitizeInner(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return &url.Error{Op: ue.Op, URL: sanitizeURL(ue.URL), Err: sanitizeInner(ue.Err)}
	}
	return err
}
