"""``leadpipe demo``: the whole local loop, offline, in well under a minute.

Starts the local stack from template.yaml (moto as AWS), imports the example CSV once through the HTTP API and once
by dropping it into the uploads bucket's ``incoming/`` prefix (as ``aws s3 cp`` would), shows progress, the bad rows
with their reasons, and what was stored, then stops everything.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, TextIO

from leadpipe_local.client import ApiClient
from leadpipe_local.render import Progress, contacts_table, row_errors, table
from leadpipe_local.runtime import LocalRuntime

TERMINAL = {"completed", "completed_with_errors", "failed"}


class DemoFailed(Exception):
    pass


def _say(out: TextIO, text: str = "") -> None:
    out.write(text + "\n")
    out.flush()


def _job_line(job: dict[str, Any]) -> str:
    c = job["counts"]
    return (
        f"{job['status']}: {c['rows_read']} rows read, {c['valid']} valid, {c['invalid']} invalid, "
        f"{c['imported']} new contacts, {c['merged']} merged into existing ones"
    )


def _find_s3_job(api: ApiClient, key: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for job in api.jobs(limit=10):
            if job["source"] == "s3" and job["filename"] == key.rsplit("/", 1)[-1]:
                return job
        time.sleep(0.2)
    raise DemoFailed(f"no import job appeared for s3 key {key} within {timeout:.0f}s")


def run_demo(
    template: Path,
    csv_path: Path,
    *,
    port: int = 0,
    state_dir: Path = Path(".leadpipe"),
    out: TextIO = sys.stdout,
    serve: bool = False,
) -> dict[str, Any]:
    """``serve``: once the loop has run, keep the stack (and its web console) up until Ctrl-C."""
    if not csv_path.exists():
        raise DemoFailed(f"{csv_path} does not exist")
    started = time.monotonic()
    _say(out, "leadpipe demo — the local loop, offline (moto as AWS, resources from template.yaml)")
    _say(out)
    _say(out, "▸ starting the local stack")
    runtime = LocalRuntime(template, api_port=port, state_dir=state_dir)
    runtime.start()
    summary: dict[str, Any] = {}
    try:
        bucket = runtime.provisioned.ref("UploadsBucket") if runtime.provisioned else ""
        _say(out, f"  HTTP API   {runtime.api_url}   (OpenAPI document: {runtime.api_url}/openapi.json)")
        _say(out, f"  console    {runtime.api_url}/   (the web console, served while this stack runs)")
        _say(out, f"  AWS        {runtime.aws_endpoint}   (moto; uploads bucket s3://{bucket})")
        _say(out, f"  functions  {', '.join(runtime.pools)} — ready in {time.monotonic() - started:.1f}s")
        api = runtime.api_client()
        _say(out, f"  API key    {api.api_key[:7]}… (workspace default; every route but /openapi.json needs one)")

        _say(out)
        _say(out, f"▸ 1/2  import {csv_path.name} through the HTTP API (POST /imports, Content-Type: text/csv)")
        job = api.import_csv(csv_path.read_bytes(), csv_path.name)
        _say(out, f"  job {job['job_id']} accepted (202); following GET /imports/{job['job_id']}")
        first = api.wait_job(job["job_id"], timeout=120, on_progress=Progress(out))
        _say(out, "  " + _job_line(first))
        if first["columns"]:
            mapping = ", ".join(f"{c['column']} → {c['field']}" for c in first["columns"])
            _say(out, f"  columns: {mapping}")

        _say(out)
        key = f"incoming/{csv_path.name}"
        _say(out, f"▸ 2/2  drop the same file into s3://{bucket}/{key} (what `aws s3 cp` does)")
        runtime.client("s3").put_object(Bucket=bucket, Key=key, Body=csv_path.read_bytes())
        found = _find_s3_job(api, key)
        _say(out, f"  S3 → ImportQueue → import function created job {found['job_id']}")
        second = api.wait_job(found["job_id"], timeout=120, on_progress=Progress(out))
        _say(out, "  " + _job_line(second))
        _say(out, "  every contact already existed, so every valid row was merged: nothing duplicated")

        _say(out)
        _say(out, f"▸ rows that could not be imported ({first['counts']['invalid']}), with their reasons")
        _say(out, _indent(row_errors(first)))

        _say(out)
        _say(
            out,
            "▸ enrichment: contacts.imported → AutoEnrich rule → EnrichQueue → enrich function (provider waterfall)",
        )
        enriched = _wait_for_enrichment(api, runtime, out)
        summary["enrichment"] = _show_enrichment(api, enriched, out)
        if runtime.hubspot is not None:
            summary["sync"] = _sync_to_hubspot(api, runtime, out)
            summary["deals"] = _closed_deals(api, runtime, out)

        status = api.status()
        _say(out)
        _say(out, f"▸ contacts stored: {status['total']} (GET /status; counts kept by counters, not a scan)")
        counts = {k: v for k, v in status["counts"].items() if v}
        _say(out, "  by pipeline status: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        page = api.contacts(limit=8)
        _say(out, "  newest contacts (GET /contacts?limit=8):")
        columns = ["email", "name", "company", "title", "domain", "tags", "sources"]
        _say(out, _indent(contacts_table(page["items"], columns)))

        merged = next((c for c in page["items"] if len(c["sources"]) > 2), page["items"][0] if page["items"] else None)
        if merged:
            _say(out)
            _say(out, f"▸ one contact's source history (GET /contacts/{merged['email']})")
            detail = api.contact(merged["email"])
            src_rows = [(s["source"], s["ref"], s["row"], s["effect"]) for s in detail["sources"]]
            _say(out, _indent(table(src_rows, ["source", "file", "row", "effect"])))

        summary["operations"] = _operations(api, out)
        summary["erasure"] = _erasure(api, runtime, merged["email"] if merged else None, out)

        if runtime.errors:
            raise DemoFailed("the local runtime reported errors:\n" + "\n".join(runtime.errors))
        if first["status"] == "failed" or second["status"] == "failed":
            raise DemoFailed("an import job failed")
        if second["counts"]["imported"] != 0:
            raise DemoFailed("the second import created contacts: duplicates!")
        summary.update({"api_job": first, "s3_job": second, "status": status})
        _say(out)
        if serve:
            _serve_console(runtime, api.api_key, out)
        else:
            _say(out, "▸ web console: `leadpipe demo --serve` keeps this stack and its data up to browse;")
            _say(out, "  `leadpipe up` serves an empty one at http://127.0.0.1:3000/")
    finally:
        _say(out)
        _say(out, "▸ stopping the local stack")
        runtime.stop()
    _say(out, f"done in {time.monotonic() - started:.1f}s")
    return summary


def _serve_console(runtime: LocalRuntime, key: str | None, out: TextIO) -> None:
    _say(out, f"▸ web console: open {runtime.api_url}/ and sign in with the API key")
    _say(out, f"  {key}")
    _say(out, "  (workspace default; the stack keeps running, with the demo's data, until Ctrl-C)")
    out.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        _say(out)


def _operations(api: ApiClient, out: TextIO) -> dict[str, Any]:
    """What an operator looks at: run stats, the summary, the activity feed (recorded from the bus by a rule)."""
    stats = api.status()["stats"]
    _say(out)
    _say(out, "▸ operations (GET /status stats, GET /summary, GET /activity)")
    rate = stats["cache_hit_rate"]
    _say(
        out,
        f"  enriched {stats['enriched']}, synced {stats['synced']}, failed {stats['failed']}; "
        f"provider calls {stats['provider_calls']}; cache hit rate "
        + (f"{rate:.0%} ({stats['cache_hits']} of {stats['cache_lookups']})" if rate is not None else "n/a")
        + f"; HubSpot calls {stats['hubspot_calls']}, 429s {stats['hubspot_429s']}",
    )
    summary = api.summary(top=5)
    for facet in ("industries", "countries"):
        top = ", ".join(f"{f['value']} {f['contacts']}" for f in summary[facet])
        _say(out, f"  top {facet}: {top or '—'}")
    coverage = ", ".join(f"{c['provider']} {c['share']:.0%}" for c in summary["coverage"])
    _say(out, f"  coverage by provider: {coverage or '—'}")
    quality = ", ".join(f"{q['range']}: {q['contacts']}" for q in summary["quality"] if q["contacts"])
    _say(out, f"  quality: {quality or '—'}")
    feed = api.activity(limit=5)["items"]
    _say(out, "  latest activity:")
    for item in feed:
        counts = ", ".join(f"{k} {v}" for k, v in item["counts"].items() if v)
        _say(out, f"    {item['at'][11:19]}  {item['type']:<22} {counts}")
    return {"stats": stats, "summary": summary, "activity": feed}


def _erasure(api: ApiClient, runtime: LocalRuntime, email: str | None, out: TextIO) -> dict[str, Any]:
    """A person asks to be forgotten: erased everywhere (HubSpot too), and refused when imported again."""
    if email is None:
        return {}
    _say(out)
    _say(out, f"▸ erasure (GDPR): DELETE /contacts/{email}?hubspot=true")
    report = api.erase(email, hubspot=runtime.hubspot is not None)
    _say(
        out,
        f"  erased: contact {report['contact']}, cache entries {report['cache_entries']}, job row errors "
        f"{report['job_row_errors']}, source files {report['source_files']}, DLQ messages {report['dlq_messages']}, "
        f"HubSpot {report['hubspot']['status']}; a salted hash stays on the suppression list",
    )
    again = api.wait_job(api.import_csv(f"Email,First Name\n{email},Again\n".encode(), "again.csv")["job_id"])
    if again["counts"]["imported"] or not again["errors"] or again["errors"][0]["code"] != "suppressed":
        raise DemoFailed(f"an erased email was imported again: {again}")
    _say(out, f"  imported again → row {again['errors'][0]['row']}: {again['errors'][0]['message']}")
    return {"report": report, "reimport": again}


def _all_contacts(api: ApiClient) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = api.contacts(limit=100, cursor=cursor)
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return items


def _wait_for_enrichment(
    api: ApiClient, runtime: LocalRuntime, out: TextIO, timeout: float = 120
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        counts = api.status()["counts"]
        waiting = counts["imported"] + counts["enriching"]
        _say(out, f"  enriched {counts['enriched']:>4}   waiting {waiting:>4}   failed {counts['failed']:>3}")
        if not waiting:
            break
        if time.monotonic() > deadline:
            raise DemoFailed(f"{waiting} contacts were still waiting for enrichment after {timeout:.0f}s")
        time.sleep(0.5)
    runtime.wait_until_idle(60)
    return _all_contacts(api)


def _show_enrichment(api: ApiClient, contacts: list[dict[str, Any]], out: TextIO) -> dict[str, Any]:
    status = api.status()
    asked = [p["name"] for p in status["providers"] if p["enabled"]]
    skipped = [p["name"] for p in status["providers"] if not p["enabled"]]
    _say(out, f"  providers asked, in order: {', '.join(asked)}")
    if skipped:
        _say(out, f"  skipped (no API key — never faked): {', '.join(skipped)}")
    scored = [c for c in contacts if c["quality"] is not None]
    minimum = status["config"]["min_quality"]
    passed = [c for c in scored if c["quality"] >= minimum]
    _say(
        out,
        f"  quality of {len(scored)} contacts (published as contacts.enriched at ≥ {minimum}: {len(passed)}; "
        f"kept with reason below_threshold: {len(scored) - len(passed)})",
    )
    buckets = [0] * 10
    for c in scored:
        buckets[min(9, int(c["quality"] * 10))] += 1
    widest = max(buckets) or 1
    for i, n in enumerate(buckets):
        if n or (i and buckets[i - 1]):
            _say(out, f"    {i / 10:.1f}-{(i + 1) / 10:.1f}  {'█' * max(1, round(30 * n / widest)) if n else ''} {n}")

    def conflicts(c: dict[str, Any]) -> int:
        return sum(len(f["conflicts"]) for f in c["enrichment"].values())

    def agreements(c: dict[str, Any]) -> int:
        return sum(len(f["agreed_by"]) for f in c["enrichment"].values())

    picks = []
    if scored:
        picks.append(max(scored, key=lambda c: (agreements(c), c["quality"])))
        disputed = [c for c in scored if conflicts(c) and c not in picks]
        if disputed:
            picks.append(max(disputed, key=conflicts))
        below = [c for c in scored if c["quality"] < minimum and c not in picks]
        if below:
            picks.append(below[0])
    for contact in picks:
        detail = api.contact(contact["email"])
        meta = detail["enrichment_meta"] or {}
        _say(out)
        _say(
            out,
            f"  {detail['email']}  quality {detail['quality']:.2f}  status {detail['status']}"
            + (f" ({detail['status_reason']})" if detail["status_reason"] else "")
            + f"  sources asked: {', '.join(meta.get('sources_asked', []))}",
        )
        rows = []
        for name, value in sorted(detail["enrichment"].items()):
            disputes = "; ".join(f"{c['value']} ({c['provider']})" for c in value["conflicts"])
            rows.append(
                (
                    name,
                    value["value"],
                    value["provider"],
                    f"{value['confidence']:.2f}",
                    ", ".join(value["agreed_by"]),
                    disputes,
                )
            )
        _say(out, _indent(table(rows, ["field", "value", "source", "confidence", "confirmed by", "disagreed"]), "    "))
    return {"contacts": len(scored), "published": len(passed), "buckets": buckets, "shown": [c["email"] for c in picks]}


def _wait_status(api: ApiClient, key: str, done: Any, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = api.status()
        if done(status["counts"]):
            return status
        if time.monotonic() > deadline:
            raise DemoFailed(f"still waiting for {key} after {timeout:.0f}s: {status['counts']}")
        time.sleep(0.3)


def _sync_to_hubspot(api: ApiClient, runtime: LocalRuntime, out: TextIO) -> dict[str, Any]:
    import httpx

    hubspot = runtime.hubspot
    headers = {"Authorization": f"Bearer {hubspot.token}"}
    _say(out)
    _say(out, f"▸ sync to HubSpot (the local fake at {hubspot.url}): POST /sync → SyncQueue → sync function")
    accepted = api.sync(filter={"status": "enriched"}, limit=1000)
    messages = accepted["messages"]
    _say(
        out,
        f"  request {accepted['request_id']}: {accepted['queued']} contacts in {messages} "
        + ("message" if messages == 1 else "messages"),
    )
    _wait_status(api, "the sync", lambda c: c["enriched"] + c["syncing"] == 0)
    runtime.wait_until_idle(60)
    log = api.sync_log(limit=50)
    totals = {
        k: sum(int(e.get(k, 0)) for e in log if e["request_id"] == accepted["request_id"])
        for k in (
            "created",
            "updated",
            "unchanged",
            "failed",
            "companies_created",
            "associations",
            "notes",
            "hubspot_calls",
            "throttled",
        )
    }
    _say(
        out,
        f"  HubSpot: {totals['created']} contacts created, {totals['companies_created']} companies created, "
        f"{totals['associations']} associations, {totals['notes']} timeline notes, {totals['failed']} failed",
    )
    _say(
        out,
        f"  {totals['hubspot_calls']} HubSpot calls for {accepted['queued']} contacts "
        f"({totals['hubspot_calls'] / max(1, accepted['queued']):.3f} per contact), {totals['throttled']} 429s",
    )
    synced = [c for c in _all_contacts(api) if c["status"] == "synced"]
    rows = [(c["email"], c["hubspot"]["contact_id"], c["hubspot"]["company_id"], c["domain"]) for c in synced[:5]]
    _say(out, _indent(table(rows, ["email", "HubSpot contact", "HubSpot company", "domain"])))

    person = next(c for c in synced if not c["phone"] and c["title"])
    contact_id = person["hubspot"]["contact_id"]
    edited_title = f"{person['title']} (edited in HubSpot)"
    _say(out)
    _say(out, "▸ change capture: HubSpot → signed webhook → POST /webhooks/hubspot → ChangeQueue → import function")
    own = [d for d in hubspot.delivered if d["ok"]]
    echoes = sum(1 for d in own for e in d["events"] if e.get("changeSource") == "INTEGRATION")
    _say(
        out,
        f"  the sync's own writes came back as {echoes} webhook events (changeSource INTEGRATION, leadpipe's app): "
        "dropped, nothing restarted",
    )
    delivered_before = len(hubspot.delivered)
    _say(out, f"  a person edits {person['email']} in HubSpot: jobtitle → {edited_title!r}")
    httpx.patch(
        f"{hubspot.url}/_fake/contacts/{contact_id}", json={"properties": {"jobtitle": edited_title}}, timeout=10
    ).raise_for_status()
    taken = _wait_contact(api, person["email"], lambda c: c["title"] == edited_title, "the edit to arrive")
    delivery = hubspot.delivered[delivered_before] if len(hubspot.delivered) > delivered_before else None
    if delivery is not None:
        _say(out, f"  HubSpot's webhook: {len(delivery['events'])} event(s), answered {delivery['status']}")
    _say(
        out,
        f"  the import function read the contact back from HubSpot and took the edit in: title {taken['title']!r}, "
        f"status {taken['status']} (a significant change: contacts.imported → enrichment again)",
    )
    _wait_contact(api, person["email"], lambda c: c["status"] == "enriched", "re-enrichment")
    _say(out, "  re-enriched; the person's title is kept in HubSpot by the overwrite policy (fill_empty)")
    phone = "+44 20 7946 0958"
    _say(out, f"  then new data arrives for the same contact (a CSV row with a phone number: {phone})")
    job = api.import_csv(f"Email,Phone\n{person['email']},{phone}\n".encode(), "update.csv")
    api.wait_job(job["job_id"], timeout=60)
    _wait_status(api, "re-enrichment", lambda c: c["imported"] + c["enriching"] == 0)
    resync = api.sync([person["email"]])
    deadline = time.monotonic() + 60
    while api.contact(person["email"])["hubspot"]["request_id"] != resync["request_id"]:
        if time.monotonic() > deadline:
            raise DemoFailed("the second sync did not finish")
        time.sleep(0.3)
    now = httpx.get(
        f"{hubspot.url}/crm/v3/objects/contacts/{contact_id}",
        params={"properties": "jobtitle,phone"},
        headers=headers,
        timeout=10,
    ).json()["properties"]
    kept = now.get("jobtitle") == edited_title
    _say(
        out,
        f"  after leadpipe's next sync, HubSpot has jobtitle {now.get('jobtitle')!r} "
        f"({'the edit was kept' if kept else 'OVERWRITTEN'}) and phone {now.get('phone')!r}",
    )
    if not kept or now.get("phone") != phone:
        raise DemoFailed("the second sync did not keep the person's edit or did not write the new phone")
    runtime.wait_until_idle(60)
    time.sleep(1.0)  # the resync's own webhooks: delivered, read back, dropped
    runtime.wait_until_idle(60)
    final = api.contact(person["email"])
    if final["status"] != "synced":
        raise DemoFailed(f"the loop did not settle: {person['email']} is {final['status']}")
    refused = [d for d in hubspot.delivered if not d["ok"]]
    _say(
        out,
        f"  the loop settled: the resync's writes came back as webhooks and were dropped; {person['email']} stays "
        f"synced ({len(hubspot.delivered)} webhook deliveries in all, {len(refused)} refused)",
    )
    if refused:
        raise DemoFailed(f"{len(refused)} webhook deliveries were refused")
    return {"request_id": accepted["request_id"], "totals": totals, "edited": person["email"], "kept": kept}


def _closed_deals(api: ApiClient, runtime: LocalRuntime, out: TextIO) -> dict[str, Any]:
    """Seed won and lost deals in the fake (the accounts of the synced contacts), run closed-deal enrichment through
    the HTTP API, and show the summary and the contacts that fit the learned profile best."""
    from datetime import UTC, datetime, timedelta

    hubspot = runtime.hubspot
    _say(out)
    _say(out, "▸ closed-deal enrichment: POST /deals/enrichment → DealQueue → deals function")
    by_domain: dict[str, list[dict[str, Any]]] = {}
    for contact in _all_contacts(api):
        ref = contact.get("hubspot") or {}
        if contact["status"] == "synced" and ref.get("contact_id") and ref.get("company_id") and contact["domain"]:
            by_domain.setdefault(contact["domain"], []).append(contact)

    def industry(domain: str) -> str:
        field = by_domain[domain][0]["enrichment"].get("industry") or {}
        return str(field.get("value") or "unknown")

    counted: dict[str, int] = {}
    for domain in by_domain:
        counted[industry(domain)] = counted.get(industry(domain), 0) + 1
    ranked = sorted(counted, key=lambda k: (-counted[k], k))
    winning, losing = ranked[0], ranked[1] if len(ranked) > 1 else ranked[0]
    now = datetime.now(UTC)
    seeded = {"won": 0, "lost": 0, "open": 0}
    for i, domain in enumerate(sorted(by_domain)):
        if industry(domain) not in (winning, losing) and i % 3:
            continue
        outcome = (
            "won" if industry(domain) == winning else ("lost" if industry(domain) == losing else ("won", "lost")[i % 2])
        )
        people = by_domain[domain][:3]
        hubspot.add_deal(
            f"{people[0]['company'] or domain} — {('annual plan', 'pilot', 'expansion')[i % 3]}",
            stage="closedwon" if outcome == "won" else "closedlost",
            amount=float(5000 + 1500 * (i % 7)),
            closed_at=now - timedelta(days=10 + 11 * (i % 15)),
            contact_ids=[p["hubspot"]["contact_id"] for p in people],
            company_ids=[people[0]["hubspot"]["company_id"]],
        )
        seeded[outcome] += 1
    first = by_domain[sorted(by_domain)[0]][0]
    hubspot.add_deal(
        "an open deal (not counted)",
        stage="contractsent",
        amount=9000.0,
        closed_at=now + timedelta(days=20),
        contact_ids=[first["hubspot"]["contact_id"]],
    )
    seeded["open"] += 1
    _say(out, f"  seeded in HubSpot: {seeded['won']} won, {seeded['lost']} lost, {seeded['open']} open deal(s)")
    run = api.start_deal_enrichment(lookback_months=6)
    _say(out, f"  run {run['run_id']} accepted (202); deals won or lost decided from the pipelines' stage metadata")
    done = api.wait_deal_run(run["run_id"])
    if done["status"] != "completed":
        raise DemoFailed(f"the deal run {done['status']}: {done.get('error')}")
    c = done["counts"]
    _say(
        out,
        f"  {c['deals']} closed deals ({c['won']} won, {c['lost']} lost): {c['enriched_deals']} enriched, "
        f"{c['partial_deals']} partial; {c['deal_contacts']} deal contacts, {c['roles_resolved']} buying roles "
        f"resolved; {c['accounts']} accounts; {c['contacts_scored']} contacts scored for ICP fit",
    )
    summary = api.deal_summary()
    rows = []
    for side in ("won", "lost"):
        part = summary[side]
        rows.append(
            (
                side,
                part["deals"],
                ", ".join(f"{t['value']} ({t['deals']})" for t in part["industries"][:2]),
                ", ".join(f"{t['value']} ({t['deals']})" for t in part["roles"][:3]),
            )
        )
    _say(out, _indent(table(rows, ["outcome", "deals", "top industries", "buying roles"])))
    _say(out, "  per deal (GET /deals/enrichment/summary):")
    deal_rows = [
        (
            d["name"][:34],
            d["outcome"],
            f"{d['amount']:.0f}",
            d["account"]["industry"] or "",
            d["status"],
            ", ".join(sorted({p["role"] for p in d["contacts"]})),
        )
        for d in summary["deals"][:6]
    ]
    _say(out, _indent(table(deal_rows, ["deal", "outcome", "amount", "industry", "status", "roles"])))
    icp = summary.get("icp") or {}
    industries = (icp.get("dimensions") or {}).get("industry") or []
    tops = [f"{v['value']} (lift {float(v['lift']):.2f}, {v['won']} won / {v['lost']} lost)" for v in industries[:3]]
    if tops:
        _say(out, "  ICP profile, industries by lift: " + "; ".join(tops))
    ranked_contacts = sorted((c for c in _all_contacts(api) if c.get("icp")), key=lambda c: -float(c["icp"]["score"]))
    _say(out, "  top ICP-fit contacts:")
    fit_rows = [(c["email"], f"{c['icp']['score']:.2f}", c["icp"]["explanation"][:70]) for c in ranked_contacts[:5]]
    _say(out, _indent(table(fit_rows, ["email", "fit", "why"])))
    if not ranked_contacts:
        raise DemoFailed("no contact was scored for ICP fit")
    _wait_status(api, "the ICP-fit sync", lambda counts: counts.get("syncing", 0) == 0)
    runtime.wait_until_idle(120)
    best = ranked_contacts[0]
    in_hubspot = hubspot.get("contacts", best["hubspot"]["contact_id"]) if best.get("hubspot") else None
    fit_there = (in_hubspot or {}).get("leadpipe_icp_fit")
    _say(out, f"  the scores went to HubSpot with the next sync: {best['email']} has leadpipe_icp_fit {fit_there}")
    return {"run": done, "top_fit": [c["email"] for c in ranked_contacts[:5]], "hubspot_fit": fit_there}


def _wait_contact(api: ApiClient, email: str, done: Any, what: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        contact = api.contact(email)
        if done(contact):
            return contact
        if time.monotonic() > deadline:
            raise DemoFailed(f"timed out waiting for {what} ({email} is {contact['status']})")
        time.sleep(0.2)


def _indent(text: str, pad: str = "  ") -> str:
    return "\n".join(pad + line for line in text.splitlines())
