"""Operations, pure logic: the summary's facets and their counter delta, run stats, the summary, activity entries,
and run recording that never fails a run."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from leadpipe.activity import entry_from_body, entry_from_event
from leadpipe.contacts import ContactChange, ContactRepository, contact_facets, facet_value, quality_bucket
from leadpipe.errors import BadRequest
from leadpipe.events import EventPublisher
from leadpipe.models import Contact, FieldValue, PipelineStatus
from leadpipe.stats import (
    RunRecorder,
    RunStats,
    StatsRepository,
    hit_rate,
    parse_stats,
    status_stats,
    summarise,
)

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def fv(value: object, provider: str, agreed_by: list[str] | None = None) -> FieldValue:
    return FieldValue(value=value, provider=provider, confidence=0.9, fetched_at=NOW, agreed_by=agreed_by or [])  # type: ignore[arg-type]


def contact(email: str = "ann@acme.com", **fields: Any) -> Contact:
    return Contact(workspace="default", email=email, email_domain=email.split("@")[1], **fields)


# ---------------------------------------------------------------------------------------------- facets


def test_facets_of_an_enriched_contact() -> None:
    ann = contact(
        country="Spain",
        quality=0.84,
        enrichment={
            "industry": fv("  Computer   SOFTWARE ", "registry"),
            "employee_range": fv("51-200", "registry", agreed_by=["pdl"]),
            "country": fv("France", "people"),
            "company_country": fv("Germany", "registry"),
            "first_name": fv("Ann", "import"),  # the imported file is not a provider
        },
    )
    assert contact_facets(ann) == {
        "f:industry:computer software",
        "f:size:51-200",
        "f:country:france",  # the person's enriched country first
        "f:provider:registry",
        "f:provider:pdl",  # agreed on a kept value
        "f:provider:people",
        "f:quality:0.8",
        "f:scored",
    }


def test_country_falls_back_to_the_imported_then_the_company_country_and_nothing_is_invented() -> None:
    assert contact_facets(contact(country="Spain")) == {"f:country:spain"}
    only_company = contact(enrichment={"company_country": fv("Germany", "registry")})
    assert contact_facets(only_company) == {"f:country:germany", "f:provider:registry"}  # no quality: not scored
    assert contact_facets(contact()) == set()


def test_facet_values_are_normalised_and_capped() -> None:
    assert facet_value("  Big\tData  ") == "big data"
    assert facet_value("x" * 100) == "x" * 64
    assert facet_value("") is None and facet_value("   ") is None and facet_value(None) is None
    assert facet_value(True) is None  # a flag is not a category
    assert facet_value(2011) == "2011"


@pytest.mark.parametrize(
    ("quality", "bucket"),
    [
        (0.0, "0.0"),
        (0.05, "0.0"),
        (0.1, "0.1"),
        (0.3, "0.3"),
        (0.69999, "0.6"),
        (0.7, "0.7"),
        (0.99, "0.9"),
        (1.0, "0.9"),
    ],
)
def test_quality_buckets_are_tenths_by_their_lower_bound(quality: float, bucket: str) -> None:
    assert quality_bucket(quality) == bucket


def delta_of(update: dict[str, Any] | None) -> dict[str, int]:
    """The counter update's ADD, as {attribute: delta}."""
    assert update is not None
    body = update["Update"]
    assert body["UpdateExpression"].startswith("ADD ")
    names, values = body["ExpressionAttributeNames"], body["ExpressionAttributeValues"]
    out = {}
    for clause in body["UpdateExpression"][4:].split(", "):
        name, value = clause.split(" ")
        out[names[name]] = int(values[value]["N"])
    return out


def test_the_counter_delta_moves_statuses_and_facets_in_one_update() -> None:
    repo = ContactRepository(client=None, table="contacts")
    before = contact(status=PipelineStatus.ENRICHING, country="Spain")
    after = contact(
        status=PipelineStatus.ENRICHED,
        country="Spain",
        quality=0.75,
        enrichment={"industry": fv("Software", "registry"), "employee_range": fv("11-50", "registry")},
    )
    new = contact("bob@acme.com", country="Spain")
    delta = delta_of(repo._counter_update("default", [ContactChange(before, after), ContactChange(None, new)]))
    assert delta == {
        "enriching": -1,
        "enriched": 1,
        "imported": 1,
        "f:country:spain": 1,  # Ann's country did not change: only Bob's counts
        "f:industry:software": 1,
        "f:size:11-50": 1,
        "f:provider:registry": 1,
        "f:quality:0.7": 1,
        "f:scored": 1,
    }
    gone = delta_of(repo._counter_update("default", [ContactChange(after, None)]))
    assert gone["enriched"] == -1 and gone["f:industry:software"] == -1 and gone["f:country:spain"] == -1
    moved = after.model_copy(update={"enrichment": {"industry": fv("Logistics", "registry")}})
    changed = delta_of(repo._counter_update("default", [ContactChange(after, moved)]))
    assert changed == {"f:industry:software": -1, "f:industry:logistics": 1, "f:size:11-50": -1}
    assert repo._counter_update("default", [ContactChange(after, after.model_copy())]) is None  # nothing moved


