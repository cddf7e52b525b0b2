// agentprod console: polls the JSON of /console/api/* and /stats; no framework, no build.
// Data is only ever written with textContent (never as HTML).
"use strict";

const KEY = "agentprod-console-key";
const TASKS_EVERY_MS = 1000;
const SLOW_EVERY_MS = 3000;
let selected = null;

function headers() {
  const key = sessionStorage.getItem(KEY);
  return key ? { "X-API-Key": key } : {};
}

async function getJSON(path) {
  const answer = await fetch(path, { headers: headers() });
  if (answer.status === 401) {
    document.getElementById("key-form").hidden = false;
    throw new Error("an API key is needed");
  }
  if (!answer.ok) throw new Error(`${path}: HTTP ${answer.status}`);
  return answer.json();
}

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function live(ok, text) {
  const pill = document.getElementById("live");
  pill.textContent = text;
  pill.className = "pill " + (ok ? "ok" : "bad");
}

const fmtMs = (ms) => (ms === null || ms === undefined ? "–" : ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);
const fmtCost = (c) => (c === null || c === undefined ? "–" : `$${Number(c).toFixed(6)}`);

function card(value, label) {
  const node = el("div", null, "card");
  node.append(el("b", value), el("span", label));
  return node;
}

function renderTasks(data) {
  const counts = document.getElementById("counts");
  const s = data.summary;
  counts.replaceChildren(
    ...Object.entries(s.by_status).map(([status, n]) => {
      const c = card(n, status);
      c.dataset.status = status;
      return c;
    }),
    card(s.throughput_per_minute, "finished / min"),
    card(fmtMs(s.p50_latency_ms), "p50 latency (1 min)"),
  );
  const body = document.querySelector("#tasks tbody");
  body.replaceChildren(
    ...data.tasks.map((t) => {
      const tr = el("tr");
      tr.dataset.taskId = t.task_id;
      tr.dataset.status = t.status;
      tr.append(
        el("td", t.task_id.slice(0, 8)),
        el("td", t.status, `s-${t.status}`),
        el("td", t.agent),
        el("td", t.model || "–"),
        el("td", fmtMs(t.latency_ms)),
        el("td", fmtCost(t.cost_usd)),
      );
      tr.addEventListener("click", () => openTask(t.task_id));
      return tr;
    }),
  );
}

async function openTask(taskId) {
  selected = taskId;
  await refreshDetail();
  document.getElementById("detail").hidden = false;
}

async function refreshDetail() {
  if (!selected) return;
  const t = await getJSON(`/console/api/tasks/${encodeURIComponent(selected)}`);
  document.getElementById("detail-id").textContent = t.task_id;
  const fields = document.getElementById("detail-fields");
  const when = (x) => (x ? new Date(x * 1000).toLocaleTimeString() : "–");
  const rows = [
    ["status", t.status], ["agent", t.agent], ["model", t.model || "–"], ["attempts", t.attempts],
    ["latency", fmtMs(t.latency_ms)], ["cost", fmtCost(t.cost_usd)], ["created", when(t.created_at)],
    ["started", when(t.started_at)], ["finished", when(t.finished_at)], ["content", t.content],
  ];
  if (t.error) rows.push(["error", t.error]);
  fields.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", k), el("dd", v)]));
  fields.dataset.status = t.status;
  document.getElementById("detail-result").textContent =
    t.result === null ? "(no result yet)" : JSON.stringify(t.result, null, 2);
}

function chart(history) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("viewBox", "0 0 300 90");
  svg.setAttribute("preserveAspectRatio", "none");
  if (history.length < 2) return svg;
  const t0 = history[0].t, t1 = history[history.length - 1].t || t0 + 1;
  const maxLag = Math.max(1, ...history.map((h) => h.lag || 0));
  const maxRep = Math.max(1, ...history.map((h) => Math.max(h.replicas || 0, h.desired || 0)));
  const x = (t) => ((t - t0) / Math.max(1, t1 - t0)) * 300;
  for (const [field, max, color] of [["lag", maxLag, "#b45309"], ["replicas", maxRep, "#1d4ed8"]]) {
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", color);
    line.setAttribute("stroke-width", "1.5");
    line.setAttribute("vector-effect", "non-scaling-stroke");
    line.setAttribute("points", history.map((h) => `${x(h.t).toFixed(1)},${(86 - ((h[field] || 0) / max) * 80).toFixed(1)}`).join(" "));
    svg.append(line);
  }
  return svg;
}

