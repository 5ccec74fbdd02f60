// Contacts: GET /contacts with its filters (status, domain, tag, custom field, a quality band as min_quality /
// max_quality) and cursor pagination, and enrich / sync of the selected rows.

import { contactPath, get, post } from "./api.js";
import {
  STATUS_ORDER,
  busy,
  emptyState,
  errorBox,
  fill,
  fullName,
  h,
  label,
  num,
  qualityMeter,
  spinner,
  statusBadge,
  time,
  toast,
} from "./ui.js";

export const title = "Contacts";

const PAGE_SIZE = 25;
const QUALITY_BANDS = {
  high: { text: "High (≥ 0.7)", min_quality: 0.7 },
  medium: { text: "Medium (0.4–0.7)", min_quality: 0.4, max_quality: 0.7 },
  low: { text: "Low (< 0.4)", max_quality: 0.4 },
};
const TRANSITIONAL = new Set(["imported", "enriching", "syncing"]); // for rows acted on: on their way

export function render(ctx) {
  const filters = {
    status: ctx.params.get("status") || "",
    domain: ctx.params.get("domain") || "",
    tag: ctx.params.get("tag") || "",
    quality: ctx.params.get("quality") || "",
    custom: ctx.params.get("custom") || "",
  };
  const filtered = Object.values(filters).some(Boolean);
  const state = { cursors: [null], page: 0, next: null, items: [], selected: new Set(), scanned: 0, watch: null };
  // Whether the workspace enriches contacts on import (GET /status): only then is an imported row on its way.
  // Unknown until read (read again by the next load when it failed).
  let autoEnrich = null;
  const onItsWay = (c) => c.status === "enriching" || c.status === "syncing" || (c.status === "imported" && autoEnrich === true);

  const tableArea = h("div", { class: "table-area" }, spinner("Loading contacts…"));
  const pager = h("div", { class: "pager" });
  const selectionBar = h("div", { class: "selection-bar", hidden: true });

  ctx.main.append(
    h(
      "div",
      { class: "page" },
      h(
        "header",
        { class: "page-header" },
        h("div", {}, h("h1", {}, "Contacts"), h("p", { class: "page-subtitle" }, "Newest first. Select contacts to enrich them or sync them to HubSpot.")),
        h("div", { class: "page-actions" }, h("a", { class: "btn btn-primary", href: "#/import" }, "Import CSV")),
      ),
      filterForm(ctx, filters),
      h("section", { class: "card table-card" }, selectionBar, tableArea, pager),
    ),
  );

  // Only the latest load may draw: a new one (another page, an action) cancels the one in flight, whose answer (page
  // 1's rows, say) would otherwise land under "Page 2".
  let loading = null; // the AbortController of the load in flight
  async function load({ quiet = false } = {}) {
    if (loading) loading.abort();
    const mine = new AbortController();
    loading = mine;
    if (!quiet) fill(tableArea, spinner("Loading contacts…"));
    if (autoEnrich === null) {
      get("status").then(
        (status) => {
          autoEnrich = Boolean(status.config.auto_enrich_on_import);
        },
        () => {},
      );
    }
    try {
      const { items, next, scanned } = await fetchPage(filters, state.cursors[state.page], mine.signal);
      if (!ctx.alive || loading !== mine) return;
      state.items = items;
      state.next = next;
      state.scanned = scanned;
      const shown = new Set(items.map((c) => c.email));
      for (const email of [...state.selected]) if (!shown.has(email)) state.selected.delete(email);
      drawTable();
      drawPager();
      drawSelection();
    } catch (error) {
      if (!ctx.alive || loading !== mine || error.name === "AbortError" || error.status === 401) return;
      fill(tableArea, errorBox(error, () => load()));
    } finally {
      if (loading === mine) loading = null;
    }
  }

  function drawTable() {
    if (!state.items.length) {
      fill(
        tableArea,
        filtered
          ? emptyState(
              "No contacts match these filters",
              "Try other filters.",
              h("a", { class: "btn", href: "#/contacts" }, "Clear filters"),
            )
          : emptyState("No contacts yet", "Import a CSV file to bring contacts in. They are enriched as they arrive.", h("a", { class: "btn btn-primary", href: "#/import" }, "Import a CSV")),
      );
      return;
    }
    const all = h("input", {
      type: "checkbox",
      "aria-label": "select all on this page",
      class: "select-all",
      checked: state.items.every((c) => state.selected.has(c.email)),
      onchange: (event) => {
        for (const c of state.items) event.target.checked ? state.selected.add(c.email) : state.selected.delete(c.email);
        drawTable();
        drawSelection();
      },
    });
    const rows = state.items.map((c) => {
      const box = h("input", {
        type: "checkbox",
        class: "row-select",
        "aria-label": `select ${c.email}`,
        checked: state.selected.has(c.email),
        onchange: (event) => {
          event.target.checked ? state.selected.add(c.email) : state.selected.delete(c.email);
          row.classList.toggle("selected", event.target.checked);
          drawSelection();
        },
      });
      const name = fullName(c);
      const row = h(
        "tr",
        { class: ["contact-row", state.selected.has(c.email) && "selected"], dataset: { email: c.email } },
        h("td", { class: "col-select" }, box),
        h(
          "td",
          { class: "col-contact", title: name ? `${name} <${c.email}>` : c.email },
          h("a", { class: "contact-link", href: `#/contact/${encodeURIComponent(c.email)}` }, name || c.email),
          name ? h("div", { class: "muted small" }, c.email) : null,
        ),
        h("td", { class: "col-company" }, company(c) || h("span", { class: "muted" }, "—"), c.domain ? h("div", { class: "muted small" }, c.domain) : null),
        h("td", { class: "col-title", title: c.title || "" }, c.title || h("span", { class: "muted" }, "—")),
        h("td", {}, statusBadge(c.status)),
        h("td", {}, qualityMeter(c.quality)),
        h("td", { class: "col-tags", title: c.tags.join(", ") }, c.tags.slice(0, 2).map((t) => h("span", { class: "tag" }, t)), c.tags.length > 2 ? h("span", { class: "muted small" }, ` +${c.tags.length - 2}`) : null),
        h("td", { class: "col-time" }, time(c.updated_at)),
      );
      return row;
    });
    fill(
      tableArea,
      h(
        "div",
        { class: "table-scroll" },
        h(
          "table",
          { class: "table contacts-table" },
          h(
            "thead",
            {},
            h("tr", {}, h("th", { class: "col-select" }, all), ["Contact", "Company", "Title", "Status", "Quality", "Tags", "Updated"].map((t) => h("th", {}, t))),
          ),
          h("tbody", {}, rows),
        ),
      ),
    );
  }

  function drawPager() {
    const first = state.page * PAGE_SIZE + 1;
    const text = state.items.length
        ? `Page ${state.page + 1} · contacts ${num(first)}–${num(first + state.items.length - 1)}`
        : `Page ${state.page + 1}`;
    const previous = h("button", { class: "btn", type: "button", disabled: state.page === 0, onclick: () => go(-1) }, "← Previous");
    const next = h("button", { class: "btn", type: "button", disabled: !state.next, onclick: () => go(1) }, "Next →");
    fill(pager, h("span", { class: "muted pager-text" }, text), h("span", { class: "pager-buttons" }, previous, next));
  }

  function go(step) {
    if (step > 0) {
      if (!state.next) return;
      state.cursors[state.page + 1] = state.next;
    }
    state.page = Math.max(0, state.page + step);
    state.selected.clear();
    load();
  }

  function drawSelection() {
    const count = state.selected.size;
    selectionBar.hidden = count === 0;
    if (!count) return;
    const emails = [...state.selected];
    const enrich = h("button", { class: "btn btn-primary", type: "button", id: "enrich-selected" }, "Enrich");
    const sync = h("button", { class: "btn btn-primary", type: "button", id: "sync-selected" }, "Sync to HubSpot");
    enrich.addEventListener("click", () => busy(enrich, () => act("enrich", emails)));
    sync.addEventListener("click", () => busy(sync, () => act("sync", emails)));
    fill(
      selectionBar,
      h("strong", { class: "selection-count" }, `${num(count)} selected`),
      enrich,
      sync,
      h("button", { class: "btn btn-ghost", type: "button", onclick: () => { state.selected.clear(); drawTable(); drawSelection(); } }, "Clear selection"),
    );
  }

  async function act(kind, emails) {
    try {
      const answer = await post(kind, { emails });
      // follow the rows acted on until each has changed (its queue message may take a moment to be picked up)
      const before = new Map(state.items.filter((c) => emails.includes(c.email)).map((c) => [c.email, c.updated_at]));
      state.watch = { before, until: Date.now() + 120000 };
      const what = kind === "enrich" ? "enrichment" : "sync to HubSpot";
      const missing = answer.not_found.length ? ` (${answer.not_found.length} no longer exist)` : "";
      toast(`${num(answer.queued)} contact${answer.queued === 1 ? "" : "s"} queued for ${what}${missing}`, "success");
      state.selected.clear();
      drawSelection();
      await load({ quiet: true });
    } catch (error) {
      if (error.status !== 401) toast(error.message, "error");
    }
  }

  load();
  // Statuses move on by themselves (enriching → enriched → synced; imported → enriching when the workspace enriches on
  // import): refresh while any row is on its way, and after an action until the rows it touched have changed.
  ctx.every(2000, () => {
    if (loading) return; // no refresh over a load in flight
    const watch = state.watch;
    if (watch) {
      const settled = state.items.every((c) => !watch.before.has(c.email) || (c.updated_at !== watch.before.get(c.email) && !TRANSITIONAL.has(c.status)));
      if (settled || Date.now() > watch.until) state.watch = null;
    }
    if (state.watch || state.items.some(onItsWay)) load({ quiet: true });
  });
}

