package kf

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// clientTel holds a Client's tracer and instruments: a span and two measurements per API call, a
// count per token refresh.
type clientTel struct {
	tracer     *spanStarter
	calls      metric.Int64Counter
	duration   metric.Float64Histogram
	refreshes  metric.Int64Counter
	callStart  []trace.SpanStartOption
	refreshOK  *measure
	refreshErr *measure
	byCall     measureCache // path, errcode or error.type
	rateWait   metric.Float64Histogram
	ratePauses metric.Int64Counter
	byPath     measureCache // path

	namesMu sync.RWMutex
	names   map[[2]string]string // method, path → span name
}

func newClientTel(cfg telemetryConfig) (*clientTel, error) {
	in := &instruments{m: cfg.meter()}
	t := &clientTel{
		tracer: cfg.tracer(),
		calls: in.counter("wxkf.api.call.count", "{call}",
			"WeCom API calls (retries included), by path and errcode, or error.type when WeCom gave no answer."),
		duration: in.durations("wxkf.api.call.duration", "Duration of one WeCom API call, its retries included."),
		refreshes: in.counter("wxkf.token.refresh.count", "{refresh}",
			"Access tokens fetched from gettoken, by outcome."),
		rateWait: in.durations("wxkf.ratelimit.wait.duration",
			"Time one API call attempt waited for the corp-wide rate limiter (the store's round trip included), by path."),
		ratePauses: in.counter("wxkf.ratelimit.pause.count", "{pause}",
			"Pauses of an API path for the whole corp started by a 45009 answer (frequency limit), by path."),
		callStart:  []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)},
		refreshOK:  newMeasure(keyOutcome.String("ok")),
		refreshErr: newMeasure(keyOutcome.String("error")),
		names:      make(map[[2]string]string),
	}
	return t, in.err
}

// spanName is "METHOD /path", built once per endpoint.
func (t *clientTel) spanName(method, path string) string {
	k := [2]string{method, path}
	t.namesMu.RLock()
	n, ok := t.names[k]
	t.namesMu.RUnlock()
	if ok {
		return n
	}
	n = method + " " + path
	t.namesMu.Lock()
	t.names[k] = n
	t.namesMu.Unlock()
	return n
}

// callMeasure is the attribute set of a call to path that ended with err: the path and WeCom's
// errcode (0 on success), or, when WeCom gave no answer, the path and error.type.
func (t *clientTel) callMeasure(path string, err error) *measure {
	code, etype := callLabels(err)
	return t.byCall.get(measureKey{a: path, b: etype, n: code}, func(k measureKey) *measure {
		if k.b != "" {
			return newMeasure(keyPath.String(k.a), keyErrorType.String(k.b))
		}
		return newMeasure(keyPath.String(k.a), keyErrCode.Int(k.n))
	})
}

// callLabels classifies a call's failure: WeCom's errcode, or a bounded error.type when there is
// none (no token, an HTTP status, a network failure, a reply that could not be read).
func callLabels(err error) (code int, etype string) {
	if err == nil {
		return 0, ""
	}
	var tfe *tokenFetchError
	if errors.As(err, &tfe) {
		return 0, "token"
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code, ""
	}
	var he *HTTPError
	var re *RequestError
	switch {
	case errors.As(err, &he):
		if he.StatusCode < 100 || he.StatusCode > 599 {
			return 0, "http"
		}
		return 0, strconv.Itoa(he.StatusCode)
	case errors.Is(err, ErrResponseTooLarge):
		return 0, "response_too_large"
	case errors.Is(err, ErrUnexpectedResponse):
		return 0, "unexpected_response"
	case errors.Is(err, context.Canceled):
		return 0, "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return 0, "timeout"
	case errors.As(err, &re):
		if re.Timeout() {
			return 0, "timeout"
		}
		return 0, "network"
	}
	return 0, "other"
}

// do performs one API call (exchange) inside its span, and counts and times it.
func (c *Client) do(ctx context.Context, req *request, out any) (*callState, error) {
	if ctx == nil {
		return c.exchange(ctx, req, out)
	}
	ctx, span, start := c.startCall(ctx, req)
	st, err := c.exchange(ctx, req, out)
	c.endCall(ctx, span, start, req, st, err)
	return st, err
}

// startCall starts the span of an API call.
func (c *Client) startCall(ctx context.Context, req *request) (context.Context, trace.Span, time.Time) {
	t := c.tel
	ctx, span := t.tracer.Start(ctx, t.spanName(req.method, req.path), t.callStart...)
	return ctx, span, time.Now()
}

// endCall counts and times a call and ends its span. st is nil for a call refused before any I/O
// (it is not counted).
func (c *Client) endCall(ctx context.Context, span trace.Span, start time.Time, req *request, st *callState, err error) {
	t := c.tel
	if st != nil {
		ms := t.callMeasure(req.path, err)
		t.calls.Add(ctx, 1, ms.add...)
		t.duration.Record(ctx, time.Since(start).Seconds(), ms.rec...)
	}
	if span.IsRecording() {
		kv := make([]attribute.KeyValue, 0, 5) // one SetAttributes: the SDK grows its slice per call
		kv = append(kv, attribute.String("http.request.method", req.method), keyPath.String(req.path),
			attribute.Int("wxkf.api.attempts", callAttempts(st)))
		if st != nil && st.lastResp != nil {
			kv = append(kv, attribute.Int("http.response.status_code", st.lastResp.StatusCode()))
		}
		if code, etype := callLabels(err); etype != "" {
			kv = append(kv, keyErrorType.String(etype))
		} else if err == nil || code != 0 {
			kv = append(kv, keyErrCode.Int(code))
		}
		span.SetAttributes(kv...)
		if err != nil {
			msg := c.scrub(err.Error())
			span.SetStatus(codes.Error, msg)
		}
	}
	span.End()
}

func callAttempts(st *callState) int {
	if st == nil {
		return 0
	}
	return max(st.attempt, 1)
}

// noteRefresh counts a gettoken refresh.
func (t *clientTel) noteRefresh(ctx context.Context, err error) {
	ms := t.refreshOK
	if err != nil {
		ms = t.refreshErr
	}
	t.refreshes.Add(ctx, 1, ms.add...)
}

// pathMeasure is the attribute set of an API path.
func (t *clientTel) pathMeasure(path string) *measure {
	return t.byPath.get(measureKey{a: path}, func(k measureKey) *measure { return newMeasure(keyPath.String(k.a)) })
}

// rateWaited records a call attempt's wait for the rate limiter.
func (c *Client) rateWaited(ctx context.Context, path string, d time.Duration) {
	c.tel.rateWait.Record(ctx, d.Seconds(), c.tel.pathMeasure(path).rec...)
}

// ratePaused counts a pause of path that a 45009 started.
func (c *Client) ratePaused(ctx context.Context, path string) {
	c.tel.ratePauses.Add(ctx, 1, c.tel.pathMeasure(path).add...)
}
