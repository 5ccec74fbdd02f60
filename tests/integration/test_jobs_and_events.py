"""Job progress records and the EventBridge publisher."""

from __future__ import annotations

import json
from typing import Any

import pytest

from leadpipe.events import MAX_CALL_BYTES, EventPublisher, PublishError, entry_size
from leadpipe.jobs import JobRepository, StaleJob
from leadpipe.models import Checkpoint, ImportSource, Job, JobCounts, JobStatus, RowError
from tests.conftest import Stack


@pytest.fixture
def jobs(stack: Stack) -> JobRepository:
    return JobRepository(stack.client("dynamodb"), stack.state_table)


def new_job(job_id: str = "imp_01m85wkrqx90eh5tvhs26bjzvg") -> Job:
    return Job(workspace="default", job_id=job_id, source=ImportSource.API, bucket="b", key="k")


def test_creation_is_idempotent(jobs: JobRepository) -> None:
    job, created = jobs.create(new_job())
    assert created
    again, created_again = jobs.create(new_job())
    assert not created_again and again.job_id == job.job_id


def test_progress_adds_counts_keeps_100_errors_and_rejects_stale_writers(jobs: JobRepository) -> None:
    job, _ = jobs.create(new_job())
    job = jobs.update(job, checkpoint=Checkpoint(offset=10, row=2))
    stale = job
    errors = [RowError(row=i, code="invalid_email", message="m") for i in range(70)]
    job = jobs.update(
        job,
        checkpoint=Checkpoint(offset=20, row=72),
        counts=JobCounts(rows_read=70, invalid=70),
        errors=errors,
    )
    job = jobs.update(
        job,
        checkpoint=Checkpoint(offset=30, row=142),
        counts=JobCounts(rows_read=70, invalid=70),
        errors=errors,
    )
    assert job.counts.rows_read == 140 and job.counts.invalid == 140
    assert len(job.errors) == 100 and job.errors[-1].row == 29
    with pytest.raises(StaleJob):
        jobs.update(stale, checkpoint=Checkpoint(offset=20, row=72), counts=JobCounts(rows_read=70))
    assert jobs.get("default", job.job_id).counts.rows_read == 140  # type: ignore[union-attr]


def test_terminal_status_sets_finished_at_and_listing_is_newest_first(jobs: JobRepository) -> None:
    a, _ = jobs.create(new_job("imp_01m85wkrqx90eh5tvhs26bjzva"))
    b, _ = jobs.create(new_job("imp_01m85wkrqx90eh5tvhs26bjzvb"))
    done = jobs.update(a, expect_checkpoint=False, status=JobStatus.COMPLETED)
    assert done.finished_at is not None and done.status is JobStatus.COMPLETED
    assert [j.job_id for j in jobs.recent("default")] == [b.job_id, a.job_id]
    assert [j.job_id for j in jobs.recent("default", before=b.job_id)] == [a.job_id]


class FlakyEvents:
    """An EventBridge client that rejects some entries (FailedEntryCount > 0) for the first calls: the entry at
    ``fail_index`` of the first call, and that same entry whenever it is sent again."""

    def __init__(self, fail_first: int, fail_index: int = 0) -> None:
        self.fail_first = fail_first
        self.fail_index = fail_index
        self.calls: list[list[dict[str, Any]]] = []
        self.failing_detail: str | None = None

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(Entries)
        if self.failing_detail is None and self.fail_first:
            self.failing_detail = Entries[self.fail_index]["Detail"]
        failing = len(self.calls) <= self.fail_first
        results = [
            {"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"}
            if failing and entry["Detail"] == self.failing_detail
            else {"EventId": f"e{len(self.calls)}-{i}"}
            for i, entry in enumerate(Entries)
        ]
        return {"FailedEntryCount": sum(1 for r in results if "ErrorCode" in r), "Entries": results}


def test_publisher_sends_at_most_10_entries_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    client = FlakyEvents(fail_first=0)
    emails = [f"p{i}@acme.com" for i in range(2345)]
    assert EventPublisher(client, "bus").contacts_imported("default", "api", "job", emails) == 24
    assert [len(c) for c in client.calls] == [10, 10, 4]
    details = [json.loads(e["Detail"]) for call in client.calls for e in call]
    assert sum(len(d["emails"]) for d in details) == 2345
    assert all(len(d["emails"]) <= 100 for d in details)
    assert {c[0]["EventBusName"] for c in client.calls} == {"bus"}


def test_publisher_packs_calls_under_the_size_limit() -> None:
    client = FlakyEvents(fail_first=0)
    big = [{"blob": "x" * 60_000} for _ in range(9)]
    EventPublisher(client, "bus").publish("test.big", big)
    assert len(client.calls) == 3
    assert all(sum(entry_size(e) for e in call) <= MAX_CALL_BYTES for call in client.calls)


def test_publisher_retries_only_the_failed_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("leadpipe.events.backoff", lambda *a, **k: None)
    client = FlakyEvents(fail_first=2, fail_index=3)
    EventPublisher(client, "bus").publish("test", [{"n": i} for i in range(5)])
    assert [len(c) for c in client.calls] == [5, 1, 1]
    assert [json.loads(c[0]["Detail"]) for c in client.calls[1:]] == [{"n": 3}, {"n": 3}]


def test_publisher_raises_when_entries_keep_failing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("leadpipe.events.backoff", lambda *a, **k: None)
    client = FlakyEvents(fail_first=100)
    with pytest.raises(PublishError, match="ThrottlingException"):
        EventPublisher(client, "bus", max_attempts=3).publish("test", [{"n": 1}])
    assert len(client.calls) == 3


def test_published_events_reach_the_bus(stack: Stack, bus_tap: Any) -> None:
    EventPublisher(stack.client("events"), stack.bus).contacts_imported("default", "s3", "job-1", ["a@b.co"], "r2")
    [event] = bus_tap.drain()
    assert event["source"] == "leadpipe" and event["detail-type"] == "contacts.imported"
    assert event["detail"] == {
        "workspace": "default",
        "source": "s3",
        "job_id": "job-1",
        "emails": ["a@b.co"],
        "batch": "r2.0",  # the chunk (its first row) and the event's place in it: the same when a chunk is replayed
    }
