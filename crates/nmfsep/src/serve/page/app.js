// The page of `nmfsep serve`: plain JavaScript over the JSON API, no external resources.
"use strict";

const $ = (id) => document.getElementById(id);
let token = localStorage.getItem("nmfsep-token") || "";

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function say(msg, isError = false) {
  const s = $("status");
  s.textContent = msg;
  s.className = isError ? "error" : "";
}

function authHeaders() {
  return token ? { Authorization: "Bearer " + token } : {};
}

// A URL usable where no header can be set (links, downloads).
function linkUrl(path) {
  return token ? path + "?access_token=" + encodeURIComponent(token) : path;
}

async function api(path, opts = {}) {
  const r = await fetch(path, { ...opts, headers: { ...authHeaders(), ...(opts.headers || {}) } });
  if (r.status === 401) {
    $("token-box").hidden = false;
    throw new Error("this server needs an access token");
  }
  if (r.status === 204) return null;
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || "HTTP " + r.status);
  return body;
}

// ---------- sources (dictionaries) ----------

let dictionaries = [];
let recorded = null; // a WAV Blob from the microphone

async function loadDictionaries() {
  dictionaries = await api("/api/dictionaries");
  const list = $("dict-list");
  list.replaceChildren();
  for (const d of dictionaries) {
    list.append(el("li", {},
      el("span", {}, el("strong", { text: d.name }),
        el("span", { class: "meta", text: ` ${d.components} templates, ${d.clip_seconds.toFixed(1)} s clip, ${d.sample_rate} Hz` })),
      el("span", {},
        el("a", { class: "button secondary", href: linkUrl(`/api/dictionaries/${d.id}.npz`), download: d.name + ".npz", text: "npz" }),
        " ",
        el("button", { type: "button", class: "secondary", "aria-label": "Delete source " + d.name, text: "Delete",
          onclick: async () => {
            try { await api(`/api/dictionaries/${d.id}`, { method: "DELETE" }); await loadDictionaries(); }
            catch (e) { say(e.message, true); }
          } }))));
  }
  const choices = $("source-choices");
  choices.replaceChildren();
  if (!dictionaries.length) choices.append(el("p", { class: "hint", text: "Learn a source first." }));
  for (const d of dictionaries) {
    const box = el("input", { type: "checkbox", name: "source", value: d.id, checked: "" });
    choices.append(el("label", { class: "check" }, box, " " + d.name), " ");
  }
}

$("learn-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const name = $("dict-name").value.trim();
  const file = $("dict-clip").files[0];
  if (!file && !recorded) { say("Choose or record a clip first.", true); return; }
  const fd = new FormData();
  fd.append("name", name);
  fd.append("clip", file || recorded, file ? file.name : "recording.wav");
  $("learn-btn").disabled = true;
  $("learn-spinner").hidden = false;
  say(`Learning ${name}...`);
  try {
    const d = await api("/api/dictionaries", { method: "POST", body: fd });
    say(`Learned ${d.name}: ${d.components} templates.`);
    $("learn-form").reset();
    recorded = null;
    $("record-note").hidden = true;
    await loadDictionaries();
  } catch (e) {
    say("Could not learn: " + e.message, true);
  } finally {
    $("learn-btn").disabled = false;
    $("learn-spinner").hidden = true;
  }
});

// Recording: raw samples from the microphone, written as a 16-bit WAV (the server reads
// WAV, FLAC, MP3 and Ogg Vorbis; browsers record other formats).
let rec = null;
$("record-btn").addEventListener("click", async () => {
  const btn = $("record-btn");
  if (rec) {
    rec.stop();
    return;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const ctx = new AudioContext();
    const src = ctx.createMediaStreamSource(stream);
    const proc = ctx.createScriptProcessor(4096, 1, 1);
    const chunks = [];
    proc.onaudioprocess = (e) => chunks.push(new Float32Array(e.inputBuffer.getChannelData(0)));
    src.connect(proc);
    proc.connect(ctx.destination);
    btn.textContent = "Stop recording";
    btn.setAttribute("aria-pressed", "true");
    rec = {
      stop() {
        proc.disconnect(); src.disconnect();
        stream.getTracks().forEach((t) => t.stop());
        recorded = wavBlob(chunks, ctx.sampleRate);
        ctx.close();
        rec = null;
        btn.textContent = "Record";
        btn.setAttribute("aria-pressed", "false");
        const secs = chunks.reduce((n, c) => n + c.length, 0) / ctx.sampleRate;
        $("record-note").textContent = `Recorded ${secs.toFixed(1)} s; give it a name and press Learn.`;
        $("record-note").hidden = false;
      },
    };
  } catch (e) {
    say("Cannot record: " + e.message, true);
  }
});

