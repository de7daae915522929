package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/cursor"
	"github.com/wxkf/wxkf/cursor/redis"
	"github.com/wxkf/wxkf/cursor/redis/redistest"
	"github.com/wxkf/wxkf/kf"
)

// jsonReport is the --json contract, spelled out independently of the report type.
type jsonReport struct {
	OK     bool `json:"ok"`
	Checks []struct {
		Name    string   `json:"name"`
		Status  string   `json:"status"`
		Summary string   `json:"summary"`
		Details []string `json:"details"`
		ErrCode int      `json:"errcode"`
		Fix     *struct {
			EN string `json:"en"`
			ZH string `json:"zh"`
		} `json:"fix"`
	} `json:"checks"`
	Accounts []struct {
		OpenKfID string `json:"open_kfid"`
		Name     string `json:"name"`
		Managed  bool   `json:"manage_privilege"`
	} `json:"accounts"`
}

// doctorJSON runs doctor --json and parses its output.
func (f *fixture) doctorJSON(t *testing.T, args ...string) (jsonReport, result) {
	t.Helper()
	r := f.run("doctor", append([]string{"--json"}, args...)...)
	var rep jsonReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), r.stdout)
	f.noSecrets(t, r)
	return rep, r
}

// statuses is name → status of every check, in order.
func statuses(rep jsonReport) []string {
	var out []string
	for _, c := range rep.Checks {
		out = append(out, c.Name+":"+c.Status)
	}
	return out
}

// printedFix asserts that the text output shows the fix exactly, wrapped as doctor wraps it.
func printedFix(t *testing.T, out, indent, en, zh string) {
	t.Helper()
	for _, l := range wrap("fix: "+en, lineWidth-len(indent), false) {
		assert.Contains(t, out, indent+l+"\n")
	}
	for _, l := range wrap("修复："+zh, lineWidth-len(indent), true) {
		assert.Contains(t, out, indent+l+"\n")
	}
}

const doctorIndent = "            " // 2 + len("callback") + 2

// printedLine is how doctor prints a check's line: mark, name, the summary wrapped under the indent.
func printedLine(mark, name, summary string) string {
	var b strings.Builder
	for i, l := range wrap(summary, lineWidth-len(doctorIndent), false) {
		if i == 0 {
			b.WriteString(mark + " " + name + strings.Repeat(" ", len(doctorIndent)-2-len(name)) + l + "\n")
		} else {
			b.WriteString(doctorIndent + l + "\n")
		}
	}
	return b.String()
}

func TestDoctorAllPass(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	second := f.srv.AddAccount("售后客服")

	r := f.run("doctor")
	f.noSecrets(t, r)
	require.Equal(t, exitOK, r.code, r.stdout)
	for _, want := range []string{
		printedLine("✔", "config", filepath.Join(f.dir, "config.json")+" and the environment"),
		"✔ gettoken  WeCom accepts the corp id and secret\n",
		"✔ accounts  2 accounts\n",
		doctorIndent + "售后客服  " + second + "\n",
		"✔ callback  a local handler with this config answers a signed GET and POST\n",
		printedLine("✔", "cursors", "none yet: the bot creates "+filepath.Join(f.dir, "state")+" at its first start"),
		"– redis     not configured: one process, cursors in files\n",
		"All checks passed.",
	} {
		assert.Contains(t, r.stdout, want)
	}
	assert.NotContains(t, r.stdout, "\x1b[", "no colour when stdout is not a terminal")
	_, err := os.Stat(filepath.Join(f.dir, "state"))
	assert.ErrorIs(t, err, os.ErrNotExist, "doctor does not create the cursor dir")

	rep, r := f.doctorJSON(t)
	require.Equal(t, exitOK, r.code)
	assert.True(t, rep.OK)
	assert.Equal(t, []string{"config:ok", "gettoken:ok", "accounts:ok", "callback:ok", "cursors:ok", "redis:skip"}, statuses(rep))
	require.Len(t, rep.Accounts, 2)
	assert.Equal(t, f.srv.OpenKfID(), rep.Accounts[0].OpenKfID)
	assert.Equal(t, "售后客服", rep.Accounts[1].Name)
	assert.True(t, rep.Accounts[1].Managed)
}

