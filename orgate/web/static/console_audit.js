// Console views: the audit trail of admin actions (filters, keyset paging) and the alert events with their
// webhook deliveries.
"use strict";

(() => {
  const { el, when, table, badge } = Orgate;
  const V = Console.views;
  const dayMs = (d) => (d ? Date.parse(d + "T00:00:00Z") : null);
  const show = (v) => (v === null || v === undefined ? "—" : typeof v === "object" ? JSON.stringify(v) : String(v));

  function changes(c) {
    if (!c) return "—";
    return el("ul", { class: "plain" }, Object.entries(c).map(([k, v]) =>
      el("li", {}, el("code", { text: k }), ": " + show(v.before) + " → " + show(v.after))));
  }

  V.audit = async (root) => {
    const first = await Console.api("GET", "audit?limit=1");
    const field = (id, label, input) => el("div", {}, el("label", { for: id, text: label }), input);
    const f = {
      action: el("select", { id: "af-action", name: "action" }, ["", ...first.actions]
        .map((v) => el("option", { value: v, text: v || "any" }))),
      actor: el("input", { id: "af-actor", name: "actor", placeholder: "any" }),
      target_id: el("input", { id: "af-target", name: "target_id", inputmode: "numeric", placeholder: "any" }),
      since: el("input", { id: "af-since", name: "since", type: "date" }),
      until: el("input", { id: "af-until", name: "until", type: "date" }),
    };
    const form = el("form", { class: "grid", "aria-label": "Audit filters" },
      field("af-action", "Action", f.action), field("af-actor", "Actor", f.actor),
      field("af-target", "Key id", f.target_id), field("af-since", "From (UTC date)", f.since),
      field("af-until", "To (UTC date, inclusive)", f.until),
      el("div", {}, el("button", { type: "submit", text: "Apply filters" })));
    const older = el("button", { type: "button", class: "secondary", text: "Older →" });
    const newer = el("button", { type: "button", class: "secondary", text: "← Newer" });
    const out = el("div");
    const state = { stack: [], before: null, next: null };
    root.replaceChildren(el("h2", { text: "Audit trail" }), form, el("div", { class: "pager" }, newer, older), out);

    async function load() {
      const p = new URLSearchParams({ limit: "50" });
      for (const k of ["action", "actor", "target_id"]) if (f[k].value.trim()) p.set(k, f[k].value.trim());
      if (f.target_id.value.trim()) p.set("target_type", "key");
      if (f.since.value) p.set("since", String(dayMs(f.since.value)));
      if (f.until.value) p.set("until", String(dayMs(f.until.value) + 86400000));
      if (state.before) p.set("before_id", String(state.before));
      const res = await Console.api("GET", "audit?" + p.toString());
      out.replaceChildren(table("Admin actions (newest first)", [
        { label: "Time (UTC)", render: (r) => when(r.ts_ms) },
        { label: "Actor", render: (r) => r.actor },
        { label: "Action", render: (r) => r.action },
        { label: "Target", render: (r) => !r.target_id ? "—" : r.target_type === "key"
          ? el("a", { href: "#/key/" + r.target_id, text: r.target_name || "#" + r.target_id })
          : `${r.target_type} ${r.target_name || "#" + r.target_id}` },
        { label: "Source", render: (r) => r.source || "—" },
        { label: "Changes", render: (r) => changes(r.changes) },
      ], res.data, "No admin actions match."));
      state.next = res.next_before_id;
      older.disabled = !state.next;
      newer.disabled = state.stack.length === 0;
    }
    form.addEventListener("submit", (ev) => { ev.preventDefault(); state.stack = []; state.before = null; load(); });
    older.addEventListener("click", () => { state.stack.push(state.before); state.before = state.next; load(); });
    newer.addEventListener("click", () => { state.before = state.stack.pop() || null; load(); });
    await load();
  };

  V.alerts = async (root) => {
    const res = await Console.api("GET", "alerts?limit=100");
    const deliveries = (list) => list.length ? el("ul", { class: "plain" }, list.map((d) =>
      el("li", {}, badge(d.status === "delivered" ? "ok" : d.status === "failed" ? "error" : "pending"),
        ` ${d.url} · ${d.attempts} attempt(s)` + (d.last_error ? " · " + d.last_error : "")))) : "no webhook";
    root.replaceChildren(
      el("h2", { text: "Alerts" }),
      el("p", { class: "muted", text: "Budget thresholds: " + res.thresholds_percent.join(", ") + " % of each key's period budget. Webhooks: " + (res.webhooks.join(", ") || "none configured") + "." }),
      table("Events (newest first)", [
        { label: "Time (UTC)", render: (r) => when(r.created_ms) },
        { label: "Event", render: (r) => r.kind },
        { label: "About", render: (r) => { const d = r.payload.data; const who = d.key || d.user || d.team; const lv = d.level && d.level !== "key" ? d.level + " " : ""; return who ? lv + who.name + (d.threshold_percent ? ` reached ${d.threshold_percent} %` : "") : d.deployment || "—"; } },
        { label: "Deliveries", render: (r) => deliveries(r.deliveries) },
      ], res.data, "No alerts yet."));
  };
})();
