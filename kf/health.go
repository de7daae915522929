package kf

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// HealthCheckTimeout bounds each check of Channel.Health (the store read and the access token);
// they run concurrently, so a report takes at most this long. Give a readiness probe a timeout
// above it (Kubernetes: timeoutSeconds: 2).
const HealthCheckTimeout = time.Second

// healthProbeKey is the account whose cursor the store check reads: a key nothing writes, so the
// read is the store's cheapest (a GET on Redis, a map lookup in the file store).
const healthProbeKey = "wxkf-health-probe"

// HealthReport is what Channel.Health found: whether the Channel can work (its store answers and
// an access token can be had) and how far along each account is.
type HealthReport struct {
	// Time is when the report was made, by the Channel's clock.
	Time time.Time
	// Ready is true when the Channel is not stopping, its store answered and an access token could
	// be had: ReadinessHandler answers 200 then, 503 otherwise.
	Ready bool
	// Stopping is true once Shutdown has begun (callbacks are refused with 503).
	Stopping bool
	// Store is the check of the stores: one read of a cursor (cursor.Store.Load), which fails
	// while Redis (cursor/redis) is unreachable.
	Store HealthCheck
	// Token is the check of the access token: from memory while it is fresh, else from the
	// token store or gettoken (doc 91039).
	Token HealthCheck
	// Accounts are the accounts this process has been called for or pulled, by open_kfid.
	Accounts []AccountHealth
	// QueueDepth is the number of messages waiting for a worker (waiting for a retry included).
	QueueDepth int
	// InFlight is the number of messages queued, running or waiting for a retry.
	InFlight int
	// QueuedBytes is the estimated memory of the messages held in queues (see WithQueueBytes).
	QueuedBytes int64
	// DeadLetters is the number of messages given up since the Channel started (see OnDeadLetter).
	DeadLetters int64
}

// HealthCheck is the result of one check of a HealthReport.
type HealthCheck struct {
	OK       bool
	Duration time.Duration // how long the check took
	Err      error         // why it failed (secrets redacted)
}

// AccountHealth is the state of one account in a HealthReport.
type AccountHealth struct {
	OpenKfID string
	// LastPull is when this process last pulled and queued a sync_msg page of the account (the
	// Channel's clock); zero if it has not since it started. An account that gets no messages
	// is pulled only on callbacks (and WithPollInterval).
	LastPull time.Time
	// LastPullAge is HealthReport.Time minus LastPull (0 when LastPull is zero).
	LastPullAge time.Duration
	// LeaseHeld is true while this process holds the account's lease (it pulls and answers it).
	LeaseHeld bool
	// Pulling is true while the account's sync loop runs: pulling, or finishing its messages.
	Pulling bool
}

// Health checks the Channel's store (one cheap read) and its access token, concurrently and
// each within HealthCheckTimeout (or ctx's deadline, if sooner), and reports them with the state
// of the accounts and queues. It never fails: a failed check is in the report.
func (ch *Channel) Health(ctx context.Context) HealthReport {
	rep := HealthReport{Time: ch.now(), Stopping: ch.stopping.Load()}
	var wg sync.WaitGroup
	wg.Go(func() {
		rep.Store = runCheck(ctx, func(ctx context.Context) error {
			_, err := ch.stores.Load(ctx, healthProbeKey)
			return err
		})
	})
	wg.Go(func() {
		rep.Token = runCheck(ctx, func(ctx context.Context) error {
			_, err := ch.client.AccessToken(ctx)
			return err
		})
	})
	for _, a := range ch.accountList() {
		ah := AccountHealth{OpenKfID: a.id, LeaseHeld: a.obs.held.Load()}
		if n := a.obs.lastPull.Load(); n != 0 {
			ah.LastPull = time.Unix(0, n)
			ah.LastPullAge = max(rep.Time.Sub(ah.LastPull), 0)
		}
		a.mu.Lock()
		ah.Pulling = a.active
		a.mu.Unlock()
		rep.Accounts = append(rep.Accounts, ah)
	}
	slices.SortFunc(rep.Accounts, func(x, y AccountHealth) int { return strings.Compare(x.OpenKfID, y.OpenKfID) })
	rep.QueueDepth = ch.disp.queued()
	rep.InFlight = int(ch.stats.inflight.Load())
	rep.QueuedBytes, _ = ch.disp.usage()
	rep.DeadLetters = ch.stats.deadLetters.Load()
	wg.Wait()
	rep.Ready = !rep.Stopping && rep.Store.OK && rep.Token.OK
	return rep
}

