package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wxkf/wxkf/config"
	"github.com/wxkf/wxkf/crypto"
	"github.com/wxkf/wxkf/kf"
)

// loadConfig reads the configuration as examples/echo does and checks the callback settings with
// crypto.New, so that a Token or key the callback would refuse is reported here, naming the key.
func loadConfig(dir string) (*config.Config, error) {
	cfg, err := config.Load(dir)
	if err != nil {
		return nil, err
	}
	if _, err := crypto.New(cfg.Token, cfg.AESKey, cfg.CorpID); err != nil {
		key := config.KeyAESKey
		if !strings.Contains(err.Error(), "EncodingAESKey") {
			key = config.KeyToken
		}
		return nil, fmt.Errorf("config: %s: %w", key, err)
	}
	return cfg, nil
}

// configHint is the fix for a configuration error, chosen by the key it names.
func configHint(err error) *hint {
	msg := err.Error()
	switch {
	case strings.Contains(msg, config.KeyCorpID):
		return &hint{
			EN: "Set wechatcom_corp_id (or WECHATCOM_CORP_ID) to the corp id from " + enCorpID + ".",
			ZH: "请将 wechatcom_corp_id（或环境变量 WECHATCOM_CORP_ID）设为" + zhCorpID + "。",
		}
	case strings.Contains(msg, config.KeySecret):
		return &hint{
			EN: "Set wechatcom_kf_secret (or WECHATCOM_KF_SECRET) to the secret from " + enSecret + ".",
			ZH: "请将 wechatcom_kf_secret（或环境变量 WECHATCOM_KF_SECRET）设为" + zhSecret + "中的 Secret。",
		}
	case strings.Contains(msg, config.KeyToken), strings.Contains(msg, config.KeyAESKey):
		return &hint{
			EN: "Run wxkf keygen and paste its Token and EncodingAESKey both into " + enCallback +
				" and into config.json (wechatcom_kf_token, wechatcom_kf_aes_key) or the environment.",
			ZH: "请运行 wxkf keygen，把生成的 Token 和 EncodingAESKey 同时填入" + zhCallback +
				"，以及 config.json（wechatcom_kf_token、wechatcom_kf_aes_key）或环境变量。",
		}
	case strings.Contains(msg, "config.json"):
		return &hint{
			EN: "Fix config.json: it must be one JSON object whose values are strings, numbers or booleans.",
			ZH: "请修正 config.json：它必须是一个 JSON 对象，值为字符串、数字或布尔值。",
		}
	}
	return &hint{
		EN: "Fix the value named above in config.json or in its environment variable (the key in upper case).",
		ZH: "请在 config.json 或对应的环境变量（键名的大写形式）中修正上面提到的值。",
	}
}

// configSource says where the configuration came from, for the config check.
func configSource(dir string) string {
	path := filepath.Join(dir, "config.json")
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if _, err := os.Stat(path); err != nil {
		return "environment only (no " + path + ")"
	}
	return path + " and the environment"
}

// newClient is the API client of cfg, with the bounds a command line wants: short attempts and
// few retries, so that a wrong setting is reported in seconds.
func newClient(cfg *config.Config) (*kf.Client, error) {
	return kf.NewClient(cfg.CorpID, cfg.Secret,
		kf.WithBaseURL(cfg.APIBase),
		kf.WithTimeout(10*time.Second),
		kf.WithRetry(2, 500*time.Millisecond, 2*time.Second))
}

// connect loads the configuration and makes the client for commands other than doctor; on
// failure it has printed the problem and returns nil.
func connect(t *term, dir string) *kf.Client {
	cfg, err := loadConfig(dir)
	if err != nil {
		t.fail(err.Error(), configHint(err))
		return nil
	}
	cl, err := newClient(cfg)
	if err != nil {
		t.fail(err.Error(), nil)
		return nil
	}
	return cl
}

// connect bounds the command by --timeout, loads the configuration and makes the client. When
// the client is nil the problem has been printed; cancel must be called either way.
func (c *configFlags) connect(ctx context.Context, t *term) (context.Context, context.CancelFunc, *kf.Client) {
	ctx, cancel := withTimeout(ctx, c.timeout)
	return ctx, cancel, connect(t, c.dir)
}

// withTimeout bounds a command.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// managedAccounts lists the accounts and keeps those this app may manage (manage_privilege).
func managedAccounts(ctx context.Context, cl *kf.Client) (all, managed []kf.Account, err error) {
	all, err = cl.AllAccounts(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, a := range all {
		if a.ManagePrivilege {
			managed = append(managed, a)
		}
	}
	return all, managed, nil
}

// noAccountHint is the fix when the app manages no account.
var noAccountHint = &hint{
	EN: "Create one with: wxkf accounts add NAME --avatar IMAGE, or give the app existing ones: " + enKfManaged + ".",
	ZH: "可用 wxkf accounts add 名称 --avatar 图片 新建，或在" + zhKfManaged + "中为该应用选择已有客服账号。",
}

// pickAccount returns the account a command acts on: openKfID when given, else the only account
// the app manages. On failure it has printed why.
func pickAccount(ctx context.Context, t *term, cl *kf.Client, openKfID string) (kf.Account, bool) {
	all, managed, err := managedAccounts(ctx, cl)
	if err != nil {
		t.fail(explain(err))
		return kf.Account{}, false
	}
	if openKfID != "" {
		for _, a := range all {
			if a.OpenKfID == openKfID {
				return a, true
			}
		}
		t.fail(fmt.Sprintf("no account %s among the %d this app sees", openKfID, len(all)), &hint{
			EN: "Use an open_kfid that wxkf accounts lists.",
			ZH: "请使用 wxkf accounts 列出的 open_kfid。",
		})
		return kf.Account{}, false
	}
	switch len(managed) {
	case 0:
		t.fail("this app manages no customer-service account", noAccountHint)
		return kf.Account{}, false
	case 1:
		return managed[0], true
	}
	t.fail(fmt.Sprintf("this app manages %d accounts: choose one with --kf", len(managed)), nil)
	for _, a := range managed {
		t.printf("  %s  %s\n", a.OpenKfID, a.Name)
	}
	return kf.Account{}, false
}
