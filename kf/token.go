package kf

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// TokenStore holds access tokens so that several replicas share one token instead of each calling
// gettoken (§3, doc 91039: gettoken is rate-limited). cursor/redis implements it.
//
// The client keys tokens by corpid and a hash of the secret, never the secret itself.
type TokenStore interface {
	// Get returns the cached value and its remaining TTL; ("", 0, nil) on a miss.
	Get(ctx context.Context, key string) (value string, ttl time.Duration, err error)
	// Set stores value for ttl.
	Set(ctx context.Context, key, value string, ttl time.Duration) error
}

// MemoryTokenStore is the default in-process TokenStore. It is safe for concurrent use; the zero
// value is not usable, use NewMemoryTokenStore.
type MemoryTokenStore struct {
	mu  sync.Mutex
	m   map[string]memoryToken
	now func() time.Time
}

type memoryToken struct {
	value   string
	expires time.Time
}

// NewMemoryTokenStore returns an empty in-process token store.
func NewMemoryTokenStore() *MemoryTokenStore {
	return &MemoryTokenStore{m: make(map[string]memoryToken), now: time.Now}
}

// Get returns the value stored under key and its remaining TTL, or ("", 0, nil) when there is none
// or it expired.
func (s *MemoryTokenStore) Get(ctx context.Context, key string) (string, time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return "", 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.m[key]
	if !ok {
		return "", 0, nil
	}
	ttl := t.expires.Sub(s.now())
	if ttl <= 0 {
		delete(s.m, key)
		return "", 0, nil
	}
	return t.value, ttl, nil
}

// Set stores value under key for ttl; a ttl ≤ 0 deletes the key.
func (s *MemoryTokenStore) Set(ctx context.Context, key, value string, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ttl <= 0 {
		delete(s.m, key)
		return nil
	}
	s.m[key] = memoryToken{value: value, expires: s.now().Add(ttl)}
	return nil
}

// tokenStoreKey is the store key for (corpID, secret): the corpid in clear (it is not secret) and
// the first 8 bytes of SHA-256(corpid NUL secret), so several secrets of one corp get their own
// tokens (§3) and the secret never reaches the store.
func tokenStoreKey(corpID, secret string) string {
	h := sha256.Sum256([]byte(corpID + "\x00" + secret))
	return "wxkf:kf:token:" + corpID + ":" + hex.EncodeToString(h[:8])
}

// tokenSource caches the access token of one (corpid, secret) in memory in front of a TokenStore,
// refreshes it early, and lets a single gettoken run at a time (single flight).
type tokenSource struct {
	c      *Client
	store  TokenStore
	key    string
	margin time.Duration
	flight singleflight.Group
	// flightTimeout bounds a refresh that outlives the callers that started it.
	flightTimeout time.Duration

	mu        sync.Mutex
	token     string
	refreshAt time.Time // after this, the token counts as stale (expiry minus the margin)
	bad       string    // the last token WeCom rejected; never taken back from the store
	failErr   error     // a credential error (40001, 40013) returned without calling gettoken ...
	failUntil time.Time // ... until then
}

// invalidCredentialCooldown is how long a client answers AccessToken with the last 40001 (bad
// secret) or 40013 (bad corpid) without calling gettoken again: repeated wrong secrets get the
// server's IP banned for an hour (doc 91039), so a misconfigured bot must not hammer gettoken.
const invalidCredentialCooldown = 30 * time.Second

// errTokenFetch marks errors of the token source so that a call that needed a token does not
// retry them again (gettoken has its own retries).
type tokenFetchError struct{ err error }

func (e *tokenFetchError) Error() string { return "kf: access token: " + e.err.Error() }
func (e *tokenFetchError) Unwrap() error { return e.err }

// cached returns the in-memory token if it is fresh.
func (ts *tokenSource) cached(now time.Time) (string, bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.token != "" && now.Before(ts.refreshAt) {
		return ts.token, true
	}
	return "", false
}

func (ts *tokenSource) get(ctx context.Context) (string, error) {
	now := ts.c.now()
	if tok, ok := ts.cached(now); ok {
		return tok, nil
	}
	if err := ts.credentialFailure(now); err != nil {
		return "", err
	}
	// The refresh runs detached from the first caller's cancellation (its values kept), bounded by
	// flightTimeout, so that one impatient caller does not fail the others waiting on it.
	ch := ts.flight.DoChan("token", func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ts.flightTimeout)
		defer cancel()
		return ts.refresh(fctx)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(string), nil
	case <-ctx.Done():
		return "", &tokenFetchError{err: ctx.Err()}
	}
}

// credentialFailure returns the remembered credential error while its cooldown lasts.
func (ts *tokenSource) credentialFailure(now time.Time) error {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.failErr != nil && now.Before(ts.failUntil) {
		return ts.failErr
	}
	return nil
}

