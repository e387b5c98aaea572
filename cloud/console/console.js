// Vigia review console: plain JS over the JSON API (no framework, no build step).
// Every value from the API reaches the page through textContent or attributes, never as HTML.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const SVG = "http://www.w3.org/2000/svg";
const LABELS = [["person", "Person"], ["not-person", "Not a person"], ["unsure", "Unsure"]];

class ApiError extends Error {}

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  if (response.status === 401) {
    showLogin();
    throw new ApiError("sign in with the API token");
  }
  const body = response.headers.get("Content-Type")?.startsWith("application/json") ? await response.json() : {};
  if (!response.ok) throw new ApiError(body.error || `${response.status} ${response.statusText}`);
  return body;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

const fmt = (x, digits = 2) => (typeof x === "number" ? x.toFixed(digits) : "–");
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");

// -- views ------------------------------------------------------------------------------------------
function show(id) {
  for (const view of document.querySelectorAll("main")) view.hidden = view.id !== id;
  $("#nav-events").classList.toggle("active", id !== "view-review-sets");
  $("#nav-review-sets").classList.toggle("active", id === "view-review-sets");
}

function showLogin() {
  $("#login").hidden = false;
}

async function route() {
  const hash = location.hash || "#/events";
  const [path, query = ""] = hash.slice(1).split("?");
  try {
    if (path.startsWith("/event/")) {
      show("view-event");
      await showEvent(decodeURIComponent(path.slice("/event/".length)));
    } else if (path === "/review-sets" || path.startsWith("/review-set/")) {
      show("view-review-sets");
      await showReviewSets(path.startsWith("/review-set/") ? decodeURIComponent(path.slice(12)) : null);
    } else {
      show("view-events");
      await showEvents(new URLSearchParams(query));
    }
  } catch (err) {
    const status = $("main:not([hidden]) [role=status]") || $("#event");
    status.textContent = err.message;
    status.classList.add("error");
  }
}

// -- event list ---------------------------------------------------------------------------------------
const toLocalInput = (iso) => {
  const d = new Date(iso);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19);
};

function fillForm(params) {
  const form = $("#filters");
  for (const input of form.elements) {
    if (!input.name) continue;
    const value = params.get(input.name) || "";
    input.value = value && input.type === "datetime-local" ? toLocalInput(value) : value;
  }
}

function formParams() {
  const params = new URLSearchParams();
  for (const input of $("#filters").elements) {
    if (!input.name || !input.value) continue;
    // the page shows local time; the API speaks UTC
    params.set(input.name, input.type === "datetime-local" ? new Date(input.value).toISOString() : input.value.trim());
  }
  return params;
}

async function showEvents(params) {
  fillForm(params);
  const status = $("#list-status");
  status.classList.remove("error");
  status.textContent = "loading…";
  const data = await api(`/api/events?${params}`);
  const list = $("#event-list");
  list.replaceChildren(...data.events.map(card));
  const cameras = new Set([...$("#cameras").options].map((o) => o.value));
  for (const ev of data.events) cameras.add(ev.camera_id);
  $("#cameras").replaceChildren(...[...cameras].sort().map((c) => el("option", { value: c })));
  status.textContent = data.count
    ? `${data.count} event(s), newest first${data.count >= data.limit ? ` (first ${data.limit})` : ""}`
    : "no event matches these filters";
}

function card(ev) {
  const node = $("#event-card").content.firstElementChild.cloneNode(true);
  node.dataset.eventId = ev.event_id;
  node.dataset.decision = ev.decision;
  $(".open", node).href = `#/event/${ev.event_id}`;
  const thumb = $(".thumb", node);
  if (ev.snapshot_url) thumb.src = ev.snapshot_url;
  else thumb.replaceWith(el("span", { class: "thumb none", text: "no snapshot" }));
  const decision = $(".decision", node);
  decision.textContent = ev.decision;
  decision.classList.add(ev.decision);
  $(".cam", node).textContent = ev.camera_id;
  $(".when", node).textContent = when(ev.started_at);
  $(".scores", node).textContent = `gateway ${fmt(ev.edge_score)} → verifier ${fmt(ev.score)}`;
  const label = $(".label", node);
  if (ev.label) {
    label.textContent = ev.label;
    label.classList.add(ev.label);
  } else label.remove();
  return node;
}

// -- one event ------------------------------------------------------------------------------------------
async function showEvent(id) {
  const box = $("#event");
  box.classList.remove("error");
  box.textContent = "loading…";
  renderEvent(await api(`/api/events/${encodeURIComponent(id)}`));
}

