// image-layered studio page. Plain JavaScript, no build step, no framework.
//
// Structure, top to bottom:
//   1. helpers   — $(), the `api()` fetch wrapper (JSON errors → ApiError), say() for the
//                  aria-live #status region, the shared #progress bar.
//   2. account   — sign in / who am I / sign out; toggles #signed-out and #studio; the links
//                  mails carry (/verify?token=…, /reset?token=…) are handled at boot.
//   2b. members  — sign-up, "forgot password", the persistent #notice, the privacy-policy
//                  banner, and the account page (#account-page: profile, consents, export
//                  my data, password and sessions, account deletion with its receipt).
//   3. images    — upload (file input + drag-and-drop), the #images list, Decompose/Open;
//                  the #documents list (GET /documents, newest first) and .psd/.ora import.
//   4. jobs      — watchJob(): Server-Sent Events with a polling fallback.
//   5. document  — open/render a document: #layers panel (front-most first), the #preview
//                  canvas composited client-side back to front, export links, undo/redo
//                  (their titles name the op they would step: undo_op / redo_op).
//   6. edits     — applyOp(): every edit carries the current revision; 200 → new document,
//                  202 → watch the job (split, inpaint) then reload, 409 → reload and say so.
//   7. brush     — "Erase / fill with brush": pointer strokes on #brush-canvas (laid over the
//                  preview, document-sized), exported as a white-on-black PNG mask, uploaded,
//                  then an `inpaint` op. Pointer only by nature; Esc leaves brush mode.
//   8. wiring    — event listeners and keyboard shortcuts, then boot().
// State lives in `S`; rendering always starts from the last document the server returned.
"use strict";

const S = {
  me: null, doc: null, selected: null, busy: false,
  images: [], docs: [], docOf: {}, thumbTries: 0, thumbTimer: 0,
  resetToken: null, // from a /reset?token=… link, until the new password is set
};

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
  el.classList.remove("quiet");
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
// The links in mails open the studio page at /verify?token=… and /reset?token=… (see
// web/templates/mail and src/mail): the token is used once and then dropped from the address.
async function boot() {
  loadSignupInfo();
  const route = location.pathname.replace(/\/+$/, "");
  const params = new URLSearchParams(location.search);
  const token = params.get("token");
  // an invite link from the admin console (/?invite=…) fills in the sign-up form
  if (params.get("invite")) {
    $("#signup-invite").value = params.get("invite");
    history.replaceState(null, "", "/");
  }
  if (route === "/reset" && token) {
    S.resetToken = token;
    showSignedOut({ view: "reset" });
    return;
  }
  if (route === "/verify" && token) await verifyFromLink(token);
  else if (route === "/verify" || route === "/reset") {
    notice("This link has no token in it; please open the whole link from the mail.", "error");
    history.replaceState(null, "", "/");
  }
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
  renderWhoami();
  $("#account").hidden = false;
  $("#signed-out").hidden = true;
  $("#studio").hidden = !$("#account-page").hidden;
  renderPolicy(me.policy);
  if (me.must_change_password) {
    // a one-time password: nothing else works until a new one is chosen
    openAccount();
    notice("You signed in with a one-time password. Choose a new password to continue.");
    $("#current-password").focus();
    return;
  }
  loadImages();
  openFromHash();
}

function renderWhoami() {
  const me = S.me;
  $("#whoami").textContent = `Signed in as ${me.name || me.email} (${me.email})`;
  for (const u of document.querySelectorAll(".username-for-pm")) u.value = me.email;
}

// `#doc=<id>` in the address opens that document (and survives a reload).
function openFromHash() {
  const m = /doc=([\w-]+)/.exec(location.hash);
  if (m && S.me && (!S.doc || S.doc.id !== m[1])) openDocument(m[1]).catch(fail);
}

