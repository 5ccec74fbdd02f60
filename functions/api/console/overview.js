// Overview: GET /status (contacts by status, configuration, runs) and GET /summary (quality, industries, sizes,
// countries, coverage by provider), refreshed every 15 s while shown.

import { call, get } from "./api.js";
import { barList, columnChart, stackedBar } from "./charts.js";
import {
  STATUS_ORDER,
  badge,
  busy,
  card,
  emptyState,
  errorBox,
  fill,
  h,
  keyValues,
  label,
  num,
  pct,
  spinner,
  time,
  toast,
} from "./ui.js";

export const title = "Overview";

export function render(ctx) {
  const body = h("div", { class: "overview" }, spinner("Loading the workspace…"));
  const subtitle = h("p", { class: "page-subtitle" }, "Pipeline, data quality and automation of this workspace");
  const refresh = h("button", { class: "btn", type: "button", onclick: () => busy(refresh, load) }, "Refresh");
  ctx.main.append(
    h(
      "div",
      { class: "page" },
      h(
        "header",
        { class: "page-header" },
        h("div", {}, h("h1", {}, "Overview"), subtitle),
        h("div", { class: "page-actions" }, refresh, h("a", { class: "btn btn-primary", href: "#/import" }, "Import CSV")),
      ),
      body,
    ),
  );

  let shown = false;
  // Only the latest load may draw (the Refresh button, a switch turned, the timer): a new one cancels the one in
  // flight, and the timer does not start one over it.
  let loading = null; // the AbortController of the load in flight
  async function load() {
    if (loading) loading.abort();
    const mine = new AbortController();
    loading = mine;
    const { signal } = mine;
    try {
      const [status, summary] = await Promise.all([get("status", {}, { signal }), get("summary", {}, { signal })]);
      if (!ctx.alive || loading !== mine) return;
      fill(subtitle, `Workspace ${status.workspace} · stage ${status.stage} · updated `, time(new Date().toISOString()));
      fill(body, view(status, summary, load));
      shown = true;
    } catch (error) {
      if (!ctx.alive || loading !== mine || error.name === "AbortError" || error.status === 401) return;
      if (!shown) fill(body, errorBox(error, load));
      else toast(`Could not refresh: ${error.message}`, "error");
    } finally {
      if (loading === mine) loading = null;
    }
  }
  load();
  ctx.every(15000, () => {
    if (!loading) load();
  });
}

function view(status, summary, reload) {
  const counts = status.counts;
  const total = status.total;
  const enrichedNow = (counts.enriched || 0) + (counts.syncing || 0) + (counts.synced || 0);
  const minQuality = status.config.min_quality;
  const aboveThreshold = summary.quality
    .filter((b) => Number.parseFloat(b.range) >= minQuality - 1e-9)
    .reduce((sum, b) => sum + b.contacts, 0);

  const kpis = h(
    "div",
    { class: "kpis" },
    kpi("Contacts", num(total), total ? `${num(counts.imported || 0)} waiting for enrichment` : "none yet", "kpi-total"),
    kpi("Enriched", num(enrichedNow), total ? `${pct(enrichedNow / total)} of contacts` : "—", "kpi-enriched"),
    kpi("Synced to HubSpot", num(counts.synced || 0), total ? `${pct((counts.synced || 0) / total)} of contacts` : "—", "kpi-synced"),
    kpi("Quality ≥ " + minQuality, num(aboveThreshold), summary.enriched ? `${pct(aboveThreshold / summary.enriched)} of scored contacts` : "nothing scored yet", "kpi-quality"),
    kpi("Needs attention", num(counts.failed || 0), counts.failed ? "failed enrichment or sync" : "no failures", counts.failed ? "kpi-alert" : "kpi-ok"),
  );

  const cards = [];
  cards.push(
    card(
      "Pipeline",
      total
        ? stackedBar(STATUS_ORDER.map((key) => ({ key, value: counts[key] || 0 })), { className: "pipeline-bar" })
        : emptyState("No contacts yet", "Import a CSV to start the pipeline.", h("a", { class: "btn btn-primary", href: "#/import" }, "Import a CSV")),
      { className: "span-2", id: "pipeline-card" },
    ),
  );

  const scored = summary.enriched;
  cards.push(
    card(
      "Quality distribution",
      scored
        ? [
            columnChart(
              summary.quality.map((b) => ({
                label: b.range.split("-")[0],
                value: b.contacts,
                title: `quality ${b.range}: ${num(b.contacts)} contacts`,
                className: Number.parseFloat(b.range) >= minQuality - 1e-9 ? "bar-pass" : "bar-below",
              })),
              { marker: { at: minQuality, text: `min ${minQuality}` }, className: "chart-quality", ariaLabel: "quality distribution" },
            ),
            h("p", { class: "card-note" }, `${num(scored)} contacts scored. Contacts under ${minQuality} stay enriched and are not synced automatically.`),
          ]
        : emptyState("Nothing scored yet", "Quality scores appear once contacts are enriched."),
      { id: "quality-card" },
    ),
  );

  cards.push(
    card(
      "Coverage by provider",
      summary.coverage.length
        ? [
            barList(
              summary.coverage.map((c) => ({ label: c.provider, value: c.contacts, share: c.share_of_enriched })),
              { className: "coverage-list", format: (i) => `${pct(i.share)} · ${num(i.value)}`, max: scored || undefined },
            ),
            h("p", { class: "card-note" }, "Share of enriched contacts holding at least one value from the provider."),
          ]
        : emptyState("No coverage yet", "Providers that supply a kept value show here."),
      { id: "coverage-card" },
    ),
  );

  cards.push(
    card(
      "Top industries",
      summary.industries.length
        ? barList(summary.industries.map((f) => ({ label: f.value, value: f.contacts })), { className: "industry-list" })
        : emptyState("No industries yet", "Company data from the providers shows here."),
      { id: "industries-card" },
    ),
  );

  cards.push(
    card(
      "Countries",
      summary.countries.length
        ? barList(summary.countries.map((f) => ({ label: f.value, value: f.contacts })), { className: "country-list" })
        : emptyState("No countries yet", "The person's, the imported or the company's country."),
      { id: "countries-card" },
    ),
  );

  cards.push(
    card(
      "Company sizes",
      summary.company_sizes.length
        ? columnChart(summary.company_sizes.map((f) => ({ label: f.value, value: f.contacts })), { className: "chart-sizes", ariaLabel: "company sizes" })
        : emptyState("No company sizes yet", "Employee ranges from the providers show here."),
      { id: "sizes-card" },
    ),
  );

  cards.push(automationCard(status, reload));
  cards.push(runsCard(status));

  return [kpis, h("div", { class: "grid" }, cards)];
}

