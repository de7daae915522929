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
	"github.com/wxkf/wxkf/cursor/redis"
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

// cursorsCheck reads the stored cursors the way the bot does: from Redis when wechatcom_kf_redis_url
// is set, else by opening the cursor directory (cursor.OpenDir: the cursor file and the done-journal
// are decoded, never read as empty). It loads the cursor of each account and saves none. A directory
// locked by the running bot is fine: the bot has read it already.
func cursorsCheck(ctx context.Context, cfg *config.Config, dir string, accounts []kf.Account) check {
	if cfg.RedisURL != "" {
		return redisCursorsCheck(ctx, cfg, accounts)
	}
	c := check{Name: checkCursors}
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
	details, stored, err := readCursors(ctx, d, accounts, cfg.SkipHistory)
	if err != nil {
		c.Status, c.Summary = statusFail, err.Error()
		return c
	}
	c.Status, c.Summary, c.Details = statusOK, readable(path, stored, len(details)), details
	return c
}

// redisCursorsCheck reads the cursors the bot keeps in Redis, through cursor/redis with the bot's
// key prefix: the accounts stored there, then the cursor of each. Like the bot's first read of an
// account, a read moves the keys of earlier wxkf versions to the current ones.
func redisCursorsCheck(ctx context.Context, cfg *config.Config, accounts []kf.Account) check {
	c := check{Name: checkCursors}
	where := redactRedisURL(cfg.RedisURL)
	rdb, err := redisClient(cfg)
	if err != nil {
		c.Status, c.Summary = statusSkip, "kept in Redis, but wechatcom_kf_redis_url is not a Redis URL: see the redis check"
		return c
	}
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	details, stored, err := readCursors(ctx, redis.New(rdb), accounts, cfg.SkipHistory)
	if err != nil {
		c.Status, c.Summary = statusFail, fmt.Sprintf("cannot read the cursors in %s: %v", where, err)
		c.Fix = &hint{
			EN: "The bot cannot sync without its cursors. Start Redis or fix wechatcom_kf_redis_url (host, port, password, TLS); the redis check says more.",
			ZH: "机器人读取不到游标就无法同步消息。请启动 Redis 或修正 wechatcom_kf_redis_url（主机、端口、密码、TLS）；redis 检查项有更多信息。",
		}
		return c
	}
	c.Status, c.Summary, c.Details = statusOK, readable(where, stored, len(details)), details
	return c
}

// readCursors loads the cursor of every account WeCom listed and of every account st holds, in that
// order: one detail line per account, and how many have a cursor.
func readCursors(ctx context.Context, st cursor.State, accounts []kf.Account, skipHistory bool) (details []string, stored int, err error) {
	held, err := st.Accounts(ctx)
	if err != nil {
		return nil, 0, err
	}
	var ids []string
	seen := make(map[string]bool)
	for _, a := range accounts {
		if !seen[a.OpenKfID] {
			seen[a.OpenKfID] = true
			ids = append(ids, a.OpenKfID)
		}
	}
	for _, id := range held {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	none := "none yet (the first sync skips what was sent before the bot first started)"
	if !skipHistory {
		none = "none yet (the first sync answers the last 3 days)"
	}
	for _, id := range ids {
		cur, err := st.Load(ctx, id)
		if err != nil {
			return nil, 0, err
		}
		state := none
		if cur != "" {
			state, stored = "stored", stored+1
		}
		details = append(details, id+"  "+state)
	}
	return details, stored, nil
}

// readable is the summary of a cursors check that read them all from where.
func readable(where string, stored, accounts int) string {
	if accounts == 0 {
		return where + " is readable"
	}
	return fmt.Sprintf("%s is readable: %d of %s with a cursor", where, stored, plural(accounts, "account", "accounts"))
}

// redisClient is a client for the configured Redis with the probe's short timeouts, or the error of
// a wechatcom_kf_redis_url that is not a Redis URL.
func redisClient(cfg *config.Config) (*goredis.Client, error) {
	opts, err := goredis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, err
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = probeTimeout/2, probeTimeout/2, probeTimeout/2
	opts.MaxRetries = 1
	return goredis.NewClient(opts), nil
}

// redisCheck pings the configured Redis and checks its version (6.2 or newer).
func redisCheck(ctx context.Context, cfg *config.Config) check {
	c := check{Name: checkRedis}
	if cfg.RedisURL == "" {
		c.Status, c.Summary = statusSkip, "not configured: one process, cursors in files"
		return c
	}
	where := redactRedisURL(cfg.RedisURL)
	rdb, err := redisClient(cfg)
	if err != nil {
		c.Status, c.Summary = statusFail, "wechatcom_kf_redis_url is not a Redis URL"
		c.Fix = &hint{
			EN: "Use redis://[:PASSWORD@]HOST:PORT[/DB] or rediss:// for TLS.",
			ZH: "请使用 redis://[:密码@]主机:端口[/库号] 的格式，TLS 使用 rediss://。",
		}
		return c
	}
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
	return redisVersionCheck(where, rdb.Info(ctx, "server").Val())
}

// redisVersionCheck is the redis check of a server that answers, from its INFO server reply: wxkf
// needs 6.2 or newer. A reply without a readable version passes.
func redisVersionCheck(where, info string) check {
	c := check{Name: checkRedis}
	version := redisVersion(info)
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
