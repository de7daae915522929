package kftest

import "time"

type tokenResp struct {
	okBody
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

// handleGetToken is GET /cgi-bin/gettoken?corpid&corpsecret (§3, doc 91039). Within a token's
// lifetime it returns the same token with the seconds it has left (WeCom: "repeated calls within the
// validity return the same result"); after expiry, InvalidateTokens or ExpireTokens, a new one.
func (s *Server) handleGetToken(c *call) result {
	corpID, secret := c.query.Get("corpid"), c.query.Get("corpsecret")
	switch {
	case corpID == "":
		return fail(CodeMissingCorpID, "corpid missing")
	case secret == "":
		return fail(CodeMissingSecret, "corpsecret missing")
	case corpID != s.cfg.corpID:
		return fail(CodeInvalidCorpID, "invalid corpid")
	case secret != s.cfg.secret:
		return fail(CodeInvalidSecret, "invalid credential, access_token is invalid or not latest")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.tokens[s.current]; t != nil && !t.invalidated && !t.expired && c.now.Before(t.expires) {
		left := int64((t.expires.Sub(c.now) + time.Second - 1) / time.Second)
		return result{v: tokenResp{okBody: okay(), AccessToken: s.current, ExpiresIn: left}}
	}
	tok := s.randString(128, idChars)
	s.tokens[tok] = &accessToken{expires: c.now.Add(s.cfg.tokenTTL)}
	s.current = tok
	return result{v: tokenResp{okBody: okay(), AccessToken: tok, ExpiresIn: int64(s.cfg.tokenTTL / time.Second)}}
}

// checkAccessToken enforces §3 on every cgi-bin call: missing → 41001, unknown or invalidated →
// 40014, past its lifetime or expired by ExpireTokens → 42001.
func (s *Server) checkAccessToken(tok string) *apiError {
	if tok == "" {
		return errf(CodeMissingToken, "access_token missing")
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tokens[tok]
	switch {
	case t == nil || t.invalidated:
		return errf(CodeInvalidToken, "invalid access_token")
	case t.expired || !now.Before(t.expires):
		return errf(CodeTokenExpired, "access_token expired")
	}
	return nil
}

// InvalidateTokens makes every access_token issued so far invalid: its next use answers 40014
// (as when the secret was reset in the admin console). gettoken then issues a new one.
func (s *Server) InvalidateTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		t.invalidated = true
	}
}

// ExpireTokens makes every access_token issued so far expired: its next use answers 42001.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		t.expired = true
	}
}

// AccessTokens returns how many distinct access_tokens gettoken has issued.
func (s *Server) AccessTokens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tokens)
}