function wavBlob(chunks, rate) {
  const n = chunks.reduce((a, c) => a + c.length, 0);
  const buf = new DataView(new ArrayBuffer(44 + 2 * n));
  const str = (o, s) => [...s].forEach((ch, i) => buf.setUint8(o + i, ch.charCodeAt(0)));
  str(0, "RIFF"); buf.setUint32(4, 36 + 2 * n, true); str(8, "WAVE"); str(12, "fmt ");
  buf.setUint32(16, 16, true); buf.setUint16(20, 1, true); buf.setUint16(22, 1, true);
  buf.setUint32(24, rate, true); buf.setUint32(28, rate * 2, true); buf.setUint16(32, 2, true);
  buf.setUint16(34, 16, true); str(36, "data"); buf.setUint32(40, 2 * n, true);
  let o = 44;
  for (const c of chunks) for (const x of c) { buf.setInt16(o, Math.max(-1, Math.min(1, x)) * 32767, true); o += 2; }
  return new Blob([buf], { type: "audio/wav" });
}

// ---------- jobs ----------

$("job-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const mix = $("mix-file").files[0];
  if (!mix) { say("Choose a mixture first.", true); return; }
  const fd = new FormData();
  fd.append("mixture", mix, mix.name);
  for (const box of document.querySelectorAll("#source-choices input:checked")) {
    const d = dictionaries.find((x) => x.id === box.value);
    if (d) fd.append("source", `${d.name}=${d.id}`);
  }
  const rest = $("rest-name").value.trim();
  if (rest) fd.append("rest", rest);
  if ($("realtime").checked) fd.append("realtime", "true");
  $("separate-btn").disabled = true;
  try {
    const job = await api("/api/jobs", { method: "POST", body: fd });
    say("Uploaded; separating...");
    showProgress(job);
    const end = await watchJob(job.id, showProgress);
    await loadJobs();
    if (end.state === "done") { say("Done."); await openJob(end); }
    else say(`The job ${end.state}${end.error ? ": " + end.error : ""}`, true);
  } catch (e) {
    say("Could not separate: " + e.message, true);
  } finally {
    $("separate-btn").disabled = false;
  }
});

// The server reports progress by stage (0.1 separating, 0.8 stems written, 1 done): while
// the separation itself runs the bar is indeterminate and the elapsed time is shown.
let runningSince = 0;
let elapsedTimer = 0;
function showProgress(job) {
  const p = $("job-progress");
  p.hidden = false;
  clearInterval(elapsedTimer);
  if (job.state === "running" && job.progress < 0.8) {
    p.removeAttribute("value");
    runningSince = runningSince || Date.now();
    const show = () => { $("job-state").textContent = `separating, ${Math.round((Date.now() - runningSince) / 1000)} s`; };
    show();
    elapsedTimer = setInterval(show, 1000);
    return;
  }
  p.value = job.progress;
  if (job.state !== "running") runningSince = 0;
  $("job-state").textContent = job.state === "running" ? "writing the stems" : job.state;
}

