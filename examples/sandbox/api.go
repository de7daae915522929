package main

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wxkf/wxkf/kf/kftest"
	"github.com/wxkf/wxkf/media"
)

//go:embed web
var webFS embed.FS

// Request limits of the page's API.
const (
	maxJSONBody   = 64 << 10
	maxTextBytes  = 16 << 10        // what a customer may type in one message
	maxUpload     = 20<<20 + 64<<10 // the largest WeCom media (a 20 MB file) plus multipart overhead
	stormCopies   = 20
	faultRate     = 0.3
	stormSettle   = 400 * time.Millisecond
	faultDeadline = 10 * time.Second
)

// validUser is what the page accepts as a customer's external_userid.
var validUser = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,32}$`)

// routes is the sandbox's one mux: the Channel's callback URL, the page and its API.
func (sb *sandbox) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/wxkf/", sb.ch)
	mux.Handle("/wxkf", sb.ch)

	mux.HandleFunc("GET /api/events", sb.serveEvents)
	mux.HandleFunc("GET /api/state", sb.serveState)
	mux.HandleFunc("POST /api/send", sb.serveSend)
	mux.HandleFunc("POST /api/upload", sb.serveUpload)
	mux.HandleFunc("POST /api/voice", sb.serveSampleVoice)
	mux.HandleFunc("POST /api/enter", sb.serveEnter)
	mux.HandleFunc("POST /api/fault", sb.serveFault)
	mux.HandleFunc("GET /api/media/{id}", sb.serveMedia)

	static, _ := fs.Sub(webFS, "web")
	files := http.FileServerFS(static)
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}))
	return secureHeaders(sameOrigin(mux))
}

// secureHeaders: the page loads nothing from elsewhere (no CDN), so the policy can be strict.
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "+
			"style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// sameOrigin refuses state-changing API calls from other origins: the sandbox listens on
// loopback, and a web page elsewhere must not be able to drive it.
func sameOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api/") {
			if o := r.Header.Get("Origin"); o != "" {
				u, err := url.Parse(o)
				if err != nil || u.Host != r.Host {
					http.Error(w, "cross-origin request refused", http.StatusForbidden)
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// serveEvents is the page's live feed (Server-Sent Events): a snapshot first, then every chat
// bubble, log line and state change as it happens.
func (sb *sandbox) serveEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	first, sub := sb.hub.subscribe()
	defer sb.hub.unsubscribe(sub)
	if first == nil {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if _, err := io.WriteString(w, "retry: 1000\n\n"); err != nil || !write(first) {
		return
	}
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case b := <-sub.ch:
			if !write(b) {
				return
			}
		case <-keepalive.C:
			_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case <-sub.gone:
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (sb *sandbox) serveState(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, sb.snapshotState())
}

type sendRequest struct {
	User   string `json:"user"`
	Text   string `json:"text"`
	MenuID string `json:"menu_id"` // set when the customer clicked a msgmenu item
}

// serveSend: the customer sends a text (or clicks a menu item). The message is stored in the
// fake WeCom, which pushes a signed callback to the Channel; the bot's reply comes back through
// sync_msg and send_msg like in production.
func (sb *sandbox) serveSend(w http.ResponseWriter, r *http.Request) {
	var req sendRequest
	if !readJSON(w, r, &req) {
		return
	}
	text := strings.TrimRight(req.Text, " \t\r\n")
	switch {
	case !sb.checkUser(w, req.User):
		return
	case text == "":
		httpError(w, http.StatusBadRequest, "empty message")
		return
	case len(text) > maxTextBytes || !utf8.ValidString(text):
		httpError(w, http.StatusBadRequest, fmt.Sprintf("a message is at most %d bytes of UTF-8", maxTextBytes))
		return
	case len(req.MenuID) > 128:
		httpError(w, http.StatusBadRequest, "menu_id too long")
		return
	}
	id := newMsgID()
	sb.hub.chatEvent(chatEvent{User: req.User, Dir: "in", Kind: "text", Text: text, MsgID: id})
	body := map[string]string{"content": text}
	if req.MenuID != "" {
		body["menu_id"] = req.MenuID
	}
	sb.srv.AddMessage(kftest.Message{MsgID: id, ExternalUserID: req.User, MsgType: "text", Body: body})
	writeJSON(w, http.StatusOK, map[string]string{"msgid": id})
}

// serveUpload: the customer sends a picked file. Its kind follows what it is: JPEG/PNG/GIF/WebP/
// BMP images as image, AMR-NB as voice, MP4 as video, anything else as file.
func (sb *sandbox) serveUpload(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxUpload)
	mr, err := r.MultipartReader()
	if err != nil {
		httpError(w, http.StatusBadRequest, "want multipart/form-data")
		return
	}
	var user, filename string
	var data []byte
	for range 8 {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			httpError(w, http.StatusBadRequest, "bad multipart body (at most 20 MB)")
			return
		}
		switch p.FormName() {
		case "user":
			b, _ := io.ReadAll(io.LimitReader(p, 64))
			user = string(b)
		case "file":
			filename = path.Base(strings.ReplaceAll(p.FileName(), `\`, "/"))
			data, err = io.ReadAll(p)
			if err != nil {
				httpError(w, http.StatusRequestEntityTooLarge, "file too large (WeCom takes at most 20 MB)")
				return
			}
		}
		_ = p.Close()
	}
	if !sb.checkUser(w, user) {
		return
	}
	if len(data) < media.MinMediaBytes {
		httpError(w, http.StatusBadRequest, "no file, or an empty one (WeCom media is more than 5 bytes)")
		return
	}
	if filename == "" || filename == "." || filename == "/" {
		filename = "file"
	}
	kind := mediaKindOf(data)
	id := sb.addCustomerMedia(user, kind, filename, data)
	writeJSON(w, http.StatusOK, map[string]string{"msgid": id, "kind": kind})
}

// mediaKindOf decides how a picked file is sent (§4 message types).
func mediaKindOf(data []byte) string {
	switch {
	case media.DetectImageFormat(data) != "":
		return "image"
	case media.DetectAudio(data) == media.AudioAMR:
		return "voice"
	case media.IsMP4(data):
		return "video"
	}
	return "file"
}

// addCustomerMedia stores data in the fake WeCom (as a customer's upload) and adds the message.
func (sb *sandbox) addCustomerMedia(user, kind, filename string, data []byte) string {
	mediaID := sb.srv.PutMedia(kind, filename, data)
	id := newMsgID()
	c := chatEvent{User: user, Dir: "in", Kind: kind, MsgID: id}
	sb.describeMedia(&c, mediaID)
	sb.hub.chatEvent(c)
	sb.srv.AddMessage(kftest.Message{MsgID: id, ExternalUserID: user, MsgType: kind, Body: map[string]string{"media_id": mediaID}})
	return id
}

// serveSampleVoice: the customer sends the embedded voice sample (a browser cannot record AMR-NB).
func (sb *sandbox) serveSampleVoice(w http.ResponseWriter, r *http.Request) {
	var req struct {
		User string `json:"user"`
	}
	if !readJSON(w, r, &req) || !sb.checkUser(w, req.User) {
		return
	}
	id := sb.addCustomerMedia(req.User, "voice", "voice.amr", sampleVoice)
	writeJSON(w, http.StatusOK, map[string]string{"msgid": id})
}

// serveEnter: the customer opens the chat (enter_session, §5). WeCom gives a welcome_code only when
// the customer got no welcome and did not write in the last 48 h; the bot answers it with
// send_msg_on_event.
func (sb *sandbox) serveEnter(w http.ResponseWriter, r *http.Request) {
	var req struct {
		User string `json:"user"`
	}
	if !readJSON(w, r, &req) || !sb.checkUser(w, req.User) {
		return
	}
	sb.hub.chatEvent(chatEvent{User: req.User, Dir: "note", Kind: "note", Tone: "info",
		Text: req.User + " opened the chat (enter_session, scene " + defaultScene + ")"})
	code := sb.srv.EnterSession(req.User, defaultScene, "")
	if code == "" {
		sb.hub.chatEvent(chatEvent{User: req.User, Dir: "note", Kind: "note", Tone: "warn",
			Text: "no welcome_code: WeCom gives one only when the customer got no welcome and sent nothing in the last 48 h"})
	}
	writeJSON(w, http.StatusOK, map[string]bool{"welcome_code": code != ""})
}

// serveFault injects WeCom misbehaviour or moves the session, so the SDK's handling can be watched.
func (sb *sandbox) serveFault(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Action string `json:"action"`
		User   string `json:"user"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), faultDeadline)
	defer cancel()
	detail, err := sb.fault(ctx, req.Action, req.User)
	switch {
	case errors.Is(err, errBadRequest):
		httpError(w, http.StatusBadRequest, err.Error())
	case err != nil:
		httpError(w, http.StatusInternalServerError, err.Error())
	default:
		writeJSON(w, http.StatusOK, map[string]string{"detail": detail})
	}
}

