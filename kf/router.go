package kf

import (
	"context"
	"regexp"
	"strings"
	"sync"
)

// Router dispatches a message to the handler of the first route that matches it. Its Handle method
// is a Handler: pass it to OnMessage (and OnEvent, for event routes), nest it in another Router's
// route, or wrap it in Middleware.
//
// A customer message (origin 3) is matched, in this order, by
//  1. its menu click id (Text.MenuID: the customer clicked a msgmenu click item, OnMenu),
//  2. its text, trimmed of white space, equal to a keyword (OnKeyword),
//  3. its text matching a regular expression (OnMatch, in the order added),
//  4. its msgtype (OnMsgType).
//
// An event (origin 4) is matched by its event type (OnEvent), then its msgtype ("event"). Anything
// else (a human servicer's message, origin 5) and anything no route matches goes to the default
// handler (Default), if there is one; otherwise the message is done without a reply.
//
// With WithBurstWindow, a burst is routed by its last message (m; m.Burst holds them all): a menu
// click followed within the window by a text goes to the text's route. A route that must see every
// message of a burst looks at m.Burst itself.
//
// Registering a route again replaces it. A nil handler is a route that matches and answers
// nothing (the message is done), like OnMessage(nil). Routes may be added while the Router is in
// use; a Router is safe for concurrent use.
type Router struct {
	mu       sync.RWMutex
	menus    map[string]Handler
	keywords map[string]Handler
	patterns []patternRoute
	types    map[MsgType]Handler
	events   map[EventType]Handler
	def      Handler
	mw       []Middleware
}

type patternRoute struct {
	re *regexp.Regexp
	h  Handler
}

// NewRouter returns a Router with no routes.
func NewRouter() *Router {
	return &Router{menus: map[string]Handler{}, keywords: map[string]Handler{}, types: map[MsgType]Handler{},
		events: map[EventType]Handler{}}
}

// nopHandler is the handler of a route registered with a nil Handler.
func nopHandler(context.Context, *Message, Replier) error { return nil }

func orNoop(h Handler) Handler {
	if h == nil {
		return nopHandler
	}
	return h
}

// OnMenu routes the text a customer sends by clicking a msgmenu click item whose id is id
// (MenuClick, or a MenuBuilder's Click).
func (rt *Router) OnMenu(id string, h Handler) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.menus[id] = orNoop(h)
}

// OnKeyword routes a customer text that, trimmed of white space, equals word exactly.
func (rt *Router) OnKeyword(word string, h Handler) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.keywords[strings.TrimSpace(word)] = orNoop(h)
}

// OnMatch routes a customer text that re matches (re.MatchString on the whole content). Patterns
// are tried in the order added; a nil re is ignored.
func (rt *Router) OnMatch(re *regexp.Regexp, h Handler) {
	if re == nil {
		return
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.patterns = append(rt.patterns, patternRoute{re, orNoop(h)})
}

// OnMsgType routes customer messages of msgtype t (image, voice, location, …; text that no menu,
// keyword or pattern route took).
func (rt *Router) OnMsgType(t MsgType, h Handler) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.types[t] = orNoop(h)
}

// OnEvent routes events of type t (enter_session, session_status_change, msg_send_fail, …). The
// Channel calls a Router with events only when it is OnEvent's handler too.
func (rt *Router) OnEvent(t EventType, h Handler) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.events[t] = orNoop(h)
}

// Default sets the handler of messages no route matches.
func (rt *Router) Default(h Handler) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.def = orNoop(h)
}

// Use adds middleware around every route's handler (the default's included), the first given
// outermost, as Channel.Use does.
func (rt *Router) Use(mw ...Middleware) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, m := range mw {
		if m != nil {
			rt.mw = append(rt.mw, m)
		}
	}
}

// Handle dispatches m to its route's handler, wrapped in the Router's middleware. It is the
// Router as a Handler.
func (rt *Router) Handle(ctx context.Context, m *Message, r Replier) error {
	rt.mu.RLock()
	h := rt.route(m)
	mw := rt.mw
	rt.mu.RUnlock()
	if h == nil {
		return nil
	}
	return Chain(h, mw...)(ctx, m, r)
}

// route finds m's handler (nil: none). rt.mu held.
func (rt *Router) route(m *Message) Handler {
	switch {
	case m.Event != nil:
		if h := rt.events[m.Event.EventType]; h != nil {
			return h
		}
		if h := rt.types[m.MsgType]; h != nil {
			return h
		}
	case m.Origin == OriginCustomer:
		if h := rt.textRoute(m.Text); h != nil {
			return h
		}
		if h := rt.types[m.MsgType]; h != nil {
			return h
		}
	}
	return rt.def
}

// textRoute matches a customer text by menu id, keyword and pattern. rt.mu held.
func (rt *Router) textRoute(t *Text) Handler {
	if t == nil {
		return nil
	}
	if t.MenuID != "" {
		if h := rt.menus[t.MenuID]; h != nil {
			return h
		}
	}
	if h := rt.keywords[strings.TrimSpace(t.Content)]; h != nil {
		return h
	}
	for _, p := range rt.patterns {
		if p.re.MatchString(t.Content) {
			return p.h
		}
	}
	return nil
}
