package kf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ErrForbiddenAddress is returned by Replier.ImageURL when the URL leads to a loopback, private,
// link-local or otherwise internal address and WithFetchPrivateAddresses is off: image URLs often
// come from customers or a language model, and must not reach the bot's own network.
var ErrForbiddenAddress = errors.New("kf: fetch refused: internal address")

// fetchImage downloads an image for Replier.ImageURL, with its own timeout.
func (ch *Channel) fetchImage(ctx context.Context, rawURL string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, ch.cfg.fetchTO)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: reply image url: %w", ErrInvalidArgument, err)
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return nil, fmt.Errorf("%w: reply image url: scheme %q is not http(s)", ErrInvalidArgument, req.URL.Scheme)
	}
	resp, err := ch.cfg.fetchClient.Do(req)
	if err != nil {
		if errors.Is(err, ErrForbiddenAddress) {
			return nil, fmt.Errorf("kf: reply image url: %w", ErrForbiddenAddress)
		}
		return nil, fmt.Errorf("kf: reply image url: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("kf: reply image url: HTTP %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxFetchBytes+1))
	if err != nil {
		return nil, fmt.Errorf("kf: reply image url: %w", err)
	}
	if len(data) > maxFetchBytes {
		return nil, fmt.Errorf("kf: reply image url: larger than %d MB", maxFetchBytes>>20)
	}
	return data, nil
}

// newFetchClient is the default client of Replier.ImageURL: no proxy, and unless allowPrivate, a
// dialer that checks the address it actually connects to (after DNS, on every redirect), so that a
// name resolving to an internal address is refused as well as a literal one.
func newFetchClient(allowPrivate bool) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %s", ErrForbiddenAddress, address)
			}
			if !publicAddr(ap.Addr()) {
				return fmt.Errorf("%w: %s", ErrForbiddenAddress, ap.Addr())
			}
			return nil
		}
	}
	return &http.Client{
		Transport: &http.Transport{
			DialContext:           d.DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 20 * time.Second,
			MaxIdleConns:          16,
			IdleConnTimeout:       30 * time.Second,
		},
		CheckRedirect: func(_ *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("stopped after 5 redirects")
			}
			return nil
		},
	}
}

// cgnat is the shared address space of carrier-grade NAT (RFC 6598), internal to a provider.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// publicAddr reports whether a is a globally routable unicast address.
func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsValid() && a.IsGlobalUnicast() && !a.IsPrivate() && !a.IsLoopback() &&
		!a.IsLinkLocalUnicast() && !a.IsUnspecified() && !cgnat.Contains(a)
}
