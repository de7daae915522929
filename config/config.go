package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wxkf/wxkf/cursor/redis"
	"github.com/wxkf/wxkf/kf"
)

// The configuration keys (those of chatgpt-on-wechat's wechatcom_kf channel).
const (
	KeyCorpID      = "wechatcom_corp_id"
	KeySecret      = "wechatcom_kf_secret"
	KeyToken       = "wechatcom_kf_token"
	KeyAESKey      = "wechatcom_kf_aes_key"
	KeyPort        = "wechatcom_kf_port"
	KeyCursorDir   = "wechatcom_kf_cursor_dir"
	KeySkipHistory = "wechatcom_kf_skip_history_on_first_start"
	KeyAPIBase     = "wechatcom_kf_api_base"
	KeyRedisURL    = "wechatcom_kf_redis_url"
)

// Config is a bot's settings, one field per key.
type Config struct {
	CorpID      string // wechatcom_corp_id: the corp id (企业ID)
	Secret      string // wechatcom_kf_secret: the secret of the self-built app that calls the kf API
	Token       string // wechatcom_kf_token: the callback Token, letters and digits, at most 32
	AESKey      string // wechatcom_kf_aes_key: the callback EncodingAESKey, 43 characters
	Port        int    // wechatcom_kf_port: default 9899
	CursorDir   string // wechatcom_kf_cursor_dir: default "tmp"
	SkipHistory bool   // wechatcom_kf_skip_history_on_first_start: default true
	APIBase     string // wechatcom_kf_api_base: default https://qyapi.weixin.qq.com
	RedisURL    string // wechatcom_kf_redis_url: empty means one process, local files
}

// maxConfigBytes caps config.json (chatgpt-on-wechat's is a few KB).
const maxConfigBytes = 1 << 20

// Load reads dir/config.json if it exists, then lets environment variables override each key,
// applies the defaults and validates. A missing required key is an error naming the key.
func Load(dir string) (*Config, error) {
	return load(dir, os.LookupEnv)
}

func load(dir string, env func(string) (string, bool)) (*Config, error) {
	vals := map[string]string{}
	path := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("config: %w", err)
	case len(data) > maxConfigBytes:
		return nil, fmt.Errorf("config: %s is larger than %d bytes", path, maxConfigBytes)
	default:
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(data, &raw); err != nil {
			return nil, fmt.Errorf("config: %s: %w", path, err)
		}
		for _, k := range allKeys {
			if v, ok := raw[k]; ok {
				s, err := scalar(v)
				if err != nil {
					return nil, fmt.Errorf("config: %s: %s: %w", path, k, err)
				}
				vals[k] = s
			}
		}
	}
	for _, k := range allKeys {
		if v, ok := env(strings.ToUpper(k)); ok {
			vals[k] = v
		}
	}

	c := &Config{
		CorpID: vals[KeyCorpID], Secret: vals[KeySecret], Token: vals[KeyToken], AESKey: vals[KeyAESKey],
		Port: 9899, CursorDir: "tmp", SkipHistory: true, APIBase: "https://qyapi.weixin.qq.com",
		RedisURL: vals[KeyRedisURL],
	}
	for _, k := range []string{KeyCorpID, KeySecret, KeyToken, KeyAESKey} {
		if strings.TrimSpace(vals[k]) == "" {
			return nil, fmt.Errorf("config: %s is required (set it in config.json or %s)", k, strings.ToUpper(k))
		}
	}
	if len(c.AESKey) != 43 {
		return nil, fmt.Errorf("config: %s must be 43 characters, got %d", KeyAESKey, len(c.AESKey))
	}
	if v := vals[KeyPort]; v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("config: %s must be a port number 1..65535, got %q", KeyPort, v)
		}
		c.Port = p
	}
	if v := vals[KeyCursorDir]; v != "" {
		c.CursorDir = v
	}
	if v := vals[KeySkipHistory]; v != "" {
		b, err := strconv.ParseBool(strings.ToLower(v))
		if err != nil {
			return nil, fmt.Errorf("config: %s must be true or false, got %q", KeySkipHistory, v)
		}
		c.SkipHistory = b
	}
	if v := vals[KeyAPIBase]; v != "" {
		c.APIBase = v
	}
	return c, nil
}

var allKeys = []string{KeyCorpID, KeySecret, KeyToken, KeyAESKey, KeyPort, KeyCursorDir, KeySkipHistory, KeyAPIBase, KeyRedisURL}

// scalar turns a JSON string, number or bool into its text; null is empty.
func scalar(v json.RawMessage) (string, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return "", nil
	}
	switch v[0] {
	case '"':
		var s string
		err := json.Unmarshal(v, &s)
		return s, err
	case 't', 'f':
		var b bool
		err := json.Unmarshal(v, &b)
		return strconv.FormatBool(b), err
	default:
		var n json.Number
		if err := json.Unmarshal(v, &n); err != nil {
			return "", errors.New("want a string, number or boolean")
		}
		return n.String(), nil
	}
}

// Addr is the listen address: all interfaces, the configured port.
func (c *Config) Addr() string { return "0.0.0.0:" + strconv.Itoa(c.Port) }

// KF returns the kf.Config of these settings.
func (c *Config) KF() kf.Config {
	return kf.Config{CorpID: c.CorpID, Secret: c.Secret, Token: c.Token, EncodingAESKey: c.AESKey}
}

// ChannelOptions returns the kf.Channel options these settings imply: the API base, the cursor
// directory and skip-history, or Redis stores when a Redis URL is set (the access token is then
// shared through Redis too). closeFn releases what they opened (the Redis client).
func (c *Config) ChannelOptions() (opts []kf.ChannelOption, closeFn func(), err error) {
	opts = []kf.ChannelOption{
		kf.WithClientOptions(kf.WithBaseURL(c.APIBase)),
		kf.WithSkipHistory(c.SkipHistory),
	}
	if c.RedisURL == "" {
		return append(opts, kf.WithStateDir(c.CursorDir)), func() {}, nil
	}
	ro, err := goredis.ParseURL(c.RedisURL)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %s: %w", KeyRedisURL, err)
	}
	rdb := goredis.NewClient(ro)
	opts = append(opts, kf.WithStores(redis.New(rdb)))
	return opts, func() { _ = rdb.Close() }, nil
}