// TestDoctorWeComRefusals injects each refusal the issue names into kftest and checks the exact fix
// doctor prints for it, in the text output and in --json, and the exit status.
func TestDoctorWeComRefusals(t *testing.T) {
	t.Parallel()
	const (
		ipMsg = "not allow to access from your ip, hint: [1700000000_1_abc], from ip: 203.0.113.7, more info at https://open.work.weixin.qq.com/devtool/query?e=60020"
		token = "/cgi-bin/gettoken"
		list  = "/cgi-bin/kf/account/list"
	)
	for _, tc := range []struct {
		path, errmsg, check, summary, en, zh string
		code                                 int
	}{
		{
			path: token, code: 60020, errmsg: ipMsg, check: checkToken,
			summary: "WeCom refuses calls from this server's IP 203.0.113.7 (60020)",
			en: "Add 203.0.113.7 to the app's trusted IPs: 应用管理 → 应用 → your app → 企业可信IP (at the bottom of the page) → 配置. " +
				"It takes effect about a minute later. If the console asks, set the callback URL first (应用管理 → 应用 → your app → 接收消息 → 设置API接收).",
			zh: "请在「应用管理」→「应用」→ 你的自建应用 → 页面底部「企业可信IP」→「配置」中加入 203.0.113.7，约 1 分钟后生效。" +
				"如后台提示，请先在「应用管理」→「应用」→ 你的自建应用 →「接收消息」→「设置API接收」中设置回调 URL。",
		},
		{
			path: token, code: 40001, errmsg: "invalid credential", check: checkToken,
			summary: "WeCom rejected the secret (40001)",
			en: "wechatcom_kf_secret is wrong. Use the secret of the self-built app that calls the WeChat Customer Service API: " +
				"应用管理 → 应用 → your app → Secret → 查看 (WeCom sends it to the admin's phone). Copy all of it. " +
				"Don't retry in a loop: repeated wrong secrets get this IP blocked for an hour.",
			zh: "wechatcom_kf_secret 不正确。请使用调用微信客服接口的自建应用的 Secret：「应用管理」→「应用」→ 你的自建应用 →「Secret」→「查看」" +
				"（发送到管理员手机企业微信上查看）。请完整复制。不要反复重试：多次使用错误的 Secret 会使本 IP 被封禁一小时。",
		},
		{
			path: token, code: 40013, errmsg: "invalid corpid", check: checkToken,
			summary: "WeCom does not know this corp id (40013)",
			en:      "wechatcom_corp_id is wrong. Copy it from 我的企业 → 企业信息 → 企业ID (at the bottom of the page).",
			zh:      "wechatcom_corp_id 不正确。请从「我的企业」→「企业信息」页面最下方的「企业ID」复制。",
		},
		{
			path: list, code: 95011, errmsg: "already use in wecom", check: checkAccounts,
			summary: "edition mismatch: this corp uses 微信客服 inside WeCom (95011)",
			en: "The call came as for the standalone 微信客服 admin. Use the corp id and the secret of a self-built WeCom app " +
				"(应用管理 → 应用 → your app → Secret → 查看 (WeCom sends it to the admin's phone)), and add that app under 微信客服 → 可调用接口的应用.",
			zh: "本次调用使用的是独立版微信客服的身份。请使用企业微信的企业ID和自建应用的 Secret（「应用管理」→「应用」→ 你的自建应用 →「Secret」→「查看」" +
				"（发送到管理员手机企业微信上查看）），并在「微信客服」→「可调用接口的应用」中添加该应用。",
		},
		{
			path: list, code: 95012, errmsg: "not use in wecom", check: checkAccounts,
			summary: "edition mismatch: this corp uses 微信客服 outside WeCom (95012)",
			en: "Either start using WeChat Customer Service in the WeCom admin (微信客服) and add your self-built app under 微信客服 → 可调用接口的应用, " +
				"or use the corp id and secret of the standalone 微信客服 admin (开发配置).",
			zh: "请在企业微信管理后台启用「微信客服」并在「微信客服」→「可调用接口的应用」中添加你的自建应用，或改用独立版微信客服管理后台「开发配置」中的企业ID和 Secret。",
		},
		{
			path: list, code: 48002, errmsg: "api forbidden", check: checkAccounts,
			summary: "this app may not call the WeChat Customer Service API (48002)",
			en: "Add the app under 微信客服 → 可调用接口的应用, then give it at least one account: " +
				"通过API管理会话消息 → 企业内部开发 → your app → 可管理的客服账号. Since 2023-12-01 a system app's secret no longer works for this; use a self-built app's.",
			zh: "请在「微信客服」→「可调用接口的应用」中添加该应用，并在「通过API管理会话消息」→「企业内部开发」→ 你的自建应用 →「可管理的客服账号」中至少选择一个客服账号。" +
				"自 2023-12-01 起不再支持用系统应用的 Secret 调用，请使用自建应用的 Secret。",
		},
		{
			path: list, code: 95017, errmsg: "api forbidden", check: checkAccounts,
			summary: "the WeChat Customer Service API is switched off (95017)",
			en:      "Turn it on: 微信客服 → 通过API管理微信客服账号, and let your app manage the accounts (通过API管理会话消息 → 企业内部开发 → your app → 可管理的客服账号).",
			zh:      "请在「微信客服」→「通过API管理微信客服账号」中开启，并在「通过API管理会话消息」→「企业内部开发」→ 你的自建应用 →「可管理的客服账号」中为你的自建应用选择客服账号。",
		},
	} {
		t.Run(fmt.Sprintf("%s-%d", tc.check, tc.code), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, nil)
			f.srv.FailWith(tc.path, tc.code, tc.errmsg)

			r := f.run("doctor")
			f.noSecrets(t, r)
			assert.Equal(t, exitFail, r.code)
			assert.Contains(t, r.stdout, printedLine("✘", tc.check, tc.summary))
			printedFix(t, r.stdout, doctorIndent, tc.en, tc.zh)
			assert.Contains(t, r.stdout, "1 check failed. Fix it and run wxkf doctor again.")

			rep, r := f.doctorJSON(t)
			assert.Equal(t, exitFail, r.code)
			assert.False(t, rep.OK)
			want := []string{"config:ok", "gettoken:ok", "accounts:fail", "callback:ok", "cursors:ok", "redis:skip"}
			if tc.check == checkToken {
				want[1], want[2] = "gettoken:fail", "accounts:skip"
			}
			assert.Equal(t, want, statuses(rep))
			for _, c := range rep.Checks {
				if c.Name != tc.check {
					continue
				}
				assert.Equal(t, tc.summary, c.Summary)
				assert.Equal(t, tc.code, c.ErrCode)
				require.NotNil(t, c.Fix)
				assert.Equal(t, tc.en, c.Fix.EN)
				assert.Equal(t, tc.zh, c.Fix.ZH)
			}
		})
	}
}

