package kf_test

import (
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf"
)

// Options behave alike: a nil ClientOption is ignored, and an invalid value is an error wrapping
// ErrInvalidArgument, never a silent default and never a panic.
func TestNewClientOptions(t *testing.T) {
	t.Parallel()
	c, err := kf.NewClient("ww1", "secret", nil, kf.WithTimeout(time.Second), nil)
	require.NoError(t, err)
	assert.Equal(t, "ww1", c.CorpID())

	var nilStore *kf.MemoryTokenStore
	for name, opt := range map[string]kf.ClientOption{
		"base URL not absolute": kf.WithBaseURL("qyapi.weixin.qq.com"),
		"base URL ftp":          kf.WithBaseURL("ftp://example.com"),
		"base URL with query":   kf.WithBaseURL("https://example.com/?a=1"),
		"nil http client":       kf.WithHTTPClient(nil),
		"nil logger":            kf.WithLogger(nil),
		"nil token store":       kf.WithTokenStore(nil),
		"typed nil token store": kf.WithTokenStore(nilStore),
		"zero attempts":         kf.WithRetry(0, time.Millisecond, time.Second),
		"wait over max":         kf.WithRetry(3, time.Second, time.Millisecond),
		"negative wait":         kf.WithRetry(3, -time.Second, time.Second),
		"zero timeout":          kf.WithTimeout(0),
		"negative margin":       kf.WithTokenRefreshMargin(-time.Second),
		"zero download cap":     kf.WithMaxDownloadBytes(0),
		"nil clock":             kf.WithClock(nil),
	} {
		c, err := kf.NewClient("ww1", "secret", opt)
		assert.ErrorIs(t, err, kf.ErrInvalidArgument, name)
		assert.Nil(t, c, name)
	}
	for name, args := range map[string][2]string{
		"empty corpid":      {"", "secret"},
		"empty secret":      {"ww1", ""},
		"space in secret":   {"ww1", "sec ret"},
		"control in corpid": {"ww\x001", "secret"},
	} {
		_, err := kf.NewClient(args[0], args[1])
		assert.ErrorIs(t, err, kf.ErrInvalidArgument, name)
	}

	// The caller's *http.Client is never modified.
	hc := &http.Client{Timeout: time.Hour}
	_, err = kf.NewClient("ww1", "secret", kf.WithHTTPClient(hc), kf.WithTimeout(time.Second), kf.WithLogger(slog.Default()))
	require.NoError(t, err)
	assert.Equal(t, time.Hour, hc.Timeout)
}
