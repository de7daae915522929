package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wxkf/wxkf/cursor"
	"github.com/wxkf/wxkf/examples/llmtest"
	"github.com/wxkf/wxkf/kf/kftest"
	"github.com/wxkf/wxkf/media"
)

// waitFor bounds every wait of these tests: generous, because the machine running them may be busy.
const waitFor = 20 * time.Second

// startSandbox runs the sandbox as main does (run on a free loopback port) and returns its base URL.
// It is stopped, and must stop cleanly, when the test ends.
func startSandbox(t *testing.T, cfg config) string {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	if cfg.StateDir == "" {
		cfg.StateDir = t.TempDir()
	}
	ready := make(chan string, 1)
	cfg.Ready = func(u string) { ready <- strings.TrimSuffix(u, "/") }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg) }()
	var base string
	select {
	case base = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("run ended before serving: %v", err)
	case <-time.After(waitFor):
		cancel()
		t.Fatal("sandbox did not start")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err, "run must stop cleanly")
		case <-time.After(45 * time.Second):
			t.Error("run did not return after its context ended")
		}
	})
	return base
}

// stream reads /api/events and collects what it gets.
type stream struct {
	t      *testing.T
	mu     sync.Mutex
	events []event
	signal chan struct{}
}

func openStream(t *testing.T, base string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/events", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	s := &stream{t: t, signal: make(chan struct{})}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 64<<10), 8<<20)
		for sc.Scan() {
			line, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var e event
			if json.Unmarshal([]byte(line), &e) != nil {
				continue
			}
			s.mu.Lock()
			s.events = append(s.events, e)
			close(s.signal)
			s.signal = make(chan struct{})
			s.mu.Unlock()
		}
	}()
	s.waitEvent(func(e event) bool { return e.Type == evReset }, "the snapshot")
	return s
}

// waitEvent returns the first event (from the start of the stream) that matches.
func (s *stream) waitEvent(match func(event) bool, what string) event {
	s.t.Helper()
	deadline := time.After(waitFor)
	for {
		s.mu.Lock()
		for _, e := range s.events {
			if match(e) {
				s.mu.Unlock()
				return e
			}
		}
		sig := s.signal
		s.mu.Unlock()
		select {
		case <-sig:
		case <-deadline:
			s.dump()
			s.t.Fatalf("no event: %s", what)
		}
	}
}

// dump logs the last events seen, to explain a timeout.
func (s *stream) dump() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.events[max(0, len(s.events)-60):] {
		switch {
		case e.Chat != nil:
			s.t.Logf("chat %s %s %s %q", e.Chat.User, e.Chat.Dir, e.Chat.Kind, e.Chat.Text)
		case e.Log != nil:
			s.t.Logf("log %s %s %v errcode=%d err=%s", e.Log.Kind, e.Log.Title, e.Log.Tags, e.Log.ErrCode, e.Log.Err)
		}
	}
}

// chats returns the chat bubbles of user seen so far (snapshot history included).
func (s *stream) chats(user string) []chatEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []chatEvent
	for _, e := range s.events {
		switch {
		case e.Chat != nil && e.Chat.User == user:
			out = append(out, *e.Chat)
		case e.Reset != nil:
			out = out[:0]
			for _, c := range e.Reset.Chat {
				if c.User == user {
					out = append(out, c)
				}
			}
		}
	}
	return out
}

// waitChats waits until user has n bubbles from (dir, from) and returns them.
func (s *stream) waitChats(user, dir, from string, n int) []chatEvent {
	s.t.Helper()
	var got []chatEvent
	s.waitEvent(func(event) bool {
		got = got[:0]
		for _, c := range s.chatsLocked(user) {
			if c.Dir == dir && (from == "" || c.From == from) {
				got = append(got, c)
			}
		}
		return len(got) >= n
	}, fmt.Sprintf("%d %s bubbles from %q for %s", n, dir, from, user))
	return got
}

// chatsLocked is chats for use inside a waitEvent match (s.mu held).
func (s *stream) chatsLocked(user string) []chatEvent {
	var out []chatEvent
	for _, e := range s.events {
		switch {
		case e.Chat != nil && e.Chat.User == user:
			out = append(out, *e.Chat)
		case e.Reset != nil:
			out = out[:0]
			for _, c := range e.Reset.Chat {
				if c.User == user {
					out = append(out, c)
				}
			}
		}
	}
	return out
}

