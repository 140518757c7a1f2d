// Console views for teams and users: lists with create forms, and one team's or user's page (budget and
// spend, members and their spend, keys, disable/enable, edit; a user's page gives them a key and moves a key
// between their teams). Reports by team / user / key download as CSV.
"use strict";

(() => {
  const { el, usd, num, badge, announce, table } = Orgate;
  const V = Console.views;
  const LABEL = { team: "Team", user: "User" };

  const act = async (fn, msg) => {
    try { await fn(); if (msg) announce(msg, "ok"); } catch (e) { if (e.status !== 401) announce(e.message, "error"); }
  };

  // The form shared by create and edit for both levels; `extra` adds the user's own fields.
  function accountForm(level, a, ids, teams, submitLabel, onSubmit) {
    const p = level + "f-";
    const v = (x) => (x === null || x === undefined ? "" : String(x));
    const input = (id, label, attrs) => el("div", {}, el("label", { for: p + id, text: label }), el("input", { id: p + id, ...attrs }));
    const period = el("select", { id: p + "period" },
      ["none", "daily", "weekly", "monthly"].map((x) => el("option", { value: x, text: x === "none" ? "never resets" : x, selected: a.budget_period === x })));
    const allowed = new Set(a.allowed_models || []);
    const checks = ids.map((m) => el("label", {}, el("input", { type: "checkbox", name: p + "model", value: m, checked: allowed.has(m) }), m));
    const team = level === "user" ? el("select", { id: p + "team" }, el("option", { value: "", text: "none" }),
      teams.map((t) => el("option", { value: String(t.id), text: t.name, selected: a.default_team_id === t.id }))) : null;
    const form = el("form", { class: "grid" },
      input("name", "Name", { required: true, maxlength: "200", value: v(a.name) }),
      level === "user" ? input("email", "Email", { type: "email", value: v(a.email) }) : null,
      team ? el("div", {}, el("label", { for: p + "team", text: "Default team" }), team) : null,
      input("budget", "Budget (USD, empty = no cap)", { inputmode: "decimal", value: a.budget_micros == null ? "" : (a.budget_micros / 1e6).toString() }),
      el("div", {}, el("label", { for: p + "period", text: "Budget resets" }), period),
      input("rpm", "Requests / minute", { type: "number", min: "1", value: v(a.rpm) }),
      input("tpm", "Tokens / minute", { type: "number", min: "1", value: v(a.tpm) }),
      el("fieldset", { class: "wide" }, el("legend", { text: "Allowed models (none checked = all)" }), el("div", { class: "checks" }, checks)),
      el("div", {}, el("button", { type: "submit", text: submitLabel })));
    const val = (id) => form.querySelector("#" + p + id).value.trim();
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const picked = [...form.querySelectorAll(`input[name=${p}model]:checked`)].map((c) => c.value);
      const body = { name: val("name"), budget_usd: val("budget") || null, budget_period: period.value,
        rpm: val("rpm") ? parseInt(val("rpm"), 10) : null, tpm: val("tpm") ? parseInt(val("tpm"), 10) : null,
        allowed_models: picked.length ? picked : null };
      if (level === "user") {
        body.email = val("email") || null;
        if (team.value) body.default_team_id = parseInt(team.value, 10);
      }
      act(() => onSubmit(body));
    });
    return form;
  }

  const budgetCols = (link) => [
    { label: "Name", render: (a) => el("a", { href: link(a), text: a.name }) },
    { label: "State", render: (a) => badge(a.state) },
    { label: "Budget", num: true, render: (a) => a.budget_micros == null ? "no cap" : usd(a.budget_micros) },
    { label: "Spent (period)", num: true, render: (a) => usd(a.period_spent_micros) },
    { label: "Resets", render: (a) => a.budget_period },
  ];
  const monthCols = [
    { label: "Requests (month)", num: true, render: (r) => num(r.month ? r.month.requests : 0) },
    { label: "Tokens (month)", num: true, render: (r) => num(r.month ? r.month.input_tokens + r.month.output_tokens : 0) },
    { label: "Spend (month)", num: true, render: (r) => usd(r.month ? r.month.cost_micros : 0) },
  ];

  function csvLinks() {
    return el("p", {}, "Download spend and tokens (30 days) by ",
      ["team", "user", "key"].map((g, i) => [i ? ", " : "", el("a", { href: "/admin/api/usage.csv?group=" + g, download: "", text: g })]).flat(), " (CSV).");
  }

  function list(level) {
    return async (root) => {
      const plural = level + "s";
      const [ids, res, teams] = await Promise.all([Console.models(), Console.api("GET", plural + "?limit=500"),
        level === "user" ? Console.api("GET", "teams?limit=500") : Promise.resolve({ data: [] })]);
      const create = accountForm(level, { budget_period: "none" }, ids, teams.data, "Create " + level, async (body) => {
        const made = await Console.api("POST", plural, body);
        announce(`${LABEL[level]} “${made.data.name}” created.`, "ok");
        location.hash = `#/${level}/${made.data.id}`;
      });
      root.replaceChildren(el("h2", { text: LABEL[level] + "s" }), csvLinks(),
        el("section", { class: "card", "aria-labelledby": "ca-title" }, el("h3", { id: "ca-title", text: "Create a " + level }), create),
        table(LABEL[level] + "s", budgetCols((a) => `#/${level}/${a.id}`), res.data, `No ${plural} yet.`));
    };
  }

  function facts(a) {
    const lim = (x) => (x == null ? "none" : num(x));
    const pairs = [["Id", a.id], ["Status", a.status], a.email !== undefined ? ["Email", a.email || "—"] : null,
      ["Budget", a.budget_micros == null ? "no cap" : usd(a.budget_micros) + " (" + a.budget_period + ")"],
      ["Spent this period", usd(a.period_spent_micros)], ["Remaining", a.remaining_micros == null ? "unlimited" : usd(a.remaining_micros)],
      ["Reserved in flight", usd(a.reserved_micros)], ["Spent all time", usd(a.total_spent_micros)],
      ["Limits", `rpm ${lim(a.rpm)}, tpm ${lim(a.tpm)}`], ["Allowed models", a.allowed_models ? a.allowed_models.join(", ") : "all"]];
    return el("dl", { class: "kv card", id: "account-facts" }, pairs.filter(Boolean).map(([k, v]) => [el("dt", { text: k }), el("dd", { text: String(v) })]).flat());
  }

  // A user's keys with a team picker each: moving a key changes which team its spend is charged to.
  function keysTable(keys, teams, reload) {
    const cols = [{ label: "Key", render: (k) => el("a", { href: "#/key/" + k.id, text: k.name }) },
      { label: "State", render: (k) => badge(k.state) }, ...monthCols];
    if (teams) {
      cols.push({ label: "Charges team", render: (k) => {
        const sel = el("select", { "aria-label": `Team for key ${k.name}` }, teams.map((t) => el("option", { value: String(t.id), text: t.name, selected: k.team_id === t.id })));
        const btn = el("button", { type: "button", class: "secondary", text: "Move" });
        btn.addEventListener("click", () => act(async () => {
          await Console.api("PATCH", "keys/" + k.id, { team_id: parseInt(sel.value, 10) });
          await reload();
        }, "Key moved."));
        return el("span", {}, sel, " ", btn);
      } });
    }
    return table("Keys", cols, keys, "No keys.");
  }

  function newKeyForm(user, teams, reload) {
    const name = el("input", { id: "uk-name", required: true, maxlength: "200" });
    const team = el("select", { id: "uk-team" }, teams.map((t) => el("option", { value: String(t.id), text: t.name, selected: user.default_team_id === t.id })));
    const form = el("form", { class: "grid" }, el("div", {}, el("label", { for: "uk-name", text: "Key name" }), name),
      el("div", {}, el("label", { for: "uk-team", text: "Charges team" }), team),
      el("div", {}, el("button", { type: "submit", text: "Create key for " + user.name })));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      act(async () => {
        const body = { name: name.value.trim(), user_id: user.id };
        if (team.value) body.team_id = parseInt(team.value, 10);
        const res = await Console.api("POST", "keys", body);
        await reload();
        document.getElementById("secret-box").replaceChildren(Console.secretPanel(res.key, `Key “${res.data.name}” created`));
      }, "Key created.");
    });
    return form;
  }

  function page(level) {
    return async (root, parts) => {
      const id = parseInt(parts[0], 10);
      const reload = () => page(level)(root, parts);
      const [body, ids, allTeams] = await Promise.all([Console.api("GET", `${level}s/${id}`), Console.models(),
        level === "user" ? Console.api("GET", "teams?limit=500") : Promise.resolve({ data: [] })]);
      const a = body.data;
      const toggle = el("button", { type: "button", id: "toggle-account", class: a.status === "active" ? "secondary" : null,
        text: (a.status === "active" ? "Disable " : "Enable ") + level });
      toggle.addEventListener("click", () => act(async () => {
        await Console.api("POST", `${level}s/${id}/${a.status === "active" ? "disable" : "enable"}`);
        await reload();
      }, a.status === "active" ? `${LABEL[level]} disabled: its keys are refused.` : `${LABEL[level]} enabled.`));
      const edit = accountForm(level, a, ids, allTeams.data, "Save changes", async (b) => {
        await Console.api("PATCH", `${level}s/${id}`, b);
        await reload();
        announce("Saved.", "ok");
      });
      const sections = [];
      if (level === "team") {
        const pick = el("select", { id: "add-member" }, (await Console.api("GET", "users?limit=500")).data
          .map((u) => el("option", { value: String(u.id), text: u.name + (u.email ? ` <${u.email}>` : "") })));
        const add = el("button", { type: "button", text: "Add member" });
        add.addEventListener("click", () => act(async () => {
          await Console.api("POST", `teams/${id}/members`, { user_id: parseInt(pick.value, 10) });
          await reload();
        }, "Member added."));
        sections.push(el("section", { "aria-labelledby": "members-title" }, el("h3", { id: "members-title", text: "Members and their spend" }),
          table("Members", [...budgetCols((u) => "#/user/" + u.id), ...monthCols], body.members, "No members yet."),
          el("p", {}, el("label", { for: "add-member", text: "User " }), pick, " ", add)));
        sections.push(el("section", {}, el("h3", { text: "Keys charging this team" }), keysTable(body.keys, null, reload)));
      } else {
        sections.push(el("section", {}, el("h3", { text: "Teams" }), table("Teams", budgetCols((t) => "#/team/" + t.id), body.teams, "In no team.")));
        sections.push(el("section", {}, el("h3", { text: "Keys" }), keysTable(body.keys, body.teams.length ? body.teams : null, reload)));
        sections.push(el("section", { class: "card", "aria-labelledby": "uk-title" }, el("h3", { id: "uk-title", text: "Give " + a.name + " a key" }),
          body.teams.length ? newKeyForm(a, body.teams, reload) : el("p", { class: "muted", text: "Add the user to a team first." })));
      }
      root.replaceChildren(el("p", {}, el("a", { href: `#/${level}s`, text: `← All ${level}s` })),
        el("h2", {}, a.name + " ", badge(a.state)), el("div", { id: "secret-box" }),
        el("div", { class: "actions" }, toggle), facts(a), ...sections,
        el("section", { class: "card", "aria-labelledby": "edit-title" }, el("h3", { id: "edit-title", text: "Settings" }), edit));
    };
  }

  V.teams = list("team");
  V.users = list("user");
  V.team = page("team");
  V.user = page("user");
})();
