// image-layered studio page. Plain JavaScript, no build step, no framework.
//
// Structure, top to bottom:
//   1. helpers   — $(), the `api()` fetch wrapper (JSON errors → ApiError), say() for the
//                  aria-live #status region, the shared #progress bar.
//   2. account   — sign in / who am I / sign out; toggles #login-section and #studio.
//   3. images    — upload (file input + drag-and-drop), the #images list, Decompose/Open.
//   4. jobs      — watchJob(): Server-Sent Events with a polling fallback.
//   5. document  — open/render a document: #layers panel (front-most first), the #preview
//                  canvas composited client-side back to front, export links, undo/redo.
//   6. edits     — applyOp(): every edit carries the current revision; 200 → new document,
//                  202 → watch the job then reload, 409 → reload and tell the user.
//   7. wiring    — event listeners and keyboard shortcuts, then boot().
// State lives in `S`; rendering always starts from the last document the server returned.
"use strict";

const S = { me: null, doc: null, selected: null, busy: false, images: [], docOf: {}, thumbTries: 0, thumbTimer: 0 };

// ---------------------------------------------------------------- 1. helpers
const $ = (sel) => document.querySelector(sel);

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// fetch wrapper: JSON in/out; throws ApiError for every status ≥ 400.
async function api(method, path, body) {
  const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (body instanceof Blob) {
    init.headers["Content-Type"] = body.type || "application/octet-stream";
    init.body = body;
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, "network", "The studio server could not be reached.");
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!res.ok) {
    const err = (data && data.error) || {};
    throw new ApiError(res.status, err.code || "http_" + res.status,
      err.message || `Request failed (${res.status}).`);
  }
  return { status: res.status, data };
}

let statusTimer = 0;
function say(message, kind) {
  const el = $("#status");
  el.textContent = message;
  el.dataset.kind = kind || "info";
  clearTimeout(statusTimer);
  if (kind !== "error" && message) statusTimer = setTimeout(() => { el.textContent = ""; }, 8000);
}

function fail(e) {
  if (e instanceof ApiError && e.status === 401 && S.me) { showSignedOut(); }
  say(e.message || String(e), "error");
}

function showProgress(label, value) {
  $("#job").hidden = false;
  $("#progress-label").textContent = label;
  if (value == null) $("#progress").removeAttribute("value");
  else $("#progress").value = value;
}
function hideProgress() { $("#job").hidden = true; }

function el(tag, props, ...children) {
  const n = document.createElement(tag);
  Object.assign(n, props || {});
  for (const c of children) if (c != null) n.append(c);
  return n;
}

// Re-renders `list` with fill() keeping keyboard focus on the same control of the same item
// (items are keyed by the data attribute `key`, controls by their first class name).
function keepFocus(list, key, fill) {
  const a = document.activeElement;
  const li = a && list.contains(a) ? a.closest("li") : null;
  const id = li ? li.dataset[key] : null;
  const cls = id && a.classList.length ? a.classList[0] : null;
  fill();
  if (!id) return;
  const attr = key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
  const item = list.querySelector(`li[data-${attr}="${id}"]`);
  const target = item && (cls ? item.querySelector(`.${cls}`) : item);
  if (target) target.focus();
}

function knownDocs() {
  return S.docOf || {};
}
function rememberDoc(imageId, docId) {
  S.docOf = { ...(S.docOf || {}), [imageId]: docId };
}

// ---------------------------------------------------------------- 2. account
async function boot() {
  try {
    const { data } = await api("GET", "/api/v1/me");
    showSignedIn(data);
  } catch (e) {
    if (e.status !== 401) say(e.message, "error");
    showSignedOut();
  }
}

function showSignedIn(me) {
  S.me = me;
  $("#whoami").textContent = `Signed in as ${me.name || me.email} (${me.email})`;
  $("#account").hidden = false;
  $("#login-section").hidden = true;
  $("#studio").hidden = false;
  loadImages();
  openFromHash();
}

