package kf

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/wxkf/wxkf/cursor"
)

// Recorder is a Replier for unit tests of handlers, as httptest.ResponseRecorder is for
// http.Handlers: no server and no network. It is the Channel's own Replier over an in-memory
// stand-in for WeCom, so it splits and fits text and images, counts the 5-message quota, refuses
// to send while a human servicer has the session, writes every call into a reply record before
// sending and, on Rerun, replays that record exactly as the Channel does after a transient failure
// or a crash. A handler that passes with it behaves the same live.
//
//	m := &kf.Message{MsgID: "m1", OpenKfID: "wk1", ExternalUserID: "wm1", Origin: kf.OriginCustomer,
//		MsgType: kf.MsgTypeText, Body: kf.Body{Text: &kf.Text{Content: "hi"}}}
//	rec, _ := kf.NewRecorder(m)
//	err := handler(ctx, m, rec)
//	// rec.Texts(), rec.Messages(), rec.State(), rec.Failure()
//
// Recorder implements Replier. It is not safe for concurrent use, like the Replier of one handler
// call.
type Recorder struct {
	*replier // the current run's
	channel  *Channel
	wire     *recorderWire
	lease    *recorderLease
	sess     *session
	msg      Message
}

// RecordedMessage is one message the Recorder's stand-in for WeCom accepted: its client msgid, its
// msgtype and body as sent, and for media (image, voice, video, file) the bytes that were uploaded
// (after fitting) and their filename.
type RecordedMessage struct {
	MsgID   string
	MsgType MsgType
	Body
	Media    []byte
	Filename string
}

