package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/rivo/uniseg"

	"github.com/wxkf/wxkf/config"
	"github.com/wxkf/wxkf/kf"
)

// status is a check's outcome.
type status string

const (
	statusOK   status = "ok"
	statusFail status = "fail"
	statusSkip status = "skip" // not run: what it needs failed, or it does not apply
)

// check is one line of the doctor's report.
type check struct {
	Name    string   `json:"name"`
	Status  status   `json:"status"`
	Summary string   `json:"summary"`
	Details []string `json:"details,omitempty"`
	ErrCode int      `json:"errcode,omitempty"` // WeCom's errcode, when WeCom refused
	Fix     *hint    `json:"fix,omitempty"`
}

// report is the doctor's whole answer; --json prints it as it is.
type report struct {
	OK       bool          `json:"ok"`
	Checks   []check       `json:"checks"`
	Accounts []accountJSON `json:"accounts,omitempty"`
}

type accountJSON struct {
	OpenKfID string `json:"open_kfid"`
	Name     string `json:"name"`
	Managed  bool   `json:"manage_privilege"`
}

// Check names, in the order they run.
const (
	checkConfig   = "config"
	checkToken    = "gettoken"
	checkAccounts = "accounts"
	checkCallback = "callback"
	checkCursors  = "cursors"
	checkRedis    = "redis"
)

const doctorSynopsis = `doctor [--dir DIR] [--url URL] [--json]

Runs every check in order and prints ✔ or ✘ with the fix, in English and Chinese:
  config    config.json and the environment are present and well-formed
  gettoken  WeCom gives an access token for the corp id and secret
  accounts  account/list works; each account with its name and open_kfid
  callback  the callback handler answers a locally signed GET verification and
            POST (a kf.Channel on a local port, or the running bot with --url)
  cursors   the stored cursors are readable (wechatcom_kf_cursor_dir, or Redis
            when wechatcom_kf_redis_url is set)
  redis     Redis answers, when wechatcom_kf_redis_url is set
Exits 1 when any check fails. With --url, the POST is a kf_account_auth_change
event that names no account, which a bot accepts and ignores.`