function decisions(history) {
  // The passes where the decision changed: its reason and replica target.
  const out = [];
  let last = null;
  for (const h of history) {
    const key = `${h.desired}|${h.reason}`;
    if (key !== last) out.push(h);
    last = key;
  }
  return out.slice(-5).reverse();
}

function renderPipelines(data) {
  const box = document.getElementById("pipelines");
  if (!data.pipelines.length) return;
  box.replaceChildren(
    ...data.pipelines.map((p) => {
      const node = el("div", null, "pipeline");
      node.dataset.pipeline = `${p.namespace}/${p.name}`;
      node.append(el("h3", `${p.namespace}/${p.name}`));
      const cards = el("div", null, "cards");
      const lag = card(p.lag ?? "–", "lag");
      lag.dataset.field = "lag";
      const replicas = card(`${p.replicas ?? "–"} / ${p.desiredReplicas ?? "–"}`, "replicas current / desired");
      replicas.dataset.field = "replicas";
      cards.append(lag, card(p.inFlight ?? "–", "in flight"), replicas, card(p.deadLetters ?? "–", "dead letters"));
      node.append(cards);
      node.append(el("p", `last decision: ${p.reason} — ${p.message}`, "muted"));
      const legend = el("div", null, "legend");
      legend.append(el("span", "— lag ", "lag"), el("span", "— replicas (last hour)", "rep"));
      node.append(chart(p.history || []), legend);
      const list = el("ul", null, "decisions");
      for (const h of decisions(p.history || [])) {
        const at = h.t ? new Date(h.t * 1000).toLocaleTimeString() : "";
        list.append(el("li", `${at} → ${h.desired} replicas (${h.reason ?? "?"})`));
      }
      node.append(list);
      const conds = el("dl");
      for (const c of p.conditions || []) {
        conds.append(el("dt", c.type), el("dd", `${c.status} ${c.reason || ""} ${c.message || ""}`));
      }
      node.append(conds);
      return node;
    }),
  );
}

function renderModels(stats) {
  const body = document.querySelector("#models tbody");
  body.replaceChildren(
    ...Object.entries(stats.models).map(([model, m]) => {
      const tr = el("tr");
      tr.append(el("td", model), el("td", m.calls), el("td", m.errors), el("td", m.total_tokens),
        el("td", Number(m.cost_usd).toFixed(6)), el("td", m.cache_hits));
      return tr;
    }),
  );
  const c = stats.cache || {};
  document.getElementById("cache").textContent =
    `response cache: ${c.hits ?? 0} hits, ${c.misses ?? 0} misses, hit rate ${((c.hit_rate || 0) * 100).toFixed(0)}%`;
}

async function tickTasks() {
  try {
    renderTasks(await getJSON("/console/api/tasks?limit=50"));
    await refreshDetail();
    live(true, "live");
  } catch (error) {
    live(false, error.message);
  }
}

async function tickSlow() {
  try {
    renderPipelines(await getJSON("/console/api/pipelines"));
    renderModels(await getJSON("/stats"));
  } catch (error) {
    live(false, error.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, document.getElementById("key").value.trim());
    document.getElementById("key-form").hidden = true;
    tickTasks();
    tickSlow();
  });
  document.getElementById("submit-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const content = document.getElementById("content").value;
    const agent = document.getElementById("agent").value.trim();
    const body = { user_id: "console", content };
    if (agent) body.agent = agent;
    const answer = await fetch("/tasks", {
      method: "POST",
      headers: { ...headers(), "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const data = await answer.json();
    document.getElementById("submit-status").textContent =
      answer.ok ? `queued ${data.task_id}` : `refused (${answer.status}): ${JSON.stringify(data)}`;
    tickTasks();
  });
  document.getElementById("detail-close").addEventListener("click", () => {
    selected = null;
    document.getElementById("detail").hidden = true;
  });
  tickTasks();
  tickSlow();
  setInterval(tickTasks, TASKS_EVERY_MS);
  setInterval(tickSlow, SLOW_EVERY_MS);
});
