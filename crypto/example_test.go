package crypto_test

import (
	"fmt"
	"log"

	"github.com/wxkf/wxkf/crypto"
)

// A callback handler verifies and decrypts what WeCom posts (the official sample's values).
func ExampleNew() {
	// The Token, EncodingAESKey and corp id configured for the callback URL in the WeCom admin.
	c, err := crypto.New("QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7")
	if err != nil {
		log.Fatal(err)
	}

	// GET ?msg_signature&timestamp&nonce&echostr: answer with the plaintext.
	echo, err := c.VerifyURL("5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "1409659589", "263014780",
		"P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==")
	if err != nil {
		log.Fatal(err) // answer 403 for crypto.ErrInvalidSignature
	}
	fmt.Println(string(echo))

	// POST: the body is the <xml><Encrypt>…</Encrypt></xml> envelope.
	body := []byte("<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA[" +
		"RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==" +
		"]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>")
	plain, err := c.DecryptMessage("477715d11cdb4164915debcba66cb864d751f3e6", "1409659813", "1372623149", body)
	if err != nil {
		log.Fatal(err) // 403 for crypto.ErrInvalidSignature, 400 for crypto.ErrMalformed
	}
	ev, err := crypto.ParseEvent(plain)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ev.ToUserName, ev.MsgType, ev.CreateTime)
	// Output:
	// 1616140317555161061
	// wx5823bf96d3bd56c7 text 1409659813
}

// Fresh callback settings for the WeCom admin's 接收消息 → 设置API接收 form (what `wxkf keygen`
// prints): paste both there and into the bot's configuration.
func ExampleGenerateEncodingAESKey() {
	token, key := crypto.GenerateToken(), crypto.GenerateEncodingAESKey()
	_, err := crypto.New(token, key, "ww7e3a9c0b5d1f2468")
	fmt.Println(len(token), len(key), err)
	// Output: 32 43 <nil>
}