// `#doc=<id>` in the address opens that document (and survives a reload).
function openFromHash() {
  const m = /doc=([\w-]+)/.exec(location.hash);
  if (m && S.me && (!S.doc || S.doc.id !== m[1])) openDocument(m[1]).catch(fail);
}

function showSignedOut() {
  S.me = null;
  clearDocument();
  $("#account").hidden = true;
  $("#studio").hidden = true;
  $("#login-section").hidden = false;
  $("#email").focus();
}

async function login(ev) {
  ev.preventDefault();
  const email = $("#email").value.trim();
  const password = $("#password").value;
  try {
    const { data } = await api("POST", "/api/v1/auth/login", { email, password });
    $("#password").value = "";
    const me = data && data.email ? data : (await api("GET", "/api/v1/me")).data;
    showSignedIn(me);
    say(`Welcome, ${me.name || me.email}.`);
  } catch (e) {
    say(e.status === 401 ? "Wrong email or password." : e.message, "error");
  }
}

async function logout() {
  try { await api("POST", "/api/v1/auth/logout"); } catch (e) { /* signed out anyway */ }
  showSignedOut();
  history.replaceState(null, "", location.pathname);
  say("Signed out.");
}

// ---------------------------------------------------------------- 3. images
// The raw-body form of the upload (API.md: `Content-Type: image/*`); the server decodes and
// checks the bytes itself, so an unknown type goes as application/octet-stream.
async function uploadFile(file) {
  const { data } = await api("POST", "/api/v1/images", file);
  return data;
}

async function uploadFiles(files) {
  for (const file of files) {
    say(`Uploading ${file.name}…`);
    try {
      const img = await uploadFile(file);
      say(`Uploaded ${file.name} (${img.width}×${img.height}).`);
    } catch (e) { fail(e); }
  }
  await loadImages();
}

async function loadImages() {
  try {
    const [{ data }, docs] = await Promise.all([
      api("GET", "/api/v1/images"), api("GET", "/api/v1/documents")]);
    S.images = (data.images || []).sort((a, b) => b.id.localeCompare(a.id)); // UUIDv7: newest first
    // the newest document of each image (the list is newest first)
    S.docOf = {};
    for (const d of docs.data.documents || []) if (!S.docOf[d.image_id]) S.docOf[d.image_id] = d.id;
    renderImages();
  } catch (e) { fail(e); }
}

function renderImages() {
  const list = $("#images");
  const docs = knownDocs();
  let pending = false;
  keepFocus(list, "imageId", () => list.replaceChildren(...S.images.map((img) => {
    const label = `Image ${img.width}×${img.height} ${img.format}, uploaded ${
      new Date(img.created_at).toLocaleString()}`;
    const thumb = el("div", { className: "thumb" });
    if (img.thumbnail_url) {
      const t = el("img", { src: img.thumbnail_url, alt: "", loading: "lazy" });
      t.addEventListener("error", () => t.remove());
      thumb.append(t);
    } else pending = true;
    const decompose = el("button", { type: "button", className: "decompose", textContent: "Decompose" });
    decompose.dataset.imageId = img.id;
    decompose.disabled = S.busy;
    decompose.setAttribute("aria-label", `Decompose ${label}`);
    const li = el("li", {}, thumb,
      el("span", { className: "info", textContent: `${img.width}×${img.height} ${img.format} · ${
        new Date(img.created_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}` }),
      decompose);
    li.dataset.imageId = img.id;
    if (docs[img.id]) {
      const open = el("button", { type: "button", className: "open", textContent: "Open" });
      open.dataset.documentId = docs[img.id];
      open.setAttribute("aria-label", `Open the last document of ${label}`);
      li.append(open);
    }
    if (S.doc && S.doc.image_id === img.id) li.classList.add("current");
    return li;
  })));
  if (!S.images.length) list.append(el("li", { className: "empty", textContent: "No images yet." }));
  // Thumbnails are made by a background job: look again a few times.
  clearTimeout(S.thumbTimer);
  if (pending && S.thumbTries < 10) {
    S.thumbTries += 1;
    S.thumbTimer = setTimeout(loadImages, 2000);
  } else if (!pending) S.thumbTries = 0;
}

