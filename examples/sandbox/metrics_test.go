package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// The card's quantiles come from the exponential histogram, within half a bucket: 160 buckets over
// three decades make scale 4, buckets 2^(1/16) ≈ 4.4 % wide.
func TestMetricsCardQuantiles(t *testing.T) {
	t.Parallel()
	lm := newLiveMetrics()
	defer lm.mp.Shutdown(context.Background())
	h, err := lm.mp.Meter("test").Float64Histogram("wxkf.handler.duration")
	require.NoError(t, err)
	ctx := context.Background()
	// 1..1000 ms, split over two outcomes (two points, merged by the card).
	for i := 1; i <= 1000; i++ {
		out := "ok"
		if i%2 == 0 {
			out = "error"
		}
		h.Record(ctx, (time.Duration(i) * time.Millisecond).Seconds(), metric.WithAttributes(attribute.String("wxkf.outcome", out)))
	}
	c, err := lm.mp.Meter("test").Int64Counter("wxkf.send.count")
	require.NoError(t, err)
	c.Add(ctx, 3, metric.WithAttributes(attribute.String("wxkf.outcome", "accepted"), attribute.Int("wxkf.errcode", 0)))
	c.Add(ctx, 1, metric.WithAttributes(attribute.String("wxkf.outcome", "refused"), attribute.Int("wxkf.errcode", 95001)))
	v, err := lm.snapshot(ctx, "wk1")
	require.NoError(t, err)
	assert.EqualValues(t, 1000, v.HandlerRuns)
	assert.InEpsilon(t, 500, v.HandlerP50MS, 0.03)
	assert.InEpsilon(t, 990, v.HandlerP99MS, 0.03)
	assert.Equal(t, map[string]int64{"ok": 3, "95001": 1}, v.Sends)
	assert.Nil(t, v.CursorLagS)
}
