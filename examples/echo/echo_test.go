package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf/kftest"
	"github.com/wxkf/wxkf/media"
)

// The end-to-end test of the echo bot's contract (its package doc): it builds the echo binary, runs it against
// kftest as a separate process (so kill -9 and SIGTERM are real), and checks the contract.
func TestEchoEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "echo")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // the contract: pure Go
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	srv := kftest.NewServer()
	t.Cleanup(srv.Close)
	work := t.TempDir()
	// Settings as a chatgpt-on-wechat user has them: config.json, with the port from the environment.
	cfg := map[string]any{
		"channel_type":          "wechatcom_kf",
		"wechatcom_corp_id":     srv.CorpID(),
		"wechatcom_kf_secret":   srv.Secret(),
		"wechatcom_kf_token":    srv.CallbackToken(),
		"wechatcom_kf_aes_key":  srv.EncodingAESKey(),
		"wechatcom_kf_api_base": srv.URL(),
	}
	raw, _ := json.Marshal(cfg)
	require.NoError(t, os.WriteFile(filepath.Join(work, "config.json"), raw, 0o600))
	port := freePort(t)
	b := &bot{t: t, bin: bin, dir: work, env: []string{"WECHATCOM_KF_PORT=" + strconv.Itoa(port)}}
	url := fmt.Sprintf("http://127.0.0.1:%d/wxkf/", port)
	kfid := srv.OpenKfID()
	ctx := context.Background()
	b.start()
	t.Cleanup(b.kill)

	notify := func() { require.NoError(t, srv.Notify(ctx, url, kfid)) }
	wait := func(user string, n int) []kftest.Sent {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		sent, err := srv.WaitSentTo(wctx, kfid, user, n)
		require.NoError(t, err, "waiting for %d replies to %s; bot log:\n%s", n, user, b.log())
		return sent
	}

	t.Run("url verification", func(t *testing.T) {
		require.NoError(t, srv.VerifyURL(ctx, url))
	})

	t.Run("text", func(t *testing.T) {
		srv.AddText("u-text", "你好 wxkf 👋")
		notify()
		assert.Equal(t, "你好 wxkf 👋", wait("u-text", 1)[0].Text)
	})

	t.Run("long text", func(t *testing.T) {
		long := strings.Repeat("长文本测试，包含中文与 emoji 👨‍👩‍👧 和 English words. ", 80)
		require.Greater(t, len(long), 2*media.MaxTextBytes)
		srv.AddText("u-long", long)
		notify()
		parts := len(media.SplitText(long, media.MaxTextBytes))
		sent := wait("u-long", parts)
		var joined strings.Builder
		for _, s := range sent {
			assert.LessOrEqual(t, len(s.Text), media.MaxTextBytes)
			assert.True(t, utf8.ValidString(s.Text))
			joined.WriteString(s.Text)
		}
		assert.Equal(t, long, joined.String(), "parts concatenate to the original exactly")
	})

	t.Run("image", func(t *testing.T) {
		src := testPNG(t, 320, 200)
		srv.AddImage("u-image", src)
		notify()
		s := wait("u-image", 1)[0]
		assert.Equal(t, "image", s.MsgType)
		data, ctype, _, ok := srv.Media(s.MediaID)
		require.True(t, ok)
		assert.Contains(t, []string{"image/png", "image/jpeg"}, ctype)
		assert.LessOrEqual(t, len(data), media.MaxImageBytes)
		cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
		require.NoError(t, err)
		assert.Equal(t, 320, cfg.Width)
	})

	t.Run("voice over 60 s", func(t *testing.T) {
		amr := testAMR(75 * time.Second)
		srv.AddVoice("u-voice", amr)
		notify()
		sent := wait("u-voice", 2)
		var total time.Duration
		for _, s := range sent {
			assert.Equal(t, "voice", s.MsgType)
			data, _, _, ok := srv.Media(s.MediaID)
			require.True(t, ok)
			require.NoError(t, media.CheckVoice(data), "each piece ≤ 60 s and ≤ 2 MB")
			total += time.Duration(len(data)-6) / 32 * 20 * time.Millisecond
		}
		assert.Equal(t, 75*time.Second, total, "no frame lost")
	})

	t.Run("file", func(t *testing.T) {
		srv.AddFile("u-file", "report.txt", []byte("quarterly numbers"))
		notify()
		s := wait("u-file", 1)[0]
		assert.Equal(t, "file", s.MsgType)
		data, _, name, ok := srv.Media(s.MediaID)
		require.True(t, ok)
		assert.Equal(t, "quarterly numbers", string(data))
		assert.Equal(t, "report.txt", name)
	})

	t.Run("other types get one text", func(t *testing.T) {
		srv.AddLocation("u-loc", 39.9, 116.4, "天安门", "北京")
		notify()
		assert.Equal(t, "text", wait("u-loc", 1)[0].MsgType)
	})

	t.Run("welcome", func(t *testing.T) {
		code := srv.EnterSession("u-welcome", "qr", "")
		notify()
		s := wait("u-welcome", 1)[0]
		assert.True(t, s.OnEvent)
		assert.Equal(t, code, s.Code)
	})

	t.Run("human servicer messages are not echoed", func(t *testing.T) {
		srv.AddServicer("agent", 0)
		srv.AddServicerText("u-human", "agent", "人工回复")
		srv.AddText("u-human", "customer")
		notify()
		sent := wait("u-human", 1)
		time.Sleep(200 * time.Millisecond)
		assert.Len(t, srv.SentTo(kfid, "u-human"), 1)
		assert.Equal(t, "customer", sent[0].Text)
	})

	t.Run("retry storm", func(t *testing.T) {
		srv.AddText("u-storm", "once")
		require.NoError(t, srv.Storm(ctx, url, kfid, 20))
		wait("u-storm", 1)
		time.Sleep(300 * time.Millisecond)
		assert.Len(t, srv.SentTo(kfid, "u-storm"), 1, "one reply however many callbacks")
	})

	t.Run("restart after kill -9", func(t *testing.T) {
		srv.SetFaults(kftest.Faults{Latency: 40 * time.Millisecond, Paths: []string{"/cgi-bin/kf/send_msg"}})
		before := len(srv.Sent())
		const customers, each = 6, 2
		for i := 0; i < each; i++ {
			for c := 0; c < customers; c++ {
				srv.AddText(fmt.Sprintf("u-kill-%d", c), fmt.Sprintf("k%d", i))
			}
		}
		notify()
		require.Eventually(t, func() bool { return len(srv.Sent()) >= before+3 }, 20*time.Second, time.Millisecond)
		b.kill() // SIGKILL mid-batch: no drain, no cursor save
		srv.SetFaults(kftest.Faults{})
		b.start()
		notify()
		for c := 0; c < customers; c++ {
			user := fmt.Sprintf("u-kill-%d", c)
			wait(user, each)
		}
		time.Sleep(300 * time.Millisecond)
		seen := map[string]bool{}
		for c := 0; c < customers; c++ {
			sent := srv.SentTo(kfid, fmt.Sprintf("u-kill-%d", c))
			require.Len(t, sent, each, "no message lost, none answered twice")
			for i, s := range sent {
				assert.Equal(t, fmt.Sprintf("k%d", i), s.Text)
				assert.False(t, seen[s.ClientMsgID])
				seen[s.ClientMsgID] = true
			}
		}
	})

	t.Run("SIGTERM drains", func(t *testing.T) {
		srv.SetFaults(kftest.Faults{Latency: 500 * time.Millisecond, Paths: []string{"/cgi-bin/kf/send_msg"}})
		defer srv.SetFaults(kftest.Faults{})
		calls := srv.Calls("/cgi-bin/kf/send_msg")
		srv.AddText("u-term", "finish me")
		notify()
		require.Eventually(t, func() bool { return srv.Calls("/cgi-bin/kf/send_msg") > calls }, 10*time.Second, time.Millisecond,
			"the reply is on its way")
		start := time.Now()
		code := b.term()
		assert.Equal(t, 0, code, "exit status; log:\n%s", b.log())
		assert.Less(t, time.Since(start), 30*time.Second)
		sent := srv.SentTo(kfid, "u-term")
		require.Len(t, sent, 1, "the pulled message was finished before exit")
		assert.Equal(t, "finish me", sent[0].Text)
		data, err := os.ReadFile(filepath.Join(work, "tmp", "wechatcom_kf_cursors.json"))
		require.NoError(t, err, "the cursor file is where chatgpt-on-wechat keeps it")
		var cursors map[string]string
		require.NoError(t, json.Unmarshal(data, &cursors))
		assert.NotEmpty(t, cursors[kfid])
	})

	t.Run("missing config exits non-zero naming the key", func(t *testing.T) {
		cmd := exec.Command(bin)
		cmd.Dir = t.TempDir()
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "WECHATCOM_KF_PORT=" + strconv.Itoa(freePort(t))}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee)
		assert.NotZero(t, ee.ExitCode())
		assert.Contains(t, string(out), "wechatcom_corp_id")
	})
}

