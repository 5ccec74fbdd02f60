// Bulk import: drop or pick a CSV → POST /imports/uploads → PUT the file to the presigned URL → follow
// GET /imports/{job_id}?pipeline=true: rows read, valid, invalid (with the row errors), then where the job's contacts
// are (enriched, synced). Recent imports are listed below.

import { get, post, upload } from "./api.js";
import { stackedBar } from "./charts.js";
import {
  STATUS_ORDER,
  badge,
  card,
  emptyState,
  errorBox,
  fill,
  h,
  label,
  num,
  pct,
  spinner,
  time,
  toast,
} from "./ui.js";

export const title = "Import";

const TERMINAL = new Set(["completed", "completed_with_errors", "failed"]);
const JOB_BADGE = { completed: "success", completed_with_errors: "warning", failed: "danger", running: "info", queued: "info", awaiting_upload: "neutral" };
const FAST_POLL_MS = 1000;
const IDLE_AFTER_MS = 15000; // nothing changed for this long: poll every IDLE_POLL_MS instead, or stop once settled
const IDLE_POLL_MS = 10000;
const NO_PIPELINE = { contacts: 0, by_status: {}, enriched: 0, synced: 0, failed: 0, complete: true };

export function render(ctx) {
  const jobId = ctx.args[0];
  const uploadArea = h("div", {});
  const jobArea = h("div", {});
  const recentArea = h("div", {}, spinner("Loading recent imports…"));
  ctx.main.append(
    h(
      "div",
      { class: "page" },
      h(
        "header",
        { class: "page-header" },
        h("div", {}, h("h1", {}, "Import contacts"), h("p", { class: "page-subtitle" }, "Upload a CSV file: it is validated, de-duplicated and imported, then enriched and synced as your automation says.")),
      ),
      uploadArea,
      jobArea,
      card("Recent imports", recentArea, { id: "recent-imports" }),
    ),
  );
  fill(uploadArea, dropZone(ctx));
  if (jobId) followJob(ctx, jobId, jobArea, () => loadRecent(ctx, recentArea, true));
  loadRecent(ctx, recentArea);
  ctx.every(5000, () => loadRecent(ctx, recentArea, true));
}

// ------------------------------------------------------------------------------------------------ upload

function dropZone(ctx) {
  const input = h("input", { type: "file", accept: ".csv,.tsv,.txt,text/csv", class: "file-input", id: "csv-file", "aria-label": "CSV file" });
  const status = h("div", { class: "upload-status" });
  const zone = h(
    "label",
    { class: "dropzone", for: "csv-file" },
    h("div", { class: "dropzone-icon", "aria-hidden": "true" }, "⇪"),
    h("div", { class: "dropzone-title" }, "Drop a CSV file here, or ", h("span", { class: "link" }, "choose a file")),
    h("div", { class: "muted small" }, "Any CSV with an email column; other columns are matched by name (First Name, Company, Job Title, Tags, …). Large files are fine: they go straight to storage."),
    input,
  );
  const uploading = () => zone.classList.contains("disabled");
  const start = (file) => {
    if (!uploading()) startUpload(ctx, file, status, zone);
  };
  input.addEventListener("change", () => {
    const file = input.files[0];
    input.value = ""; // picking the same file again (after a failed upload) is a change too
    if (file) start(file);
  });
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      if (!uploading()) zone.classList.add("dragging");
    });
  }
  for (const name of ["dragleave", "drop"]) zone.addEventListener(name, () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    const file = event.dataTransfer && event.dataTransfer.files[0];
    if (file) start(file);
  });
  // A file dropped anywhere else on the page (or on the zone during an upload, when it takes no pointer events)
  // would be opened by the browser in place of the console: not while this page is shown.
  for (const name of ["dragover", "drop"]) {
    ctx.listen(window, name, (event) => {
      if (event.defaultPrevented) return; // the zone took it
      event.preventDefault();
      if (event.dataTransfer) event.dataTransfer.dropEffect = "none";
    });
  }
  return card("Upload a CSV", [zone, status], { id: "upload-card" });
}