// The signed-out screen: sign in and sign up, or (`view`) the form a reset link asks for, or
// the receipt of an account just deleted.
function showSignedOut({ view = "login", receipt = null } = {}) {
  S.me = null;
  clearDocument();
  closeAccount(false);
  renderPolicy(null);
  $("#account").hidden = true;
  $("#studio").hidden = true;
  $("#signed-out").hidden = false;
  $("#reset-section").hidden = view !== "reset";
  // a reset link asks for one thing only
  $("#login-section").hidden = view === "reset";
  $("#signup-section").hidden = view === "reset";
  $("#receipt-section").hidden = view !== "receipt";
  for (const f of document.querySelectorAll("#account-page form")) f.reset();
  $("#export-result").hidden = true;
  if (view === "receipt" && receipt) {
    $("#receipt-id").textContent = receipt.id;
    $("#receipt-email").textContent = receipt.email;
    $("#receipt-requested").textContent = fmtDate(receipt.requested_at);
    $("#receipt-purge").textContent = fmtDate(receipt.purge_by);
    $("#receipt-section").focus();
  } else if (view === "reset") $("#reset-password").focus();
  else $("#email").focus();
}

async function login(ev) {
  ev.preventDefault();
  const email = $("#email").value.trim();
  const password = $("#password").value;
  try {
    const { data } = await api("POST", "/api/v1/auth/login", { email, password });
    $("#password").value = "";
    // /me carries the policy state the banner needs; the login answer does not
    const me = data && data.policy ? data : (await api("GET", "/api/v1/me")).data;
    hideNotice();
    $("#receipt-section").hidden = true;
    showSignedIn(me);
    say(`Welcome, ${me.name || me.email}.`);
  } catch (e) {
    say(e.status === 401 ? "Wrong email or password." : e.message, "error");
  }
}

async function logout() {
  try { await api("POST", "/api/v1/auth/logout"); } catch (e) { /* signed out anyway */ }
  hideNotice();
  showSignedOut();
  history.replaceState(null, "", location.pathname);
  say("Signed out.");
}

// ---------------------------------------------------------------- 2b. members
const CONSENT_LABELS = { training: "Training", analytics: "Analytics", marketing: "Marketing" };

// A date from the API: RFC 3339 text or unix seconds.
function fmtDate(v) {
  if (v == null || v === "") return "";
  const d = typeof v === "number" ? new Date(v * 1000) : new Date(v);
  return Number.isNaN(d.getTime()) ? String(v) : d.toLocaleString();
}

// #notice keeps a message on screen until dismissed (#status, which also announces it,
// clears itself after a few seconds).
function notice(message, kind) {
  $("#notice-text").textContent = message;
  $("#notice").dataset.kind = kind || "info";
  $("#notice").hidden = false;
  say(message, kind);
  $("#status").classList.add("quiet"); // announced there, shown here: not twice on screen
}
function hideNotice() { $("#notice").hidden = true; }

// Whether sign-up is open and from what age. `GET /api/v1/policy` may name them (`min_age`,
// `registration`); otherwise the age is read from the privacy page, which states it, and the
// invite field is offered as optional until the server asks for one.
async function loadSignupInfo() {
  let info = {};
  try { info = (await api("GET", "/api/v1/policy")).data || {}; } catch (e) { /* defaults */ }
  let minAge = info.min_age;
  if (minAge == null) {
    try {
      const text = await (await fetch("/privacy", { credentials: "same-origin" })).text();
      const m = /at least (\d+)/.exec(text);
      if (m) minAge = Number(m[1]);
    } catch (e) { /* keep the default */ }
  }
  if (minAge != null) $("#min-age").textContent = String(minAge);
  setRegistration(info.registration);
}

function setRegistration(mode) {
  const closed = mode === "closed";
  $("#signup-form").hidden = closed;
  $("#signup-closed").hidden = !closed;
  $("#signup-invite-row").hidden = mode === "open";
  $("#signup-invite").required = mode === "invite";
  $("#signup-invite-hint").textContent = mode === "invite"
    ? "(required: sign-up is by invitation)" : "(if you were given one)";
}

async function signup(ev) {
  ev.preventDefault();
  const email = $("#signup-email").value.trim();
  const name = $("#signup-name").value.trim();
  const body = {
    email, name, password: $("#signup-password").value, age_confirmed: $("#signup-age").checked,
  };
  const invite = $("#signup-invite").value.trim();
  if (invite) body.invite = invite;
  const button = $("#signup-submit");
  button.disabled = true;
  try {
    await api("POST", "/api/v1/auth/register", body);
    $("#signup-form").reset();
    $("#email").value = email;
    notice(`Welcome, ${name}! We sent a link to ${email}: open it to confirm your address. `
      + "You can sign in already.");
    $("#notice-text").focus();
  } catch (e) {
    if (e.code === "age_required") { say(e.message, "error"); $("#signup-age").focus(); }
    else if (e.code === "invite_required") {
      setRegistration("invite");
      say("Sign-up on this studio is by invitation: enter the invite code you were given.", "error");
      $("#signup-invite").focus();
    } else if (e.code === "registration_closed") { setRegistration("closed"); say(e.message, "error"); }
    else if (e.status === 409) {
      say(`An account with ${email} exists already: sign in, or use “Forgot password?”.`, "error");
      $("#signup-email").focus();
    } else fail(e);
  } finally { button.disabled = false; }
}