// Follows the job's server-sent events (read with fetch, so the token header can be sent)
// until its final state; falls back to polling if the stream breaks.
async function watchJob(id, onRow) {
  const final = (r) => ["done", "failed", "cancelled"].includes(r.state);
  try {
    const r = await fetch(`/api/jobs/${id}/events`, { headers: authHeaders() });
    if (!r.ok || !r.body) throw new Error("no stream");
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
        if (!data) continue;
        const row = JSON.parse(data);
        onRow(row);
        if (final(row)) { reader.cancel(); return row; }
      }
    }
  } catch (_) { /* poll below */ }
  for (;;) {
    const row = await api(`/api/jobs/${id}`);
    onRow(row);
    if (final(row)) return row;
    await new Promise((res) => setTimeout(res, 500));
  }
}

async function loadJobs() {
  const jobs = await api("/api/jobs");
  const list = $("job-list");
  list.replaceChildren();
  if (!jobs.length) list.append(el("li", { class: "meta", text: "No jobs yet." }));
  for (const j of jobs) {
    const when = new Date(j.created * 1000).toLocaleString();
    const names = j.sources.map((s) => s.name).concat(j.rest ? [j.rest] : []).join(", ");
    const actions = el("span", {});
    if (j.state === "done") actions.append(el("button", { type: "button", text: "Open", onclick: () => openJob(j) }), " ");
    const live = !["done", "failed", "cancelled"].includes(j.state);
    actions.append(el("button", { type: "button", class: "secondary", text: live ? "Cancel" : "Delete",
      "aria-label": (live ? "Cancel" : "Delete") + " job of " + when,
      onclick: async () => {
        try { await api(`/api/jobs/${j.id}`, { method: "DELETE" }); await loadJobs(); }
        catch (e) { say(e.message, true); }
      } }));
    list.append(el("li", {},
      el("span", {}, el("span", { class: "state-" + j.state, text: j.state }),
        el("span", { class: "meta", text: ` ${when}, ${j.mixture_seconds.toFixed(1)} s into ${names}` }),
        j.error ? el("span", { class: "meta error", text: " " + j.error }) : ""),
      actions));
  }
}

// ---------- player: one buffer per stem, started together; mute, solo, volume ----------

const player = { ctx: null, stems: [], sources: [], playing: false, startedAt: 0, offset: 0, duration: 0, timer: 0 };

function gainOf(s) {
  const solo = player.stems.some((x) => x.solo);
  return s.muted || (solo && !s.solo) ? 0 : s.volume;
}

function applyGains() {
  for (const s of player.stems) if (s.gain) s.gain.gain.value = gainOf(s);
}

function position() {
  return player.playing ? player.offset + player.ctx.currentTime - player.startedAt : player.offset;
}

function stopSources() {
  for (const n of player.sources) { try { n.stop(); } catch (_) { /* not started */ } }
  player.sources = [];
}

function play() {
  if (!player.stems.length) return;
  if (player.playing) { player.offset = position(); stopSources(); player.playing = false; $("play-btn").textContent = "Play"; return; }
  if (player.offset >= player.duration) player.offset = 0;
  const t = player.ctx.currentTime + 0.05;
  for (const s of player.stems) {
    const n = player.ctx.createBufferSource();
    n.buffer = s.buffer;
    n.connect(s.gain);
    n.start(t, player.offset);
    player.sources.push(n);
  }
  player.startedAt = t;
  player.playing = true;
  $("play-btn").textContent = "Pause";
}

function tick() {
  const p = Math.min(position(), player.duration);
  if (player.playing && p >= player.duration) { stopSources(); player.playing = false; player.offset = player.duration; $("play-btn").textContent = "Play"; }
  $("seek").value = player.duration ? p / player.duration : 0;
  const m = Math.floor(p / 60), sec = Math.floor(p % 60);
  $("clock").textContent = `${m}:${String(sec).padStart(2, "0")}`;
}

$("play-btn").addEventListener("click", play);
$("stop-btn").addEventListener("click", () => { stopSources(); player.playing = false; player.offset = 0; $("play-btn").textContent = "Play"; tick(); });
$("seek").addEventListener("input", () => {
  const was = player.playing;
  if (was) { stopSources(); player.playing = false; }
  player.offset = Number($("seek").value) * player.duration;
  if (was) play(); else tick();
});

