package kf

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// OpenTelemetry: this package uses the API only. Providers come from the options below and default
// to the global ones (otel.GetMeterProvider, otel.GetTracerProvider) at construction, which record
// nothing until the application installs an SDK. The instruments and spans are listed in the
// package documentation ("Telemetry"); telemetry_channel.go and telemetry_client.go record them.

// instrumentationName is the instrumentation scope of this package's meters and tracers.
const instrumentationName = "github.com/wxkf/wxkf/kf"

// telemetryConfig is what the telemetry options set, for a Channel or a Client.
type telemetryConfig struct {
	meters         metric.MeterProvider
	tracers        trace.TracerProvider
	traceCustomers bool
}

func (t telemetryConfig) meter() metric.Meter {
	mp := t.meters
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	return mp.Meter(instrumentationName)
}

func (t telemetryConfig) tracer() *spanStarter {
	tp := t.tracers
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return &spanStarter{tr: tp.Tracer(instrumentationName)}
}

// spanStarter starts spans with a tracer, and skips the tracer while it records nothing: when a
// root span comes back without a valid context (no SDK is installed: the global provider's
// default), it hands out a no-op span for the next second without asking the tracer, unless the
// context carries a span to propagate. The global provider's no-op spans cost allocations on
// every message; this costs none. An SDK installed later (otel.SetTracerProvider) is seen within
// a second.
type spanStarter struct {
	tr        trace.Tracer
	idleUntil atomic.Int64 // unix ns; 0: ask the tracer
}

// idleFor is how long a spanStarter trusts that its tracer records nothing.
const idleFor = time.Second

// noSpan is the span handed out while the tracer records nothing.
var noSpan trace.Span = tracenoop.Span{}

// Start is trace.Tracer's Start.
func (s *spanStarter) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	parent := trace.SpanContextFromContext(ctx).IsValid()
	if until := s.idleUntil.Load(); until != 0 && !parent && time.Now().UnixNano() < until {
		return ctx, noSpan
	}
	ctx, span := s.tr.Start(ctx, name, opts...)
	switch valid := span.SpanContext().IsValid(); {
	case !parent && !valid && !span.IsRecording():
		s.idleUntil.Store(time.Now().Add(idleFor).UnixNano())
	case (span.IsRecording() || !parent && valid) && s.idleUntil.Load() != 0:
		s.idleUntil.Store(0) // an SDK records now (a no-op tracer only passes a parent's context on)
	}
	return ctx, span
}

// clientOptions passes the Channel's providers on to the Client it creates.
func (t telemetryConfig) clientOptions() []ClientOption {
	var opts []ClientOption
	if t.meters != nil {
		opts = append(opts, WithClientMeterProvider(t.meters))
	}
	if t.tracers != nil {
		opts = append(opts, WithClientTracerProvider(t.tracers))
	}
	return opts
}

// WithMeterProvider sets the OpenTelemetry meter provider the Channel records its metrics with
// (the package documentation, "Telemetry", lists them), and the Client it creates too unless
// WithClient or WithClientOptions(WithClientMeterProvider(...)) says otherwise. The default is the
// global provider (otel.GetMeterProvider) at NewChannel, which records nothing until the
// application installs an SDK.
func WithMeterProvider(mp metric.MeterProvider) ChannelOption {
	return func(c *channelConfig) error {
		if mp == nil || isNilPointer(mp) {
			return invalidf("WithMeterProvider(nil)")
		}
		c.tel.meters = mp
		return nil
	}
}

// WithTracerProvider sets the OpenTelemetry tracer provider of the Channel's spans (a span per
// callback, per sync_msg page and per handler run; see the package documentation, "Telemetry"),
// and of the Client it creates unless WithClient or WithClientOptions says otherwise. The default
// is the global provider (otel.GetTracerProvider) at NewChannel, a no-op until the application
// installs an SDK; spans start within a second of a late otel.SetTracerProvider.
func WithTracerProvider(tp trace.TracerProvider) ChannelOption {
	return func(c *channelConfig) error {
		if tp == nil || isNilPointer(tp) {
			return invalidf("WithTracerProvider(nil)")
		}
		c.tel.tracers = tp
		return nil
	}
}

// WithTraceCustomerIDs sets whether a handler run's span carries the customer's external_userid
// (attribute wxkf.external_userid; default false). It identifies a WeChat user: turn it on only
// where traces may hold personal data. Metrics never carry it.
func WithTraceCustomerIDs(on bool) ChannelOption {
	return func(c *channelConfig) error { c.tel.traceCustomers = on; return nil }
}

// WithClientMeterProvider sets the OpenTelemetry meter provider of the client's metrics
// (wxkf.api.call.count, wxkf.api.call.duration, wxkf.token.refresh.count; see the package
// documentation, "Telemetry"). The default is the global provider (otel.GetMeterProvider) at
// NewClient, which records nothing until the application installs an SDK.
func WithClientMeterProvider(mp metric.MeterProvider) ClientOption {
	return func(c *clientConfig) error {
		if mp == nil || isNilPointer(mp) {
			return invalidf("WithClientMeterProvider(nil)")
		}
		c.tel.meters = mp
		return nil
	}
}

// WithClientTracerProvider sets the OpenTelemetry tracer provider of the client's spans: one per
// API call, its retries included, named after the method and path ("POST /cgi-bin/kf/send_msg"),
// a child of the span in the call's context. The default is the global provider
// (otel.GetTracerProvider) at NewClient.
func WithClientTracerProvider(tp trace.TracerProvider) ClientOption {
	return func(c *clientConfig) error {
		if tp == nil || isNilPointer(tp) {
			return invalidf("WithClientTracerProvider(nil)")
		}
		c.tel.tracers = tp
		return nil
	}
}

