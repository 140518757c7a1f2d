// The admin console shell: session check, login/logout, the API helper (CSRF header on every unsafe
// call), and hash routing to the views in console_views.js.
"use strict";

const Console = (() => {
  const { announce, errorMessage } = Orgate;
  let csrf = null;
  const views = {};

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(method, path, body) {
    const headers = { accept: "application/json" };
    if (method !== "GET") headers["x-csrf-token"] = csrf || "";
    if (body !== undefined) headers["content-type"] = "application/json";
    const resp = await fetch("/admin/api/" + path, {
      method, headers, credentials: "same-origin", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (resp.status === 401) { showLogin("Your session ended; sign in again."); throw new ApiError(401, "Signed out"); }
    if (!resp.ok) throw new ApiError(resp.status, await errorMessage(resp));
    return resp.json();
  }

  function showLogin(msg) {
    csrf = null;
    document.getElementById("login").hidden = false;
    document.getElementById("nav").hidden = true;
    document.getElementById("logout").hidden = true;
    document.getElementById("view").replaceChildren();
    announce(msg || "", "error");
    document.getElementById("password").focus();
  }

  function showApp() {
    document.getElementById("login").hidden = true;
    document.getElementById("nav").hidden = false;
    document.getElementById("logout").hidden = false;
    route();
  }

  async function login(ev) {
    ev.preventDefault();
    const input = document.getElementById("password");
    const resp = await fetch("/admin/login", {
      method: "POST", credentials: "same-origin",
      headers: { "content-type": "application/json" }, body: JSON.stringify({ password: input.value }),
    });
    input.value = "";
    if (!resp.ok) { announce(await errorMessage(resp), "error"); input.focus(); return; }
    csrf = (await resp.json()).csrf_token;
    announce("");
    if (!location.hash || location.hash === "#/login") location.hash = "#/overview";
    showApp();
  }

  async function logout() {
    await fetch("/admin/logout", { method: "POST", credentials: "same-origin", headers: { "x-csrf-token": csrf || "" } });
    showLogin("Signed out.");
    announce("Signed out.", "ok");
  }

  async function route() {
    if (!csrf) return;
    const parts = (location.hash || "#/overview").slice(2).split("/");
    const name = parts[0] || "overview";
    const view = views[name] || views.overview;
    for (const a of document.querySelectorAll("#nav a")) {
      if (a.dataset.view === name) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    }
    const root = document.getElementById("view");
    root.replaceChildren(Orgate.el("p", { class: "muted", text: "Loading…" }));
    try {
      await view(root, parts.slice(1));
    } catch (e) {
      if (e.status !== 401) { root.replaceChildren(); announce(e.message, "error"); }
    }
  }

  async function start() {
    document.getElementById("login-form").addEventListener("submit", login);
    document.getElementById("logout").addEventListener("click", logout);
    window.addEventListener("hashchange", () => { announce(""); route(); });
    if (new URLSearchParams(location.search).get("login") === "failed") announce("Sign-in failed.", "error");
    const resp = await fetch("/admin/api/session", { credentials: "same-origin", cache: "no-store" });
    if (resp.ok) { csrf = (await resp.json()).csrf_token; showApp(); } else showLogin();
  }

  document.addEventListener("DOMContentLoaded", start);
  return { api, views, route, ApiError };
})();
