package kf_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/wxkf/wxkf/kf"
)

// The Channel records OpenTelemetry metrics and spans with the providers it is given (or the
// global ones). Here an in-memory reader stands in for an exporter; the handler's context carries
// the message's span, so the application's own spans nest under it.
func ExampleWithMeterProvider() {
	reader := sdkmetric.NewManualReader()
	meters := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	spans := tracetest.NewSpanRecorder()
	tracers := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	bot := newExampleBot(kf.WithMeterProvider(meters), kf.WithTracerProvider(tracers))
	defer bot.close()
	app := tracers.Tracer("my-bot")
	bot.ch.OnMessage(func(ctx context.Context, m *kf.Message, r kf.Replier) error {
		ctx, span := app.Start(ctx, "ask the model") // a child of the wxkf.message span
		defer span.End()
		return r.Text(ctx, "您好！")
	})
	bot.customerWrites("wmAlice", "在吗")
	bot.waitReplies("wmAlice", 1)
	for bot.ch.Stats().Handled < 1 { // the reply is out; wait for the handler's run to end
		time.Sleep(time.Millisecond)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		log.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "wxkf.send.count" {
				continue
			}
			for _, p := range m.Data.(metricdata.Sum[int64]).DataPoints {
				out, _ := p.Attributes.Value(attribute.Key("wxkf.outcome"))
				code, _ := p.Attributes.Value(attribute.Key("wxkf.errcode"))
				fmt.Printf("%s: %d sent, outcome %s, errcode %d\n", m.Name, p.Value, out.AsString(), code.AsInt64())
			}
		}
	}
	for _, s := range spans.Ended() {
		if s.Name() == "ask the model" {
			fmt.Println("the application's span nests under a message span:", s.Parent().IsValid())
		}
	}
	// Output:
	// wxkf.send.count: 1 sent, outcome accepted, errcode 0
	// the application's span nests under a message span: true
}

// LivenessHandler and ReadinessHandler serve Channel.Health to probes: /readyz is 503 while the
// store or the access token fails, /healthz only once the Channel has shut down.
func ExampleChannel_ReadinessHandler() {
	bot := newExampleBot()
	defer bot.close()
	bot.ch.OnMessage(func(ctx context.Context, m *kf.Message, r kf.Replier) error { return nil })

	mux := http.NewServeMux()
	mux.Handle("GET /healthz", bot.ch.LivenessHandler())
	mux.Handle("GET /readyz", bot.ch.ReadinessHandler())
	ops := httptest.NewServer(mux)
	defer ops.Close()
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(ops.URL + path)
		if err != nil {
			log.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Println(path, resp.StatusCode)
	}
	rep := bot.ch.Health(context.Background())
	fmt.Println("ready:", rep.Ready, "store:", rep.Store.OK, "token:", rep.Token.OK)
	// Output:
	// /healthz 200
	// /readyz 200
	// ready: true store: true token: true
}