async function startUpload(ctx, file, status, zone) {
  if (!file.size) {
    fill(status, h("div", { class: "alert alert-error" }, `${file.name} is empty.`));
    return;
  }
  zone.classList.add("disabled");
  const bar = h("span", { class: "progress-fill" });
  const text = h("span", {}, `Uploading ${file.name} (${size(file.size)})…`);
  fill(status, h("div", { class: "upload-progress" }, text, h("span", { class: "progress" }, bar)));
  try {
    const { job, upload: target } = await post("imports/uploads", { filename: file.name });
    await upload(target, file, (done) => {
      bar.style.width = `${Math.round(done * 100)}%`;
    });
    fill(text, `Uploaded ${file.name}. Import ${job.job_id} starts now.`);
    toast(`${file.name} uploaded`, "success");
    if (ctx.alive) ctx.navigate(`#/import/${encodeURIComponent(job.job_id)}`);
  } catch (error) {
    if (error.status === 401) return;
    fill(status, errorBox(error));
  } finally {
    zone.classList.remove("disabled");
  }
}

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

// ------------------------------------------------------------------------------------------------ one job

/**
 * Follow a job: poll it every second while anything changes, every 10 s once nothing has for a while, and not at all
 * once it is settled (the job finished, and nothing more happens to its contacts by itself). The card is drawn again
 * only when what it shows changed (a redraw rebuilds the row errors and loses a text selection); a failing poll shows
 * one line above the card, replaced by the next answer.
 */
function followJob(ctx, jobId, area, changed) {
  const problem = h("div", { class: "job-refresh-error", id: "job-refresh-error", role: "status" });
  const view = h("div", {}, card("Import", spinner("Loading the import…"), { id: "job-card" }));
  fill(area, problem, view);
  let config = null;
  let lastSignature = "";
  let lastChange = null; // when what the page shows last changed (ms)
  let drawn = "";
  let timer = null;
  let interval = FAST_POLL_MS;
  let inFlight = false;

  function schedule(ms) {
    if (timer !== null && ms === interval) return;
    if (timer !== null) ctx.stop(timer);
    interval = ms;
    timer = ms ? ctx.every(ms, poll) : null;
  }

  async function poll() {
    if (inFlight) return;
    inFlight = true;
    try {
      if (!config) config = (await get("status")).config;
      const job = await get(`imports/${encodeURIComponent(jobId)}`, { pipeline: "true" });
      if (!ctx.alive) return;
      const signature = JSON.stringify([job.status, job.counts, job.pipeline, job.errors.length]);
      if (lastChange === null) {
        // opened after the job finished, with nothing on its way: it has been quiet since it finished
        const moving = job.pipeline && (job.pipeline.by_status.enriching || job.pipeline.by_status.syncing);
        const finished = Date.parse(job.finished_at || job.updated_at);
        lastChange = TERMINAL.has(job.status) && !moving && finished < Date.now() ? finished : Date.now();
      } else if (signature !== lastSignature) {
        changed();
        lastChange = Date.now();
      }
      lastSignature = signature;
      const idle = TERMINAL.has(job.status) && Date.now() - lastChange > IDLE_AFTER_MS;
      const state = progress(job, config, idle);
      const key = JSON.stringify([job, config, idle, state.settled]);
      if (key !== drawn) {
        fill(view, jobView(job, config, state));
        drawn = key;
      }
      problem.replaceChildren();
      schedule(state.settled ? 0 : idle ? IDLE_POLL_MS : FAST_POLL_MS);
    } catch (error) {
      if (!ctx.alive || error.status === 401) return;
      if (error.status === 404) {
        schedule(0);
        problem.replaceChildren();
        fill(view, card("Import", emptyState("Import not found", `There is no import ${jobId} in this workspace.`), { id: "job-card" }));
      } else {
        fill(problem, h("div", { class: "alert alert-warning" }, `Could not refresh the import: ${error.message} Trying again…`));
      }
    } finally {
      inFlight = false;
    }
  }
  poll();
  schedule(FAST_POLL_MS);
}

