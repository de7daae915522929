package main

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/wxkf/wxkf/kf"
)

// telemetry is the service's OpenTelemetry SDK: metrics read by Prometheus at /metrics, and,
// when traceOut is set, spans printed there as JSON (a collector's exporter goes in its place
// in production).
type telemetry struct {
	meters  *sdkmetric.MeterProvider
	tracers *sdktrace.TracerProvider // nil: no tracing
	metrics http.Handler
}

func newTelemetry(traceOut io.Writer) (*telemetry, error) {
	// A registry of the service's own, with the Go runtime's and the process's collectors beside
	// the OpenTelemetry exporter (the global one would work too).
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, err
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", "wxkf-mux")))
	if err != nil {
		return nil, err
	}
	t := &telemetry{
		meters:  sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter), sdkmetric.WithResource(res)),
		metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
	}
	if traceOut != nil {
		spans, err := stdouttrace.New(stdouttrace.WithWriter(traceOut), stdouttrace.WithPrettyPrint())
		if err != nil {
			return nil, err
		}
		t.tracers = sdktrace.NewTracerProvider(sdktrace.WithBatcher(spans), sdktrace.WithResource(res))
	}
	return t, nil
}

// channelOptions hands the providers to the Channel (and through it to its API client).
func (t *telemetry) channelOptions() []kf.ChannelOption {
	opts := []kf.ChannelOption{kf.WithMeterProvider(t.meters)}
	if t.tracers != nil {
		opts = append(opts, kf.WithTracerProvider(t.tracers))
	}
	return opts
}

// shutdown flushes the spans still buffered.
func (t *telemetry) shutdown(ctx context.Context) error {
	err := t.meters.Shutdown(ctx)
	if t.tracers != nil {
		err = errors.Join(err, t.tracers.Shutdown(ctx))
	}
	return err
}
