package kf_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wxkf/wxkf/kf"
	"github.com/wxkf/wxkf/kf/kftest"
)

const okSend = `{"errcode":0,"errmsg":"ok","msgid":"m"}`

func sendReq(msgID string) kf.SendMsgRequest {
	return kf.SendMsgRequest{ToUser: "wm", OpenKfID: "wk", MsgID: msgID, Content: kf.NewText("x")}
}

// Which failures are retried, for idempotent calls and for sends with and without a client msgid.
func TestRetryClassification(t *testing.T) {
	t.Parallel()
	busy := func(code string) func(string, int) (int, string) {
		return func(_ string, n int) (int, string) {
			if n < 3 {
				return 200, `{"errcode":` + code + `,"errmsg":"x"}`
			}
			return 200, okSend
		}
	}
	status := func(st int) func(string, int) (int, string) {
		return func(_ string, n int) (int, string) {
			if n < 3 {
				return st, "upstream trouble"
			}
			return 200, okSend
		}
	}
	drop := func(_ string, n int) (int, string) {
		if n < 3 {
			return -1, ""
		}
		return 200, okSend
	}
	cases := []struct {
		name      string
		api       func(string, int) (int, string)
		call      func(c *kf.Client) error
		wantCalls int
		wantErr   error // nil: success
	}{
		{"sync -1 retried", busy("-1"), syncCall, 3, nil},
		{"sync 45033 retried", busy("45033"), syncCall, 3, nil},
		{"sync 45009 surfaces", busy("45009"), syncCall, 1, kf.ErrRateLimited},
		{"sync 95001 not retried", busy("95001"), syncCall, 1, kf.ErrQuotaExceeded},
		{"sync 502 retried", status(502), syncCall, 3, nil},
		{"sync 404 not retried", status(404), syncCall, 1, &kf.HTTPError{}},
		{"sync dropped connection retried", drop, syncCall, 3, nil},
		{"send without msgid: -1 not retried", busy("-1"), sendCall(""), 1, kf.ErrSystemBusy},
		{"send without msgid: 45033 not retried", busy("45033"), sendCall(""), 1, kf.ErrConcurrencyLimit},
		{"send without msgid: 502 not retried", status(502), sendCall(""), 1, &kf.HTTPError{}},
		{"send without msgid: dropped connection not retried", drop, sendCall(""), 1, &kf.RequestError{}},
		{"send with msgid: -1 retried", busy("-1"), sendCall("idem_1"), 3, nil},
		{"send with msgid: dropped connection retried", drop, sendCall("idem_1"), 3, nil},
		{"on_event without msgid: -1 not retried", busy("-1"), onEventCall(""), 1, kf.ErrSystemBusy},
		{"on_event with msgid: -1 retried", busy("-1"), onEventCall("w1"), 3, nil},
		{"trans not retried on -1", busy("-1"), transCall, 1, kf.ErrSystemBusy},
		{"account add not retried on -1", busy("-1"), func(c *kf.Client) error {
			_, err := c.AddAccount(context.Background(), "n", "m")
			return err
		}, 1, kf.ErrSystemBusy},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStub(t)
			s.apiFn = tc.api
			c := s.client(t, kf.WithRetry(3, time.Millisecond, 2*time.Millisecond))
			err := tc.call(c)
			total := 0
			for _, p := range []string{"/cgi-bin/kf/sync_msg", "/cgi-bin/kf/send_msg", "/cgi-bin/kf/send_msg_on_event", "/cgi-bin/kf/service_state/trans", "/cgi-bin/kf/account/add"} {
				total += s.count(p)
			}
			assert.Equal(t, tc.wantCalls, total, "calls")
			switch want := tc.wantErr.(type) {
			case nil:
				require.NoError(t, err)
			case *kf.HTTPError:
				var he *kf.HTTPError
				require.ErrorAs(t, err, &he)
				assert.NotZero(t, he.StatusCode)
				assert.Contains(t, err.Error(), "HTTP")
			case *kf.RequestError:
				var re *kf.RequestError
				require.ErrorAs(t, err, &re)
			default:
				require.ErrorIs(t, err, want)
			}
		})
	}
}

func syncCall(c *kf.Client) error {
	_, err := c.SyncMsg(context.Background(), kf.SyncMsgRequest{OpenKfID: "wk"})
	return err
}

