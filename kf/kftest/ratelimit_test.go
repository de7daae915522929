package kftest_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf/kftest"
)

// A path over its limit answers 45009 without effect, and keeps answering it for the lock; then
// the window slides on. Other paths are not affected.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	clock := kftest.NewManualClock(time.Now())
	srv, a := newAPI(t, kftest.WithClock(clock.Now))
	a.fetchToken()
	const path = "/cgi-bin/kf/send_msg"
	srv.SetRateLimit(path, kftest.RateLimit{Calls: 3, Per: time.Minute, Lock: 30 * time.Second})
	for i := range 3 {
		assert.NotEqual(t, kftest.CodeRateLimited, a.sendText("u1", "hi").Code, "call %d", i+1)
		clock.Advance(time.Second)
	}
	r := a.sendText("u1", "one too many")
	assert.Equal(t, kftest.CodeRateLimited, r.Code)
	before := len(srv.Sent())
	clock.Advance(29 * time.Second)
	assert.Equal(t, kftest.CodeRateLimited, a.sendText("u1", "locked").Code, "the lock holds")
	assert.Equal(t, before, len(srv.Sent()), "no effect")
	assert.NotEqual(t, kftest.CodeRateLimited, a.sync(obj{"open_kfid": srv.OpenKfID()}).Code, "other paths are free")
	clock.Advance(time.Minute)
	assert.NotEqual(t, kftest.CodeRateLimited, a.sendText("u1", "later").Code, "the window moved on")
	assert.Equal(t, 2, srv.RateLimitHits(path))

	srv.SetRateLimit(path, kftest.RateLimit{})
	for range 10 {
		assert.NotEqual(t, kftest.CodeRateLimited, a.sendText("u1", "free").Code)
	}
	require.Panics(t, func() { srv.SetRateLimit(path, kftest.RateLimit{Calls: 1}) })
}