var errBadRequest = errors.New("bad request")

func (sb *sandbox) fault(ctx context.Context, action, user string) (string, error) {
	kfID := sb.srv.OpenKfID()
	needUser := func() error {
		if !validUser.MatchString(user) {
			return fmt.Errorf("%w: invalid customer name", errBadRequest)
		}
		if !sb.touch(user) {
			return fmt.Errorf("%w: too many customers", errBadRequest)
		}
		return nil
	}
	var detail string
	switch action {
	case "storm":
		before := sb.ch.Stats()
		err := sb.srv.Storm(ctx, sb.cbURL, kfID, stormCopies)
		sb.settle(ctx)
		after := sb.ch.Stats()
		detail = fmt.Sprintf("%d identical callbacks (WeCom's retries and parallel pushes) → %d accepted, %d coalesced, %d sync_msg pulls",
			stormCopies, after.Callbacks-before.Callbacks, after.Coalesced-before.Coalesced, after.Pulls-before.Pulls)
		if err != nil {
			detail += "; some deliveries failed: " + err.Error()
		}
	case "expire_token":
		sb.srv.ExpireTokens()
		detail = "every access_token expired: the next call gets 42001, the client fetches a new token once and retries"
	case "busy_on", "busy_off":
		sb.setFaults(func(f *faultsView) { f.Busy = action == "busy_on" })
		detail = "API busy off"
		if action == "busy_on" {
			detail = "30% of API calls now answer -1 (system busy): the client retries them with backoff; sends keep their client msgid"
		}
	case "drop_on", "drop_off":
		sb.setFaults(func(f *faultsView) { f.Drop = action == "drop_on" })
		detail = "lost answers off"
		if action == "drop_on" {
			detail = "30% of API calls now take effect but lose their answer (the connection drops): a send is retried with the same client msgid, " +
				"WeCom refuses the duplicate, and the customer gets it once (see the dup counter)"
		}
	case "human":
		if err := needUser(); err != nil {
			return "", err
		}
		sb.srv.SetServiceState(kfID, user, kftest.StateServicer, servicerID)
		sb.srv.AddEvent("session_status_change", map[string]any{"external_userid": user, "change_type": 2,
			"old_servicer_userid": "", "new_servicer_userid": servicerID})
		sb.servicerJoins(user, "transferred in WeCom (session_status_change)")
		detail = "session of " + user + " → state 3, servicer " + servicerID
	case "bot":
		if err := needUser(); err != nil {
			return "", err
		}
		sb.srv.SetServiceState(kfID, user, kftest.StateAssist, "")
		sb.srv.AddEvent("session_status_change", map[string]any{"external_userid": user, "change_type": 2,
			"old_servicer_userid": servicerID, "new_servicer_userid": ""})
		sb.hub.chatEvent(chatEvent{User: user, Dir: "note", Kind: "note", Tone: "info",
			Text: "session back with the bot (state 1)"})
		detail = "session of " + user + " → state 1 (bot). WeCom itself only ends a human session (3→4); the sandbox sets 1 so you can go on"
	default:
		return "", fmt.Errorf("%w: unknown action %q", errBadRequest, action)
	}
	sb.hub.logEvent(logEvent{Kind: "fault", Title: action, Tags: []tag{{"what", detail}}, User: user})
	sb.hub.setState(sb.snapshotState())
	return detail, nil
}

