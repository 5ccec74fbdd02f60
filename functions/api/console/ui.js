// DOM helpers. Everything the console shows is built with createElement and textContent: API data (contacts are
// user data) never becomes markup. The page's CSP requires Trusted Types with no policy, so handing an element markup
// as a string would throw anyway.

const SVG_NS = "http://www.w3.org/2000/svg";

function apply(element, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") element.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    else if (name === "text") element.textContent = String(value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name === "style") Object.assign(element.style, value);
    else if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (name.startsWith("on")) throw new Error(`event handler ${name} must be a function`);
    else if (name === "href") element.setAttribute("href", safeHref(value));
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** h("a", {href, class, onclick}, "text", child, ...) */
export function h(tag, attrs, ...children) {
  const element = document.createElement(tag);
  apply(element, attrs);
  append(element, children);
  return element;
}

/** An SVG element (charts). */
export function s(tag, attrs, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  apply(element, attrs);
  append(element, children);
  return element;
}

/** Only http(s), mailto and in-page links: a javascript: URL from data never becomes a link. */
export function safeHref(value) {
  const text = String(value || "");
  if (text.startsWith("#")) return text;
  try {
    const parsed = new URL(text, document.baseURI);
    if (["http:", "https:", "mailto:"].includes(parsed.protocol)) return parsed.href;
  } catch {
    // not a URL
  }
  return "#";
}

export function externalLink(href, label) {
  return h("a", { href, target: "_blank", rel: "noopener noreferrer", class: "external" }, label || href);
}

// ------------------------------------------------------------------------------------------------ formatting

const numberFormat = new Intl.NumberFormat();
export const num = (n) => (n === null || n === undefined ? "—" : numberFormat.format(n));
export const pct = (x, digits = 0) => (x === null || x === undefined ? "—" : `${(x * 100).toFixed(digits)}%`);

export function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function ago(iso) {
  if (!iso) return "—";
  const seconds = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${seconds}s ago`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return when(iso);
}

/** A time shown as "3 min ago", the exact time on hover. */
export function time(iso) {
  return h("time", { datetime: iso || "", title: when(iso) }, ago(iso));
}

export function label(name) {
  const text = String(name || "").replace(/[_.]/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function fullName(contact) {
  const name = contact.full_name || [contact.first_name, contact.last_name].filter(Boolean).join(" ");
  return name || "";
}

// ------------------------------------------------------------------------------------------------ components

export const STATUS_ORDER = ["imported", "enriching", "enriched", "syncing", "synced", "failed", "skipped"];

export function badge(text, kind) {
  return h("span", { class: ["badge", kind && `badge-${kind}`] }, text);
}

export function statusBadge(status) {
  return h("span", { class: ["badge", "status", `status-${status}`], dataset: { status } }, label(status));
}

export function qualityMeter(quality) {
  if (quality === null || quality === undefined) return h("span", { class: "muted" }, "not scored");
  const level = quality >= 0.7 ? "good" : quality >= 0.4 ? "fair" : "poor";
  return h(
    "span",
    { class: ["meter", `meter-${level}`], title: `quality ${quality.toFixed(2)}` },
    h("span", { class: "meter-track" }, h("span", { class: "meter-fill", style: { width: `${quality * 100}%` } })),
    h("span", { class: "meter-value" }, quality.toFixed(2)),
  );
}

export function spinner(text = "Loading…") {
  return h("div", { class: "loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), text);
}

export function emptyState(title, text, action) {
  return h(
    "div",
    { class: "empty" },
    h("div", { class: "empty-icon", "aria-hidden": "true" }, "∅"),
    h("h3", {}, title),
    text ? h("p", {}, text) : null,
    action || null,
  );
}

export function errorBox(error, retry) {
  return h(
    "div",
    { class: "alert alert-error", role: "alert" },
    h("strong", {}, error.status ? `Error ${error.status}` : "Error"),
    h("span", {}, ` ${error.message || error}`),
    error.code ? h("code", { class: "error-code" }, error.code) : null,
    retry ? h("button", { class: "btn btn-small", type: "button", onclick: retry }, "Try again") : null,
  );
}

export function card(title, body, { actions, id, className } = {}) {
  return h(
    "section",
    { class: ["card", className], id },
    title || actions ? h("header", { class: "card-header" }, h("h2", {}, title || ""), actions || null) : null,
    h("div", { class: "card-body" }, body),
  );
}

export function keyValues(rows) {
  return h(
    "dl",
    { class: "kv" },
    rows.filter(Boolean).map(([key, value]) => [h("dt", {}, key), h("dd", {}, value ?? "—")]),
  );
}

/** Replace an element's content with new children. */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

// ------------------------------------------------------------------------------------------------ toasts, dialogs

export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  const item = h("div", { class: ["toast", `toast-${kind}`] }, message);
  box.append(item);
  setTimeout(() => item.classList.add("toast-leaving"), 4500);
  setTimeout(() => item.remove(), 5000);
}

/**
 * A modal confirmation. Resolves to the form's values (checkboxes by name) when confirmed, null when cancelled.
 * `confirmText`: the user must type this exact text first (for what cannot be undone).
 */
export function confirmDialog({ title, message, confirmLabel = "Confirm", danger = false, options = [], confirmText }) {
  return new Promise((resolve) => {
    const typed = confirmText
      ? h("input", { class: "input", name: "confirm", autocomplete: "off", spellcheck: "false", "aria-label": "confirmation" })
      : null;
    const confirm = h("button", { class: ["btn", danger ? "btn-danger" : "btn-primary"], type: "submit", value: "ok" }, confirmLabel);
    const cancel = h("button", { class: "btn", type: "button" }, "Cancel");
    const form = h(
      "form",
      { method: "dialog", class: "dialog-form" },
      h("h2", {}, title),
      h("div", { class: "dialog-message" }, message),
      options.map((o) =>
        h("label", { class: "check" }, h("input", { type: "checkbox", name: o.name, checked: o.checked }), " ", o.label),
      ),
      typed ? h("label", { class: "field" }, h("span", {}, ["Type ", h("code", {}, confirmText), " to confirm"]), typed) : null,
      h("div", { class: "dialog-actions" }, cancel, confirm),
    );
    const dialog = h("dialog", { class: ["dialog", danger && "dialog-danger"] }, form);
    const close = (value) => {
      dialog.close();
      dialog.remove();
      resolve(value);
    };
    if (typed) {
      confirm.disabled = true;
      typed.addEventListener("input", () => {
        confirm.disabled = typed.value.trim() !== confirmText;
      });
    }
    cancel.addEventListener("click", () => close(null));
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      close(null);
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (confirm.disabled) return;
      const values = {};
      for (const o of options) values[o.name] = form.elements[o.name].checked;
      close(values);
    });
    document.body.append(dialog);
    dialog.showModal();
    (typed || cancel).focus();
  });
}

/** Run an async action from a button: disabled and busy while it runs. */
export async function busy(button, action) {
  button.disabled = true;
  button.classList.add("is-busy");
  try {
    return await action();
  } finally {
    button.disabled = false;
    button.classList.remove("is-busy");
  }
}