# ---------------------------------------------------------------------------------------------- stats and summary


def test_stats_item_attributes_become_stage_totals() -> None:
    stats = parse_stats(
        {
            "pk": "STATS#default",
            "sk": "runs",
            "enrichment:runs": 3,
            "enrichment:failed_runs": 1,
            "enrichment:enriched": 40,
            "enrichment:cache_hits": 30,
            "enrichment:cache_lookups": 120,
            "enrichment:provider_calls": 9,
            "enrichment:last": {"request_id": "req-3", "at": "2026-11-24T10:00:00Z", "outcome": "completed"},
            "sync:runs": 1,
            "sync:synced": 12,
            "sync:failed": 2,
            "sync:hubspot_calls": 7,
            "sync:hubspot_429s": 1,
            "other:thing": 5,
        }
    )
    assert stats.enrichment.runs == 3 and stats.enrichment.failed_runs == 1
    assert stats.enrichment.counts == {"enriched": 40, "cache_hits": 30, "cache_lookups": 120, "provider_calls": 9}
    assert stats.last_run.enrichment is not None and stats.last_run.enrichment.request_id == "req-3"
    assert stats.last_run.sync is None
    view = status_stats(stats, {"imported": 5, "enriched": 30, "failed": 2})
    assert (view.total, view.enriched, view.synced, view.failed) == (37, 40, 12, 2)
    assert (view.cache_hit_rate, view.provider_calls, view.hubspot_calls, view.hubspot_429s) == (0.25, 9, 7, 1)


def test_hit_rate_before_any_lookup_is_none() -> None:
    assert hit_rate(0, 0) is None and hit_rate(1, 3) == 0.3333
    assert status_stats(RunStats(), {}).cache_hit_rate is None


def test_summary_ranks_facets_and_keeps_statuses_out() -> None:
    totals = {
        "imported": 2,
        "enriched": 6,
        "synced": 2,
        "f:scored": 8,
        "f:industry:software": 5,
        "f:industry:logistics": 2,
        "f:industry:banking": 2,
        "f:industry:gone": 0,
        "f:size:1001-5000": 1,
        "f:size:11-50": 3,
        "f:size:51-200": 4,
        "f:country:france": 6,
        "f:country:spain": 1,
        "f:provider:sample": 8,
        "f:provider:apollo": 2,
        "f:quality:0.7": 5,
        "f:quality:0.9": 2,
        "f:quality:0.2": 1,
    }
    summary = summarise(totals, top=2)
    assert (summary.total, summary.enriched) == (10, 8)
    assert [(f.value, f.contacts, f.share) for f in summary.industries] == [("software", 5, 0.5), ("banking", 2, 0.2)]
    assert [f.value for f in summary.company_sizes] == ["11-50", "51-200", "1001-5000"]  # by size, not by count
    assert [f.value for f in summary.countries] == ["france", "spain"]
    assert [(c.provider, c.contacts, c.share, c.share_of_enriched) for c in summary.coverage] == [
        ("sample", 8, 0.8, 1.0),
        ("apollo", 2, 0.2, 0.25),
    ]
    assert [(b.range, b.contacts) for b in summary.quality] == [
        ("0.0-0.1", 0),
        ("0.1-0.2", 0),
        ("0.2-0.3", 1),
        ("0.3-0.4", 0),
        ("0.4-0.5", 0),
        ("0.5-0.6", 0),
        ("0.6-0.7", 0),
        ("0.7-0.8", 5),
        ("0.8-0.9", 0),
        ("0.9-1.0", 2),
    ]
    empty = summarise({})
    assert empty.total == 0 and empty.industries == [] and empty.coverage == [] and len(empty.quality) == 10


# ---------------------------------------------------------------------------------------------- activity entries


def bus_event(detail_type: str, detail: dict[str, Any], event_id: str = "ev-1") -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id,
        "detail-type": detail_type,
        "source": "leadpipe",
        "time": "2026-11-24T10:00:00Z",
        "detail": detail,
    }


