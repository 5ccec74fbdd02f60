// One contact: every enriched field with its provider, confidence and time; the enrichment run; HubSpot ids and a
// link; engagements; the import history; enrich, sync and erase (with a confirmation).

import { call, contactPath, get, post } from "./api.js";
import {
  badge,
  busy,
  card,
  confirmDialog,
  emptyState,
  errorBox,
  externalLink,
  fill,
  fullName,
  h,
  keyValues,
  label,
  num,
  pct,
  qualityMeter,
  spinner,
  statusBadge,
  time,
  toast,
  when,
} from "./ui.js";

export const title = "Contact";

const TRANSITIONAL = new Set(["imported", "enriching", "syncing"]); // for a contact acted on: on its way

export function render(ctx) {
  const email = ctx.args[0] || "";
  const page = h("div", { class: "page contact-page" }, spinner("Loading the contact…"));
  ctx.main.append(page);
  let lastVersion = null;
  // GET /settings of the signed-in workspace (the HubSpot portal for the link), read by this page, never kept beyond
  // it (another sign-in may be another workspace's) and read again by the next load when it failed
  let settings = null;
  let drawnWithSettings = false;
  let status = null; // of the contact shown
  const watch = { version: null, until: 0 }; // after "Enrich now" / "Sync": follow until the contact changes

  // Only the latest load may draw (one after "Enrich now" cancels a refresh in flight), and refreshes do not overlap.
  let loading = null; // the AbortController of the load in flight
  async function load({ quiet = false } = {}) {
    if (loading) loading.abort();
    const mine = new AbortController();
    loading = mine;
    const { signal } = mine;
    try {
      const [contact, engagements, read] = await Promise.all([
        get(contactPath(email), {}, { signal }),
        get(`${contactPath(email)}/engagements`, {}, { signal }),
        settings || get("settings", {}, { signal }).catch((error) => (error.name === "AbortError" ? Promise.reject(error) : null)),
      ]);
      if (!ctx.alive || loading !== mine) return;
      settings = read;
      if (watch.version !== null && contact.version !== watch.version && !TRANSITIONAL.has(contact.status)) watch.until = 0;
      if (quiet && contact.version === lastVersion && (drawnWithSettings || !settings)) return;
      lastVersion = contact.version;
      status = contact.status;
      drawnWithSettings = Boolean(settings);
      const portal = (settings && settings.hubspot && settings.hubspot.portal_id) || null;
      fill(page, view(ctx, contact, engagements, portal, load, () => {
        watch.version = contact.version;
        watch.until = Date.now() + 120000;
      }));
    } catch (error) {
      if (!ctx.alive || loading !== mine || error.name === "AbortError" || error.status === 401) return;
      if (error.status === 404) {
        fill(page, backLink(), emptyState("Contact not found", `No contact ${email} in this workspace. It may have been erased.`, h("a", { class: "btn", href: "#/contacts" }, "All contacts")));
      } else if (!quiet) {
        fill(page, backLink(), errorBox(error, () => load()));
      }
    } finally {
      if (loading === mine) loading = null;
    }
  }
  load();
  // Its status moves on by itself (enriching → enriched → synced; imported → enriching only when the workspace
  // enriches on import): refresh while it is on its way, and after "Enrich now" / "Sync" until it has changed.
  ctx.every(2000, () => {
    if (loading) return;
    const autoEnrich = Boolean(settings && settings.automation.auto_enrich_on_import.value);
    const onItsWay = status === "enriching" || status === "syncing" || (status === "imported" && autoEnrich);
    if (Date.now() < watch.until || onItsWay) load({ quiet: true });
  });
}

function backLink() {
  return h("a", { class: "back", href: "#/contacts" }, "← Contacts");
}

