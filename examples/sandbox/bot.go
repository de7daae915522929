package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/wxkf/wxkf/kf"
)

// bot is the demo bot: an echo bot with a few commands, or an LLM front end (llm.go) when
// configured. It only uses the public SDK: the Channel's hooks, the Replier and DownloadMedia.
type bot struct {
	sb  *sandbox
	llm *llmBot // nil: echo mode
}

func newBot(sb *sandbox, c *llmClient) *bot {
	b := &bot{sb: sb}
	if c != nil {
		b.llm = newLLMBot(c)
	}
	return b
}

// onWelcome answers enter_session's welcome_code (send_msg_on_event within 20 s, §5/§6) with a
// menu: clicking an item sends its id back as a text's menu_id.
func (b *bot) onWelcome(_ context.Context, m *kf.Message) (kf.Content, error) {
	b.note(m.Event.ExternalUserID, slog.LevelInfo, "OnWelcome: welcome_code received, answering with a menu")
	head := "您好 👋 I'm the wxkf demo bot. Type anything and I'll echo it back."
	if b.llm != nil {
		head = "您好 👋 I'm the wxkf demo bot, answering through " + b.llm.Name() + ". Ask me anything."
	}
	return kf.NewMenu(head, []kf.MenuItem{
		kf.MenuClick("help", "What can you do?"),
		kf.MenuClick("long", "Send a long text"),
		kf.MenuClick("image", "Send a picture"),
		kf.MenuClick("voice", "Send a voice message"),
		kf.MenuClick("file", "Send a file"),
	}, "Or send me a picture from the 🖼 button."), nil
}

// onMessage answers one customer message (origin 3). Expected refusals (quota used up, a human
// has the session) are shown and end the handler quietly; other errors go back to the Channel,
// which retries transient ones with the same client msgids.
func (b *bot) onMessage(ctx context.Context, m *kf.Message, r kf.Replier) error {
	user := m.ExternalUserID
	r = &tracingReplier{Replier: r, b: b, user: user}
	if len(m.Burst) > 1 {
		m = b.merge(m)
	}
	var err error
	switch {
	case m.Text != nil:
		err = b.onText(ctx, m, r)
	case m.Image != nil:
		err = b.echoMedia(ctx, user, m.Image.MediaID, "image", func(data []byte, _ string) error { return r.Image(ctx, data) })
	case m.Voice != nil:
		err = b.echoMedia(ctx, user, m.Voice.MediaID, "voice", func(data []byte, _ string) error { return r.Voice(ctx, data) })
	case m.Video != nil:
		err = b.echoMedia(ctx, user, m.Video.MediaID, "video", func(data []byte, _ string) error { return r.Video(ctx, data) })
	case m.File != nil:
		err = b.echoMedia(ctx, user, m.File.MediaID, "file", func(data []byte, name string) error { return r.File(ctx, name, data) })
	case m.Location != nil:
		err = r.Text(ctx, fmt.Sprintf("📍 %s %s (%.5f, %.5f)", m.Location.Name, m.Location.Address, m.Location.Latitude, m.Location.Longitude))
	default:
		err = r.Text(ctx, "I got a "+string(m.MsgType)+" message; I only echo text, pictures, voice, video and files.")
	}
	return b.outcome(user, err)
}

// merge turns a burst (the sandbox's -burst window) into one turn: the texts of its messages, one
// per line, answered as one text; a burst without text is answered by its last message.
func (b *bot) merge(m *kf.Message) *kf.Message {
	var texts []string
	for _, bm := range m.Burst {
		if bm.Text != nil && bm.Text.MenuID == "" {
			texts = append(texts, bm.Text.Content)
		}
	}
	b.note(m.ExternalUserID, slog.LevelInfo, fmt.Sprintf("burst: %d messages answered as one turn (WithBurstWindow)", len(m.Burst)),
		"texts", len(texts))
	b.sb.hub.chatEvent(chatEvent{User: m.ExternalUserID, Dir: "note", Kind: "note", Tone: "info",
		Text: fmt.Sprintf("%d quick messages merged into one turn (WithBurstWindow); the replies count against the last one's quota", len(m.Burst))})
	if len(texts) < 2 || m.Text == nil || m.Text.MenuID != "" {
		return m
	}
	merged := *m
	t := *m.Text
	t.Content = strings.Join(texts, "\n")
	merged.Text = &t
	return &merged
}