def test_run_events_and_imports_become_activity_entries() -> None:
    run = bus_event(
        "enrichment.completed",
        {"workspace": "acme", "request_id": "req-1", "at": "2026-11-24T10:00:01.500Z", "counts": {"enriched": 3}},
    )
    entry = entry_from_body(json.dumps(run))
    assert (entry.type, entry.workspace, entry.request_id, entry.counts) == (
        "enrichment.completed",
        "acme",
        "req-1",
        {"enriched": 3},
    )
    assert entry.at == datetime(2026, 11, 24, 10, 0, 1, 500_000, tzinfo=UTC) and entry.error is None
    failed = entry_from_event(
        bus_event("sync.failed", {"workspace": "acme", "request_id": "s-1", "at": "2026-11-24T10:00:00Z", "error": "x"})
    )
    assert failed.error == "x" and failed.counts == {}
    imported = entry_from_event(
        bus_event("contacts.imported", {"workspace": "acme", "source": "api", "job_id": "imp_1", "emails": ["a@b.co"]})
    )
    assert (imported.job_id, imported.source, imported.counts) == ("imp_1", "api", {"contacts": 1})
    assert imported.at == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # the bus event's time


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("not json", "not JSON"),
        ("[1]", "not an event"),
        (json.dumps({**bus_event("contacts.synced", {}), "detail-type": "contacts.synced"}), "not a leadpipe activity"),
        (json.dumps({**bus_event("sync.started", {}), "source": "elsewhere"}), "not a leadpipe activity"),
        (json.dumps(bus_event("sync.started", {"workspace": "acme"})), "is not valid"),
        (
            json.dumps(
                bus_event("sync.started", {"workspace": "Not A Workspace!", "request_id": "r", "at": NOW.isoformat()})
            ),
            "is not valid",
        ),
    ],
)
def test_anything_else_on_the_queue_is_a_clear_error(body: str, why: str) -> None:
    with pytest.raises(BadRequest, match=why) as refused:
        entry_from_body(body)
    assert refused.value.code == "bad_message"


# ---------------------------------------------------------------------------------------------- run recording


class Events:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.entries: list[dict[str, Any]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        if self.fail:
            raise ClientError({"Error": {"Code": "InternalException", "Message": "bus down"}}, "PutEvents")
        self.entries.extend(Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "x"} for _ in Entries]}


class Table:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.updates: list[dict[str, Any]] = []

    def update_item(self, **request: Any) -> dict[str, Any]:
        if self.fail:
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}}, "X")
        self.updates.append(request)
        return {}


def test_a_run_is_announced_then_recorded_in_one_update_with_its_outcome() -> None:
    events, table = Events(), Table()
    recorder = RunRecorder(
        "sync", publisher=EventPublisher(events, "bus"), stats=StatsRepository(table, "state"), clock=lambda: NOW
    )
    recorder.started("acme", "sync-1", 3)
    recorder.finished("acme", "sync-1", {"synced": 2, "failed": 1, "skipped": 0}, error="HubSpotError: " + "x" * 900)
    assert [e["DetailType"] for e in events.entries] == ["sync.started", "sync.failed"]
    started, failed = (json.loads(e["Detail"]) for e in events.entries)
    assert started == {
        "workspace": "acme",
        "request_id": "sync-1",
        "at": "2026-11-24T10:00:00Z",
        "counts": {"contacts": 3},
        "error": None,
    }
    assert failed["counts"] == {"synced": 2, "failed": 1, "skipped": 0} and len(failed["error"]) == 500
    [update] = table.updates
    assert update["Key"] == {"pk": {"S": "STATS#acme"}, "sk": {"S": "runs"}}
    names = update["ExpressionAttributeNames"]
    assert set(names.values()) == {"sync:runs", "sync:failed_runs", "sync:synced", "sync:failed", "sync:last"}
    assert update["UpdateExpression"].startswith("ADD ") and " SET #last = :last" in update["UpdateExpression"]
    last = update["ExpressionAttributeValues"][":last"]["M"]
    assert last["outcome"] == {"S": "failed"} and last["request_id"] == {"S": "sync-1"}


@pytest.mark.parametrize(("bus_down", "table_down"), [(True, False), (False, True), (True, True)])
def test_recording_never_fails_the_run(bus_down: bool, table_down: bool) -> None:
    events, table = Events(fail=bus_down), Table(fail=table_down)
    recorder = RunRecorder(
        "enrichment",
        publisher=EventPublisher(events, "bus", max_attempts=1),
        stats=StatsRepository(table, "state"),
        clock=lambda: NOW,
    )
    recorder.started("acme", "req-1", 1)
    recorder.finished("acme", "req-1", {"enriched": 1})
    assert len(events.entries) == (0 if bus_down else 2)  # what could be recorded still was
    assert len(table.updates) == (0 if table_down else 1)
