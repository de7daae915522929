package main

import (
	"context"
	"math"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// liveMetrics reads the Channel's OpenTelemetry metrics inside the process, through a
// ManualReader, for the page's metrics card. A service exports them instead (examples/mux serves
// them to Prometheus).
type liveMetrics struct {
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newLiveMetrics() *liveMetrics {
	reader := sdkmetric.NewManualReader()
	// Handler durations as an exponential histogram: buckets fine enough for a p99 of a
	// millisecond echo as well as of a ten-second model answer.
	exp := sdkmetric.NewView(sdkmetric.Instrument{Name: "wxkf.handler.duration"},
		sdkmetric.Stream{Aggregation: sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}})
	return &liveMetrics{reader: reader, mp: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithView(exp))}
}

// metricsView is the page's metrics card.
type metricsView struct {
	// Sends counts send_msg results: "ok", "failed" (no answer), "duplicate", or the errcode
	// WeCom refused the send with.
	Sends        map[string]int64 `json:"sends"`
	HandlerRuns  uint64           `json:"handler_runs"`
	HandlerP50MS float64          `json:"handler_p50_ms"`
	HandlerP99MS float64          `json:"handler_p99_ms"`
	// CursorLagS is now minus the send_time of the newest message handled; nil before the first.
	CursorLagS *float64 `json:"cursor_lag_s,omitempty"`
}

func (lm *liveMetrics) snapshot(ctx context.Context, openKfID string) (*metricsView, error) {
	var rm metricdata.ResourceMetrics
	if err := lm.reader.Collect(ctx, &rm); err != nil {
		return nil, err
	}
	v := &metricsView{Sends: map[string]int64{}}
	var runs []metricdata.ExponentialHistogramDataPoint[float64]
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch data := m.Data.(type) {
			case metricdata.Sum[int64]:
				if m.Name != "wxkf.send.count" {
					continue
				}
				for _, p := range data.DataPoints {
					v.Sends[sendKey(p.Attributes)] += p.Value
				}
			case metricdata.ExponentialHistogram[float64]:
				if m.Name == "wxkf.handler.duration" {
					runs = append(runs, data.DataPoints...)
				}
			case metricdata.Gauge[float64]:
				if m.Name != "wxkf.cursor.lag" {
					continue
				}
				for _, p := range data.DataPoints {
					if id, _ := p.Attributes.Value("wxkf.open_kfid"); id.AsString() == openKfID {
						lag := math.Round(p.Value) // whole seconds: the card changes once a second
						v.CursorLagS = &lag
					}
				}
			}
		}
	}
	for _, p := range runs {
		v.HandlerRuns += p.Count
	}
	v.HandlerP50MS = quantile(runs, 0.50) * 1000
	v.HandlerP99MS = quantile(runs, 0.99) * 1000
	return v, nil
}

// sendKey names a wxkf.send.count point for the card.
func sendKey(attrs attribute.Set) string {
	out, _ := attrs.Value("wxkf.outcome")
	switch out.AsString() {
	case "accepted":
		return "ok"
	case "refused":
		code, _ := attrs.Value("wxkf.errcode")
		return strconv.FormatInt(code.AsInt64(), 10)
	}
	return out.AsString()
}

// quantile estimates the q-quantile of exponential histogram points (all outcomes together): the
// geometric middle of the bucket that holds it.
func quantile(points []metricdata.ExponentialHistogramDataPoint[float64], q float64) float64 {
	if len(points) == 0 {
		return 0
	}
	// Points of one instrument may differ in scale: bring their buckets to the coarsest.
	scale := points[0].Scale
	var total uint64
	for _, p := range points {
		scale = min(scale, p.Scale)
		total += p.Count
	}
	if total == 0 {
		return 0
	}
	counts := map[int32]uint64{}
	var zero uint64
	for _, p := range points {
		zero += p.ZeroCount
		shift := p.Scale - scale
		for i, n := range p.PositiveBucket.Counts {
			counts[(p.PositiveBucket.Offset+int32(i))>>shift] += n
		}
	}
	rank := uint64(math.Ceil(q * float64(total)))
	seen := zero
	if seen >= rank {
		return 0
	}
	lo, hi := int32(math.MaxInt32), int32(math.MinInt32)
	for i := range counts {
		lo, hi = min(lo, i), max(hi, i)
	}
	base := math.Exp2(math.Exp2(-float64(scale)))
	for i := lo; i <= hi; i++ {
		seen += counts[i]
		if seen >= rank {
			return math.Pow(base, float64(i)+0.5)
		}
	}
	return math.Pow(base, float64(hi)+1)
}