func (b *bot) onText(ctx context.Context, m *kf.Message, r kf.Replier) error {
	text := m.Text.Content
	cmd := strings.ToLower(strings.TrimSpace(text))
	if m.Text.MenuID != "" {
		cmd = m.Text.MenuID
	}
	switch cmd {
	case "help", "?", "帮助":
		return r.Text(ctx, helpText(b.llm != nil))
	case "long", "长文":
		return r.Text(ctx, longText())
	case "image", "picture", "图片":
		return r.Image(ctx, botPicture("a picture from the bot"))
	case "voice", "语音":
		return r.Voice(ctx, sampleVoice)
	case "file", "文件":
		return r.File(ctx, "wxkf-sandbox.txt", fileText())
	case "menu", "菜单":
		return r.Menu(ctx, kf.NewMenu("Pick one:", []kf.MenuItem{
			kf.MenuClick("long", "A long text"), kf.MenuClick("image", "A picture"),
			kf.MenuClick("voice", "A voice message"), kf.MenuClick("help", "Help"),
		}, ""))
	case "quota":
		return r.Text(ctx, fmt.Sprintf("I may send you %d more message(s) before you write again (WeCom: 5 per customer message, within 48 h).", r.QuotaLeft()))
	case "flood":
		return b.flood(ctx, m.ExternalUserID, r)
	case "human", "转人工":
		if err := r.Text(ctx, "Transferring you to a human servicer…"); err != nil {
			return err
		}
		if err := r.Handoff(ctx, servicerID); err != nil {
			return err
		}
		b.sb.servicerJoins(m.ExternalUserID, "the bot handed the session over (service_state/trans → 3)")
		return nil
	}
	if b.llm != nil {
		return b.answerLLM(ctx, m.ExternalUserID, text, r)
	}
	return r.Text(ctx, text)
}

// flood tries 7 separate messages: the Replier sends 5 and refuses the rest locally
// (ErrQuotaExceeded) instead of letting WeCom answer 95001.
func (b *bot) flood(ctx context.Context, user string, r kf.Replier) error {
	const n = 7
	sent := 0
	var last error
	for i := 1; i <= n; i++ {
		err := r.Text(ctx, fmt.Sprintf("message %d of %d", i, n))
		if err == nil {
			sent++
			continue
		}
		if !errors.Is(err, kf.ErrQuotaExceeded) {
			return err
		}
		last = err
	}
	if last != nil {
		b.sb.hub.chatEvent(chatEvent{User: user, Dir: "note", Kind: "note", Tone: "warn",
			Text: fmt.Sprintf("quota: the bot tried %d messages, %d went out, %d were held back (ErrQuotaExceeded — no 95001 from WeCom)", n, sent, n-sent)})
		b.note(user, slog.LevelWarn, "flood: quota exhausted", "tried", n, "sent", sent)
	}
	return nil
}

// echoMedia downloads what the customer sent (cgi-bin/media/get) and sends it back with send.
func (b *bot) echoMedia(ctx context.Context, user, mediaID, kind string, send func(data []byte, filename string) error) error {
	var buf bytes.Buffer
	dm, err := b.sb.ch.DownloadMedia(ctx, mediaID, &buf)
	if err != nil {
		return fmt.Errorf("download %s: %w", kind, err)
	}
	name := dm.Filename
	if name == "" {
		name = kind
	}
	b.note(user, slog.LevelInfo, "echo "+kind, "bytes", buf.Len(), "content_type", dm.ContentType)
	return send(buf.Bytes(), name)
}

