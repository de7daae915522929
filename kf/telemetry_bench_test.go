package kf

import (
	"context"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// BenchmarkTelemetryPerMessage is what telemetry adds to one customer message on the hot path,
// without the I/O around it: the sync_msg page that delivered it (its pull span and metrics, and
// the API call's; in practice a page is shared by many messages), the message count, the handler
// run's span and duration, and its send (the API call's span and metrics, the send's count and
// latency). "global" is the default: the global providers with no SDK installed, which record
// nothing. "sdk" records with the OpenTelemetry SDK: metrics aggregated in memory, every span
// sampled and batched to an exporter that drops it.
func BenchmarkTelemetryPerMessage(b *testing.B) {
	b.Run("global", func(b *testing.B) { benchTelemetry(b, telemetryConfig{}) })
	b.Run("sdk", func(b *testing.B) {
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardSpans{}))
		b.Cleanup(func() {
			_ = tp.Shutdown(context.Background())
			_ = mp.Shutdown(context.Background())
		})
		benchTelemetry(b, telemetryConfig{meters: mp, tracers: tp})
	})
}

func benchTelemetry(b *testing.B, cfg telemetryConfig) {
	ctx := context.Background()
	ct, err := newChannelTel(cfg)
	if err != nil {
		b.Fatal(err)
	}
	cl := &Client{}
	if cl.tel, err = newClientTel(cfg); err != nil {
		b.Fatal(err)
	}
	ch := &Channel{tel: ct, now: time.Now, pullCtx: ctx}
	s := &session{ch: ch, a: &account{ch: ch, id: "wk1"}, ctx: ctx}
	m := &Message{MsgID: "msg1", OpenKfID: "wk1", MsgType: MsgTypeText, Origin: OriginCustomer, ExternalUserID: "wm1"}
	page := &SyncMsgResponse{Messages: []Message{*m}}
	syncReq := &request{method: methodPost, path: pathSyncMsg}
	sendReq := &request{method: methodPost, path: pathSendMsg}
	st := &callState{attempt: 1}
	it := &item{s: s, m: m}
	b.ReportAllocs()
	for b.Loop() {
		pctx, pspan, pstart := s.startPull(SyncMsgRequest{OpenKfID: "wk1", Limit: syncLimit})
		cctx, cspan, cstart := cl.startCall(pctx, syncReq)
		cl.endCall(cctx, cspan, cstart, syncReq, st, nil)
		ch.noteMessage("wk1", m)
		it.pullSpan = s.pullSpan
		s.endPull(pctx, pspan, pstart, page, nil, true)

		mctx, start := ch.startMessage(it)
		cctx, cspan, cstart = cl.startCall(withSpan(mctx, it.span), sendReq)
		cl.endCall(cctx, cspan, cstart, sendReq, st, nil)
		ch.noteSend(cctx, "wk1", MsgTypeText, cstart, nil)
		ch.endMessage(mctx, it, start, outcomeDone, nil)
	}
}
