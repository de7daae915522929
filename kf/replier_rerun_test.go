package kf

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A rerun in a new process counts what the first run sent against the quota: after a crash that
// followed a 2-message reply, a second reply needing 4 messages is fitted into the 3 left instead
// of running into WeCom's 95001.
func TestRerunAfterCrashCountsWhatWasSent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	first := strings.Repeat("第一段回答。", 200)  // 3600 bytes: 2 messages
	second := strings.Repeat("第二段回答。", 400) // 7200 bytes: 4 messages
	stuck := make(chan struct{}, 1)
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		if err := r.Text(ctx, first); err != nil {
			return err
		}
		stuck <- struct{}{}
		<-ctx.Done() // the process dies here
		return ctx.Err()
	})
	e.srv.AddText("ann", "question")
	e.notify()
	<-stuck
	require.Len(t, e.texts("ann"), 2)
	e.crashAndRestart()
	done := make(chan error, 1)
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		if err := r.Text(ctx, first); err != nil {
			return err
		}
		err := r.Text(ctx, second)
		done <- err
		return err
	})
	err := <-done
	e.settle()
	assert.ErrorIs(t, err, ErrQuotaExceeded, "cut to fit the 3 messages left")
	assert.Len(t, e.texts("ann"), 5)
	for _, rj := range e.srv.Rejected() {
		assert.NotEqual(t, 95001, rj.Code, "%+v", rj)
	}
}
