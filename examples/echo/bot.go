package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"

	"github.com/wxkf/wxkf/kf"
)

// register installs the echo behaviour on ch.
func register(ch *kf.Channel, log *slog.Logger) {
	ch.OnMessage(func(ctx context.Context, m *kf.Message, r kf.Replier) error {
		return echo(ctx, ch, m, r)
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
