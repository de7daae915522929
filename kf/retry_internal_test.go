package kf

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf/kftest"
)

// The Channel reruns a failing handler after a capped exponential backoff with jitter (half to all
// of 1 s, 2 s, 4 s, … up to a minute by default), never sooner than a RetryAfter asks, and for 15
// minutes by default before the dead-letter hook.
func TestHandlerRetryDelayIsCappedAndJittered(t *testing.T) {
	srv := kftest.NewServer()
	defer srv.Close()
	ch, err := NewChannel(kftestConfig(srv),
		WithStateDir(t.TempDir()), WithClientOptions(WithBaseURL(srv.URL())))
	require.NoError(t, err)
	defer ch.Shutdown(context.Background())
	require.Equal(t, DefaultRetryHorizon, ch.cfg.retryHorizon)
	require.Equal(t, 15*time.Minute, DefaultRetryHorizon)
	for attempt := 1; attempt <= 12; attempt++ {
		base := min(DefaultRetryMin<<(attempt-1), DefaultRetryMax)
		seen := map[time.Duration]bool{}
		for range 50 {
			d := ch.retryDelay(attempt, errors.New("busy"))
			require.GreaterOrEqual(t, d, base/2, "attempt %d", attempt)
			require.LessOrEqual(t, d, base, "attempt %d", attempt)
			seen[d] = true
		}
		require.Greater(t, len(seen), 10, "attempt %d: jittered", attempt)
	}
	require.GreaterOrEqual(t, ch.retryDelay(1, RetryAfter(5*time.Minute, errors.New("later"))), 5*time.Minute)
}
