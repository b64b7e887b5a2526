// ser-daemon live view: connects to the WebSocket of the daemon that served this page and shows
// the current emotion, a strip chart of the class probabilities, voice activity, latency and a
// face driven by the mapped ARKit blendshape weights and, with --mood, the rolling valence/arousal
// trace and the last mood events.  Plain script, no build step, no CDN.
//
// For tests and curious users the current state is mirrored, read-only for the page itself, in
// `window.serView` and in data attributes on <body> (data-connected, data-label, data-voice).
(function () {
  "use strict";

  var HISTORY_S = 10;             // seconds shown in the strip chart
  var HISTORY_MAX = 2000;         // samples kept at most (bounded whatever the hop)
  var BACKOFF_MIN_MS = 500;
  var BACKOFF_MAX_MS = 10000;
  var MOOD_WINDOW_S = 120;        // seconds of stream time in the mood trace
  var MOOD_TRACE_MAX = 2000;      // mood readings kept at most (about one a second)
  var MOOD_EVENTS_MAX = 50;       // events kept; the newest MOOD_EVENTS_SHOWN are listed
  var MOOD_EVENTS_SHOWN = 8;
  var VALENCE_COLOR = "#3b6fd8", AROUSAL_COLOR = "#e6a23c";
  var EVENT_COLORS = { frustration_rising: "#e0483e", disengaging: "#e6a23c", delighted: "#1f9d55",
                       recovered: "#1f9d55" };

  var COLORS = {
    neutral: "#9aa3ad", calm: "#3fb6a8", happy: "#f2c230", angry: "#e0483e", sad: "#4a7fd4",
    fearful: "#9b6bd1", fear: "#9b6bd1", disgust: "#6c9b34", disgusted: "#6c9b34",
    surprised: "#f08a2c", surprise: "#f08a2c", relaxed: "#59c27a", contempt: "#b5651d"
  };
  var FALLBACK = ["#8e6cef", "#e86fb1", "#2fa5d6", "#c9a227", "#5aa469", "#d9663b", "#7b8794"];

  var $ = function (id) { return document.getElementById(id); };
  var el = {
    status: $("status"), label: $("label"), swatch: $("swatch"), confidence: $("confidence"),
    confBar: $("confidence-bar"), voice: $("voice"), latency: $("latency"), dropped: $("dropped"),
    model: $("model"), input: $("input"), streamName: $("stream-name"), streamSelect: $("stream-select"),
    chart: $("chart"), chartSeconds: $("chart-seconds"), legend: $("legend"), messages: $("messages"),
    mouth: $("mouth"), browL: $("brow-left"), browR: $("brow-right"), eyeL: $("eye-left"),
    eyeR: $("eye-right"), pupilL: $("pupil-left"), pupilR: $("pupil-right"),
    cheekL: $("cheek-left"), cheekR: $("cheek-right"), sneerL: $("sneer-left"), sneerR: $("sneer-right"),
    profileName: $("profile-name"), calOpen: $("cal-open"), calPanel: $("calibrate"), calForm: $("cal-form"),
    calProfile: $("cal-profile"), calReplace: $("cal-replace"), calNeutralOnly: $("cal-neutral-only"),
    calClose: $("cal-close"), calRun: $("cal-run"), calStep: $("cal-step"), calProgress: $("cal-progress"),
    calCue: $("cal-cue"), calSentence: $("cal-sentence"), calLevel: $("cal-level"), calTake: $("cal-take"),
    calRecord: $("cal-record"), calSkip: $("cal-skip"), calFinish: $("cal-finish"), calCancel: $("cal-cancel"),
    calMessage: $("cal-message"), vrchat: $("vrchat"), vrchatProblems: $("vrchat-problems"),
    moodPanel: $("mood-panel"), moodChart: $("mood-chart"), moodSeconds: $("mood-seconds"),
    moodValence: $("mood-valence"), moodArousal: $("mood-arousal"), moodTalking: $("mood-talking"),
    moodSilence: $("mood-silence"), moodEvents: $("mood-events"), moodNoEvents: $("mood-no-events")
  };

  var view = {
    connected: false, status: "connecting", hello: null, labels: [], streams: [], stream: null,
    label: null, confidence: 0, voice: false, latency_ms: null, probs: {}, weights: null,
    seq: null, final: false, input: null, vrchat: null, messages: 0, hellos: 0, connects: 0, face: {}, profile: null,
    calibrate: { state: "idle", step: null, steps: 0, label: null, sentence: null, accepted: 0, attempt: 1,
                 message: "", kind: null, events: [], levels: 0 },
    // With --mood: the selected stream's last mood reading, how many it got, its trace length and
    // the last events (every stream's, newest last; the list shows the selected stream's).
    mood: { messages: 0, last: null, trace: 0, events: [] }
  };
  window.serView = view;

  var history = [];               // {t, probs, voice, label}
  var legendRows = {};            // label -> {bar, value}
  var moodTrace = [];             // {t (stream s), vMoment, vMinute, aMoment, aMinute} of the selected stream
  var ws = null;
  var backoff = BACKOFF_MIN_MS;
  var retryTimer = null;
  var attempt = 0;

  el.chartSeconds.textContent = String(HISTORY_S);
  el.moodSeconds.textContent = String(MOOD_WINDOW_S);

  // ---------------------------------------------------------------- helpers
  function colorOf(label, i) {
    return COLORS[label] || FALLBACK[i % FALLBACK.length];
  }
  function clamp01(x) {
    x = Number(x);
    return isFinite(x) ? Math.min(1, Math.max(0, x)) : 0;
  }
  function fmt(x, digits) { return Number(x).toFixed(digits); }
  function setStatus(state, text) {
    view.status = state;
    el.status.dataset.state = state;
    el.status.textContent = text;
  }
  function setConnected(on) {
    view.connected = on;
    document.body.dataset.connected = on ? "true" : "false";
  }

  // ---------------------------------------------------------------- connection
  function wsUrl() {
    var proto = location.protocol === "https:" ? "wss:" : "ws:";
    var token = new URLSearchParams(location.search).get("token");
    // The per-run key the daemon wrote into this page: Calibrate (which writes profiles) needs it.
    var meta = document.querySelector('meta[name="ser-page-key"]');
    var params = [];
    if (token) params.push("token=" + encodeURIComponent(token));
    if (meta && meta.content) params.push("key=" + encodeURIComponent(meta.content));
    return proto + "//" + location.host + "/ws" + (params.length ? "?" + params.join("&") : "");
  }

  function connect() {
    retryTimer = null;
    attempt += 1;
    setStatus("connecting", attempt > 1 ? "connecting… (try " + attempt + ")" : "connecting…");
    var sock;
    try {
      sock = new WebSocket(wsUrl());
    } catch (e) {
      scheduleReconnect();
      return;
    }
    ws = sock;
    sock.onopen = function () {
      setConnected(true);
      el.calOpen.disabled = false;
      view.connects += 1;
      setStatus("live", "live");
    };
    sock.onmessage = function (ev) {
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (!msg || typeof msg !== "object") return;
      if (msg.type === "hello") onHello(msg);
      else if (msg.type === "state") onState(msg);
      else if (msg.type === "status") onInputStatus(msg);
      else if (msg.type === "calibrate") onCalibrate(msg);
      else if (msg.type === "vrchat") onVRChat(msg);
      else if (msg.type === "mood") onMood(msg);
      else if (msg.type === "event") onMoodEvent(msg);
    };
    sock.onclose = function (ev) {
      if (ws !== sock) return;
      ws = null;
      setConnected(false);
      el.calOpen.disabled = true;
      if (view.calibrate.state !== "idle") calIdle("disconnected: the calibration was dropped");
      setVoice(false);
      scheduleReconnect(ev && ev.code);
    };
    sock.onerror = function () { /* onclose follows */ };
  }

  function scheduleReconnect(code) {
    if (retryTimer !== null) return;
    var wait = backoff;
    backoff = Math.min(BACKOFF_MAX_MS, backoff * 2);
    var why = view.final ? "stream ended" : "disconnected";
    if (code === 1008 || code === 4001) why = "refused";
    setStatus(view.final ? "ended" : "disconnected", why + "; retrying in " + fmt(wait / 1000, 1) + " s");
    retryTimer = setTimeout(connect, wait + Math.random() * 250);
  }

  // ---------------------------------------------------------------- messages
  function onHello(msg) {
    view.hello = msg;
    view.hellos += 1;
    view.final = false;
    backoff = BACKOFF_MIN_MS;   // a real daemon answered: start the backoff over
    attempt = 0;
    var labels = Array.isArray(msg.labels) ? msg.labels.map(String) : [];
    var streams = Array.isArray(msg.streams) ? msg.streams.map(String) : [];
    var sameLabels = labels.join("\n") === view.labels.join("\n");
    view.labels = labels;
    view.streams = streams;
    if (view.stream === null || streams.indexOf(view.stream) < 0) view.stream = streams.length ? streams[0] : null;
    el.model.textContent = msg.model ? String(msg.model) : "–";
    setProfile(msg.profile != null ? String(msg.profile) : null);
    if (msg.vrchat && typeof msg.vrchat === "object") onVRChat(msg.vrchat);
    buildStreamSelect(streams);
    if (!sameLabels) {
      history = [];
      buildLegend(labels);
    }
    setStatus("live", "live · " + (msg.model ? msg.model : "model") + " · hop " +
      (msg.hop_ms != null ? fmt(msg.hop_ms, 0) : "?") + " ms");
  }

  // What is up with VRChat (found or not, muted, toggle off, avatar without SER_ parameters):
  // the short text, and each problem as a line of its own, in the daemon's words.
  function onVRChat(msg) {
    var problems = Array.isArray(msg.problems) ? msg.problems.map(String) : [];
    view.vrchat = { found: !!msg.found, muted: !!msg.muted, enabled: msg.enabled !== false,
                    avatar_has_params: msg.avatar_has_params, problems: problems, text: String(msg.text || "") };
    var rows = document.querySelectorAll(".vrchat-row");
    for (var i = 0; i < rows.length; i++) rows[i].classList.remove("hidden");
    el.vrchat.textContent = msg.found ? "found" : "not found";
    el.vrchat.classList.toggle("late", problems.length > 0);
    var list = el.vrchatProblems;
    while (list.firstChild) list.removeChild(list.firstChild);
    problems.forEach(function (p) {
      var li = document.createElement("li");
      li.textContent = p;
      list.appendChild(li);
    });
  }

  function buildStreamSelect(streams) {
    var sel = el.streamSelect;
    while (sel.firstChild) sel.removeChild(sel.firstChild);
    streams.forEach(function (s) {
      var o = document.createElement("option");
      o.value = s; o.textContent = s;
      if (s === view.stream) o.selected = true;
      sel.appendChild(o);
    });
    sel.classList.toggle("hidden", streams.length < 2);
    el.streamName.classList.toggle("hidden", streams.length >= 2);
    el.streamName.textContent = view.stream === null ? "–" : view.stream;
  }
  el.streamSelect.addEventListener("change", function () {
    view.stream = el.streamSelect.value;
    el.streamName.textContent = view.stream;
    history = [];
    moodTrace = [];
    view.mood.trace = 0;
    view.mood.last = null;
    showMoodEvents();
    drawMood();
  });

  function buildLegend(labels) {
    var ul = el.legend;
    while (ul.firstChild) ul.removeChild(ul.firstChild);
    legendRows = {};
    labels.forEach(function (label, i) {
      var li = document.createElement("li");
      li.dataset.label = label;
      var sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.backgroundColor = colorOf(label, i);
      var name = document.createElement("span");
      name.className = "name";
      name.textContent = label;
      var track = document.createElement("span");
      track.className = "track";
      var bar = document.createElement("span");
      bar.className = "bar";
      bar.style.backgroundColor = colorOf(label, i);
      bar.style.width = "0%";
      track.appendChild(bar);
      var value = document.createElement("span");
      value.className = "value";
      value.textContent = "0.00";
      li.appendChild(sw); li.appendChild(name); li.appendChild(track); li.appendChild(value);
      ul.appendChild(li);
      legendRows[label] = { bar: bar, value: value };
    });
  }

  // A stream the hello did not list (one that connected later, e.g. over the ingest socket).
  function noteStream(name) {
    if (name === null || view.streams.indexOf(name) >= 0) return;
    view.streams.push(name);
    if (view.stream === null) view.stream = name;
    buildStreamSelect(view.streams);
  }

  function onInputStatus(msg) {
    var stream = msg.stream != null ? String(msg.stream) : null;
    noteStream(stream);
    if (view.stream !== null && stream !== null && stream !== view.stream) return;
    view.input = String(msg.status || "");
    el.input.textContent = msg.status === "capturing" ? "capturing" :
      String(msg.status || "?") + (msg.detail ? ": " + String(msg.detail) : "");
    el.input.classList.toggle("late", msg.status !== "capturing");
  }

  function onState(msg) {
    var stream = msg.stream != null ? String(msg.stream) : null;
    noteStream(stream);
    if (view.stream !== null && stream !== null && stream !== view.stream) return;
    view.messages += 1;
    view.seq = msg.seq;
    view.final = !!msg.final;
    var label = msg.label != null ? String(msg.label) : "";
    var conf = clamp01(msg.confidence);
    var probs = msg.probs && typeof msg.probs === "object" ? msg.probs : {};
    view.label = label;
    view.confidence = conf;
    view.probs = probs;
    view.latency_ms = typeof msg.latency_ms === "number" ? msg.latency_ms : null;
    view.weights = msg.weights || null;

    document.body.dataset.label = label;
    var i = view.labels.indexOf(label);
    document.body.dataset.uncertain = msg.uncertain ? "true" : "false";
    // "unsure" is a state, not the class neutral: show the best guess, marked.
    el.label.textContent = (label || "–") + (msg.uncertain ? " (unsure)" : "");
    el.swatch.style.backgroundColor = colorOf(label, i < 0 ? 0 : i);
    el.confidence.textContent = fmt(conf, 2);
    el.confBar.style.width = fmt(conf * 100, 1) + "%";
    el.confBar.style.backgroundColor = colorOf(label, i < 0 ? 0 : i);
    setVoice(!!msg.voice);
    el.latency.textContent = view.latency_ms === null ? "–" :
      fmt(view.latency_ms, 1) + " ms" + (msg.late ? " (late)" : "");
    el.latency.classList.toggle("late", !!msg.late);
    var dropped = (msg.dropped_windows | 0) + (msg.client_dropped | 0);
    el.dropped.textContent = String(dropped) + (msg.overruns ? " · " + (msg.overruns | 0) + " overruns" : "");
    el.messages.textContent = view.messages + " messages";

    Object.keys(legendRows).forEach(function (name) {
      var p = clamp01(probs[name]);
      legendRows[name].bar.style.width = fmt(p * 100, 1) + "%";
      legendRows[name].value.textContent = fmt(p, 2);
    });

    history.push({ t: performance.now(), probs: probs, voice: !!msg.voice, label: label });
    if (history.length > HISTORY_MAX) history.splice(0, history.length - HISTORY_MAX);
    drawChart();

    var arkit = msg.weights && msg.weights.arkit ? msg.weights.arkit : null;
    drawFace(arkit || {});
  }

  function setVoice(on) {
    view.voice = on;
    document.body.dataset.voice = on ? "true" : "false";
    el.voice.dataset.active = on ? "true" : "false";
    el.voice.textContent = on ? "speaking" : "silent";
  }

  // ---------------------------------------------------------------- calibrate
  // The guided enrollment runs in the daemon, on the audio it already captures; the page sends
  // {"type":"calibrate","action":...} and shows the prompts, level, refusals and progress it gets back.
  var CAL_LOG_MAX = 200;

  function setProfile(name) {
    view.profile = name;
    el.profileName.textContent = name ? "profile: " + name : "";
  }
  function sendControl(obj) {
    if (!ws || ws.readyState !== 1) return false;
    obj.type = "calibrate";
    ws.send(JSON.stringify(obj));
    return true;
  }
  function calMessage(kind, text) {
    view.calibrate.message = text;
    view.calibrate.kind = kind;
    el.calMessage.textContent = text;
    el.calMessage.dataset.kind = kind;
  }
  function calIdle(text) {
    view.calibrate.state = "idle";
    el.calRun.classList.add("hidden");
    el.calForm.classList.remove("hidden");
    setRecording(false);
    if (text) calMessage("error", text);
  }
  function setRecording(on) {
    el.calRecord.textContent = on ? "Stop" : "Record";
    el.calRecord.classList.toggle("recording", on);
  }

  el.calOpen.addEventListener("click", function () { el.calPanel.classList.remove("hidden"); });
  el.calClose.addEventListener("click", function () { el.calPanel.classList.add("hidden"); });
  el.calForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var req = { action: "start", profile: el.calProfile.value.trim(), replace: !!el.calReplace.checked };
    if (el.calNeutralOnly.checked) req.emotions = [];
    if (!sendControl(req)) calMessage("error", "not connected to the daemon");
  });
  el.calRecord.addEventListener("click", function () {
    sendControl({ action: view.calibrate.state === "recording" ? "stop" : "record" });
  });
  el.calSkip.addEventListener("click", function () { sendControl({ action: "skip" }); });
  el.calFinish.addEventListener("click", function () { sendControl({ action: "finish" }); });
  el.calCancel.addEventListener("click", function () { sendControl({ action: "cancel" }); });

  function onCalibrate(msg) {
    var c = view.calibrate;
    var ev = String(msg.event || "");
    var text = msg.text != null ? String(msg.text) : "";
    if (ev !== "level") {
      c.events.push(ev);
      if (c.events.length > CAL_LOG_MAX) c.events.splice(0, c.events.length - CAL_LOG_MAX);
    } else {
      c.levels += 1;
    }
    if (typeof msg.steps === "number") c.steps = msg.steps;
    if (typeof msg.accepted === "number") c.accepted = msg.accepted;
    if (typeof msg.step === "number" && c.steps) {
      el.calProgress.style.width = fmt(100 * Math.min(msg.step, c.steps) / c.steps, 1) + "%";
    }
    if (ev === "started") {
      c.state = "ready";
      el.calForm.classList.add("hidden");
      el.calRun.classList.remove("hidden");
      calMessage("started", text);
    } else if (ev === "step") {
      c.state = "ready";
      c.step = msg.step; c.label = String(msg.label || ""); c.sentence = String(msg.sentence || "");
      c.attempt = msg.attempt | 0;
      el.calStep.textContent = "step " + (msg.step + 1) + " of " + c.steps + " · " + c.label +
        (c.attempt > 1 ? " (try " + c.attempt + ")" : "");
      el.calCue.textContent = "Say it " + String(msg.cue || "") + ":";
      el.calSentence.textContent = c.sentence;
      setRecording(false);
    } else if (ev === "recording") {
      c.state = "recording";
      setRecording(true);
      calMessage("recording", text);
    } else if (ev === "level") {
      var db = typeof msg.level_db === "number" ? msg.level_db : -60;
      el.calLevel.style.width = fmt(100 * clamp01((db + 60) / 60), 1) + "%";
      if (c.state === "recording") {
        el.calTake.textContent = fmt(msg.take_s || 0, 1) + " s · voice " + fmt(msg.voice_s || 0, 1) + " s";
      }
    } else if (ev === "refused" || ev === "accepted" || ev === "skipped") {
      c.state = "ready";
      setRecording(false);
      calMessage(ev, (ev === "refused" ? "refused: " : "") + text);
    } else if (ev === "done" || ev === "fitting") {
      c.state = "fitting";
      setRecording(false);
      calMessage(ev, ev === "done" ? "finishing…" : text);
    } else if (ev === "saved") {
      c.state = "saved";
      calMessage("saved", text);
    } else if (ev === "active") {
      setProfile(msg.profile != null ? String(msg.profile) : null);
      if (c.state !== "idle" && c.state !== "ready" && c.state !== "recording") {
        calIdle(null);
        calMessage("active", "profile " + String(msg.profile) + " saved and in use");
      }
    } else if (ev === "cancelled") {
      calIdle(null);
      calMessage("cancelled", text);
    } else if (ev === "error") {
      if (c.state === "fitting" || c.state === "idle" || c.state === "saved") calIdle(null);
      calMessage("error", text);
    }
  }

  // ---------------------------------------------------------------- mood (--mood)
  // A `mood` message about once a second of stream time per stream, an `event` message when one
  // fires (ser_daemon/schema/messages.schema.json).  Horizons without a voice yet are null: the
  // trace has a gap there, never a zero (silence is not a mood).
  function num(x) { return typeof x === "number" && isFinite(x) ? x : null; }
  function signed(x) { return x === null ? "?" : (x >= 0 ? "+" : "") + fmt(x, 2); }
  function horizon(h, name) { return h && typeof h === "object" ? num(h[name]) : null; }

  function showMoodPanel() { el.moodPanel.classList.remove("hidden"); }

  function onMood(msg) {
    var stream = msg.stream != null ? String(msg.stream) : null;
    noteStream(stream);
    if (view.stream !== null && stream !== null && stream !== view.stream) return;
    var t = num(msg.time);
    if (t === null) return;
    showMoodPanel();
    // A stream that starts over (a new daemon, a replay again) restarts its clock: so does the trace.
    if (moodTrace.length && t < moodTrace[moodTrace.length - 1].t) moodTrace = [];
    var r = {
      t: t, vMoment: horizon(msg.valence, "moment"), vMinute: horizon(msg.valence, "minute"),
      aMoment: horizon(msg.arousal, "moment"), aMinute: horizon(msg.arousal, "minute")
    };
    moodTrace.push(r);
    while (moodTrace.length > MOOD_TRACE_MAX || (moodTrace.length > 1 && moodTrace[0].t < t - MOOD_WINDOW_S - 5)) {
      moodTrace.shift();
    }
    var talking = horizon(msg.talking, "minute"), silence = num(msg.silence_s);
    view.mood.messages += 1;
    view.mood.trace = moodTrace.length;
    view.mood.last = { stream: stream, time: t, valence: r.vMinute, arousal: r.aMinute, valenceMoment: r.vMoment,
                       arousalMoment: r.aMoment, talking: talking, silence_s: silence };
    el.moodValence.textContent = signed(r.vMinute) + " (moment " + signed(r.vMoment) + ")";
    el.moodArousal.textContent = signed(r.aMinute) + " (moment " + signed(r.aMoment) + ")";
    el.moodTalking.textContent = talking === null ? "?" : fmt(100 * talking, 0) + "% of the last minute";
    el.moodSilence.textContent = silence === null ? "?" : fmt(silence, 1) + " s";
    drawMood();
  }

  function onMoodEvent(msg) {
    var stream = msg.stream != null ? String(msg.stream) : null;
    noteStream(stream);
    showMoodPanel();
    var ev = { stream: stream, kind: String(msg.kind || "?"), time: num(msg.time),
               evidence: msg.evidence && typeof msg.evidence === "object" ? msg.evidence : {} };
    view.mood.events.push(ev);
    if (view.mood.events.length > MOOD_EVENTS_MAX) view.mood.events.splice(0, view.mood.events.length - MOOD_EVENTS_MAX);
    showMoodEvents();
    drawMood();
  }

  // The evidence in a few words: the figures an app would log (all of them in the tooltip).
  function evidenceText(e) {
    var keys = ["reason", "valence_minute_before", "valence_minute", "arousal_minute", "valence_moment", "silence_s"];
    var parts = [];
    keys.forEach(function (k) {
      var v = e[k];
      if (v === undefined || v === null) return;
      parts.push(k.replace(/_/g, " ") + " " + (typeof v === "number" ? fmt(v, 2) : String(v)));
    });
    return parts.join(", ");
  }

  function selectedEvents() {
    return view.mood.events.filter(function (e) {
      return view.stream === null || e.stream === null || e.stream === view.stream;
    });
  }

  function showMoodEvents() {
    var list = el.moodEvents;
    while (list.firstChild) list.removeChild(list.firstChild);
    var shown = selectedEvents().slice(-MOOD_EVENTS_SHOWN).reverse();   // newest first
    shown.forEach(function (e) {
      var li = document.createElement("li");
      li.dataset.kind = e.kind;
      li.title = JSON.stringify(e.evidence);
      var when = document.createElement("span");
      when.className = "when";
      when.textContent = (e.time === null ? "?" : fmt(e.time, 1) + " s") + " · ";
      var kind = document.createElement("span");
      kind.className = "kind";
      kind.textContent = e.kind.replace(/_/g, " ");
      var why = document.createElement("span");
      why.className = "evidence";
      var text = evidenceText(e.evidence);
      why.textContent = text ? " · " + text : "";
      li.appendChild(when); li.appendChild(kind); li.appendChild(why);
      list.appendChild(li);
    });
    el.moodNoEvents.classList.toggle("hidden", shown.length > 0);
  }

  function drawMood() {
    if (el.moodPanel.classList.contains("hidden")) return;
    var canvas = clearCanvas(el.moodChart, 160);
    if (!canvas) return;
    var g = canvas.g, cssW = canvas.w, cssH = canvas.h;
    var tEnd = moodTrace.length ? Math.max(MOOD_WINDOW_S, moodTrace[moodTrace.length - 1].t) : MOOD_WINDOW_S;
    var t0 = tEnd - MOOD_WINDOW_S;
    var xOf = function (t) { return (t - t0) / MOOD_WINDOW_S * cssW; };
    var yOf = function (v) { return (1 - (Math.max(-1, Math.min(1, v)) + 1) / 2) * (cssH - 4) + 2; };

    // grid: -1, 0, +1 and one line per 30 s of stream time
    g.strokeStyle = "rgba(128,128,128,0.25)";
    g.lineWidth = 1;
    [-1, -0.5, 0.5, 1].forEach(function (v) {
      var gy = Math.round(yOf(v)) + 0.5;
      g.beginPath(); g.moveTo(0, gy); g.lineTo(cssW, gy); g.stroke();
    });
    for (var s = Math.ceil(t0 / 30) * 30; s <= tEnd; s += 30) {
      var gx = Math.round(xOf(s)) + 0.5;
      g.beginPath(); g.moveTo(gx, 0); g.lineTo(gx, cssH); g.stroke();
    }
    g.strokeStyle = "rgba(128,128,128,0.7)";
    g.beginPath(); g.moveTo(0, Math.round(yOf(0)) + 0.5); g.lineTo(cssW, Math.round(yOf(0)) + 0.5); g.stroke();

    // events: a vertical mark in the event's colour at its time
    selectedEvents().forEach(function (e) {
      if (e.time === null || e.time < t0) return;
      g.strokeStyle = EVENT_COLORS[e.kind] || "#7b8794";
      g.lineWidth = 3;
      var ex = Math.round(xOf(e.time));
      g.beginPath(); g.moveTo(ex, 0); g.lineTo(ex, cssH); g.stroke();
    });

    function line(key, color, width) {
      g.strokeStyle = color;
      g.lineWidth = width;
      g.beginPath();
      var open = false;
      for (var k = 0; k < moodTrace.length; k++) {
        var v = moodTrace[k][key];
        if (v === null) { open = false; continue; }     // no voice yet: a gap, not a zero
        var x = xOf(moodTrace[k].t), y = yOf(v);
        if (open) g.lineTo(x, y); else g.moveTo(x, y);
        open = true;
      }
      g.stroke();
    }
    line("vMoment", VALENCE_COLOR, 1);
    line("aMoment", AROUSAL_COLOR, 1);
    line("vMinute", VALENCE_COLOR, 3);
    line("aMinute", AROUSAL_COLOR, 3);
  }
  window.addEventListener("resize", drawMood);

  // ---------------------------------------------------------------- strip chart
  // A canvas sized to its CSS box at the screen's pixel ratio and cleared: {g, w, h} in CSS pixels.
  function clearCanvas(c, defaultH) {
    var dpr = window.devicePixelRatio || 1;
    var cssW = c.clientWidth || 640, cssH = c.clientHeight || defaultH;
    var pw = Math.max(1, Math.round(cssW * dpr)), ph = Math.max(1, Math.round(cssH * dpr));
    if (c.width !== pw || c.height !== ph) { c.width = pw; c.height = ph; }
    var g = c.getContext("2d");
    if (!g) return null;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, cssW, cssH);
    return { g: g, w: cssW, h: cssH };
  }

  function drawChart() {
    var canvas = clearCanvas(el.chart, 180);
    if (!canvas) return;
    var g = canvas.g, cssW = canvas.w, cssH = canvas.h;
    var voiceH = 8, plotH = cssH - voiceH - 2;
    var now = performance.now();
    var t0 = now - HISTORY_S * 1000;
    while (history.length && history[0].t < t0 - 2000) history.shift();
    var xOf = function (t) { return (t - t0) / (HISTORY_S * 1000) * cssW; };

    // grid: one line per second
    g.strokeStyle = "rgba(128,128,128,0.25)";
    g.lineWidth = 1;
    for (var s = 1; s < HISTORY_S; s++) {
      var gx = Math.round(xOf(now - s * 1000)) + 0.5;
      g.beginPath(); g.moveTo(gx, 0); g.lineTo(gx, plotH); g.stroke();
    }
    if (!history.length) return;

    // stacked bars: each sample fills until the next one (or now); edges on whole pixels, no seams
    for (var k = 0; k < history.length; k++) {
      var smp = history[k];
      var x1 = k + 1 < history.length ? xOf(history[k + 1].t) : cssW;
      if (x1 < 0) continue;
      var xa = Math.round(Math.max(0, xOf(smp.t))), xb = Math.max(xa + 1, Math.round(x1));
      var acc = 0, yPrev = plotH;
      for (var j = 0; j < view.labels.length; j++) {
        acc += clamp01(smp.probs[view.labels[j]]);
        var yTop = Math.round(plotH * (1 - Math.min(1, acc)));
        if (yTop >= yPrev) continue;
        g.fillStyle = colorOf(view.labels[j], j);
        g.fillRect(xa, yTop, xb - xa, yPrev - yTop);
        yPrev = yTop;
      }
      g.fillStyle = smp.voice ? "#2ecc71" : "rgba(128,128,128,0.35)";
      g.fillRect(xa, cssH - voiceH, xb - xa, voiceH);
    }
  }
  // Keep the chart scrolling between messages (cheap: one small canvas, 5 times a second).
  setInterval(function () { if (view.connected && history.length) drawChart(); }, 200);
  window.addEventListener("resize", drawChart);

  // ---------------------------------------------------------------- face
  function w(a, name) { return clamp01(a[name]); }
  function pt(x, y) { return fmt(x, 1) + " " + fmt(y, 1); }

  function drawFace(a) {
    var smileL = w(a, "mouthSmileLeft"), smileR = w(a, "mouthSmileRight");
    var frownL = w(a, "mouthFrownLeft"), frownR = w(a, "mouthFrownRight");
    var stretchL = w(a, "mouthStretchLeft"), stretchR = w(a, "mouthStretchRight");
    var pressL = w(a, "mouthPressLeft"), pressR = w(a, "mouthPressRight");
    var jaw = w(a, "jawOpen"), funnel = w(a, "mouthFunnel"), pucker = w(a, "mouthPucker");
    var lowerDown = (w(a, "mouthLowerDownLeft") + w(a, "mouthLowerDownRight")) / 2;
    var upperUp = (w(a, "mouthUpperUpLeft") + w(a, "mouthUpperUpRight")) / 2;
    var close = w(a, "mouthClose");

    // Mouth: corners rise with smile and fall with frown; stretch widens, pucker narrows;
    // jawOpen (and the lips' up/down shapes) open it; press thins it.
    var press = (pressL + pressR) / 2;
    var narrow = 10 * Math.max(pucker, funnel);
    var lx = 72 - 8 * stretchL + narrow, rx = 128 + 8 * stretchR - narrow;
    var ly = 142 - 10 * smileL + 9 * frownL + 3 * pressL, ry = 142 - 10 * smileR + 9 * frownR + 3 * pressR;
    var curve = 14 * (smileL + smileR) / 2 - 12 * (frownL + frownR) / 2;   // + smiles (U), - frowns
    var open = Math.max(0, 26 * jaw + 8 * lowerDown + 5 * upperUp + 6 * funnel - 6 * close) * (1 - 0.5 * press);
    var midY = (ly + ry) / 2;
    var upperY = midY + curve * 0.6 - 4 * upperUp - open * 0.25 - 3 * press;
    var lowerY = midY + curve * 1.4 + open * 1.5 + 2 * (1 - press) - 3 * press;
    var d = "M " + pt(lx, ly) + " Q " + pt(100, upperY) + " " + pt(rx, ry) +
            " Q " + pt(100, lowerY) + " " + pt(lx, ly) + " Z";
    el.mouth.setAttribute("d", d);

    // Brows: browDown lowers them and drops the inner ends (a V); browInnerUp lifts the inner
    // ends (worried); browOuterUp lifts the outer ends (surprise).
    var downL = w(a, "browDownLeft"), downR = w(a, "browDownRight"), inner = w(a, "browInnerUp");
    var outerL = w(a, "browOuterUpLeft"), outerR = w(a, "browOuterUpRight");
    function brow(outerX, innerX, down, outerUp) {
      var oy = 62 + 2 * down - 10 * outerUp - 3 * inner;
      var iy = 62 + 16 * down - 14 * inner - 2 * outerUp;
      var cx = (outerX + innerX) / 2, cy = Math.min(oy, iy) - 6 + 5 * down;
      return "M " + pt(outerX, oy) + " Q " + pt(cx, cy) + " " + pt(innerX, iy);
    }
    var browLd = brow(52, 82, downL, outerL), browRd = brow(148, 118, downR, outerR);
    el.browL.setAttribute("d", browLd);
    el.browR.setAttribute("d", browRd);

    // Eyes: wide opens them, squint and blink close them.
    function eye(e, p, wide, squint, blink) {
      var ryv = Math.max(0.6, 8 * (1 + 0.6 * wide - 0.45 * squint) * (1 - blink));
      e.setAttribute("ry", fmt(ryv, 2));
      p.setAttribute("r", fmt(Math.min(4, ryv), 2));
      return ryv;
    }
    var eyeLry = eye(el.eyeL, el.pupilL, w(a, "eyeWideLeft"), w(a, "eyeSquintLeft"), w(a, "eyeBlinkLeft"));
    var eyeRry = eye(el.eyeR, el.pupilR, w(a, "eyeWideRight"), w(a, "eyeSquintRight"), w(a, "eyeBlinkRight"));

    // Cheeks lift and blush with cheekSquint / smile; sneer draws wrinkles beside the nose.
    var cheekL = Math.max(w(a, "cheekSquintLeft"), smileL), cheekR = Math.max(w(a, "cheekSquintRight"), smileR);
    el.cheekL.setAttribute("cy", fmt(122 - 5 * cheekL, 1));
    el.cheekR.setAttribute("cy", fmt(122 - 5 * cheekR, 1));
    el.cheekL.setAttribute("opacity", fmt(0.15 + 0.6 * cheekL, 2));
    el.cheekR.setAttribute("opacity", fmt(0.15 + 0.6 * cheekR, 2));
    var sneerL = w(a, "noseSneerLeft"), sneerR = w(a, "noseSneerRight");
    el.sneerL.setAttribute("d", "M " + pt(91, 100) + " Q " + pt(86 - 4 * sneerL, 106) + " " +
      pt(88 - 8 * sneerL, 104 + 12 * sneerL));
    el.sneerR.setAttribute("d", "M " + pt(109, 100) + " Q " + pt(114 + 4 * sneerR, 106) + " " +
      pt(112 + 8 * sneerR, 104 + 12 * sneerR));
    el.sneerL.setAttribute("opacity", fmt(Math.min(1, 1.6 * sneerL), 2));
    el.sneerR.setAttribute("opacity", fmt(Math.min(1, 1.6 * sneerR), 2));

    view.face = { mouth: d, browLeft: browLd, browRight: browRd, eyeLeft: eyeLry, eyeRight: eyeRry };
  }

  drawFace({});
  drawChart();
  connect();
})();
