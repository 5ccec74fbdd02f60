"""The local dispatcher's own faults, end to end: a batch delivered twice, batches out of order, a crash mid-batch,
and their control over HTTP (POST/GET/DELETE /_local/faults)."""

from __future__ import annotations

from datetime import datetime

import httpx

from leadpipe_local.client import ApiClient
from leadpipe_local.faults import DispatchFault
from leadpipe_local.runtime import LocalRuntime, SqsSource
from tests.e2e.conftest import csv_for, wait_until

IMPORTS = "ImportQueueMessages"  # the ImportFunction's ImportQueue source (its ChangeQueue one is left alone)


def source(runtime: LocalRuntime, function: str, event: str) -> SqsSource:
    return next(s for s in runtime.sqs_sources if s.function == function and s.event_name == event)


def test_faults_over_http_are_checked_listed_and_cleared(runtime: LocalRuntime) -> None:
    url = f"{runtime.api_url}/_local/faults"
    refused = httpx.post(url, json={"kind": "crash", "function": "NoSuchFunction"})
    assert refused.status_code == 400 and "function must be one of" in refused.json()["message"]
    assert httpx.post(url, content=b"{not json").status_code == 400
    added = httpx.post(url, json={"kind": "duplicate", "function": "EnrichFunction", "fraction": 0.5})
    assert added.status_code == 201, added.text
    assert added.json() == {"fault": {"kind": "duplicate", "function": "EnrichFunction", "fraction": 0.5}}
    listed = httpx.get(url).json()
    assert listed["faults"] == [{"kind": "duplicate", "function": "EnrichFunction", "fraction": 0.5}]
    assert httpx.delete(url).json() == {"faults": []}
    assert httpx.get(url).json()["faults"] == []
    assert httpx.get(f"{runtime.api_url}/_local/health").json()["faults"]["active"] == []


def test_a_batch_delivered_twice_is_imported_once(api: ApiClient, runtime: LocalRuntime, domain: str) -> None:
    runtime.wait_until_idle(timeout=60)
    imports = source(runtime, "ImportFunction", IMPORTS)
    before = dict(imports.stats)
    runtime.faults.add(DispatchFault("duplicate", "ImportFunction", event=IMPORTS))
    job_id = api.import_csv(csv_for(domain, 5), "twice.csv")["job_id"]
    api.wait_job(job_id, timeout=60)  # done when the first copy finished: the second may still be running
    runtime.wait_until_idle(timeout=60)
    assert not runtime.faults.active()
    assert imports.stats["batches"] - before.get("batches", 0) == 1  # the job's one message (5 rows: one chunk)...
    assert imports.stats["duplicated"] - before.get("duplicated", 0) == 1  # ...delivered twice
    assert imports.stats["failed"] == before.get("failed", 0)
    job = api.job(job_id)  # after both copies were handled
    counts = job["counts"]
    assert (counts["rows_read"], counts["valid"], counts["imported"], counts["merged"]) == (5, 5, 5, 0)
    assert job["status"] == "completed"
    contacts = api.contacts(domain=domain, limit=50)["items"]
    assert sorted(c["email"] for c in contacts) == [f"p{i}@{domain}" for i in range(5)]
    for contact in contacts:  # each row applied once, not once per copy
        rows = [s["row"] for s in api.contact(contact["email"])["sources"] if s["job_id"] == job_id]
        assert len(rows) == 1, (contact["email"], rows)


def test_a_held_back_batch_is_delivered_after_a_later_one(api: ApiClient, runtime: LocalRuntime, domain: str) -> None:
    runtime.wait_until_idle(timeout=60)
    imports = source(runtime, "ImportFunction", IMPORTS)
    reordered = imports.stats["reordered"]
    # held for up to a minute: the second import's message releases it long before, however slow the machine
    runtime.faults.add(DispatchFault("reorder", "ImportFunction", hold=60, event=IMPORTS))
    first = api.import_csv(csv_for(domain, 3), "first.csv")["job_id"]  # its message is held back...
    wait_until(runtime.faults.active, lambda active: not active, what="the first message held back")
    second = api.import_csv(csv_for("later-" + domain, 3), "second.csv")["job_id"]  # ...until this one is delivered
    done = [api.wait_job(job_id, timeout=90) for job_id in (first, second)]
    finished = [datetime.fromisoformat(job["finished_at"]) for job in done]
    assert finished[1] < finished[0], done  # the later job finished first
    assert [job["counts"]["imported"] for job in done] == [3, 3]
    assert imports.stats["reordered"] - reordered == 1  # the dispatcher counts the reorder that happened
