// The console's shell: sign-in, navigation, hash routes. Each page module renders into the main area and registers
// its timers with the route context, which stops them when the page is left.

import { ApiError, call, onUnauthorized, session } from "./api.js";
import * as activity from "./activity.js";
import * as contact from "./contact.js";
import * as contacts from "./contacts.js";
import * as imports from "./imports.js";
import * as overview from "./overview.js";
import { fill, h, s } from "./ui.js";

const PAGES = {
  overview: { module: overview, nav: "overview" },
  contacts: { module: contacts, nav: "contacts" },
  contact: { module: contact, nav: "contacts" },
  import: { module: imports, nav: "import" },
  activity: { module: activity, nav: "activity" },
};

const NAV = [
  ["overview", "Overview", "M4 13h6V4H4v9Zm0 7h6v-5H4v5Zm10 0h6v-9h-6v9Zm0-16v5h6V4h-6Z"],
  ["contacts", "Contacts", "M16 11a3 3 0 1 0 0-6 3 3 0 0 0 0 6ZM8 11a3 3 0 1 0 0-6 3 3 0 0 0 0 6Zm0 2c-2.7 0-8 1.3-8 4v3h16v-3c0-2.7-5.3-4-8-4Zm8 0-.9.1A4.5 4.5 0 0 1 18 17v3h6v-3c0-2.7-5.3-4-8-4Z"],
  ["import", "Import", "M5 20h14v-2H5v2Zm7-16-5.5 5.5 1.4 1.4L11 7.8V16h2V7.8l3.1 3.1 1.4-1.4L12 4Z"],
  ["activity", "Activity", "M3 12h4l3-8 4 16 3-8h4"],
];

let current = null; // the route being shown: {alive, timers, listeners}
let loginNotice = null; // why the sign-in screen is shown (signed out, session ended): kept until the next sign-in
const root = document.getElementById("app");

// ------------------------------------------------------------------------------------------------ sign-in

function showLogin() {
  stopRoute();
  // A text field drawn as a secret, not a password field: browsers offer to save what is typed in a password field
  // (and fill it in later), and the key must not outlive the tab's session.
  const input = h("input", {
    class: "input input-large input-secret",
    id: "api-key",
    name: "api-key",
    type: "text",
    placeholder: "lp_…",
    autocomplete: "off",
    autocapitalize: "off",
    autocorrect: "off",
    spellcheck: "false",
    required: true,
  });
  const message = h("div", { class: "login-message", role: "alert" });
  if (loginNotice) fill(message, h("div", { class: "alert alert-warning" }, loginNotice));
  const button = h("button", { class: "btn btn-primary btn-block", type: "submit" }, "Sign in");
  const form = h(
    "form",
    { class: "login-form", autocomplete: "off", onsubmit: (event) => signIn(event, input, button, message) },
    h("label", { class: "field", for: "api-key" }, h("span", {}, "API key"), input),
    button,
  );
  fill(
    root,
    h(
      "div",
      { class: "login" },
      h(
        "div",
        { class: "login-card" },
        h("div", { class: "brand brand-large" }, h("img", { src: "console/icon.svg", alt: "", width: 36, height: 36 }), "leadpipe"),
        h("h1", {}, "Sign in to the console"),
        h("p", { class: "muted" }, "Enter an API key of your workspace. It is kept in this browser tab only and sent with every request to the leadpipe API."),
        message,
        form,
        h(
          "details",
          { class: "help" },
          h("summary", {}, "Where do I get a key?"),
          h("p", {}, ["Running locally, ", h("code", {}, "leadpipe up"), " prints a development key (also saved in ", h("code", {}, ".leadpipe/dev-api-key.json"), ")."]),
          h("p", {}, ["On a deployed stack, create one with ", h("code", {}, "leadpipe keys create --workspace default --stack <stack>"), "."]),
        ),
      ),
    ),
  );
  input.focus();
}

async function signIn(event, input, button, message) {
  event.preventDefault();
  const key = input.value.trim();
  if (!key) return;
  button.disabled = true;
  fill(button, h("span", { class: "spinner spinner-small", "aria-hidden": "true" }), " Checking…");
  try {
    const status = await call("GET", "status", { key });
    session.start(key, status.workspace);
    loginNotice = null;
    if (!location.hash || location.hash === "#/login") location.hash = "#/overview";
    renderShell();
    route();
  } catch (error) {
    const text =
      error instanceof ApiError && error.status === 401
        ? "This key was not accepted. Check that you copied all of it, and that it was not revoked."
        : error.message;
    fill(message, h("div", { class: "alert alert-error" }, text));
    button.disabled = false;
    fill(button, "Sign in");
    input.select();
  }
}