// setFaults changes the fault toggles and applies them to the fake WeCom.
func (sb *sandbox) setFaults(change func(*faultsView)) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	change(&sb.faults)
	var f kftest.Faults
	if sb.faults.Busy {
		f.BusyRate = faultRate
	}
	if sb.faults.Drop {
		f.DropRate, f.DropAfterProcessing = faultRate, true
	}
	sb.srv.SetFaults(f)
}

// settle waits until the Channel has nothing in flight for a short quiet period (or ctx ends).
func (sb *sandbox) settle(ctx context.Context) {
	quietSince := time.Now()
	last := sb.ch.Stats()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s := sb.ch.Stats()
		if s.InFlight != 0 || s.QueueDepth != 0 || s.Pulls != last.Pulls || s.Callbacks != last.Callbacks {
			quietSince, last = time.Now(), s
			continue
		}
		if time.Since(quietSince) >= stormSettle {
			return
		}
	}
}

// serveMedia serves what the fake WeCom stores under a media_id, so the page can show images,
// play video and voice, and download files. ?play=wav decodes a voice (AMR-NB) with ffmpeg when it
// is installed: browsers cannot play AMR.
func (sb *sandbox) serveMedia(w http.ResponseWriter, r *http.Request) {
	data, ctype, filename, ok := sb.srv.Media(r.PathValue("id"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.URL.Query().Get("play") == "wav" {
		if sb.ffmpeg == nil || media.DetectAudio(data) != media.AudioAMR {
			httpError(w, http.StatusNotImplemented, "cannot play this voice here (ffmpeg missing); download it instead")
			return
		}
		pcm, err := sb.ffmpeg.Decode(r.Context(), data)
		if err != nil {
			httpError(w, http.StatusUnprocessableEntity, "decoding the voice failed")
			return
		}
		w.Header().Set("Content-Type", "audio/wav")
		http.ServeContent(w, r, "voice.wav", time.Time{}, bytes.NewReader(media.EncodeWAV(pcm, 8000)))
		return
	}
	disposition := "attachment"
	switch ctype {
	case "image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "video/mp4":
		disposition = "inline"
	default:
		// Anything else is downloaded and never rendered on this origin.
		w.Header().Set("Content-Security-Policy", "sandbox")
	}
	if v := mime.FormatMediaType(disposition, map[string]string{"filename": filename}); v != "" {
		w.Header().Set("Content-Disposition", v)
	} else {
		w.Header().Set("Content-Disposition", disposition)
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "private, max-age=3600")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

func (sb *sandbox) checkUser(w http.ResponseWriter, user string) bool {
	if !validUser.MatchString(user) {
		httpError(w, http.StatusBadRequest, "customer name: 1–32 letters, digits or _ . @ -")
		return false
	}
	if !sb.touch(user) {
		httpError(w, http.StatusTooManyRequests, fmt.Sprintf("at most %d customers", maxCustomers))
		return false
	}
	return true
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		httpError(w, http.StatusUnsupportedMediaType, "want application/json")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		httpError(w, http.StatusBadRequest, "bad JSON body")
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