function toggleForgot() {
  const form = $("#forgot-form");
  form.hidden = !form.hidden;
  $("#forgot-toggle").setAttribute("aria-expanded", String(!form.hidden));
  if (!form.hidden) {
    if (!$("#forgot-email").value) $("#forgot-email").value = $("#email").value;
    $("#forgot-email").focus();
  }
}

async function forgotPassword(ev) {
  ev.preventDefault();
  const email = $("#forgot-email").value.trim();
  try {
    await api("POST", "/api/v1/auth/password-reset", { email });
    $("#forgot-form").hidden = true;
    $("#forgot-toggle").setAttribute("aria-expanded", "false");
    notice(`If ${email} has an account, we mailed it a link to choose a new password.`);
  } catch (e) { fail(e); }
}

async function resetPassword(ev) {
  ev.preventDefault();
  const password = $("#reset-password").value;
  if (password !== $("#reset-password2").value) {
    say("The two passwords differ; please type the same one twice.", "error");
    $("#reset-password2").focus();
    return;
  }
  try {
    await api("POST", "/api/v1/auth/password-reset/confirm", { token: S.resetToken, password });
    S.resetToken = null;
    $("#reset-form").reset();
    history.replaceState(null, "", "/");
    showSignedOut();
    notice("Your new password is set, and every session was signed out. Sign in with it.");
  } catch (e) {
    if (e.code === "invalid_token") {
      S.resetToken = null;
      history.replaceState(null, "", "/");
      showSignedOut();
      notice(`${BAD_LINK} Ask for a new one with “Forgot password?”.`, "error");
    } else say(e.message, "error"); // a too-short password: the form stays
  }
}

const BAD_LINK = "This link is not valid any more: it was used already, it expired, or it was mistyped.";

// A verification link: confirms the address of a new account, or a member's new address.
async function verifyFromLink(token) {
  try {
    const { data } = await api("POST", "/api/v1/auth/verify", { token });
    notice(`Thank you: your email address ${data && data.email ? data.email + " " : ""}is confirmed.`);
  } catch (e) {
    notice(e.code === "invalid_token" ? `${BAD_LINK} Your address is not confirmed.`
      : `The address could not be confirmed: ${e.message}`, "error");
  }
  history.replaceState(null, "", "/");
}

// The version a member is asked to accept: a newer one waiting, else the one in effect if
// they accepted an older one; null when there is nothing to accept.
function policyToAccept(p) {
  if (!p) return null;
  if (p.pending) return p.pending.version;
  return p.accepted < p.current ? p.current : null;
}

function renderPolicy(p) {
  const version = policyToAccept(p);
  const banner = $("#policy-banner");
  banner.hidden = version == null;
  if (version == null) return;
  banner.dataset.version = version;
  const when = p.pending && p.pending.effective_at ? new Date(p.pending.effective_at) : null;
  $("#policy-banner-text").textContent = when && when > new Date()
    ? `Version ${version} of the privacy policy takes effect on ${when.toLocaleDateString()}. `
      + "Please read what changes and accept it."
    : `The privacy policy has changed (version ${version}). Please read it and accept it.`;
  $("#policy-accept").setAttribute("aria-label", `Accept version ${version} of the privacy policy`);
}

async function acceptPolicy() {
  const version = Number($("#policy-banner").dataset.version);
  const button = $("#policy-accept");
  button.disabled = true;
  try {
    const { data } = await api("POST", "/api/v1/me/policy/accept", { version });
    if (S.me) S.me.policy = data.policy;
    renderPolicy(data.policy);
    say(`Thank you: you accepted version ${version} of the privacy policy.`);
    // the banner (and the focused button) went away: continue where the page's work is
    ($("#account-page").hidden ? $("#document") : $("#account-heading")).focus();
  } catch (e) { fail(e); } finally { button.disabled = false; }
}

