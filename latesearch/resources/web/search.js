// latesearch's search page: POST /indexes/NAME/search with explain=true, results with
// highlights and a per-hit "why" table; an index selector filled from GET /indexes. No
// framework, no build step; works offline against the server.
"use strict";

const $ = (id) => document.getElementById(id);
const form = $("search-form"), results = $("results"), statusLine = $("status");

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

// Offsets from the server count Unicode code points (Python's str), not UTF-16 units.
function highlighted(text, spans) {
  const chars = Array.from(text || ""), out = document.createDocumentFragment();
  let at = 0;
  for (const [start, end] of spans.slice().sort((a, b) => a[0] - b[0])) {
    if (end <= at) continue;
    out.append(chars.slice(at, Math.max(start, at)).join(""));
    out.append(el("mark", {}, chars.slice(Math.max(start, at), end).join("")));
    at = end;
  }
  out.append(chars.slice(at).join(""));
  return out;
}

function spansOf(hit, field) {
  return (hit.highlights || []).filter((h) => h.field === field).map((h) => [h.start, h.end]);
}

function slice(text, start, end) {
  return Array.from(text || "").slice(start, end).join("");
}

function whyTable(hit) {
  const table = el("table", { class: "why" });
  table.append(el("caption", { class: "visually-hidden" }, "Query tokens and their matches"));
  table.append(el("thead", {}, el("tr", {},
    el("th", { scope: "col" }, "query token"), el("th", { scope: "col", class: "kindcol" }, "kind"),
    el("th", { scope: "col" }, "matched"), el("th", { scope: "col" }, "similarity"),
    el("th", { scope: "col", class: "share" }, "share"))));
  const body = el("tbody");
  for (const m of hit.explanation.matches) {
    const source = m.field === "title" ? hit.title : hit.text;
    const word = m.field ? slice(source, m.start, m.end) : m.doc_token;
    body.append(el("tr", { class: "match-" + m.kind },
      el("td", {}, m.query_token), el("td", { class: "kind kindcol" }, m.kind),
      el("td", {}, word, m.field === "title" ? el("span", { class: "kind" }, " (title)") : ""),
      el("td", { class: "num" }, m.similarity.toFixed(3)),
      el("td", { class: "num share" }, (100 * m.share).toFixed(1) + "%")));
  }
  table.append(body);
  if (!hit.explanation.exact) {
    table.append(el("tfoot", {}, el("tr", {}, el("td", { colspan: "5", class: "kind" },
      "computed from the compressed vectors the score came from"))));
  }
  return table;
}

function renderHit(hit) {
  const item = el("li", { class: "hit", tabindex: "0", "data-doc-id": hit.doc_id });
  const heading = el("h2", {}, `${hit.rank}. `);
  heading.append(hit.title ? highlighted(hit.title, spansOf(hit, "title")) : hit.doc_id);
  item.append(heading);
  item.append(el("p", { class: "text" }, highlighted(hit.text, spansOf(hit, "text"))));
  const meta = el("div", { class: "meta" }, el("span", {}, "id ", el("code", {}, hit.doc_id)),
    el("span", { class: "score" }, `score ${hit.score.toFixed(4)}`));
  if (hit.bounded_score != null) {
    meta.append(el("span", { title: "score per query token, in [-1, 1]" },
      `per token ${hit.bounded_score.toFixed(3)}`));
  }
  if (hit.relevance != null) {
    const by = hit.calibration === "shipped" ? "the default model's calibration"
      : "this index's calibration";
    meta.append(el("span", { class: "relevance", title: `probability of relevance (${by})` },
      `relevance ${(100 * hit.relevance).toFixed(0)}%`));
  }
  for (const [key, value] of Object.entries(hit.metadata || {})) {
    meta.append(el("span", {}, `${key}: `, el("code", {}, JSON.stringify(value))));
  }
  const panelId = `why-${hit.rank}`;
  const button = el("button", { type: "button", class: "why", "aria-expanded": "false",
    "aria-controls": panelId }, "why?");
  const panel = el("div", { id: panelId, hidden: "" });
  button.addEventListener("click", () => {
    const open = button.getAttribute("aria-expanded") !== "true";
    if (open && !panel.firstChild) panel.append(whyTable(hit));
    button.setAttribute("aria-expanded", String(open));
    panel.hidden = !open;
  });
  meta.append(button);
  item.append(meta, panel);
  item.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.target === item) button.click();
  });
  return item;
}

