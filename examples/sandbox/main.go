// Command sandbox runs a wxkf bot against an embedded fake WeCom and serves a page where you chat
// as the WeChat customer and watch what happens underneath: callbacks, sync_msg pulls, sends with
// their client msgids, the 5-message quota, session states, and faults you inject.
//
//	go run ./examples/sandbox            # then open http://127.0.0.1:8080
//	go run ./examples/sandbox -addr :9000
//
// No credentials and no network: kf/kftest plays WeCom on loopback and pushes signed callbacks to
// the kf.Channel mounted at /wxkf/ on the page's own server. The demo bot echoes; with
// OPENAI_BASE_URL and OPENAI_API_KEY set (OPENAI_MODEL optional) it answers through that
// OpenAI-compatible API instead. Pure Go: it builds with CGO_ENABLED=0.
//
// "§N" in comments refers to section N of docs/wecom-api.md in this repository.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "address of the page and of the callback URL (host:port)")
	flag.StringVar(&cfg.StateDir, "state", "", "directory for the Channel's cursor files, to look at while it runs; must be fresh each run (default: a temporary directory removed at exit)")
	flag.DurationVar(&cfg.Burst, "burst", 0, "merge a customer's messages sent within this window into one bot turn, e.g. 1.5s (0: answer each)")
	verbose := flag.Bool("v", false, "log every SDK line to stderr, not only warnings")
	flag.Parse()

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if c, ok := llmFromEnv(); ok {
		cfg.LLM = c
	}
	cfg.Ready = func(url string) {
		mode := "echo bot"
		if cfg.LLM != nil {
			mode = "LLM bot (" + cfg.LLM.model + ")"
		}
		fmt.Printf("wxkf sandbox: %s against an embedded fake WeCom\n  open %s  (Ctrl-C to stop)\n", mode, url)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox:", err)
		os.Exit(1)
	}
}