// -- the account page
function openAccount() {
  if (!S.me) return;
  hideNotice();
  $("#studio").hidden = true;
  $("#account-page").hidden = false;
  $("#account-open").setAttribute("aria-expanded", "true");
  renderProfile(S.me);
  $("#account-heading").focus();
  api("GET", "/api/v1/me").then(({ data }) => {
    S.me = data; renderWhoami(); renderProfile(data); renderPolicy(data.policy);
  }).catch(fail);
  if (!S.me.must_change_password) loadConsents();
}

function closeAccount(focus = true) {
  const page = $("#account-page");
  if (page.hidden) return;
  page.hidden = true;
  $("#account-open").setAttribute("aria-expanded", "false");
  if (S.me) $("#studio").hidden = false;
  if (focus) $("#account-open").focus();
}

function renderProfile(me) {
  $("#profile-name").value = me.name || "";
  $("#profile-email").value = me.email;
  const pending = $("#profile-pending");
  pending.hidden = !me.pending_email;
  pending.textContent = me.pending_email
    ? `Waiting for confirmation: ${me.pending_email}. Open the link we mailed to it to make it your address.`
    : "";
  const plan = me.plan ? `Plan: ${me.plan}` : "";
  const verified = me.verified === false
    ? "your email address is not confirmed yet (open the link we mailed you)"
    : "email address confirmed";
  $("#profile-meta").textContent = [plan, verified].filter(Boolean).join(" · ");
}

async function saveProfile(ev) {
  ev.preventDefault();
  const name = $("#profile-name").value.trim();
  const email = $("#profile-email").value.trim();
  const body = {};
  if (name !== (S.me.name || "")) body.name = name;
  if (email.toLowerCase() !== S.me.email.toLowerCase()) body.email = email;
  if (!Object.keys(body).length) return say("Nothing to change.");
  const button = $("#profile-save");
  button.disabled = true;
  try {
    const { data } = await api("PATCH", "/api/v1/me", body);
    const me = data && data.email ? data : (await api("GET", "/api/v1/me")).data;
    S.me = me;
    renderWhoami();
    renderProfile(me);
    say(body.email
      ? `We mailed a link to ${body.email}; your address changes when you open it.`
      : "Profile saved.");
  } catch (e) {
    if (e.status === 409) say(`${email} belongs to another account already.`, "error");
    else fail(e);
  } finally { button.disabled = false; }
}

async function loadConsents() {
  try { renderConsents((await api("GET", "/api/v1/me/consents")).data); } catch (e) { fail(e); }
}

function renderConsents(c) {
  for (const box of document.querySelectorAll("#consents input[data-kind]")) {
    box.checked = Boolean(c[box.dataset.kind]);
  }
  const rows = (c.history || []).slice().reverse().map((h) => {
    const tr = el("tr", {},
      el("td", { textContent: CONSENT_LABELS[h.kind] || h.kind }),
      el("td", { textContent: h.value ? "on" : "off" }),
      el("td", {}, el("time", { dateTime: h.at, textContent: fmtDate(h.at) })),
      el("td", { textContent: h.policy_version != null ? `version ${h.policy_version}` : "" }));
    tr.dataset.kind = h.kind;
    tr.dataset.value = String(h.value);
    return tr;
  });
  if (!rows.length) {
    rows.push(el("tr", { className: "empty" },
      el("td", { colSpan: 4, textContent: "No changes yet: everything is off until you turn it on." })));
  }
  $("#consent-history-rows").replaceChildren(...rows);
}

async function changeConsent(ev) {
  const box = ev.target;
  const kind = box.dataset.kind;
  if (!kind) return;
  const on = box.checked;
  box.disabled = true;
  try {
    const { data } = await api("PUT", "/api/v1/me/consents", { [kind]: on });
    renderConsents(data);
    say(`${CONSENT_LABELS[kind]} ${on ? "allowed" : "turned off"}; saved.`);
  } catch (e) {
    box.checked = !on;
    fail(e);
  } finally { box.disabled = false; }
}

