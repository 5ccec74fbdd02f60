"""Operations against moto: the facet counters kept in the contacts' write transactions, run stats recorded by the
enrich and sync services, and the activity feed from the bus (ActivityRule -> ActivityQueue -> activity function ->
the state table -> listing)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadpipe.activity import ActivityEntry, ActivityLog
from leadpipe.contacts import ContactChange, ContactRepository
from leadpipe.errors import BadRequest
from leadpipe.models import RUN_EVENTS, Contact, FieldValue, PipelineStatus
from leadpipe.stats import StatsRepository, status_stats, summarise
from leadpipe_local.fakes.base import Fault
from leadpipe_local.fakes.hubspot import FakeHubSpot
from tests.conftest import ROOT, Stack
from tests.integration.test_enrich_service import BUDGET, imported_event, people, registry
from tests.integration.test_enrich_service import World as EnrichWorld
from tests.integration.test_sync_service import World as SyncWorld

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def fv(value: object, provider: str) -> FieldValue:
    return FieldValue(value=value, provider=provider, confidence=0.9, fetched_at=NOW)  # type: ignore[arg-type]


def person(email: str, **fields: Any) -> Contact:
    domain = email.split("@")[1]
    return Contact(workspace="acme", email=email, email_domain=domain, domain=domain, **fields)


# ---------------------------------------------------------------------------------------------- facet counters


def test_facet_counters_follow_every_write_and_counts_stay_pipeline_statuses(stack: Stack) -> None:
    repo = ContactRepository(stack.client("dynamodb"), stack.contacts_table)
    ann, bob, cy = person("ann@acme.com", country="France"), person("bob@acme.com"), person("cy@bolt.io")
    assert not repo.save([ContactChange(None, c) for c in (ann, bob, cy)]).conflicts

    def enriched(c: Contact, industry: str, size: str, quality: float, provider: str) -> Contact:
        after = c.model_copy(deep=True)
        after.status = PipelineStatus.ENRICHED
        after.quality = quality
        after.enrichment = {"industry": fv(industry, provider), "employee_range": fv(size, provider)}
        return after

    repo.upsert("acme", ["ann@acme.com"], lambda e, c: enriched(c, "Software", "51-200", 0.91, "sample"))  # type: ignore[arg-type]
    repo.upsert("acme", ["bob@acme.com"], lambda e, c: enriched(c, "software", "51-200", 0.72, "apollo"))  # type: ignore[arg-type]
    repo.upsert("acme", ["cy@bolt.io"], lambda e, c: enriched(c, "Logistics", "11-50", 0.35, "sample"))  # type: ignore[arg-type]

    assert repo.counts("acme") == {
        "imported": 0,
        "enriching": 0,
        "enriched": 3,
        "syncing": 0,
        "synced": 0,
        "failed": 0,
        "skipped": 0,
    }
    summary = summarise(repo.counter_totals("acme"))
    assert (summary.total, summary.enriched) == (3, 3)
    assert [(f.value, f.contacts) for f in summary.industries] == [("software", 2), ("logistics", 1)]
    assert [(f.value, f.contacts) for f in summary.company_sizes] == [("11-50", 1), ("51-200", 2)]
    assert [(f.value, f.contacts) for f in summary.countries] == [("france", 1)]
    assert [(c.provider, c.contacts, c.share_of_enriched) for c in summary.coverage] == [
        ("sample", 2, 0.6667),
        ("apollo", 1, 0.3333),
    ]
    assert {b.range: b.contacts for b in summary.quality if b.contacts} == {"0.3-0.4": 1, "0.7-0.8": 1, "0.9-1.0": 1}

    # a re-enrichment moves Bob to another industry; erasing Cy takes him off every count
    repo.upsert("acme", ["bob@acme.com"], lambda e, c: enriched(c, "Banking", "51-200", 0.72, "apollo"))  # type: ignore[arg-type]
    repo.upsert("acme", ["cy@bolt.io"], lambda e, c: None)
    summary = summarise(repo.counter_totals("acme"))
    assert [(f.value, f.contacts) for f in summary.industries] == [("banking", 1), ("software", 1)]
    assert [(f.value, f.contacts) for f in summary.company_sizes] == [("51-200", 2)]
    assert (summary.total, summary.enriched) == (2, 2)
    assert summarise(repo.counter_totals("other")).total == 0  # per workspace


# ---------------------------------------------------------------------------------------------- the activity function


@dataclass
class Context:
    function_name: str = "ActivityFunction"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:ActivityFunction"
    aws_request_id: str = "req-activity"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


class Feed:
    """The activity function in this process, fed from the ActivityQueue the template's rule fills in moto."""

    def __init__(self, stack: Stack, handler: Any, log: ActivityLog) -> None:
        self.stack = stack
        self.handler = handler
        self.log = log
        self.queue_url = stack.ref("ActivityQueue")

    def deliver(self, extra_bodies: tuple[str, ...] = ()) -> dict[str, Any]:
        """Hand everything waiting on ActivityQueue (and ``extra_bodies``) to the function, as one SQS batch."""
        sqs = self.stack.client("sqs")
        bodies = list(extra_bodies)
        while True:
            got = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                break
            for message in got:
                bodies.append(message["Body"])
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        records = [
            {"messageId": f"m-{i}", "receiptHandle": f"r-{i}", "body": body, "attributes": {}, "eventSource": "aws:sqs"}
            for i, body in enumerate(bodies)
        ]
        return dict(self.handler({"Records": records}, Context()))

    def entries(self, workspace: str = "default", limit: int = 100) -> list[ActivityEntry]:
        return self.log.list(workspace, limit=limit).items


