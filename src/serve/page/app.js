// vae-cpu explorer: the page of `vae-cpu serve`. Plain JavaScript, no library. The server
// keeps no per-page state: this script holds the latent points and sends them to decode.
"use strict";

const $ = (id) => document.getElementById(id);

// What the browser test reads: latencies (ms, slider input to image loaded), errors, the
// projection on the map.
const explorer = { ready: false, latencies: [], errors: [], edits: 0, map: null };
window.vaeExplorer = explorer;

const state = {
  info: null,
  base: null,          // the current face's z
  cond: [],            // the condition vector (conditional models)
  vectors: new Map(),  // attribute -> Δ
  attrs: [],           // sliders: {name, value}
  dims: new Map(),     // dimension -> value set by its slider
  seed: 1,
  pickerPage: 0,
  a: null, b: null, frames: [],
  map: null,
};

function showError(message) {
  explorer.errors.push(String(message));
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
}

window.addEventListener("error", (e) => showError(e.message));
window.addEventListener("unhandledrejection", (e) => showError(e.reason && e.reason.message || e.reason));

// POST `body` (JSON, or raw bytes for uploads); null for a superseded request (204).
async function api(path, body) {
  const raw = body instanceof Blob;
  const response = await fetch(path, body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": raw ? "application/octet-stream" : "application/json" },
    body: raw ? body : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const reply = await response.json();
  if (!response.ok) throw new Error(reply.error || response.statusText);
  $("error").hidden = true;
  return reply;
}

// Runs `task` and shows its failure on the page instead of throwing.
async function attempt(task) {
  try { return await task(); } catch (e) { showError(e.message); }
}

function condition() {
  return state.cond.length ? state.cond : undefined;
}

// ---- the edited face: z + Σ nΔ, with the dimension sliders' values set directly ----

function editedZ() {
  if (!state.base) return null;
  const z = state.base.slice();
  for (const [d, v] of state.dims) z[d] = v;
  for (const { name, value } of state.attrs) {
    const delta = state.vectors.get(name);
    if (delta) delta.forEach((x, i) => { z[i] += value * x; });
  }
  return z;
}

// Only the latest edit matters: one request in flight, the newest waiting behind it.
const live = { busy: false, pending: null };

function requestEdit(t0) {
  const z = editedZ();
  if (!z) return;
  live.pending = { z, t0: t0 === undefined ? performance.now() : t0 };
  pump();
}

async function pump() {
  if (live.busy || !live.pending) return;
  const job = live.pending;
  live.pending = null;
  live.busy = true;
  try {
    const reply = await api("/api/decode?channel=edit", { z: [job.z], cond: condition() });
    if (reply) await showTimed($("face-edited"), reply.images[0], job.t0);
  } catch (e) {
    showError(e.message);
  } finally {
    live.busy = false;
    pump();
  }
}

// Sets an image and, once the browser has it, records the time since `t0`.
function showTimed(img, src, t0) {
  return new Promise((resolve) => {
    img.onload = () => {
      explorer.latencies.push(performance.now() - t0);
      explorer.edits += 1;
      if (explorer.latencies.length > 200) explorer.latencies.shift();
      const last = explorer.latencies.slice(-50).sort((x, y) => x - y);
      $("latency").textContent = `slider → image: ${last[last.length >> 1].toFixed(1)} ms`;
      resolve();
    };
    img.onerror = () => resolve();
    img.src = src;
  });
}

function setFace(face) {
  state.base = face.z;
  $("face-original").src = face.image;
  $("face-recon").src = face.recon;
  resetDims();
  requestEdit();
}

// ---- sliders ----

function sliderRow(label, min, max, step, value, onInput, onRemove) {
  const row = document.createElement("div");
  row.className = "row";
  const name = document.createElement("span");
  name.textContent = label;
  const input = Object.assign(document.createElement("input"), { type: "range", min, max, step, value });
  const out = document.createElement("output");
  out.textContent = Number(value).toFixed(2);
  input.addEventListener("input", (e) => {
    out.textContent = Number(input.value).toFixed(2);
    onInput(Number(input.value), e.timeStamp);
  });
  row.append(name, input, out);
  if (onRemove) {
    const remove = Object.assign(document.createElement("button"), { type: "button", textContent: "×" });
    remove.addEventListener("click", () => { row.remove(); onRemove(); });
    row.append(remove);
  } else {
    row.append(document.createElement("span"));
  }
  return { row, input, out };
}

async function addAttribute(name) {
  if (!name || state.attrs.some((a) => a.name === name)) return;
  if (!state.vectors.has(name)) {
    const v = await api("/api/vector", { attribute: name });
    state.vectors.set(name, v.delta);
  }
  const slider = { name, value: 0 };
  state.attrs.push(slider);
  const { row, input } = sliderRow(name, -3, 3, 0.1, 0, (value, t0) => {
    slider.value = value;
    requestEdit(t0);
  }, () => {
    state.attrs = state.attrs.filter((a) => a !== slider);
    requestEdit();
  });
  input.dataset.attribute = name;
  $("attr-sliders").append(row);
}

function resetDims() {
  state.dims.clear();
  const box = $("dim-sliders");
  box.textContent = "";
  for (const { dim, kl } of state.info.dims) {
    const start = state.base ? state.base[dim] : 0;
    const { row, input } = sliderRow(`z[${dim}] KL ${kl.toFixed(2)}`, -3, 3, 0.05, start.toFixed(2),
      (value, t0) => { state.dims.set(dim, value); requestEdit(t0); });
    input.dataset.dim = dim;
    box.append(row);
  }
}

function resetSliders() {
  for (const a of state.attrs) a.value = 0;
  for (const input of $("attr-sliders").querySelectorAll("input")) {
    input.value = 0;
    input.nextSibling.textContent = "0.00";
  }
  resetDims();
  requestEdit();
}

// ---- samples, picker, upload ----

async function loadSamples() {
  const reply = await api("/api/samples", {
    n: 16, seed: state.seed, temperature: Number($("temperature").value), cond: condition(),
  });
  const grid = $("samples");
  grid.textContent = "";
  reply.images.forEach((src, i) => {
    const img = Object.assign(document.createElement("img"), { src, alt: `sample ${i + 1}` });
    img.addEventListener("click", () => setFace({ z: reply.z[i], image: src, recon: src }));
    grid.append(img);
  });
  return reply;
}

async function loadPicker() {
  const faces = state.info.faces;
  const per = 24;
  const pages = Math.max(1, Math.ceil(faces.length / per));
  state.pickerPage = (state.pickerPage + pages) % pages;
  const indices = faces.slice(state.pickerPage * per, (state.pickerPage + 1) * per);
  $("picker-page").textContent = `page ${state.pickerPage + 1} of ${pages} (${faces.length} faces)`;
  const reply = await api("/api/faces", { indices });
  const grid = $("picker");
  grid.textContent = "";
  reply.images.forEach((src, i) => {
    const img = Object.assign(document.createElement("img"), { src, alt: `image ${indices[i]}` });
    img.addEventListener("click", () => attempt(async () => setFace(await api("/api/encode", { index: indices[i] }))));
    grid.append(img);
  });
}

async function upload(file) {
  if (!file) return;
  setFace(await api("/api/upload", file));
}

// ---- interpolation ----

async function loadFrames() {
  if (!state.a || !state.b) return;
  const reply = await api("/api/interpolate", {
    a: state.a, b: state.b, steps: 11, spherical: $("spherical").checked, cond: condition(),
  });
  state.frames = reply.images;
  $("scrubber").disabled = false;
  $("interp-frame").src = state.frames[Number($("scrubber").value)];
}

async function setEnd(which, z) {
  if (!z) return;
  state[which] = z;
  const reply = await api("/api/decode", { z: [z], cond: condition() });
  $(`interp-${which}`).src = reply.images[0];
  await loadFrames();
}

// ---- the latent map ----

const WITH = "rgb(230,120,20)", WITHOUT = "rgb(40,110,200)", UNKNOWN = "rgb(170,170,170)";

// t-SNE runs on the server's own thread: ask again every half second until it is ready
// (the sliders keep working meanwhile).
async function loadMap() {
  const request = { projection: $("map-projection").value, color: $("map-color").value || undefined };
  let reply = await api("/api/map", request);
  while (!reply.ready) {
    $("status").textContent = "computing t-SNE…";
    await new Promise((done) => setTimeout(done, 500));
    if ($("map-projection").value !== request.projection) return;
    reply = await api("/api/map", request);
  }
  $("status").textContent = "";
  state.map = { ...reply, thumbs: new Map() };
  drawMap();
  explorer.map = request.projection;
}

function mapPixels() {
  const { points } = state.map;
  const canvas = $("map");
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const pad = 10, w = canvas.width - 2 * pad, h = canvas.height - 2 * pad;
  return points.map(([x, y]) => [
    pad + (x - x0) / (x1 - x0 || 1) * w,
    pad + (1 - (y - y0) / (y1 - y0 || 1)) * h,
  ]);
}

function drawMap() {
  const ctx = $("map").getContext("2d");
  ctx.clearRect(0, 0, $("map").width, $("map").height);
  state.map.pixels = mapPixels();
  state.map.pixels.forEach(([x, y], i) => {
    const label = state.map.labels[i];
    ctx.fillStyle = label > 0 ? WITH : label < 0 ? WITHOUT : UNKNOWN;
    ctx.beginPath();
    ctx.arc(x, y, 3, 0, 2 * Math.PI);
    ctx.fill();
  });
}

// The point nearest to a mouse event, within 8 pixels.
function nearestPoint(e) {
  if (!state.map) return -1;
  const r = $("map").getBoundingClientRect();
  const [mx, my] = [e.clientX - r.left, e.clientY - r.top];
  let best = -1, bestD = 64;
  state.map.pixels.forEach(([x, y], i) => {
    const d = (x - mx) ** 2 + (y - my) ** 2;
    if (d < bestD) { best = i; bestD = d; }
  });
  return best;
}

async function hoverMap(e) {
  const i = nearestPoint(e), img = $("map-hover");
  if (i < 0) { img.hidden = true; return; }
  const index = state.map.indices[i];
  if (!state.map.thumbs.has(index)) {
    state.map.thumbs.set(index, (await api("/api/faces", { indices: [index] })).images[0]);
  }
  const [x, y] = state.map.pixels[i];
  Object.assign(img.style, { left: `${x + 12}px`, top: `${y + 12}px` });
  img.src = state.map.thumbs.get(index);
  img.hidden = false;
}

// ---- start ----

function buildConditions() {
  const box = $("conditions");
  state.cond = state.info.conditions.map(() => 0);
  state.info.conditions.forEach((name, i) => {
    const select = document.createElement("select");
    for (const [value, text] of [[0, "any"], [1, "yes"], [-1, "no"]]) {
      select.append(Object.assign(document.createElement("option"), { value, textContent: `${name}: ${text}` }));
    }
    select.addEventListener("change", () => attempt(async () => {
      state.cond[i] = Number(select.value);
      await loadSamples();
      requestEdit();
    }));
    box.append(select);
  });
  box.hidden = state.info.conditions.length === 0;
}

function fillSelect(select, names, preferred) {
  for (const name of names) select.append(Object.assign(document.createElement("option"), { value: name, textContent: name }));
  if (names.includes(preferred)) select.value = preferred;
}

function wire() {
  $("reroll").addEventListener("click", () => attempt(() => { state.seed += 1; return loadSamples(); }));
  $("temperature").addEventListener("input", () => {
    $("temperature-value").textContent = Number($("temperature").value).toFixed(2);
    attempt(loadSamples);
  });
  $("attr-add").addEventListener("click", () => attempt(() => addAttribute($("attr-select").value)));
  $("reset").addEventListener("click", resetSliders);
  $("upload").addEventListener("change", (e) => attempt(() => upload(e.target.files[0])));
  $("picker-prev").addEventListener("click", () => { state.pickerPage -= 1; attempt(loadPicker); });
  $("picker-next").addEventListener("click", () => { state.pickerPage += 1; attempt(loadPicker); });
  $("set-a").addEventListener("click", () => attempt(() => setEnd("a", editedZ())));
  $("set-b").addEventListener("click", () => attempt(() => setEnd("b", editedZ())));
  $("spherical").addEventListener("change", () => attempt(loadFrames));
  $("scrubber").addEventListener("input", () => { $("interp-frame").src = state.frames[Number($("scrubber").value)]; });
  $("map-projection").addEventListener("change", () => attempt(loadMap));
  $("map-color").addEventListener("change", () => attempt(loadMap));
  $("map").addEventListener("mousemove", (e) => attempt(() => hoverMap(e)));
  $("map").addEventListener("mouseleave", () => { $("map-hover").hidden = true; });
  $("map").addEventListener("click", (e) => attempt(async () => {
    const i = nearestPoint(e);
    if (i >= 0) setFace(await api("/api/encode", { index: state.map.indices[i] }));
  }));
}

async function start() {
  state.info = await api("/api/info");
  $("model-name").textContent = `${state.info.model} · latent ${state.info.latent} · ${state.info.width}×${state.info.height}`;
  buildConditions();
  fillSelect($("attr-select"), state.info.attributes, "Smiling");
  $("attributes-card").hidden = state.info.attributes.length === 0;
  wire();
  const samples = await loadSamples();
  // The first face to edit, and a second one: the ends of the interpolation.
  let second = samples.z[1];
  const faces = state.info.faces;
  if (faces.length) {
    $("picker-card").hidden = false;
    await loadPicker();
    setFace(await api("/api/encode", { index: faces[0] }));
    if (faces.length > 1) second = (await api("/api/encode", { index: faces[1] })).z;
  } else {
    setFace({ z: samples.z[0], image: samples.images[0], recon: samples.images[0] });
  }
  state.a = state.base;
  await setEnd("b", second);
  await setEnd("a", state.base);
  if (state.info.map) {
    $("map-card").hidden = false;
    fillSelect($("map-color"), state.info.attributes, "Smiling");
    await loadMap();
  }
  $("status").textContent = "";
  explorer.ready = true;
}

attempt(start);