async function decompose(imageId) {
  if (S.busy) return say("Please wait for the current task to finish.");
  setBusy(true);
  try {
    const { data } = await api("POST", `/api/v1/images/${imageId}/decompose`,
      { layers: "auto", mode: "peel" });
    showProgress("Decomposing…", 0);
    say("Decomposition started.");
    const job = await watchJob(data.job_id, (p) => showProgress("Decomposing…", p));
    const docId = job.result && job.result.document_id;
    if (!docId) throw new Error("The decomposition finished without a document.");
    rememberDoc(imageId, docId);
    setBusy(false);
    await openDocument(docId);
    say(`Decomposed into ${S.doc.layers.length} layers.`);
    renderImages();
  } catch (e) { fail(e); } finally { setBusy(false); hideProgress(); }
}

// ---------------------------------------------------------------- 4. jobs
const FINAL = ["succeeded", "failed", "cancelled"];

// Resolves with the finished job, rejects if it failed. SSE first, polling as fallback.
function watchJob(jobId, onProgress) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (job) => {
      if (settled) return;
      settled = true;
      if (job.state === "succeeded") resolve(job);
      const why = job.error && (job.error.message || job.error);
      reject(new Error(why ? `The job failed: ${why}` : `The job was ${job.state}.`));
    };
    const poll = async () => {
      while (!settled) {
        try {
          const { data } = await api("GET", `/api/v1/jobs/${jobId}`);
          if (onProgress) onProgress(data.progress || 0);
          if (FINAL.includes(data.state)) return finish(data);
        } catch (e) { settled = true; return reject(e); }
        await new Promise((r) => setTimeout(r, 1000));
      }
    };
    if (!window.EventSource) return void poll();
    const es = new EventSource(`/api/v1/jobs/${jobId}/events`);
    const parse = (ev) => { try { return JSON.parse(ev.data); } catch (e) { return null; } };
    es.addEventListener("progress", (ev) => {
      const job = parse(ev);
      if (job && onProgress) onProgress(job.progress || 0);
    });
    es.addEventListener("done", (ev) => { es.close(); finish(parse(ev) || { state: "succeeded" }); });
    es.addEventListener("error", (ev) => {
      es.close();
      const job = ev.data ? parse(ev) : null;
      if (job) finish(job); // the job's own `error` event
      else if (!settled) poll(); // the connection failed: poll instead
    });
  });
}

// ---------------------------------------------------------------- 5. document
const layerUrl = (l, doc = S.doc) => `${l.url}?r=${doc.revision}`;
const imageCache = new Map(); // url → Promise<HTMLImageElement>

function loadImage(url) {
  if (!imageCache.has(url)) {
    imageCache.set(url, new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = () => { imageCache.delete(url); reject(new Error("A layer image failed to load.")); };
      img.src = url;
    }));
  }
  return imageCache.get(url);
}

async function openDocument(id) {
  const { data } = await api("GET", `/api/v1/documents/${id}`);
  setDocument(data);
  history.replaceState(null, "", `#doc=${id}`);
}

async function reloadDocument() {
  if (S.doc) setDocument((await api("GET", `/api/v1/documents/${S.doc.id}`)).data);
}

function clearDocument() {
  S.doc = null; S.selected = null;
  $("#doc-body").hidden = true;
  $("#doc-empty").hidden = false;
  $("#layers").replaceChildren();
  $("#layer-props").hidden = true;
  delete $("#document").dataset.revision;
}