function setStatus(message, error = false) {
  statusLine.textContent = message;
  statusLine.classList.toggle("error", error);
}

async function search(event) {
  event.preventDefault();
  const query = $("query").value.trim();
  if (!query) return;
  const body = { query, k: Number($("k").value) || 10, mode: $("mode").value,
    explain: true, return_metadata: true };
  const filterText = $("filter").value.trim();
  if (filterText) {
    try { body.filter = JSON.parse(filterText); } catch (err) {
      setStatus(`The filter is not JSON: ${err.message}`, true);
      $("filter").focus();
      return;
    }
  }
  setStatus("Searching…");
  const index = $("index").value;
  if (!index) {
    setStatus("This server serves no index yet.", true);
    return;
  }
  const params = new URLSearchParams({ q: query, mode: body.mode, k: String(body.k), index });
  if (filterText) params.set("filter", filterText);
  history.replaceState(null, "", "?" + params.toString());
  try {
    const response = await fetch(`/indexes/${encodeURIComponent(index)}/search`, { method: "POST",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const data = await response.json();
    if (!response.ok) {
      setStatus(data.error + (data.field ? ` (${data.field})` : ""), true);
      return;
    }
    results.replaceChildren(...data.hits.map(renderHit));
    const ms = data.timings && data.timings.total ? ` in ${(1000 * data.timings.total).toFixed(0)} ms` : "";
    setStatus(`${data.hits.length} result${data.hits.length === 1 ? "" : "s"}${ms}`);
  } catch (err) {
    setStatus(`The server did not answer: ${err.message}`, true);
  }
}

function moveFocus(event) {
  if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
  const hits = Array.from(results.querySelectorAll(".hit"));
  const at = hits.indexOf(document.activeElement.closest(".hit"));
  if (!hits.length || (at < 0 && document.activeElement !== $("query"))) return;
  const next = event.key === "ArrowDown" ? at + 1 : at - 1;
  if (next < 0) { $("query").focus(); event.preventDefault(); return; }
  if (next < hits.length) { hits[next].focus(); event.preventDefault(); }
}

// The chosen index's modes, limits and size (GET /indexes/NAME/health); `wanted` keeps a
// mode and k given in the page's URL when the index has them.
async function showIndex(wanted = {}) {
  const name = $("index").value;
  const health = await (await fetch(`/indexes/${encodeURIComponent(name)}/health`)).json();
  const previous = wanted.mode || $("mode").value;
  $("mode").replaceChildren(...health.modes.map((m) => el("option", { value: m }, m)));
  $("mode").value = health.modes.includes(previous) ? previous : health.default_mode;
  $("k").value = wanted.k || $("k").value || health.default_k;
  $("k").max = health.max_k;
  $("index-info").textContent = `${health.documents} documents · ${name}`;
}

async function start() {
  const params = new URLSearchParams(location.search);
  try {
    const listing = await (await fetch("/indexes")).json();
    const names = listing.indexes.map((row) => row.name);
    $("index").replaceChildren(...names.map((n) => el("option", { value: n }, n)));
    $("index-choice").hidden = names.length < 2;
    if (!names.length) {
      setStatus("This server serves no index yet.", true);
    } else {
      const asked = params.get("index");
      $("index").value = names.includes(asked) ? asked : listing.default || names[0];
      $("k").value = "";
      await showIndex({ mode: params.get("mode"), k: params.get("k") });
    }
  } catch (err) {
    setStatus(`Cannot reach the server: ${err.message}`, true);
  }
  $("index").addEventListener("change", () => {
    results.replaceChildren();
    setStatus("");
    showIndex().catch((err) => setStatus(`Cannot reach the server: ${err.message}`, true));
  });
  form.addEventListener("submit", search);
  document.addEventListener("keydown", (event) => {
    if (event.key === "/" && !["INPUT", "SELECT"].includes(document.activeElement.tagName)) {
      event.preventDefault();
      $("query").focus();
    }
    moveFocus(event);
  });
  if (params.get("q")) {
    $("query").value = params.get("q");
    $("filter").value = params.get("filter") || "";
    form.requestSubmit();
  }
}

start();
