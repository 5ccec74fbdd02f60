// Activity: GET /activity, newest first, polled every 3 s; older pages with the cursor. Events reach the feed late and
// out of order (bus → queue → batch function, with retries), so a poll asks for everything since a margin before the
// newest event shown, skips what is shown, and puts each new event in its place by time; a poll answering a full page
// reads on (a few pages a poll) until it reaches events already shown, so a burst or a hidden tab leaves no gap.

import { get } from "./api.js";
import { emptyState, errorBox, fill, h, label, num, spinner, time, toast } from "./ui.js";

export const title = "Activity";

const POLL_MS = 3000;
const LATE_MS = 5 * 60 * 1000; // an event may be stored this long after a newer one was shown
const PAGES_A_POLL = 10; // at most this many pages read by one poll; the rest by the next ones
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
  const shown = []; // the events in the list, in its order (newest first): list.children[i] shows shown[i]
  let newest = null; // the time of the newest event shown
  let cursor = null; // older events, for "Show older events"
  let gap = null; // { since, cursor }: what a poll had still to read when it stopped at PAGES_A_POLL
  let polling = false;

  function entry(item, fresh) {
    const kind = KIND[item.type] || { icon: "•", tone: "neutral", title: label(item.type) };
    const counts = ORDER.filter((k) => item.counts[k]).map((k) => `${num(item.counts[k])} ${label(k).toLowerCase()}`);
    for (const [k, v] of Object.entries(item.counts)) if (v && !ORDER.includes(k)) counts.push(`${num(v)} ${label(k).toLowerCase()}`);
    return h(
      "li",
      { class: ["feed-item", `tone-${kind.tone}`, fresh && "feed-new"], dataset: { id: item.id, type: item.type, at: item.at } },
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

  /** Show an event in its place (newest first, as the API orders them); false if it is shown already. */
  function place(item, fresh) {
    if (seen.has(item.id)) return false;
    seen.add(item.id);
    let low = 0;
    let high = shown.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (above(shown[middle], item)) low = middle + 1;
      else high = middle;
    }
    list.insertBefore(entry(item, fresh), list.children[low] || null);
    shown.splice(low, 0, item);
    if (newest === null || Date.parse(item.at) > Date.parse(newest)) newest = item.at;
    return true;
  }

  function showMore() {
    fill(more, cursor ? h("button", { class: "btn", type: "button", onclick: older }, "Show older events") : null);
  }

  async function first() {
    try {
      const page = await get("activity", { limit: 50 });
      if (!ctx.alive) return;
      for (const item of page.items) place(item, false);
      cursor = page.next_cursor;
      fill(body, shown.length ? list : emptyState("No activity yet", "Import a CSV: its import, enrichment and sync runs appear here as they happen.", h("a", { class: "btn btn-primary", href: "#/import" }, "Import a CSV")));
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
      let since = newest === null ? undefined : new Date(Date.parse(newest) - LATE_MS).toISOString();
      let next;
      if (gap) ({ since, cursor: next } = gap);
      for (let pages = 0; ; pages += 1) {
        // should this poll stop here (too many pages, an error), the next one reads on from here: the newest events
        // are shown already, so a poll from the top would not reach back this far
        if (next !== undefined) gap = { since, cursor: next };
        if (pages === PAGES_A_POLL) break;
        const page = await get("activity", { limit: 50, since, cursor: next });
        if (!ctx.alive) return;
        let added = 0;
        for (const item of page.items) if (place(item, true)) added += 1;
        if (added && !list.isConnected) fill(body, list);
        // a page that brought nothing new: what is older was shown already
        if (!added || !page.next_cursor) {
          gap = null;
          break;
        }
        next = page.next_cursor;
      }
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
      for (const item of page.items) place(item, false);
      cursor = page.next_cursor;
      showMore();
    } catch (error) {
      if (error.status !== 401) toast(error.message, "error");
    }
  }

  first();
  ctx.every(POLL_MS, poll);
}

const RANK = (item) => (item.type.endsWith(".started") ? 0 : 1); // a run's start below its end in the same instant

/** Whether event a is listed above event b: newer, then a run's end before its start, then by id (the API's order). */
function above(a, b) {
  const at = Date.parse(a.at) - Date.parse(b.at);
  if (at) return at > 0;
  if (RANK(a) !== RANK(b)) return RANK(a) > RANK(b);
  return a.id > b.id;
}
