package kf

import (
	"fmt"
	"io"
	"log/slog"
)

// String describes the configuration with its secrets (Secret, Token, EncodingAESKey) redacted.
// Format, GoString and LogValue do the same, so no fmt verb and no slog handler prints a secret.
func (c Config) String() string {
	return fmt.Sprintf("kf.Config{CorpID:%q Secret:%s Token:%s EncodingAESKey:%s}",
		c.CorpID, mask(c.Secret), mask(c.Token), mask(c.EncodingAESKey))
}

// GoString is String, for %#v.
func (c Config) GoString() string { return c.String() }

// Format writes String for every verb.
func (c Config) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// LogValue logs the corp id and whether each secret is set, never the secrets.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("corp_id", c.CorpID),
		slog.String("secret", mask(c.Secret)),
		slog.String("token", mask(c.Token)),
		slog.String("encoding_aes_key", mask(c.EncodingAESKey)),
	)
}

// String describes the client by its corp id; the secret and tokens are never printed.
func (c *Client) String() string {
	if c == nil {
		return "kf.Client(nil)"
	}
	return fmt.Sprintf("kf.Client{CorpID:%q Secret:%s}", c.corpID, mask(c.secret))
}

// GoString is String, for %#v.
func (c *Client) GoString() string { return c.String() }

// Format writes String for every verb, so %+v cannot reach the secret in the client's fields.
func (c *Client) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// LogValue logs the corp id only.
func (c *Client) LogValue() slog.Value {
	if c == nil {
		return slog.StringValue("kf.Client(nil)")
	}
	return slog.GroupValue(slog.String("corp_id", c.corpID), slog.String("secret", mask(c.secret)))
}

func mask(s string) string {
	if s == "" {
		return `""`
	}
	return redacted
}