// Export my data: a job like the others; its result names the ZIP's address and expiry.
async function startExport() {
  const button = $("#export-start");
  button.disabled = true;
  $("#export-result").hidden = true;
  const progress = $("#export-progress");
  progress.removeAttribute("value");
  $("#export-job").hidden = false;
  say("Preparing your export…");
  try {
    const { data } = await api("POST", "/api/v1/me/export");
    const job = await watchJob(data.job_id, (p) => { progress.value = p; });
    const r = job.result || {};
    if (!r.download) throw new Error("The export finished without a download link.");
    const link = $("#export-link");
    link.href = r.download;
    link.setAttribute("download", "my-data.zip");
    $("#export-expires").textContent = r.expires_at
      ? `The link works until ${fmtDate(r.expires_at)}.` : "";
    $("#export-result").hidden = false;
    say("Your export is ready to download.");
    link.focus();
  } catch (e) {
    if (e.status === 404 || e.status === 405) say("Exporting your data is not available on this studio yet.", "error");
    else fail(e);
  } finally { $("#export-job").hidden = true; button.disabled = false; }
}

async function changePassword(ev) {
  ev.preventDefault();
  const body = {
    current_password: $("#current-password").value, new_password: $("#new-password").value,
  };
  const button = $("#password-save");
  button.disabled = true;
  try {
    await api("POST", "/api/v1/me/password", body);
    $("#password-form").reset();
    if (S.me.must_change_password) {
      hideNotice();
      const { data } = await api("GET", "/api/v1/me");
      closeAccount(false);
      showSignedIn(data);
      say("Password changed. Welcome to the studio.");
      return;
    }
    renderWhoami();
    say("Password changed; every other session was signed out.");
  } catch (e) {
    if (e.code === "wrong_password") { say("The current password is wrong.", "error"); $("#current-password").focus(); }
    else fail(e);
  } finally { button.disabled = false; }
}

async function logoutEverywhere() {
  try {
    await api("POST", "/api/v1/auth/logout-all");
    showSignedOut();
    notice("You were signed out everywhere: in every browser and app.");
  } catch (e) { fail(e); }
}

async function deleteAccount(ev) {
  ev.preventDefault();
  if (!$("#delete-confirm").checked) return say("Tick the box to confirm the deletion.", "error");
  const button = $("#delete-submit");
  button.disabled = true;
  try {
    const { data } = await api("DELETE", "/api/v1/me", { password: $("#delete-password").value });
    history.replaceState(null, "", "/");
    showSignedOut({ view: "receipt", receipt: data.receipt });
    say("Your account is deleted.");
  } catch (e) {
    if (e.code === "wrong_password") { say("The password is wrong; nothing was deleted.", "error"); $("#delete-password").focus(); }
    else fail(e);
  } finally { button.disabled = false; }
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
    S.docs = docs.data.documents || [];
    S.docOf = {};
    for (const d of S.docs) if (!S.docOf[d.image_id]) S.docOf[d.image_id] = d.id;
    renderImages();
  } catch (e) { fail(e); }
}

function renderImages() {
  const list = $("#images");
  const docs = knownDocs();
  let pending = false;
  renderDocuments(); // document entries borrow the images' thumbnails
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
    loadImages(); // the new document joins #documents
  } catch (e) { fail(e); } finally { setBusy(false); hideProgress(); }
}

const MODES = { peel: "decomposed", palette: "palette", "import-psd": "from PSD", "import-ora": "from OpenRaster" };

function renderDocuments() {
  const list = $("#documents");
  const thumbs = Object.fromEntries(S.images.map((i) => [i.id, i.thumbnail_url]));
  keepFocus(list, "documentId", () => list.replaceChildren(...S.docs.map((d) => {
    const mode = MODES[d.mode] || d.mode || "document";
    const when = new Date(d.created_at);
    const thumb = el("div", { className: "thumb" });
    if (thumbs[d.image_id]) {
      const t = el("img", { src: thumbs[d.image_id], alt: "", loading: "lazy" });
      t.addEventListener("error", () => t.remove());
      thumb.append(t);
    }
    const open = el("button", { type: "button", className: "open-doc", textContent: "Open" });
    open.dataset.documentId = d.id;
    open.setAttribute("aria-label", `Open document ${d.width}×${d.height}, ${d.layers} layers, ${
      mode}, created ${when.toLocaleString()}`);
    const li = el("li", {}, thumb,
      el("span", { className: "info", textContent: `${d.width}×${d.height} · ${d.layers} layers` }),
      el("span", { className: "info", textContent: `${mode} · ${
        when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}` }),
      open);
    li.dataset.documentId = d.id;
    if (S.doc && S.doc.id === d.id) { li.classList.add("current"); open.setAttribute("aria-current", "true"); }
    return li;
  })));
  if (!S.docs.length) list.append(el("li", { className: "empty", textContent: "No documents yet." }));
}

