package llmtest_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/examples/llmtest"
)

func client(srv *llmtest.Server, key string) openai.Client {
	return openai.NewClient(option.WithBaseURL(srv.URL()+"/v1"), option.WithAPIKey(key), option.WithMaxRetries(0))
}

func params(text string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{Model: "gpt-test", Messages: []openai.ChatCompletionMessageParamUnion{
		openai.SystemMessage("be brief"), openai.UserMessage(text)}}
}

// The official SDK reads the fake's streamed and whole answers, and its errors.
func TestWithTheOfficialSDK(t *testing.T) {
	t.Parallel()
	srv := llmtest.NewServer(llmtest.WithAPIKey("k"), llmtest.WithChunkRunes(2))
	defer srv.Close()
	c := client(srv, "k")
	ctx := context.Background()

	stream := c.Chat.Completions.NewStreaming(ctx, params("你好吗"))
	var got string
	deltas := 0
	for stream.Next() {
		if ch := stream.Current(); len(ch.Choices) > 0 && ch.Choices[0].Delta.Content != "" {
			got += ch.Choices[0].Delta.Content
			deltas++
		}
	}
	require.NoError(t, stream.Err())
	assert.Equal(t, "echo: 你好吗", got)
	assert.Greater(t, deltas, 2)

	resp, err := c.Chat.Completions.New(ctx, params("hi"))
	require.NoError(t, err)
	assert.Equal(t, "echo: hi", resp.Choices[0].Message.Content)
	reqs := srv.Requests()
	require.Len(t, reqs, 2)
	assert.True(t, reqs[0].Stream)
	assert.Equal(t, []llmtest.Message{{Role: llmtest.RoleSystem, Content: "be brief"}, {Role: llmtest.RoleUser, Content: "你好吗"}}, reqs[0].Messages)

	srv.SetFailure(&llmtest.Failure{Status: http.StatusTooManyRequests, Message: "Rate limit reached", Type: "requests"})
	_, err = c.Chat.Completions.New(ctx, params("hi"))
	var ae *openai.Error
	require.True(t, errors.As(err, &ae), "%v", err)
	assert.Equal(t, http.StatusTooManyRequests, ae.StatusCode)

	srv.SetFailure(&llmtest.Failure{Status: http.StatusOK, Message: "overloaded", Partial: "half an ans"})
	stream = c.Chat.Completions.NewStreaming(ctx, params("hi"))
	got = ""
	for stream.Next() {
		if ch := stream.Current(); len(ch.Choices) > 0 {
			got += ch.Choices[0].Delta.Content
		}
	}
	assert.Error(t, stream.Err(), "an error event in the stream")
	assert.Equal(t, "half an ans", got)

	srv.SetFailure(nil)
	bad := client(srv, "wrong")
	_, err = bad.Chat.Completions.New(ctx, params("hi"))
	require.True(t, errors.As(err, &ae))
	assert.Equal(t, http.StatusUnauthorized, ae.StatusCode)
	assert.Len(t, srv.Requests(), 4, "unauthorised requests are not recorded")
}