@pytest.fixture
def feed(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Feed:
    monkeypatch.syspath_prepend(str(ROOT / "functions" / "activity"))
    import activity_handler

    from leadpipe.observability import metrics

    monkeypatch.setattr(metrics.provider, "namespace", "LeadpipeTests")  # the handler flushes its metrics

    log = ActivityLog(stack.client("dynamodb"), stack.state_table)
    monkeypatch.setattr(activity_handler, "activity_log", lambda: log)
    return Feed(stack, activity_handler.handler, log)


def test_enrichment_runs_reach_the_stats_and_the_activity_feed(stack: Stack, feed: Feed) -> None:
    world = EnrichWorld(stack, [registry(), people()])
    world.add("ann@acme.com", "bob@acme.com")
    first = world.service.handle_message(imported_event(["ann@acme.com", "bob@acme.com"], "e-1"), budget=BUDGET)
    assert first is not None and len(first.enriched) == 2
    world.now += timedelta(minutes=5)
    second = world.service.handle_message(world.message("ann@acme.com", request_id="req-2"), budget=BUDGET)
    assert second is not None and second.enriched == ["ann@acme.com"]

    stats = StatsRepository(stack.client("dynamodb"), stack.state_table).get("default")
    assert (stats.enrichment.runs, stats.enrichment.failed_runs) == (2, 0)
    counts = stats.enrichment.counts
    assert counts["contacts"] == 3 and counts["enriched"] == 3
    assert counts["provider_calls"] == first.provider_calls + second.provider_calls == first.provider_calls > 0
    assert second.cache_hits == second.cache_lookups > 0  # the second run found everything in the cache
    assert counts["cache_hits"] == second.cache_hits and counts["cache_lookups"] > counts["cache_hits"]
    last = stats.last_run.enrichment
    assert last is not None and (last.request_id, last.outcome, last.at) == ("req-2", "completed", world.now)
    assert last.counts["enriched"] == 1
    view = status_stats(stats, world.contacts.counts("default"))
    assert view.cache_hit_rate == round(counts["cache_hits"] / counts["cache_lookups"], 4)

    assert feed.deliver() == {"batchItemFailures": []}
    entries = feed.entries()
    assert [(e.type, e.request_id) for e in entries] == [
        ("enrichment.completed", "req-2"),
        ("enrichment.started", "req-2"),
        ("enrichment.completed", "evt-e-1"),
        ("enrichment.started", "evt-e-1"),
    ]
    assert entries[0].counts["enriched"] == 1 and entries[1].counts == {"contacts": 1}
    assert entries[2].counts["provider_calls"] == first.provider_calls


def test_a_failing_run_is_recorded_as_failed_with_its_error(stack: Stack, feed: Feed) -> None:
    broken = people()
    broken.error = RuntimeError("provider adapter bug")  # type: ignore[assignment]
    world = EnrichWorld(stack, [broken])
    world.add("ann@acme.com")
    with pytest.raises(RuntimeError):
        world.service.handle_message(world.message("ann@acme.com", request_id="req-x"), budget=BUDGET)
    stats = StatsRepository(stack.client("dynamodb"), stack.state_table).get("default")
    assert (stats.enrichment.runs, stats.enrichment.failed_runs, stats.enrichment.counts["failed"]) == (1, 1, 1)
    assert stats.last_run.enrichment is not None and stats.last_run.enrichment.outcome == "failed"
    feed.deliver()
    failed = feed.entries()[0]
    assert failed.type == "enrichment.failed" and failed.counts["failed"] == 1
    assert failed.error is not None and "RuntimeError: provider adapter bug" in failed.error


def test_sync_runs_count_contacts_hubspot_calls_and_429s(stack: Stack, hubspot: FakeHubSpot, feed: Feed) -> None:
    world = SyncWorld(stack, hubspot)
    world.add("ann@acme.com")
    world.add("bob@acme.com")
    storm = {
        "status": "error",
        "message": "You have reached your ten_secondly_rolling limit.",
        "errorType": "RATE_LIMIT",
    }
    hubspot.inject(
        Fault(status=429, body=storm, times=2, headers={"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"})
    )
    report = world.sync("ann@acme.com", "bob@acme.com", request_id="sync-ops")
    assert sorted(report.synced) == ["ann@acme.com", "bob@acme.com"] and report.throttled == 2
    stats = StatsRepository(stack.client("dynamodb"), stack.state_table).get("default")
    counts = stats.sync.counts
    assert (stats.sync.runs, counts["synced"], counts["created"], counts["hubspot_429s"]) == (1, 2, 2, 2)
    assert counts["hubspot_calls"] == report.hubspot_calls > 2
    assert stats.last_run.sync is not None and stats.last_run.sync.request_id == "sync-ops"
    assert stats.enrichment.runs == 0 and stats.last_run.enrichment is None
    feed.deliver()
    assert [e.type for e in feed.entries()] == ["sync.completed", "sync.started"]


def test_the_activity_function_fails_only_what_is_not_an_activity_event(stack: Stack, feed: Feed) -> None:
    imported = json.dumps(
        {
            "version": "0",
            "id": "ev-imp",
            "detail-type": "contacts.imported",
            "source": "leadpipe",
            "time": "2026-11-24T09:30:00Z",
            "detail": {"workspace": "acme", "source": "api", "job_id": "imp_1", "emails": ["a@acme.com", "b@acme.com"]},
        }
    )
    answer = feed.deliver((imported, imported, '{"type": "import.run"}'))
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-2"}]}
    [entry] = feed.entries("acme")  # the same event twice is one entry
    assert (entry.type, entry.job_id, entry.counts) == ("contacts.imported", "imp_1", {"contacts": 2})
    assert feed.entries("default") == []


# ---------------------------------------------------------------------------------------------- listing the feed


def entry(i: int, workspace: str = "acme", at: datetime = NOW) -> ActivityEntry:
    return ActivityEntry(
        id=f"ev-{i:03d}",
        type=RUN_EVENTS[i % len(RUN_EVENTS)],
        workspace=workspace,
        at=at + timedelta(seconds=i),
        request_id=f"req-{i}",
        counts={"contacts": i},
    )


def test_the_feed_lists_newest_first_in_pages_since_a_time_and_skips_expired_entries(stack: Stack) -> None:
    clock = {"now": NOW + timedelta(hours=1)}
    log = ActivityLog(stack.client("dynamodb"), stack.state_table, clock=lambda: clock["now"])
    log.write([entry(i) for i in range(25)] + [entry(1, "other")])
    page = log.list("acme", limit=10)
    assert [e.id for e in page.items] == [f"ev-{i:03d}" for i in range(24, 14, -1)]
    seen = [e.id for e in page.items]
    while page.next_cursor:
        page = log.list("acme", limit=10, cursor=page.next_cursor)
        seen += [e.id for e in page.items]
    assert seen == [f"ev-{i:03d}" for i in range(24, -1, -1)]
    since = log.list("acme", since=NOW + timedelta(seconds=20))
    assert [e.id for e in since.items] == ["ev-024", "ev-023", "ev-022", "ev-021", "ev-020"] and not since.next_cursor
    assert [e.workspace for e in log.list("other").items] == ["other"]
    # 30 days on, the first ten have expired (TTL deletion lags: the reader skips them itself)
    clock["now"] = NOW + timedelta(days=30, seconds=9, milliseconds=500)
    assert [e.id for e in log.list("acme", limit=100).items] == [f"ev-{i:03d}" for i in range(24, 9, -1)]
    for bad in ("%%%", "bm90IGpzb24", "eyJzayI6IDF9"):  # not base64, not JSON, sk not a string
        with pytest.raises(BadRequest) as refused:
            log.list("acme", cursor=bad)
        assert refused.value.code == "invalid_cursor"
