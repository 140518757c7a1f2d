// Console views for keys: the paged list with search and the create form, and one key's page (settings,
// disable/enable/rotate/delete, usage charts, its ledger). A new secret is shown once, with a copy button.
"use strict";

(() => {
  const { el, usd, num, when, day, table, barChart, dailySeries, badge, announce, copy } = Orgate;
  const V = Console.views;
  const PAGE = 50;
  let modelIds = null;

  async function models() {
    if (!modelIds) modelIds = (await Console.api("GET", "models")).data.map((m) => m.id);
    return modelIds;
  }

  function secretPanel(key, heading) {
    const input = el("input", { id: "new-key", type: "text", readonly: true, value: key, "aria-label": "New API key" });
    const btn = el("button", { type: "button", id: "copy-key", text: "Copy" });
    const done = el("span", { role: "status", class: "muted" });
    btn.addEventListener("click", async () => { done.textContent = (await copy(key, input)) ? "Copied." : "Select and copy it manually."; });
    const panel = el("section", { class: "card", id: "secret-panel", "aria-labelledby": "secret-title" },
      el("h3", { id: "secret-title", text: heading }),
      el("p", { text: "Copy it now: this is the only time it is shown. orgate stores only its hash." }),
      el("div", { class: "secret" }, input, btn), done);
    setTimeout(() => btn.focus(), 0);
    return panel;
  }

  Console.models = models;  // shared with console_accounts.js
  Console.secretPanel = secretPanel;

  // The form shared by create and edit; returns [form, read()] where read() gives the JSON body.
  function keyForm(ids, k, submitLabel, onSubmit) {
    const v = (x) => (x === null || x === undefined ? "" : String(x));
    const input = (id, label, attrs) => el("div", {}, el("label", { for: id, text: label }), el("input", { id, name: id, ...attrs }));
    const period = el("select", { id: "kf-period", name: "budget_period" },
      ["none", "daily", "weekly", "monthly"].map((p) => el("option", { value: p, text: p === "none" ? "never resets" : p, selected: k.budget_period === p })));
    const allowed = new Set(k.allowed_models || []);
    const checks = ids.map((m) => el("label", {}, el("input", { type: "checkbox", name: "model", value: m, checked: allowed.has(m) }), m));
    const form = el("form", { class: "grid" },
      input("kf-name", "Name", { required: true, maxlength: "200", value: v(k.name) }),
      input("kf-budget", "Budget (USD, empty = no cap)", { inputmode: "decimal", value: k.budget_micros == null ? "" : (k.budget_micros / 1e6).toString() }),
      el("div", {}, el("label", { for: "kf-period", text: "Budget resets" }), period),
      input("kf-expires", "Expires (UTC date, optional)", { type: "date", value: k.expires_ms ? day(k.expires_ms) : "" }),
      input("kf-rpm", "Requests / minute", { type: "number", min: "1", value: v(k.rpm) }),
      input("kf-tpm", "Tokens / minute", { type: "number", min: "1", value: v(k.tpm) }),
      input("kf-conc", "Max concurrent", { type: "number", min: "1", value: v(k.max_concurrency) }),
      el("fieldset", { class: "wide" }, el("legend", { text: "Allowed models (none checked = all)" }), el("div", { class: "checks" }, checks)),
      el("div", {}, el("button", { type: "submit", text: submitLabel })));
    const val = (id) => form.querySelector("#" + id).value.trim();
    const intOrNull = (id) => (val(id) ? parseInt(val(id), 10) : null);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const picked = [...form.querySelectorAll("input[name=model]:checked")].map((c) => c.value);
      const body = {
        name: val("kf-name"), budget_usd: val("kf-budget") || null, budget_period: period.value,
        expires_ms: val("kf-expires") ? Date.parse(val("kf-expires") + "T00:00:00Z") : null,
        rpm: intOrNull("kf-rpm"), tpm: intOrNull("kf-tpm"), max_concurrency: intOrNull("kf-conc"),
        allowed_models: picked.length ? picked : null,
      };
      try { await onSubmit(body); } catch (e) { if (e.status !== 401) announce(e.message, "error"); }
    });
    return form;
  }

  V.keys = async (root) => {
    const ids = await models();
    const state = { offset: 0, search: "" };
    const listBox = el("div");
    const secretBox = el("div");
    const create = keyForm(ids, { budget_period: "none" }, "Create key", async (body) => {
      const res = await Console.api("POST", "keys", body);
      secretBox.replaceChildren(secretPanel(res.key, `Key “${res.data.name}” created`));
      create.reset();
      announce("Key created.", "ok");
      await load();
    });
    const search = el("input", { id: "key-search", type: "search", placeholder: "name or prefix" });
    const searchForm = el("form", { class: "pager", role: "search" },
      el("label", { for: "key-search", text: "Search keys" }), search, el("button", { type: "submit", text: "Search" }));
    searchForm.addEventListener("submit", (ev) => { ev.preventDefault(); state.search = search.value.trim(); state.offset = 0; load(); });

    async function load() {
      const q = new URLSearchParams({ limit: String(PAGE), offset: String(state.offset) });
      if (state.search) q.set("search", state.search);
      const res = await Console.api("GET", "keys?" + q);
      const prev = el("button", { type: "button", class: "secondary", text: "← Previous", disabled: state.offset === 0 });
      const next = el("button", { type: "button", class: "secondary", text: "Next →", disabled: state.offset + PAGE >= res.total });
      prev.addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); load(); });
      next.addEventListener("click", () => { state.offset += PAGE; load(); });
      const shown = res.data.length ? `${state.offset + 1}–${state.offset + res.data.length} of ${num(res.total)}` : `0 of ${num(res.total)}`;
      listBox.replaceChildren(table("Keys", [
        { label: "Name", render: (k) => el("a", { href: "#/key/" + k.id, text: k.name }) },
        { label: "Prefix", render: (k) => el("code", { text: k.prefix + "…" }) },
        { label: "State", render: (k) => badge(k.state) },
        { label: "Budget", num: true, render: (k) => k.budget_micros == null ? "no cap" : usd(k.budget_micros) },
        { label: "Spent (period)", num: true, render: (k) => usd(k.period_spent_micros) },
        { label: "Resets", render: (k) => k.budget_period },
        { label: "Created", render: (k) => when(k.created_ms) },
      ], res.data, "No keys."), el("div", { class: "pager" }, prev, next, el("span", { class: "muted", text: shown })));
    }

    root.replaceChildren(el("h2", { text: "Keys" }), secretBox,
      el("section", { class: "card", "aria-labelledby": "create-title" }, el("h3", { id: "create-title", text: "Create a key" }), create),
      searchForm, listBox);
    await load();
  };

  function facts(k) {
    const lim = (x) => (x == null ? "none" : num(x));
    const pairs = [["Id", k.id], ["Prefix", k.prefix + "…"], ["Created", when(k.created_ms)],
      ["Expires", k.expires_ms ? when(k.expires_ms) : "never"],
      ["Budget", k.budget_micros == null ? "no cap" : usd(k.budget_micros) + " (" + k.budget_period + ")"],
      ["Spent this period", usd(k.period_spent_micros)], ["Remaining", k.remaining_micros == null ? "unlimited" : usd(k.remaining_micros)],
      ["Reserved in flight", usd(k.reserved_micros)], ["Spent all time", usd(k.total_spent_micros)],
      ["Limits", `rpm ${lim(k.rpm)}, tpm ${lim(k.tpm)}, concurrency ${lim(k.max_concurrency)}`],
      ["Allowed models", k.allowed_models ? k.allowed_models.join(", ") : "all"]];
    return el("dl", { class: "kv card" }, pairs.map(([a, b]) => [el("dt", { text: a }), el("dd", { text: String(b) })]).flat());
  }

  V.key = async (root, parts) => {
    const id = parseInt(parts[0], 10);
    const [{ data: k }, usage, ids] = await Promise.all([Console.api("GET", "keys/" + id), Console.api("GET", `keys/${id}/usage?days=30`), models()]);
    const secretBox = el("div");
    const act = async (fn, msg) => {
      try { await fn(); announce(msg, "ok"); } catch (e) { if (e.status !== 401) announce(e.message, "error"); }
    };
    const toggle = el("button", { type: "button", id: "toggle-key", class: k.status === "active" ? "secondary" : null,
      text: k.status === "active" ? "Disable key" : "Enable key" });
    toggle.addEventListener("click", () => act(async () => {
      await Console.api("POST", `keys/${id}/${k.status === "active" ? "disable" : "enable"}`);
      await V.key(root, parts);
    }, k.status === "active" ? "Key disabled." : "Key enabled."));
    const rotate = el("button", { type: "button", class: "secondary", id: "rotate-key", text: "Rotate secret" });
    rotate.addEventListener("click", () => act(async () => {
      if (!confirm("Rotate this key? The current secret stops working at once.")) return;
      const res = await Console.api("POST", `keys/${id}/rotate`);
      await V.key(root, parts);
      root.querySelector("#secret-box").replaceChildren(secretPanel(res.key, "New secret"));
    }, "Key rotated."));
    const del = el("button", { type: "button", class: "danger", id: "delete-key", text: "Delete key" });
    del.addEventListener("click", () => act(async () => {
      if (!confirm("Delete this key? It stops working and leaves the list; its ledger stays.")) return;
      await Console.api("DELETE", "keys/" + id);
      location.hash = "#/keys";
    }, "Key deleted."));
    const edit = keyForm(ids, k, "Save changes", async (body) => {
      await Console.api("PATCH", "keys/" + id, body);
      await V.key(root, parts);
      announce("Saved.", "ok");
    });
    const ledgerBox = el("section", { "aria-labelledby": "kl-title" }, el("h3", { id: "kl-title", text: "Requests" }));
    root.replaceChildren(
      el("p", {}, el("a", { href: "#/keys", text: "← All keys" })),
      el("h2", {}, k.name + " ", badge(k.state)),
      el("div", { id: "secret-box" }, secretBox),
      el("div", { class: "actions" }, toggle, rotate, del),
      facts(k),
      el("div", { class: "charts" },
        barChart("Spend per day (30 days)", dailySeries(usage.by_day, 30, (r) => r.cost_micros), usd),
        barChart("Tokens per day (30 days)", dailySeries(usage.by_day, 30, (r) => r.input_tokens + r.output_tokens + r.cache_read_tokens), num)),
      Console.usageTable("By model (30 days)", usage.by_model, { label: "Model", render: (r) => r.name || "—" }),
      el("section", { class: "card", "aria-labelledby": "edit-title" }, el("h3", { id: "edit-title", text: "Settings" }), edit),
      ledgerBox);
    await Ledger.mount(ledgerBox, { key_id: id });
  };
})();
