// Command wxkf sets up, checks and operates a WeCom Customer Service (企业微信 微信客服) bot built
// with wxkf, from nothing to a working configuration:
//
//	wxkf keygen     # a fresh callback Token and EncodingAESKey to paste into the WeCom admin
//	wxkf doctor     # every check, ✔/✘, with the fix in plain words (中文 and English)
//	wxkf link       # each account's contact link, drawn as a QR code
//	wxkf accounts   # list, add, rename or delete accounts, set an avatar
//	wxkf send       # send a text to a customer, for a quick check
//
// Install it with
//
//	go install github.com/wxkf/wxkf/cmd/wxkf@latest
//
// It reads the configuration examples/echo reads (package config: chatgpt-on-wechat's wechatcom_kf
// keys): config.json in the working directory, or in the directory given with --dir, then the
// environment variables WECHATCOM_CORP_ID, WECHATCOM_KF_SECRET, WECHATCOM_KF_TOKEN,
// WECHATCOM_KF_AES_KEY, WECHATCOM_KF_CURSOR_DIR, WECHATCOM_KF_API_BASE and WECHATCOM_KF_REDIS_URL
// overriding it. It never prints the secret, the Token, the EncodingAESKey or an access token,
// except the fresh Token and key that keygen is asked for.
//
// Exit status: 0 when everything worked, 1 when a check or a call failed, 2 for a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"
)

func main() {
	// go-redis logs failed dials on its own; the redis check reports them in its words.
	goredis.SetLogger(&logging.VoidLogger{})
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

const usage = `wxkf sets up, checks and operates a WeCom Customer Service (微信客服) bot.

Usage:
  wxkf keygen [--json]                      a fresh callback Token and EncodingAESKey
  wxkf doctor [--url URL] [--json]          check the configuration, WeCom and the bot's state
  wxkf link [--scene S] [--png FILE]        each account's contact link, as a QR code
  wxkf accounts [list|add|rename|avatar|delete] ...
  wxkf send --to EXTERNAL_USERID [--kf OPEN_KFID] TEXT

Every command but keygen reads config.json in the working directory (--dir DIR for
another), then the environment: WECHATCOM_CORP_ID, WECHATCOM_KF_SECRET,
WECHATCOM_KF_TOKEN, WECHATCOM_KF_AES_KEY, ... (chatgpt-on-wechat's wechatcom_kf keys).

New here? wxkf keygen → paste into the WeCom admin → wxkf doctor → wxkf link.
Run "wxkf COMMAND -h" for a command's flags.
`

// command is one subcommand: it parses its own args and returns the exit status.
type command func(ctx context.Context, t *term, args []string) int

var commands = map[string]command{
	"keygen":   keygen,
	"doctor":   doctor,
	"link":     link,
	"accounts": accounts,
	"send":     send,
}

// run is the whole program: args without the program name, output to stdout and stderr.
func run(args []string, stdout, stderr io.Writer) int {
	t := newTerm(stdout, stderr)
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "wxkf: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	return cmd(context.Background(), t, args[1:])
}

// flags is a subcommand's flag set, writing its help to stderr.
func flags(t *term, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("wxkf "+name, flag.ContinueOnError)
	fs.SetOutput(t.stderr)
	fs.Usage = func() {
		fmt.Fprintf(t.stderr, "Usage: wxkf %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// configFlags adds the flags every command that talks to WeCom shares.
type configFlags struct {
	dir     string
	timeout time.Duration
}

func (c *configFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&c.dir, "dir", ".", "the directory holding config.json (a relative cursor dir is taken from it too)")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "how long the whole command may take")
}

// parse parses args, letting flags and positional arguments come in any order ("accounts add
// NAME --avatar FILE"); "--" ends the flags. A usage error has been reported when it fails.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// parseFlagsOnly parses args for a command that takes no positional argument. When ok is false
// the command returns status: -h was answered or a usage error reported.
func parseFlagsOnly(t *term, fs *flag.FlagSet, args []string) (status int, ok bool) {
	pos, err := parse(fs, args)
	if err != nil {
		return parseStatus(err), false
	}
	if len(pos) > 0 {
		return usageError(t, fs, "unexpected argument %q", pos[0]), false
	}
	return exitOK, true
}

// parseStatus maps a parse failure to the exit status: -h is not an error.
func parseStatus(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitUsage
}

// usageError reports a wrong invocation and returns exitUsage.
func usageError(t *term, fs *flag.FlagSet, format string, a ...any) int {
	fmt.Fprintf(t.stderr, "%s: %s\n", fs.Name(), fmt.Sprintf(format, a...))
	fs.Usage()
	return exitUsage
}

// joinArgs is the text of positional arguments, as a shell user means it.
func joinArgs(args []string) string { return strings.Join(args, " ") }