// refresh runs inside the single flight: memory again (a flight may just have finished), then the
// store, then gettoken.
func (ts *tokenSource) refresh(ctx context.Context) (string, error) {
	now := ts.c.now()
	if tok, ok := ts.cached(now); ok {
		return tok, nil
	}
	ts.mu.Lock()
	bad := ts.bad
	ts.mu.Unlock()

	// A store failure is logged and treated as a miss: the token can always be recomputed, and
	// gettoken returns the same token while it is valid (doc 91039), so an outage of a shared store
	// costs one gettoken per process instead of failing every call.
	value, ttl, err := ts.store.Get(ctx, ts.key)
	if err != nil {
		ts.c.log.LogAttrs(ctx, slog.LevelWarn, "kf: token store get failed", slog.String("err", redact(err.Error())))
	} else if value != "" && value != bad && ttl > ts.margin {
		ts.set(value, now.Add(ttl-ts.margin))
		ts.c.log.LogAttrs(ctx, slog.LevelDebug, "kf: access token from store", slog.Duration("ttl", ttl))
		return value, nil
	}

	if err := ts.credentialFailure(now); err != nil {
		return "", err
	}
	tok, expiresIn, err := ts.c.fetchToken(ctx)
	ts.c.tel.noteRefresh(ctx, err)
	if err != nil {
		err = &tokenFetchError{err: err}
		if code := ErrorCode(err); code == codeInvalidSecret || code == codeInvalidCorpID {
			ts.mu.Lock()
			ts.failErr, ts.failUntil = err, ts.c.now().Add(invalidCredentialCooldown)
			ts.mu.Unlock()
		}
		return "", err
	}
	margin := ts.margin
	if margin >= expiresIn {
		margin = expiresIn / 2
	}
	ts.set(tok, now.Add(expiresIn-margin))
	if err := ts.store.Set(ctx, ts.key, tok, expiresIn); err != nil {
		ts.c.log.LogAttrs(ctx, slog.LevelWarn, "kf: token store set failed", slog.String("err", redact(err.Error())))
	}
	ts.c.log.LogAttrs(ctx, slog.LevelInfo, "kf: access token refreshed", slog.Duration("expires_in", expiresIn))
	return tok, nil
}

func (ts *tokenSource) set(tok string, refreshAt time.Time) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.token, ts.refreshAt = tok, refreshAt
	if ts.bad == tok {
		ts.bad = ""
	}
}

// invalidate forgets tok if it is still the cached token ("" forgets whatever is cached) and
// refuses to take it back from the store. Comparing first means a burst of calls that all failed
// with the same expired token invalidates it once, not the fresh token the first retry fetched.
func (ts *tokenSource) invalidate(tok string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if tok == "" {
		tok = ts.token
	}
	if tok == "" {
		return
	}
	ts.bad = tok
	if ts.token == tok {
		ts.token, ts.refreshAt = "", time.Time{}
	}
}

// gettokenResponse is the reply of cgi-bin/gettoken (doc 91039).
type gettokenResponse struct {
	ErrCode     int    `json:"errcode"`
	ErrMsg      string `json:"errmsg"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

func (r *gettokenResponse) status() (int, string) { return r.ErrCode, r.ErrMsg }

// maxTokenBytes is the longest access_token WeCom documents (§3).
const maxTokenBytes = 512

// fetchToken calls cgi-bin/gettoken (§3, doc 91039). It is retried like any idempotent call
// on -1, 45033 and network errors; 40001 (bad secret) is returned at once.
func (c *Client) fetchToken(ctx context.Context) (string, time.Duration, error) {
	var out gettokenResponse
	err := c.call(ctx, &request{
		method:  methodGet,
		path:    pathGetToken,
		query:   []string{"corpid", c.corpID, "corpsecret", c.secret},
		retry:   retryIdempotent,
		noToken: true,
	}, &out)
	if err != nil {
		return "", 0, err
	}
	switch {
	case out.AccessToken == "":
		return "", 0, fmt.Errorf("%w: gettoken returned no access_token", ErrUnexpectedResponse)
	case len(out.AccessToken) > maxTokenBytes:
		return "", 0, fmt.Errorf("%w: gettoken returned a %d-byte access_token (max %d)", ErrUnexpectedResponse, len(out.AccessToken), maxTokenBytes)
	case out.ExpiresIn <= 0:
		return "", 0, fmt.Errorf("%w: gettoken returned expires_in %s", ErrUnexpectedResponse, strconv.FormatInt(out.ExpiresIn, 10))
	}
	return out.AccessToken, time.Duration(out.ExpiresIn) * time.Second, nil
}

// AccessToken returns a valid access token for the client's (corpid, secret) (doc 91039): from
// memory, else from the TokenStore, else from cgi-bin/gettoken. A token within the refresh margin
// of its expiry (WithTokenRefreshMargin) is refreshed early. Concurrent callers share one refresh.
//
// The client uses it for every call; call it directly only to hand the token to code outside this
// package. Never log it.
func (c *Client) AccessToken(ctx context.Context) (string, error) {
	tok, err := c.tokens.get(ctx)
	if err != nil {
		var tfe *tokenFetchError
		if !errors.As(err, &tfe) {
			err = &tokenFetchError{err: err}
		}
		return "", err
	}
	return tok, nil
}

// InvalidateToken forgets the cached token so that the next call fetches a new one, and never takes
// the forgotten token back from the TokenStore. The client does this by itself on 40014, 42001 and
// 41001; call it when a token obtained from AccessToken was rejected elsewhere.
func (c *Client) InvalidateToken(ctx context.Context) {
	c.tokens.invalidate("")
	c.log.LogAttrs(ctx, slog.LevelDebug, "kf: access token invalidated")
}
