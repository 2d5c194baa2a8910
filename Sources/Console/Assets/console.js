// BudPipeline's web console: a small client of the public API and the live stream, nothing
// else. No framework, no build step, no network beyond this server. Every text from the server
// reaches the page through textContent (never as markup); the one piece of markup it inserts,
// the graph's SVG, is parsed as XML and stripped of anything active first. See docs/console.md.
"use strict";

const state = {
  token: sessionStorage.getItem("budpipeline.token") || "",
  user: sessionStorage.getItem("budpipeline.user") || "",
  // Per view: aborted when the view changes, so streams and timers never outlive it.
  viewScope: null,
  pipelineNames: new Map(),
};

const STATUS_CLASSES = ["pending", "running", "awaiting_event", "retrying", "completed", "failed", "skipped", "timeout", "cancelled"];

// MARK: DOM helpers

/** h("div", {class: "x"}, "text", child) — attributes set one by one, children as text nodes. */
function h(tag, attributes, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  return add(element, ...children);
}

function clear(element) {
  while (element.firstChild) element.firstChild.remove();
  return element;
}

/** Appends the children that are present (DOM's own append would show null as "null"). */
function add(parent, ...children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

function fill(element, ...children) {
  return add(clear(element), ...children);
}

function badge(status, awaiting) {
  const name = statusClass(status, awaiting);
  return h("span", { class: `badge status-${name}`, "data-status": name }, awaiting ? "AWAITING EVENT" : status || "—");
}

function statusClass(status, awaiting) {
  if (awaiting) return "awaiting_event";
  const lower = String(status || "pending").toLowerCase();
  return STATUS_CLASSES.includes(lower) ? lower : "pending";
}

/** The start and end of an id: execution ids are UUIDv7, whose first digits are the time. */
function shortID(id) {
  const text = String(id || "");
  return text.length > 12 ? `${text.slice(0, 8)}…${text.slice(-4)}` : text;
}

function time(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "—" : date.toLocaleString();
}

function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const whole = Math.floor(seconds);
  if (whole < 3600) return `${Math.floor(whole / 60)}m ${String(whole % 60).padStart(2, "0")}s`;
  return `${Math.floor(whole / 3600)}h ${String(Math.floor((whole % 3600) / 60)).padStart(2, "0")}m`;
}

function secondsBetween(startISO, endISO) {
  if (!startISO) return null;
  const start = new Date(startISO).getTime();
  const end = endISO ? new Date(endISO).getTime() : Date.now();
  return Number.isFinite(start) && Number.isFinite(end) ? Math.max(0, (end - start) / 1000) : null;
}

function json(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

function table(headers, rows, empty) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h("table", { class: "grid" }, h("thead", {}, h("tr", {}, headers.map((title) => h("th", {}, title)))), h("tbody", {}, rows));
}

function showNotice(message, kind) {
  const notice = document.getElementById("notice");
  notice.textContent = message;
  notice.className = `notice ${kind || "error"}`;
  notice.hidden = !message;
}

// MARK: API

class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function authHeaders() {
  const headers = {};
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (state.user) headers["X-User-ID"] = state.user;
  return headers;
}

/** The answer of one API call as JSON (or text); an APIError with the server's code otherwise. */
async function api(path, options) {
  const init = { method: (options && options.method) || "GET", headers: authHeaders(), signal: options && options.signal };
  if (options && options.body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.body);
  }
  const response = await fetch(path, init);
  const type = response.headers.get("Content-Type") || "";
  const body = type.includes("json") ? await response.json().catch(() => null) : await response.text();
  if (!response.ok) {
    const code = (body && body.code) || `HTTP_${response.status}`;
    const message = (body && (body.message || (typeof body.detail === "string" ? body.detail : null))) || response.statusText;
    if (response.status === 401) openTokenDialog(message);
    throw new APIError(response.status, code, message);
  }
  return body;
}

async function pipelineNames(signal) {
  if (state.pipelineNames.size) return state.pipelineNames;
  const pipelines = await api("/pipelines?include_system=true", { signal });
  for (const pipeline of pipelines) state.pipelineNames.set(pipeline.id, pipeline.name);
  return state.pipelineNames;
}

// MARK: Token