function initials(contact) {
  const name = fullName(contact) || contact.email;
  return name
    .split(/[\s@.]+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((part) => part[0].toUpperCase())
    .join("");
}

function view(ctx, contact, engagements, portal, reload, acted) {
  const name = fullName(contact);
  const company = contact.company || (contact.enrichment.company_name && contact.enrichment.company_name.value);
  const enrich = h("button", { class: "btn", type: "button", id: "enrich-contact" }, "Enrich now");
  const sync = h("button", { class: "btn", type: "button", id: "sync-contact" }, "Sync to HubSpot");
  const erase = h("button", { class: "btn btn-danger", type: "button", id: "erase-contact" }, "Erase…");
  enrich.addEventListener("click", () => busy(enrich, () => trigger("enrich", contact.email, reload, acted)));
  sync.addEventListener("click", () => busy(sync, () => trigger("sync", contact.email, reload, acted)));
  erase.addEventListener("click", () => eraseContact(ctx, contact, erase));

  const header = h(
    "header",
    { class: "contact-header" },
    h("div", { class: "avatar", "aria-hidden": "true" }, initials(contact)),
    h(
      "div",
      { class: "contact-title" },
      h("h1", {}, name || contact.email),
      h("div", { class: "muted" }, [name ? contact.email : null, contact.title, company].filter(Boolean).join(" · ")),
      h(
        "div",
        { class: "badges" },
        statusBadge(contact.status),
        badge(`lifecycle: ${label(contact.lifecycle).toLowerCase()}`, "neutral"),
        contact.do_not_enrich ? badge("do not enrich", "warning") : null,
        contact.status_reason ? h("span", { class: "muted small" }, contact.status_reason) : null,
      ),
    ),
    h("div", { class: "contact-quality" }, h("div", { class: "muted small" }, "Quality"), qualityMeter(contact.quality)),
    h("div", { class: "page-actions" }, enrich, sync, erase),
  );

  const alerts = [];
  if (contact.failure) {
    alerts.push(
      h(
        "div",
        { class: "alert alert-error" },
        h("strong", {}, `${label(contact.failure.stage)} failed`),
        ` after ${contact.failure.attempts} attempt(s): ${contact.failure.error}`,
        contact.failure.next_retry_at ? ` — next retry ${when(contact.failure.next_retry_at)}` : "",
      ),
    );
  }
  const meta = contact.enrichment_meta;
  if (meta && meta.below_threshold && !(contact.hubspot && contact.hubspot.contact_id)) {
    alerts.push(h("div", { class: "alert alert-warning" }, `Quality ${contact.quality?.toFixed(2)} is below ${meta.min_quality}: this contact is not synced automatically. Sync it by hand if you want it in HubSpot.`));
  }

  return [
    backLink(),
    header,
    alerts,
    h(
      "div",
      { class: "detail-grid" },
      h("div", { class: "detail-main" }, fieldsCard(contact), runCard(meta), engagementsCard(engagements), sourcesCard(contact)),
      h("div", { class: "detail-side" }, hubspotCard(contact, portal), profileCard(contact), contact.icp ? icpCard(contact.icp) : null, contact.intelligence ? insightCard(contact.intelligence) : null),
    ),
  ];
}

function fieldValue(value) {
  if (value === null || value === undefined || value === "") return h("span", { class: "muted" }, "—");
  const text = String(value);
  if (/^https?:\/\//i.test(text)) return externalLink(text, text.replace(/^https?:\/\/(www\.)?/i, ""));
  return text;
}

function fieldsCard(contact) {
  const entries = Object.entries(contact.enrichment);
  if (!entries.length) {
    const why = contact.status === "imported" ? "It is waiting for enrichment." : contact.status_reason || "Enrich it to fill its company and person fields.";
    return card("Enriched fields", emptyState("Not enriched yet", why), { id: "fields-card" });
  }
  const rows = entries.map(([field, fv]) => {
    const notes = [];
    if (fv.agreed_by && fv.agreed_by.length) notes.push(h("div", { class: "agree small" }, `confirmed by ${fv.agreed_by.join(", ")}`));
    for (const conflict of fv.conflicts || []) {
      notes.push(h("div", { class: "conflict small" }, `${conflict.provider} said `, h("q", {}, String(conflict.value))));
    }
    return h(
      "tr",
      { class: "field-row", dataset: { field } },
      h("th", { scope: "row", class: "field-name" }, label(field)),
      h("td", { class: "field-value" }, fieldValue(fv.value), notes),
      h("td", { class: "field-source" }, h("span", { class: ["provider", fv.provider === "import" ? "provider-import" : null] }, fv.provider)),
      h(
        "td",
        { class: "field-confidence" },
        h(
          "span",
          { class: ["meter", fv.confidence >= 0.7 ? "meter-good" : fv.confidence >= 0.4 ? "meter-fair" : "meter-poor"], title: `confidence ${fv.confidence}` },
          h("span", { class: "meter-track" }, h("span", { class: "meter-fill", style: { width: `${fv.confidence * 100}%` } })),
          h("span", { class: "meter-value" }, pct(fv.confidence)),
        ),
      ),
      h("td", { class: "field-time" }, time(fv.fetched_at)),
    );
  });
  return card(
    "Enriched fields",
    h(
      "div",
      { class: "table-scroll" },
      h(
        "table",
        { class: "table fields-table" },
        h("thead", {}, h("tr", {}, ["Field", "Value", "Source", "Confidence", "Fetched"].map((t) => h("th", {}, t)))),
        h("tbody", {}, rows),
      ),
    ),
    { id: "fields-card" },
  );
}

function runCard(meta) {
  if (!meta) return null;
  const lines = [
    ["Enriched", when(meta.enriched_at)],
    ["Request", h("code", {}, meta.request_id)],
    ["Providers asked", meta.sources_asked.length ? meta.sources_asked.join(" → ") : "none"],
    ["Cache hits / provider calls", `${num(meta.cache_hits)} / ${num(meta.provider_calls)}`],
    meta.pending.length ? ["Still working", meta.pending.join(", ")] : null,
  ];
  const gaps = meta.gaps.map((g) => h("li", {}, h("strong", {}, g.provider), ` — ${g.reason}: ${g.message}`));
  const skipped = Object.entries(meta.skipped).map(([provider, why]) => h("li", {}, h("strong", {}, provider), ` — ${why}`));
  return card(
    "Last enrichment",
    [
      keyValues(lines),
      gaps.length ? [h("h3", { class: "subhead" }, "Gaps"), h("ul", { class: "plain-list" }, gaps)] : null,
      skipped.length ? h("details", { class: "skipped" }, h("summary", {}, `${skipped.length} provider(s) skipped`), h("ul", { class: "plain-list" }, skipped)) : null,
    ],
    { id: "run-card" },
  );
}

function engagementsCard(engagements) {
  const counts = Object.entries(engagements.engagement_counts);
  const body = engagements.items.length
    ? [
        h("div", { class: "chips" }, counts.map(([type, n]) => h("span", { class: "chip" }, `${label(type)} `, h("strong", {}, num(n))))),
        h(
          "ol",
          { class: "timeline" },
          engagements.items.map((e) =>
            h(
              "li",
              { class: "timeline-item", dataset: { type: e.type } },
              h("span", { class: "timeline-dot", "aria-hidden": "true" }),
              h("div", {}, h("strong", {}, label(e.type)), " ", time(e.at)),
              Object.keys(e.details).length
                ? h("div", { class: "muted small" }, Object.entries(e.details).map(([k, v]) => `${k}: ${v}`).join(" · "))
                : null,
            ),
          ),
        ),
      ]
    : emptyState("No engagements yet", "Email opens, clicks, replies and meetings recorded through the API show here.");
  return card(`Engagements (${num(engagements.total)})`, body, { id: "engagements-card" });
}

function sourcesCard(contact) {
  if (!contact.sources.length) return null;
  return card(
    "Where it came from",
    h(
      "ol",
      { class: "timeline" },
      [...contact.sources].reverse().map((src) =>
        h(
          "li",
          { class: "timeline-item" },
          h("span", { class: "timeline-dot", "aria-hidden": "true" }),
          h(
            "div",
            {},
            h("strong", {}, label(src.effect)),
            ` from ${src.source}`,
            src.ref ? [" ", h("code", {}, src.ref)] : null,
            src.row ? ` row ${src.row}` : null,
            " · ",
            time(src.at),
          ),
          src.job_id ? h("a", { class: "small", href: `#/import/${encodeURIComponent(src.job_id)}` }, `import ${src.job_id}`) : null,
        ),
      ),
    ),
    { id: "sources-card" },
  );
}

function hubspotCard(contact, portal) {
  const ref = contact.hubspot;
  if (!ref || !ref.contact_id) {
    return card("HubSpot", emptyState("Not in HubSpot yet", "Sync the contact to create or update it there."), { id: "hubspot-card" });
  }
  const link = portal ? externalLink(`https://app.hubspot.com/contacts/${portal}/record/0-1/${encodeURIComponent(ref.contact_id)}`, "Open in HubSpot ↗") : null;
  if (link) link.classList.add("hubspot-link");
  return card(
    "HubSpot",
    [
      keyValues([
        ["Contact id", h("code", { class: "hubspot-id" }, ref.contact_id)],
        ["Company id", ref.company_id ? h("code", {}, ref.company_id) : "—"],
        ["Synced", ref.synced_at ? time(ref.synced_at) : "—"],
        ["Properties written", num(Object.keys(ref.written || {}).length)],
      ]),
      link,
    ],
    { id: "hubspot-card" },
  );
}

function profileCard(contact) {
  const custom = Object.entries(contact.custom);
  return card(
    "Profile",
    [
      keyValues([
        ["Email", contact.email],
        ["Company domain", contact.domain || "—"],
        ["Phone", contact.phone || "—"],
        ["LinkedIn", contact.linkedin ? fieldValue(contact.linkedin) : "—"],
        ["Website", contact.website ? fieldValue(contact.website) : "—"],
        ["Location", [contact.city, contact.country].filter(Boolean).join(", ") || "—"],
        ["Created", when(contact.created_at)],
        ["Updated", when(contact.updated_at)],
      ]),
      contact.tags.length ? [h("h3", { class: "subhead" }, "Tags"), h("div", { class: "chips" }, contact.tags.map((t) => h("a", { class: "tag", href: `#/contacts?tag=${encodeURIComponent(t)}` }, t)))] : null,
      custom.length ? [h("h3", { class: "subhead" }, "Custom fields"), keyValues(custom.map(([k, v]) => [k, v]))] : null,
    ],
    { id: "profile-card" },
  );
}

function icpCard(icp) {
  return card("Ideal-customer fit", [qualityMeter(icp.score), h("p", {}, icp.explanation), icp.role ? h("p", { class: "muted" }, `as ${icp.role}`) : null], { id: "icp-card" });
}

function insightCard(insight) {
  const list = (items) => h("ul", { class: "plain-list" }, items.map((i) => h("li", {}, i)));
  return card("Insights", [h("h3", { class: "subhead" }, "Pain points"), list(insight.pain_points), h("h3", { class: "subhead" }, "Hooks"), list(insight.hooks)], { id: "insight-card" });
}

async function trigger(kind, email, reload, acted) {
  try {
    const answer = await post(kind, { emails: [email] });
    acted();
    toast(answer.queued ? `Queued for ${kind === "enrich" ? "enrichment" : "sync to HubSpot"}` : "Nothing was queued", answer.queued ? "success" : "warning");
    await reload({ quiet: true });
  } catch (error) {
    if (error.status !== 401) toast(error.message, "error");
  }
}

async function eraseContact(ctx, contact, button) {
  const inHubSpot = Boolean(contact.hubspot && contact.hubspot.contact_id);
  const choice = await confirmDialog({
    title: `Erase ${contact.email}?`,
    message: [
      h("p", {}, "This deletes everything leadpipe keeps on this person: the contact, its cached enrichment answers, import rows and files naming it, and failed messages about it."),
      h("p", {}, "The email is added to the suppression list, so it is never imported or enriched again. This cannot be undone."),
    ],
    confirmLabel: "Erase permanently",
    danger: true,
    confirmText: "erase",
    options: inHubSpot ? [{ name: "hubspot", label: "Also delete the contact in HubSpot (GDPR delete)", checked: false }] : [],
  });
  if (!choice) return;
  await busy(button, async () => {
    try {
      const answer = await call("DELETE", contactPath(contact.email), { query: { hubspot: choice.hubspot ? "true" : undefined } });
      const hub = choice.hubspot ? ` HubSpot: ${answer.hubspot.status}.` : "";
      toast(`${contact.email} was erased and suppressed.${hub}`, answer.complete ? "success" : "warning");
      if (ctx.alive) ctx.navigate("#/contacts");
    } catch (error) {
      if (error.status !== 401) toast(`Erasure failed: ${error.message}`, "error");
    }
  });
}