function signOut() {
  session.end();
  loginNotice = "You are signed out.";
  // the next sign-in starts at the overview; replaced, not assigned: a hashchange would route again
  history.replaceState(null, "", "#/overview");
  showLogin();
}

onUnauthorized((reason) => {
  session.end();
  loginNotice = `Your session ended: ${String(reason).replace(/[.\s]*$/, ".")} Sign in again.`;
  showLogin();
});

// ------------------------------------------------------------------------------------------------ shell

function icon(path) {
  return s(
    "svg",
    { class: "nav-icon", viewBox: "0 0 24 24", "aria-hidden": "true" },
    s("path", { d: path, fill: path.includes("l3-8") ? "none" : "currentColor", stroke: path.includes("l3-8") ? "currentColor" : "none", "stroke-width": 2, "stroke-linecap": "round", "stroke-linejoin": "round" }),
  );
}

function renderShell() {
  const nav = h(
    "nav",
    { class: "nav", "aria-label": "Main" },
    NAV.map(([name, text, path]) => h("a", { href: `#/${name}`, class: "nav-link", dataset: { nav: name } }, icon(path), h("span", {}, text))),
  );
  fill(
    root,
    h(
      "div",
      { class: "shell" },
      h(
        "aside",
        { class: "sidebar" },
        h("a", { class: "brand", href: "#/overview" }, h("img", { src: "console/icon.svg", alt: "", width: 28, height: 28 }), "leadpipe"),
        nav,
        h(
          "div",
          { class: "sidebar-foot" },
          h("div", { class: "workspace" }, h("span", { class: "muted" }, "Workspace"), h("strong", { id: "workspace-name" }, session.workspace || "—")),
          h("button", { class: "btn btn-ghost btn-small", type: "button", id: "sign-out", onclick: signOut }, "Sign out"),
        ),
      ),
      h("main", { class: "main", id: "main", tabindex: "-1" }),
    ),
  );
}

// ------------------------------------------------------------------------------------------------ routing

function stopRoute() {
  if (!current) return;
  current.alive = false;
  for (const timer of current.timers) clearInterval(timer);
  for (const [target, type, fn] of current.listeners) target.removeEventListener(type, fn);
  current = null;
}

/** The route in the address, or null when it is not valid (a malformed %-escape such as #/contact/%E0). */
function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query] = raw.split("?");
  let parts;
  try {
    parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  } catch {
    return null;
  }
  return { name: parts[0] || "overview", args: parts.slice(1), params: new URLSearchParams(query || "") };
}

function route() {
  if (!session.key) {
    showLogin();
    return;
  }
  if (!document.getElementById("main")) renderShell();
  stopRoute();
  const { name, args, params } = parseHash() || { name: null, args: [], params: new URLSearchParams() };
  const page = PAGES[name];
  const main = document.getElementById("main");
  for (const link of document.querySelectorAll(".nav-link")) {
    link.classList.toggle("active", page && link.dataset.nav === page.nav);
    if (page && link.dataset.nav === page.nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const context = {
    alive: true,
    timers: [],
    listeners: [],
    args,
    params,
    main,
    /** Run fn every ms while this page is shown (and not while the tab is hidden). */
    every(ms, fn) {
      const timer = setInterval(() => {
        if (context.alive && !document.hidden) fn();
      }, ms);
      context.timers.push(timer);
      return timer;
    },
    stop(timer) {
      clearInterval(timer);
    },
    /** Listen to target's events while this page is shown (window, document: removed when the page is left). */
    listen(target, type, fn) {
      target.addEventListener(type, fn);
      context.listeners.push([target, type, fn]);
    },
    navigate(hash) {
      location.hash = hash;
    },
  };
  current = context;
  main.replaceChildren();
  if (!page) {
    fill(main, h("div", { class: "page" }, h("h1", {}, "Page not found"), h("p", {}, h("a", { href: "#/overview" }, "Back to the overview"))));
    return;
  }
  document.title = `${page.module.title || name} · leadpipe`;
  page.module.render(context);
  main.focus({ preventScroll: true });
}

window.addEventListener("hashchange", route);
route();
