package kf_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf"
)

// Every sentinel matches an *APIError of its code through wrapping, and only that code.
func TestSentinelsMatchByCode(t *testing.T) {
	t.Parallel()
	sentinels := map[int]error{
		-1: kf.ErrSystemBusy, 40001: kf.ErrInvalidSecret, 40007: kf.ErrInvalidMediaID, 40013: kf.ErrInvalidCorpID,
		40014: kf.ErrInvalidToken, 40058: kf.ErrInvalidParameter, 40096: kf.ErrInvalidExternalUserID,
		41001: kf.ErrTokenMissing, 42001: kf.ErrTokenExpired, 45009: kf.ErrRateLimited,
		45033: kf.ErrConcurrencyLimit, 48002: kf.ErrAPIForbidden, 60020: kf.ErrIPNotTrusted,
		95000: kf.ErrInvalidOpenKfID, 95001: kf.ErrQuotaExceeded, 95002: kf.ErrSessionExpired,
		95003: kf.ErrReceptionLimit, 95004: kf.ErrOpenKfIDNotFound, 95007: kf.ErrInvalidMsgToken,
		95008: kf.ErrTooManyMenuItems, 95009: kf.ErrInvalidMenuType, 95011: kf.ErrSecretMismatch,
		95012: kf.ErrEditionMismatch, 95013: kf.ErrSessionEnded, 95014: kf.ErrServicerNotActivated,
		95016: kf.ErrInvalidStateTransition, 95017: kf.ErrAPISwitchOff, 95018: kf.ErrStateForbidsSend,
		95019: kf.ErrServicerNotReceiving, 95030: kf.ErrMsgTypeBanned, 95031: kf.ErrNoConsultation,
	}
	for code := range sentinels {
		err := fmt.Errorf("replying: %w", fmt.Errorf("send: %w", &kf.APIError{Code: code, Msg: "m", Path: "/cgi-bin/kf/send_msg"}))
		for other, s := range sentinels {
			assert.Equal(t, code == other, errors.Is(err, s), "code %d vs sentinel %d", code, other)
		}
		assert.Equal(t, code, kf.ErrorCode(err))
		var ae *kf.APIError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, "/cgi-bin/kf/send_msg", ae.Path)
		en, zh := kf.CodeDescription(code)
		assert.NotEmpty(t, en, "code %d has an English description", code)
		assert.NotEmpty(t, zh, "code %d has a Chinese description", code)
		assert.Contains(t, err.Error(), en)
	}
	assert.Zero(t, kf.ErrorCode(errors.New("plain")))
	assert.Zero(t, kf.ErrorCode(nil))
	assert.False(t, errors.Is(errors.New("x"), kf.ErrSystemBusy))
	en, zh := kf.CodeDescription(12345)
	assert.Empty(t, en+zh)
}

func TestAPIErrorText(t *testing.T) {
	t.Parallel()
	e := &kf.APIError{Code: 95001, Msg: "api forbidden, hint: [x]", Path: "/cgi-bin/kf/send_msg"}
	assert.Equal(t, "kf: /cgi-bin/kf/send_msg: errcode 95001 (send quota exceeded (5 messages per customer message)): api forbidden, hint: [x]", e.Error())
	assert.Equal(t, "kf: errcode 777", (&kf.APIError{Code: 777}).Error())
	assert.True(t, (&kf.APIError{Code: -1}).Retryable())
	assert.True(t, (&kf.APIError{Code: 45033}).Retryable())
	assert.False(t, (&kf.APIError{Code: 45009}).Retryable(), "45009 surfaces as a rate limit")
	assert.Equal(t, "access_token expired", (&kf.APIError{Code: 42001}).Description())

	he := &kf.HTTPError{Method: "POST", Path: "/cgi-bin/kf/sync_msg", StatusCode: 502, Body: "bad gateway"}
	assert.Equal(t, `kf: POST /cgi-bin/kf/sync_msg: HTTP 502: "bad gateway"`, he.Error())

	inner := errors.New("dial tcp: refused")
	re := &kf.RequestError{Method: "GET", Path: "/cgi-bin/gettoken", Err: inner}
	assert.ErrorIs(t, re, inner)
	assert.False(t, re.Timeout())
}

// The descriptions follow WeCom's global error code page (doc 90313) where this package used to
// guess.
func TestCodeDescriptionsFollowGlobalPage(t *testing.T) {
	t.Parallel()
	for code, want := range map[int][]string{
		95004:  {"does not exist"},
		95011:  {"联合版", "独立版"},
		95012:  {"联合版", "独立版"},
		95014:  {"not a servicer", "not activated"},
		95018:  {"session state", "48 h"},
		830002: {"Range", "20 MB"},
	} {
		en, zh := kf.CodeDescription(code)
		assert.NotEmpty(t, zh, "code %d", code)
		for _, w := range want {
			assert.Contains(t, en, w, "code %d", code)
		}
	}
}