// TestDoctorTwoFailures: the IP is not trusted and the cursor file is corrupt; both are reported,
// in order, and the later checks still run.
func TestDoctorTwoFailures(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.srv.FailWith("/cgi-bin/gettoken", 60020, "not allow to access from your ip, from ip: 198.51.100.23")
	state := filepath.Join(f.dir, "state")
	require.NoError(t, os.Mkdir(state, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(state, cursor.CursorFileName), []byte(`{"wk1": 42`), 0o600))

	r := f.run("doctor")
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stdout, "✘ gettoken  WeCom refuses calls from this server's IP 198.51.100.23 (60020)\n")
	assert.Contains(t, r.stdout, "– accounts  skipped: needs gettoken\n")
	assert.Contains(t, r.stdout, "✔ callback  ")
	assert.Contains(t, r.stdout, printedLine("✘", "cursors", filepath.Join(state, cursor.CursorFileName)+": cursor: corrupt state file: unexpected end of JSON input"))
	printedFix(t, r.stdout, doctorIndent,
		"The bot will not start on a corrupt cursor file: it never reads one as empty, which would replay 3 days of messages. "+
			"Restore the file from a backup, or move it away to start from the last 3 days (skip-history then applies).",
		"游标文件损坏时机器人不会启动：它不会把损坏的文件当作空文件，否则会重放 3 天内的消息。请从备份恢复该文件，或将其移走以从最近 3 天开始（此时按跳过历史消息的设置处理）。")
	assert.Contains(t, r.stdout, "2 checks failed. Fix them in order and run wxkf doctor again.")
	if testing.Verbose() {
		t.Logf("doctor output:\n%s", r.stdout)
	}
}

func TestDoctorConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		extra    map[string]any
		summary  string
		fixStart string
	}{
		{"no secret", map[string]any{"wechatcom_kf_secret": nil},
			"config: wechatcom_kf_secret is required (set it in config.json or WECHATCOM_KF_SECRET)",
			"Set wechatcom_kf_secret (or WECHATCOM_KF_SECRET) to the secret from 应用管理 → 应用 → your app → Secret → 查看"},
		{"no corp id", map[string]any{"wechatcom_corp_id": ""},
			"config: wechatcom_corp_id is required (set it in config.json or WECHATCOM_CORP_ID)",
			"Set wechatcom_corp_id (or WECHATCOM_CORP_ID) to the corp id from 我的企业 → 企业信息 → 企业ID"},
		{"short key", map[string]any{"wechatcom_kf_aes_key": "abc"},
			"config: wechatcom_kf_aes_key must be 43 characters, got 3",
			"Run wxkf keygen and paste its Token and EncodingAESKey both into 应用管理 → 应用 → your app → 接收消息 → 设置API接收"},
		{"bad token", map[string]any{"wechatcom_kf_token": "has space"},
			"config: wechatcom_kf_token: crypto: token must be letters or digits only (byte 3 is not)",
			"Run wxkf keygen"},
		{"bad key", map[string]any{"wechatcom_kf_aes_key": strings.Repeat("!", 43)},
			"config: wechatcom_kf_aes_key: crypto: invalid EncodingAESKey: EncodingAESKey is not base64 of 32 bytes (-40004)",
			"Run wxkf keygen"},
	} {
		f := newFixture(t, tc.extra)
		rep, r := f.doctorJSON(t)
		assert.Equal(t, exitFail, r.code, tc.name)
		assert.Equal(t, []string{"config:fail", "gettoken:skip", "accounts:skip", "callback:skip", "cursors:skip", "redis:skip"}, statuses(rep), tc.name)
		assert.Contains(t, rep.Checks[0].Summary, tc.summary, tc.name)
		require.NotNil(t, rep.Checks[0].Fix, tc.name)
		assert.True(t, strings.HasPrefix(rep.Checks[0].Fix.EN, tc.fixStart), "%s: %s", tc.name, rep.Checks[0].Fix.EN)
		assert.Zero(t, f.srv.Calls("/cgi-bin/gettoken"), "nothing is asked of WeCom with a broken config")
	}

	// Malformed config.json: the file is named.
	f := newFixture(t, nil)
	require.NoError(t, os.WriteFile(filepath.Join(f.dir, "config.json"), []byte("{not json"), 0o600))
	r := f.run("doctor")
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stdout, "✘ config    config: "+filepath.Join(f.dir, "config.json")+":")
	printedFix(t, r.stdout, doctorIndent, "Fix config.json: it must be one JSON object whose values are strings, numbers or booleans.",
		"请修正 config.json：它必须是一个 JSON 对象，值为字符串、数字或布尔值。")
}