/** Where the job's contacts stand, and whether anything more happens to them by itself. */
function progress(job, config, idle) {
  const p = job.pipeline || NO_PIPELINE;
  const by = p.by_status;
  const done = TERMINAL.has(job.status);
  const enrichSettled = Boolean(p.contacts) && p.enriched + (by.failed || 0) + (by.skipped || 0) >= p.contacts;
  const syncSettled = Boolean(p.contacts) && (p.synced >= p.contacts || (idle && p.synced > 0 && !by.syncing));
  // what is left waits for someone: enrichment on import is off, sync after enrichment is off, or the quality of
  // the enriched contacts is under the threshold
  const enrichOver = enrichSettled || (!config.auto_enrich_on_import && !by.enriching);
  const syncOver = syncSettled || (!by.syncing && (!config.auto_sync_after_enrich || enrichOver));
  const settled = done && idle && (!p.contacts || (enrichOver && syncOver));
  return { p, done, idle, enrichSettled, syncSettled, settled };
}

function stat(name, value, note, key) {
  return h("div", { class: "stat", dataset: { stat: key } }, h("div", { class: "stat-label" }, name), h("div", { class: "stat-value" }, value), note ? h("div", { class: "stat-note" }, note) : null);
}

function jobView(job, config, { p, done, idle, enrichSettled, syncSettled, settled }) {
  const c = job.counts;
  const percent = job.progress.percent ?? (done ? 100 : 0);
  const bound = p.complete ? "" : "≥ ";
  const of = p.contacts ? ` of ${num(p.contacts)}` : "";

  const steps = [
    ["Uploaded", job.status === "awaiting_upload" ? "active" : "done"],
    ["Imported", done ? (job.status === "failed" ? "failed" : "done") : job.status === "awaiting_upload" ? "waiting" : "active"],
    ["Enriched", !p.contacts ? "waiting" : enrichSettled ? "done" : config.auto_enrich_on_import || p.enriched ? "active" : "off"],
    ["Synced", !p.contacts ? "waiting" : syncSettled ? "done" : config.auto_sync_after_enrich || p.synced ? "active" : "off"],
  ];
  const stepper = h(
    "ol",
    { class: "stepper" },
    steps.map(([name, state]) => h("li", { class: ["step", `step-${state}`], dataset: { step: name.toLowerCase(), state } }, h("span", { class: "step-dot", "aria-hidden": "true" }), h("span", {}, name), h("span", { class: "muted small" }, state === "off" ? "automation off" : state))),
  );

  const stats = h(
    "div",
    { class: "stats" },
    stat("Rows read", num(c.rows_read), c.blank ? `${num(c.blank)} blank skipped` : null, "rows"),
    stat("Valid", num(c.valid), c.rows_read ? pct(c.valid / c.rows_read) : null, "valid"),
    stat("Invalid", num(c.invalid), c.invalid ? "see the row errors below" : "none", "invalid"),
    stat("New contacts", num(c.imported), c.merged ? `${num(c.merged)} merged into existing` : null, "imported"),
    stat("Enriched", `${bound}${num(p.enriched)}`, of || null, "enriched"),
    stat("Synced", `${bound}${num(p.synced)}`, of || null, "synced"),
    stat("Failed", num(p.failed), p.failed ? "retried automatically" : null, "failed"),
  );

  const notes = [];
  if (job.error) notes.push(h("div", { class: "alert alert-error" }, h("strong", {}, "The import failed: "), job.error.message, " ", h("code", {}, job.error.code)));
  for (const warning of job.warnings) notes.push(h("div", { class: "alert alert-warning" }, warning));
  if (p.contacts && !config.auto_enrich_on_import && p.enriched < p.contacts) {
    notes.push(h("div", { class: "alert alert-info" }, "Enrichment on import is off for this workspace: select the contacts in Contacts and enrich them, or turn it on in the Overview."));
  } else if (p.contacts && !config.auto_sync_after_enrich && p.synced < p.contacts) {
    notes.push(h("div", { class: "alert alert-info" }, "Sync after enrichment is off for this workspace: contacts stop at enriched. Sync them from Contacts, or turn it on in the Overview."));
  } else if (p.contacts && config.auto_sync_after_enrich && done && idle && p.synced < p.enriched) {
    notes.push(h("div", { class: "alert alert-info" }, `Contacts with quality under ${config.min_quality} stay enriched and are not synced automatically.`));
  }
  if (!p.complete) notes.push(h("div", { class: "muted small" }, "Many contacts changed since this import started: the enriched and synced counts are lower bounds."));

  const live = h(
    "span",
    { class: ["live", idle ? "live-idle" : "live-on"], dataset: { live: settled ? "stopped" : idle ? "idle" : "on" } },
    h("span", { class: "live-dot", "aria-hidden": "true" }),
    idle ? "up to date" : "live",
  );
  const header = h(
    "div",
    { class: "job-head" },
    h("div", {}, h("h3", { class: "job-file" }, job.filename || job.source), h("div", { class: "muted small" }, h("code", {}, job.job_id), " · started ", time(job.created_at))),
    h("div", { class: "job-badges" }, badge(label(job.status), JOB_BADGE[job.status] || "neutral"), live),
  );
  const progress = h(
    "div",
    { class: "job-progress" },
    h("span", { class: "progress progress-large" }, h("span", { class: "progress-fill", style: { width: `${percent}%` } })),
    h("span", { class: "muted small" }, job.progress.bytes_total ? `${pct(percent / 100)} of ${size(job.progress.bytes_total)} read` : done ? "done" : "waiting for the file"),
  );

  const parts = [header, stepper, progress, stats, notes];
  if (p.contacts) {
    parts.push(h("h3", { class: "subhead" }, "Where the contacts are now"), stackedBar(STATUS_ORDER.map((key) => ({ key, value: p.by_status[key] || 0 })), { className: "job-pipeline" }));
  }
  if (job.columns && job.columns.length) {
    parts.push(
      h("h3", { class: "subhead" }, "Columns"),
      h("div", { class: "chips" }, job.columns.map((m) => h("span", { class: "chip" }, m.column, h("span", { class: "muted" }, " → "), m.field))),
    );
  }
  parts.push(errorsTable(job));
  return card("Import", parts, { id: "job-card", className: "job" });
}

