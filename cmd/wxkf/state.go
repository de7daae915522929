package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wxkf/wxkf/config"
	"github.com/wxkf/wxkf/cursor"
	"github.com/wxkf/wxkf/kf"
)

// cursorDir is the configured cursor directory; a relative one is taken from the config
// directory, where the bot is expected to run (chatgpt-on-wechat's layout).
func cursorDir(cfg *config.Config, dir string) string {
	d := cfg.CursorDir
	if !filepath.IsAbs(d) {
		d = filepath.Join(dir, d)
	}
	if abs, err := filepath.Abs(d); err == nil {
		d = abs
	}
	return d
}

// cursorsCheck opens the cursor directory the way the bot does (cursor.OpenDir: the cursor file
// and the done-journal are decoded, never read as empty) and loads each account's cursor. It
// saves nothing. A directory locked by the running bot is fine: the bot has read it already.
func cursorsCheck(ctx context.Context, cfg *config.Config, dir string, accounts []kf.Account) check {
	c := check{Name: checkCursors}
	if cfg.RedisURL != "" {
		c.Status, c.Summary = statusSkip, "kept in Redis (wechatcom_kf_redis_url): see the redis check"
		return c
	}
	path := cursorDir(cfg, dir)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		c.Status, c.Summary = statusOK, "none yet: the bot creates "+path+" at its first start"
		return c
	}
	d, err := cursor.OpenDir(path)
	switch {
	case errors.Is(err, cursor.ErrDirLocked):
		c.Status, c.Summary = statusOK, path+" is in use by a running bot, which has read it (not read again here)"
		return c
	case errors.Is(err, cursor.ErrCorrupt):
		c.Status, c.Summary = statusFail, strings.TrimPrefix(err.Error(), "cursor: ")
		c.Fix = &hint{
			EN: "The bot will not start on a corrupt cursor file: it never reads one as empty, which would replay 3 days of messages. " +
				"Restore the file from a backup, or move it away to start from the last 3 days (skip-history then applies).",
			ZH: "游标文件损坏时机器人不会启动：它不会把损坏的文件当作空文件，否则会重放 3 天内的消息。请从备份恢复该文件，或将其移走以从最近 3 天开始（此时按跳过历史消息的设置处理）。",
		}
		return c
	case err != nil:
		c.Status, c.Summary = statusFail, err.Error()
		c.Fix = &hint{
			EN: "Give the bot's user read and write access to " + path + ", or set wechatcom_kf_cursor_dir to a directory it owns.",
			ZH: "请授予运行机器人的用户对 " + path + " 的读写权限，或将 wechatcom_kf_cursor_dir 设为其拥有的目录。",
		}
		return c
	}
	defer d.Close()
	stored := 0
	for _, a := range accounts {
		cur, err := d.Load(ctx, a.OpenKfID)
		if err != nil {
			c.Status, c.Summary = statusFail, err.Error()
			return c
		}
		state := "none yet (the first sync skips what was sent before the bot first started)"
		if !cfg.SkipHistory {
			state = "none yet (the first sync answers the last 3 days)"
		}
		if cur != "" {
			state, stored = "stored", stored+1
		}
		c.Details = append(c.Details, a.OpenKfID+"  "+state)
	}
	c.Status, c.Summary = statusOK, path+" is readable"
	if len(accounts) > 0 {
		c.Summary += fmt.Sprintf(": %d of %s with a cursor", stored, plural(len(accounts), "account", "accounts"))
	}
	return c
}

// redisCheck pings the configured Redis and checks its version (6.2 or newer).
func redisCheck(ctx context.Context, cfg *config.Config) check {
	c := check{Name: checkRedis}
	if cfg.RedisURL == "" {
		c.Status, c.Summary = statusSkip, "not configured: one process, cursors in files"
		return c
	}
	where := redactRedisURL(cfg.RedisURL)
	opts, err := goredis.ParseURL(cfg.RedisURL)
	if err != nil {
		c.Status, c.Summary = statusFail, "wechatcom_kf_redis_url is not a Redis URL"
		c.Fix = &hint{
			EN: "Use redis://[:PASSWORD@]HOST:PORT[/DB] or rediss:// for TLS.",
			ZH: "请使用 redis://[:密码@]主机:端口[/库号] 的格式，TLS 使用 rediss://。",
		}
		return c
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = probeTimeout/2, probeTimeout/2, probeTimeout/2
	opts.MaxRetries = 1
	rdb := goredis.NewClient(opts)
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		c.Status, c.Summary = statusFail, fmt.Sprintf("%s does not answer: %v", where, err)
		c.Fix = &hint{
			EN: "Start Redis or fix wechatcom_kf_redis_url (host, port, password, TLS). Every replica of the bot needs to reach it.",
			ZH: "请启动 Redis 或修正 wechatcom_kf_redis_url（主机、端口、密码、TLS）。机器人的每个副本都需要能访问它。",
		}
		return c
	}
	version := redisVersion(rdb.Info(ctx, "server").Val())
	if version != "" && !atLeast(version, 6, 2) {
		c.Status, c.Summary = statusFail, fmt.Sprintf("%s runs Redis %s; wxkf needs 6.2 or newer", where, version)
		c.Fix = &hint{EN: "Upgrade Redis to 6.2 or newer.", ZH: "请将 Redis 升级到 6.2 或更高版本。"}
		return c
	}
	c.Status, c.Summary = statusOK, where+" answers"
	if version != "" {
		c.Summary += " (Redis " + version + ")"
	}
	return c
}

// redactRedisURL shows where Redis is without its password.
func redactRedisURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "the configured Redis"
	}
	u.User = nil
	u.RawQuery, u.Fragment = "", ""
	return u.String()
}

// redisVersion reads redis_version from INFO server.
func redisVersion(info string) string {
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "redis_version:"); ok {
			return v
		}
	}
	return ""
}

// atLeast compares a dotted version with major.minor.
func atLeast(version string, major, minor int) bool {
	parts := strings.SplitN(version, ".", 3)
	ma, err := strconv.Atoi(parts[0])
	if err != nil {
		return true // unknown format: don't fail on it
	}
	mi := 0
	if len(parts) > 1 {
		mi, _ = strconv.Atoi(parts[1])
	}
	return ma > major || ma == major && mi >= minor
}
