// The console's metrics: a parser for Prometheus's text format (what
// GET /api/metrics serves), the charts made from successive scrapes, and
// their sparklines as inline SVG. Exposes window.DtxMetrics; console.js
// scrapes and calls it.
"use strict";

(function () {
  const HISTORY = 90;  // points kept per chart

  // --- the text format -------------------------------------------------------

  function parseValue(text) {
    if (text === "+Inf" || text === "Inf") return Infinity;
    if (text === "-Inf") return -Infinity;
    if (text === "NaN") return NaN;
    const value = Number(text);
    return Number.isNaN(value) ? null : value;
  }

  // name{a="x",b="y\"z"} 12 [timestamp] -> {name, labels, value}; null when
  // the line is not a sample.
  function parseSample(line) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
    if (!match) return null;
    const name = match[1];
    const labels = {};
    let i = name.length;
    if (line[i] === "{") {
      i++;
      for (;;) {
        while (line[i] === " " || line[i] === ",") i++;
        if (line[i] === "}") { i++; break; }
        const label = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i));
        if (!label) return null;
        i += label[0].length;
        while (line[i] === " ") i++;
        if (line[i] !== "=" || line[i + 1] !== '"') return null;
        i += 2;
        let value = "";
        while (i < line.length && line[i] !== '"') {
          if (line[i] === "\\" && i + 1 < line.length) {
            const next = line[i + 1];
            value += next === "n" ? "\n" : next;
            i += 2;
          } else {
            value += line[i++];
          }
        }
        if (line[i] !== '"') return null;
        i++;
        labels[label[0]] = value;
      }
    }
    const rest = line.slice(i).trim().split(/\s+/);
    const value = parseValue(rest[0]);
    if (value === null) return null;
    return { name: name, labels: labels, value: value };
  }

  // Text -> Map(family name -> {name, type, help, samples: [{name, labels,
  // value}]}). Histogram and summary samples (_bucket, _sum, _count) belong
  // to their family; a sample without a # TYPE is its own untyped family.
  function parse(text) {
    const families = new Map();
    function family(name) {
      let f = families.get(name);
      if (!f) {
        f = { name: name, type: "untyped", help: "", samples: [] };
        families.set(name, f);
      }
      return f;
    }
    for (const raw of text.split("\n")) {
      const line = raw.trim();
      if (line === "") continue;
      if (line[0] === "#") {
        const meta = /^#\s+(HELP|TYPE)\s+(\S+)\s?(.*)$/.exec(line);
        if (!meta) continue;
        if (meta[1] === "TYPE") family(meta[2]).type = meta[3].trim();
        else family(meta[2]).help = meta[3].replace(/\\n/g, "\n").replace(/\\\\/g, "\\");
        continue;
      }
      const sample = parseSample(line);
      if (!sample) continue;
      let owner = families.get(sample.name);
      const suffix = /^(.*)_(bucket|sum|count)$/.exec(sample.name);
      if (suffix) {
        const base = families.get(suffix[1]);
        if (base && (base.type === "histogram" || base.type === "summary")) owner = base;
      }
      (owner || family(sample.name)).samples.push(sample);
    }
    return families;
  }

  // --- quantities from two scrapes -------------------------------------------

  function matches(labels, filter) {
    for (const key in filter) {
      if (labels[key] !== filter[key]) return false;
    }
    return true;
  }

  // {group value -> sum of the samples named `sampleName`}, grouped by label
  // `by` ("" = one group, "total").
  function sums(family, sampleName, by, filter) {
    const out = {};
    for (const s of family.samples) {
      if (s.name !== sampleName || !matches(s.labels, filter || {})) continue;
      if (!Number.isFinite(s.value)) continue;
      const key = by ? (s.labels[by] || "") : "total";
      out[key] = (out[key] || 0) + s.value;
    }
    return out;
  }

  // Per-second increase between two scrapes; a counter that went down (the
  // server restarted) restarts from its new value.
  function rates(cur, prev, seconds) {
    const out = {};
    for (const key in cur) {
      const before = prev[key] || 0;
      const delta = cur[key] >= before ? cur[key] - before : cur[key];
      out[key] = delta / seconds;
    }
    return out;
  }

  // A chart: which family, how to turn scrapes into values, how to show them.
  //   kind: "rate" (a counter per second), "gauge" (its value), "mean" (a
  //   histogram's mean over the interval, in ms)
  const CURATED = [
    { family: "dtm_transaction_process_total", kind: "rate", by: "status",
      title: "Transaction passes / s", unit: "/s" },
    { family: "dtm_branch_process_total", kind: "rate", by: "status",
      title: "Branch calls / s", unit: "/s" },
    { family: "dtx_branch_call_duration_seconds", kind: "mean", by: "",
      title: "Branch call mean latency", unit: "ms" },
    { family: "dtm_transaction_handled_duration", kind: "mean", by: "",
      title: "Transaction pass mean duration", unit: "ms" },
    { family: "dtx_transactions_in_memory", kind: "gauge", by: "",
      title: "Transactions in memory", unit: "" },
    { pattern: /journal.*(queue|queued|pending)/, kind: "gauge", by: "",
      title: "Journal queued writes", unit: "" },
    { pattern: /due/, kind: "gauge", by: "", title: "Due backlog", unit: "" },
    { pattern: /oldest/, kind: "gauge", by: "", title: "Oldest unfinished (s)",
      unit: "s" },
  ];
  // Families with nothing to plot over time.
  const SKIP = /^(dtm_server_info)$/;

  function chartFor(family) {
    for (const c of CURATED) {
      if (c.family === family.name) return c;
      if (c.pattern && !c.family && c.pattern.test(family.name) &&
          family.type === c.kind.replace("rate", "counter")) {
        return c;
      }
    }
    if (SKIP.test(family.name)) return null;
    if (family.type === "counter") {
      return { kind: "rate", by: family.samples.some((s) => "status" in s.labels) ? "status" : "",
               title: family.name + " / s", unit: "/s" };
    }
    if (family.type === "gauge") return { kind: "gauge", by: "", title: family.name, unit: "" };
    if (family.type === "histogram") {
      return { kind: "mean", by: "", title: family.name + " (mean)", unit: "ms" };
    }
    return null;
  }

  function values(chart, family, prevFamily, seconds) {
    if (chart.kind === "gauge") return sums(family, family.name, chart.by);
    if (!prevFamily || !(seconds > 0)) return null;
    if (chart.kind === "rate") {
      return rates(sums(family, family.name, chart.by),
                   sums(prevFamily, family.name, chart.by), seconds);
    }
    // mean: increase of the sum over increase of the count
    const sum = rates(sums(family, family.name + "_sum", chart.by),
                      sums(prevFamily, family.name + "_sum", chart.by), 1);
    const count = rates(sums(family, family.name + "_count", chart.by),
                        sums(prevFamily, family.name + "_count", chart.by), 1);
    const out = {};
    for (const key in count) out[key] = count[key] > 0 ? (sum[key] / count[key]) * 1000 : 0;
    return out;
  }

  // Keeps the last scrape and each chart's history.
  class Sampler {
    constructor() {
      this.prev = null;
      this.prevTime = 0;
      this.charts = new Map();  // family name -> {chart, family, points}
    }

    // Adds one scrape taken at `time` (ms).
    add(families, time) {
      const seconds = this.prev ? (time - this.prevTime) / 1000 : 0;
      for (const family of families.values()) {
        if (family.samples.length === 0) continue;
        const chart = chartFor(family);
        if (!chart) continue;
        let entry = this.charts.get(family.name);
        if (!entry) {
          entry = { chart: chart, family: family, points: [] };
          this.charts.set(family.name, entry);
        }
        entry.family = family;
        const v = values(chart, family, this.prev && this.prev.get(family.name), seconds);
        if (v === null) continue;
        entry.points.push({ time: time, values: v });
        if (entry.points.length > HISTORY) entry.points.shift();
      }
      this.prev = families;
      this.prevTime = time;
    }

    // Curated charts first, in their order, then the rest by name.
    ordered() {
      const rank = (entry) => {
        const i = CURATED.indexOf(entry.chart);
        return i < 0 ? CURATED.length : i;
      };
      return Array.from(this.charts.entries())
        .sort((a, b) => rank(a[1]) - rank(b[1]) || a[0].localeCompare(b[0]))
        .map((pair) => pair[1]);
    }
  }

  // --- sparklines ------------------------------------------------------------

  const SVG = "http://www.w3.org/2000/svg";
  const COLORS = { ok: "#1a7f37", fail: "#cf222e", total: "#0969da" };
  const PALETTE = ["#0969da", "#8250df", "#bf8700", "#1b7c83", "#cf222e", "#1a7f37"];

  function color(key, index) {
    return COLORS[key] || PALETTE[index % PALETTE.length];
  }

  function format(value, unit) {
    if (!Number.isFinite(value)) return String(value);
    const abs = Math.abs(value);
    const digits = abs >= 100 || Number.isInteger(value) ? 0 : abs >= 10 ? 1 : 2;
    return value.toFixed(digits) + (unit && unit !== "/s" ? " " + unit : "");
  }

  // One card: title, the latest value of each series, and an SVG sparkline.
  function renderChart(entry, width, height) {
    const card = document.createElement("figure");
    card.className = "chart";
    card.dataset.family = entry.family.name;
    const caption = document.createElement("figcaption");
    caption.textContent = entry.chart.title;
    caption.title = entry.family.help || entry.family.name;
    card.appendChild(caption);

    const keys = [];
    for (const p of entry.points) {
      for (const k in p.values) if (!keys.includes(k)) keys.push(k);
    }
    keys.sort();
    let max = 0;
    for (const p of entry.points) {
      for (const k of keys) {
        const v = p.values[k];
        if (Number.isFinite(v) && v > max) max = v;
      }
    }
    if (max <= 0) max = 1;

    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("width", String(width));
    svg.setAttribute("height", String(height));
    svg.setAttribute("class", "sparkline");
    svg.setAttribute("role", "img");
    const last = entry.points.length ? entry.points[entry.points.length - 1].values : {};
    const summary = keys.map((k) => k + " " + format(last[k] || 0, entry.chart.unit)).join(", ");
    svg.setAttribute("aria-label", entry.chart.title + ": " + (summary || "no data yet"));
    const base = document.createElementNS(SVG, "line");
    base.setAttribute("x1", "0");
    base.setAttribute("x2", String(width));
    base.setAttribute("y1", String(height - 0.5));
    base.setAttribute("y2", String(height - 0.5));
    base.setAttribute("class", "baseline");
    svg.appendChild(base);
    const step = width / Math.max(1, HISTORY - 1);
    const offset = width - step * (entry.points.length - 1);
    keys.forEach((k, index) => {
      const coords = entry.points.map((p, i) => {
        const v = Number.isFinite(p.values[k]) ? p.values[k] : 0;
        const y = height - 2 - (v / max) * (height - 4);
        return (offset + i * step).toFixed(1) + "," + y.toFixed(1);
      });
      if (coords.length === 1) coords.unshift((width - 1).toFixed(1) + "," + coords[0].split(",")[1]);
      const line = document.createElementNS(SVG, "polyline");
      line.setAttribute("points", coords.join(" "));
      line.setAttribute("fill", "none");
      line.setAttribute("stroke", color(k, index));
      line.setAttribute("stroke-width", "1.5");
      svg.appendChild(line);
    });
    card.appendChild(svg);

    const legend = document.createElement("div");
    legend.className = "legend";
    if (keys.length === 0) legend.textContent = "collecting…";
    keys.forEach((k, index) => {
      const item = document.createElement("span");
      item.className = "legend-item";
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.backgroundColor = color(k, index);
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(
        (k === "total" ? "" : k + " ") + format(last[k] || 0, entry.chart.unit)));
      legend.appendChild(item);
    });
    card.appendChild(legend);
    return card;
  }

  window.DtxMetrics = { parse: parse, parseSample: parseSample, Sampler: Sampler,
                        renderChart: renderChart };
})();
