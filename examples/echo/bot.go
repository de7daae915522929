package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/wxkf/wxkf/kf"
	"github.com/wxkf/wxkf/media"
)

// testSwitches make the echo bot behave like a bot backed by a language model, for tests of the
// delivery guarantees: WECHATCOM_KF_ECHO_RUN_TAG=1 and WECHATCOM_KF_ECHO_DELAY_MS=N.
type testSwitches struct {
	// runTag: every text part starts with "[run XXXXXXXX] ", a tag chosen afresh on every run of
	// the handler (as a model answers differently on every run).
	runTag bool
	// delay: the handler waits this long before replying (as a model call would).
	delay time.Duration
}

// register installs the echo behaviour on ch.
func register(ch *kf.Channel, log *slog.Logger, sw testSwitches) {
	ch.OnMessage(func(ctx context.Context, m *kf.Message, r kf.Replier) error {
		if sw.delay > 0 {
			select {
			case <-time.After(sw.delay):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if sw.runTag && m.Text != nil {
			return echoTagged(ctx, m.Text.Content, r)
		}
		return echo(ctx, ch, m, r)
	})
	ch.OnDeadLetter(func(ctx context.Context, m *kf.Message, err error) {
		log.Error("message not answered", "msgid", m.MsgID, "msgtype", string(m.MsgType), "err", err)
	})
	ch.OnWelcome(func(ctx context.Context, m *kf.Message) (kf.Content, error) {
		return kf.NewText("您好，我是回声机器人：您发什么，我就回什么。"), nil
	})
	ch.OnEvent(func(ctx context.Context, m *kf.Message, r kf.Replier) error {
		ev := ""
		if m.Event != nil {
			ev = string(m.Event.EventType)
		}
		log.Info("event", "origin", m.Origin.String(), "msgtype", string(m.MsgType), "event", ev)
		return nil // human servicers' messages and system events are never echoed
	})
}

func echo(ctx context.Context, ch *kf.Channel, m *kf.Message, r kf.Replier) error {
	download := func(mediaID string) ([]byte, *kf.DownloadedMedia, error) {
		var buf bytes.Buffer
		info, err := ch.DownloadMedia(ctx, mediaID, &buf)
		return buf.Bytes(), info, err
	}
	switch {
	case m.Text != nil:
		return r.Text(ctx, m.Text.Content)
	case m.Image != nil:
		data, _, err := download(m.Image.MediaID)
		if err != nil {
			return err
		}
		return r.Image(ctx, data) // normalised to JPG/PNG ≤ 10 MB
	case m.Voice != nil:
		data, _, err := download(m.Voice.MediaID)
		if err != nil {
			return err
		}
		return r.Voice(ctx, data) // AMR, split into pieces ≤ 60 s and ≤ 2 MB
	case m.Video != nil:
		data, _, err := download(m.Video.MediaID)
		if err != nil {
			return err
		}
		return r.Video(ctx, data)
	case m.File != nil:
		data, info, err := download(m.File.MediaID)
		if err != nil {
			return err
		}
		return r.File(ctx, info.Filename, data)
	default:
		return r.Text(ctx, fmt.Sprintf("收到一条 %s 消息。", m.MsgType))
	}
}

// echoTagged echoes text in parts that each start with this run's tag: each part, tag included,
// is at most 2048 bytes of UTF-8, and the parts without their tags join into text exactly. Each
// part is its own Replier call, as a streaming model's paragraphs would be.
func echoTagged(ctx context.Context, text string, r kf.Replier) error {
	tag := fmt.Sprintf("[run %08x] ", rand.Uint32())
	for _, part := range media.SplitText(text, media.MaxTextBytes-len(tag)) {
		if err := r.Text(ctx, tag+part); err != nil {
			return err
		}
	}
	return nil
}
