// Shared helpers for the console and the /usage page: DOM building (textContent only, never innerHTML with
// data), money and time formatting, and a small SVG bar chart. No framework, no network beyond fetch.
"use strict";

const Orgate = (() => {
  const SVG = "http://www.w3.org/2000/svg";

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "text") node.textContent = v;
      else if (k in node && typeof v !== "string") node[k] = v;
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function usd(micros) {
    if (micros === null || micros === undefined) return "—";
    // Exact to the micro-dollar (a remaining $0.999829 must not read as $1.00), trailing zeros trimmed.
    const s = (Math.abs(micros) / 1e6).toFixed(6).replace(/0{1,4}$/, "");
    return (micros < 0 ? "-$" : "$") + s;
  }

  function num(n) {
    return n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US");
  }

  function when(ms) {
    if (!ms) return "—";
    return new Date(ms).toISOString().replace("T", " ").slice(0, 19) + "Z";
  }

  function day(ms) {
    return new Date(ms).toISOString().slice(0, 10);
  }

  // A table with a caption, header cells scoped to columns, and rows built by `cols` renderers.
  function table(caption, cols, rows, empty) {
    const head = el("tr", {}, cols.map((c) => el("th", { scope: "col", class: c.num ? "num" : null, text: c.label })));
    const body = rows.length
      ? rows.map((r) => el("tr", {}, cols.map((c) => {
          const v = c.render(r);
          return el("td", { class: c.num ? "num" : null }, v instanceof Node ? v : String(v ?? "—"));
        })))
      : [el("tr", {}, el("td", { colspan: String(cols.length), class: "empty", text: empty || "Nothing yet." }))];
    return el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
      el("table", {}, el("caption", { text: caption }), el("thead", {}, head), el("tbody", {}, body)));
  }

  // Bars for a series of {label, value}; `fmt` formats values for axis, tooltips and the summary label.
  function barChart(title, points, fmt) {
    const w = 640, h = 200, padL = 8, padB = 22, padT = 18;
    const max = Math.max(1, ...points.map((p) => p.value));
    const total = points.reduce((a, p) => a + p.value, 0);
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    svg.setAttribute("role", "img");
    svg.setAttribute("class", "chart");
    svg.setAttribute("aria-label", `${title}: ${points.length} days, total ${fmt(total)}, peak ${fmt(max)}`);
    const bw = points.length ? (w - padL * 2) / points.length : 0;
    points.forEach((p, i) => {
      const bh = Math.round(((h - padB - padT) * p.value) / max);
      const r = document.createElementNS(SVG, "rect");
      r.setAttribute("x", String(padL + i * bw + 1));
      r.setAttribute("y", String(h - padB - bh));
      r.setAttribute("width", String(Math.max(1, bw - 2)));
      r.setAttribute("height", String(Math.max(bh, p.value > 0 ? 1 : 0)));
      r.setAttribute("class", "bar");
      const t = document.createElementNS(SVG, "title");
      t.textContent = `${p.label}: ${fmt(p.value)}`;
      r.append(t);
      svg.append(r);
    });
    const text = (x, y, s, anchor) => {
      const n = document.createElementNS(SVG, "text");
      n.setAttribute("x", String(x)); n.setAttribute("y", String(y));
      n.setAttribute("text-anchor", anchor); n.setAttribute("class", "axis");
      n.textContent = s; svg.append(n);
    };
    text(padL, 12, "max " + fmt(max), "start");
    if (points.length) {
      text(padL, h - 6, points[0].label, "start");
      text(w - padL, h - 6, points[points.length - 1].label, "end");
    } else {
      text(w / 2, h / 2, "No data in this period", "middle");
    }
    return el("figure", { class: "chart-box" }, el("figcaption", { text: title }), svg);
  }

  // One point per UTC day from `days` ago to today, zero-filled, from rows with day_ms.
  function dailySeries(rows, days, value) {
    const byDay = new Map(rows.map((r) => [r.day_ms, r]));
    const today = Math.floor(Date.now() / 86400000) * 86400000;
    const out = [];
    for (let d = today - (days - 1) * 86400000; d <= today; d += 86400000) {
      const r = byDay.get(d);
      out.push({ label: day(d), value: r ? value(r) : 0 });
    }
    return out;
  }

  function stat(label, value, hint) {
    return el("div", { class: "stat" }, el("div", { class: "stat-label", text: label }),
      el("div", { class: "stat-value", text: value }), hint ? el("div", { class: "stat-hint", text: hint }) : null);
  }

  function badge(state) {
    return el("span", { class: "badge badge-" + state, text: state });
  }

  function announce(msg, kind) {
    const box = document.getElementById("status");
    if (!box) return;
    box.className = "status " + (kind || "info");
    box.textContent = msg;
    box.hidden = !msg;
  }

  async function errorMessage(resp) {
    try {
      const j = await resp.json();
      return (j.error && j.error.message) || resp.statusText;
    } catch (e) {
      return resp.statusText || "HTTP " + resp.status;
    }
  }

  async function copy(text, input) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (e) {
      if (input) { input.select(); return document.execCommand("copy"); }
      return false;
    }
  }

  return { el, usd, num, when, day, table, barChart, dailySeries, stat, badge, announce, errorMessage, copy };
})();