// A layered file (.psd or .ora) becomes a new document: POST /documents, raw body → 201 doc.
async function importDocument(file) {
  if (S.busy) return say("Please wait for the current task to finish.");
  setBusy(true);
  showProgress(`Importing ${file.name}…`, null);
  say(`Importing ${file.name}…`);
  try {
    const body = new Blob([file], { type: "application/octet-stream" });
    const { data } = await api("POST", "/api/v1/documents", body);
    setBusy(false);
    setDocument(data);
    history.replaceState(null, "", `#doc=${data.id}`);
    say(`Imported ${file.name}: ${data.layers.length} layers.`);
    await loadImages();
  } catch (e) { fail(e); } finally { setBusy(false); hideProgress(); }
}

function openDocumentFromList(id) {
  if (S.busy) return say("Please wait for the current task to finish.");
  openDocument(id).then(renderImages).catch((e) => {
    if (e.status === 404) say("That document no longer exists (it may have expired).", "error");
    else fail(e);
  });
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
  stopBrush();
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
  // The mask belongs to one document at one size.
  if (previous && (previous.id !== doc.id || previous.width !== doc.width
    || previous.height !== doc.height)) stopBrush();
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
  // Keep the #documents entry in step with what the server just said.
  const entry = S.docs.find((d) => d.id === doc.id);
  if (entry) Object.assign(entry, { revision: doc.revision, layers: doc.layers.length });
  renderLayers();
  renderProps();
  renderUndo();
  renderDocuments();
  drawPreview();
}

function renderUndo() {
  const d = S.doc;
  // Older servers omit can_undo/can_redo: leave the buttons on and let the server answer.
  $("#undo").disabled = S.busy || !d || d.can_undo === false;
  $("#redo").disabled = S.busy || !d || d.can_redo === false;
  // Name the op a click would step (undo_op / redo_op), e.g. "Undo recolor".
  const title = (verb, op, can, keys) => (op ? `${verb} ${op} (${keys})`
    : can === false ? `Nothing to ${verb.toLowerCase()}` : `${verb} (${keys})`);
  $("#undo").title = title("Undo", d && d.undo_op, d && d.can_undo, "Ctrl+Z");
  $("#redo").title = title("Redo", d && d.redo_op, d && d.can_redo, "Ctrl+Shift+Z");
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
  renderBrush();
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
  if (S.doc) { renderUndo(); renderBrush(); if (!on) renderProps(); }
}

// What #progress says while a slow (202) op runs.
const WORKING = { split: "Splitting the layer…", inpaint: "Filling the brushed area…" };

// POST /ops (or undo/redo) and bring the page up to date with the answer. `doneMessage` is
// a string, or a function of (document before, document after). Resolves true on success.
async function send(path, body, doneMessage) {
  if (!S.doc) return false;
  if (S.busy) { say("Please wait for the current edit to finish."); if (S.doc) renderLayers(); return false; }
  setBusy(true);
  const before = S.doc;
  try {
    const { status, data } = await api("POST", `/api/v1/documents/${S.doc.id}/${path}`, body);
    if (status === 202 && data && data.job_id) {
      const label = (body && WORKING[body.op]) || "Applying the edit…";
      showProgress(label, 0);
      say(label);
      await watchJob(data.job_id, (p) => showProgress(label, p));
      await reloadDocument();
    } else if (data && data.layers) setDocument(data);
    else await reloadDocument();
    const msg = typeof doneMessage === "function" ? doneMessage(before, S.doc) : doneMessage;
    if (msg) say(msg);
    return true;
  } catch (e) {
    if (e.status === 409) {
      say("The document was changed elsewhere; it has been reloaded. Please try again.", "error");
      await reloadDocument().catch(fail);
    } else {
      fail(e);
      if (S.doc) { renderLayers(); renderProps(); drawPreview(); } // put controls back
    }
    return false;
  } finally { hideProgress(); setBusy(false); }
}