func (s *stream) logs() []logEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []logEvent
	for _, e := range s.events {
		if e.Log != nil {
			out = append(out, *e.Log)
		}
		if e.Reset != nil {
			out = append(out, e.Reset.Log...)
		}
	}
	return out
}

func (s *stream) waitLog(match func(logEvent) bool, what string) logEvent {
	s.t.Helper()
	e := s.waitEvent(func(e event) bool { return e.Log != nil && match(*e.Log) }, what)
	return *e.Log
}

func tagValue(l logEvent, k string) string {
	for _, t := range l.Tags {
		if t.K == k {
			return t.V
		}
	}
	return ""
}

// postJSON posts v and decodes the answer into a map; it returns the status.
func postJSON(t *testing.T, url string, v any) (int, map[string]any) {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func mustPost(t *testing.T, url string, v any) map[string]any {
	t.Helper()
	status, out := postJSON(t, url, v)
	require.Equal(t, http.StatusOK, status, "POST %s: %v", url, out)
	return out
}

func uploadFile(t *testing.T, base, user, filename string, data []byte) (int, map[string]any) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	require.NoError(t, mw.WriteField("user", user))
	fw, err := mw.CreateFormFile("file", filename)
	require.NoError(t, err)
	_, _ = fw.Write(data)
	require.NoError(t, mw.Close())
	resp, err := http.Post(base+"/api/upload", mw.FormDataContentType(), &body)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func testPNG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), 160, 255})
		}
	}
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	return buf.Bytes()
}