// Attribute keys. Metric attributes are bounded and carry no personal data: an account
// (open_kfid), a msgtype, an outcome, WeCom's errcode, an API path. Spans may also carry a msgid,
// and the external_userid with WithTraceCustomerIDs.
const (
	keyOpenKfID       = attribute.Key("wxkf.open_kfid")
	keyMsgType        = attribute.Key("wxkf.msgtype")
	keyOrigin         = attribute.Key("wxkf.origin")
	keyOutcome        = attribute.Key("wxkf.outcome")
	keyErrCode        = attribute.Key("wxkf.errcode")
	keyPath           = attribute.Key("wxkf.api.path")
	keyCallbackResult = attribute.Key("wxkf.callback.result")
	keyErrorType      = attribute.Key("error.type")
	keyMsgID          = attribute.Key("wxkf.msgid")
	keyExternalUserID = attribute.Key("wxkf.external_userid")
	keyAttempt        = attribute.Key("wxkf.attempt")
	keyBurstSize      = attribute.Key("wxkf.burst.size")
)

// durationBuckets are the bounds, in seconds, of every duration histogram: from a few
// milliseconds (a store round trip) to the 5-minute default handler timeout (a slow model).
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// pageBuckets are the bounds of wxkf.pull.messages: a sync_msg page holds at most 1000 (§4).
var pageBuckets = []float64{0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000}

// instruments creates a meter's instruments, remembering the first error; a failed instrument is
// a no-op, so telemetry never stops the SDK.
type instruments struct {
	m   metric.Meter
	err error
}

func (in *instruments) note(err error) {
	if err != nil && in.err == nil {
		in.err = err
	}
}

func (in *instruments) counter(name, unit, desc string) metric.Int64Counter {
	c, err := in.m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
	in.note(err)
	if c == nil {
		return noop.Int64Counter{}
	}
	return c
}

func (in *instruments) durations(name, desc string) metric.Float64Histogram {
	h, err := in.m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	in.note(err)
	if h == nil {
		return noop.Float64Histogram{}
	}
	return h
}

func (in *instruments) histogram(name, unit, desc string, bounds []float64) metric.Int64Histogram {
	h, err := in.m.Int64Histogram(name, metric.WithUnit(unit), metric.WithDescription(desc),
		metric.WithExplicitBucketBoundaries(bounds...))
	in.note(err)
	if h == nil {
		return noop.Int64Histogram{}
	}
	return h
}

func (in *instruments) gauge(name, unit, desc string) metric.Int64ObservableGauge {
	g, err := in.m.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
	in.note(err)
	if g == nil {
		return noop.Int64ObservableGauge{}
	}
	return g
}

func (in *instruments) floatGauge(name, unit, desc string) metric.Float64ObservableGauge {
	g, err := in.m.Float64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
	in.note(err)
	if g == nil {
		return noop.Float64ObservableGauge{}
	}
	return g
}

// measure holds the options of one attribute set, built once: passing a prebuilt slice to Add and
// Record costs no allocation per measurement.
type measure struct {
	add []metric.AddOption
	rec []metric.RecordOption
	obs []metric.ObserveOption
}

func newMeasure(kv ...attribute.KeyValue) *measure {
	o := metric.WithAttributeSet(attribute.NewSet(kv...))
	return &measure{add: []metric.AddOption{o}, rec: []metric.RecordOption{o}, obs: []metric.ObserveOption{o}}
}

// measureKey names an attribute set in a measureCache.
type measureKey struct {
	a, b, c string
	n       int
}

// measureCache keeps the measures of attribute sets made of a few bounded values.
type measureCache struct {
	mu sync.RWMutex
	m  map[measureKey]*measure
}

// get returns the measure of k, built by mk the first time.
func (mc *measureCache) get(k measureKey, mk func(measureKey) *measure) *measure {
	mc.mu.RLock()
	ms := mc.m[k]
	mc.mu.RUnlock()
	if ms != nil {
		return ms
	}
	mc.mu.Lock()
	defer mc.mu.Unlock()
	if ms = mc.m[k]; ms == nil {
		if mc.m == nil {
			mc.m = make(map[measureKey]*measure)
		}
		ms = mk(k)
		mc.m[k] = ms
	}
	return ms
}

// knownMsgTypes bounds the msgtype attribute: WeCom may add msgtypes, and a metric attribute must
// not take whatever string arrives.
var knownMsgTypes = map[MsgType]bool{
	MsgTypeText: true, MsgTypeImage: true, MsgTypeVoice: true, MsgTypeVideo: true, MsgTypeFile: true,
	MsgTypeLocation: true, MsgTypeLink: true, MsgTypeBusinessCard: true, MsgTypeMiniProgram: true,
	MsgTypeMsgMenu: true, MsgTypeChannelsShopProduct: true, MsgTypeChannelsShopOrder: true,
	MsgTypeMergedMsg: true, MsgTypeChannels: true, MsgTypeEvent: true, MsgTypeCALink: true,
}

// msgTypeLabel is t for the msgtypes this package knows, "other" for any other.
func msgTypeLabel(t MsgType) string {
	if knownMsgTypes[t] {
		return string(t)
	}
	return "other"
}

// originLabel is the origin (3 customer, 4 system, 5 servicer), 0 for any other value.
func originLabel(o Origin) int {
	switch o {
	case OriginCustomer, OriginSystem, OriginServicer:
		return int(o)
	}
	return 0
}