func sendCall(msgID string) func(c *kf.Client) error {
	return func(c *kf.Client) error {
		_, err := c.SendMsg(context.Background(), sendReq(msgID))
		return err
	}
}

func onEventCall(msgID string) func(c *kf.Client) error {
	return func(c *kf.Client) error {
		_, err := c.SendMsgOnEvent(context.Background(), kf.SendMsgOnEventRequest{Code: "c", MsgID: msgID, Content: kf.NewText("x")})
		return err
	}
}

func transCall(c *kf.Client) error {
	_, err := c.TransServiceState(context.Background(), kf.TransServiceStateRequest{OpenKfID: "wk", ExternalUserID: "wm", State: 1})
	return err
}

// Attempts are bounded by WithRetry; the last error is returned.
func TestRetryBounded(t *testing.T) {
	t.Parallel()
	for _, attempts := range []int{1, 2, 5} {
		s := newStub(t)
		s.apiFn = func(string, int) (int, string) { return 200, `{"errcode":-1,"errmsg":"system busy"}` }
		c := s.client(t, kf.WithRetry(attempts, time.Millisecond, 2*time.Millisecond))
		err := syncCall(c)
		require.ErrorIs(t, err, kf.ErrSystemBusy)
		assert.Equal(t, attempts, s.count("/cgi-bin/kf/sync_msg"))
	}
}

// Waiting between attempts uses a growing, jittered backoff within [wait, maxWait].
func TestRetryBackoffTiming(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	var stamps []time.Time
	s.apiFn = func(string, int) (int, string) {
		stamps = append(stamps, time.Now())
		return 200, `{"errcode":-1,"errmsg":"busy"}`
	}
	c := s.client(t, kf.WithRetry(4, 40*time.Millisecond, 100*time.Millisecond))
	require.ErrorIs(t, syncCall(c), kf.ErrSystemBusy)
	require.Len(t, stamps, 4)
	for i := 1; i < len(stamps); i++ {
		gap := stamps[i].Sub(stamps[i-1])
		assert.GreaterOrEqual(t, gap, 40*time.Millisecond, "gap %d", i)
		assert.Less(t, gap, 2*time.Second, "gap %d", i)
	}
}

// A context that ends during the backoff stops the call at once.
func TestRetryHonoursContext(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	tr := &http.Transport{}
	s := newStub(t)
	s.apiFn = func(string, int) (int, string) { return 200, `{"errcode":-1,"errmsg":"busy"}` }
	c := s.client(t, kf.WithRetry(10, 2*time.Second, 5*time.Second), kf.WithHTTPClient(&http.Client{Transport: tr}))
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.SyncMsg(ctx, kf.SyncMsgRequest{OpenKfID: "wk"})
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.DeadlineExceeded), "got %v", err)
	assert.Less(t, time.Since(start), time.Second)
	assert.Equal(t, 1, s.count("/cgi-bin/kf/sync_msg"))

	// A context already done: no I/O at all.
	done, cancel2 := context.WithCancel(context.Background())
	cancel2()
	_, err = c.SyncMsg(done, kf.SyncMsgRequest{OpenKfID: "wk"})
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 1, s.count("/cgi-bin/kf/sync_msg"))
	s.srv.Close()
	tr.CloseIdleConnections()
}

// WithTimeout bounds each attempt: a hung attempt is abandoned and (for idempotent calls) retried.
func TestRetryPerAttemptTimeout(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	s.apiFn = func(_ string, n int) (int, string) {
		if n == 1 {
			return 0, "" // hang
		}
		return 200, `{"errcode":0,"errmsg":"ok"}`
	}
	c := s.client(t, kf.WithTimeout(500*time.Millisecond))
	require.NoError(t, syncCall(c))
	// The hung first attempt timed out and was retried (a loaded machine may time out the second
	// attempt too; the retry budget covers it).
	assert.GreaterOrEqual(t, s.count("/cgi-bin/kf/sync_msg"), 2)

	// A send without msgid that timed out may have been delivered: not retried.
	s2 := newStub(t)
	s2.apiFn = func(string, int) (int, string) { return 0, "" }
	c2 := s2.client(t, kf.WithTimeout(300*time.Millisecond))
	_, err := c2.SendMsg(context.Background(), sendReq(""))
	var re *kf.RequestError
	require.ErrorAs(t, err, &re)
	assert.True(t, re.Timeout())
	assert.Equal(t, 1, s2.count("/cgi-bin/kf/send_msg"))
}

