package main

import (
	"context"
	"fmt"
	"log/slog"
)

// teeHandler passes log records to next and shows those at or above level in the page's live
// log, so what the SDK reports (a failed handler, a retried call, a token refresh) appears next
// to the API calls that caused it. The SDK never logs secrets; neither does the sandbox.
type teeHandler struct {
	next   slog.Handler
	hub    *hub
	level  slog.Level
	attrs  []slog.Attr
	groups string // "a.b." prefix for attributes added after WithGroup
}

func (t *teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= t.level || t.next.Enabled(ctx, l)
}

func (t *teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var err error
	if t.next.Enabled(ctx, r.Level) {
		err = t.next.Handle(ctx, r)
	}
	if r.Level < t.level {
		return err
	}
	l := logEvent{At: r.Time, Kind: "sdk", Title: r.Message, Level: levelName(r.Level)}
	add := func(prefix string, a slog.Attr) {
		a.Value = a.Value.Resolve()
		if a.Key == "user" {
			l.User = a.Value.String()
		}
		if a.Key == "err" {
			l.Err = a.Value.String()
			return
		}
		l.Tags = append(l.Tags, tag{prefix + a.Key, fmt.Sprint(a.Value.Any())})
	}
	for _, a := range t.attrs {
		add("", a)
	}
	r.Attrs(func(a slog.Attr) bool { add(t.groups, a); return true })
	t.hub.logEvent(l)
	return err
}

func (t *teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *t
	c.next = t.next.WithAttrs(as)
	c.attrs = append(append([]slog.Attr(nil), t.attrs...), prefixed(t.groups, as)...)
	return &c
}

func (t *teeHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return t
	}
	c := *t
	c.next = t.next.WithGroup(name)
	c.groups = t.groups + name + "."
	return &c
}

func prefixed(prefix string, as []slog.Attr) []slog.Attr {
	if prefix == "" {
		return as
	}
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = slog.Attr{Key: prefix + a.Key, Value: a.Value}
	}
	return out
}

func levelName(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "error"
	case l >= slog.LevelWarn:
		return "warn"
	}
	return "info"
}
