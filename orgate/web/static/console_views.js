// Console views: overview, models & providers, and the request ledger (also embedded in a key's page).
"use strict";

const Ledger = (() => {
  const { el, usd, num, when, table, badge } = Orgate;
  const dayMs = (d) => (d ? Date.parse(d + "T00:00:00Z") : null);

  // A ledger browser: filter form, keyset paging on the row id (newest first), CSV of the same filters.
  function mount(root, fixed) {
    const state = { stack: [], before: null };
    const field = (id, label, input) => el("div", {}, el("label", { for: id, text: label }), input);
    const f = {
      key_id: el("input", { id: "lf-key", name: "key_id", inputmode: "numeric", placeholder: "any" }),
      model: el("input", { id: "lf-model", name: "model", placeholder: "any" }),
      provider: el("input", { id: "lf-provider", name: "provider", placeholder: "any" }),
      status: el("select", { id: "lf-status", name: "status" }, el("option", { value: "", text: "any" }),
        el("option", { value: "ok", text: "ok" }), el("option", { value: "error", text: "error" })),
      api: el("select", { id: "lf-api", name: "api" }, ["", "anthropic", "openai-chat", "openai-responses"]
        .map((v) => el("option", { value: v, text: v || "any" }))),
      since: el("input", { id: "lf-since", name: "since", type: "date" }),
      until: el("input", { id: "lf-until", name: "until", type: "date" }),
    };
    const form = el("form", { class: "grid", "aria-label": "Ledger filters" },
      fixed.key_id ? null : field("lf-key", "Key id", f.key_id),
      field("lf-model", "Model", f.model), field("lf-provider", "Provider", f.provider),
      field("lf-status", "Status", f.status), field("lf-api", "API", f.api),
      field("lf-since", "From (UTC date)", f.since), field("lf-until", "To (UTC date, inclusive)", f.until),
      el("div", {}, el("button", { type: "submit", text: "Apply filters" })));
    const csv = el("a", { class: "button secondary", href: "#", download: "", text: "Export CSV" });
    const newer = el("button", { type: "button", class: "secondary", text: "← Newer" });
    const older = el("button", { type: "button", class: "secondary", text: "Older →" });
    const info = el("span", { class: "muted", "aria-live": "polite" });
    const out = el("div");
    root.append(form, el("div", { class: "pager" }, newer, older, info, el("span", { class: "spacer" }), csv), out);

    function params() {
      const p = new URLSearchParams();
      if (fixed.key_id) p.set("key_id", fixed.key_id); else if (f.key_id.value.trim()) p.set("key_id", f.key_id.value.trim());
      for (const k of ["model", "provider", "status", "api"]) if (f[k].value.trim()) p.set(k, f[k].value.trim());
      if (f.since.value) p.set("since", String(dayMs(f.since.value)));
      if (f.until.value) p.set("until", String(dayMs(f.until.value) + 86400000));
      return p;
    }

    async function load() {
      const p = params();
      csv.href = "/admin/api/ledger.csv?" + p.toString();
      p.set("limit", "50");
      if (state.before) p.set("before_id", String(state.before));
      const res = await Console.api("GET", "ledger?" + p.toString());
      out.replaceChildren(render(res.data, !!fixed.key_id));
      state.next = res.next_before_id;
      older.disabled = !state.next;
      newer.disabled = state.stack.length === 0;
      info.textContent = res.data.length ? `rows #${res.data[0].id} – #${res.data[res.data.length - 1].id}` : "";
    }

    form.addEventListener("submit", (ev) => { ev.preventDefault(); state.stack = []; state.before = null; load(); });
    older.addEventListener("click", () => { state.stack.push(state.before); state.before = state.next; load(); });
    newer.addEventListener("click", () => { state.before = state.stack.pop() || null; load(); });
    return load();
  }

  function render(rows, hideKey) {
    const cols = [
      { label: "Time (UTC)", render: (r) => when(r.ts_ms) },
      hideKey ? null : { label: "Key", render: (r) => r.key_id ? el("a", { href: "#/key/" + r.key_id, text: r.key_name || "#" + r.key_id }) : "—" },
      { label: "API", render: (r) => r.api },
      { label: "Model", render: (r) => r.public_model || r.model },
      { label: "Provider", render: (r) => r.provider },
      { label: "Status", render: (r) => el("span", {}, badge(r.status < 400 ? "ok" : "error"), " ", String(r.status), r.error_type ? " " + r.error_type : "") },
      { label: "In tok", num: true, render: (r) => num(r.input_tokens) },
      { label: "Out tok", num: true, render: (r) => num(r.output_tokens) },
      { label: "Cache read", num: true, render: (r) => num(r.cache_read_tokens) },
      { label: "Cost", num: true, render: (r) => usd(r.cost_micros) },
      { label: "Saved", num: true, render: (r) => usd(r.cache_savings_micros) },
      { label: "Latency", num: true, render: (r) => r.latency_ms === null ? "—" : r.latency_ms + " ms" },
      { label: "Request id", render: (r) => el("code", { text: r.request_id }) },
    ].filter(Boolean);
    return table("Requests (newest first)", cols, rows, "No requests match.");
  }

  return { mount };
})();