// bot runs the echo binary.
type bot struct {
	t    *testing.T
	bin  string
	dir  string
	env  []string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan error
	out  bytes.Buffer
}

func (b *bot) start() {
	b.t.Helper()
	b.mu.Lock()
	cmd := exec.Command(b.bin)
	cmd.Dir = b.dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, b.env...)
	cmd.Stdout = &lockedWriter{b: b}
	cmd.Stderr = &lockedWriter{b: b}
	require.NoError(b.t, cmd.Start())
	b.cmd = cmd
	b.done = make(chan error, 1)
	done := b.done
	b.mu.Unlock()
	go func() { done <- cmd.Wait() }()
	port := strings.TrimPrefix(b.env[0], "WECHATCOM_KF_PORT=")
	require.Eventually(b.t, func() bool {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 15*time.Second, 20*time.Millisecond, "bot did not listen; log:\n%s", b.log())
}

func (b *bot) kill() {
	b.mu.Lock()
	cmd, done := b.cmd, b.done
	b.cmd = nil
	b.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// term sends SIGTERM and returns the exit code.
func (b *bot) term() int {
	b.mu.Lock()
	cmd, done := b.cmd, b.done
	b.cmd = nil
	b.mu.Unlock()
	require.NoError(b.t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		require.NoError(b.t, err)
		return 0
	case <-time.After(35 * time.Second):
		_ = cmd.Process.Kill()
		b.t.Fatal("bot did not exit within 35 s of SIGTERM")
		return -1
	}
}

func (b *bot) log() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.String()
}

type lockedWriter struct{ b *bot }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.b.mu.Lock()
	defer w.b.mu.Unlock()
	return w.b.out.Write(p)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func testPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x ^ y), 255})
		}
	}
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	return buf.Bytes()
}

// testAMR builds an AMR-NB file of d in 12.2 kbit/s frames (32 bytes each, 20 ms).
func testAMR(d time.Duration) []byte {
	frames := int(d / (20 * time.Millisecond))
	b := make([]byte, 0, 6+32*frames)
	b = append(b, "#!AMR\n"...)
	for i := 0; i < frames; i++ {
		b = append(b, 0x3C) // FT 7 (12.2k), Q 1
		for j := 0; j < 31; j++ {
			b = append(b, byte(rand.IntN(256)))
		}
	}
	return b
}