function drawWave(canvas, buffer) {
  const w = (canvas.width = canvas.clientWidth * devicePixelRatio || 600);
  const h = (canvas.height = 56 * devicePixelRatio);
  const g = canvas.getContext("2d");
  g.fillStyle = "#2f5fd0";
  const data = buffer.getChannelData(0);
  const step = Math.max(1, Math.floor(data.length / w));
  let peak = 1e-6;
  for (let i = 0; i < data.length; i++) peak = Math.max(peak, Math.abs(data[i]));
  for (let x = 0; x < w; x++) {
    let lo = 0, hi = 0;
    for (let i = x * step; i < Math.min(data.length, (x + 1) * step); i++) { lo = Math.min(lo, data[i]); hi = Math.max(hi, data[i]); }
    const y0 = h / 2 - (hi / peak) * (h / 2 - 1), y1 = h / 2 - (lo / peak) * (h / 2 - 1);
    g.fillRect(x, y0, 1, Math.max(1, y1 - y0));
  }
}

async function openJob(job) {
  stopSources();
  clearInterval(player.timer);
  if (player.ctx) player.ctx.close();
  player.ctx = new AudioContext();
  player.stems = [];
  player.playing = false;
  player.offset = 0;
  player.duration = 0;
  $("play-btn").textContent = "Play";
  const box = $("stems");
  box.replaceChildren();
  $("result").hidden = false;
  $("zip-link").href = linkUrl(`/api/jobs/${job.id}/stems.zip`);
  $("zip-link").setAttribute("download", "stems.zip");
  for (const name of job.stems) {
    const url = `/api/jobs/${job.id}/stems/${encodeURIComponent(name)}.wav`;
    const s = { name, muted: false, solo: false, volume: 1, gain: player.ctx.createGain(), buffer: null };
    s.gain.connect(player.ctx.destination);
    const canvas = el("canvas", { role: "img", "aria-label": "Waveform of " + name });
    const mute = el("button", { type: "button", class: "secondary", "aria-pressed": "false", text: "Mute" });
    const solo = el("button", { type: "button", class: "secondary", "aria-pressed": "false", text: "Solo" });
    mute.addEventListener("click", () => { s.muted = !s.muted; mute.setAttribute("aria-pressed", String(s.muted)); applyGains(); });
    solo.addEventListener("click", () => { s.solo = !s.solo; solo.setAttribute("aria-pressed", String(s.solo)); applyGains(); });
    const vol = el("input", { type: "range", min: "0", max: "1.5", step: "0.01", value: "1", "aria-label": "Volume of " + name });
    vol.addEventListener("input", () => { s.volume = Number(vol.value); applyGains(); });
    const dl = el("a", { class: "button secondary stem-download", href: linkUrl(url), download: name + ".wav", text: "Download " + name + ".wav" });
    box.append(el("div", { class: "stem", "data-name": name },
      el("span", { class: "name", text: name }), canvas,
      el("div", { class: "controls" }, mute, solo, el("label", {}, "Volume", vol), dl)));
    player.stems.push(s);
    try {
      const r = await fetch(url, { headers: authHeaders() });
      s.buffer = await player.ctx.decodeAudioData(await r.arrayBuffer());
      player.duration = Math.max(player.duration, s.buffer.duration);
      drawWave(canvas, s.buffer);
    } catch (e) {
      say(`Cannot load ${name}: ${e.message}`, true);
    }
  }
  player.stems = player.stems.filter((s) => s.buffer);
  player.timer = setInterval(tick, 100);
  tick();
  $("result").dataset.ready = "true";
  $("play-btn").focus();
}

// ---------- start ----------

$("token-save").addEventListener("click", () => {
  token = $("token").value.trim();
  localStorage.setItem("nmfsep-token", token);
  start();
});

async function start() {
  try {
    await api("/api/health");
    $("token-box").hidden = true;
    await Promise.all([loadDictionaries(), loadJobs()]);
    say("");
  } catch (e) {
    say(e.message, true);
  }
}

start();