// A connection that was never made cannot have sent anything: even a send without msgid retries it.
func TestRetryDialErrorForSend(t *testing.T) {
	t.Parallel()
	ct := &countingTransport{rt: &http.Transport{}}
	store := kf.NewMemoryTokenStore()
	// Put a token in the store so that the failing connection is the send itself.
	c, err := kf.NewClient(stubCorp, stubSecret, kf.WithBaseURL(closedPortURL(t)), kf.WithTokenStore(store),
		kf.WithHTTPClient(&http.Client{Transport: ct}), kf.WithRetry(3, time.Millisecond, time.Millisecond))
	require.NoError(t, err)
	primeToken(t, store, stubCorp, stubSecret)
	_, err = c.SendMsg(context.Background(), sendReq(""))
	var re *kf.RequestError
	require.ErrorAs(t, err, &re)
	assert.EqualValues(t, 3, ct.trips.Load(), "dial errors are retried up to the budget")
}

// primeToken stores a token for (corp, secret) by letting a throwaway client fetch it from a stub.
func primeToken(t *testing.T, store kf.TokenStore, corp, secret string) {
	t.Helper()
	s := newStub(t)
	c, err := kf.NewClient(corp, secret, kf.WithBaseURL(s.srv.URL), kf.WithTokenStore(store))
	require.NoError(t, err)
	_, err = c.AccessToken(context.Background())
	require.NoError(t, err)
}

// Replies are capped; an oversized reply is an error and not retried.
func TestResponseCapped(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	big := `{"errcode":0,"errmsg":"ok","msg_list":[],"pad":"` + strings.Repeat("x", kf.MaxResponseBytes) + `"}`
	s.apiFn = func(string, int) (int, string) { return 200, big }
	err := syncCall(s.client(t))
	require.ErrorIs(t, err, kf.ErrResponseTooLarge)
	assert.Equal(t, 1, s.count("/cgi-bin/kf/sync_msg"))
}

// A 200 reply that is not JSON is an error, not an empty success.
func TestNonJSONReply(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	s.apiFn = func(string, int) (int, string) { return 200, "<html>captive portal</html>" }
	err := syncCall(s.client(t))
	require.ErrorIs(t, err, kf.ErrUnexpectedResponse)
}

// With kftest's fault injection: a flaky, busy WeCom is survived by idempotent calls, and a send
// with msgid whose answer was lost is not delivered twice.
func TestRetryAgainstFlakyKftest(t *testing.T) {
	t.Parallel()
	f := newFake(t, kf.WithRetry(8, time.Millisecond, 5*time.Millisecond))
	ctx := context.Background()
	f.srv.AddText("wmAlice", "hi")
	f.srv.SetFaults(kftest.Faults{BusyRate: 0.5, Paths: []string{"/cgi-bin/kf/sync_msg", "/cgi-bin/kf/service_state/get"}})
	for range 10 {
		_, err := f.c.SyncMsg(ctx, kf.SyncMsgRequest{OpenKfID: f.srv.OpenKfID()})
		require.NoError(t, err)
		_, err = f.c.GetServiceState(ctx, f.srv.OpenKfID(), "wmAlice")
		require.NoError(t, err)
	}

	f.srv.SetFaults(kftest.Faults{DropRate: 1, DropAfterProcessing: true, Paths: []string{"/cgi-bin/kf/send_msg"}})
	_, err := f.c.SendMsg(ctx, kf.SendMsgRequest{ToUser: "wmAlice", OpenKfID: f.srv.OpenKfID(), Content: kf.NewText("no key")})
	require.Error(t, err)
	assert.Len(t, f.srv.SentTo(f.srv.OpenKfID(), "wmAlice"), 1, "accepted once, and not retried without a msgid")

	_, err = f.c.SendMsg(ctx, kf.SendMsgRequest{ToUser: "wmAlice", OpenKfID: f.srv.OpenKfID(), MsgID: "key1", Content: kf.NewText("with key")})
	require.Error(t, err, "every answer dropped")
	assert.Len(t, f.srv.SentTo(f.srv.OpenKfID(), "wmAlice"), 2, "retried, but WeCom accepted the msgid once")
}

