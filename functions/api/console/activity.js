// Activity: GET /activity, newest first, polled every 3 s with ?since= the newest event shown (new events slide in
// at the top); older pages with the cursor.

import { get } from "./api.js";
import { emptyState, errorBox, fill, h, label, num, spinner, time, toast } from "./ui.js";

export const title = "Activity";

const POLL_MS = 3000;
const KIND = {
  "contacts.imported": { icon: "⇪", tone: "import", title: "Contacts imported" },
  "enrichment.started": { icon: "◔", tone: "running", title: "Enrichment started" },
  "enrichment.completed": { icon: "✦", tone: "success", title: "Enrichment completed" },
  "enrichment.failed": { icon: "!", tone: "danger", title: "Enrichment failed" },
  "sync.started": { icon: "◔", tone: "running", title: "Sync to HubSpot started" },
  "sync.completed": { icon: "⟳", tone: "success", title: "Synced to HubSpot" },
  "sync.failed": { icon: "!", tone: "danger", title: "Sync to HubSpot failed" },
};
const ORDER = ["contacts", "enriched", "published", "below_threshold", "synced", "created", "updated", "unchanged", "failed", "skipped", "cache_hits", "provider_calls", "companies_created", "notes", "hubspot_calls", "hubspot_429s"];

export function render(ctx) {
  const list = h("ol", { class: "feed", id: "activity-feed" });
  const body = h("div", {}, spinner("Loading activity…"));
  const more = h("div", { class: "feed-more" });
  const live = h("span", { class: "live live-on" }, h("span", { class: "live-dot", "aria-hidden": "true" }), "live");
  ctx.main.append(
    h(
      "div",
      { class: "page" },
      h(
        "header",
        { class: "page-header" },
        h("div", {}, h("h1", {}, "Activity"), h("p", { class: "page-subtitle" }, "Imports, enrichment and sync runs as they happen (kept 30 days).")),
        h("div", { class: "page-actions" }, live),
      ),
      h("section", { class: "card" }, h("div", { class: "card-body" }, body, more)),
    ),
  );

  const seen = new Set();
  let newest = null;
  let cursor = null;
  let polling = false;

  function entry(item, fresh) {
    const kind = KIND[item.type] || { icon: "•", tone: "neutral", title: label(item.type) };
    const counts = ORDER.filter((k) => item.counts[k]).map((k) => `${num(item.counts[k])} ${label(k).toLowerCase()}`);
    for (const [k, v] of Object.entries(item.counts)) if (v && !ORDER.includes(k)) counts.push(`${num(v)} ${label(k).toLowerCase()}`);
    return h(
      "li",
      { class: ["feed-item", `tone-${kind.tone}`, fresh && "feed-new"], dataset: { id: item.id, type: item.type } },
      h("span", { class: "feed-icon", "aria-hidden": "true" }, kind.icon),
      h(
        "div",
        { class: "feed-body" },
        h("div", { class: "feed-title" }, h("strong", {}, kind.title), item.source ? h("span", { class: "muted" }, ` from ${item.source}`) : null),
        counts.length ? h("div", { class: "feed-counts" }, counts.join(" · ")) : null,
        item.error ? h("div", { class: "feed-error" }, item.error) : null,
        item.job_id || item.request_id
          ? h(
              "div",
              { class: "muted small feed-meta" },
              item.job_id ? h("a", { href: `#/import/${encodeURIComponent(item.job_id)}` }, `import ${item.job_id}`) : null,
              item.request_id ? h("span", {}, "request ", h("code", {}, item.request_id)) : null,
            )
          : null,
      ),
      h("div", { class: "feed-time" }, time(item.at)),
    );
  }

  function showMore() {
    fill(more, cursor ? h("button", { class: "btn", type: "button", onclick: older }, "Show older events") : null);
  }

  async function first() {
    try {
      const page = await get("activity", { limit: 50 });
      if (!ctx.alive) return;
      for (const item of page.items) seen.add(item.id);
      newest = page.items.length ? page.items[0].at : null;
      cursor = page.next_cursor;
      fill(list, page.items.map((item) => entry(item, false)));
      fill(body, page.items.length ? list : emptyState("No activity yet", "Import a CSV: its import, enrichment and sync runs appear here as they happen.", h("a", { class: "btn btn-primary", href: "#/import" }, "Import a CSV")));
      showMore();
    } catch (error) {
      if (!ctx.alive || error.status === 401) return;
      fill(body, errorBox(error, first));
    }
  }

  async function poll() {
    if (polling) return;
    polling = true;
    try {
      const page = await get("activity", { limit: 50, since: newest || undefined });
      if (!ctx.alive) return;
      const fresh = page.items.filter((item) => !seen.has(item.id));
      if (!fresh.length) return;
      for (const item of fresh) seen.add(item.id);
      if (!list.isConnected) fill(body, list);
      list.prepend(...fresh.map((item) => entry(item, true)));
      newest = fresh[0].at > (newest || "") ? fresh[0].at : newest;
      fill(live, h("span", { class: "live-dot", "aria-hidden": "true" }), "live");
    } catch (error) {
      if (!ctx.alive || error.status === 401) return;
      fill(live, h("span", { class: "live-dot", "aria-hidden": "true" }), "reconnecting…");
    } finally {
      polling = false;
    }
  }

  async function older() {
    try {
      const page = await get("activity", { limit: 50, cursor });
      if (!ctx.alive) return;
      const items = page.items.filter((item) => !seen.has(item.id));
      for (const item of items) seen.add(item.id);
      list.append(...items.map((item) => entry(item, false)));
      cursor = page.next_cursor;
      showMore();
    } catch (error) {
      if (error.status !== 401) toast(error.message, "error");
    }
  }

  first();
  ctx.every(POLL_MS, poll);
}