function boxRect(svg, b, scale, cls) {
  const g = document.createElementNS(SVG, "g");
  g.setAttribute("class", cls);
  const r = document.createElementNS(SVG, "rect");
  r.setAttribute("x", b.x1 * scale.x);
  r.setAttribute("y", b.y1 * scale.y);
  r.setAttribute("width", Math.max(1, (b.x2 - b.x1) * scale.x));
  r.setAttribute("height", Math.max(1, (b.y2 - b.y1) * scale.y));
  const t = document.createElementNS(SVG, "text");
  // gateway scores above the box, the verifier's below it: the two stages often box the same person
  t.setAttribute("x", b.x1 * scale.x + 2);
  t.setAttribute("y", cls === "verifier-box" ? b.y2 * scale.y + 14 : Math.max(12, b.y1 * scale.y - 3));
  t.textContent = fmt(b.score);
  g.append(r, t);
  svg.append(g);
}

function drawBoxes(svg, img, ev) {
  // The snapshot may be smaller than the frame: boxes are in frame pixels, scaled to the snapshot's own.
  const w = img.naturalWidth, h = img.naturalHeight;
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.replaceChildren();
  const gw = ev.gateway;
  if (gw && gw.frame_width) {
    const scale = { x: w / gw.frame_width, y: h / gw.frame_height };
    for (const b of gw.boxes) boxRect(svg, b, scale, "gateway-box");
  }
  const v = ev.verdict;
  if (v.frame_width) {
    const scale = { x: w / v.frame_width, y: h / v.frame_height };
    for (const b of v.boxes) boxRect(svg, b, scale, "verifier-box");
  }
}

function factsTable(rows) {
  return el("table", { class: "facts" },
    ...rows.map(([k, v]) => el("tr", {}, el("th", { text: k }), el("td", { text: v ?? "–" }))));
}

function reasonList(reasons) {
  return el("ul", { class: "reasons" }, ...(reasons || []).map((r) => el("li", { text: r })));
}

function renderEvent(ev) {
  const box = $("#event");
  const gw = ev.gateway;
  const figure = el("figure", { class: "snapshot" });
  if (ev.snapshot_url) {
    const img = el("img", { src: ev.snapshot_url, alt: `snapshot of ${ev.event_id}`, "data-testid": "snapshot" });
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "boxes");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("data-testid", "boxes");
    img.addEventListener("load", () => drawBoxes(svg, img, ev));
    figure.append(el("div", { class: "stage" }, img, svg));
  } else figure.append(el("p", { class: "muted", text: "no snapshot stored" }));
  const legend = el("figcaption", {},
    el("span", { class: "key gateway", text: `gateway boxes (${gw ? gw.boxes.length : 0}) on this frame` }),
    el("span", { class: "key verifier", text: `verifier boxes (${ev.verdict.boxes.length})` }),
    el("span", { class: "muted", text: "The verifier's boxes are from its own best frame, which may be another " +
      "moment of the clip than this snapshot" + (gw && gw.best_frame_offset_s !== null ?
      ` (the snapshot is at ${fmt(gw.best_frame_offset_s, 1)} s of the source).` : ".") }));
  figure.append(legend);

  const media = el("div", { class: "clip" });
  if (ev.clip_url) {
    const video = el("video", { controls: true, preload: "metadata", src: ev.playable_clip_url,
      "data-testid": "clip" });
    video.addEventListener("error", () => media.append(el("p", { class: "muted",
      text: "This clip cannot play in the browser; download the original." })));
    media.append(video, el("p", {}, el("a", { href: ev.download_clip_url, "data-testid": "download",
      text: "download the original clip" })));
  } else media.append(el("p", { class: "muted", text: "no clip stored (the gateway sent a snapshot only)" }));

  const v = ev.verdict;
  const facts = factsTable([
    ["event", ev.event_id], ["camera", ev.camera_id], ["gateway", ev.gateway_id],
    ["started", when(ev.started_at)], ["ended", when(ev.ended_at)],
    ["gateway score", `${fmt(ev.edge_score)} (threshold ${fmt(ev.edge_threshold)}, ${ev.edge_model})`],
    ["verifier score", `${fmt(v.score)} over ${v.frames_examined} frame(s) (${v.models.join(", ")})`],
    ["notified", ev.notified ? `yes, ${when(ev.notified_at)}` : "no"],
    ["source", gw ? gw.source : null],
  ]);
  const verdict = el("section", { class: "verdict" },
    el("h2", {}, el("span", { class: `badge ${v.decision}`, text: v.decision, "data-testid": "verdict" })),
    facts,
    el("h3", { text: "Verifier's reasons" }), reasonList(v.reasons),
    el("h3", { text: "Gateway's reasons" }), reasonList(gw ? gw.reasons : []));

  box.replaceChildren(el("div", { class: "detail" }, el("div", {}, figure, media),
    el("div", {}, feedbackPanel(ev), verdict)));
}