function setDocument(doc) {
  const previous = S.doc;
  S.doc = doc;
  if (!doc.layers.some((l) => l.id === S.selected)) {
    // The selected layer went away (removed, merged down): select the one below it, as
    // Photoshop does; a new document starts with the front-most layer.
    const gone = previous && previous.layers.find((l) => l.id === S.selected);
    const z = gone ? Math.max(0, Math.min(gone.z - 1, doc.layers.length - 1)) : doc.layers.length - 1;
    S.selected = doc.layers.length ? doc.layers[z].id : null;
  }
  // Drop cached layer images of older revisions.
  if (previous) for (const k of imageCache.keys()) if (!k.endsWith(`?r=${doc.revision}`)) imageCache.delete(k);
  $("#doc-empty").hidden = true;
  $("#doc-body").hidden = false;
  $("#document").dataset.revision = doc.revision;
  $("#document").dataset.documentId = doc.id;
  $("#doc-meta").textContent = `${doc.width}×${doc.height} · ${doc.layers.length} layers · revision ${doc.revision}`;
  for (const a of document.querySelectorAll("a[data-format]")) {
    a.href = `/api/v1/documents/${doc.id}/export?format=${a.dataset.format}`;
  }
  renderLayers();
  renderProps();
  renderUndo();
  drawPreview();
}

function renderUndo() {
  const d = S.doc;
  // Older servers omit can_undo/can_redo: leave the buttons on and let the server answer.
  $("#undo").disabled = S.busy || !d || d.can_undo === false;
  $("#redo").disabled = S.busy || !d || d.can_redo === false;
}

function renderLayers() {
  const list = $("#layers");
  const front = S.doc.layers.slice().reverse(); // front-most on top, like Photoshop
  keepFocus(list, "layerId", () => list.replaceChildren(...front.map((l) => {
    const vis = el("input", { type: "checkbox", className: "visible", checked: l.visible });
    vis.setAttribute("aria-label", `Show ${l.name}`);
    vis.dataset.layerId = l.id;
    const pick = el("button", { type: "button", className: "pick" },
      el("span", { className: "thumb" }, el("img", { src: layerUrl(l), alt: "" })),
      el("span", { className: "name", textContent: l.name }),
      el("span", { className: "kind", textContent: l.kind }));
    pick.dataset.layerId = l.id;
    pick.setAttribute("aria-pressed", String(l.id === S.selected));
    pick.setAttribute("aria-label", `Select layer ${l.name} (${l.kind}${l.visible ? "" : ", hidden"})`);
    const li = el("li", {}, vis, pick);
    li.dataset.layerId = l.id;
    li.dataset.z = l.z;
    if (l.id === S.selected) li.classList.add("selected");
    if (!l.visible) li.classList.add("hidden-layer");
    return li;
  })));
}

function selectedLayer() {
  return S.doc && S.doc.layers.find((l) => l.id === S.selected);
}

function renderProps() {
  const l = selectedLayer();
  $("#layer-props").hidden = !l;
  if (!l) return;
  const n = S.doc.layers.length;
  $("#props-heading").textContent = `Layer: ${l.name}`;
  $("#layer-name").value = l.name;
  $("#opacity").value = l.opacity;
  $("#opacity-out").textContent = `${Math.round(l.opacity * 100)}%`;
  $("#move-up").disabled = l.z >= n - 1;
  $("#move-down").disabled = l.z <= 0;
  $("#merge-down").disabled = l.z <= 0;
}

// Composite back to front honouring visibility and opacity. A newer draw cancels an older one.
let drawSeq = 0;
async function drawPreview(doc = S.doc) {
  const seq = ++drawSeq;
  const canvas = $("#preview");
  try {
    const layers = doc.layers.filter((l) => l.visible && l.opacity > 0);
    const imgs = await Promise.all(layers.map((l) => loadImage(layerUrl(l, doc))));
    if (seq !== drawSeq) return;
    canvas.width = doc.width;
    canvas.height = doc.height;
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, doc.width, doc.height);
    layers.forEach((l, i) => {
      ctx.globalAlpha = Math.max(0, Math.min(1, l.opacity));
      ctx.drawImage(imgs[i], 0, 0, doc.width, doc.height);
    });
    ctx.globalAlpha = 1;
    canvas.setAttribute("aria-label", `Composite preview of ${layers.length} visible layers`);
  } catch (e) { if (seq === drawSeq) fail(e); }
}

