package llm_test

import (
	"context"
	"fmt"
	"time"

	"github.com/wxkf/wxkf/internal/llm"
	"github.com/wxkf/wxkf/internal/llm/llmtest"
)

func ExampleClient_Stream() {
	api := llmtest.NewServer() // a fake OpenAI-compatible API; use FromEnv or New with a real one
	defer api.Close()
	api.SetAnswer(func(r llmtest.Request) string { return "你好，" + r.LastUser() + "！" })

	c, err := llm.New(api.URL()+"/v1", "sk-…", "gpt-4o-mini", llm.WithMaxTokens(500))
	if err != nil {
		panic(err)
	}
	pieces := 0
	text, err := c.Stream(context.Background(), []llm.Message{
		{Role: llm.RoleSystem, Content: "You are a helpful customer service agent."},
		{Role: llm.RoleUser, Content: "小明"},
	}, func(delta string) { pieces++ })
	fmt.Println(text, err, pieces > 1)
	// Output: 你好，小明！ <nil> true
}

func ExampleMemory() {
	mem, err := llm.NewMemory(10, 10000, 24*time.Hour) // 10 turns, 10 000 customers, 1 day
	if err != nil {
		panic(err)
	}
	key := "wkAJ2GCAAAZSfhHCt7IFSvLKtMPxyJTw" + "/" + "wmAJ2GCAAAme1XQRC-NI-q0_ZM9ukoAw" // open_kfid/external_userid
	mem.AddTurn(key, llm.Message{Role: llm.RoleUser, Content: "我叫小明"}, llm.Message{Role: llm.RoleAssistant, Content: "你好，小明！"})
	msgs := append(mem.History(key), llm.Message{Role: llm.RoleUser, Content: "我叫什么？"})
	fmt.Println(len(msgs), msgs[0].Content)
	// Output: 3 我叫小明
}