function errorsTable(job) {
  if (!job.errors.length) return null;
  return [
    h("h3", { class: "subhead" }, `Row errors (${num(job.counts.invalid)})`),
    h(
      "div",
      { class: "table-scroll" },
      h(
        "table",
        { class: "table errors-table" },
        h("thead", {}, h("tr", {}, ["Row", "Field", "Problem", "Value"].map((t) => h("th", {}, t)))),
        h(
          "tbody",
          {},
          job.errors.map((e) =>
            h(
              "tr",
              { class: "error-row", dataset: { row: e.row, code: e.code } },
              h("td", { class: "num" }, num(e.row)),
              h("td", {}, e.field || "—"),
              h("td", {}, e.message, " ", h("code", { class: "muted small" }, e.code)),
              h("td", { class: "error-value" }, e.value === null || e.value === undefined ? h("span", { class: "muted" }, e.field ? "empty" : "—") : e.value),
            ),
          ),
        ),
      ),
    ),
    job.errors_omitted ? h("p", { class: "muted small" }, `${num(job.errors_omitted)} more row errors were counted but not kept.`) : null,
  ];
}

// ------------------------------------------------------------------------------------------------ recent jobs

async function loadRecent(ctx, area, quiet = false) {
  try {
    const list = await get("imports", { limit: 10 });
    if (!ctx.alive) return;
    if (!list.items.length) {
      fill(area, emptyState("No imports yet", "Your uploads and API imports show here."));
      return;
    }
    fill(
      area,
      h(
        "div",
        { class: "table-scroll" },
        h(
          "table",
          { class: "table jobs-table" },
          h("thead", {}, h("tr", {}, ["File", "Source", "Status", "Rows", "Valid", "Invalid", "New", "Started"].map((t) => h("th", {}, t)))),
          h(
            "tbody",
            {},
            list.items.map((job) =>
              h(
                "tr",
                { class: "job-row", dataset: { job: job.job_id } },
                h("td", {}, h("a", { href: `#/import/${encodeURIComponent(job.job_id)}` }, job.filename || job.campaign_id || job.job_id)),
                h("td", {}, job.source),
                h("td", {}, badge(label(job.status), JOB_BADGE[job.status] || "neutral")),
                h("td", { class: "num" }, num(job.counts.rows_read)),
                h("td", { class: "num" }, num(job.counts.valid)),
                h("td", { class: "num" }, num(job.counts.invalid)),
                h("td", { class: "num" }, num(job.counts.imported)),
                h("td", {}, time(job.created_at)),
              ),
            ),
          ),
        ),
      ),
    );
  } catch (error) {
    if (!ctx.alive || error.status === 401) return;
    if (!quiet) fill(area, errorBox(error, () => loadRecent(ctx, area)));
  }
}