// outcome turns the Replier's refusals into visible notes; the handler then ends normally (there
// is nothing to retry). Anything else is returned to the Channel.
func (b *bot) outcome(user string, err error) error {
	var re *kf.ReplyError
	if err == nil || !errors.As(err, &re) {
		return err
	}
	var why string
	switch {
	case errors.Is(err, kf.ErrHumanServicer):
		why = "the bot stays quiet: a human servicer has the session (ErrHumanServicer, no 95018 needed)"
	case errors.Is(err, kf.ErrSessionQueued):
		why = "the bot stays quiet: the session waits for a human servicer (ErrSessionQueued)"
	case errors.Is(err, kf.ErrSessionEnded):
		why = "the session has ended (ErrSessionEnded)"
	case errors.Is(err, kf.ErrSessionExpired):
		why = "more than 48 h since the customer wrote (ErrSessionExpired)"
	case errors.Is(err, kf.ErrQuotaExceeded) && re.Sent > 0 && re.DroppedBytes > 0:
		why = fmt.Sprintf("quota: the reply was cut to fit, %d bytes not sent (ErrQuotaExceeded)", re.DroppedBytes)
	case errors.Is(err, kf.ErrQuotaExceeded):
		why = fmt.Sprintf("quota: %d message(s) held back (ErrQuotaExceeded): WeCom allows 5 after the customer's latest message", max(re.Dropped, 1))
	default:
		why = re.Error()
	}
	b.sb.hub.chatEvent(chatEvent{User: user, Dir: "note", Kind: "note", Tone: "warn", Text: why})
	b.note(user, slog.LevelWarn, "reply refused", "err", err)
	return nil
}

// onEvent shows the events and human servicers' messages the Channel routes here (origin 4, 5).
func (b *bot) onEvent(_ context.Context, m *kf.Message, _ kf.Replier) error {
	user := m.ExternalUserID
	if m.Origin == kf.OriginServicer {
		b.note(user, slog.LevelInfo, "OnEvent: a human servicer's message (origin 5), not for the bot", "servicer", m.ServicerUserID)
		return nil
	}
	if m.Event == nil {
		b.note(user, slog.LevelInfo, "OnEvent: "+string(m.MsgType))
		return nil
	}
	if user == "" {
		user = m.Event.ExternalUserID
	}
	attrs := []any{"event_type", string(m.Event.EventType)}
	switch m.Event.EventType {
	case kf.EventEnterSession:
		attrs = append(attrs, "scene", m.Event.Scene, "welcome_code", m.Event.WelcomeCode != "")
	case kf.EventSessionStatusChange:
		attrs = append(attrs, "change_type", int(m.Event.ChangeType), "new_servicer", m.Event.NewServicerUserID)
	case kf.EventMsgSendFail:
		attrs = append(attrs, "fail_type", int(m.Event.FailType))
	}
	b.note(user, slog.LevelInfo, "OnEvent", attrs...)
	return nil
}

// note shows a line of the bot's own in the live log (and the sandbox's log).
func (b *bot) note(user string, level slog.Level, msg string, attrs ...any) {
	l := logEvent{Kind: "bot", Title: msg, User: user, Level: levelName(level)}
	if user != "" {
		l.Tags = append(l.Tags, tag{"customer", user})
	}
	for i := 0; i+1 < len(attrs); i += 2 {
		k, _ := attrs[i].(string)
		if k == "err" {
			l.Err = fmt.Sprint(attrs[i+1])
			continue
		}
		l.Tags = append(l.Tags, tag{k, fmt.Sprint(attrs[i+1])})
	}
	b.sb.hub.logEvent(l)
	b.sb.cfg.Log.Log(context.Background(), level, "sandbox bot: "+msg, append([]any{"user", user}, attrs...)...)
}

// tracingReplier notes which accepted sends each Text call produced, so the page can label the
// parts of a split text "1/3, 2/3, 3/3" exactly (the Replier splits at 2048 bytes, §6).
type tracingReplier struct {
	kf.Replier
	b    *bot
	user string
}

func (t *tracingReplier) Text(ctx context.Context, s string) error {
	srv := t.b.sb.srv
	before := len(srv.SentTo(srv.OpenKfID(), t.user))
	err := t.Replier.Text(ctx, s)
	var ids []string
	for _, snt := range srv.SentTo(srv.OpenKfID(), t.user)[before:] {
		if snt.MsgType == "text" && !snt.OnEvent {
			ids = append(ids, snt.ClientMsgID)
		}
	}
	if len(ids) > 1 {
		t.b.sb.hub.annotateParts(ids)
		t.b.note(t.user, slog.LevelInfo, "Replier.Text split the reply", "bytes", len(s), "parts", len(ids))
	}
	return err
}