// NewRecorder returns a Recorder answering m, as a Channel made with opts would (options that
// shape replies apply: WithTruncationMarker, WithAMREncoder, WithStateCheck, WithFetchClient,
// WithFetchTimeout, WithFetchPrivateAddresses, WithChannelClock, WithChannelLogger; the others are
// accepted and ignored). The customer's quota starts at 5 and the session in state 0, as for a
// customer who just wrote. m is copied; a missing MsgID or OpenKfID is filled in, a missing
// customer is not (the Replier then refuses, as it would live).
func NewRecorder(m *Message, opts ...ChannelOption) (*Recorder, error) {
	if m == nil {
		return nil, invalidf("NewRecorder(nil)")
	}
	c := channelConfig{now: time.Now, fetchTO: DefaultFetchTimeout, marker: "…", logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	if c.fetchClient == nil {
		c.fetchClient = newFetchClient(c.fetchPrivate)
	}
	wire := newRecorderWire()
	client, err := NewClient("recorder", "recorder", WithBaseURL("http://wecom.recorder.invalid"),
		WithHTTPClient(&http.Client{Transport: wire}), WithRetry(1, 0, 0), WithLogger(c.logger), WithClock(c.now))
	if err != nil {
		return nil, err
	}
	ch := &Channel{cfg: c, client: client, log: c.logger, now: c.now, quota: newQuotaBook(c.now), states: newStateCache()}
	ch.stats.errors = make(map[int]int64)
	// A Recorder reports nothing: its sends are not WeCom's.
	if ch.tel, err = newChannelTel(telemetryConfig{meters: noop.NewMeterProvider(), tracers: tracenoop.NewTracerProvider()}); err != nil {
		return nil, err
	}
	rec := &Recorder{channel: ch, wire: wire, msg: *m}
	if rec.msg.MsgID == "" {
		rec.msg.MsgID = "recorder-msg"
	}
	if rec.msg.OpenKfID == "" {
		rec.msg.OpenKfID = "recorder-kf"
	}
	if rec.msg.ExternalUserID == "" && rec.msg.Event != nil {
		rec.msg.ExternalUserID = rec.msg.Event.ExternalUserID
	}
	if rec.msg.Origin == OriginCustomer {
		ch.quota.observe(&rec.msg)
	}
	rec.lease = &recorderLease{key: rec.msg.OpenKfID}
	rec.sess = &session{ch: ch, lease: rec.lease, ctx: context.Background()}
	rec.run(&replyRecord{})
	return rec, nil
}

// run starts a handler run with the reply record rec.
func (rec *Recorder) run(rr *replyRecord) {
	it := &item{s: rec.sess, m: &rec.msg, key: customerKey(rec.msg.OpenKfID, customerOf(&rec.msg)), rec: rr}
	rec.replier = rec.channel.newReplier(it, rec.sess, it.m)
}

// Rerun prepares the Recorder for running the handler again on the same message, as the Channel
// does after a transient failure (Failure, or an error the handler returned) or a crash: the reply
// record is read back as it was stored, so the rerun's calls replay the recorded ones (what WeCom
// already accepted is not sent again), and once the rerun answers differently its further calls
// return ErrReplySuperseded. What WeCom knows (sent messages, quota, session state) is kept.
func (rec *Recorder) Rerun() {
	rr, err := decodeReplyRecord(rec.lease.stored())
	if err != nil {
		rr = &replyRecord{unreadable: true}
	}
	rec.run(rr)
}

// Failure returns the first transient send failure (WeCom busy, a network error) of the current
// run, or nil. After one, the Channel runs the handler again even when the handler returned nil:
// call Rerun and the handler to see what the customer would get.
func (rec *Recorder) Failure() error { return rec.failure }

// FailSends makes WeCom answer the next len(errcodes) send_msg calls with these errcodes, in turn:
// 0 accepts the send as usual, -1 is "busy" (a transient failure, after which the Channel reruns
// the handler), 95018 a human servicer's session, and so on.
func (rec *Recorder) FailSends(errcodes ...int) {
	rec.wire.mu.Lock()
	defer rec.wire.mu.Unlock()
	rec.wire.fail = append(rec.wire.fail, errcodes...)
}

// Messages returns the messages WeCom accepted, in order.
func (rec *Recorder) Messages() []RecordedMessage {
	rec.wire.mu.Lock()
	defer rec.wire.mu.Unlock()
	return append([]RecordedMessage(nil), rec.wire.sent...)
}

// Texts returns the content of the text messages WeCom accepted, in order.
func (rec *Recorder) Texts() []string {
	var out []string
	for _, m := range rec.Messages() {
		if m.Text != nil {
			out = append(out, m.Text.Content)
		}
	}
	return out
}

// State returns the session state as WeCom has it (Handoff changes it) and, in state 3, the
// servicer.
func (rec *Recorder) State() (ServiceStateValue, string) {
	rec.wire.mu.Lock()
	defer rec.wire.mu.Unlock()
	return rec.wire.state, rec.wire.servicer
}

// SetState sets the session state as WeCom has it, as if a servicer or an admin had changed it:
// the Replier learns it the way it would live (from WeCom's refusal, or service_state/get).
func (rec *Recorder) SetState(st ServiceStateValue, servicerUserID string) {
	rec.wire.mu.Lock()
	defer rec.wire.mu.Unlock()
	rec.wire.state, rec.wire.servicer = st, servicerUserID
}

// SetQuotaLeft makes the customer's quota n (0..5), as if 5-n messages had been sent since their
// message.
func (rec *Recorder) SetQuotaLeft(n int) error {
	if n < 0 || n > quotaPerMessage {
		return invalidf("SetQuotaLeft(%d): want 0..%d", n, quotaPerMessage)
	}
	rec.wire.mu.Lock()
	rec.wire.count = quotaPerMessage - n
	rec.wire.mu.Unlock()
	for i := range quotaPerMessage - n {
		rec.channel.quota.take(rec.key, fmt.Sprintf("\x00earlier-%d", i))
	}
	return nil
}

// recorderLease is the Recorder's reply record store: a lease that is always held.
type recorderLease struct {
	key string
	mu  sync.Mutex
	rec []byte
}

func (l *recorderLease) stored() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rec
}

func (l *recorderLease) Done() <-chan struct{}                         { return nil }
func (l *recorderLease) Err() error                                    { return nil }
func (l *recorderLease) Release(context.Context) error                 { return nil }
func (l *recorderLease) Key() string                                   { return l.key }
func (l *recorderLease) Token() uint64                                 { return 1 }
func (l *recorderLease) Save(context.Context, string) error            { return nil }
func (l *recorderLease) SetMeta(context.Context, string, string) error { return nil }
func (l *recorderLease) MarkDone(context.Context, ...string) error     { return nil }

func (l *recorderLease) PutReply(_ context.Context, msgID string, rec []byte) error {
	if len(rec) == 0 || len(rec) > cursor.MaxReplyLen {
		return fmt.Errorf("%w: reply record of %d bytes", cursor.ErrInvalidArgument, len(rec))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rec = append([]byte(nil), rec...)
	return nil
}
