// The dtx console: counts by status, metric charts, the transaction list with
// filters and paging (unfinished first), a transaction's detail with its
// branches, and the admin operations. Plain JavaScript over dtx-server's
// admin HTTP API (docs/operations.md); metrics.js draws the charts.
"use strict";

(function () {
  const FINAL = new Set(["succeed", "failed"]);
  const TOKEN_KEY = "dtx.adminToken";
  const REST_FETCHES = 5;  // list calls per page at most, when rows are skipped

  const $ = (id) => document.getElementById(id);

  // el("td", {className: "x", title: "y"}, "text", child, ...)
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const key in props || {}) {
      if (key === "dataset") Object.assign(node.dataset, props[key]);
      else if (key in node) node[key] = props[key];
      else node.setAttribute(key, props[key]);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  // --- time ------------------------------------------------------------------

  // An RFC 3339 string -> Date, or null for none (empty, null, Go's zero
  // time, unparsable).
  function parseTime(text) {
    if (!text) return null;
    const date = new Date(text);
    if (Number.isNaN(date.getTime()) || date.getUTCFullYear() <= 1) return null;
    return date;
  }

  function pad(n) { return String(n).padStart(2, "0"); }

  function formatTime(text) {
    const d = parseTime(text);
    if (!d) return "—";
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  function formatDuration(ms) {
    const s = Math.round(Math.abs(ms) / 1000);
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
  }

  // "in 12 s" / "due (3 s ago)"
  function relative(text) {
    const d = parseTime(text);
    if (!d) return "";
    const ms = d.getTime() - Date.now();
    return ms > 0 ? "in " + formatDuration(ms) : "due (" + formatDuration(ms) + " ago)";
  }

  function timeCell(text) {
    return el("time", { dateTime: text || "", title: text || "" }, formatTime(text));
  }

  // --- the API ---------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // The message of an error body: dtm's {"message"} / {"dtm_result"}, or
  // dtx's {"error"}; else the text itself.
  function errorMessage(body, text) {
    if (body && typeof body === "object") {
      return body.message || body.error || body.dtm_result || text;
    }
    return text;
  }

  async function request(path, options) {
    let response;
    try {
      response = await fetch(path, Object.assign({ cache: "no-store" }, options || {}));
    } catch (e) {
      throw new ApiError(0, "cannot reach dtx-server (" + e.message + ")");
    }
    const text = await response.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
    if (!response.ok) {
      throw new ApiError(response.status, "HTTP " + response.status + ": " +
                         (errorMessage(body, text) || response.statusText));
    }
    return { text: text, body: body };
  }

  async function getJson(path, params) {
    const query = new URLSearchParams();
    for (const key in params || {}) {
      if (params[key] !== "" && params[key] !== undefined && params[key] !== null) {
        query.set(key, params[key]);
      }
    }
    const qs = query.toString();
    // With Admin.Token set, dtx-server's reads need the token too.
    const token = adminToken();
    const r = await request(path + (qs ? "?" + qs : ""),
                            token ? { headers: { Authorization: "Bearer " + token } } : undefined);
    if (r.body === null || typeof r.body !== "object") {
      throw new ApiError(200, path + " did not answer JSON");
    }
    return r.body;
  }

  function adminToken() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

  async function adminPost(path, gid) {
    const headers = { "Content-Type": "application/json" };
    const token = adminToken();
    if (token) headers.Authorization = "Bearer " + token;
    try {
      return (await request(path, { method: "POST", headers: headers,
                                    body: JSON.stringify({ gid: gid }) })).body;
    } catch (e) {
      if (e.status === 401) {
        throw new ApiError(401, token
          ? "401 Unauthorized: the admin token was not accepted. Check the Admin token field at the top."
          : "401 Unauthorized: this dtx-server requires an admin token (Admin.Token). " +
            "Enter it in the Admin token field at the top and try again.");
      }
      throw e;
    }
  }

  // --- notices ---------------------------------------------------------------

  const problems = new Map();  // source -> message

  function problem(source, error) {
    if (error) problems.set(source, error.message || String(error));
    else problems.delete(source);
    const notice = $("notice");
    notice.textContent = Array.from(problems.entries()).map((e) => e[0] + ": " + e[1]).join(" — ");
    notice.hidden = problems.size === 0;
  }

  function badge(status) {
    return el("span", { className: "badge status-" + (status || "unknown") }, status || "?");
  }

  // --- counts ----------------------------------------------------------------

  async function refreshStats() {
    try {
      const stats = await getJson("/api/dtx/stats");
      const counts = stats.counts || {};
      for (const status of ["prepared", "submitted", "aborting", "succeed", "failed"]) {
        $("count-" + status).textContent = String(counts[status] || 0);
      }
      $("count-unfinished").textContent = String(stats.unfinished || 0);
      $("count-due").textContent = String(stats.due || 0);
      const oldest = parseTime(stats.oldest_unfinished_create_time);
      $("count-oldest").textContent = oldest ? formatDuration(Date.now() - oldest.getTime()) : "—";
      $("count-oldest").title = stats.oldest_unfinished_create_time || "";
      problem("stats", null);
    } catch (e) {
      problem("stats", e);
    }
  }

  // --- metrics ---------------------------------------------------------------

  const sampler = new window.DtxMetrics.Sampler();

  async function refreshMetrics() {
    try {
      const text = (await request("/api/metrics")).text;
      const families = window.DtxMetrics.parse(text);
      sampler.add(families, Date.now());
      const info = families.get("dtm_server_info");
      if (info && info.samples.length) {
        const labels = info.samples[0].labels;
        $("server-info").textContent = Object.keys(labels).map((k) => k + " " + labels[k]).join(", ");
      }
      const charts = $("charts");
      charts.replaceChildren(...sampler.ordered().map((e) => window.DtxMetrics.renderChart(e, 160, 36)));
      problem("metrics", null);
    } catch (e) {
      problem("metrics", e);
    }
  }

  // --- the list --------------------------------------------------------------

  // A page starts at a cursor: {phase, position}. Phases: "unfinished"
  // (unfinished=true), "rest" (everything, showing final transactions only,
  // since the unfinished ones came first), "single" (one status filter).
  const list = {
    filters: {},
    all: true,        // "all (unfinished first)"
    cursors: [],      // the start of every page seen, for Previous
    page: 0,
    next: null,       // the start of the next page, or null on the last
    shown: null,      // the cursor whose rows the table shows
  };

  function readFilters() {
    const status = $("f-status").value;
    const from = $("f-from").value, to = $("f-to").value;
    list.all = status === "";
    list.filters = {
      status: status === "" || status === "unfinished" ? "" : status,
      transType: $("f-mode").value,
      gidPrefix: $("f-gid").value.trim(),
      createTimeStart: from ? String(new Date(from).getTime()) : "",
      createTimeEnd: to ? String(new Date(to).getTime()) : "",
      limit: $("f-limit").value,
    };
    const first = status === "" || status === "unfinished" ? "unfinished" : "single";
    list.cursors = [{ phase: first, position: "" }];
    list.page = 0;
    // Which filters the table shows (#trans-body's data-version), so that a
    // reader can tell rows of these filters from rows of earlier ones.
    list.version = (list.version || 0) + 1;
  }

  async function fetchPage(cursor) {
    const limit = Number(list.filters.limit) || 100;
    const rows = [];
    let c = cursor;
    if (c.phase === "unfinished" || c.phase === "single") {
      const params = Object.assign({}, list.filters, { position: c.position, limit: limit });
      if (c.phase === "unfinished") params.unfinished = "true";
      const r = await getJson("/api/dtmsvr/all", params);
      rows.push(...(r.transactions || []));
      if (r.next_position) return { rows: rows, next: { phase: c.phase, position: r.next_position } };
      if (c.phase === "single" || !list.all) return { rows: rows, next: null };
      c = { phase: "rest", position: "" };
      if (rows.length >= limit) return { rows: rows, next: c };
    }
    // The rest: final transactions only; a short page is topped up.
    for (let i = 0; i < REST_FETCHES && rows.length < limit; i++) {
      const params = Object.assign({}, list.filters,
                                   { position: c.position, limit: limit - rows.length });
      const r = await getJson("/api/dtmsvr/all", params);
      rows.push(...(r.transactions || []).filter((t) => FINAL.has(t.status)));
      if (!r.next_position) return { rows: rows, next: null };
      c = { phase: "rest", position: r.next_position };
    }
    return { rows: rows, next: c };
  }

  function renderRows(rows) {
    const selected = currentGid();
    const body = $("trans-body");
    body.replaceChildren(...rows.map((t) => {
      const link = el("a", { href: "#gid=" + encodeURIComponent(t.gid), className: "gid" }, t.gid);
      const unfinished = !FINAL.has(t.status);
      const row = el("tr", { dataset: { gid: t.gid, status: t.status || "" } },
        el("td", {}, link),
        el("td", {}, t.trans_type || ""),
        el("td", {}, badge(t.status)),
        el("td", {}, timeCell(t.create_time)),
        el("td", { className: "col-updated" }, timeCell(t.update_time)),
        el("td", { title: t.next_cron_time || "" },
           unfinished ? formatTime(t.next_cron_time) + " " : "—",
           unfinished ? el("span", { className: "muted" }, relative(t.next_cron_time)) : null),
        el("td", { className: "num" }, String(t.retry_count || 0)));
      if (t.gid === selected) row.classList.add("selected");
      row.addEventListener("click", (event) => {
        if (event.target.tagName !== "A") location.hash = link.getAttribute("href");
      });
      return row;
    }));
    if (rows.length === 0) {
      body.appendChild(el("tr", {}, el("td", { colSpan: 7, className: "empty" },
                                        "No transactions match these filters.")));
    }
  }

  async function refreshList() {
    const cursor = list.cursors[list.page];
    const version = list.version;
    try {
      const page = await fetchPage(cursor);
      if (cursor !== list.cursors[list.page]) return;  // the user moved on
      list.next = page.next;
      list.shown = cursor;
      renderRows(page.rows);
      $("trans-body").dataset.version = String(version);
      const where = cursor.phase === "rest" ? "finished" :
                    cursor.phase === "single" ? list.filters.status :
                    list.all ? "unfinished first" : "unfinished";
      $("trans-caption").textContent = "Page " + (list.page + 1) + ": " + page.rows.length +
        " transaction" + (page.rows.length === 1 ? "" : "s") + " (" + where + ")";
      $("page-prev").disabled = list.page === 0;
      $("page-first").disabled = list.page === 0;
      $("page-next").disabled = !list.next;
      problem("list", null);
    } catch (e) {
      problem("list", e);
      // Rows of other filters would mislead; a failed refresh keeps its rows.
      if (cursor === list.cursors[list.page] && list.shown !== cursor) {
        $("trans-body").replaceChildren(el("tr", {}, el("td", { colSpan: 7, className: "empty" },
                                                        "Cannot list: " + e.message)));
        $("trans-caption").textContent = "Page " + (list.page + 1) + ": not loaded";
        $("trans-body").dataset.version = String(version);
        $("page-next").disabled = true;
      }
    }
  }

  // --- the detail ------------------------------------------------------------

  function currentGid() {
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    return params.get("gid") || "";
  }

  function field(dl, name, value) {
    if (value === null || value === undefined || value === "") return;
    dl.append(el("dt", {}, name), el("dd", {}, value));
  }

  function pretty(text) {
    if (!text) return "";
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return String(text); }
  }

  function base64Size(text) {
    if (!text) return 0;
    const padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
    return Math.floor((text.length * 3) / 4) - padding;
  }

  function renderBranch(b, t) {
    // The branch being retried: tried before and not finished.
    const retried = !FINAL.has(t.status) && !FINAL.has(b.status) && (b.attempts || 0) > 0;
    const fields = el("dl", { className: "branch-fields" });
    field(fields, "Attempts", el("span", { className: "attempts" }, String(b.attempts || 0)));
    field(fields, "Last try", timeCell(b.last_try_time));
    if (retried) {
      field(fields, "Next retry", el("span", {}, formatTime(t.next_cron_time) + " ",
                                     el("span", { className: "muted" }, relative(t.next_cron_time))));
    }
    field(fields, "Created", timeCell(b.create_time));
    if (parseTime(b.finish_time)) field(fields, "Finished", timeCell(b.finish_time));
    if (parseTime(b.rollback_time)) field(fields, "Rolled back", timeCell(b.rollback_time));
    field(fields, "Payload", base64Size(b.bin_data) + " bytes");
    return el("li", { className: "branch status-" + (b.status || "unknown"),
                      dataset: { branchId: b.branch_id || "", op: b.op || "" } },
      el("div", { className: "branch-head" },
         el("span", { className: "op" }, b.op || "?"), " ",
         el("span", { className: "branch-id", title: "branch_id" }, b.branch_id || ""), " ",
         badge(b.status)),
      el("div", { className: "url" }, el("code", {}, b.url || "")),
      fields,
      b.last_error ? el("div", { className: "last-error" },
                        el("span", { className: "label" }, "Last error"),
                        el("pre", {}, b.last_error)) : null);
  }

  function opRank(op) { return op === "try" || op === "action" ? 0 : 1; }

  let detailToken = 0;  // ignores answers to a previous gid

  async function refreshDetail() {
    const gid = currentGid();
    const section = $("detail");
    document.body.classList.toggle("with-detail", gid !== "");
    section.hidden = gid === "";
    for (const row of $("trans-body").querySelectorAll("tr")) {
      row.classList.toggle("selected", row.dataset.gid === gid);
    }
    if (!gid) return;
    const token = ++detailToken;
    $("d-gid").textContent = gid;
    try {
      const reply = await getJson("/api/dtmsvr/query", { gid: gid });
      if (token !== detailToken) return;
      const t = reply.transaction;
      const fields = $("d-fields");
      const branches = $("d-branches");
      if (!t) {
        fields.replaceChildren(el("dt", {}, "Not found"),
                               el("dd", {}, "No transaction has gid " + gid + "."));
        branches.replaceChildren();
        $("retry-now").disabled = $("force-stop").disabled = true;
        section.dataset.status = "";
        problem("detail", null);
        return;
      }
      section.dataset.status = t.status || "";
      const dl = el("dl", { className: "fields" });
      field(dl, "Status", badge(t.status));
      field(dl, "Mode", t.trans_type);
      field(dl, "Created", timeCell(t.create_time));
      field(dl, "Updated", timeCell(t.update_time));
      if (parseTime(t.finish_time)) field(dl, "Finished", timeCell(t.finish_time));
      if (parseTime(t.rollback_time)) field(dl, "Rolled back", timeCell(t.rollback_time));
      if (!FINAL.has(t.status)) {
        field(dl, "Next retry", el("span", { className: "next-retry" },
                                   formatTime(t.next_cron_time) + " ",
                                   el("span", { className: "muted" }, relative(t.next_cron_time))));
        if (t.next_cron_interval) field(dl, "Retry interval", t.next_cron_interval + " s");
      }
      field(dl, "Retries", String(t.retry_count || 0));
      field(dl, "Rollback reason", t.rollback_reason);
      field(dl, "Result", t.result);
      if (t.custom_data) field(dl, "Custom data", el("pre", {}, pretty(t.custom_data)));
      if (t.options && t.options !== "{}") field(dl, "Options", el("pre", {}, pretty(t.options)));
      fields.replaceChildren(...dl.childNodes);
      // By branch, the forward op (try, action) before the one that follows.
      const rows = (reply.branches || []).map((b, i) => [b, i]).sort((x, y) =>
        String(x[0].branch_id).localeCompare(String(y[0].branch_id)) ||
        opRank(x[0].op) - opRank(y[0].op) || x[1] - y[1]).map((pair) => pair[0]);
      branches.replaceChildren(...rows.map((b) => renderBranch(b, t)));
      if (rows.length === 0) branches.appendChild(el("li", { className: "empty" }, "No branches."));
      $("retry-now").disabled = $("force-stop").disabled = FINAL.has(t.status);
      problem("detail", null);
    } catch (e) {
      if (token === detailToken) problem("detail", e);
    }
  }

  async function act(path, verb) {
    const gid = currentGid();
    if (!gid) return;
    if (!window.confirm(verb + " transaction " + gid + "?")) return;
    const out = $("action-result");
    out.className = "action-result";
    out.textContent = verb + "…";
    try {
      const body = await adminPost(path, gid);
      out.classList.add("ok");
      out.textContent = verb + ": " + ((body && (body.dtm_result || body.message)) || "done");
    } catch (e) {
      out.classList.add("error");
      out.textContent = verb + " failed: " + e.message;
    }
    await refreshAll();
  }

  // --- refreshing ------------------------------------------------------------

  let inFlight = null;
  let timer = 0;

  function refreshAll() {
    if (!inFlight) {
      inFlight = Promise.all([refreshStats(), refreshMetrics(), refreshList(), refreshDetail()])
        .finally(() => {
          inFlight = null;
          const now = new Date();
          $("last-refresh").textContent = "updated " + pad(now.getHours()) + ":" +
            pad(now.getMinutes()) + ":" + pad(now.getSeconds());
        });
    }
    return inFlight;
  }

  function schedule() {
    clearTimeout(timer);
    if (!$("live").checked) return;
    timer = setTimeout(async () => {
      if (!document.hidden) await refreshAll();
      schedule();
    }, Number($("interval").value) || 2000);
  }

  function start() {
    $("token").value = adminToken();
    $("token").addEventListener("input", () => {
      const value = $("token").value;
      if (value) sessionStorage.setItem(TOKEN_KEY, value);
      else sessionStorage.removeItem(TOKEN_KEY);
    });
    $("token-form").addEventListener("submit", (event) => event.preventDefault());
    $("live").addEventListener("change", schedule);
    $("interval").addEventListener("change", schedule);
    $("refresh-now").addEventListener("click", () => refreshAll());
    $("filters").addEventListener("submit", (event) => {
      event.preventDefault();
      readFilters();
      refreshList();
    });
    $("filters").addEventListener("reset", () => {
      setTimeout(() => { readFilters(); refreshList(); }, 0);
    });
    $("page-first").addEventListener("click", () => { list.page = 0; refreshList(); });
    $("page-prev").addEventListener("click", () => {
      if (list.page > 0) { list.page--; refreshList(); }
    });
    $("page-next").addEventListener("click", () => {
      if (!list.next) return;
      list.cursors.length = list.page + 1;
      list.cursors.push(list.next);
      list.page++;
      refreshList();
    });
    $("retry-now").addEventListener("click", () => act("/api/dtx/retryNow", "Retry now"));
    $("force-stop").addEventListener("click", () => act("/api/dtmsvr/forceStop", "Force stop"));
    $("detail-close").addEventListener("click", () => {
      history.replaceState(null, "", location.pathname + location.search);
      $("action-result").textContent = "";
      refreshDetail();
    });
    window.addEventListener("hashchange", () => {
      $("action-result").textContent = "";
      refreshDetail();
    });
    readFilters();
    refreshAll().then(schedule);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
