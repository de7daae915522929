package crypto

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGenerateKeys: 1000 fresh pairs each pass New, are alphanumeric of the documented lengths,
// decode strictly to 32 bytes, round-trip a callback, and never repeat.
func TestGenerateKeys(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	lastChars := map[byte]int{}
	for i := range 1000 {
		token, key := GenerateToken(), GenerateEncodingAESKey()
		require.Len(t, token, 32)
		require.Len(t, key, 43)
		for _, s := range []string{token, key} {
			require.Empty(t, strings.Trim(s, alnum), "only a-z, A-Z, 0-9: %q", s)
			require.False(t, seen[s], "repeated value %q", s)
			seen[s] = true
		}
		raw, err := base64.StdEncoding.Strict().DecodeString(key + "=")
		require.NoError(t, err, key)
		require.Len(t, raw, 32)
		lastChars[key[42]]++

		c, err := New(token, key, "ww7e3a9c0b5d1f2468")
		require.NoError(t, err, "run %d: token %q key %q", i, token, key)
		if i%100 == 0 {
			env, err := c.EncryptMessage([]byte("<xml>hi</xml>"), "1700000000", "n1")
			require.NoError(t, err)
			sig, _ := envelopeField(env, "MsgSignature")
			plain, err := c.DecryptMessage(string(sig), "1700000000", "n1", env)
			require.NoError(t, err)
			assert.Equal(t, "<xml>hi</xml>", string(plain))
		}
	}
	assert.Len(t, lastChars, len(keyLastChars), "every possible last character shows up in 1000 keys")
}