// -- labels ----------------------------------------------------------------------------------------------
function feedbackPanel(ev) {
  const result = el("p", { class: "result", role: "status", "data-testid": "feedback-result" });
  const current = el("p", { "data-testid": "current-label" });
  const setCurrent = (e) => {
    current.textContent = e.label ? `Labeled ${e.label} ${when(e.labeled_at)}` : "Not labeled yet";
  };
  setCurrent(ev);
  const note = el("input", { name: "note", maxlength: "500", placeholder: "note (optional)" });
  const by = el("input", { name: "by", maxlength: "128", placeholder: "your name (optional)",
    value: localStorage.getItem("vigia.by") || "" });
  const history = el("ol", { class: "history" });
  const fillHistory = (e) => history.replaceChildren(...e.feedback.slice().reverse().map((f) =>
    el("li", { text: `${f.label} by ${f.by} (${f.source}) ${when(f.at)}${f.note ? `: ${f.note}` : ""}` })));
  fillHistory(ev);
  const buttons = LABELS.map(([value, text]) => {
    const button = el("button", { type: "button", class: `label-button ${value}`, "data-label": value, text });
    button.addEventListener("click", async () => {
      for (const b of buttons) b.disabled = true;
      result.className = "result";
      result.textContent = "saving…";
      const payload = { label: value };
      if (note.value.trim()) payload.note = note.value.trim();
      if (by.value.trim()) {
        payload.by = by.value.trim();
        localStorage.setItem("vigia.by", payload.by);
      }
      try {
        const updated = await api(`/api/events/${ev.event_id}/feedback`, {
          method: "POST", body: JSON.stringify(payload),
          headers: { "Content-Type": "application/json", "X-Vigia-Client": "console" },
        });
        result.classList.add("ok");
        result.textContent = `Saved: ${updated.label}` +
          (value === "not-person" && ev.decision === "confirmed" ?
            " (added to this camera's false-positive memory)" : "");
        setCurrent(updated);
        fillHistory(updated);
      } catch (err) {
        result.classList.add("error");
        result.textContent = `Not saved: ${err.message}`;
      } finally {
        for (const b of buttons) b.disabled = false;
      }
    });
    return button;
  });
  return el("section", { class: "feedback", "data-testid": "feedback" },
    el("h2", { text: "Your label" }), current, el("div", { class: "buttons" }, ...buttons),
    el("div", { class: "who" }, note, by), result, el("h3", { text: "History" }), history);
}

// -- review sets ---------------------------------------------------------------------------------------------
async function showReviewSets(name) {
  const status = $("#sets-status");
  status.classList.remove("error");
  const data = await api("/api/review-sets");
  status.textContent = data.review_sets.length ? "" :
    "no review set yet: run `vigia sample` (near-threshold events, flagged ones and a random share)";
  $("#review-sets").replaceChildren(...data.review_sets.map((s) => el("li", {},
    el("a", { href: `#/review-set/${encodeURIComponent(s.name)}`, text: s.name }),
    el("span", { class: "muted", text: ` ${s.events} event(s), ${when(s.since)} – ${when(s.until)} ` +
      Object.entries(s.by_reason || {}).map(([k, n]) => `${k}: ${n}`).join(", ") }))));
  const box = $("#review-set");
  if (!name) {
    box.replaceChildren();
    return;
  }
  const manifest = await api(`/api/review-sets/${encodeURIComponent(name)}`);
  const rows = (manifest.events || []).map((e) => el("tr", { "data-event-id": e.event_id },
    el("td", {}, el("a", { href: `#/event/${e.event_id}`, text: e.event_id })),
    el("td", { text: e.camera_id }), el("td", { text: when(e.started_at) }),
    el("td", { text: `${fmt(e.edge_score)} / ${fmt(e.verifier_score)}` }),
    el("td", { text: e.verifier_decision }), el("td", { text: e.label || "" }),
    el("td", { text: (e.reasons || []).join(", ") }), el("td", { class: "muted", text: (e.why || []).join("; ") })));
  box.replaceChildren(el("h3", { text: `Review set ${name}` }),
    el("table", { class: "manifest" },
      el("tr", {}, ...["event", "camera", "time", "gateway / verifier", "verdict", "label", "why picked",
        "details"].map((h) => el("th", { text: h }))), ...rows));
}

// -- start -----------------------------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  $("#filters").addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = `#/events?${formParams()}`;
  });
  $("#filters").addEventListener("reset", () => setTimeout(() => { location.hash = "#/events"; }));
  $("#login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api("/api/session", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ token: $("#token").value }) });
      $("#login").hidden = true;
      $("#login-error").textContent = "";
      route();
    } catch (err) {
      $("#login-error").textContent = err.message;
    }
  });
  window.addEventListener("hashchange", route);
  api("/api/health").then((h) => {
    $("#mode").textContent = h.mode === "aws" ? "AWS" : "embedded";
  }).catch(() => {});
  route();
});
