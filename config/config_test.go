package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const aes = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoadFileThenEnv(t *testing.T) {
	dir := t.TempDir()
	// The shape chatgpt-on-wechat writes: numbers and booleans as JSON, other keys ignored.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{
		"channel_type": "wechatcom_kf", "model": "gpt-4o",
		"wechatcom_corp_id": "ww1", "wechatcom_kf_secret": "s", "wechatcom_kf_token": "tok",
		"wechatcom_kf_aes_key": "`+aes+`", "wechatcom_kf_port": 9000,
		"wechatcom_kf_skip_history_on_first_start": false, "wechatcom_kf_cursor_dir": "state"}`), 0o600))
	c, err := load(dir, envOf(map[string]string{"WECHATCOM_KF_PORT": "9100", "WECHATCOM_KF_API_BASE": "http://127.0.0.1:1"}))
	require.NoError(t, err)
	assert.Equal(t, "ww1", c.CorpID)
	assert.Equal(t, 9100, c.Port, "env overrides the file")
	assert.False(t, c.SkipHistory)
	assert.Equal(t, "state", c.CursorDir)
	assert.Equal(t, "http://127.0.0.1:1", c.APIBase)
	assert.Equal(t, "0.0.0.0:9100", c.Addr())
	opts, closeFn, err := c.ChannelOptions()
	require.NoError(t, err)
	closeFn()
	assert.Len(t, opts, 3)
}

func TestDefaults(t *testing.T) {
	c, err := load(t.TempDir(), envOf(map[string]string{"WECHATCOM_CORP_ID": "ww1", "WECHATCOM_KF_SECRET": "s",
		"WECHATCOM_KF_TOKEN": "t", "WECHATCOM_KF_AES_KEY": aes}))
	require.NoError(t, err)
	assert.Equal(t, 9899, c.Port)
	assert.Equal(t, "tmp", c.CursorDir)
	assert.True(t, c.SkipHistory)
	assert.Equal(t, "https://qyapi.weixin.qq.com", c.APIBase)
	assert.Empty(t, c.RedisURL)
}

func TestErrorsNameTheKey(t *testing.T) {
	base := map[string]string{"WECHATCOM_CORP_ID": "ww1", "WECHATCOM_KF_SECRET": "s", "WECHATCOM_KF_TOKEN": "t", "WECHATCOM_KF_AES_KEY": aes}
	for _, tc := range []struct{ key, val, want string }{
		{"WECHATCOM_CORP_ID", "", "wechatcom_corp_id"},
		{"WECHATCOM_KF_SECRET", " ", "wechatcom_kf_secret"},
		{"WECHATCOM_KF_TOKEN", "", "wechatcom_kf_token"},
		{"WECHATCOM_KF_AES_KEY", "short", "wechatcom_kf_aes_key"},
		{"WECHATCOM_KF_PORT", "http", "wechatcom_kf_port"},
		{"WECHATCOM_KF_PORT", "70000", "wechatcom_kf_port"},
		{"WECHATCOM_KF_SKIP_HISTORY_ON_FIRST_START", "maybe", "wechatcom_kf_skip_history_on_first_start"},
	} {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		m[tc.key] = tc.val
		_, err := load(t.TempDir(), envOf(m))
		require.Error(t, err, tc.key)
		assert.Contains(t, err.Error(), tc.want)
	}
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{not json`), 0o600))
	_, err := load(dir, envOf(base))
	assert.ErrorContains(t, err, "config.json")
	c, err := load(t.TempDir(), envOf(map[string]string{"WECHATCOM_CORP_ID": "ww1", "WECHATCOM_KF_SECRET": "s",
		"WECHATCOM_KF_TOKEN": "t", "WECHATCOM_KF_AES_KEY": aes, "WECHATCOM_KF_REDIS_URL": "notaurl"}))
	require.NoError(t, err)
	_, _, err = c.ChannelOptions()
	assert.ErrorContains(t, err, "wechatcom_kf_redis_url")
}

// FuzzLoad: any config.json is a clean error or a valid Config, never a panic.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(`{"wechatcom_corp_id":"ww1","wechatcom_kf_secret":"s","wechatcom_kf_token":"t","wechatcom_kf_aes_key":"` + aes + `","wechatcom_kf_port":9000}`))
	f.Add([]byte(`{"wechatcom_kf_port":1e99,"wechatcom_kf_skip_history_on_first_start":null}`))
	f.Add([]byte(`[1,2,3]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := load(dir, envOf(nil))
		if err == nil && (c.Port < 1 || c.Port > 65535 || len(c.AESKey) != 43 || c.CorpID == "") {
			t.Fatalf("invalid config accepted: %+v", c)
		}
	})
}
