package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/wxkf/wxkf/config"
	"github.com/wxkf/wxkf/crypto"
)

const keygenSynopsis = `keygen [--json]

Prints a fresh callback Token (32 letters and digits) and EncodingAESKey (43 characters),
from crypto/rand. Paste both into the WeCom admin (应用管理 → 应用 → your app → 接收消息 →
设置API接收) and into your configuration. The two lines on stdout are in the environment's
form, so "wxkf keygen >> .env" keeps them; --json prints config.json keys instead.`

// keygen prints a fresh Token and EncodingAESKey: the values on stdout, the instructions on stderr.
func keygen(_ context.Context, t *term, args []string) int {
	fs := flags(t, "keygen", keygenSynopsis)
	asJSON := fs.Bool("json", false, `print {"wechatcom_kf_token": …, "wechatcom_kf_aes_key": …} for config.json`)
	if status, ok := parseFlagsOnly(t, fs, args); !ok {
		return status
	}
	token, key := crypto.GenerateToken(), crypto.GenerateEncodingAESKey()
	if *asJSON {
		b, _ := json.MarshalIndent(map[string]string{config.KeyToken: token, config.KeyAESKey: key}, "", "  ")
		t.printf("%s\n", b)
		return exitOK
	}
	fmt.Fprintf(t.stderr, "Paste both into the WeCom admin: %s\n", enCallback)
	fmt.Fprintf(t.stderr, "将两项填入企业微信管理后台：%s\n", zhCallback)
	fmt.Fprintf(t.stderr, "and into config.json (%s, %s) or the environment:\n\n", config.KeyToken, config.KeyAESKey)
	t.printf("WECHATCOM_KF_TOKEN=%s\n", token)
	t.printf("WECHATCOM_KF_AES_KEY=%s\n", key)
	fmt.Fprintf(t.stderr, "\nThe admin checks the URL when you save: start the bot first, then run wxkf doctor.\n")
	return exitOK
}
