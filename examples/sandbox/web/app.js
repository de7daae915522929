// wxkf sandbox page: plain JS, no framework, no network beyond this server.
(() => {
  "use strict";

  const $ = (sel) => document.querySelector(sel);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  };

  const MAX_LOG_LINES = 700;
  const STATE_NAMES = { 0: "new", 1: "bot", 2: "queued", 3: "human", 4: "ended" };

  const ui = {
    user: $("#user"), users: $("#users"), chat: $("#chat"), text: $("#text"), composer: $("#composer"),
    log: $("#log"), mode: $("#mode"), conn: $("#conn span"), phoneSub: $("#phone-sub"), stateChip: $("#state-chip"),
    sessUser: $("#sess-user"), sessWindow: $("#sess-window"), sessState: $("#sess-state"), sessServicer: $("#sess-servicer"),
    quota: $("#quota"), quotaN: $("#quota-n"), errors: $("#errors-by-code"), busy: $("#busy"), drop: $("#drop"),
    mP50: $("#m-p50"), mP99: $("#m-p99"), mRuns: $("#m-runs"), mLag: $("#m-lag"), mSends: $("#m-sends"),
    faultDetail: $("#fault-detail"), toast: $("#toast"), onlyUser: $("#only-user"),
  };

  const store = {
    chat: [],            // chat events, all customers
    parts: new Map(),    // client msgid → [part, parts]
    state: null,
    info: null,
    typing: new Map(),   // user → typing event
    filter: "all",
    lastTime: new Map(), // user → last rendered time (for time bars)
  };

  // ---------- customer ----------
  const savedUser = localStorage.getItem("wxkf-sandbox-user");
  if (savedUser && /^[A-Za-z0-9_.@-]{1,32}$/.test(savedUser)) ui.user.value = savedUser;
  const user = () => ui.user.value.trim();
  ui.user.addEventListener("change", () => {
    if (!/^[A-Za-z0-9_.@-]{1,32}$/.test(user())) {
      toast("Customer name: 1–32 letters, digits or _ . @ -", true);
      return;
    }
    localStorage.setItem("wxkf-sandbox-user", user());
    renderChat();
    renderState();
    renderLogFilter();
  });

  // ---------- API ----------
  async function post(path, body) {
    const res = await fetch(path, {
      method: "POST",
      headers: body instanceof FormData ? {} : { "Content-Type": "application/json" },
      body: body instanceof FormData ? body : JSON.stringify(body),
    });
    let data = {};
    try { data = await res.json(); } catch (_) { /* empty */ }
    if (!res.ok) throw new Error(data.error || res.statusText);
    return data;
  }

  function toast(msg, bad) {
    ui.toast.textContent = msg;
    ui.toast.className = "toast" + (bad ? " bad" : "");
    ui.toast.hidden = false;
    clearTimeout(toast.t);
    toast.t = setTimeout(() => { ui.toast.hidden = true; }, bad ? 5000 : 3200);
  }

  async function sendText(text, menuID) {
    if (!text) return;
    try {
      await post("/api/send", menuID ? { user: user(), text, menu_id: menuID } : { user: user(), text });
    } catch (e) { toast(e.message, true); }
  }

  ui.composer.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = ui.text.value;
    if (!t.trim()) return;
    ui.text.value = "";
    sendText(t);
  });
  $("#chips").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-cmd]");
    if (b) sendText(b.dataset.cmd);
  });
  $("#enter").addEventListener("click", async () => {
    try { await post("/api/enter", { user: user() }); } catch (e) { toast(e.message, true); }
  });
  $("#send-voice").addEventListener("click", async () => {
    try { await post("/api/voice", { user: user() }); } catch (e) { toast(e.message, true); }
  });

  async function upload(file) {
    if (!file) return;
    const fd = new FormData();
    fd.append("user", user());
    fd.append("file", file, file.name);
    try { await post("/api/upload", fd); } catch (e) { toast(e.message, true); }
  }
  const imageInput = $("#image-input"), fileInput = $("#file-input");
  $("#pick-image").addEventListener("click", () => imageInput.click());
  $("#pick-file").addEventListener("click", () => fileInput.click());
  for (const input of [imageInput, fileInput]) {
    input.addEventListener("change", () => {
      const f = input.files && input.files[0];
      input.value = "";
      upload(f);
    });
  }
  const phone = $(".phone");
  phone.addEventListener("dragover", (ev) => { ev.preventDefault(); });
  phone.addEventListener("drop", (ev) => {
    ev.preventDefault();
    const f = ev.dataTransfer.files && ev.dataTransfer.files[0];
    upload(f);
  });

  // ---------- faults ----------
  document.querySelectorAll("[data-fault]").forEach((b) => {
    b.addEventListener("click", async () => {
      const action = b.dataset.fault;
      b.disabled = true;
      try {
        const r = await post("/api/fault", { action, user: user() });
        ui.faultDetail.textContent = r.detail;
      } catch (e) { toast(e.message, true); }
      b.disabled = false;
    });
  });

  // ---------- chat rendering ----------
  const pad = (n, w) => String(n).padStart(w || 2, "0");
  function fmtTime(d) { return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()); }
  function fmtClock(d) { return pad(d.getHours()) + ":" + pad(d.getMinutes()); }
  function fmtBytes(n) {
    if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + " MB";
    if (n >= 1 << 10) return (n / (1 << 10)).toFixed(1) + " KB";
    return n + " B";
  }
  const mediaURL = (id) => "/api/media/" + encodeURIComponent(id);

  function nearBottom(box) { return box.scrollHeight - box.scrollTop - box.clientHeight < 80; }
  function scrollDown(box, force) { if (force || nearBottom(box)) box.scrollTop = box.scrollHeight; }

  function renderChat() {
    ui.chat.replaceChildren();
    store.lastTime.clear();
    const u = user();
    let any = false;
    for (const c of store.chat) {
      if (c.user !== u) continue;
      appendChat(c, false);
      any = true;
    }
    if (!any) ui.chat.append(emptyHint());
    const t = store.typing.get(u);
    if (t && !t.done) showTyping(t);
    ui.phoneSub.textContent = "WeChat customer service · " + u;
    ui.chat.scrollTop = ui.chat.scrollHeight;
  }
  function emptyHint() {
    const d = el("div", "empty");
    d.id = "chat-empty";
    const p1 = el("p"); p1.append(el("strong", null, "You are the WeChat customer."));
    const p2 = el("p", null, "Open the chat to get the welcome menu, then type anything, send a picture, or try the commands below.");
    d.append(p1, p2);
    return d;
  }

  function appendChat(c, live) {
    const empty = ui.chat.querySelector(".empty");
    if (empty) empty.remove();
    const stick = !live || nearBottom(ui.chat);
    const at = new Date(c.at);
    const last = store.lastTime.get(c.user);
    if (!last || at - last > 3 * 60 * 1000) {
      ui.chat.append(el("div", "timebar", fmtClock(at)));
    }
    store.lastTime.set(c.user, at);
    const typing = ui.chat.querySelector(".msg.typing");
    const node = c.dir === "note" ? noteNode(c) : bubbleNode(c);
    if (typing) ui.chat.insertBefore(node, typing); else ui.chat.append(node);
    if (stick) scrollDown(ui.chat, true);
  }

  function noteNode(c) {
    return el("div", "note" + (c.tone === "warn" ? " warn" : ""), c.text);
  }

  function bubbleNode(c) {
    const from = c.dir === "in" ? "me" : (c.from || "bot");
    const row = el("div", "msg " + (c.dir === "in" ? "in" : "out") + " " + from);
    if (c.msgid) row.dataset.msgid = c.msgid;
    row.dataset.kind = c.kind;
    const av = el("div", "avatar " + from);
    av.textContent = from === "me" ? (c.user[0] || "?").toUpperCase() : from === "servicer" ? "张" : from === "welcome" ? "👋" : "kf";
    if (from === "me") av.style.background = avatarColor(c.user);
    const stack = el("div", "stack");
    if (c.dir !== "in") {
      const s = el("div", "sender");
      const label = from === "welcome" ? "welcome" : from === "servicer" ? "human · " + (c.servicer || "servicer") : "bot";
      s.append(el("span", null, label));
      const api = from === "welcome" ? "send_msg_on_event" : from === "servicer" ? "origin 5" : "send_msg";
      s.append(el("span", "tag", api));
      stack.append(s);
    }
    stack.append(contentNode(c));
    row.append(av, stack);
    const p = c.parts ? [c.part, c.parts] : store.parts.get(c.msgid);
    if (p) setPart(row, p[0], p[1]);
    return row;
  }

  function setPart(row, part, parts) {
    const sender = row.querySelector(".sender");
    if (!sender || sender.querySelector(".part")) return;
    const chip = el("span", "part", part + "/" + parts);
    chip.title = "part " + part + " of " + parts + ": the Replier split this text at 2048 bytes";
    sender.append(chip);
  }

  function contentNode(c) {
    switch (c.kind) {
      case "image": {
        const b = el("div", "bubble media");
        const img = el("img");
        img.alt = c.dir === "in" ? "picture you sent" : "picture from the bot";
        img.src = mediaURL(c.media_id);
        img.addEventListener("load", () => scrollDown(ui.chat));
        b.append(img);
        return b;
      }
      case "video": {
        const b = el("div", "bubble media");
        const v = el("video");
        v.controls = true;
        v.preload = "metadata";
        v.src = mediaURL(c.media_id);
        b.append(v);
        return b;
      }
      case "voice": return voiceNode(c);
      case "file": return fileNode(c);
      case "menu": return menuNode(c);
      default: {
        const b = el("div", "bubble", c.text || "");
        if ((c.text || "").length > 700) {
          b.classList.add("long");
          const wrap = el("div");
          const more = el("button", "more", "show all " + fmtBytes(new TextEncoder().encode(c.text).length));
          more.addEventListener("click", () => {
            b.classList.toggle("open");
            more.textContent = b.classList.contains("open") ? "show less" : "show all";
          });
          wrap.append(b, more);
          return wrap;
        }
        return b;
      }
    }
  }

  function voiceNode(c) {
    const b = el("div", "bubble");
    const v = el("div", "voice");
    const waves = el("span", "waves");
    waves.append(el("i"), el("i"), el("i"));
    const secs = Math.max(1, Math.round((c.duration_ms || 0) / 1000));
    v.append(waves, el("span", "dur", secs + "″"));
    const dl = el("a", null, "AMR ↓");
    dl.href = mediaURL(c.media_id);
    dl.download = c.filename || "voice.amr";
    dl.title = "download the AMR-NB voice (" + fmtBytes(c.size || 0) + ")";
    dl.addEventListener("click", (ev) => ev.stopPropagation());
    v.append(dl);
    if (c.playable) {
      v.title = "play (decoded from AMR-NB by ffmpeg)";
      let audio = null;
      v.addEventListener("click", () => {
        if (!audio) {
          audio = new Audio(mediaURL(c.media_id) + "?play=wav");
          audio.addEventListener("ended", () => v.classList.remove("playing"));
          audio.addEventListener("pause", () => v.classList.remove("playing"));
        }
        if (audio.paused) { audio.currentTime = 0; audio.play(); v.classList.add("playing"); } else { audio.pause(); }
      });
    } else {
      v.title = "browsers cannot play AMR-NB: download it (install ffmpeg to play it here)";
    }
    b.append(v);
    return b;
  }

  function fileNode(c) {
    const b = el("div", "bubble");
    const f = el("div", "file");
    const ext = ((c.filename || "").split(".").pop() || "file").slice(0, 4).toUpperCase();
    const icon = el("div", "ficon", ext);
    const meta = el("div");
    meta.append(el("div", "fname", c.filename || "file"), el("div", "fsize", fmtBytes(c.size || 0)));
    const dl = el("a", null, "download");
    dl.href = mediaURL(c.media_id);
    dl.download = c.filename || "file";
    f.append(icon, meta, dl);
    b.append(f);
    return b;
  }

  function menuNode(c) {
    const b = el("div", "bubble menu");
    const m = c.menu || { items: [] };
    if (m.head) b.append(el("div", "head", m.head));
    for (const it of m.items) {
      if (it.type === "click") {
        const btn = el("button", "item", it.content);
        btn.title = "click: sends a text with menu_id " + it.id;
        btn.addEventListener("click", () => sendText(it.content, it.id));
        b.append(btn);
      } else if (it.type === "view" && /^https?:/.test(it.url || "")) {
        const a = el("a", "item", it.content);
        a.href = it.url; a.target = "_blank"; a.rel = "noopener noreferrer";
        b.append(a);
      } else {
        b.append(el("div", "item text", it.content));
      }
    }
    if (m.tail) b.append(el("div", "tail", m.tail));
    return b;
  }

  function showTyping(t) {
    let row = ui.chat.querySelector(".msg.typing");
    if (t.done || !t.text) { if (row) row.remove(); return; }
    if (!row) {
      row = el("div", "msg out typing");
      const av = el("div", "avatar bot", "kf");
      const stack = el("div", "stack");
      const cap = el("div", "sender");
      const dots = el("span", "dots"); dots.append(el("i"), el("i"), el("i"));
      cap.append(dots, el("span", "caption", "streaming · not sent yet"));
      stack.append(cap, el("div", "bubble"));
      row.append(av, stack);
      ui.chat.append(row);
    }
    row.querySelector(".bubble").textContent = t.text;
    scrollDown(ui.chat);
  }

  // ---------- state ----------
  // The OpenTelemetry card: handler latency quantiles, sends by WeCom errcode, cursor lag.
  function renderMetrics(m) {
    if (!m) return;
    const ms = (v) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) + " ms";
    ui.mRuns.textContent = m.handler_runs;
    ui.mP50.textContent = m.handler_runs ? ms(m.handler_p50_ms) : "—";
    ui.mP99.textContent = m.handler_runs ? ms(m.handler_p99_ms) : "—";
    ui.mLag.textContent = m.cursor_lag_s == null ? "—" : m.cursor_lag_s + " s";
    const sends = m.sends || {};
    const keys = Object.keys(sends).sort((a, b) => (a === "ok" ? -1 : b === "ok" ? 1 : a.localeCompare(b)));
    ui.mSends.replaceChildren();
    if (!keys.length) ui.mSends.textContent = "none";
    for (const k of keys) ui.mSends.append(el("span", "code" + (k === "ok" ? " ok" : ""), k + " ×" + sends[k]));
  }

  function renderState() {
    const st = store.state;
    const u = user();
    ui.sessUser.textContent = u;
    const cs = (st && st.customers && st.customers[u]) || { quota_left: 0, service_state: 0, state_name: "new" };
    const s = cs.service_state;
    ui.sessState.className = "badge s" + s;
    ui.sessState.textContent = s + " · " + (STATE_NAMES[s] || cs.state_name);
    ui.stateChip.className = "state-chip s" + s;
    ui.stateChip.textContent = STATE_NAMES[s] || "";
    ui.sessServicer.textContent = cs.servicer || "—";
    const dots = ui.quota.querySelectorAll("i");
    dots.forEach((d, i) => d.classList.toggle("on", i < cs.quota_left));
    ui.quota.classList.toggle("low", cs.quota_left > 0 && cs.quota_left <= 2);
    ui.quotaN.textContent = cs.quota_left + " / 5";
    renderWindow();
    if (!st) return;
    for (const [k, v] of Object.entries(st.stats)) {
      document.querySelectorAll('[data-stat="' + k + '"]').forEach((n) => {
        if (n.textContent !== String(v)) n.textContent = v;
      });
    }
    const errs = st.stats.errors || {};
    ui.errors.replaceChildren();
    const codes = Object.keys(errs).sort();
    if (!codes.length) ui.errors.textContent = "none";
    for (const code of codes) ui.errors.append(el("span", "code", (code === "0" ? "local" : code) + " ×" + errs[code]));
    renderMetrics(st.metrics);
    for (const [key, btn] of [["busy", ui.busy], ["drop", ui.drop]]) {
      const on = !!(st.faults && st.faults[key]);
      btn.classList.toggle("active", on);
      btn.dataset.fault = on ? btn.dataset.off : btn.dataset.on;
      btn.textContent = btn.dataset.label + (on ? " · on" : "");
    }
    const known = Object.keys(st.customers || {}).sort();
    if (ui.users.childElementCount !== known.length) {
      ui.users.replaceChildren(...known.map((k) => { const o = el("option"); o.value = k; return o; }));
    }
  }

  // The reply window: 48 h from the customer's latest message (§6).
  function renderWindow() {
    const u = user();
    let last = null;
    for (let i = store.chat.length - 1; i >= 0; i--) {
      const c = store.chat[i];
      if (c.user === u && c.dir === "in") { last = new Date(c.at); break; }
    }
    if (!last) { ui.sessWindow.textContent = "closed · no message yet"; return; }
    const left = 48 * 3600 * 1000 - (Date.now() - last);
    if (left <= 0) { ui.sessWindow.textContent = "closed"; return; }
    const h = Math.floor(left / 3600000), m = Math.floor((left % 3600000) / 60000);
    ui.sessWindow.textContent = h + " h " + pad(m) + " m left";
  }
  setInterval(renderWindow, 20000);

  function avatarColor(name) {
    let h = 0;
    for (const ch of name) h = (h * 31 + ch.codePointAt(0)) >>> 0;
    const hue = h % 360;
    return "linear-gradient(135deg, hsl(" + hue + " 45% 52%), hsl(" + ((hue + 40) % 360) + " 50% 42%))";
  }

  // ---------- log ----------
  function flash(node) {
    const n = document.querySelector('.pipeline .node[data-node="' + node + '"]');
    if (!n) return;
    n.classList.remove("flash");
    void n.offsetWidth; // restart the animation
    n.classList.add("flash");
  }

  function logLine(l) {
    const isErr = !!(l.errcode || l.err && l.level !== "info" || l.level === "error");
    const line = el("div", "line " + l.kind + (isErr ? " is-error" : "") + (l.level === "warn" && !isErr ? " is-warn" : ""));
    line.dataset.kind = l.kind;
    line.dataset.user = l.user || "";
    if (isErr) line.dataset.error = "1";
    const top = el("div", "top");
    const t = new Date(l.at);
    top.append(el("time", null, fmtTime(t) + "." + pad(t.getMilliseconds(), 3)));
    const label = { callback: "callback", sync: "sync", send: "send", token: "token", state: "state", media: "media", api: "api", sdk: "sdk", bot: "bot", fault: "inject" }[l.kind] || l.kind;
    top.append(el("span", "kind k-" + l.kind, label));
    top.append(el("span", "title", l.title));
    if (l.errcode) top.append(el("span", "code", "errcode " + l.errcode));
    const tags = el("span", "tags");
    for (const tg of l.tags || []) {
      const s = el("span", "t" + (["has_more", "msgid", "cursor", "next", "parts", "to"].includes(tg.k) ? " hot" : "") +
        (tg.v.length > 40 ? " wrap" : ""));
      s.append(tg.k + " ", el("b", null, tg.v));
      tags.append(s);
    }
    if (l.err) tags.append(el("span", "err", l.err));
    top.append(tags);
    if (l.ms) top.append(el("span", "ms", l.ms.toFixed(1) + " ms"));
    line.append(top);
    if (l.req || l.resp) {
      line.addEventListener("click", (ev) => {
        if (ev.target.closest("pre")) return;
        const open = line.querySelector("pre");
        if (open) { line.querySelectorAll("pre").forEach((p) => p.remove()); return; }
        if (l.req) line.append(el("pre", null, "request  " + JSON.stringify(l.req, null, 2)));
        if (l.resp) line.append(el("pre", null, "response " + JSON.stringify(l.resp, null, 2)));
      });
      line.title = "click for the (redacted) request and response JSON";
    }
    applyFilter(line);
    return line;
  }

  function applyFilter(line) {
    const f = store.filter;
    let show = f === "all" || line.dataset.kind === f || (f === "bot" && line.dataset.kind === "sdk") ||
      (f === "error" && line.dataset.error === "1") || (f === "callback" && line.dataset.kind === "fault");
    if (show && ui.onlyUser.checked && line.dataset.user && line.dataset.user !== user()) show = false;
    line.hidden = !show;
  }
  function renderLogFilter() { ui.log.querySelectorAll(".line").forEach(applyFilter); }

  function appendLog(l, live) {
    const stick = nearBottom(ui.log);
    ui.log.append(logLine(l));
    while (ui.log.childElementCount > MAX_LOG_LINES) ui.log.firstElementChild.remove();
    if (stick || !live) ui.log.scrollTop = ui.log.scrollHeight;
    if (live) {
      if (l.kind === "callback") flash("callback");
      else if (l.kind === "sync") flash("sync");
      else if (l.kind === "send" && !l.errcode) flash("send");
    }
  }

  $("#filters").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-filter]");
    if (!b) return;
    store.filter = b.dataset.filter;
    document.querySelectorAll("#filters button").forEach((x) => x.classList.toggle("on", x === b));
    renderLogFilter();
  });
  ui.onlyUser.addEventListener("change", renderLogFilter);
  $("#clear-log").addEventListener("click", () => ui.log.replaceChildren());

  function countIn() {
    const n = store.chat.filter((c) => c.dir === "in").length;
    $("#in-count").textContent = n + (n === 1 ? " message" : " messages");
  }

  // ---------- event stream ----------
  function onEvent(ev) {
    switch (ev.type) {
      case "reset": {
        const r = ev.reset;
        store.info = r.info;
        store.chat = r.chat || [];
        store.parts.clear();
        store.typing.clear();
        store.state = r.state || null;
        ui.mode.textContent = r.info.mode === "llm" ? "LLM bot · " + r.info.model : "echo bot";
        ui.mode.classList.toggle("llm", r.info.mode === "llm");
        ui.log.replaceChildren();
        for (const l of r.log || []) appendLog(l, false);
        renderChat();
        renderState();
        countIn();
        document.body.dataset.connected = "true";
        ui.conn.textContent = "live";
        break;
      }
      case "chat": {
        const c = ev.chat;
        store.chat.push(c);
        if (store.chat.length > 2000) store.chat.shift();
        if (c.user === user()) { appendChat(c, true); if (c.dir === "in") renderWindow(); }
        if (c.dir === "in") { flash("customer"); countIn(); }
        break;
      }
      case "parts": {
        const ids = ev.parts.ids;
        ids.forEach((id, i) => {
          store.parts.set(id, [i + 1, ids.length]);
          const row = ui.chat.querySelector('.msg[data-msgid="' + CSS.escape(id) + '"]');
          if (row) setPart(row, i + 1, ids.length);
        });
        break;
      }
      case "log":
        appendLog(ev.log, true);
        if (ev.log.kind === "bot" && /^(OnMessage|echo|Replier|LLM)/.test(ev.log.title)) flash("bot");
        break;
      case "state": {
        const prev = store.state;
        store.state = ev.state;
        if (prev && ev.state.stats.handled > prev.stats.handled) flash("bot");
        renderState();
        break;
      }
      case "typing":
        store.typing.set(ev.typing.user, ev.typing);
        if (ev.typing.user === user()) showTyping(ev.typing);
        break;
    }
  }

  function connect() {
    const es = new EventSource("/api/events");
    es.onmessage = (m) => {
      try { onEvent(JSON.parse(m.data)); } catch (e) { console.error(e); }
    };
    es.onerror = () => {
      document.body.dataset.connected = "false";
      ui.conn.textContent = "reconnecting…";
    };
  }
  renderState();
  connect();
  ui.text.focus();
})();
