"""The enrich service and the enrichment cache against moto, with scripted providers."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadpipe.contacts import ContactChange, ContactRepository
from leadpipe.enrichment.cache import EnrichmentCache
from leadpipe.enrichment.fields import Kind
from leadpipe.enrichment.http import Budget
from leadpipe.enrichment.keys import ProviderKeys
from leadpipe.enrichment.providers.base import (
    Answer,
    AsyncProvider,
    PersonQuery,
    ProviderError,
    ProviderInfo,
    RateLimit,
)
from leadpipe.enrichment.registry import ProviderSet
from leadpipe.enrichment.service import EnrichService, queue_enrichment
from leadpipe.events import EventPublisher
from leadpipe.models import Contact, EnrichMessage, EnrichOptions, LifecycleStage, PipelineStatus
from leadpipe.settings import Settings
from leadpipe.suppression import SuppressionList
from leadpipe_local.fakes.base import Fault
from tests.conftest import Stack
from tests.scripted import ScriptedProvider

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
BUDGET = Budget()

COMPANIES = {
    "acme.com": {"company_name": "Acme", "industry": "software", "employee_range": "51-200", "country": "France"}
}
PEOPLE = {
    "ann@acme.com": {
        "title": "CTO",
        "first_name": "Ann",
        "last_name": "Lee",
        "email_status": "valid",
        "linkedin": "https://www.linkedin.com/in/annlee",
    },
    "bob@acme.com": {"email_status": "unknown"},
}


def registry() -> ScriptedProvider:
    return ScriptedProvider(
        "registry",
        companies=COMPANIES,
        company_fields={"company_name": 0.95, "industry": 0.9, "employee_range": 0.9, "country": 0.95},
    )


def people() -> ScriptedProvider:
    return ScriptedProvider(
        "people",
        people=PEOPLE,
        person_fields={"title": 0.95, "first_name": 0.95, "last_name": 0.95, "email_status": 0.95, "linkedin": 0.95},
    )


class World:
    def __init__(self, stack: Stack, providers: list[Any], skipped: dict[str, str] | None = None) -> None:
        self.stack = stack
        self.now = NOW
        ddb = stack.client("dynamodb")
        self.contacts = ContactRepository(ddb, stack.contacts_table)
        self.cache = EnrichmentCache(ddb, stack.ref("EnrichCacheTable"), clock=lambda: self.now)
        self.suppression = SuppressionList(ddb, stack.state_table, "test-salt")
        self.providers = providers
        self.queue_url = stack.ref("EnrichQueue")
        self.settings = Settings(
            contacts_table=stack.contacts_table,
            state_table=stack.state_table,
            event_bus_name=stack.bus,
            enrich_queue_url=self.queue_url,
            enrich_cache_table=stack.ref("EnrichCacheTable"),
            min_quality=0.7,
            auto_enrich_on_import=True,  # the rule's contacts.imported events are enriched (the template default)
        )
        self.service = EnrichService(
            contacts=self.contacts,
            cache=self.cache,
            publisher=EventPublisher(stack.client("events"), stack.bus),
            sqs=stack.client("sqs"),
            settings=self.settings,
            keys=ProviderKeys(None),
            suppression=self.suppression,
            providers=lambda ws, budget: ProviderSet(list(self.providers), dict(skipped or {})),
            clock=lambda: self.now,
            sleep=lambda s: None,
        )
        self.drain()  # messages the AutoEnrich rule delivered during other set-up

    def add(self, *emails: str, **fields: Any) -> None:
        changes = []
        for email in emails:
            domain = email.split("@")[1]
            changes.append(
                ContactChange(
                    None,
                    Contact(
                        workspace="default",
                        email=email,
                        email_domain=domain,
                        domain=domain,
                        created_at=NOW,
                        updated_at=NOW,
                        **fields,
                    ),
                )
            )
        assert not self.contacts.save(changes).conflicts

    def get(self, email: str) -> Contact:
        contact = self.contacts.get("default", email)
        assert contact is not None
        return contact

    def drain(self) -> list[dict[str, Any]]:
        sqs = self.stack.client("sqs")
        out = []
        while True:
            got = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return out
            for m in got:
                out.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])

    def message(self, *emails: str, request_id: str = "req-1", **options: Any) -> str:
        return EnrichMessage(
            workspace="default", request_id=request_id, emails=list(emails), options=EnrichOptions(**options)
        ).model_dump_json()


def imported_event(emails: list[str], event_id: str = "e-1", batch: str | None = None) -> str:
    return json.dumps(
        {
            "version": "0",
            "id": event_id,
            "detail-type": "contacts.imported",
            "source": "leadpipe",
            "account": "123456789012",
            "time": "2026-11-24T09:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": {"workspace": "default", "source": "api", "job_id": "imp_x", "emails": emails}
            | ({"batch": batch} if batch else {}),
        }
    )


def test_imported_contacts_are_enriched_with_provenance_and_published_by_quality(stack: Stack, bus_tap: Any) -> None:
    world = World(stack, [registry(), people()])
    world.add("ann@acme.com", "bob@acme.com", first_name=None)
    report = world.service.handle_message(imported_event(["ann@acme.com", "bob@acme.com"]), budget=BUDGET)
    assert report is not None and sorted(report.enriched) == ["ann@acme.com", "bob@acme.com"]

    ann = world.get("ann@acme.com")
    assert ann.status is PipelineStatus.ENRICHED and ann.status_reason is None
    assert ann.lifecycle is LifecycleStage.VERIFIED  # a valid email at confidence 0.95
    title = ann.enrichment["title"]
    assert (title.value, title.provider, title.confidence) == ("CTO", "people", 0.95)
    assert ann.enrichment["industry"].provider == "registry"
    assert ann.enrichment["company_country"].value == "France"
    assert ann.quality is not None and ann.quality >= 0.7
    assert ann.enrichment_meta is not None
    assert ann.enrichment_meta.request_id == "evt-e-1"
    assert ann.enrichment_meta.sources_asked == ["registry", "people"]
    assert ann.enrichment_meta.below_threshold is False

    bob = world.get("bob@acme.com")
    assert bob.status is PipelineStatus.ENRICHED and bob.status_reason == "below_threshold"
    assert bob.quality is not None and bob.quality < 0.7
    assert bob.enrichment_meta is not None and bob.enrichment_meta.below_threshold
    assert bob.lifecycle is LifecycleStage.ENRICHED

    events = [e for e in bus_tap.drain() if e["detail-type"] == "contacts.enriched"]
    assert [e["detail"] for e in events] == [
        {"workspace": "default", "request_id": "evt-e-1", "emails": ["ann@acme.com"]}
    ]
    counts = world.contacts.counts("default")
    assert counts["enriched"] == 2 and counts["enriching"] == 0


def test_a_redelivered_request_changes_nothing(stack: Stack, bus_tap: Any) -> None:
    provider = people()
    world = World(stack, [provider])
    world.add("ann@acme.com")
    world.service.handle_message(world.message("ann@acme.com"), budget=BUDGET)
    before = world.get("ann@acme.com")
    report = world.service.handle_message(world.message("ann@acme.com"), budget=BUDGET)
    assert report is not None and report.already_done == ["ann@acme.com"] and report.enriched == []
    assert provider.person_calls == [["ann@acme.com"]]
    assert world.get("ann@acme.com").version == before.version


def test_an_import_chunk_published_again_after_a_crash_is_recognised_as_done(stack: Stack) -> None:
    provider = people()
    world = World(stack, [provider])
    world.add("ann@acme.com", "bob@acme.com")
    first = world.service.handle_message(imported_event(["ann@acme.com"], "e-1", batch="r62.0"), budget=BUDGET)
    assert first is not None and first.request_id == "imp-imp_x-r62.0" and first.enriched == ["ann@acme.com"]
    synced = world.get("ann@acme.com").model_copy(update={"status": PipelineStatus.SYNCED})
    assert not world.contacts.save([ContactChange(world.get("ann@acme.com"), synced)]).conflicts  # synced since
    # the replayed chunk publishes the same batch in a new event: nothing is enriched or counted again
    again = world.service.handle_message(imported_event(["ann@acme.com"], "e-2", batch="r62.0"), budget=BUDGET)
    assert again is not None and again.already_done == ["ann@acme.com"] and again.enriched == []
    assert provider.person_calls == [["ann@acme.com"]] and world.get("ann@acme.com").status is PipelineStatus.SYNCED
    # another chunk (or an event without a batch) is another request
    other = world.service.handle_message(imported_event(["ann@acme.com"], "e-3", batch="r122.0"), budget=BUDGET)
    assert other is not None and other.enriched == ["ann@acme.com"]


def test_two_deliveries_of_one_request_side_by_side_enrich_and_count_each_contact_once(
    stack: Stack, bus_tap: Any
) -> None:
    """A replayed import chunk's event (or a duplicate) delivered beside the first: delivery B takes the contacts
    while A asks the providers; A writes first. B leaves A's contacts as they are (one of them already synced) and
    counts none of them."""
    world = World(stack, [people()])
    world.add("ann@acme.com", "bob@acme.com")
    original = world.service.providers
    nested: list[Any] = []

    def providers_of_b(ws: str, budget: Budget) -> ProviderSet:
        if not nested:  # B has taken the contacts (`enriching`); now A runs from start to end, then B goes on
            world.service.providers = original
            nested.append(world.service.handle_message(imported_event(emails, "e-1", batch="r2.0"), budget=BUDGET))
            ann = world.get("ann@acme.com")  # A's contact moves on before B writes
            assert not world.contacts.save(
                [ContactChange(ann, ann.model_copy(update={"status": PipelineStatus.SYNCED}))]
            ).conflicts
        return original(ws, budget)

    emails = ["ann@acme.com", "bob@acme.com"]
    bus_tap.drain()
    world.service.providers = providers_of_b
    b = world.service.handle_message(imported_event(emails, "e-2", batch="r2.0"), budget=BUDGET)
    [a] = nested
    assert a is not None and sorted(a.enriched) == emails and a.already_done == []
    assert b is not None and b.enriched == [] and b.published == [] and sorted(b.already_done) == emails
    assert world.get("ann@acme.com").status is PipelineStatus.SYNCED  # not put back to `enriched` by B
    assert world.get("bob@acme.com").status is PipelineStatus.ENRICHED
    published = [e for e in bus_tap.drain() if e["detail-type"] == "contacts.enriched"]
    assert sorted(email for e in published for email in e["detail"]["emails"]) == sorted(a.published)  # A's only


def test_within_the_cache_ttl_a_new_request_makes_no_provider_call(stack: Stack) -> None:
    reg, ppl = registry(), people()
    world = World(stack, [reg, ppl])
    world.add("ann@acme.com", "bob@acme.com")
    world.service.handle_message(world.message("ann@acme.com", "bob@acme.com"), budget=BUDGET)
    calls = (len(reg.company_calls), len(ppl.person_calls))
    world.now = NOW + timedelta(days=6)
    world.service.handle_message(world.message("ann@acme.com", "bob@acme.com", request_id="req-2"), budget=BUDGET)
    assert (len(reg.company_calls), len(ppl.person_calls)) == calls
    ann = world.get("ann@acme.com")
    assert ann.enrichment_meta is not None and ann.enrichment_meta.cache_hits == 2  # its company and itself
    # After the cache days, providers are asked again; without the cache option, at once.
    world.service.handle_message(world.message("ann@acme.com", request_id="req-3", cache=False), budget=BUDGET)
    assert len(ppl.person_calls) == calls[1] + 1


def test_suppressed_and_do_not_enrich_contacts_never_reach_a_provider(stack: Stack) -> None:
    provider = people()
    world = World(stack, [provider])
    world.add("ann@acme.com", "bob@acme.com")
    world.add("carl@acme.com", do_not_enrich=True)
    world.suppression.add("default", "bob@acme.com", "erased")
    report = world.service.handle_message(world.message("ann@acme.com", "bob@acme.com", "carl@acme.com"), budget=BUDGET)
    assert report is not None
    assert report.skipped == {"bob@acme.com": "suppressed: erased", "carl@acme.com": "do_not_enrich"}
    assert provider.asked_people == ["ann@acme.com"]
    bob = world.get("bob@acme.com")
    assert bob.status is PipelineStatus.SKIPPED and bob.status_reason == "suppressed: erased"
    assert bob.enrichment == {}


def test_every_provider_failing_fails_the_contact_then_the_schedule_retries_it(stack: Stack) -> None:
    down = people()
    down.error = ProviderError("people", "server_error", "HTTP 503", status=503)
    world = World(stack, [down])
    world.add("ann@acme.com")
    report = world.service.handle_message(world.message("ann@acme.com"), budget=BUDGET)
    assert report is not None and report.failed == ["ann@acme.com"]
    ann = world.get("ann@acme.com")
    assert ann.status is PipelineStatus.FAILED
    assert ann.failure is not None
    assert (ann.failure.stage, ann.failure.attempts) == ("enrich", 1)
    assert ann.failure.next_retry_at == NOW + timedelta(hours=1)
    assert "people: server_error" in ann.failure.error

    assert world.service.requeue_due("default") is None  # not due yet
    world.now = NOW + timedelta(minutes=61)
    queued = world.service.requeue_due("default")
    assert queued is not None and queued.queued == 1
    [message] = world.drain()
    assert message["type"] == "enrich.request" and message["emails"] == ["ann@acme.com"]
    down.error = None  # the provider recovered
    world.service.handle_message(json.dumps(message), budget=BUDGET)
    ann = world.get("ann@acme.com")
    assert ann.status is PipelineStatus.ENRICHED and ann.failure is None


def test_an_unexpected_error_marks_the_contacts_failed_and_reaches_sqs(stack: Stack) -> None:
    broken = people()
    broken.error = RuntimeError("provider adapter bug")  # type: ignore[assignment]
    world = World(stack, [broken])
    world.add("ann@acme.com")
    with pytest.raises(RuntimeError, match="adapter bug"):
        world.service.handle_message(world.message("ann@acme.com"), budget=BUDGET)
    ann = world.get("ann@acme.com")
    assert ann.status is PipelineStatus.FAILED and ann.failure is not None
    assert "RuntimeError: provider adapter bug" in ann.failure.error


def test_stale_enriching_contacts_are_requeued(stack: Stack) -> None:
    world = World(stack, [people()])
    world.add("ann@acme.com", status=PipelineStatus.ENRICHING)
    world.now = NOW + timedelta(minutes=30)
    assert world.service.requeue_due("default") is None
    world.now = NOW + timedelta(minutes=61)
    queued = world.service.requeue_due("default")
    assert queued is not None and queued.queued == 1


class SlowAsync(AsyncProvider):
    info = ProviderInfo(
        name="slowco",
        person_fields={"phone": 0.9},
        batch_size=250,
        rate_limit=RateLimit(100, 1),
        asynchronous=True,
        needs_key=False,
    )
    poll_interval_seconds = 1.0  # also the poll message's SQS delay

    def __init__(self) -> None:
        self.ready = False
        self.submitted: list[list[str]] = []

    def submit(self, queries: Sequence[PersonQuery]) -> str:
        self.submitted.append([q.email for q in queries])
        return "dc-42"

    def poll(self, request_id: str, queries: Sequence[PersonQuery]) -> list[Answer] | None:
        if not self.ready:
            return None
        return [Answer(Kind.PERSON, q.email, True, {"phone": "+33 6 12 34 56 78"}) for q in queries]


def test_an_async_batch_still_pending_is_collected_by_a_later_message(stack: Stack) -> None:
    slow = SlowAsync()
    world = World(stack, [people(), slow])
    left = {"s": 1.5}  # enough for the synchronous calls and one poll, not two

    def sleep(seconds: float) -> None:
        left["s"] -= seconds

    world.service.sleep = sleep
    world.add("ann@acme.com")
    budget = Budget(lambda: left["s"], margin=0)
    report = world.service.handle_message(world.message("ann@acme.com"), budget=budget)
    assert report is not None and report.pending == ["ann@acme.com"]
    ann = world.get("ann@acme.com")
    assert ann.status is PipelineStatus.ENRICHED and ann.enrichment_meta is not None
    assert ann.enrichment_meta.pending == ["slowco"] and "phone" not in ann.enrichment
    assert world.drain() == []  # the poll message is delayed by the provider's poll interval
    time.sleep(1.1)
    [poll] = world.drain()
    assert poll["type"] == "enrich.poll" and poll["provider_request_id"] == "dc-42" and poll["attempt"] == 1

    assert world.service.handle_message(json.dumps(poll), budget=budget) is None  # still working
    time.sleep(1.1)
    [again] = world.drain()
    assert again["attempt"] == 2
    slow.ready = True
    world.service.handle_message(json.dumps(again), budget=budget)
    ann = world.get("ann@acme.com")
    assert ann.enrichment["phone"].value == "+33 6 12 34 56 78" and ann.enrichment["phone"].provider == "slowco"
    assert ann.enrichment["title"].value == "CTO"  # the synchronous answers came back from the cache
    assert ann.enrichment_meta is not None and ann.enrichment_meta.pending == []
    assert slow.submitted == [["ann@acme.com"]]  # never submitted twice


def test_unknown_messages_are_errors(stack: Stack) -> None:
    from leadpipe.errors import BadRequest

    world = World(stack, [])
    for body in ("not json", "[]", '{"type": "nope"}', '{"detail-type": "contacts.deleted", "source": "leadpipe"}'):
        with pytest.raises(BadRequest):
            world.service.handle_message(body, budget=BUDGET)


def test_requests_are_queued_100_contacts_per_message(stack: Stack) -> None:
    world = World(stack, [])
    emails = [f"p{i}@acme.com" for i in range(250)] + ["p0@acme.com"]
    queued = queue_enrichment(stack.client("sqs"), world.queue_url, "default", emails, EnrichOptions(min_quality=0.5))
    assert (queued.queued, queued.messages) == (250, 3)
    messages = world.drain()
    assert sorted(len(m["emails"]) for m in messages) == [50, 100, 100]
    assert {m["request_id"] for m in messages} == {queued.request_id}
    assert {m["options"]["min_quality"] for m in messages} == {0.5}


# ------------------------------------------------------------------------------------------------ the cache


def test_cache_ttls_expiry_and_batching(stack: Stack) -> None:
    now = {"t": NOW}
    cache = EnrichmentCache(
        stack.client("dynamodb"), stack.ref("EnrichCacheTable"), ttl_days=30, miss_ttl_days=7, clock=lambda: now["t"]
    )
    answers = [
        Answer(Kind.COMPANY, f"d{i}.com", i % 2 == 0, {"industry": "software"} if i % 2 == 0 else {})
        for i in range(130)
    ]
    cache.put_many("registry", answers)
    assert cache.calls["BatchWriteItem"] == 6  # 25 per call
    got = cache.get_many("registry", Kind.COMPANY, [f"d{i}.com" for i in range(131)])
    assert len(got) == 130 and cache.calls["BatchGetItem"] == 2  # 100 per call
    assert got["d0.com"].found and got["d0.com"].fields == {"industry": "software"} and not got["d1.com"].found
    assert cache.get_many("other", Kind.COMPANY, ["d0.com"]) == {}  # per provider
    assert cache.get_many("registry", Kind.PERSON, ["d0.com"]) == {}  # per kind
    now["t"] = NOW + timedelta(days=8)  # misses expired (7 days), answers not (30)
    later = cache.get_many("registry", Kind.COMPANY, ["d0.com", "d1.com"])
    assert list(later) == ["d0.com"]
    now["t"] = NOW + timedelta(days=31)
    assert cache.get_many("registry", Kind.COMPANY, ["d0.com"]) == {}  # DynamoDB's TTL lags; readers check
    cache.delete_keys(["registry"], Kind.COMPANY, ["d0.com"])
    now["t"] = NOW
    assert "d0.com" not in cache.get_many("registry", Kind.COMPANY, ["d0.com"])


def test_intelligence_is_added_only_when_asked_and_never_costs_the_enrichment(stack: Stack) -> None:
    from leadpipe.enrichment.intelligence import Intelligence
    from leadpipe_local.fakes.llm import FakeLlm

    with FakeLlm() as llm:
        world = World(stack, [registry(), people()])
        world.service.intelligence = lambda budget: Intelligence(
            "sk-test-fake-llm-key-0001", base_url=llm.url, budget=budget, sleep=lambda s: None
        )
        world.add("ann@acme.com", "bob@acme.com")
        world.service.handle_message(world.message("ann@acme.com"), budget=BUDGET)
        assert world.get("ann@acme.com").intelligence is None and llm.calls() == []  # not asked for

        world.service.handle_message(
            world.message("ann@acme.com", "bob@acme.com", request_id="req-llm", includeIntelligence=True),
            budget=BUDGET,
        )
        ann = world.get("ann@acme.com")
        assert ann.intelligence is not None and ann.intelligence.pain_points and ann.intelligence.hooks
        assert len(llm.calls("chat/completions")) == 1  # both contacts in one request
        body = llm.calls("chat/completions")[0].body
        assert b"@" not in body and b"acme.com" not in body  # no email reaches the LLM

        llm.inject(Fault(status=401, body={"error": {"message": "bad key", "code": "invalid_api_key"}}, times=1))
        world.service.handle_message(
            world.message("bob@acme.com", request_id="req-llm-2", includeIntelligence=True), budget=BUDGET
        )
        bob = world.get("bob@acme.com")
        assert bob.status is PipelineStatus.ENRICHED and bob.enrichment_meta is not None
        assert bob.enrichment_meta.request_id == "req-llm-2"  # enriched anyway; only the insights were lost