function openTokenDialog(reason) {
  const dialog = document.getElementById("token-dialog");
  if (reason) showNotice(`${reason}: enter the app API token.`, "error");
  if (dialog.open) return; // keep what is being typed
  document.getElementById("token-input").value = state.token;
  document.getElementById("user-input").value = state.user;
  dialog.showModal();
}

function tokenDialogOpen() {
  return document.getElementById("token-dialog").open;
}

function saveIdentity(token, user) {
  state.token = token.trim();
  state.user = user.trim();
  for (const [key, value] of [["budpipeline.token", state.token], ["budpipeline.user", state.user]]) {
    if (value) sessionStorage.setItem(key, value);
    else sessionStorage.removeItem(key);
  }
  state.pipelineNames.clear();
  renderIdentity();
}

function renderIdentity() {
  const label = document.getElementById("identity-label");
  label.textContent = `${state.token ? "token set" : "no token"} · ${state.user ? `user ${shortID(state.user)}` : "service"}`;
}

// MARK: Router

const routes = [
  [/^#\/pipelines\/([0-9a-fA-F-]{36})$/, (match, scope, root) => pipelineView(match[1], scope, root)],
  [/^#\/pipelines$/, (match, scope, root) => pipelinesView(scope, root)],
  [/^#\/executions\/([0-9a-fA-F-]{36})$/, (match, scope, root) => executionView(match[1], scope, root)],
  [/^#\/executions(?:\?(.*))?$/, (match, scope, root) => executionsView(new URLSearchParams(match[1] || ""), scope, root)],
  [/^#\/schedules$/, (match, scope, root) => schedulesView(scope, root)],
  [/^#\/webhooks$/, (match, scope, root) => webhooksView(scope, root)],
  [/^#\/triggers$/, (match, scope, root) => triggersView(scope, root)],
  [/^#\/plugins$/, (match, scope, root) => pluginsView(scope, root)],
];

async function route() {
  if (state.viewScope) state.viewScope.abort();
  const scope = new AbortController();
  state.viewScope = scope;
  const hash = location.hash || "#/executions";
  const section = hash.split(/[/?]/)[1] || "executions";
  for (const link of document.querySelectorAll("#nav a")) link.classList.toggle("active", link.dataset.section === section);
  // Each page renders into a root of its own: a render still under way when the user moves on
  // writes into a detached element, never into the next page.
  const root = h("div", { class: "page" });
  fill(document.getElementById("view"), root);
  state.viewRoot = root;
  showNotice("");
  for (const [pattern, render] of routes) {
    const match = hash.match(pattern);
    if (!match) continue;
    try {
      await render(match, scope.signal, root);
    } catch (error) {
      if (scope.signal.aborted || error.name === "AbortError") return;
      root.append(h("p", { class: "error-text", id: "view-error" }, `${error.code ? `${error.code}: ` : ""}${error.message}`));
    }
    return;
  }
  root.append(h("p", { class: "empty" }, "No such page."));
}

/** `names`, or an empty map when they cannot be read; a change of page still ends the render. */
async function namesOrNone(scope) {
  try {
    return await pipelineNames(scope);
  } catch (error) {
    if (scope.aborted || error.name === "AbortError") throw error;
    return new Map();
  }
}

/** Runs `refresh` every `seconds` until the view changes; failures show once, then retry. */
function every(seconds, scope, refresh) {
  const timer = setInterval(() => {
    if (tokenDialogOpen()) return;
    refresh().catch((error) => {
      if (!scope.aborted && error.name !== "AbortError") showNotice(error.message);
    });
  }, seconds * 1000);
  scope.addEventListener("abort", () => clearInterval(timer));
}

// MARK: Pipelines

async function pipelinesView(scope, root) {
  const pipelines = await api("/pipelines?include_system=true", { signal: scope });
  state.pipelineNames.clear();
  for (const pipeline of pipelines) state.pipelineNames.set(pipeline.id, pipeline.name);
  add(root, 
    h("h1", {}, "Pipelines"),
    table(
      ["Name", "Status", "Steps", "Executions", "Last execution", "Updated"],
      pipelines.map((pipeline) =>
        h(
          "tr",
          { class: "pipeline-row", "data-id": pipeline.id },
          h("td", {}, h("a", { href: `#/pipelines/${pipeline.id}` }, pipeline.name), pipeline.system_owned ? h("span", { class: "tag" }, "system") : null),
          h("td", {}, pipeline.status),
          h("td", { class: "number" }, pipeline.step_count),
          h("td", { class: "number" }, pipeline.execution_count),
          h("td", {}, time(pipeline.last_execution_at)),
          h("td", {}, time(pipeline.updated_at)),
        ),
      ),
      "No pipelines yet: create one with POST /pipelines (docs/api.md).",
    ),
  );
}

async function pipelineView(id, scope, root) {
  const [pipeline, recent] = await Promise.all([
    api(`/pipelines/${id}`, { signal: scope }),
    api(`/executions?workflow_id=${id}&page_size=10`, { signal: scope }),
  ]);
  const run = h("button", { type: "button", id: "run-pipeline", disabled: pipeline.status === "draft" }, "Run");
  run.addEventListener("click", async () => {
    run.disabled = true;
    try {
      const started = await api("/executions", { method: "POST", body: { workflow_id: id, initiator: "console" } });
      location.hash = `#/executions/${started.execution_id || started.id}`;
    } catch (error) {
      showNotice(error.message);
      run.disabled = false;
    }
  });
  const graph = h("div", { class: "graph", id: "graph" }, h("p", { class: "empty" }, "Drawing…"));
  add(root, 
    h("div", { class: "title-row" }, h("h1", {}, pipeline.name), badge(pipeline.status.toUpperCase()), run),
    // The API keeps the reference's null description on create; the DAG's own is the same text.
    (pipeline.description || (pipeline.dag && pipeline.dag.description)) ? h("p", { class: "lead" }, pipeline.description || pipeline.dag.description) : null,
    h("p", { class: "meta" }, `${pipeline.step_count} steps · version ${pipeline.version} · ${pipeline.execution_count} executions · updated ${time(pipeline.updated_at)}`),
    h("h2", {}, "Graph"),
    graph,
    h("h2", {}, "Recent executions"),
    executionTable(recent.executions),
    h("details", {}, h("summary", {}, "Definition"), json(pipeline.dag)),
  );
  await drawGraph(graph, `/pipelines/${id}/graph?format=svg`, scope);
}

// MARK: Graph

/** Fetches an SVG graph and shows it, stripped of scripts, event handlers and outside links. */
async function drawGraph(container, path, scope) {
  let text;
  try {
    text = await api(path, { signal: scope });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    // A picture already shown stays (a redraw that failed, e.g. 503 GRAPH_BUSY, loses nothing).
    if (container.querySelector("svg")) return;
    fill(container, h("p", { class: "empty", id: "graph-unavailable" }, `No graph: ${error.message}`));
    return;
  }
  const parsed = new DOMParser().parseFromString(String(text), "image/svg+xml");
  const svg = parsed.documentElement;
  if (!svg || svg.nodeName !== "svg" || parsed.getElementsByTagName("parsererror").length) {
    fill(container, h("p", { class: "empty" }, "The graph could not be read."));
    return;
  }
  const active = "script, foreignObject, iframe, object, embed, use, image, style, set, animate, animateMotion, animateTransform";
  for (const element of Array.from(svg.querySelectorAll(active))) element.remove();
  for (const element of [svg, ...svg.querySelectorAll("*")]) {
    for (const attribute of Array.from(element.attributes)) {
      const name = attribute.name.toLowerCase();
      const isLink = name === "href" || name.endsWith(":href");
      if (name.startsWith("on") || (isLink && !attribute.value.startsWith("#"))) element.removeAttribute(attribute.name);
    }
  }
  fill(container, document.importNode(svg, true));
}

/** Gives each step's node in a drawn graph the class of its current status. */
function paintGraph(container, steps) {
  for (const step of steps) {
    const node = container.querySelector(`g[id="step-${Number(step.sequence_number)}"]`);
    if (!node) continue;
    const wanted = `status-${statusClass(step.status, step.awaiting_event)}`;
    for (const name of Array.from(node.classList)) if (name.startsWith("status-") && name !== wanted) node.classList.remove(name);
    node.classList.add(wanted);
  }
}

// MARK: Executions

function executionTable(executions) {
  return table(
    ["Execution", "Pipeline", "Status", "Progress", "Started", "Duration", "Initiator"],
    executions.map((execution) => {
      const definition = execution.pipeline_definition || {};
      return h(
        "tr",
        { class: "execution-row", "data-id": execution.id, "data-status": statusClass(execution.status) },
        h("td", {}, h("a", { href: `#/executions/${execution.id}`, class: "mono" }, shortID(execution.id))),
        h("td", {}, definition.workflow_name || "ephemeral"),
        h("td", {}, badge(execution.status)),
        h("td", {}, progressBar(Number(execution.progress_percentage))),
        h("td", {}, time(execution.start_time)),
        h("td", {}, duration(secondsBetween(execution.start_time, execution.end_time))),
        h("td", {}, execution.initiator),
      );
    }),
    "No executions match.",
  );
}

function progressBar(percent) {
  const value = Number.isFinite(percent) ? Math.min(100, Math.max(0, percent)) : 0;
  return h(
    "span",
    { class: "progress", title: `${value.toFixed(0)}%` },
    h("span", { class: "track" }, h("span", { class: "bar", "data-value": value.toFixed(0) })),
    ` ${value.toFixed(0)}%`,
  );
}

function sizeBars(root) {
  for (const bar of root.querySelectorAll(".progress .bar")) bar.style.width = `${bar.dataset.value}%`;
}

async function executionsView(query, scope, root) {
  const names = await namesOrNone(scope);
  const page = Math.max(1, Number(query.get("page")) || 1);
  const filters = h("form", { class: "filters", id: "execution-filters" });
  const status = h("select", { name: "status", id: "filter-status" }, h("option", { value: "" }, "any status"),
    ["PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"].map((value) => h("option", { value, selected: query.get("status") === value }, value)));
  const pipeline = h("select", { name: "workflow_id", id: "filter-pipeline" }, h("option", { value: "" }, "any pipeline"),
    Array.from(names).map(([id, name]) => h("option", { value: id, selected: query.get("workflow_id") === id }, name)));
  const initiator = h("input", { name: "initiator", placeholder: "initiator", value: query.get("initiator") || "" });
  const from = h("input", { name: "start_date", type: "date", title: "started on or after", value: query.get("start_date") || "" });
  const until = h("input", { name: "end_date", type: "date", title: "started on or before", value: query.get("end_date") || "" });
  filters.append(status, pipeline, initiator, from, "–", until, h("button", { type: "submit" }, "Filter"));
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [key, value] of new FormData(filters)) if (value) next.set(key, value);
    location.hash = `#/executions${next.toString() ? `?${next}` : ""}`;
  });
  const results = h("div", { id: "execution-list" });
  add(root, h("h1", {}, "Executions"), filters, results);
  const load = async () => {
    const params = new URLSearchParams({ page: String(page), page_size: "25" });
    for (const key of ["status", "workflow_id", "initiator"]) if (query.get(key)) params.set(key, query.get(key));
    // Dates are whole days in the browser's time zone, sent as instants.
    const day = (text, end) => {
      const date = new Date(`${text}T${end ? "23:59:59.999" : "00:00:00"}`);
      return Number.isNaN(date.getTime()) ? null : date.toISOString();
    };
    if (query.get("start_date") && day(query.get("start_date"), false)) params.set("start_date", day(query.get("start_date"), false));
    if (query.get("end_date") && day(query.get("end_date"), true)) params.set("end_date", day(query.get("end_date"), true));
    const answer = await api(`/executions?${params}`, { signal: scope });
    const pagination = answer.pagination || {};
    const pager = h("div", { class: "pager" },
      page > 1 ? h("a", { href: pageLink(query, page - 1) }, "← newer") : null,
      ` page ${page} of ${Math.max(1, pagination.total_pages || 1)} · ${pagination.total_count || 0} executions `,
      page < (pagination.total_pages || 1) ? h("a", { href: pageLink(query, page + 1) }, "older →") : null);
    fill(results, executionTable(answer.executions), pager);
    sizeBars(results);
  };
  await load();
  every(5, scope, load);
}

function pageLink(query, page) {
  const next = new URLSearchParams(query);
  next.set("page", String(page));
  return `#/executions?${next}`;
}

/** One execution: a live graph, progress and ETA, the steps' timeline, cancel and retry. */
async function executionView(id, scope, root) {
  const title = h("h1", {});
  const status = h("span", { id: "execution-status" });
  const cancel = h("button", { type: "button", id: "cancel-execution", class: "danger", hidden: true }, "Cancel");
  const retry = h("button", { type: "button", id: "retry-execution", hidden: true }, "Retry");
  const header = h("div", { class: "title-row" }, title, status, cancel, retry);
  const summary = h("div", { class: "summary", id: "execution-summary" });
  const graph = h("div", { class: "graph", id: "graph" }, h("p", { class: "empty" }, "Drawing…"));
  const timeline = h("div", { id: "timeline" });
  const outcome = h("div", { id: "execution-outcome" });
  add(root, header, summary, h("div", { class: "columns" },
    h("section", {}, h("h2", {}, "Graph"), graph),
    h("section", {}, h("h2", {}, "Timeline"), timeline)), outcome);
  const parts = { header, title, status, cancel, retry, summary, timeline, outcome, graph };

  // Cancel asks for a second click within 4 s; the armed state lives here, not in the page, so a
  // redraw cannot lose it.
  let armed = null;
  const disarm = () => {
    clearTimeout(armed);
    armed = null;
    cancel.dataset.armed = "";
    cancel.textContent = "Cancel";
  };
  scope.addEventListener("abort", () => clearTimeout(armed));
  cancel.addEventListener("click", async () => {
    if (!armed) {
      armed = setTimeout(disarm, 4000);
      cancel.dataset.armed = "yes";
      cancel.textContent = "Click again to cancel";
      return;
    }
    disarm();
    cancel.disabled = true;
    try {
      await api(`/executions/${id}/cancel`, { method: "POST", body: {} });
    } catch (error) {
      showNotice(error.message);
      cancel.disabled = false;
    }
  });
  retry.addEventListener("click", async () => {
    retry.disabled = true;
    try {
      const started = await api(`/executions/${id}/retry`, { method: "POST", body: { initiator: "console" } });
      location.hash = `#/executions/${started.execution_id || started.id}`;
    } catch (error) {
      showNotice(error.message);
      retry.disabled = false;
    }
  });

  let latest = null;
  let graphStatuses = "";
  let drawn = false;
  // Answers may come back out of order: only the newest request's answer is shown.
  let asked = 0;
  const refresh = async () => {
    const generation = ++asked;
    const answer = await api(`/executions/${id}/progress?include_events=false`, { signal: scope });
    if (generation !== asked || scope.aborted) return;
    latest = answer;
    renderExecution(latest, parts);
    const statuses = latest.steps.map((step) => statusClass(step.status, step.awaiting_event)).join();
    if (statuses !== graphStatuses) {
      graphStatuses = statuses;
      paintGraph(graph, latest.steps);
      if (drawn) redrawSoon();
    }
  };
  // The picture's labels (durations, waits) are redrawn at most every 1.5 s; colours change at once.
  let redrawTimer = null;
  let redrawn = 0;
  const redrawSoon = () => {
    if (redrawTimer) return;
    redrawTimer = setTimeout(async () => {
      redrawTimer = null;
      redrawn = Date.now();
      await drawGraph(graph, `/executions/${id}/graph?format=svg`, scope).catch(() => {});
      if (latest) paintGraph(graph, latest.steps);
    }, Math.max(0, 1500 - (Date.now() - redrawn)));
  };
  scope.addEventListener("abort", () => clearTimeout(redrawTimer));

  await refresh();
  if (!["COMPLETED", "FAILED", "CANCELLED"].includes(latest.execution.status)) follow(id, scope, refresh);
  // Durations of running steps and the ETA move between events too (a finished run stays still,
  // so its outputs can be selected and copied).
  every(1, scope, async () => {
    if (latest && !["COMPLETED", "FAILED", "CANCELLED"].includes(latest.execution.status)) {
      renderExecution(latest, parts, true);
    }
  });
  // One first picture; later changes redraw it (the status change the first refresh saw is in it).
  redrawn = Date.now();
  const pictured = graphStatuses;
  await drawGraph(graph, `/executions/${id}/graph?format=svg`, scope);
  drawn = true;
  paintGraph(graph, latest.steps);
  if (graphStatuses !== pictured) redrawSoon();
}

/** Reads the execution's stream and calls `changed` (at most every 200 ms) after its events; reconnects while it runs. */
async function follow(id, scope, changed) {
  let pending = null;
  const soon = () => {
    if (pending) return;
    pending = setTimeout(() => {
      pending = null;
      changed().catch((error) => {
        if (!scope.aborted && error.name !== "AbortError") showNotice(error.message);
      });
    }, 200);
  };
  scope.addEventListener("abort", () => clearTimeout(pending));
  let delay = 1000;
  while (!scope.aborted) {
    let finished = false;
    try {
      const response = await fetch(`/executions/${id}/stream`, { headers: authHeaders(), signal: scope });
      if (!response.ok || !response.body) throw new Error(`the live stream answered ${response.status}`);
      showNotice("");
      delay = 1000;
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const type = (block.match(/^event: ?(.*)$/m) || [])[1];
          if (!type) continue;
          if (["workflow_completed", "workflow_failed", "workflow_cancelled"].includes(type)) finished = true;
          soon();
        }
      }
      soon();
      if (finished) return;
      // The stream also ends after a final snapshot: one more read tells whether the run is over.
      const execution = await api(`/executions/${id}`, { signal: scope });
      if (["COMPLETED", "FAILED", "CANCELLED"].includes(execution.status)) return;
    } catch (error) {
      if (scope.aborted || error.name === "AbortError") return;
      showNotice(`Live updates interrupted (${error.message}); reconnecting…`, "warning");
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 15000);
  }
}

function renderExecution(progress, parts, tickOnly) {
  const execution = progress.execution;
  const definition = execution.pipeline_definition || {};
  const aggregate = progress.aggregated_progress || {};
  const running = !["COMPLETED", "FAILED", "CANCELLED"].includes(execution.status);
  if (!tickOnly) {
    const pipelineLink = definition.workflow_id && definition.workflow_id !== "ephemeral"
      ? h("a", { href: `#/pipelines/${definition.workflow_id}` }, definition.workflow_name || "pipeline")
      : h("span", {}, definition.workflow_name || "ephemeral pipeline");
    fill(parts.title, pipelineLink, h("span", { class: "mono muted", title: execution.id }, ` ${shortID(execution.id)}`));
    fill(parts.status, badge(execution.status));
    parts.cancel.hidden = !running;
    parts.retry.hidden = !(execution.status === "FAILED" || execution.status === "CANCELLED");
    parts.header.dataset.status = statusClass(execution.status);
  }
  const elapsed = secondsBetween(execution.start_time, execution.end_time);
  const eta = running && aggregate.eta_seconds !== null && aggregate.eta_seconds !== undefined ? duration(Number(aggregate.eta_seconds)) : null;
  fill(parts.summary, 
    progressBar(Number(aggregate.overall_progress ?? execution.progress_percentage)),
    h("span", {}, `${aggregate.completed_steps ?? 0} of ${aggregate.total_steps ?? progress.steps.length} steps done`),
    h("span", {}, `elapsed ${duration(elapsed)}`),
    eta ? h("span", { id: "execution-eta" }, `ETA ${eta}`) : null,
    h("span", {}, `started ${time(execution.start_time)} by ${execution.initiator}`),
    execution.retry_of ? h("a", { href: `#/executions/${execution.retry_of}` }, "retry of an earlier execution") : null,
  );
  sizeBars(parts.summary);
  renderTimeline(parts.timeline, progress.steps, execution);
  if (!tickOnly) {
    clear(parts.outcome);
    if (execution.error_info) parts.outcome.append(h("h2", {}, "Error"), h("p", { class: "error-text" }, execution.error_info.message || ""), json(execution.error_info));
    if (execution.final_outputs) parts.outcome.append(h("h2", {}, "Outputs"), json(execution.final_outputs));
  }
}

function renderTimeline(container, steps, execution) {
  const open = new Set(Array.from(container.querySelectorAll("details[open]")).map((element) => element.dataset.stepId));
  const origin = execution.start_time ? new Date(execution.start_time).getTime() : Date.now();
  const horizon = Math.max(1, ((execution.end_time ? new Date(execution.end_time).getTime() : Date.now()) - origin) / 1000);
  const ordered = [...steps].sort((a, b) => a.sequence_number - b.sequence_number);
  fill(container, ...ordered.map((step) => {
    const status = statusClass(step.status, step.awaiting_event);
    const started = step.start_time ? (new Date(step.start_time).getTime() - origin) / 1000 : null;
    const length = secondsBetween(step.start_time, step.end_time);
    const bar = h("span", { class: `span status-${status}` });
    if (started !== null) {
      bar.style.left = `${Math.min(100, Math.max(0, (started / horizon) * 100))}%`;
      bar.style.width = `${Math.max(0.8, Math.min(100, ((length || 0) / horizon) * 100))}%`;
    } else {
      bar.hidden = true;
    }
    const waits = [];
    if (step.awaiting_event) waits.push(`waits for an event${step.external_workflow_id ? ` of ${step.external_workflow_id}` : ""}${step.timeout_at ? ` until ${time(step.timeout_at)}` : ""}`);
    if (status === "retrying") waits.push(`attempt ${Number(step.retry_count) + 1} waits out its backoff`);
    const details = h("details", { "data-step-id": step.step_id, open: open.has(step.step_id) },
      h("summary", {},
        h("span", { class: "step-name" }, step.step_name || step.step_id),
        badge(step.status, step.awaiting_event),
        h("span", { class: "lane" }, bar),
        h("span", { class: "step-duration" }, started === null ? "" : duration(length))),
      h("div", { class: "step-body" },
        h("p", { class: "meta" }, `${step.step_id} · ${step.handler_type}${step.retry_count ? ` · attempt ${step.retry_count + 1}` : ""}${Number(step.progress_percentage) > 0 && status === "running" ? ` · ${step.progress_percentage}%` : ""}${step.eta_seconds ? ` · ETA ${duration(step.eta_seconds)}` : ""}`),
        waits.map((text) => h("p", { class: "wait" }, text)),
        step.error_message ? h("p", { class: "error-text" }, step.error_message) : null,
        step.outputs && Object.keys(step.outputs).length ? json(step.outputs) : null));
    return h("div", { class: "step-row", "data-step-id": step.step_id, "data-status": status }, details);
  }));
}

// MARK: Schedules, webhooks, event triggers

function pipelineCell(names, id) {
  return h("td", {}, h("a", { href: `#/pipelines/${id}` }, names.get(id) || shortID(id)));
}

function enabledCell(enabled) {
  return h("td", {}, h("span", { class: `badge ${enabled ? "status-completed" : "status-cancelled"}` }, enabled ? "enabled" : "disabled"));
}

async function schedulesView(scope, root) {
  const names = await namesOrNone(scope);
  const container = h("div", { id: "schedule-list" });
  add(root, h("h1", {}, "Schedules"), container);
  const load = async () => {
    const answer = await api("/schedules", { signal: scope });
    fill(container, table(["Name", "Pipeline", "When", "Status", "Next run", "Last run", "Runs", ""],
      answer.schedules.map((schedule) => {
        const when = schedule.schedule.type === "one_time" ? `once at ${time(schedule.schedule.run_at)}`
          : `${schedule.schedule.type} ${schedule.schedule.expression || ""} ${schedule.schedule.timezone || ""}`;
        const paused = schedule.status === "paused";
        const toggle = h("button", { type: "button", class: "secondary", hidden: !(paused || schedule.status === "active") }, paused ? "Resume" : "Pause");
        toggle.addEventListener("click", () => act(`/schedules/${schedule.id}/${paused ? "resume" : "pause"}`, load));
        const trigger = h("button", { type: "button", class: "secondary" }, "Run now");
        trigger.addEventListener("click", () => act(`/schedules/${schedule.id}/trigger`, load));
        return h("tr", { "data-id": schedule.id }, h("td", {}, schedule.name), pipelineCell(names, schedule.workflow_id), h("td", { class: "mono" }, when),
          h("td", {}, badge(schedule.status.toUpperCase())), h("td", {}, time(schedule.next_run_at)),
          h("td", {}, schedule.last_execution_id ? h("a", { href: `#/executions/${schedule.last_execution_id}` }, time(schedule.last_run_at)) : time(schedule.last_run_at)),
          h("td", { class: "number" }, `${schedule.run_count}${schedule.max_runs ? ` / ${schedule.max_runs}` : ""}`), h("td", { class: "actions" }, toggle, trigger));
      }), "No schedules."));
  };
  await load();
}

async function act(path, reload) {
  try {
    const answer = await api(path, { method: "POST", body: {} });
    if (answer && answer.execution_id) showNotice(`Started execution ${shortID(answer.execution_id)}.`, "info");
    await reload();
  } catch (error) {
    showNotice(error.message);
  }
}

async function webhooksView(scope, root) {
  const [names, webhooks] = await Promise.all([namesOrNone(scope), api("/webhooks", { signal: scope })]);
  add(root, h("h1", {}, "Webhooks"), table(["Name", "Pipeline", "Endpoint", "Auth", "Status", "Deliveries", "Last triggered"],
    webhooks.map((webhook) => h("tr", { "data-id": webhook.id }, h("td", {}, webhook.name), pipelineCell(names, webhook.workflow_id),
      h("td", { class: "mono" }, webhook.endpoint_url), h("td", {}, webhook.config.auth_mode), enabledCell(webhook.enabled),
      h("td", { class: "number" }, webhook.trigger_count), h("td", {}, time(webhook.last_triggered_at)))), "No webhooks."));
}

async function triggersView(scope, root) {
  const [names, triggers] = await Promise.all([namesOrNone(scope), api("/event-triggers", { signal: scope })]);
  add(root, h("h1", {}, "Event triggers"), table(["Name", "Pipeline", "Event type", "Filters", "Status", "Fired", "Last fired"],
    triggers.map((trigger) => h("tr", { "data-id": trigger.id }, h("td", {}, trigger.name), pipelineCell(names, trigger.workflow_id),
      h("td", { class: "mono" }, trigger.config.event_type), h("td", { class: "mono" }, JSON.stringify(trigger.config.filters)),
      enabledCell(trigger.enabled), h("td", { class: "number" }, trigger.trigger_count), h("td", {}, time(trigger.last_triggered_at)))), "No event triggers."));
}

// MARK: Plugins

async function pluginsView(scope, root) {
  const inventory = await api("/plugins", { signal: scope });
  add(root, 
    h("h1", {}, "Plugins"),
    h("p", { class: "meta" }, `Host plugin ABI ${inventory.host_abi}${inventory.directories ? ` · searched ${inventory.directories.join(", ") || "no directories"}` : ""}`),
    table(["Plugin", "Version", "ABI", "Runs", "Health", "Actions", "Process"],
      inventory.plugins.map((plugin) => h("tr", { class: "plugin-row", "data-name": plugin.name },
        h("td", {}, plugin.name, h("div", { class: "muted mono" }, plugin.file)),
        h("td", {}, plugin.version), h("td", {}, plugin.abi), h("td", {}, plugin.isolation),
        h("td", {}, h("span", { class: `badge ${plugin.healthy ? "status-completed" : "status-failed"}` }, plugin.healthy ? "healthy" : "unhealthy"),
          plugin.unhealthy_reason ? h("div", { class: "error-text" }, plugin.unhealthy_reason) : null),
        h("td", {}, h("ul", { class: "plain" }, plugin.actions.map((action) => h("li", { class: "mono" }, action)))),
        h("td", {}, plugin.process ? `pid ${plugin.process.pid ?? "—"} · ${plugin.process.restarts} restarts · ${plugin.process.crashes} crashes${plugin.process.quarantined ? ` · quarantined: ${plugin.process.quarantined}` : ""}` : "in the server"))),
      "No plugins loaded."),
    h("h2", {}, "Refused"),
    table(["File", "Reason"], inventory.refused.map((refusal) => h("tr", { class: "refusal-row" }, h("td", { class: "mono" }, refusal.file), h("td", {}, refusal.reason))), "Nothing was refused."),
    inventory.notes.length ? h("ul", { class: "notes" }, inventory.notes.map((note) => h("li", {}, note))) : null,
  );
}

// MARK: Start

document.addEventListener("DOMContentLoaded", () => {
  renderIdentity();
  document.getElementById("sign-in").addEventListener("click", () => openTokenDialog());
  document.getElementById("token-form").addEventListener("submit", () => {
    saveIdentity(document.getElementById("token-input").value, document.getElementById("user-input").value);
    route();
  });
  document.getElementById("token-clear").addEventListener("click", () => {
    saveIdentity("", "");
    document.getElementById("token-dialog").close();
    route();
  });
  window.addEventListener("hashchange", route);
  route();
});