func runCheck(ctx context.Context, check func(context.Context) error) HealthCheck {
	cctx, cancel := context.WithTimeout(ctx, HealthCheckTimeout)
	defer cancel()
	start := time.Now()
	err := check(cctx)
	return HealthCheck{OK: err == nil, Duration: time.Since(start), Err: err}
}

// LivenessHandler is an http.Handler for a liveness probe (/healthz): 200 "ok" while the Channel
// runs, 503 once Shutdown has finished. It checks nothing outside the process, so an outage of
// Redis or WeCom never gets a working process restarted: that is readiness's concern.
//
//	mux.Handle("GET /healthz", ch.LivenessHandler())
//	mux.Handle("GET /readyz", ch.ReadinessHandler())
func (ch *Channel) LivenessHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowProbe(w, r) {
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if ch.workCtx.Err() != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("stopped\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
}

// ReadinessHandler is an http.Handler for a readiness probe (/readyz): it runs Health and
// answers 200 when the report is Ready, 503 when the store is unreachable, no access token can
// be had or the Channel is stopping, with the report as JSON either way (see
// HealthReport.MarshalJSON). The report names the accounts and the checks' errors: mount it
// where only the orchestrator and operators reach it.
func (ch *Channel) ReadinessHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowProbe(w, r) {
			return
		}
		rep := ch.Health(r.Context())
		body, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			http.Error(w, "health report: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !rep.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = w.Write(append(body, '\n'))
	})
}

func allowProbe(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

// MarshalJSON encodes the report for people and probes: {"status": "ready" | "unready" |
// "stopping", "time", "store" and "token" ({"ok", "duration_ms", "error"}), "accounts"
// ([{"open_kfid", "last_pull", "last_pull_age_s", "lease_held", "pulling"}]), "queue_depth",
// "in_flight", "queued_bytes", "dead_letters"}.
func (h HealthReport) MarshalJSON() ([]byte, error) {
	type check struct {
		OK         bool    `json:"ok"`
		DurationMS float64 `json:"duration_ms"`
		Error      string  `json:"error,omitempty"`
	}
	type acct struct {
		OpenKfID    string    `json:"open_kfid"`
		LastPull    time.Time `json:"last_pull,omitzero"`
		LastPullAge *float64  `json:"last_pull_age_s,omitempty"`
		LeaseHeld   bool      `json:"lease_held"`
		Pulling     bool      `json:"pulling"`
	}
	conv := func(c HealthCheck) check {
		out := check{OK: c.OK, DurationMS: float64(c.Duration.Microseconds()) / 1000}
		if c.Err != nil {
			out.Error = redact(c.Err.Error())
		}
		return out
	}
	status := "ready"
	switch {
	case h.Stopping:
		status = "stopping"
	case !h.Ready:
		status = "unready"
	}
	accts := make([]acct, 0, len(h.Accounts))
	for _, a := range h.Accounts {
		v := acct{OpenKfID: a.OpenKfID, LastPull: a.LastPull, LeaseHeld: a.LeaseHeld, Pulling: a.Pulling}
		if !a.LastPull.IsZero() {
			age := a.LastPullAge.Seconds()
			v.LastPullAge = &age
		}
		accts = append(accts, v)
	}
	return json.Marshal(struct {
		Status      string    `json:"status"`
		Time        time.Time `json:"time"`
		Store       check     `json:"store"`
		Token       check     `json:"token"`
		Accounts    []acct    `json:"accounts"`
		QueueDepth  int       `json:"queue_depth"`
		InFlight    int       `json:"in_flight"`
		QueuedBytes int64     `json:"queued_bytes"`
		DeadLetters int64     `json:"dead_letters"`
	}{status, h.Time, conv(h.Store), conv(h.Token), accts, h.QueueDepth, h.InFlight, h.QueuedBytes, h.DeadLetters})
}