function applyOp(op, fields, doneMessage) {
  const l = selectedLayer();
  const layerId = fields.layer_id || (l && l.id);
  if (!S.doc || !layerId) return Promise.resolve(false);
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

function splitLayer() {
  const l = selectedLayer();
  if (!l) return;
  applyOp("split", { layer_id: l.id, layers: "auto" }, (before, after) => {
    const added = after.layers.length - before.layers.length;
    return added > 0 ? `Split ${l.name} into ${added + 1} layers.`
      : `${l.name} has no separate parts to split off.`;
  });
}

// ---------------------------------------------------------------- 7. brush
// #brush-canvas has the document's pixel size and the preview's CSS size; strokes are drawn in
// opaque red (the element's CSS opacity makes them see-through) and become white-on-black in
// maskBlob(). The brush size is in screen pixels, so it looks the same at any zoom.
const brush = { on: false, painted: false, drawing: false, last: null };
const BRUSH_INK = "#d000ff"; // magenta: visible over reds, skin and foliage alike

function renderBrush() {
  const on = brush.on;
  const l = selectedLayer();
  $("#brush-layer").textContent = l ? `the selected layer (${l.name})` : "the selected layer";
  $("#brush-toggle").setAttribute("aria-pressed", String(on));
  $("#brush-toggle").disabled = S.busy || !l;
  $("#brush-fill").disabled = S.busy || !on || !brush.painted;
  $("#brush-clear").disabled = S.busy || !on || !brush.painted;
  $("#brush-canvas").hidden = !on;
  $("#canvas-stack").classList.toggle("brushing", on);
  if (!on) $("#brush-cursor").hidden = true;
}

function startBrush() {
  if (!S.doc || !selectedLayer()) return;
  const c = $("#brush-canvas");
  if (c.width !== S.doc.width || c.height !== S.doc.height) {
    c.width = S.doc.width; // resizing also clears it
    c.height = S.doc.height;
    brush.painted = false;
  }
  brush.on = true;
  renderBrush();
  say("Brush on: paint over the area to fill on the preview, then press Fill. Esc leaves the brush.");
}

function stopBrush(message) {
  if (!brush.on && !brush.painted) return;
  brush.on = false;
  brush.drawing = false;
  clearMask();
  if (message) say(message);
}

function clearMask() {
  const c = $("#brush-canvas");
  c.getContext("2d").clearRect(0, 0, c.width, c.height);
  brush.painted = false;
  renderBrush();
}

// Pointer position in document pixels, and the document pixels per screen pixel.
function brushPoint(ev) {
  const c = $("#brush-canvas");
  const r = c.getBoundingClientRect();
  const k = c.width / r.width;
  return { x: (ev.clientX - r.left) * k, y: (ev.clientY - r.top) * (c.height / r.height), k };
}

function paint(from, to) {
  const ctx = $("#brush-canvas").getContext("2d");
  const width = Number($("#brush-size").value) * to.k;
  ctx.fillStyle = ctx.strokeStyle = BRUSH_INK;
  if (!from) { // a dab
    ctx.beginPath();
    ctx.arc(to.x, to.y, width / 2, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  ctx.lineWidth = width;
  ctx.lineCap = ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(from.x, from.y);
  ctx.lineTo(to.x, to.y);
  ctx.stroke();
}

// The ring that shows the brush under the pointer (positioned through the CSSOM: CSP-safe).
function moveCursor(ev) {
  const cur = $("#brush-cursor");
  const box = $("#canvas-stack").getBoundingClientRect();
  const size = Number($("#brush-size").value);
  cur.hidden = false;
  cur.style.width = cur.style.height = `${size}px`;
  cur.style.transform = `translate(${ev.clientX - box.left - size / 2}px, ${ev.clientY - box.top - size / 2}px)`;
}

function wireBrush() {
  const c = $("#brush-canvas");
  c.addEventListener("pointerdown", (ev) => {
    if (!brush.on || S.busy || (ev.pointerType === "mouse" && ev.button !== 0)) return;
    ev.preventDefault();
    c.setPointerCapture(ev.pointerId);
    brush.drawing = true;
    brush.last = brushPoint(ev);
    paint(null, brush.last);
    if (!brush.painted) { brush.painted = true; renderBrush(); }
  });
  c.addEventListener("pointermove", (ev) => {
    moveCursor(ev);
    if (!brush.drawing) return;
    const events = (ev.getCoalescedEvents && ev.getCoalescedEvents()) || [];
    for (const e of events.length ? events : [ev]) {
      const p = brushPoint(e);
      paint(brush.last, p);
      brush.last = p;
    }
  });
  const end = () => { brush.drawing = false; brush.last = null; };
  c.addEventListener("pointerup", end);
  c.addEventListener("pointercancel", end);
  c.addEventListener("pointerleave", () => { $("#brush-cursor").hidden = true; });

  $("#brush-toggle").addEventListener("click", () => {
    if (brush.on) stopBrush("Brush off; the mask was discarded.");
    else startBrush();
  });
  $("#brush-clear").addEventListener("click", () => { clearMask(); say("Mask cleared."); });
  $("#brush-fill").addEventListener("click", fillBrush);
  $("#brush-size").addEventListener("input", (ev) => {
    $("#brush-size-out").textContent = `${ev.target.value} px`;
  });
}

// Painted → white, everything else → opaque black: the mask `inpaint` expects.
function maskBlob() {
  const src = $("#brush-canvas");
  const m = el("canvas", { width: src.width, height: src.height });
  const ctx = m.getContext("2d");
  ctx.drawImage(src, 0, 0);
  ctx.globalCompositeOperation = "source-in";
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, m.width, m.height);
  ctx.globalCompositeOperation = "destination-over";
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, m.width, m.height);
  return new Promise((resolve, reject) => m.toBlob(
    (b) => (b ? resolve(b) : reject(new Error("The mask could not be made into a PNG."))), "image/png"));
}

async function fillBrush() {
  const l = selectedLayer();
  if (!brush.on || !brush.painted || !l || S.busy) return;
  let mask;
  setBusy(true); // no second click while the mask uploads
  try {
    say("Uploading the mask…");
    mask = await uploadFile(await maskBlob());
  } catch (e) { return fail(e); } finally { setBusy(false); }
  const ok = await applyOp("inpaint", { layer_id: l.id, mask_image_id: mask.id },
    `Filled the brushed area of ${l.name}.`);
  // The mask was only a means: don't leave it among the member's images.
  api("DELETE", `/api/v1/images/${mask.id}`).catch(() => {});
  if (ok) stopBrush();
}

// ---------------------------------------------------------------- 8. wiring
function wire() {
  $("#login-form").addEventListener("submit", login);
  $("#logout").addEventListener("click", logout);
  $("#signup-form").addEventListener("submit", signup);
  $("#forgot-toggle").addEventListener("click", toggleForgot);
  $("#forgot-form").addEventListener("submit", forgotPassword);
  $("#reset-form").addEventListener("submit", resetPassword);
  $("#notice-close").addEventListener("click", hideNotice);
  $("#policy-accept").addEventListener("click", acceptPolicy);
  $("#account-open").addEventListener("click", () => {
    if ($("#account-page").hidden) openAccount(); else closeAccount();
  });
  $("#account-close").addEventListener("click", () => closeAccount());
  $("#profile-form").addEventListener("submit", saveProfile);
  $("#consents").addEventListener("change", changeConsent);
  $("#export-start").addEventListener("click", startExport);
  $("#password-form").addEventListener("submit", changePassword);
  $("#logout-all").addEventListener("click", logoutEverywhere);
  $("#delete-form").addEventListener("submit", deleteAccount);

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
    else if (b.classList.contains("open")) openDocumentFromList(b.dataset.documentId);
  });
  $("#documents").addEventListener("click", (ev) => {
    const b = ev.target.closest("button.open-doc");
    if (b) openDocumentFromList(b.dataset.documentId);
  });
  $("#import-input").addEventListener("change", (ev) => {
    const file = ev.target.files[0];
    ev.target.value = "";
    if (file) importDocument(file);
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
    if (ev.key === "Escape" && brush.on) {
      ev.preventDefault();
      stopBrush("Brush off; the mask was discarded.");
      return;
    }
    if (ev.key === "Escape" && !$("#account-page").hidden) {
      ev.preventDefault();
      closeAccount();
      return;
    }
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
  $("#split").addEventListener("click", splitLayer);
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
  wireBrush();
}

// Live opacity preview: draw with one layer's opacity overridden, without touching S.doc.
function drawPreviewWith(layerId, opacity) {
  const d = S.doc;
  drawPreview({ ...d, layers: d.layers.map((l) => (l.id === layerId ? { ...l, opacity } : l)) });
}

wire();
boot();
