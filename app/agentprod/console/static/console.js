// agentprod console: polls the JSON of /console/api/* and /stats, follows the open task's
// events (GET /tasks/{id}/events, SSE read through fetch so the key header goes along —
// EventSource cannot send headers); no framework, no build.
// Data is only ever written with textContent (never as HTML).
"use strict";

const KEY = "agentprod-console-key";
const TASKS_EVERY_MS = 1000;
const SLOW_EVERY_MS = 3000;
const FINISHED = new Set(["done", "failed", "cancelled"]);
let selected = null;
let following = null; // {taskId, controller, lastId, ended}

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
  renderAgents(data.agents || []);
}

const fmtRate = (r) => (r === null || r === undefined ? "–" : `${(r * 100).toFixed(0)}%`);

function renderAgents(agents) {
  document.querySelector("#agents tbody").replaceChildren(
    ...agents.map((a) => {
      const tr = el("tr");
      tr.dataset.agent = a.agent;
      tr.append(el("td", a.agent), el("td", a.tasks), el("td", a.done), el("td", a.failed),
        el("td", a.cancelled), el("td", a.total_tokens), el("td", Number(a.cost_usd).toFixed(6)),
        el("td", fmtRate(a.cache_hit_rate)));
      return tr;
    }),
  );
}

async function openTask(taskId) {
  if (selected !== taskId) {
    document.getElementById("cancel-status").textContent = "";
    follow(taskId);
  }
  selected = taskId;
  await refreshDetail();
  document.getElementById("detail").hidden = false;
}

function closeTask() {
  selected = null;
  unfollow();
  document.getElementById("detail").hidden = true;
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
  const cancel = document.getElementById("detail-cancel");
  cancel.hidden = FINISHED.has(t.status);
  cancel.dataset.taskId = t.task_id;
  document.getElementById("detail-result").textContent =
    t.result === null ? "(no result yet)" : JSON.stringify(t.result, null, 2);
}

// --- the open task's events: SSE over fetch, resumed with Last-Event-ID after a drop ---

function unfollow() {
  if (following) following.controller.abort();
  following = null;
}

async function follow(taskId) {
  unfollow();
  const me = { taskId, controller: new AbortController(), lastId: null, ended: false };
  following = me;
  document.getElementById("detail-events").replaceChildren();
  eventsState("connecting…");
  while (following === me && !me.ended) {
    try {
      const h = { ...headers(), Accept: "text/event-stream" };
      if (me.lastId) h["Last-Event-ID"] = me.lastId;
      const answer = await fetch(`/tasks/${encodeURIComponent(taskId)}/events`, {
        headers: h, signal: me.controller.signal,
      });
      if (!answer.ok) {
        eventsState(`events unavailable (HTTP ${answer.status})`);
        if (answer.status !== 429 && answer.status < 500) return; // 401, 404: no use retrying
      } else {
        eventsState("live");
        await readFrames(answer.body, (frame) => onFrame(me, frame));
      }
    } catch (error) {
      if (me.controller.signal.aborted) return;
      eventsState(`reconnecting (${error.message})`);
    }
    if (following === me && !me.ended) await new Promise((r) => setTimeout(r, 1000));
  }
}

async function readFrames(body, onFrameText) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      onFrameText(buffer.slice(0, cut));
      buffer = buffer.slice(cut + 2);
    }
  }
}

function onFrame(me, text) {
  if (following !== me) return;
  const frame = { id: null, event: "message", data: [] };
  for (const line of text.split("\n")) {
    if (!line || line.startsWith(":")) continue; // a keep-alive comment
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "id") frame.id = value;
    else if (field === "event") frame.event = value;
    else if (field === "data") frame.data.push(value);
  }
  if (!frame.data.length) return;
  const body = JSON.parse(frame.data.join("\n"));
  if (frame.id) me.lastId = frame.id;
  if (frame.event === "end") {
    me.ended = true;
    eventsState(`ended: ${body.status}`);
    document.getElementById("detail-events").dataset.ended = body.status;
    return;
  }
  showEvent(body);
}

function describe(e) {
  if (e.type === "status") {
    let text = e.status + (e.attempt ? ` (attempt ${e.attempt})` : "");
    if (e.error) text += ` — ${e.error}`;
    if (e.result !== undefined && e.result !== null) text += ` — ${JSON.stringify(e.result)}`;
    return text;
  }
  if (e.type === "step") return `${e.step} of ${e.of}`;
  if (e.type === "tokens") return e.text;
  const rest = { ...e };
  delete rest.type;
  delete rest.at;
  return Object.keys(rest).length ? JSON.stringify(rest) : "";
}

function showEvent(e) {
  const list = document.getElementById("detail-events");
  const last = list.lastElementChild;
  if (e.type === "tokens" && last && last.dataset.type === "tokens") {
    last.querySelector(".text").textContent += e.text; // streamed text reads as one answer
    return;
  }
  const item = el("li");
  item.dataset.type = e.type;
  if (e.status) item.dataset.status = e.status;
  const at = e.at ? new Date(e.at * 1000).toLocaleTimeString() : "";
  item.append(el("span", at, "at"), el("span", e.type, "type"), el("span", describe(e), "text"));
  list.append(item);
  list.scrollTop = list.scrollHeight;
}

function eventsState(text) {
  document.getElementById("events-state").textContent = text;
}

async function cancelTask() {
  const button = document.getElementById("detail-cancel");
  const taskId = button.dataset.taskId;
  const out = document.getElementById("cancel-status");
  button.disabled = true;
  try {
    const answer = await fetch(`/tasks/${encodeURIComponent(taskId)}/cancel`, {
      method: "POST", headers: headers(),
    });
    const data = await answer.json().catch(() => ({}));
    const said = data.detail && data.detail[0] ? data.detail[0].msg : `HTTP ${answer.status}`;
    out.textContent = {
      200: "cancelled",
      202: "cancel requested: its worker is stopping it",
      409: `not cancelled: ${said}`,
      404: "not cancelled: no such task (expired?)",
    }[answer.status] || `cancel refused (HTTP ${answer.status}): ${said}`;
    out.dataset.outcome = String(answer.status);
  } catch (error) {
    out.textContent = `cancel failed: ${error.message}`;
  } finally {
    button.disabled = false;
  }
  await refreshDetail().catch(() => {});
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
        el("td", Number(m.cost_usd).toFixed(6)), el("td", m.cache_hits),
        el("td", fmtRate(m.calls + m.cache_hits ? m.cache_hits / (m.calls + m.cache_hits) : null)));
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
    document.getElementById("submit-status").textContent = "submitting…";
    const content = document.getElementById("content").value;
    const agent = document.getElementById("agent").value.trim();
    const body = { user_id: "console", content };
    if (agent) body.agent = agent;
    const metadata = document.getElementById("metadata").value.trim();
    if (metadata) {
      try {
        body.metadata = JSON.parse(metadata);
      } catch (error) {
        document.getElementById("submit-status").textContent = `metadata is not JSON: ${error.message}`;
        return;
      }
    }
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
  document.getElementById("detail-close").addEventListener("click", closeTask);
  document.getElementById("detail-cancel").addEventListener("click", cancelTask);
  tickTasks();
  tickSlow();
  setInterval(tickTasks, TASKS_EVERY_MS);
  setInterval(tickSlow, SLOW_EVERY_MS);
});
