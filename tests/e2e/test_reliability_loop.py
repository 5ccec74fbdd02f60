"""Reliability through the whole loop (issue 8), end to end on the session's local runtime:

- duplicated and out-of-order HubSpot webhooks -> each distinct change processed once, the final state the latest;
- the import of a large CSV interrupted between checkpoints -> resumed, every row imported exactly once.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from typing import Any

import httpx

from leadpipe.contacts import ContactRepository
from leadpipe.jobs import JobRepository
from leadpipe_local.client import ApiClient
from leadpipe_local.fakes.hubspot import FakeHubSpot, signature_v3, signed_uri
from leadpipe_local.faults import DispatchFault
from leadpipe_local.runtime import LocalRuntime, SqsSource
from tests.e2e.conftest import IMPORT_CHUNK_ROWS, wait_until
from tests.e2e.test_change_loop import settled, writes
from tests.e2e.test_enrichment import known_domains, people_csv
from tests.e2e.test_reliability import notes_per_contact

CHANGES = "ChangeQueueMessages"  # the import function's ChangeQueue source (not its ImportQueue one)


def source_of(runtime: LocalRuntime, function: str, event: str) -> SqsSource:
    return next(s for s in runtime.sqs_sources if s.function == function and s.event_name == event)


def dead_letters(api: ApiClient) -> dict[str, tuple[int, int]]:
    """Per queue: its DLQ's depth (every workspace's) and the caller's workspace's messages there."""
    return {q["queue"]: (q["approximate_depth"], q["yours"]) for q in api.dlq()["queues"]}


# ------------------------------------------------------------------------------------------------------ webhooks


def deliver(runtime: LocalRuntime, events: list[dict[str, Any]], attempt: int) -> httpx.Response:
    """POST these events to the stack's webhook endpoint as HubSpot does: ``attemptNumber`` set, v3-signed with the
    app's secret, timestamped now (a captured delivery re-posted later is re-signed, as HubSpot's retries are)."""
    fake: FakeHubSpot = runtime.hubspot
    url = f"{runtime.api_url}/webhooks/hubspot"
    body = json.dumps([{**e, "attemptNumber": attempt} for e in events], separators=(",", ":"))
    timestamp = str(int(time.time() * 1000))
    headers = {
        "content-type": "application/json",
        "x-hubspot-signature-v3": signature_v3(fake.client_secret, "POST", signed_uri(url), body, timestamp),
        "x-hubspot-request-timestamp": timestamp,
    }
    return httpx.post(url, content=body, headers=headers, timeout=10)


def hubspot_sources(contact: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in contact["sources"] if s["source"] == "hubspot"]


def test_duplicated_and_out_of_order_webhooks_are_processed_once_and_the_latest_change_wins(
    api: ApiClient, runtime: LocalRuntime
) -> None:
    fake: FakeHubSpot = runtime.hubspot
    tag = f"t{uuid.uuid4().hex[:8]}"
    email = f"{tag}.ada@{known_domains(12)[6]}"
    api.wait_job(api.import_csv(people_csv([(email, "Ada")], tag), f"{tag}.csv")["job_id"], timeout=30)
    enriched = wait_until(lambda: api.contact(email), lambda c: c["status"] == "enriched", what="the contact enriched")
    first_sync = api.sync([email])["request_id"]
    wait_until(
        lambda: api.contact(email),
        lambda c: c["status"] == "synced" and c["hubspot"]["request_id"] == first_sync,
        what="the contact synced",
    )
    settled(runtime)  # its own writes came back as INTEGRATION webhooks and were dropped
    synced = api.contact(email)
    contact_id = synced["hubspot"]["contact_id"]
    original = "Head of Sales"  # people_csv's title, written to HubSpot by the sync
    assert synced["title"] == original and fake.get("contacts", contact_id)["jobtitle"] == original
    changes = source_of(runtime, "ImportFunction", CHANGES)
    changes_before, dlq_before = Counter(changes.stats), dead_letters(api)
    events_before = len(fake.events)

    # A person edits the title three times in HubSpot while its webhooks are held back (the fake keeps the events).
    titles = ["VP Sales (A)", "VP Sales (B)", "VP Sales (C)"]
    assert httpx.post(f"{fake.url}/_fake/config", json={"webhook_url": ""}, timeout=10).status_code == 200
    try:
        for title in titles:
            edited = httpx.patch(
                f"{fake.url}/_fake/contacts/{contact_id}", json={"properties": {"jobtitle": title}}, timeout=10
            )
            assert edited.status_code == 200
            time.sleep(0.01)  # each edit at its own occurredAt
    finally:
        restored = httpx.post(
            f"{fake.url}/_fake/config", json={"webhook_url": f"{runtime.api_url}/webhooks/hubspot"}, timeout=10
        )
        assert restored.status_code == 200
    edits = fake.events[events_before:]
    assert [(e["objectId"], e["propertyName"], e["propertyValue"], e["changeSource"]) for e in edits] == [
        (int(contact_id), "jobtitle", t, "CRM_UI") for t in titles
    ]
    a, b, c = edits

    # The deliveries: the latest change first, then the oldest, the same delivery twice, HubSpot's retries
    # (attemptNumber + 1), one of them with two events in reverse order; and on top of that the dispatcher delivers
    # the first ChangeQueue batch late (held back until the next one has been delivered: a reorder that happened) and
    # the next two batches twice each (each copy handed over once the first has been handled, as a second poller's
    # would be). Then each delivery is handled before the next is posted: ChangeQueue has two pollers, and two
    # copies of one change handled side by side would both find it new (it is recorded once handled), which is not
    # what this shows.
    runtime.wait_until_idle(timeout=60)
    reordered = changes.stats["reordered"]
    runtime.faults.add(DispatchFault("reorder", "ImportFunction", hold=30, event=CHANGES))
    runtime.faults.add(DispatchFault("duplicate", "ImportFunction", times=2, event=CHANGES))
    plan: list[tuple[list[dict[str, Any]], int]] = [([c], 0), ([a], 0), ([c], 0), ([b, a], 1), ([c], 1), ([b], 0)]
    reads_from = len(fake.requests)
    answers = []
    for n, (events, attempt) in enumerate(plan):
        answers.append(deliver(runtime, events, attempt))
        if n >= 1:  # the first one is held back until the second has been delivered
            wait_until(
                lambda: runtime.queue_depth(changes.queue_url),
                lambda depth: depth == 0,
                what=f"delivery {n} of the plan handled",
            )
    assert [r.status_code for r in answers] == [200] * len(plan), [r.text for r in answers]
    assert [r.json()["queued"] for r in answers] == [len(events) for events, _ in plan]

    restarted = wait_until(
        lambda: api.contact(email),
        lambda c: c["status"] == "enriched" and c["title"] == titles[-1],
        what="the latest title taken in and the contact enriched again",
    )
    runtime.wait_until_idle(timeout=60)
    assert not runtime.faults.active()  # the reorder and both duplications happened
    assert changes.stats["reordered"] - reordered == 1  # the held batch was delivered after a newer one
    assert changes.stats["duplicated"] - changes_before["duplicated"] == 2
    assert changes.stats["messages"] - changes_before["messages"] == len(plan)  # one message per delivery
    assert changes.stats["failed"] == changes_before["failed"]  # each handled at its first try
    # Each distinct change was read back from HubSpot once: the copies (seven events, six deliveries, two of them
    # handed over twice) were recognised as seen before any HubSpot call -- not re-read and found unchanged.
    reads = [
        r
        for r in fake.requests[reads_from:]
        if r.path == "/crm/v3/objects/contacts/batch/read"
        and contact_id in {str(i.get("id")) for i in r.json().get("inputs", [])}
    ]
    assert len(reads) == len(titles), [(r.at, r.json()) for r in reads]

    # The latest value won, whatever order the events came in: leadpipe reads the contact back from HubSpot.
    after = api.contact(email)
    assert after["title"] == titles[-1] and after["hubspot"]["observed"]["jobtitle"] == titles[-1]
    # Three distinct changes, seven events in six deliveries, two of them handed to the import function twice:
    # taken in once (the first one handled read the latest state, the others found nothing new), so the contact
    # went round the loop once more, not three or seven times: one write taking the change in, two for its
    # enrichment (enriching, enriched).
    assert [s["effect"] for s in hubspot_sources(after)] == ["updated"]
    assert after["version"] - synced["version"] == 3, (synced["version"], after["version"])
    assert after == restarted
    assert after["enrichment_meta"]["request_id"] != enriched["enrichment_meta"]["request_id"]

    # The person undoes their edits: the title back to the one leadpipe wrote there (before any new sync). HubSpot
    # delivers that event itself, and once more as a retry; it is taken in once, as the latest change.
    events_before = len(fake.events)
    undo = httpx.patch(
        f"{fake.url}/_fake/contacts/{contact_id}", json={"properties": {"jobtitle": original}}, timeout=10
    )
    assert undo.status_code == 200
    assert fake.wait_for_webhooks(timeout=10)
    (undone,) = fake.events[events_before:]
    assert deliver(runtime, [undone], 1).json()["queued"] == 1
    wait_until(
        lambda: api.contact(email),
        lambda c: c["status"] == "enriched" and c["title"] == original,
        what="the undo taken in and the contact enriched again",
    )
    runtime.wait_until_idle(timeout=60)
    undone_contact = api.contact(email)
    assert undone_contact["title"] == original and undone_contact["hubspot"]["observed"]["jobtitle"] == original
    assert [s["effect"] for s in hubspot_sources(undone_contact)] == ["updated", "updated"]
    assert undone_contact["version"] - after["version"] == 3
    assert changes.stats["messages"] - changes_before["messages"] == len(plan) + 2
    assert changes.stats["failed"] == changes_before["failed"]

    # Synced again: the person's title stays in HubSpot, and leadpipe's own writes coming back start nothing.
    writes_before, delivered_before = len(writes(runtime)), len(fake.delivered)
    second_sync = api.sync([email])["request_id"]
    wait_until(
        lambda: api.contact(email),
        lambda c: c["status"] == "synced" and c["hubspot"]["request_id"] == second_sync,
        what="the contact synced again",
    )
    settled(runtime)
    assert fake.get("contacts", contact_id)["jobtitle"] == original
    assert len(writes(runtime)) > writes_before
    echoed = [
        d for d in fake.delivered[delivered_before:] if any(e["objectId"] == int(contact_id) for e in d["events"])
    ]
    assert echoed and all(e["changeSource"] == "INTEGRATION" for d in echoed for e in d["events"])
    assert all(d["status"] == 200 and json.loads(d["answer"])["queued"] == 0 for d in echoed)  # dropped as echoes
    assert changes.stats["messages"] - changes_before["messages"] == len(plan) + 2  # none from the echoes
    final = api.contact(email)
    assert final["status"] == "synced" and final["title"] == original
    assert final["hubspot"]["contact_id"] == contact_id
    assert [s["effect"] for s in hubspot_sources(final)] == ["updated", "updated"]  # no ping-pong
    assert final["version"] - undone_contact["version"] == 2  # syncing, synced: nothing since
    # a timeline note for the enrichment of each sync (the first one's, the latest one's), none per webhook
    assert notes_per_contact(runtime, [contact_id]) == {contact_id: 2}
    assert dead_letters(api) == dlq_before


# ------------------------------------------------------------------------------------------------------- import

IMPORTS = "ImportQueueMessages"  # the import function's ImportQueue source (not its ChangeQueue one)


def big_csv(domain: str, distinct: int, again_soon: set[int], again_late: list[int], invalid: set[int]) -> bytes:
    """``distinct`` people of ``domain``; the people of ``again_soon`` once more on the next row, those of
    ``again_late`` once more at the end (in other chunks), with the email in capitals and nothing new; a row with a
    broken email after each index of ``invalid``."""
    lines = ["Email,First Name,Company,Job Title,Tags"]
    for i in range(distinct):
        lines.append(f"p{i}@{domain},Person {i},Co {domain},Title {i},{'ab'[i % 2]}")
        if i in again_soon:
            lines.append(f"P{i}@{domain.upper()},Person {i},,,")
        if i in invalid:
            lines.append(f"p{i}.{domain},Broken {i},Co {domain},,a")
    lines.extend(f"P{i}@{domain.upper()},,,,{'ab'[i % 2]}" for i in again_late)
    return ("\n".join(lines) + "\n").encode()


def all_contacts(api: ApiClient, **filters: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = api.contacts(**filters, limit=100, cursor=cursor)
        found.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return found


def test_a_large_import_interrupted_between_checkpoints_resumes_and_imports_every_row_once(
    runtime: LocalRuntime, domain: str
) -> None:
    workspace = f"rl-{uuid.uuid4().hex[:8]}"  # its own counters and stats: exact figures
    distinct = 3 * IMPORT_CHUNK_ROWS + 20
    again_soon, again_late = {3, 64, 150}, list(range(7, distinct, 31))
    invalid = {20, 100, distinct - 30, distinct - 2}
    data = big_csv(domain, distinct, again_soon, again_late, invalid)
    rows = distinct + len(again_soon) + len(again_late) + len(invalid)
    runtime.wait_until_idle(timeout=120)
    imports = source_of(runtime, "ImportFunction", "ImportQueueMessages")
    crashed, errors = imports.stats["crashed"], len(runtime.errors)
    # Contacts are written by TransactWriteItems of up to 49 contacts (with their tag items): two for a chunk of 60
    # rows. The first delivery dies right after the first write of the second chunk: 49 of its contacts written,
    # its checkpoint not. The redelivery resumes at the second chunk (those 49 rows recognised, the rest written)
    # and dies after the first write of the third chunk; the third delivery dies right after it published the third
    # chunk's contacts.imported (before its checkpoint); the fourth replays that chunk and finishes the file.
    # (Only the ImportQueue source's batches: the function's ChangeQueue batches are left alone.)
    try:
        for after, match in ((3, "TransactWriteItems"), (2, "TransactWriteItems"), (1, "PutEvents")):
            runtime.faults.add(DispatchFault("crash", "ImportFunction", after=after, match=match, event=IMPORTS))
        with runtime.api_client(workspace) as api:
            job = api.wait_job(api.import_csv(data, "big.csv")["job_id"], timeout=120)
    finally:
        leftover = runtime.faults.active()
        runtime.faults.clear()  # whatever happened, no crash stays armed for the next test
    assert imports.stats["crashed"] == crashed + 3 and not leftover
    with runtime.api_client(workspace) as api:
        assert runtime.provisioned is not None
        state = JobRepository(runtime.client("dynamodb"), runtime.provisioned.ref("StateTable"))
        stored_job = state.get(workspace, job["job_id"])
        assert stored_job is not None and stored_job.invocations == 4  # the first run and three resumptions
        assert job["status"] == "completed_with_errors"
        assert job["counts"] == {
            "rows_read": rows,
            "valid": distinct + len(again_soon) + len(again_late),
            "invalid": len(invalid),
            "imported": distinct,
            "merged": len(again_soon) + len(again_late),
            "blank": 0,
        }
        broken = [n for n, line in enumerate(data.decode().splitlines(), start=1) if ",Broken " in line]
        assert [(e["row"], e["field"]) for e in job["errors"]] == [(n, "email") for n in broken]  # each once

        emails = [f"p{i}@{domain}" for i in range(distinct)]
        listed = all_contacts(api, domain=domain)
        assert sorted(c["email"] for c in listed) == sorted(emails)  # each distinct email once, nothing else
        stored = ContactRepository(runtime.client("dynamodb"), runtime.provisioned.ref("ContactsTable")).batch_get(
            workspace, emails
        )
        assert len(stored) == distinct
        rows_of: dict[str, list[int]] = {}
        for n, line in enumerate(data.decode().splitlines()[1:], start=2):
            if n not in broken:
                rows_of.setdefault(line.split(",")[0].lower(), []).append(n)
        assert sum(len(r) for r in rows_of.values()) == job["counts"]["valid"]
        for email, contact in stored.items():  # each of its rows once in its sources
            assert [s.row for s in contact.sources if s.job_id == job["job_id"]] == rows_of[email], contact.sources

        # Downstream: each contact enriched exactly once (the AutoEnrich path); nothing counted twice.
        runtime.wait_until_idle(timeout=120)
        status = api.status()
        assert status["total"] == distinct
        assert {s: n for s, n in status["counts"].items() if n} == {"enriched": distinct}
        assert status["stats"]["enriched"] == distinct
        # one contacts.imported event per chunk (60 rows, <= 100 emails): none for a chunk whose run died before
        # publishing it, one for its replay; the third chunk's twice (published, then replayed), the second time
        # recognised as done (the same chunk's batch names the same enrichment request)
        assert status["stats"]["enrichment"]["runs"] == -(-rows // IMPORT_CHUNK_ROWS) + 1
        assert all(q["yours"] == 0 for q in api.dlq()["queues"])
    assert runtime.errors[errors:] == []
