"""Reliability through the local runtime, with faults injected over HTTP as a soak run would (issue 8 starts here):
HubSpot answers 5xx for a while, then recovers -> every contact ends synced, none duplicated in HubSpot."""

from __future__ import annotations

import httpx
import pytest

from leadpipe_local.client import ApiClient
from leadpipe_local.faults import DispatchFault
from leadpipe_local.runtime import LocalRuntime
from tests.e2e.conftest import wait_until
from tests.e2e.test_sync import enriched_people


def live_records(runtime: LocalRuntime, kind: str, key: str, value: str) -> int:
    fake = runtime.hubspot
    with fake._mutex:
        return sum(
            1 for o in fake._objects[kind].values() if not o.archived and o.properties.get(key, "").lower() == value
        )


def test_hubspot_5xx_for_a_while_then_recovery_every_contact_synced_once(api: ApiClient, runtime: LocalRuntime) -> None:
    assert runtime.hubspot is not None
    _, emails = enriched_people(api, runtime, 6, domain_index=10)
    domain = emails[0].split("@")[1]
    # the next 8 contact reads and writes answer 503: more than the client's own retries absorb, so a batch fails
    # and its message comes back (the fault is spent only when all 8 were answered)
    fault = {"status": 503, "body": {"status": "error", "message": "Service Unavailable"}, "times": 8}
    injected = httpx.post(f"{runtime.hubspot.url}/_fake/faults", json=fault | {"path": "/crm/v3/objects/contacts"})
    assert injected.status_code == 201
    accepted = api.sync(emails)
    failed_then_recovered = wait_until(
        lambda: [api.contact(e) for e in emails],
        lambda cs: all(c["status"] == "synced" for c in cs),
        timeout=120,
        what="every contact synced after HubSpot recovered",
    )
    assert {c["hubspot"]["request_id"] for c in failed_then_recovered} == {accepted["request_id"]}
    assert len({c["hubspot"]["contact_id"] for c in failed_then_recovered}) == len(emails)
    for email in emails:
        assert live_records(runtime, "contacts", "email", email) == 1, email
    assert live_records(runtime, "companies", "domain", domain) == 1
    assert httpx.get(f"{runtime.hubspot.url}/_fake/faults").json() == {"faults": []}  # all 8 failures were served


def test_a_429_storm_loses_no_write_and_the_back_off_shows(api: ApiClient, runtime: LocalRuntime) -> None:
    assert runtime.hubspot is not None
    _, emails = enriched_people(api, runtime, 5, domain_index=11)
    storm = runtime.hubspot.rate_limit_fault(times=12)  # HubSpot's own 429 body and headers, 12 in a row
    fault = {"status": 429, "body": storm.body, "headers": storm.headers, "times": 12, "path": "/crm/v3/objects/"}
    assert httpx.post(f"{runtime.hubspot.url}/_fake/faults", json=fault).status_code == 201
    before = api.status()["stats"]["hubspot_429s"]
    accepted = api.sync(emails)
    synced = wait_until(
        lambda: [api.contact(e) for e in emails],
        lambda cs: all(c["status"] == "synced" for c in cs),
        timeout=120,
        what="every contact synced through the 429 storm",
    )
    assert {c["hubspot"]["request_id"] for c in synced} == {accepted["request_id"]}
    for email in emails:
        assert live_records(runtime, "contacts", "email", email) == 1, email
    assert httpx.get(f"{runtime.hubspot.url}/_fake/faults").json() == {"faults": []}  # all 12 were served
    seen = wait_until(
        lambda: api.status()["stats"]["hubspot_429s"], lambda n: n >= before + 12, what="the 429s in the run stats"
    )
    log = [b for b in api.sync_log(limit=50) if b.get("request_id") == accepted["request_id"]]
    assert seen - before >= 12 and sum(b["throttled"] for b in log) >= 1, log  # the run stats and its sync log


def notes_per_contact(runtime: LocalRuntime, contact_ids: list[str]) -> dict[str, int]:
    fake = runtime.hubspot
    with fake._mutex:
        return {cid: len(list(fake._associated("contacts", cid, "notes"))) for cid in contact_ids}


@pytest.mark.parametrize(
    "crash_after",
    [
        "/crm/v3/objects/companies/batch/upsert",  # contacts written, the company made, nothing recorded yet
        "/crm/v3/objects/notes/batch/create",  # every HubSpot write done (notes last), nothing recorded yet
    ],
)
def test_a_crash_mid_batch_is_redelivered_with_no_duplicate_in_hubspot_and_counters_right(
    api: ApiClient, runtime: LocalRuntime, crash_after: str
) -> None:
    assert runtime.hubspot is not None
    _, emails = enriched_people(api, runtime, 4, domain_index=9 if "companies" in crash_after else 8)
    domain = emails[0].split("@")[1]
    source = next(s for s in runtime.sqs_sources if s.function == "SyncFunction")
    before, crashed = api.status(), source.stats["crashed"]
    # the sync function's process dies right after HubSpot answered this call, before it recorded anything
    runtime.faults.add(DispatchFault("crash", "SyncFunction", after=1, match=crash_after))
    accepted = api.sync(emails)
    synced = wait_until(
        lambda: [api.contact(e) for e in emails],
        lambda cs: all(c["status"] == "synced" for c in cs),
        timeout=120,
        what="every contact synced after the crash",
    )
    assert source.stats["crashed"] == crashed + 1 and not runtime.faults.active()
    assert {c["hubspot"]["request_id"] for c in synced} == {accepted["request_id"]}
    ids = [c["hubspot"]["contact_id"] for c in synced]
    assert len(set(ids)) == len(emails)
    for email in emails:
        assert live_records(runtime, "contacts", "email", email) == 1, email
    assert live_records(runtime, "companies", "domain", domain) == 1
    assert {c["hubspot"]["company_id"] for c in synced} == {
        next(o.id for o in runtime.hubspot._objects["companies"].values() if o.properties.get("domain") == domain)
    }
    assert notes_per_contact(runtime, ids) == dict.fromkeys(ids, 1)  # one timeline note per enrichment
    after = api.status()
    moved = len(emails)
    assert after["counts"].get("synced", 0) - before["counts"].get("synced", 0) == moved
    assert before["counts"].get("enriched", 0) - after["counts"].get("enriched", 0) == moved
    assert after["total"] == before["total"]
    assert after["stats"]["synced"] - before["stats"]["synced"] == moved, (before["stats"], after["stats"])