// ---------------------------------------------------------------- 6. edits
function setBusy(on) {
  S.busy = on;
  $("#document").setAttribute("aria-busy", String(on));
  for (const b of document.querySelectorAll("#layer-props button, .decompose")) b.disabled = on;
  if (S.doc) { renderUndo(); if (!on) renderProps(); }
}

// POST /ops (or undo/redo) and bring the page up to date with the answer.
async function send(path, body, doneMessage) {
  if (!S.doc) return;
  if (S.busy) { say("Please wait for the current edit to finish."); if (S.doc) renderLayers(); return; }
  setBusy(true);
  try {
    const { status, data } = await api("POST", `/api/v1/documents/${S.doc.id}/${path}`, body);
    if (status === 202 && data && data.job_id) {
      showProgress("Applying the edit…", 0);
      await watchJob(data.job_id, (p) => showProgress("Applying the edit…", p));
      await reloadDocument();
    } else if (data && data.layers) setDocument(data);
    else await reloadDocument();
    if (doneMessage) say(doneMessage);
  } catch (e) {
    if (e.status === 409) {
      say("The document was changed elsewhere; it has been reloaded. Please try again.", "error");
      await reloadDocument().catch(fail);
    } else {
      fail(e);
      if (S.doc) { renderLayers(); renderProps(); drawPreview(); } // put controls back
    }
  } finally { hideProgress(); setBusy(false); }
}

function applyOp(op, fields, doneMessage) {
  const l = selectedLayer();
  const layerId = fields.layer_id || (l && l.id);
  if (!S.doc || !layerId) return Promise.resolve();
  return send("ops", { op, layer_id: layerId, revision: S.doc.revision, ...fields }, doneMessage);
}

const undo = () => send("undo", undefined, "Undone.");
const redo = () => send("redo", undefined, "Redone.");

function layerById(id) { return S.doc.layers.find((l) => l.id === id); }

async function replaceLayer() {
  const file = $("#replace-input").files[0];
  const l = selectedLayer();
  if (!file) return say("Choose an image to replace the layer with.", "error");
  if (!l || S.busy) return;
  say(`Uploading ${file.name}…`);
  let img;
  try { img = await uploadFile(file); } catch (e) { return fail(e); }
  await applyOp("replace", {
    layer_id: l.id, image_id: img.id, fit: $("#replace-fit").value,
    harmonize: Number($("#harmonize").value),
  }, `Replaced ${l.name}.`);
  $("#replace-input").value = "";
}

