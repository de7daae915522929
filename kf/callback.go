package kf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/wxkf/wxkf/crypto"
)

// MaxCallbackBytes caps a callback body; WeCom's are well under 1 KB.
const MaxCallbackBytes = 1 << 20

// ServeHTTP is the callback URL (doc 94699). GET answers the URL verification with the decrypted
// echostr. POST verifies the signature, decrypts the envelope, checks the receiver id and answers
// 200 "success" at once: the sync runs in the background, so a slow bot never makes WeCom retry. On
// stores shared between replicas (cursor.Owed) it first marks the account owed, one store round
// trip at most 1 s long, unless this process has a mark outstanding for it ("Callbacks owed across
// replicas" in the package documentation).
// A bad signature (or receiver), or a timestamp outside the replay window (WithReplayWindow), is
// 403, a malformed request 400, a method other than GET or POST 405, a body over 1 MB 413 (each
// counted in Stats.CallbacksRejected), and a callback during Shutdown 503 (WeCom
// retries it later, possibly on another replica). An older callback never replaces the sync
// token of a newer one.
func (ch *Channel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, span := ch.startCallback(r)
	defer span.End()
	q := r.URL.Query()
	switch r.Method {
	case http.MethodGet:
		ch.serveVerify(ctx, w, q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"), q.Get("echostr"))
	case http.MethodPost:
		ch.serveCallback(ctx, w, r, q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"))
	default:
		ch.stats.rejected.Add(1)
		ch.noteCallback(ctx, callbackMalformed, "")
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (ch *Channel) serveVerify(ctx context.Context, w http.ResponseWriter, sig, ts, nonce, echostr string) {
	if sig == "" || echostr == "" {
		ch.stats.rejected.Add(1)
		ch.noteCallback(ctx, callbackMalformed, "")
		http.Error(w, "missing msg_signature or echostr", http.StatusBadRequest)
		return
	}
	plain, err := ch.crypto.VerifyURL(sig, ts, nonce, echostr)
	if err != nil {
		ch.rejectCallback(ctx, w, err)
		return
	}
	ch.noteCallback(ctx, callbackVerified, "")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(plain) // exactly the plaintext: no quotes, BOM or newline
}

func (ch *Channel) serveCallback(ctx context.Context, w http.ResponseWriter, r *http.Request, sig, ts, nonce string) {
	if ch.stopping.Load() {
		ch.noteCallback(ctx, callbackShuttingDown, "")
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxCallbackBytes))
	if err != nil {
		ch.stats.rejected.Add(1)
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			ch.noteCallback(ctx, callbackTooLarge, "")
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		ch.noteCallback(ctx, callbackMalformed, "")
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	if sig == "" {
		ch.stats.rejected.Add(1)
		ch.noteCallback(ctx, callbackMalformed, "")
		http.Error(w, "missing msg_signature", http.StatusBadRequest)
		return
	}
	plain, err := ch.crypto.DecryptMessage(sig, ts, nonce, body)
	if err != nil {
		ch.rejectCallback(ctx, w, err)
		return
	}
	ev, err := crypto.ParseEvent(plain)
	if err != nil {
		ch.rejectCallback(ctx, w, err)
		return
	}
	ch.stats.callbacks.Add(1)
	result := callbackAccepted
	if ev.Event == crypto.EventKfMsgOrEvent {
		at := ch.now()
		if ev.CreateTime > 0 {
			at = time.Unix(ev.CreateTime, 0)
		}
		ch.markOwed(ctx, ev.OpenKfID) // before the 200: another replica pulls if this one dies first
		if _, coalesced := ch.triggerRound(ev.OpenKfID, ev.Token, at); coalesced {
			result = callbackCoalesced
		}
	} else if h := ch.onCallback.Load(); h != nil {
		ch.goBG(func() {
			defer ch.recoverHook("OnCallback")
			(*h)(ch.workCtx, ev)
		})
	}
	ch.noteCallback(ctx, result, ev.OpenKfID)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "success")
}

func (ch *Channel) rejectCallback(ctx context.Context, w http.ResponseWriter, err error) {
	ch.stats.rejected.Add(1)
	switch {
	case errors.Is(err, crypto.ErrInvalidSignature), errors.Is(err, crypto.ErrReceiverMismatch):
		if errors.Is(err, crypto.ErrStaleTimestamp) {
			ch.noteCallback(ctx, callbackStale, "")
		} else {
			ch.noteCallback(ctx, callbackForged, "")
		}
		ch.log.Warn("wxkf: callback rejected", "err", err) // forged, or replayed outside the window
		http.Error(w, "forbidden", http.StatusForbidden)
	default:
		ch.noteCallback(ctx, callbackMalformed, "")
		ch.log.Warn("wxkf: malformed callback", "err", err)
		http.Error(w, "bad request", http.StatusBadRequest)
	}
}

func (ch *Channel) recoverHook(name string) {
	if v := recover(); v != nil {
		ch.log.Error("wxkf: hook panicked", "hook", name, "err", fmt.Errorf("panic: %v", v))
		ch.stats.handlerErrors.Add(1)
	}
}