func TestNewClientValidation(t *testing.T) {
	t.Parallel()
	_, err := kf.NewClient("", "s")
	require.ErrorIs(t, err, kf.ErrInvalidArgument)
	_, err = kf.NewClient("c", "")
	require.ErrorIs(t, err, kf.ErrInvalidArgument)
	_, err = kf.NewClient("c", "s x")
	require.ErrorIs(t, err, kf.ErrInvalidArgument)
	for _, opt := range []kf.ClientOption{
		kf.WithBaseURL("ftp://x"), kf.WithBaseURL("not a url"), kf.WithBaseURL("http://h/?access_token=x"),
		kf.WithHTTPClient(nil), kf.WithLogger(nil), kf.WithTokenStore(nil),
		kf.WithRetry(0, 0, 0), kf.WithRetry(1, time.Second, time.Millisecond), kf.WithTimeout(0),
		kf.WithTokenRefreshMargin(-1), kf.WithMaxDownloadBytes(0),
	} {
		_, err := kf.NewClient("c", "s", opt)
		require.ErrorIs(t, err, kf.ErrInvalidArgument)
	}
	c, err := kf.NewClient("ww1", "s", nil, kf.WithBaseURL("https://proxy.example.com/"))
	require.NoError(t, err)
	assert.Equal(t, "ww1", c.CorpID())
}

// The caller's *http.Client is copied, never modified.
func TestWithHTTPClientNotMutated(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	hc := &http.Client{}
	c := s.client(t, kf.WithHTTPClient(hc), kf.WithTimeout(7*time.Second))
	require.NoError(t, syncCall(c))
	assert.Nil(t, hc.Transport)
	assert.Nil(t, hc.Jar)
	assert.Zero(t, hc.Timeout)
	assert.Nil(t, hc.CheckRedirect)
}

// A token that cannot be fetched fails the call after gettoken's own attempts, without retrying
// them again per API attempt (and without touching the API).
func TestTokenFetchFailureNotMultiplied(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	s.tokenFn = func(int) (int, string) { return -1, "" }
	c := s.client(t, kf.WithRetry(3, time.Millisecond, time.Millisecond))
	err := syncCall(c)
	var re *kf.RequestError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "/cgi-bin/gettoken", re.Path)
	assert.EqualValues(t, 3, s.tokenN.Load())
	assert.Zero(t, s.count("/cgi-bin/kf/sync_msg"))
}

// media/get streams: a failed attempt (5xx, rejected token as a JSON body with HTTP 200) is
// closed and retried before anything is written.
func TestDownloadRetries(t *testing.T) {
	t.Parallel()
	data := "\x89PNG\r\n\x1a\n-binary-media-bytes"
	s := newStub(t)
	s.apiFn = func(_ string, n int) (int, string) {
		switch n {
		case 1:
			return 503, "try later"
		case 2:
			return 200, `{"errcode":40014,"errmsg":"invalid access_token"}`
		}
		return 200, data
	}
	c := s.client(t, kf.WithRetry(3, time.Millisecond, time.Millisecond))
	var sb strings.Builder
	d, err := c.DownloadMedia(context.Background(), "mid", &sb)
	require.NoError(t, err)
	assert.Equal(t, data, sb.String())
	assert.EqualValues(t, len(data), d.Size)
	assert.Equal(t, 3, s.count("/cgi-bin/media/get"))
	assert.Equal(t, []string{stubToken(1), stubToken(1), stubToken(2)}, s.usedTokens(), "token refreshed after 40014")

	// errcode 0 without media is not data either.
	s2 := newStub(t)
	s2.apiFn = func(string, int) (int, string) { return 200, `{"errcode":0,"errmsg":"ok"}` }
	sb.Reset()
	_, err = s2.client(t).DownloadMedia(context.Background(), "mid", &sb)
	require.ErrorIs(t, err, kf.ErrUnexpectedResponse)
	assert.Zero(t, sb.Len())

	// A 4xx is an HTTPError; nothing written.
	s3 := newStub(t)
	s3.apiFn = func(string, int) (int, string) { return 404, "not here" }
	sb.Reset()
	_, err = s3.client(t).DownloadMedia(context.Background(), "mid", &sb)
	var he *kf.HTTPError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, 404, he.StatusCode)
	assert.Equal(t, "not here", he.Body)
	assert.Zero(t, sb.Len())
}