// ---------------------------------------------------------------- 7. wiring
function wire() {
  $("#login-form").addEventListener("submit", login);
  $("#logout").addEventListener("click", logout);

  $("#upload-input").addEventListener("change", (ev) => {
    const files = Array.from(ev.target.files);
    ev.target.value = "";
    uploadFiles(files);
  });
  const drop = $("#images-panel");
  drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("dragging"); });
  drop.addEventListener("dragleave", (ev) => {
    if (!drop.contains(ev.relatedTarget)) drop.classList.remove("dragging");
  });
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("dragging");
    const files = Array.from(ev.dataTransfer.files).filter((f) => f.type.startsWith("image/"));
    if (files.length) uploadFiles(files); else say("Drop image files to upload them.", "error");
  });

  $("#images").addEventListener("click", (ev) => {
    const b = ev.target.closest("button");
    if (!b) return;
    if (b.classList.contains("decompose")) decompose(b.dataset.imageId);
    else if (b.classList.contains("open")) {
      openDocument(b.dataset.documentId).then(renderImages).catch((e) => {
        if (e.status === 404) say("That document no longer exists (it may have expired).", "error");
        else fail(e);
      });
    }
  });

  $("#layers").addEventListener("change", (ev) => {
    if (!ev.target.classList.contains("visible")) return;
    const l = layerById(ev.target.dataset.layerId);
    applyOp("transform", { layer_id: l.id, visible: ev.target.checked },
      `${l.name} ${ev.target.checked ? "shown" : "hidden"}.`);
  });
  $("#layers").addEventListener("click", (ev) => {
    const b = ev.target.closest("button.pick");
    if (!b) return;
    S.selected = b.dataset.layerId;
    renderLayers();
    renderProps();
  });

  window.addEventListener("hashchange", openFromHash);
  $("#undo").addEventListener("click", undo);
  $("#redo").addEventListener("click", redo);
  document.addEventListener("keydown", (ev) => {
    if (!(ev.ctrlKey || ev.metaKey) || !S.doc || $("#studio").hidden) return;
    const t = ev.target;
    if (t.matches("input[type=text], input[type=email], input[type=password], textarea")) return;
    const k = ev.key.toLowerCase();
    if (k === "z" && !ev.shiftKey) { ev.preventDefault(); if (!$("#undo").disabled) undo(); }
    else if ((k === "z" && ev.shiftKey) || k === "y") { ev.preventDefault(); if (!$("#redo").disabled) redo(); }
  });

  $("#rename-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = $("#layer-name").value.trim();
    if (name) applyOp("rename", { name }, `Renamed to ${name}.`);
  });
  // Opacity: preview live while dragging, send one op when released.
  $("#opacity").addEventListener("input", (ev) => {
    const l = selectedLayer();
    if (!l) return;
    const v = Number(ev.target.value);
    $("#opacity-out").textContent = `${Math.round(v * 100)}%`;
    drawPreviewWith(l.id, v);
  });
  $("#opacity").addEventListener("change", (ev) => {
    applyOp("transform", { opacity: Number(ev.target.value) }, "Opacity set.");
  });
  $("#move-up").addEventListener("click", () => {
    const l = selectedLayer();
    if (l) applyOp("reorder", { z: l.z + 1 }, `Moved ${l.name} up.`);
  });
  $("#move-down").addEventListener("click", () => {
    const l = selectedLayer();
    if (l) applyOp("reorder", { z: l.z - 1 }, `Moved ${l.name} down.`);
  });
  $("#merge-down").addEventListener("click", () => {
    const l = selectedLayer();
    if (l) applyOp("merge", {}, `Merged ${l.name} down.`);
  });
  $("#remove").addEventListener("click", () => {
    const l = selectedLayer();
    if (l) applyOp("remove", {}, `Removed ${l.name}.`);
  });
  $("#recolor-apply").addEventListener("click", () => {
    applyOp("recolor", { color: $("#recolor-color").value }, "Recoloured.");
  });
  const outputs = {
    hue: (v) => `${v}°`, sat: (v) => `×${v}`, light: (v) => (v > 0 ? `+${v}` : `${v}`),
    harmonize: (v) => `${v}`,
  };
  for (const [id, fmt] of Object.entries(outputs)) {
    $(`#${id}`).addEventListener("input", (ev) => { $(`#${id}-out`).textContent = fmt(ev.target.value); });
  }
  $("#hsl-apply").addEventListener("click", () => {
    applyOp("recolor", {
      hue_shift: Number($("#hue").value), saturation: Number($("#sat").value),
      lightness: Number($("#light").value),
    }, "Hue, saturation and lightness shifted.");
  });
  $("#replace-apply").addEventListener("click", replaceLayer);
}

// Live opacity preview: draw with one layer's opacity overridden, without touching S.doc.
function drawPreviewWith(layerId, opacity) {
  const d = S.doc;
  drawPreview({ ...d, layers: d.layers.map((l) => (l.id === layerId ? { ...l, opacity } : l)) });
}

wire();
boot();
