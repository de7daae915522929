package kf

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// telemetry is an OpenTelemetry SDK that records in memory: metrics through a ManualReader, spans
// through a SpanRecorder.
type telemetry struct {
	t      testing.TB
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
}

func newTelemetry(t testing.TB) *telemetry {
	tel := &telemetry{t: t, reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder()}
	tel.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.spans))
	t.Cleanup(func() {
		_ = tel.mp.Shutdown(context.Background())
		_ = tel.tp.Shutdown(context.Background())
	})
	return tel
}

// options are the Channel options that record into tel.
func (tel *telemetry) options() []ChannelOption {
	return []ChannelOption{WithMeterProvider(tel.mp), WithTracerProvider(tel.tp)}
}

// collect reads every metric now.
func (tel *telemetry) collect() metrics {
	tel.t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(tel.t, tel.reader.Collect(context.Background(), &rm))
	m := metrics{t: tel.t, byName: map[string]metricdata.Metrics{}}
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			m.byName[mt.Name] = mt
		}
	}
	return m
}

// spansNamed returns the ended spans called name.
func (tel *telemetry) spansNamed(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range tel.spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// metrics is one collection, read by instrument name and attributes.
type metrics struct {
	t      testing.TB
	byName map[string]metricdata.Metrics
}

// has reports whether the instrument recorded anything.
func (m metrics) has(name string) bool {
	_, ok := m.byName[name]
	return ok
}

func matches(set attribute.Set, want []attribute.KeyValue) bool {
	for _, kv := range want {
		v, ok := set.Value(kv.Key)
		if !ok || v != kv.Value {
			return false
		}
	}
	return true
}

// sum adds up the points of a counter whose attributes include want (0 when none).
func (m metrics) sum(name string, want ...attribute.KeyValue) int64 {
	m.t.Helper()
	mt, ok := m.byName[name]
	if !ok {
		return 0
	}
	s, ok := mt.Data.(metricdata.Sum[int64])
	require.True(m.t, ok, "%s is a %T, not an int64 sum", name, mt.Data)
	var n int64
	for _, p := range s.DataPoints {
		if matches(p.Attributes, want) {
			n += p.Value
		}
	}
	return n
}

// gauge returns the value of the one gauge point whose attributes include want.
func (m metrics) gauge(name string, want ...attribute.KeyValue) float64 {
	m.t.Helper()
	mt, ok := m.byName[name]
	require.True(m.t, ok, "no %s recorded", name)
	var vals []float64
	switch g := mt.Data.(type) {
	case metricdata.Gauge[int64]:
		for _, p := range g.DataPoints {
			if matches(p.Attributes, want) {
				vals = append(vals, float64(p.Value))
			}
		}
	case metricdata.Gauge[float64]:
		for _, p := range g.DataPoints {
			if matches(p.Attributes, want) {
				vals = append(vals, p.Value)
			}
		}
	default:
		m.t.Fatalf("%s is a %T, not a gauge", name, mt.Data)
	}
	require.Len(m.t, vals, 1, "one point of %s with %v", name, want)
	return vals[0]
}

// histogram returns the count and sum of the points of a histogram whose attributes include want.
func (m metrics) histogram(name string, want ...attribute.KeyValue) (count uint64, sum float64) {
	m.t.Helper()
	mt, ok := m.byName[name]
	if !ok {
		return 0, 0
	}
	switch h := mt.Data.(type) {
	case metricdata.Histogram[float64]:
		for _, p := range h.DataPoints {
			if matches(p.Attributes, want) {
				count += p.Count
				sum += p.Sum
			}
		}
	case metricdata.Histogram[int64]:
		for _, p := range h.DataPoints {
			if matches(p.Attributes, want) {
				count += p.Count
				sum += float64(p.Sum)
			}
		}
	default:
		m.t.Fatalf("%s is a %T, not a histogram", name, mt.Data)
	}
	return count, sum
}

// attributeSets returns the attribute sets of every point of every instrument.
func (m metrics) attributeSets() map[string][]attribute.Set {
	out := map[string][]attribute.Set{}
	for name, mt := range m.byName {
		switch d := mt.Data.(type) {
		case metricdata.Sum[int64]:
			for _, p := range d.DataPoints {
				out[name] = append(out[name], p.Attributes)
			}
		case metricdata.Gauge[int64]:
			for _, p := range d.DataPoints {
				out[name] = append(out[name], p.Attributes)
			}
		case metricdata.Gauge[float64]:
			for _, p := range d.DataPoints {
				out[name] = append(out[name], p.Attributes)
			}
		case metricdata.Histogram[float64]:
			for _, p := range d.DataPoints {
				out[name] = append(out[name], p.Attributes)
			}
		case metricdata.Histogram[int64]:
			for _, p := range d.DataPoints {
				out[name] = append(out[name], p.Attributes)
			}
		}
	}
	return out
}

// attr returns the value of key among a span's attributes.
func attr(kvs []attribute.KeyValue, key attribute.Key) (attribute.Value, bool) {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}