function kpi(title, value, note, className) {
  return h("div", { class: ["kpi", className] }, h("div", { class: "kpi-title" }, title), h("div", { class: "kpi-value" }, value), h("div", { class: "kpi-note" }, note));
}

function automationCard(status, reload) {
  const config = status.config;
  const toggle = (name, text, help) => {
    const input = h("input", { type: "checkbox", role: "switch", name, checked: Boolean(config[name]), "aria-label": text });
    input.addEventListener("change", async () => {
      input.disabled = true;
      try {
        await call("PUT", "settings", { body: { [name]: input.checked } });
        toast(`${text}: ${input.checked ? "on" : "off"} for this workspace`, "success");
        reload();
      } catch (error) {
        input.checked = !input.checked;
        toast(error.message, "error");
      } finally {
        input.disabled = false;
      }
    });
    return h("label", { class: "switch-row" }, h("span", { class: "switch" }, input, h("span", { class: "switch-slider" })), h("span", {}, h("strong", {}, text), h("span", { class: "muted block" }, help)));
  };
  const providers = h(
    "div",
    { class: "providers" },
    status.providers.map((p) =>
      h(
        "span",
        { class: ["provider-chip", p.enabled ? "provider-on" : "provider-off"], title: p.enabled ? `position ${p.position} in the waterfall` : p.reason || "skipped" },
        `${p.position}. ${p.name}`,
        p.enabled ? null : h("span", { class: "chip-note" }, p.reason || "off"),
      ),
    ),
  );
  return card(
    "Automation",
    [
      toggle("auto_enrich_on_import", "Enrich on import", "Contacts are enriched as soon as they are imported."),
      toggle("auto_sync_after_enrich", "Sync after enrichment", `Enriched contacts with quality ≥ ${config.min_quality} go to HubSpot.`),
      h("h3", { class: "subhead" }, "Provider waterfall"),
      providers,
      keyValues([
        ["Min quality", String(config.min_quality)],
        ["Field confidence", String(config.field_threshold)],
        ["Cache", `${config.cache_days} days (misses ${config.cache_miss_days})`],
      ]),
    ],
    { id: "automation-card" },
  );
}

function runsCard(status) {
  const stats = status.stats;
  const run = (name, last, totals) =>
    h(
      "div",
      { class: "run" },
      h("div", { class: "run-head" }, h("strong", {}, name), last ? badge(last.outcome, last.outcome === "completed" ? "success" : "danger") : badge("no runs yet")),
      last
        ? h("div", { class: "muted" }, time(last.at), ` · ${Object.entries(last.counts).filter(([, v]) => v).map(([k, v]) => `${label(k).toLowerCase()} ${num(v)}`).join(", ")}`)
        : null,
      h("div", { class: "muted" }, `${num(totals.runs)} run${totals.runs === 1 ? "" : "s"}, ${num(totals.failed_runs)} failed`),
    );
  return card(
    "Runs",
    h(
      "div",
      { class: "runs" },
      run("Enrichment", stats.last_run.enrichment, stats.enrichment),
      run("Sync", stats.last_run.sync, stats.sync),
      keyValues([
        ["Cache hit rate", stats.cache_hit_rate === null ? "—" : pct(stats.cache_hit_rate)],
        ["Provider calls", num(stats.provider_calls)],
        ["HubSpot calls", `${num(stats.hubspot_calls)} (${num(stats.hubspot_429s)} rate-limited)`],
      ]),
    ),
    { id: "runs-card", className: "span-2" },
  );
}
