// Package llm is a small client for OpenAI-compatible chat completion APIs (POST
// {base}/chat/completions, streamed over server-sent events), plus the glue the wxkf examples need:
// ReplyStream turns a streamed answer into replies that fit WeCom's 5-message quota, and Memory keeps
// a bounded per-customer conversation history.
//
//	c, ok := llm.FromEnv() // OPENAI_BASE_URL, OPENAI_API_KEY, OPENAI_MODEL
//	if !ok { ... }
//	err := llm.ReplyStream(ctx, r, func(onDelta func(string)) (string, error) {
//		return c.Stream(ctx, []llm.Message{{Role: llm.RoleUser, Content: m.Text.Content}}, onDelta)
//	})
//
// It is internal: an example's dependency, not part of the SDK's API.
package llm