func getMedia(t *testing.T, base, id, query string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(base + "/api/media/" + id + query)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

// The whole path of one text: the page posts it, the fake WeCom pushes a signed callback to the
// Channel on the same server, the Channel pulls it with sync_msg, the bot echoes it with send_msg,
// and the page's event stream shows each step.
func TestTextEchoThroughEventStream(t *testing.T) {
	t.Parallel()
	base := startSandbox(t, config{})
	s := openStream(t, base)

	mustPost(t, base+"/api/send", sendRequest{User: "alice", Text: "你好, sandbox"})
	in := s.waitChats("alice", "in", "", 1)
	out := s.waitChats("alice", "out", "bot", 1)
	assert.Equal(t, "你好, sandbox", in[0].Text)
	assert.Equal(t, "你好, sandbox", out[0].Text)
	assert.Equal(t, "text", out[0].Kind)
	require.NotEmpty(t, out[0].MsgID, "the bubble carries the client msgid of the send")

	s.waitLog(func(l logEvent) bool { return l.Kind == "callback" && tagValue(l, "HTTP") == "200" }, "a callback answered 200")
	sync := s.waitLog(func(l logEvent) bool { return l.Kind == "sync" && tagValue(l, "msgs") == "1 · text×1" }, "a sync_msg pull with the message")
	assert.Equal(t, "(none)", tagValue(sync, "cursor"), "the first pull has no cursor")
	assert.Equal(t, "callback", tagValue(sync, "token"), "the pull uses the callback's token")
	assert.Equal(t, "0", tagValue(sync, "has_more"))
	assert.NotEmpty(t, tagValue(sync, "next"))
	send := s.waitLog(func(l logEvent) bool { return l.Kind == "send" && tagValue(l, "msgid") == out[0].MsgID }, "the send_msg line")
	assert.Equal(t, "alice", tagValue(send, "to"))
	assert.Equal(t, "text", tagValue(send, "msgtype"))

	// Secrets never reach the page.
	for _, l := range s.logs() {
		raw, _ := json.Marshal(l)
		assert.NotContains(t, string(raw), kftest.DefaultSecret)
		assert.NotContains(t, string(raw), kftest.DefaultEncodingAESKey)
	}

	// The state reflects WeCom's quota (one of five used) and the Channel's counters.
	state := func() stateEvent {
		resp, err := http.Get(base + "/api/state")
		require.NoError(t, err)
		defer resp.Body.Close()
		var st stateEvent
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
		return st
	}
	assert.Equal(t, 4, state().Customers["alice"].QuotaLeft)
	require.Eventually(t, func() bool {
		st := state()
		return st.Stats.Replies == 1 && st.Stats.Callbacks >= 1 && st.Stats.Handled == 1
	}, waitFor, 20*time.Millisecond, "stats: %+v", state().Stats)
	// The OpenTelemetry card: the one send, one handler run, and the cursor lag of the account.
	require.Eventually(t, func() bool {
		m := state().Metrics
		return m != nil && m.Sends["ok"] == 1 && m.HandlerRuns >= 1 && m.CursorLagS != nil
	}, waitFor, 20*time.Millisecond, "metrics: %+v", state().Metrics)
	m := state().Metrics
	assert.Positive(t, m.HandlerP50MS)
	assert.GreaterOrEqual(t, m.HandlerP99MS, m.HandlerP50MS)
	assert.GreaterOrEqual(t, *m.CursorLagS, 0.0)
}

// "long" is split by Replier.Text into parts of at most 2048 bytes; the page labels them 1/3..3/3,
// live and in the snapshot a new page gets.
func TestLongTextPartsLabelled(t *testing.T) {
	t.Parallel()
	base := startSandbox(t, config{})
	s := openStream(t, base)
	mustPost(t, base+"/api/send", sendRequest{User: "bob", Text: "long"})
	out := s.waitChats("bob", "out", "bot", 3)
	var joined strings.Builder
	for _, c := range out {
		assert.LessOrEqual(t, len(c.Text), media.MaxTextBytes)
		joined.WriteString(c.Text)
	}
	assert.Equal(t, longText(), joined.String(), "the parts put together are the text")
	parts := s.waitEvent(func(e event) bool { return e.Parts != nil }, "the parts annotation")
	require.Len(t, parts.Parts.IDs, 3)
	for i, c := range out {
		assert.Equal(t, c.MsgID, parts.Parts.IDs[i])
	}

	fresh := openStream(t, base) // a page opened later gets the labels in its snapshot
	got := fresh.chats("bob")
	var labelled []chatEvent
	for _, c := range got {
		if c.Dir == "out" {
			labelled = append(labelled, c)
		}
	}
	require.Len(t, labelled, 3)
	for i, c := range labelled {
		assert.Equal(t, i+1, c.Part)
		assert.Equal(t, 3, c.Parts)
	}
}

// A picture goes WeCom → media/get → FitImage → media/upload → send_msg image, and the page can load
// both the customer's and the bot's picture.
func TestImageEcho(t *testing.T) {
	t.Parallel()
	base := startSandbox(t, config{})
	s := openStream(t, base)
	status, out := uploadFile(t, base, "carol", "photo.png", testPNG(t, 64, 48))
	require.Equal(t, http.StatusOK, status, out)
	assert.Equal(t, "image", out["kind"])

	in := s.waitChats("carol", "in", "", 1)
	reply := s.waitChats("carol", "out", "bot", 1)
	assert.Equal(t, "image", in[0].Kind)
	assert.Equal(t, "image", reply[0].Kind)
	require.NotEmpty(t, reply[0].MediaID)
	assert.NotEqual(t, in[0].MediaID, reply[0].MediaID, "the bot uploaded its own copy")

	for _, id := range []string{in[0].MediaID, reply[0].MediaID} {
		resp, body := getMedia(t, base, id, "")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Contains(t, []string{"image/png", "image/jpeg"}, resp.Header.Get("Content-Type"))
		assert.True(t, strings.HasPrefix(resp.Header.Get("Content-Disposition"), "inline"))
		cfg, _, err := image.DecodeConfig(bytes.NewReader(body))
		require.NoError(t, err)
		assert.Equal(t, 64, cfg.Width)
		assert.Equal(t, 48, cfg.Height)
	}
	s.waitLog(func(l logEvent) bool {
		return l.Kind == "media" && l.Title == "media/upload" && tagValue(l, "type") == "image"
	}, "the upload")
	s.waitLog(func(l logEvent) bool { return l.Kind == "media" && l.Title == "media/get" }, "the download")
}

// enter_session with a welcome_code is answered by send_msg_on_event with the menu; the code is
// single use, and WeCom gives none to a customer who wrote in the last 48 h.
func TestWelcomeMenuOnce(t *testing.T) {
	t.Parallel()
	base := startSandbox(t, config{})
	s := openStream(t, base)
	out := mustPost(t, base+"/api/enter", map[string]string{"user": "dave"})
	assert.Equal(t, true, out["welcome_code"])
	w := s.waitChats("dave", "out", "welcome", 1)
	require.Equal(t, "menu", w[0].Kind)
	require.NotNil(t, w[0].Menu)
	assert.Contains(t, w[0].Menu.Head, "demo bot")
	require.Len(t, w[0].Menu.Items, 5)
	assert.Equal(t, "help", w[0].Menu.Items[0].ID)
	s.waitLog(func(l logEvent) bool { return l.Title == "kf/send_msg_on_event" && l.ErrCode == 0 }, "send_msg_on_event")

	// Clicking a menu item sends its id back as menu_id: the bot answers the command.
	mustPost(t, base+"/api/send", sendRequest{User: "dave", Text: "What can you do?", MenuID: "help"})
	help := s.waitChats("dave", "out", "bot", 1)
	assert.Contains(t, help[0].Text, "what I can do")

	out = mustPost(t, base+"/api/enter", map[string]string{"user": "dave"})
	assert.Equal(t, false, out["welcome_code"])
	notes := s.waitChats("dave", "note", "", 3)
	assert.Contains(t, notes[len(notes)-1].Text, "no welcome_code")
}

// With a human servicer on the session the bot stays quiet (the Replier refuses before WeCom would
// answer 95018); back with the bot, it answers again.
func TestHumanHandoffAndBack(t *testing.T) {
	t.Parallel()
	base := startSandbox(t, config{})
	s := openStream(t, base)
	mustPost(t, base+"/api/send", sendRequest{User: "erin", Text: "first"})
	s.waitChats("erin", "out", "bot", 1)

	mustPost(t, base+"/api/fault", map[string]string{"action": "human", "user": "erin"})
	s.waitChats("erin", "out", "servicer", 1)
	mustPost(t, base+"/api/send", sendRequest{User: "erin", Text: "are you a bot?"})
	s.waitEvent(func(e event) bool {
		return e.Chat != nil && e.Chat.User == "erin" && e.Chat.Dir == "note" && strings.Contains(e.Chat.Text, "ErrHumanServicer")
	}, "the note that the bot stayed quiet")
	bot := 0
	for _, c := range s.chats("erin") {
		if c.Dir == "out" && c.From == "bot" {
			bot++
		}
	}
	assert.Equal(t, 1, bot, "no bot reply while a human has the session")

	mustPost(t, base+"/api/fault", map[string]string{"action": "bot", "user": "erin"})
	mustPost(t, base+"/api/send", sendRequest{User: "erin", Text: "back?"})
	out := s.waitChats("erin", "out", "bot", 2)
	assert.Equal(t, "back?", out[1].Text)
}

// The bot's "human" command hands the session over through the API (service_state/trans).
func TestBotHandoffCommand(t *testing.T) {
	t.Parallel()
	base := startSandbox(t, config{})
	s := openStream(t, base)
	mustPost(t, base+"/api/send", sendRequest{User: "frank", Text: "human"})
	s.waitChats("frank", "out", "servicer", 1)
	trans := s.waitLog(func(l logEvent) bool { return l.Title == "kf/service_state/trans" }, "service_state/trans")
	assert.Equal(t, 0, trans.ErrCode)
	assert.Equal(t, "3 human", tagValue(trans, "to_state"))
	assert.Equal(t, servicerID, tagValue(trans, "servicer"))
}

// Faults: an expired token costs one 42001 and a refresh; a busy WeCom costs retries; a retry
// storm of identical callbacks is coalesced. Every customer message is still answered once.
func TestFaultsAreSurvived(t *testing.T) {
	t.Parallel()
	base := startSandbox(t, config{})
	s := openStream(t, base)
	mustPost(t, base+"/api/send", sendRequest{User: "gina", Text: "one"})
	s.waitChats("gina", "out", "bot", 1)

	mustPost(t, base+"/api/fault", map[string]string{"action": "expire_token"})
	time.Sleep(quotaPace)
	mustPost(t, base+"/api/send", sendRequest{User: "gina", Text: "two"})
	out := s.waitChats("gina", "out", "bot", 2)
	assert.Equal(t, "two", out[1].Text)
	s.waitLog(func(l logEvent) bool { return l.ErrCode == 42001 }, "a 42001 answer")
	s.waitLog(func(l logEvent) bool { return l.Kind == "token" && l.ErrCode == 0 && len(s.tokens()) >= 2 }, "a second gettoken")

	mustPost(t, base+"/api/fault", map[string]string{"action": "busy_on"})
	for i := range 4 {
		time.Sleep(quotaPace)
		mustPost(t, base+"/api/send", sendRequest{User: "gina", Text: fmt.Sprintf("busy %d", i)})
		out = s.waitChats("gina", "out", "bot", 3+i)
	}
	mustPost(t, base+"/api/fault", map[string]string{"action": "busy_off"})
	var texts []string
	for _, c := range out {
		texts = append(texts, c.Text)
	}
	assert.Equal(t, []string{"one", "two", "busy 0", "busy 1", "busy 2", "busy 3"}, texts, "in order, once each")

	res := mustPost(t, base+"/api/fault", map[string]string{"action": "storm"})
	assert.Contains(t, res["detail"], "20 identical callbacks")
	time.Sleep(quotaPace)
	mustPost(t, base+"/api/send", sendRequest{User: "gina", Text: "after the storm"})
	out = s.waitChats("gina", "out", "bot", 7)
	assert.Equal(t, "after the storm", out[6].Text)
	time.Sleep(300 * time.Millisecond) // anything sent twice would show up by now
	bot := 0
	for _, c := range s.chats("gina") {
		if c.Dir == "out" && c.From == "bot" {
			bot++
		}
	}
	assert.Equal(t, 7, bot, "no reply duplicated by retries or the storm")
}

func (s *stream) tokens() []logEvent {
	var out []logEvent
	for _, l := range s.logsLocked() {
		if l.Kind == "token" && l.ErrCode == 0 {
			out = append(out, l)
		}
	}
	return out
}

func (s *stream) logsLocked() []logEvent {
	var out []logEvent
	for _, e := range s.events {
		if e.Log != nil {
			out = append(out, *e.Log)
		}
	}
	return out
}

// flood: 7 attempted messages, 5 sent (WeCom's quota per customer message), the rest held back
// locally, never a 95001.
func TestFloodStopsAtQuota(t *testing.T) {
	t.Parallel()
	base := startSandbox(t, config{})
	s := openStream(t, base)
	mustPost(t, base+"/api/send", sendRequest{User: "hank", Text: "flood"})
	out := s.waitChats("hank", "out", "bot", 5)
	s.waitEvent(func(e event) bool {
		return e.Chat != nil && e.Chat.User == "hank" && e.Chat.Dir == "note" && strings.Contains(e.Chat.Text, "5 went out, 2 were held back")
	}, "the quota note")
	assert.Len(t, out, 5)
	for _, l := range s.logs() {
		assert.NotEqual(t, 95001, l.ErrCode)
	}
	st := s.waitEvent(func(e event) bool {
		return e.State != nil && e.State.Customers["hank"].QuotaLeft == 0
	}, "quota 0 in the state")
	assert.Equal(t, 0, st.State.Customers["hank"].QuotaLeft)
}

// Voice and files: the sample voice is echoed as voice (AMR-NB, playable through ffmpeg when it is
// installed), "file" sends a downloadable file.
func TestVoiceAndFile(t *testing.T) {
	t.Parallel()
	base := startSandbox(t, config{})
	s := openStream(t, base)
	mustPost(t, base+"/api/voice", map[string]string{"user": "ivy"})
	v := s.waitChats("ivy", "out", "bot", 1)
	require.Equal(t, "voice", v[0].Kind)
	assert.InDelta(t, 1960, v[0].DurationMS, 100)
	resp, body := getMedia(t, base, v[0].MediaID, "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.True(t, bytes.HasPrefix(body, []byte("#!AMR\n")))
	assert.True(t, strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment"))
	if (&media.FFmpeg{}).Available() {
		assert.True(t, v[0].Playable)
		resp, wav := getMedia(t, base, v[0].MediaID, "?play=wav")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "audio/wav", resp.Header.Get("Content-Type"))
		pcm, rate, err := media.DecodeWAV(wav)
		require.NoError(t, err)
		assert.Equal(t, 8000, rate)
		assert.InDelta(t, 15680, len(pcm), 400)
	}

	mustPost(t, base+"/api/send", sendRequest{User: "ivy", Text: "file"})
	f := s.waitChats("ivy", "out", "bot", 2)
	require.Equal(t, "file", f[1].Kind)
	assert.Equal(t, "wxkf-sandbox.txt", f[1].Filename)
	resp, body = getMedia(t, base, f[1].MediaID, "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, fileText(), body)
	assert.Contains(t, resp.Header.Get("Content-Disposition"), `attachment; filename=wxkf-sandbox.txt`)
	assert.Equal(t, "sandbox", resp.Header.Get("Content-Security-Policy"), "downloads never render on the page's origin")

	// A file the customer picks comes back the same.
	status, out := uploadFile(t, base, "ivy", "notes.csv", []byte("a,b\n1,2\n"))
	require.Equal(t, http.StatusOK, status, out)
	assert.Equal(t, "file", out["kind"])
	f = s.waitChats("ivy", "out", "bot", 3)
	assert.Equal(t, "notes.csv", f[2].Filename)
}

// The page's API refuses what it should.
func TestAPIRefusals(t *testing.T) {
	t.Parallel()
	base := startSandbox(t, config{})
	for _, tc := range []struct {
		name   string
		path   string
		body   any
		status int
	}{
		{"bad customer name", "/api/send", sendRequest{User: "a b", Text: "x"}, http.StatusBadRequest},
		{"empty customer", "/api/send", sendRequest{Text: "x"}, http.StatusBadRequest},
		{"empty text", "/api/send", sendRequest{User: "u"}, http.StatusBadRequest},
		{"too long", "/api/send", sendRequest{User: "u", Text: strings.Repeat("x", maxTextBytes+1)}, http.StatusBadRequest},
		{"unknown field", "/api/send", map[string]string{"user": "u", "text": "x", "extra": "y"}, http.StatusBadRequest},
		{"unknown fault", "/api/fault", map[string]string{"action": "meteor"}, http.StatusBadRequest},
		{"fault without customer", "/api/fault", map[string]string{"action": "human"}, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _ := postJSON(t, base+tc.path, tc.body)
			assert.Equal(t, tc.status, status)
		})
	}

	t.Run("not JSON", func(t *testing.T) {
		resp, err := http.Post(base+"/api/send", "text/plain", strings.NewReader(`{"user":"u","text":"x"}`))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode)
	})
	t.Run("cross origin", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, base+"/api/send", strings.NewReader(`{"user":"u","text":"x"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", "https://evil.example")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	})
	t.Run("unknown media", func(t *testing.T) {
		resp, _ := getMedia(t, base, "3nope", "")
		assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	})
	t.Run("empty upload", func(t *testing.T) {
		status, _ := uploadFile(t, base, "u", "x.bin", []byte("tiny"))
		assert.Equal(t, http.StatusBadRequest, status)
	})
	t.Run("forged callback", func(t *testing.T) {
		resp, err := http.Post(base+"/wxkf/?msg_signature=00&timestamp=1&nonce=2", "text/xml",
			strings.NewReader("<xml><ToUserName>x</ToUserName><Encrypt>AAAA</Encrypt></xml>"))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	})
	t.Run("page and headers", func(t *testing.T) {
		resp, err := http.Get(base + "/")
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Contains(t, string(body), "wxkf sandbox")
		assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'self'")
		assert.NotContains(t, string(body), "http://", "no external resources")
		assert.NotContains(t, string(body), "https://")
	})
}

// In LLM mode the answer streams from an OpenAI-compatible API into replies: paragraphs go out as
// they complete, the last message of the quota is kept for the rest, and nothing exceeds 5.
func TestLLMModeStreamsIntoQuota(t *testing.T) {
	t.Parallel()
	api := llmtest.NewServer(llmtest.WithAPIKey("sk-test"), llmtest.WithChunkRunes(7))
	t.Cleanup(api.Close)
	paragraph := strings.Repeat("wxkf streams the model's answer into WeCom messages. ", 24) // ~1.3 KB
	api.SetAnswer(func(r llmtest.Request) string {
		if r.LastUser() == "short" {
			return "A short answer."
		}
		return strings.TrimSpace(strings.Repeat(paragraph+"\n\n", 12)) // ~16 KB: more than 5 messages hold
	})
	base := startSandbox(t, config{LLM: newLLMClient(api.URL()+"/v1", "sk-test", "test-model")})
	s := openStream(t, base)
	snap := s.waitEvent(func(e event) bool { return e.Reset != nil }, "snapshot")
	assert.Equal(t, "llm", snap.Reset.Info.Mode)
	assert.Equal(t, "test-model", snap.Reset.Info.Model)

	mustPost(t, base+"/api/send", sendRequest{User: "judy", Text: "short"})
	out := s.waitChats("judy", "out", "bot", 1)
	assert.Equal(t, "A short answer.", out[0].Text)

	time.Sleep(quotaPace) // a later second: the short answer does not count against the next message
	mustPost(t, base+"/api/send", sendRequest{User: "judy", Text: "tell me everything"})
	out = s.waitChats("judy", "out", "bot", 6)
	s.waitEvent(func(e event) bool {
		return e.Chat != nil && e.Chat.User == "judy" && e.Chat.Dir == "note" && strings.Contains(e.Chat.Text, "cut to fit")
	}, "the note that the answer was cut")
	answer := out[1:]
	require.Len(t, answer, 5, "exactly the quota")
	for _, c := range answer {
		assert.LessOrEqual(t, len(c.Text), media.MaxTextBytes)
	}
	assert.True(t, strings.HasSuffix(answer[4].Text, "…"), "the last message ends with the truncation marker")
	s.waitEvent(func(e event) bool { return e.Typing != nil && e.Typing.User == "judy" && !e.Typing.Done }, "streaming text shown")
	s.waitEvent(func(e event) bool { return e.Typing != nil && e.Typing.User == "judy" && e.Typing.Done }, "streaming done")

	// The conversation is remembered: the model sees the earlier turn.
	reqs := api.Requests()
	require.Len(t, reqs, 2)
	var roles []string
	for _, m := range reqs[1].Messages {
		roles = append(roles, m.Role)
	}
	assert.Equal(t, []string{"system", "user", "assistant", "user"}, roles)

	// A failing model is reported to the customer in the message the quota kept.
	api.SetFailure(&llmtest.Failure{Status: http.StatusTooManyRequests, Message: "rate limited"})
	time.Sleep(quotaPace)
	mustPost(t, base+"/api/send", sendRequest{User: "judy", Text: "again"})
	out = s.waitChats("judy", "out", "bot", 7)
	assert.Contains(t, out[6].Text, "did not answer")
	assert.NotContains(t, out[6].Text, "sk-test")
}

// Shutdown ends the event streams and every goroutine the sandbox started.
func TestShutdownLeavesNothingRunning(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg := config{Addr: "127.0.0.1:0", StateDir: t.TempDir()}
	ready := make(chan string, 1)
	cfg.Ready = func(u string) { ready <- strings.TrimSuffix(u, "/") }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg) }()
	var base string
	select {
	case base = <-ready:
	case err := <-done:
		t.Fatalf("run ended before serving: %v", err)
	}

	// An open event stream and a conversation in progress.
	sctx, scancel := context.WithCancel(context.Background())
	defer scancel()
	req, _ := http.NewRequestWithContext(sctx, http.MethodGet, base+"/api/events", nil)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	streamDone := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		close(streamDone)
	}()
	mustPost(t, base+"/api/send", sendRequest{User: "kim", Text: "bye"})

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(45 * time.Second):
		buf := make([]byte, 1<<20)
		t.Fatalf("run did not stop; goroutines:\n%s", buf[:runtime.Stack(buf, true)])
	}
	select {
	case <-streamDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the event stream was not ended by the shutdown")
	}
	http.DefaultClient.CloseIdleConnections()
}

// quotaPace spaces a customer's message from the bot's previous reply so that WeCom's one-second
// send_time tells them apart and the reply does not count against the new message's quota.
const quotaPace = 1300 * time.Millisecond

// Lost answers: a send that WeCom accepted but whose answer was lost is retried with the same
// client msgid; WeCom refuses the duplicate and the customer still gets every reply exactly once.
func TestLostAnswersNeverDuplicate(t *testing.T) {
	t.Parallel()
	base := startSandbox(t, config{})
	s := openStream(t, base)
	mustPost(t, base+"/api/fault", map[string]string{"action": "drop_on"})
	const n = 7
	var want []string
	var out []chatEvent
	for i := range n { // one at a time: the quota counts sends after the customer's latest message
		if i > 0 {
			// A customer message in the same second as the bot's reply cannot be ordered against
			// it (send_time has a one-second resolution): the reply would count against it.
			time.Sleep(quotaPace)
		}
		want = append(want, fmt.Sprintf("lost %d", i))
		mustPost(t, base+"/api/send", sendRequest{User: "liam", Text: want[i]})
		out = s.waitChats("liam", "out", "bot", i+1)
	}
	mustPost(t, base+"/api/fault", map[string]string{"action": "drop_off"})
	time.Sleep(300 * time.Millisecond) // a duplicate would show up by now
	var got []string
	for _, c := range s.chats("liam") {
		if c.Dir == "out" && c.From == "bot" {
			got = append(got, c.Text)
		}
	}
	assert.Equal(t, want, got, "every reply once, in order")
	require.Len(t, out, n)

	dropped, dup := 0, 0
	for _, l := range s.logs() {
		if l.Title == "kf/send_msg" && l.Err == "connection dropped" {
			dropped++
		}
		if l.Title == "kf/send_msg" && l.ErrCode == 40058 {
			dup++
		}
	}
	if dropped > 0 {
		assert.Positive(t, dup, "a dropped, accepted send comes back as a refused duplicate")
		st := s.waitEvent(func(e event) bool { return e.State != nil && e.State.Stats.DuplicateSends > 0 }, "the dup counter")
		assert.Positive(t, st.State.Stats.DuplicateSends)
	}
	t.Logf("sends dropped after processing: %d, duplicates refused: %d", dropped, dup)
}

// Messages that arrive together share one quota: WeCom counts the sends after the customer's
// latest message, so a burst of 7 pulled in one page gets 5 replies and 2 visible refusals, and
// never a 95001.
func TestBurstSharesOneQuota(t *testing.T) {
	t.Parallel()
	var sb *sandbox
	base := startSandbox(t, config{inspect: func(s *sandbox) { sb = s }})
	s := openStream(t, base)
	// The customer writes 7 messages before WeCom gets to push a callback; then one callback.
	sb.srv.SetCallbackURL("")
	for i := range 7 {
		sb.srv.AddText("mia", fmt.Sprintf("burst %d", i))
	}
	sb.srv.SetCallbackURL(sb.cbURL)
	require.NoError(t, sb.srv.Notify(context.Background(), sb.cbURL, sb.srv.OpenKfID()))

	out := s.waitChats("mia", "out", "bot", 5)
	notes := s.waitChats("mia", "note", "", 2)
	for i, c := range out {
		assert.Equal(t, fmt.Sprintf("burst %d", i), c.Text)
	}
	for _, n := range notes {
		assert.Contains(t, n.Text, "held back (ErrQuotaExceeded)")
	}
	s.waitLog(func(l logEvent) bool { return l.Kind == "sync" && tagValue(l, "msgs") == "7 · text×7" }, "one page of 7")
	for _, l := range s.logs() {
		assert.NotEqual(t, 95001, l.ErrCode)
	}
	assert.Len(t, sb.srv.SentTo(sb.srv.OpenKfID(), "mia"), 5)
}

// With -burst, quick messages are one turn: the echo bot answers the three texts once, one per
// line, with a note saying they were merged; a later message is a turn of its own.
func TestBurstWindowMergesQuickMessages(t *testing.T) {
	t.Parallel()
	var sb *sandbox
	base := startSandbox(t, config{Burst: 300 * time.Millisecond, inspect: func(s *sandbox) { sb = s }})
	s := openStream(t, base)
	sb.srv.SetCallbackURL("")
	for _, text := range []string{"你好", "在吗", "几点开门"} {
		sb.srv.AddText("nia", text)
	}
	sb.srv.SetCallbackURL(sb.cbURL)
	require.NoError(t, sb.srv.Notify(context.Background(), sb.cbURL, sb.srv.OpenKfID()))

	out := s.waitChats("nia", "out", "bot", 1)
	assert.Equal(t, "你好\n在吗\n几点开门", out[0].Text)
	note := s.waitChats("nia", "note", "", 1)
	assert.Contains(t, note[0].Text, "3 quick messages merged into one turn")
	require.Eventually(t, func() bool { st := sb.ch.Stats(); return st.InFlight == 0 && st.QueueDepth == 0 },
		10*time.Second, 5*time.Millisecond)
	assert.Len(t, sb.srv.SentTo(sb.srv.OpenKfID(), "nia"), 1, "one answer for the burst")
	assert.EqualValues(t, 1, sb.ch.Stats().Bursts)

	sb.srv.AddText("nia", "谢谢")
	out = s.waitChats("nia", "out", "bot", 2)
	assert.Equal(t, "谢谢", out[1].Text)
}

// A state directory with cursors of an earlier run is refused with a clear message: the embedded
// WeCom starts empty, so those cursors would hide every new message.
func TestStaleStateDirRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, cursor.CursorFileName), []byte(`{"wk1":"AQAAAA"}`), 0o600))
	err := run(context.Background(), config{Addr: "127.0.0.1:0", StateDir: dir})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "fresh -state directory")
}