function company(contact) {
  return contact.company || (contact.enrichment.company_name && contact.enrichment.company_name.value) || "";
}

async function fetchPage(filters, cursor, signal) {
  const band = QUALITY_BANDS[filters.quality] || {};
  const query = {
    status: filters.status,
    domain: filters.domain,
    tag: filters.tag,
    custom: filters.custom,
    min_quality: band.min_quality,
    max_quality: band.max_quality,
  };
  const page = await get("contacts", { ...query, limit: PAGE_SIZE, cursor }, { signal });
  return { items: page.items, next: page.next_cursor, scanned: page.items.length };
}

function filterForm(ctx, filters) {
  const status = h(
    "select",
    { class: "input", name: "status", "aria-label": "status" },
    h("option", { value: "" }, "All statuses"),
    STATUS_ORDER.map((s) => h("option", { value: s, selected: filters.status === s }, label(s))),
  );
  const quality = h(
    "select",
    { class: "input", name: "quality", "aria-label": "quality" },
    h("option", { value: "" }, "Any quality"),
    Object.entries(QUALITY_BANDS).map(([key, band]) => h("option", { value: key, selected: filters.quality === key }, band.text)),
  );
  const text = (name, placeholder, value) => h("input", { class: "input", name, placeholder, value, "aria-label": name, autocomplete: "off", spellcheck: "false" });
  const domain = text("domain", "Company domain", filters.domain);
  const tag = text("tag", "Tag", filters.tag);
  const custom = text("custom", "Custom field (key:value)", filters.custom);
  const form = h(
    "form",
    {
      class: "filters",
      onsubmit: (event) => {
        event.preventDefault();
        const params = new URLSearchParams();
        for (const [name, element] of Object.entries({ status, domain, tag, quality, custom })) {
          const value = element.value.trim();
          if (value) params.set(name, value);
        }
        const hash = `#/contacts${params.toString() ? `?${params}` : ""}`;
        if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
        else ctx.navigate(hash);
      },
    },
    status,
    domain,
    tag,
    quality,
    custom,
    h("button", { class: "btn btn-primary", type: "submit" }, "Apply filters"),
    h("a", { class: "btn btn-ghost", href: "#/contacts" }, "Reset"),
  );
  status.addEventListener("change", () => form.requestSubmit());
  quality.addEventListener("change", () => form.requestSubmit());
  return form;
}