(() => {
  const { el, usd, num, table, barChart, dailySeries, stat, badge } = Orgate;
  const V = Console.views;

  function usageTable(caption, rows, nameCol) {
    return table(caption, [
      nameCol,
      { label: "Requests", num: true, render: (r) => num(r.requests) },
      { label: "Errors", num: true, render: (r) => num(r.errors) },
      { label: "Input tokens", num: true, render: (r) => num(r.input_tokens) },
      { label: "Output tokens", num: true, render: (r) => num(r.output_tokens) },
      { label: "Spend", num: true, render: (r) => usd(r.cost_micros) },
      { label: "Cache savings", num: true, render: (r) => usd(r.cache_savings_micros) },
    ], rows, "No usage in this period.");
  }
  Console.usageTable = usageTable;

  V.overview = async (root) => {
    const o = await Console.api("GET", "overview");
    const pct = (x) => (x * 100).toFixed(1) + "%";
    const active = o.keys.active || 0;
    root.replaceChildren(
      el("h2", { text: "Overview" }),
      el("div", { class: "stats" },
        stat("Spend today (UTC)", usd(o.today.cost_micros), num(o.today.requests) + " requests"),
        stat("Spend this month", usd(o.month.cost_micros), num(o.month.requests) + " requests"),
        stat("Error rate today", pct(o.today.error_rate), num(o.today.errors) + " errors"),
        stat("Error rate this month", pct(o.month.error_rate)),
        stat("Cache savings this month", usd(o.month.cache_savings_micros)),
        stat("Active keys", num(active), num(o.keys.disabled || 0) + " disabled")),
      el("div", { class: "charts" },
        barChart("Spend per day (30 days)", dailySeries(o.by_day, 30, (r) => r.cost_micros), usd),
        barChart("Requests per day (30 days)", dailySeries(o.by_day, 30, (r) => r.requests), num)),
      el("h3", { text: "This month" }),
      usageTable("By model", o.by_model, { label: "Model", render: (r) => r.name || "—" }),
      usageTable("By provider", o.by_provider, { label: "Provider", render: (r) => r.name || "—" }),
      usageTable("Top keys", o.top_keys, { label: "Key", render: (r) => r.key_id ? el("a", { href: "#/key/" + r.key_id, text: r.key_name || "#" + r.key_id }) : "—" }));
  };

  V.models = async (root) => {
    const [m, p] = await Promise.all([Console.api("GET", "models"), Console.api("GET", "providers")]);
    const deps = (list) => el("ul", { class: "plain" }, list.map((d) =>
      el("li", {}, badge(d.circuit), " ", d.label, d.recent_failures ? ` (${d.recent_failures} recent failures)` : "")));
    root.replaceChildren(
      el("h2", { text: "Models & providers" }),
      table("Providers", [
        { label: "Name", render: (r) => r.name },
        { label: "Type", render: (r) => r.type },
        { label: "Where", render: (r) => r.base_url || r.region || r.project_id || "default" },
        { label: "Deployments", num: true, render: (r) => num(r.deployments.length) },
        { label: "Health", render: (r) => r.open_circuits ? badge("open") : badge("closed") },
      ], p.data, "No providers configured."),
      table("Models", [
        { label: "Model", render: (r) => r.id },
        { label: "Input $/MTok", num: true, render: (r) => usd(r.rates.input_per_mtok_micros) },
        { label: "Output $/MTok", num: true, render: (r) => usd(r.rates.output_per_mtok_micros) },
        { label: "Routing", render: (r) => r.routing },
        { label: "Deployments (circuit state)", render: (r) => deps(r.deployments) },
      ], m.data, "No models."));
  };

  V.ledger = async (root) => {
    root.replaceChildren(el("h2", { text: "Request ledger" }));
    await Ledger.mount(root, {});
  };
})();