// TestDoctorAccounts: no account, or none this app may manage, is a failure with the way out.
func TestDoctorAccounts(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.srv.Handle("/cgi-bin/kf/account/list", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"errcode":0,"errmsg":"ok","account_list":[{"open_kfid":"wkOther","name":"别的应用的客服","manage_privilege":false}]}`))
	}))
	rep, r := f.doctorJSON(t)
	assert.Equal(t, exitFail, r.code)
	c := rep.Checks[2]
	assert.Equal(t, "this app manages none of the 1 accounts", c.Summary)
	assert.Equal(t, []string{"别的应用的客服  wkOther  (not managed by this app: it cannot receive or send)"}, c.Details)
	assert.Equal(t, "Create one with: wxkf accounts add NAME --avatar IMAGE, or give the app existing ones: "+
		"通过API管理会话消息 → 企业内部开发 → your app → 可管理的客服账号.", c.Fix.EN)

	f.srv.Handle("/cgi-bin/kf/account/list", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"errcode":0,"errmsg":"ok","account_list":[]}`))
	}))
	rep, _ = f.doctorJSON(t)
	assert.Equal(t, "no customer-service account is visible to this app", rep.Checks[2].Summary)
}

// TestDoctorCallbackURL checks a running bot: the same settings pass; another Token, a wrong path,
// a non-Channel handler and a dead address each fail with their own fix.
func TestDoctorCallbackURL(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	bot := func(token string) string {
		ch, err := kf.NewChannel(kf.Config{CorpID: f.srv.CorpID(), Secret: f.srv.Secret(), Token: token, EncodingAESKey: f.srv.EncodingAESKey()},
			kf.WithStateDir(t.TempDir()), kf.WithClientOptions(kf.WithBaseURL(f.srv.URL())))
		require.NoError(t, err)
		t.Cleanup(func() { _ = ch.Shutdown(context.Background()) })
		mux := http.NewServeMux()
		mux.Handle("/wxkf/", ch)
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	callback := func(url string) (string, string, *struct{ EN, ZH string }) {
		rep, _ := f.doctorJSON(t, "--url", url)
		c := rep.Checks[3]
		require.Equal(t, checkCallback, c.Name)
		var fix *struct{ EN, ZH string }
		if c.Fix != nil {
			fix = &struct{ EN, ZH string }{c.Fix.EN, c.Fix.ZH}
		}
		return c.Status, c.Summary, fix
	}

	good := bot(f.srv.CallbackToken())
	st, summary, _ := callback(good + "/wxkf/")
	assert.Equal(t, "ok", st, summary)
	assert.Equal(t, good+"/wxkf/ answers a signed GET and POST", summary)

	st, summary, fix := callback(bot("someOtherToken") + "/wxkf/")
	assert.Equal(t, "fail", st)
	assert.Contains(t, summary, "refused a correctly signed request (403)")
	assert.Contains(t, fix.EN, "has another Token, EncodingAESKey or corp id than this configuration")

	st, summary, fix = callback(good + "/callback")
	assert.Equal(t, "fail", st)
	assert.Contains(t, summary, "nothing is served there (404)")
	assert.Contains(t, fix.EN, "the examples use /wxkf/")

	quoted := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`"` + r.URL.Query().Get("echostr")[:5] + `"`))
	}))
	t.Cleanup(quoted.Close)
	st, summary, fix = callback(quoted.URL + "/wxkf/")
	assert.Equal(t, "fail", st)
	assert.Contains(t, summary, "the answer is not the decrypted echostr")
	assert.Contains(t, fix.EN, "no quotes, BOM or newline (doc 94699)")

	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	st, summary, fix = callback(dead.URL + "/wxkf/")
	assert.Equal(t, "fail", st)
	assert.Contains(t, summary, "GET "+dead.URL+"/wxkf/: no answer: dial tcp ")
	assert.NotContains(t, summary, "msg_signature", "the signed query is not repeated")
	assert.Contains(t, fix.EN, "Start the bot (go run ./examples/echo)")

	st, summary, _ = callback("ftp://example.com/wxkf/")
	assert.Equal(t, "fail", st)
	assert.Equal(t, `--url "ftp://example.com/wxkf/" is not an http(s) URL`, summary)
}

