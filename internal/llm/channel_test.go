package llm_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/internal/llm"
	"github.com/wxkf/wxkf/internal/llm/llmtest"
	"github.com/wxkf/wxkf/kf"
	"github.com/wxkf/wxkf/kf/kftest"
	"github.com/wxkf/wxkf/media"
)

// ReplyStream through a real kf.Channel and the kftest fake WeCom, with a streamed answer from
// the llmtest fake API: a long answer goes out in exactly 5 sends of ≤ 2048 bytes, WeCom never
// answers 95001, and the first paragraph reached the customer before the stream ended.
func TestReplyStreamThroughChannel(t *testing.T) {
	t.Parallel()
	wecom := kftest.NewServer()
	defer wecom.Close()
	api := llmtest.NewServer(llmtest.WithChunkRunes(8))
	defer api.Close()
	first := "您好！下面是详细的回答，分成很多段来讲。"
	var b strings.Builder
	b.WriteString(first + "\n\n")
	for b.Len() < 16000 {
		b.WriteString(strings.Repeat("这一段详细解释了一个问题的方方面面。", 6) + "\n\n")
	}
	answer := b.String()
	api.SetAnswer(func(llmtest.Request) string { return answer })
	client, err := llm.New(api.URL()+"/v1", "sk-x", "gpt-test")
	require.NoError(t, err)

	ch, err := kf.NewChannel(kf.Config{CorpID: wecom.CorpID(), Secret: wecom.Secret(), Token: wecom.CallbackToken(),
		EncodingAESKey: wecom.EncodingAESKey()}, kf.WithStateDir(t.TempDir()), kf.WithClientOptions(kf.WithBaseURL(wecom.URL())))
	require.NoError(t, err)
	firstSeenDuringStream := make(chan bool, 1)
	errs := make(chan error, 1)
	ch.OnMessage(func(ctx context.Context, m *kf.Message, r kf.Replier) error {
		seen := false
		err := llm.ReplyStream(ctx, r, func(onDelta func(string)) (string, error) {
			return client.Stream(ctx, []llm.Message{{Role: llm.RoleUser, Content: m.Text.Content}}, func(d string) {
				onDelta(d)
				if !seen && len(wecom.SentTo(m.OpenKfID, m.ExternalUserID)) > 0 {
					seen = true
				}
			})
		})
		firstSeenDuringStream <- seen
		errs <- err
		return nil
	})
	mux := http.NewServeMux()
	mux.Handle("/wxkf/", ch)
	hs := httptest.NewServer(mux)
	defer hs.Close()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, ch.Shutdown(ctx))
	}()

	wecom.AddText("alice", "请详细讲讲")
	require.NoError(t, wecom.Notify(context.Background(), hs.URL+"/wxkf/", wecom.OpenKfID()))
	assert.True(t, <-firstSeenDuringStream, "the first paragraph reached WeCom while the answer streamed")
	err = <-errs
	assert.ErrorIs(t, err, kf.ErrQuotaExceeded, "the answer was cut to fit")

	sent := wecom.SentTo(wecom.OpenKfID(), "alice")
	require.Len(t, sent, 5)
	assert.Equal(t, first, sent[0].Text)
	var joined strings.Builder
	for _, s := range sent {
		assert.LessOrEqual(t, len(s.Text), media.MaxTextBytes)
		joined.WriteString(s.Text)
	}
	assert.True(t, strings.HasSuffix(joined.String(), "…"))
	assert.True(t, strings.HasPrefix(squeeze(answer), strings.TrimSuffix(squeeze(joined.String()), "…")))
	for _, rj := range wecom.Rejected() {
		assert.NotEqual(t, 95001, rj.Code, "quota never overrun: %+v", rj)
	}
	assert.Zero(t, wecom.QuotaLeft(wecom.OpenKfID(), "alice"))
}
