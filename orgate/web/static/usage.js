// The key holder's /usage page: the key lives in a variable (and in sessionStorage only when asked), goes
// to GET /v1/usage in the x-api-key header, and the answer is drawn as cards, charts and tables.
"use strict";

(() => {
  const { el, usd, num, when, table, barChart, dailySeries, stat, badge, announce, errorMessage } = Orgate;
  const STORE = "orgate.usage.key";
  let apiKey = null;
  const STATES = {
    active: ["ok", "This key is active."],
    disabled: ["warn", "This key is disabled: requests with it are refused (403). Ask your administrator."],
    expired: ["warn", "This key has expired: requests with it are refused (403)."],
    exhausted: ["warn", "This key's budget is used up: requests are refused (429) until it resets or is raised."],
  };

  async function load() {
    const resp = await fetch("/v1/usage?days=30", { headers: { "x-api-key": apiKey }, cache: "no-store", credentials: "omit" });
    if (!resp.ok) {
      document.getElementById("report").replaceChildren();
      announce(resp.status === 401 ? "That key is not valid." : await errorMessage(resp), "error");
      return false;
    }
    render(await resp.json());
    return true;
  }

  function render(u) {
    const b = u.budget;
    const [kind, msg] = STATES[u.key.state] || ["info", "Key state: " + u.key.state];
    announce(msg, kind);
    const t = u.totals;
    const resets = b.period === "none" ? "never resets" : "resets " + b.period;
    document.getElementById("report").replaceChildren(
      el("h2", {}, `Key “${u.key.name}” `, el("code", { text: u.key.prefix + "…" }), " ", badge(u.key.state)),
      el("div", { class: "stats" },
        stat("Remaining budget", b.limit_micros == null ? "no cap" : usd(b.remaining_micros),
          b.limit_micros == null ? null : `of ${usd(b.limit_micros)}, ${resets}`),
        stat("Spent this period", usd(b.spent_micros), b.reserved_micros ? usd(b.reserved_micros) + " held by requests in flight" : null),
        b.limit_micros == null ? null : stat("Budget alerts", b.thresholds_reached_percent.length
          ? "reached " + b.thresholds_reached_percent.join(", ") + " %" : "none reached",
          "your administrator is alerted at " + b.alert_thresholds_percent.join(", ") + " % of the budget"),
        stat("Spent (30 days)", usd(t.cost_micros), num(t.requests) + " requests"),
        stat("Tokens (30 days)", num(t.input_tokens + t.output_tokens), `${num(t.input_tokens)} in, ${num(t.output_tokens)} out`),
        stat("Cache savings (30 days)", usd(t.cache_savings_micros), num(t.cache_read_tokens) + " cached tokens read"),
        stat("Expires", u.key.expires_ms ? when(u.key.expires_ms) : "never")),
      el("div", { class: "charts" },
        barChart("Spend per day (30 days)", dailySeries(u.by_day, 30, (r) => r.cost_micros), usd),
        barChart("Tokens per day (30 days)", dailySeries(u.by_day, 30, (r) => r.input_tokens + r.output_tokens + r.cache_read_tokens), num)),
      table("By model (30 days)", [
        { label: "Model", render: (r) => r.name || "—" },
        { label: "Requests", num: true, render: (r) => num(r.requests) },
        { label: "Input tokens", num: true, render: (r) => num(r.input_tokens) },
        { label: "Output tokens", num: true, render: (r) => num(r.output_tokens) },
        { label: "Spend", num: true, render: (r) => usd(r.cost_micros) },
        { label: "Cache savings", num: true, render: (r) => usd(r.cache_savings_micros) },
      ], u.by_model, "No requests in the last 30 days."),
      table("Recent requests", [
        { label: "Time (UTC)", render: (r) => when(r.ts_ms) },
        { label: "Model", render: (r) => r.public_model || r.model },
        { label: "Status", render: (r) => el("span", {}, badge(r.status < 400 ? "ok" : "error"), " " + r.status) },
        { label: "Latency", num: true, render: (r) => (r.latency_ms == null ? "—" : r.latency_ms + " ms") },
        { label: "Tokens in / out", num: true, render: (r) => `${num(r.input_tokens)} / ${num(r.output_tokens)}` },
        { label: "Cost", num: true, render: (r) => usd(r.cost_micros) },
        { label: "Cache savings", num: true, render: (r) => usd(r.cache_savings_micros) },
      ], u.recent, "No requests yet."));
  }

  function forget() {
    apiKey = null;
    sessionStorage.removeItem(STORE);
    document.getElementById("report").replaceChildren();
    document.getElementById("forget").hidden = true;
    document.getElementById("api-key").focus();
    announce("Key forgotten.", "ok");
  }

  async function submit(ev) {
    ev.preventDefault();
    const input = document.getElementById("api-key");
    apiKey = input.value.trim();
    if (!apiKey) return;
    input.value = "";
    if (document.getElementById("remember").checked) sessionStorage.setItem(STORE, apiKey);
    else sessionStorage.removeItem(STORE);
    document.getElementById("forget").hidden = !(await load());
  }

  document.addEventListener("DOMContentLoaded", async () => {
    document.getElementById("key-form").addEventListener("submit", submit);
    document.getElementById("forget").addEventListener("click", forget);
    apiKey = sessionStorage.getItem(STORE);
    if (apiKey) {
      document.getElementById("remember").checked = true;
      document.getElementById("forget").hidden = !(await load());
    }
  });
})();