// TestDoctorCursors: stored cursors are read per account; a directory the running bot holds is
// fine.
func TestDoctorCursors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	state := filepath.Join(f.dir, "state")
	d, err := cursor.OpenDir(state)
	require.NoError(t, err)
	require.NoError(t, d.Save(context.Background(), f.srv.OpenKfID(), "CURSOR1"))
	other := f.srv.AddAccount("其他")

	rep, r := f.doctorJSON(t) // the bot (d) is running
	assert.Equal(t, exitOK, r.code)
	assert.Equal(t, state+" is in use by a running bot, which has read it (not read again here)", rep.Checks[4].Summary)

	require.NoError(t, d.Close()) // the bot stopped
	rep, r = f.doctorJSON(t)
	assert.Equal(t, exitOK, r.code)
	c := rep.Checks[4]
	assert.Equal(t, state+" is readable: 1 of 2 accounts with a cursor", c.Summary)
	assert.Equal(t, []string{
		f.srv.OpenKfID() + "  stored",
		other + "  none yet (the first sync skips what was sent before the bot first started)",
	}, c.Details)
	b, err := os.ReadFile(filepath.Join(state, cursor.CursorFileName))
	require.NoError(t, err)
	assert.JSONEq(t, `{"`+f.srv.OpenKfID()+`": "CURSOR1"}`, string(b), "doctor changed no cursor")
}

// TestDoctorRedis: with wechatcom_kf_redis_url the cursors are read from Redis through cursor/redis,
// under the bot's key prefix; a Redis that is down fails both checks, each with its fix.
func TestDoctorRedis(t *testing.T) {
	t.Parallel()
	addr, stop, _ := redistest.Start(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	f := newFixture(t, map[string]any{"wechatcom_kf_redis_url": "redis://:s3cretPw@" + addr + "/0"})
	other := f.srv.AddAccount("其他")
	store := redis.New(rdb)
	ctx := context.Background()
	require.NoError(t, store.Save(ctx, f.srv.OpenKfID(), "CURSOR1"))
	require.NoError(t, store.Save(ctx, "wkGone", "CURSOR2")) // an account WeCom no longer lists

	rep, r := f.doctorJSON(t)
	assert.Equal(t, exitOK, r.code, r.stdout)
	c := rep.Checks[4]
	assert.Equal(t, "ok", c.Status)
	assert.Equal(t, "redis://"+addr+"/0 is readable: 2 of 3 accounts with a cursor", c.Summary)
	assert.Equal(t, []string{
		f.srv.OpenKfID() + "  stored",
		other + "  none yet (the first sync skips what was sent before the bot first started)",
		"wkGone  stored",
	}, c.Details)
	assert.Equal(t, "ok", rep.Checks[5].Status)
	assert.True(t, strings.HasPrefix(rep.Checks[5].Summary, "redis://"+addr+"/0 answers (Redis "), rep.Checks[5].Summary)
	cur, err := store.Load(ctx, f.srv.OpenKfID())
	require.NoError(t, err)
	assert.Equal(t, "CURSOR1", cur, "doctor changed no cursor")

	stop()
	r = f.run("doctor")
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stdout, "✘ cursors   cannot read the cursors in ")
	printedFix(t, r.stdout, doctorIndent,
		"The bot cannot sync without its cursors. Start Redis or fix wechatcom_kf_redis_url (host, port, password, TLS); the redis check says more.",
		"机器人读取不到游标就无法同步消息。请启动 Redis 或修正 wechatcom_kf_redis_url（主机、端口、密码、TLS）；redis 检查项有更多信息。")
	assert.Contains(t, r.stdout, "✘ redis     redis://"+addr+"/0 does not answer")
	assert.Contains(t, r.stdout, "2 checks failed.")

	rep, r = f.doctorJSON(t)
	assert.Equal(t, exitFail, r.code)
	assert.Equal(t, []string{"config:ok", "gettoken:ok", "accounts:ok", "callback:ok", "cursors:fail", "redis:fail"}, statuses(rep))
	assert.True(t, strings.HasPrefix(rep.Checks[4].Summary, "cannot read the cursors in redis://"+addr+"/0: "), rep.Checks[4].Summary)
	assert.Contains(t, rep.Checks[5].Summary, "redis://"+addr+"/0 does not answer")
	assert.Contains(t, rep.Checks[5].Fix.EN, "Start Redis or fix wechatcom_kf_redis_url")
	assert.NotContains(t, r.stdout, "s3cretPw", "the Redis password is never printed")
}