// doctor runs the checks and prints the report.
func doctor(ctx context.Context, t *term, args []string) int {
	fs := flags(t, "doctor", doctorSynopsis)
	var cf configFlags
	cf.add(fs)
	url := fs.String("url", "", "the running bot's callback URL to check (e.g. https://bot.example.com/wxkf/) instead of a local handler")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if status, ok := parseFlagsOnly(t, fs, args); !ok {
		return status
	}
	ctx, cancel := withTimeout(ctx, cf.timeout)
	defer cancel()

	rep := diagnose(ctx, cf.dir, *url)
	if *asJSON {
		enc := json.NewEncoder(t.stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		_ = enc.Encode(rep)
	} else {
		printReport(t, rep)
	}
	if !rep.OK {
		return exitFail
	}
	return exitOK
}

// diagnose runs every check in order; a check whose prerequisite failed is skipped, saying which.
func diagnose(ctx context.Context, dir, url string) *report {
	rep := &report{OK: true}
	add := func(c check) {
		if c.Status == statusFail {
			rep.OK = false
		}
		rep.Checks = append(rep.Checks, c)
	}
	skipped := func(name, needs string) check {
		return check{Name: name, Status: statusSkip, Summary: "skipped: needs " + needs}
	}

	cfg, err := loadConfig(dir)
	if err != nil {
		add(check{Name: checkConfig, Status: statusFail, Summary: err.Error(), Fix: configHint(err)})
		for _, n := range []string{checkToken, checkAccounts, checkCallback, checkCursors, checkRedis} {
			add(skipped(n, checkConfig))
		}
		return rep
	}
	add(check{Name: checkConfig, Status: statusOK, Summary: configSource(dir), Details: configDetails(cfg, dir)})

	var accounts []kf.Account
	cl, err := newClient(cfg)
	if err != nil {
		add(check{Name: checkToken, Status: statusFail, Summary: err.Error()})
		add(skipped(checkAccounts, checkToken))
	} else if c := tokenCheck(ctx, cl); c.Status != statusOK {
		add(c)
		add(skipped(checkAccounts, checkToken))
	} else {
		add(c)
		var ac check
		accounts, ac = accountsCheck(ctx, cl)
		add(ac)
		for _, a := range accounts {
			rep.Accounts = append(rep.Accounts, accountJSON{OpenKfID: a.OpenKfID, Name: a.Name, Managed: a.ManagePrivilege})
		}
	}
	add(callbackCheck(ctx, cfg, url))
	add(cursorsCheck(ctx, cfg, dir, accounts))
	add(redisCheck(ctx, cfg))
	return rep
}

// configDetails are the settings worth seeing; secrets are never among them.
func configDetails(cfg *config.Config, dir string) []string {
	redis := "none (one process, files in the cursor dir)"
	if cfg.RedisURL != "" {
		redis = redactRedisURL(cfg.RedisURL)
	}
	return []string{
		"corp id    " + cfg.CorpID,
		"api base   " + cfg.APIBase,
		"cursor dir " + cursorDir(cfg, dir),
		"redis      " + redis,
	}
}

// tokenCheck asks gettoken for an access token (never printed).
func tokenCheck(ctx context.Context, cl *kf.Client) check {
	if _, err := cl.AccessToken(ctx); err != nil {
		summary, fix := explain(err)
		return check{Name: checkToken, Status: statusFail, Summary: summary, ErrCode: kf.ErrorCode(err), Fix: fix}
	}
	return check{Name: checkToken, Status: statusOK, Summary: "WeCom accepts the corp id and secret"}
}

// accountsCheck lists the accounts; it fails when the app may manage none of them.
func accountsCheck(ctx context.Context, cl *kf.Client) ([]kf.Account, check) {
	all, managed, err := managedAccounts(ctx, cl)
	if err != nil {
		summary, fix := explain(err)
		return nil, check{Name: checkAccounts, Status: statusFail, Summary: summary, ErrCode: kf.ErrorCode(err), Fix: fix}
	}
	c := check{Name: checkAccounts, Status: statusOK, Details: accountLines(all)}
	switch {
	case len(all) == 0:
		c.Status, c.Summary, c.Fix = statusFail, "no customer-service account is visible to this app", noAccountHint
	case len(managed) == 0:
		c.Status, c.Summary, c.Fix = statusFail, fmt.Sprintf("this app manages none of the %d accounts", len(all)), noAccountHint
	case len(managed) == len(all):
		c.Summary = plural(len(all), "account", "accounts")
	default:
		c.Summary = fmt.Sprintf("%s, %d managed by this app", plural(len(all), "account", "accounts"), len(managed))
	}
	return all, c
}

// accountLines shows each account's name and open_kfid, aligned.
func accountLines(accounts []kf.Account) []string {
	width := 0
	for _, a := range accounts {
		width = max(width, uniseg.StringWidth(a.Name))
	}
	lines := make([]string, 0, len(accounts))
	for _, a := range accounts {
		l := a.Name + strings.Repeat(" ", width-uniseg.StringWidth(a.Name)) + "  " + a.OpenKfID
		if !a.ManagePrivilege {
			l += "  (not managed by this app: it cannot receive or send)"
		}
		lines = append(lines, l)
	}
	return lines
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// printReport prints the report for a person: one line per check, details and fixes indented.
func printReport(t *term, rep *report) {
	nameWidth := 0
	for _, c := range rep.Checks {
		nameWidth = max(nameWidth, len(c.Name))
	}
	indent := strings.Repeat(" ", 2+nameWidth+2)
	failed := 0
	for _, c := range rep.Checks {
		mark := t.paint(green, markOK)
		switch c.Status {
		case statusFail:
			mark = t.paint(red, markFail)
			failed++
		case statusSkip:
			mark = t.paint(dim, markSkip)
		}
		t.block(fmt.Sprintf("%s %-*s  ", mark, nameWidth, c.Name), indent, c.Summary)
		for _, d := range c.Details {
			t.printf("%s%s\n", indent, t.paint(dim, d))
		}
		t.printFix(indent, c.Fix)
	}
	t.printf("\n")
	switch failed {
	case 0:
		t.printf("%s\n", t.paint(green, "All checks passed. Next: wxkf link, then go run ./examples/echo (or your own service)."))
	case 1:
		t.printf("%s\n", t.paint(red, "1 check failed. Fix it and run wxkf doctor again."))
	default:
		t.printf("%s\n", t.paint(red, fmt.Sprintf("%d checks failed. Fix them in order and run wxkf doctor again.", failed)))
	}
}

// probeTimeout bounds one network probe of the callback, cursor or Redis checks.
const probeTimeout = 10 * time.Second
