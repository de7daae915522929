package llm_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/internal/llm"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func user(s string) llm.Message { return llm.Message{Role: llm.RoleUser, Content: s} }
func bot(s string) llm.Message  { return llm.Message{Role: llm.RoleAssistant, Content: s} }

func TestMemoryKeepsLastTurns(t *testing.T) {
	t.Parallel()
	m, err := llm.NewMemory(2, 10, time.Hour)
	require.NoError(t, err)
	assert.Nil(t, m.History("a"))
	for i := 1; i <= 3; i++ {
		m.AddTurn("a", user(fmt.Sprint("q", i)), bot(fmt.Sprint("a", i)))
	}
	assert.Equal(t, []llm.Message{user("q2"), bot("a2"), user("q3"), bot("a3")}, m.History("a"))
	assert.Nil(t, m.History("b"), "customers are separate")

	h := m.History("a")
	h[0].Content = "changed"
	assert.Equal(t, "q2", m.History("a")[0].Content, "History returns a copy")
}

func TestMemoryDropsLeastRecentlyActive(t *testing.T) {
	t.Parallel()
	m, err := llm.NewMemory(5, 2, time.Hour)
	require.NoError(t, err)
	m.AddTurn("a", user("1"), bot("1"))
	m.AddTurn("b", user("2"), bot("2"))
	_ = m.History("a") // a is now more recent than b
	m.AddTurn("c", user("3"), bot("3"))
	assert.Equal(t, 2, m.Len())
	assert.NotNil(t, m.History("a"))
	assert.Nil(t, m.History("b"), "b was least recently active")
	assert.NotNil(t, m.History("c"))
}

func TestMemoryExpires(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	m, err := llm.NewMemory(5, 10, 30*time.Minute, llm.WithMemoryClock(c.now))
	require.NoError(t, err)
	m.AddTurn("a", user("1"), bot("1"))
	m.AddTurn("b", user("2"), bot("2"))
	c.add(20 * time.Minute)
	assert.NotNil(t, m.History("a"), "activity renews a")
	c.add(20 * time.Minute)
	assert.Nil(t, m.History("b"), "b was silent 40 min")
	assert.NotNil(t, m.History("a"))
	c.add(31 * time.Minute)
	m.AddTurn("z", user("3"), bot("3"))
	assert.Equal(t, 1, m.Len(), "expired customers are dropped, not just hidden")
}

func TestMemoryStripsImagesAndCapsText(t *testing.T) {
	t.Parallel()
	m, err := llm.NewMemory(5, 10, time.Hour)
	require.NoError(t, err)
	m.AddTurn("a", llm.Message{Role: "user", Content: "看看这个", Images: [][]byte{{1}, {2}}}, bot("一只猫"))
	m.AddTurn("a", llm.Message{Role: "user", Images: [][]byte{{1}}}, bot(strings.Repeat("长", llm.MaxMemoryMessageBytes)))
	h := m.History("a")
	require.Len(t, h, 4)
	assert.Equal(t, llm.Message{Role: "user", Content: "[image] [image] 看看这个"}, h[0])
	assert.Equal(t, llm.Message{Role: "user", Content: "[image]"}, h[2])
	assert.LessOrEqual(t, len(h[3].Content), llm.MaxMemoryMessageBytes)
	assert.Greater(t, len(h[3].Content), llm.MaxMemoryMessageBytes-3)
	assert.True(t, strings.HasPrefix(strings.Repeat("长", llm.MaxMemoryMessageBytes), h[3].Content))
}

func TestMemoryForget(t *testing.T) {
	t.Parallel()
	m, err := llm.NewMemory(5, 10, time.Hour)
	require.NoError(t, err)
	m.AddTurn("a", user("1"), bot("1"))
	m.Forget("a")
	m.Forget("never")
	assert.Nil(t, m.History("a"))
	assert.Zero(t, m.Len())
}

func TestNewMemoryValidates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		turns, customers int
		ttl              time.Duration
		opts             []llm.MemoryOption
	}{
		{0, 1, time.Hour, nil}, {1001, 1, time.Hour, nil}, {1, 0, time.Hour, nil}, {1, 1, 0, nil},
		{1, 1, time.Hour, []llm.MemoryOption{llm.WithMemoryClock(nil)}},
	} {
		_, err := llm.NewMemory(tc.turns, tc.customers, tc.ttl, tc.opts...)
		assert.Error(t, err, "%+v", tc)
	}
}

func TestMemoryConcurrent(t *testing.T) {
	t.Parallel()
	m, err := llm.NewMemory(3, 50, time.Hour)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				key := fmt.Sprint("c", (g*31+i)%80)
				_ = m.History(key)
				m.AddTurn(key, user("q"), bot("a"))
				if i%97 == 0 {
					m.Forget(key)
				}
			}
		})
	}
	wg.Wait()
	assert.LessOrEqual(t, m.Len(), 50)
}

func BenchmarkMemory(b *testing.B) {
	m, err := llm.NewMemory(10, 10000, time.Hour)
	require.NoError(b, err)
	keys := make([]string, 20000)
	for i := range keys {
		keys[i] = fmt.Sprint("customer-", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := keys[i%len(keys)]
		_ = m.History(k)
		m.AddTurn(k, user("question"), bot("answer"))
		i++
	}
}