// TestDoctorRedisURLInvalid: a wechatcom_kf_redis_url that is not a Redis URL fails the redis check
// with the URL's format; the cursors check, which cannot run, points at it.
func TestDoctorRedisURLInvalid(t *testing.T) {
	t.Parallel()
	f := newFixture(t, map[string]any{"wechatcom_kf_redis_url": "http://s3cretPw@localhost:6379/0"})
	r := f.run("doctor")
	f.noSecrets(t, r)
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stdout, printedLine("–", "cursors", "kept in Redis, but wechatcom_kf_redis_url is not a Redis URL: see the redis check"))
	assert.Contains(t, r.stdout, "✘ redis     wechatcom_kf_redis_url is not a Redis URL\n")
	printedFix(t, r.stdout, doctorIndent, "Use redis://[:PASSWORD@]HOST:PORT[/DB] or rediss:// for TLS.",
		"请使用 redis://[:密码@]主机:端口[/库号] 的格式，TLS 使用 rediss://。")
	assert.Contains(t, r.stdout, "1 check failed.")
	assert.NotContains(t, r.stdout, "s3cretPw")

	rep, _ := f.doctorJSON(t)
	assert.Equal(t, []string{"config:ok", "gettoken:ok", "accounts:ok", "callback:ok", "cursors:skip", "redis:fail"}, statuses(rep))
}

// TestRedisVersionCheck covers the version branch of the redis check from INFO replies: a real
// server older than 6.2 is not at hand in tests.
func TestRedisVersionCheck(t *testing.T) {
	t.Parallel()
	const where = "redis://10.0.0.5:6379"
	info := func(version string) string {
		return "# Server\r\nredis_version:" + version + "\r\nredis_git_sha1:00000000\r\nredis_mode:standalone\r\n"
	}
	for _, tc := range []struct{ info, status, summary string }{
		{info("6.0.16"), "fail", where + " runs Redis 6.0.16; wxkf needs 6.2 or newer"},
		{info("5.0.7"), "fail", where + " runs Redis 5.0.7; wxkf needs 6.2 or newer"},
		{info("6.2.0"), "ok", where + " answers (Redis 6.2.0)"},
		{info("7.2.4"), "ok", where + " answers (Redis 7.2.4)"},
		{info("10.0.0"), "ok", where + " answers (Redis 10.0.0)"},
		{info("unstable"), "ok", where + " answers (Redis unstable)"}, // unknown format: not failed on
		{"# Server\r\nredis_mode:standalone\r\n", "ok", where + " answers"},
		{"", "ok", where + " answers"},
	} {
		c := redisVersionCheck(where, tc.info)
		assert.Equal(t, checkRedis, c.Name)
		assert.Equal(t, tc.status, string(c.Status), tc.info)
		assert.Equal(t, tc.summary, c.Summary, tc.info)
		if tc.status == "fail" {
			require.NotNil(t, c.Fix)
			assert.Equal(t, "Upgrade Redis to 6.2 or newer.", c.Fix.EN)
			assert.Equal(t, "请将 Redis 升级到 6.2 或更高版本。", c.Fix.ZH)
		} else {
			assert.Nil(t, c.Fix, tc.info)
		}
	}
}

func TestReportedIP(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "203.0.113.7", reportedIP("not allow to access from your ip, hint: [1], from ip: 203.0.113.7, more info at x"))
	assert.Equal(t, "2001:db8::1", reportedIP("from ip: 2001:db8::1."))
	assert.Empty(t, reportedIP("not allow to access from your ip"))
	assert.Empty(t, reportedIP("from ip: 999.1"))
}
