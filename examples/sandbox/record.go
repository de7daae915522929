package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/wxkf/wxkf/kf/kftest"
)

// maxLoggedJSON caps the request/response JSON one log line keeps (a sync_msg page of long texts
// can be large); a larger body is replaced by its size.
const maxLoggedJSON = 16 << 10

// recordToLog turns one kftest observation (an API call the fake received, or a callback it
// delivered) into a log line with the facts worth seeing at a glance. kftest has already redacted
// access_token, corpsecret and callback/sync tokens.
func recordToLog(r kftest.Record) logEvent {
	l := logEvent{At: r.At, Status: r.Status, ErrCode: r.ErrCode, Err: r.Err,
		MS: float64(r.Duration.Microseconds()) / 1000, Req: capJSON(r.Request), Resp: capJSON(r.Response)}
	if l.At.IsZero() {
		l.At = time.Now()
	}
	req := objectOf(r.Request)
	resp := objectOf(r.Response)
	if r.ErrCode != 0 {
		l.Err = str(resp["errmsg"])
	}
	add := func(k, v string) { l.Tags = append(l.Tags, tag{k, v}) }

	if r.Kind == kftest.RecordCallback {
		l.Kind = "callback"
		if r.Method == http.MethodGet {
			l.Title = "GET " + r.Path + " (URL verification)"
		} else {
			l.Title = "POST " + r.Path
			add("event", "kf_msg_or_event")
		}
		if r.Status != 0 {
			add("HTTP", strconv.Itoa(r.Status))
		}
		if r.Status != 0 && r.Status != http.StatusOK && l.Err == "" {
			l.Err = "answered HTTP " + strconv.Itoa(r.Status)
		}
		return l
	}

	path := strings.TrimPrefix(r.Path, "/cgi-bin/")
	l.Title = path
	switch path {
	case "gettoken":
		l.Kind = "token"
		if v, ok := resp["expires_in"]; ok {
			add("expires_in", num(v)+" s")
		}
	case "kf/sync_msg":
		l.Kind = "sync"
		if req != nil { // nil: refused before the body was read (token, busy)
			cur := str(req["cursor"])
			if cur == "" {
				cur = "(none)"
			} else {
				cur = short(cur)
			}
			add("cursor", cur)
			if str(req["token"]) != "" {
				add("token", "callback")
			} else {
				add("token", "none")
			}
		}
		if r.ErrCode == 0 && resp != nil {
			add("next", short(str(resp["next_cursor"])))
			add("has_more", num(resp["has_more"]))
			var list []kftest.SyncItem
			_ = json.Unmarshal(resp["msg_list"], &list)
			msgs := strconv.Itoa(len(list))
			if s := msgTypes(list); s != "" {
				msgs += " · " + s
			}
			add("msgs", msgs)
		}
	case "kf/send_msg", "kf/send_msg_on_event":
		l.Kind = "send"
		if u := str(req["touser"]); u != "" {
			add("to", u)
			l.User = u
		}
		if req == nil {
			break
		}
		if path == "kf/send_msg_on_event" {
			add("code", short(str(req["code"])))
		}
		add("msgtype", str(req["msgtype"]))
		if id := str(req["msgid"]); id != "" {
			add("msgid", id)
		}
		if str(req["msgtype"]) == "text" {
			var t kftest.TextBody
			_ = json.Unmarshal(req["text"], &t)
			add("bytes", strconv.Itoa(len(t.Content)))
		}
	case "kf/service_state/get", "kf/service_state/trans":
		l.Kind = "state"
		l.User = str(req["external_userid"])
		if l.User != "" {
			add("customer", l.User)
		}
		switch {
		case path == "kf/service_state/trans" && req != nil:
			add("to_state", stateLabel(intOf(req["service_state"])))
			if sv := str(req["servicer_userid"]); sv != "" {
				add("servicer", sv)
			}
		case path == "kf/service_state/get" && r.ErrCode == 0 && resp != nil:
			add("state", stateLabel(intOf(resp["service_state"])))
		}
	case "media/upload":
		l.Kind = "media"
		if req != nil {
			add("type", str(req["type"]))
			add("size", humanBytes(intOf(req["size"])))
		}
		if id := str(resp["media_id"]); id != "" {
			add("media_id", short(id))
		}
	case "media/get":
		l.Kind = "media"
		if id := queryValue(r.Query, "media_id"); id != "" {
			add("media_id", short(id))
		}
		if ct := str(resp["content_type"]); ct != "" {
			add("type", ct)
			add("size", humanBytes(intOf(resp["size"])))
		}
	default:
		l.Kind = "api"
	}
	return l
}

func queryValue(q, key string) string {
	for _, kv := range strings.Split(q, "&") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

func capJSON(b json.RawMessage) json.RawMessage {
	if len(b) <= maxLoggedJSON {
		return b
	}
	out, _ := json.Marshal(map[string]any{"(omitted)": fmt.Sprintf("%d bytes of JSON", len(b))})
	return out
}

func objectOf(b json.RawMessage) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if len(b) == 0 || json.Unmarshal(b, &m) != nil {
		return nil
	}
	return m
}

func str(b json.RawMessage) string {
	var s string
	if json.Unmarshal(b, &s) != nil {
		return ""
	}
	return s
}

func num(b json.RawMessage) string {
	var n json.Number
	if json.Unmarshal(b, &n) != nil {
		return ""
	}
	return n.String()
}

func intOf(b json.RawMessage) int {
	var n int
	if json.Unmarshal(b, &n) != nil {
		return 0
	}
	return n
}

// msgTypes summarises a sync_msg page: "text×2, event×1" (events by event_type).
func msgTypes(list []kftest.SyncItem) string {
	counts := map[string]int{}
	for _, m := range list {
		t := m.MsgType
		if t == "event" && m.Event != nil && m.Event.EventType != "" {
			t = m.Event.EventType
		}
		counts[t]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d", k, counts[k]))
	}
	return strings.Join(parts, ", ")
}

// short abbreviates a long opaque id (cursor, media_id, code) to its ends.
func short(s string) string {
	if len(s) <= 12 {
		return s
	}
	return s[:4] + "…" + s[len(s)-4:]
}

func humanBytes(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// stateLabel names a service_state (§7).
func stateLabel(s int) string {
	return strconv.Itoa(s) + " " + stateName(s)
}

func stateName(s int) string {
	switch s {
	case kftest.StateNew:
		return "new"
	case kftest.StateAssist:
		return "bot"
	case kftest.StateQueued:
		return "queued"
	case kftest.StateServicer:
		return "human"
	case kftest.StateEnded:
		return "ended"
	}
	return "unknown"
}

// menuOf renders a sent msgmenu for the page.
func menuOf(m *kftest.MenuBody) *menuView {
	if m == nil {
		return nil
	}
	mv := &menuView{Head: m.HeadContent, Tail: m.TailContent, Items: []menuItemView{}}
	for _, it := range m.List {
		v := menuItemView{Type: it.Type}
		switch {
		case it.Click != nil:
			v.ID, v.Content = it.Click.ID, it.Click.Content
		case it.View != nil:
			v.URL, v.Content = it.View.URL, it.View.Content
		case it.MiniProgram != nil:
			v.Content = it.MiniProgram.Content
		case it.Text != nil:
			v.Content = it.Text.Content
		}
		mv.Items = append(mv.Items, v)
	}
	return mv
}

// locationText renders a sent location as text.
func locationText(l *kftest.LocationBody) string {
	if l == nil {
		return ""
	}
	return fmt.Sprintf("%s\n%s\n%.5f, %.5f", l.Name, l.Address, l.Latitude, l.Longitude)
}
