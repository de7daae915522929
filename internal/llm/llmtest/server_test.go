package llmtest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/internal/llm"
	"github.com/wxkf/wxkf/internal/llm/llmtest"
)

func TestFailures(t *testing.T) {
	t.Parallel()
	srv := llmtest.NewServer(llmtest.WithAPIKey("k"))
	defer srv.Close()
	c, err := llm.New(srv.URL()+"/v1", "k", "m")
	require.NoError(t, err)
	msgs := []llm.Message{{Role: llm.RoleUser, Content: "hi"}}

	srv.SetFailure(&llmtest.Failure{Status: 429, Message: "Rate limit reached", Type: "requests"})
	_, err = c.Stream(context.Background(), msgs, nil)
	var ae *llm.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 429, ae.StatusCode)
	assert.Equal(t, "Rate limit reached", ae.Message)

	srv.SetFailure(&llmtest.Failure{Status: 200, Message: "overloaded", Partial: "half an ans"})
	got, err := c.Stream(context.Background(), msgs, nil)
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 200, ae.StatusCode)
	assert.Equal(t, "half an ans", got)

	srv.SetFailure(nil)
	got, err = c.Complete(context.Background(), msgs)
	require.NoError(t, err)
	assert.Equal(t, "echo: hi", got)
	assert.Len(t, srv.Requests(), 3)

	bad, err := llm.New(srv.URL()+"/v1", "wrong", "m")
	require.NoError(t, err)
	_, err = bad.Complete(context.Background(), msgs)
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 401, ae.StatusCode)
	assert.NotContains(t, err.Error(), "wrong", "the key quoted by the API is redacted")
	assert.Len(t, srv.Requests(), 3, "unauthorised requests are not recorded")
}
