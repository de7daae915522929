package crypto

import "crypto/rand"

const (
	alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	// keyLastChars are the alphanumeric base64 digits whose two low bits are zero: the 43rd
	// character of an EncodingAESKey carries the last 4 bits of the 32-byte key, and the 2 bits
	// left over stay zero so that strict base64 decoders accept the key too.
	keyLastChars = "AEIMQUYcgkosw048"
	keyLen       = 43
)

// GenerateToken returns a fresh callback Token for the WeCom admin's 接收消息 settings: 32 letters
// and digits (the most the admin accepts, doc 94699) drawn uniformly from crypto/rand, about 190
// bits. Paste it together with a key from GenerateEncodingAESKey; New accepts both.
func GenerateToken() string {
	return randomAlnum(make([]byte, maxTokenLen))
}

// GenerateEncodingAESKey returns a fresh EncodingAESKey: 43 characters of a-z, A-Z and 0-9, as the
// callback crypto requires (doc 91144), that are the unpadded base64 of a 32-byte AES-256 key
// drawn from crypto/rand (about 254 bits: each alphanumeric base64 string of that length is
// equally likely). New accepts it, and so does any WXBizMsgCrypt implementation, including strict
// base64 decoders.
func GenerateEncodingAESKey() string {
	b := make([]byte, keyLen)
	randomAlnum(b[:keyLen-1])
	var last [1]byte
	_, _ = rand.Read(last[:]) // crypto/rand.Read never fails: it crashes the program instead
	b[keyLen-1] = keyLastChars[last[0]&15]
	return string(b)
}

// randomAlnum fills b with letters and digits drawn uniformly from crypto/rand (bytes of 248 and
// above are drawn again, so that each of the 62 characters is equally likely) and returns it.
func randomAlnum(b []byte) string {
	buf := make([]byte, len(b)+len(b)/4+8)
	for i := 0; i < len(b); {
		_, _ = rand.Read(buf) // crypto/rand.Read never fails: it crashes the program instead
		for _, r := range buf {
			if r >= 248 { // 248 = 4 × 62
				continue
			}
			b[i] = alnum[r%62]
			if i++; i == len(b) {
				break
			}
		}
	}
	return string(b)
}
