package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wxkf/wxkf/kf/kftest"
)

// TestMain keeps the developer's own bot settings (WECHATCOM_* in the shell that runs the tests)
// away from the commands under test: they read the environment, and a test must never reach the
// real WeCom. No goroutine may outlive the commands (doctor starts and stops a kf.Channel).
func TestMain(m *testing.M) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "WECHATCOM_") {
			_ = os.Unsetenv(k)
		}
	}
	goleak.VerifyTestMain(m)
}

// fixture is a fake WeCom and a config directory pointing at it.
type fixture struct {
	srv *kftest.Server
	dir string
}

// newFixture starts kftest and writes config.json for it; extra keys override the defaults.
func newFixture(t *testing.T, extra map[string]any) *fixture {
	t.Helper()
	srv := kftest.NewServer()
	t.Cleanup(srv.Close)
	f := &fixture{srv: srv, dir: t.TempDir()}
	cfg := map[string]any{
		"channel_type":            "wechatcom_kf", // chatgpt-on-wechat's other keys are ignored
		"wechatcom_corp_id":       srv.CorpID(),
		"wechatcom_kf_secret":     srv.Secret(),
		"wechatcom_kf_token":      srv.CallbackToken(),
		"wechatcom_kf_aes_key":    srv.EncodingAESKey(),
		"wechatcom_kf_api_base":   srv.URL(),
		"wechatcom_kf_cursor_dir": "state",
	}
	for k, v := range extra {
		if v == nil {
			delete(cfg, k)
		} else {
			cfg[k] = v
		}
	}
	writeJSON(t, filepath.Join(f.dir, "config.json"), cfg)
	return f
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o600))
}

// result is one run of the command.
type result struct {
	code           int
	stdout, stderr string
}

// runWxkf runs the command in-process.
func runWxkf(args ...string) result {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// run runs a subcommand against the fixture's config.
func (f *fixture) run(cmd string, args ...string) result {
	return runWxkf(append([]string{cmd, "--dir", f.dir}, args...)...)
}

// flat undoes the wrapping of t.fail's lines (indented by two spaces), for English assertions.
func flat(s string) string { return strings.ReplaceAll(s, "\n  ", " ") }

// noSecrets fails if any of the fixture's secrets shows in the output.
func (f *fixture) noSecrets(t *testing.T, r result) {
	t.Helper()
	for _, s := range []string{f.srv.Secret(), f.srv.CallbackToken(), f.srv.EncodingAESKey()} {
		assert.NotContains(t, r.stdout, s)
		assert.NotContains(t, r.stderr, s)
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, exitUsage, "Usage:"},
		{[]string{"help"}, exitOK, "wxkf keygen"},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"doctor", "-h"}, exitOK, "kf_account_auth_change"},
		{[]string{"doctor", "extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"accounts", "delete", "wkX"}, exitUsage, "cannot be undone: add --yes"},
		{[]string{"accounts", "add", "Bot"}, exitUsage, "add needs --avatar IMAGE"},
		{[]string{"accounts", "rename", "wkX"}, exitUsage, "rename takes 2 arguments"},
		{[]string{"accounts", "frob"}, exitUsage, `unknown action "frob"`},
		{[]string{"send", "hello"}, exitUsage, "--to EXTERNAL_USERID is required"},
		{[]string{"send", "--to", "wmX"}, exitUsage, "nothing to send"},
		{[]string{"send", "--to", "wmX", strings.Repeat("字", 4000)}, exitUsage, "the text needs 6 messages"},
	} {
		r := runWxkf(tc.args...)
		assert.Equal(t, tc.code, r.code, "%v", tc.args)
		assert.Contains(t, r.stdout+r.stderr, tc.want, "%v", tc.args)
	}
}

func TestParseInterspersed(t *testing.T) {
	t.Parallel()
	fs := flags(newTerm(&bytes.Buffer{}, &bytes.Buffer{}), "x", "x")
	a := fs.String("avatar", "", "")
	pos, err := parse(fs, []string{"add", "客服 小智", "--avatar", "a.png", "--", "--not-a-flag"})
	require.NoError(t, err)
	assert.Equal(t, []string{"add", "客服 小智", "--not-a-flag"}, pos)
	assert.Equal(t, "a.png", *a)
}

func TestWrap(t *testing.T) {
	t.Parallel()
	assert.Equal(t, []string{"one two", "three"}, wrap("one two three", 8, false))
	// Chinese: two columns a character, breaks between characters but not inside 「」 nor
	// before closing punctuation.
	assert.Equal(t, []string{"请在", "「应用管理」", "中加入。"}, wrap("请在「应用管理」中加入。", 12, true))
	assert.Equal(t, []string{"请在「应用管理」", "中加入。"}, wrap("请在「应用管理」中加入。", 16, true))
	assert.Equal(t, []string{"中文中文。", "中文"}, wrap("中文中文。中文", 8, true))
	// English keeps Chinese menu names whole.
	assert.Equal(t, []string{"Add it to", "企业可信IP → 配置."}, wrap("Add it to 企业可信IP → 配置.", 18, false))
	assert.Equal(t, []string{"Add it to", "企业可信IP →", "配置."}, wrap("Add it to 企业可信IP → 配置.", 16, false))
	long := "https://open.work.weixin.qq.com/devtool/query?e=60020"
	assert.Equal(t, []string{"see", long}, wrap("see "+long, 20, false), "a long word gets its own line")
	for _, l := range wrap(strings.Repeat("中文和 English 混排的提示，", 10), 30, true) {
		assert.LessOrEqual(t, len([]rune(l))*2, 60)
	}
}
