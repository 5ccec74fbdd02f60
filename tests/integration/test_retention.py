"""The retention purge against moto: the enrichment index, what is purged and what is kept, the cache, the quality
score, and the function's events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadpipe.contacts import (
    RETENTION_INDEX,
    ContactChange,
    ContactRepository,
    contact_to_item,
    enrichment_since,
)
from leadpipe.enrichment.cache import EnrichmentCache, cache_key
from leadpipe.enrichment.fields import Kind
from leadpipe.enrichment.http import Budget
from leadpipe.enrichment.keys import ProviderKeys
from leadpipe.enrichment.merge import IMPORT_RELIABILITY, quality
from leadpipe.enrichment.registry import ProviderSet
from leadpipe.enrichment.service import EnrichService
from leadpipe.errors import BadRequest
from leadpipe.events import EventPublisher
from leadpipe.models import (
    Conflict,
    Contact,
    EnrichMessage,
    FieldValue,
    Insight,
    PipelineStatus,
    iso,
)
from leadpipe.retention import RetentionService, purge_contact
from leadpipe.settings import Settings
from leadpipe.suppression import SuppressionList
from tests.conftest import Stack
from tests.scripted import ScriptedProvider

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
BUDGET = Budget()

COMPANIES = {"acme.com": {"company_name": "Acme", "industry": "software", "employee_range": "51-200"}}
PEOPLE = {
    "ann@acme.com": {"title": "CTO", "first_name": "Ann", "email_status": "valid"},
    "bob@acme.com": {"title": "CFO", "first_name": "Bob", "email_status": "valid"},
}


class World:
    """Contacts enriched by the real enrich service (waterfall, cache) with scripted providers and a movable clock."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.now = T0
        self.ddb = stack.client("dynamodb")
        self.cache_table = stack.ref("EnrichCacheTable")
        self.contacts = ContactRepository(self.ddb, stack.contacts_table)
        self.registry = ScriptedProvider(
            "registry",
            companies=COMPANIES,
            company_fields={"company_name": 0.95, "industry": 0.9, "employee_range": 0.9},
        )
        self.people = ScriptedProvider(
            "people", people=PEOPLE, person_fields={"title": 0.95, "first_name": 0.95, "email_status": 0.95}
        )
        settings = Settings(
            contacts_table=stack.contacts_table,
            state_table=stack.state_table,
            event_bus_name=stack.bus,
            enrich_queue_url=stack.ref("EnrichQueue"),
            enrich_cache_table=self.cache_table,
            min_quality=0.5,
        )
        self.enricher = EnrichService(
            contacts=self.contacts,
            cache=EnrichmentCache(self.ddb, self.cache_table, clock=lambda: self.now),
            publisher=EventPublisher(stack.client("events"), stack.bus),
            sqs=stack.client("sqs"),
            settings=settings,
            keys=ProviderKeys(None),
            suppression=SuppressionList(self.ddb, stack.state_table, "test-salt"),
            providers=lambda ws, budget: ProviderSet([self.registry, self.people], {}),
            clock=lambda: self.now,
            sleep=lambda s: None,
        )
        self.retention = RetentionService(self.contacts, cache_table=self.cache_table, clock=lambda: self.now)

    def add(self, *emails: str, workspace: str = "default", **fields: Any) -> None:
        changes = [
            ContactChange(
                None,
                Contact(
                    workspace=workspace,
                    email=e,
                    email_domain=e.split("@")[1],
                    domain=e.split("@")[1],
                    created_at=self.now,
                    updated_at=self.now,
                    **fields,
                ),
            )
            for e in emails
        ]
        assert not self.contacts.save(changes).conflicts

    def enrich(self, *emails: str, request_id: str, workspace: str = "default") -> None:
        message = EnrichMessage(workspace=workspace, request_id=request_id, emails=list(emails))
        report = self.enricher.enrich(message, BUDGET)
        assert sorted(report.enriched) == sorted(emails)

    def get(self, email: str, workspace: str = "default") -> Contact:
        contact = self.contacts.get(workspace, email)
        assert contact is not None
        return contact

    def raw(self, email: str, workspace: str = "default") -> dict[str, Any]:
        key = {"pk": {"S": f"C#{workspace}#{email}"}, "sk": {"S": "C"}}
        return dict(self.ddb.get_item(TableName=self.stack.contacts_table, Key=key)["Item"])

    def cached(self, provider: str, kind: Kind, key: str) -> bool:
        item = self.ddb.get_item(TableName=self.cache_table, Key={"pk": {"S": cache_key(provider, kind, key)}})
        return "Item" in item

    def index(self) -> list[str]:
        """Every gsi5sk in the retention index."""
        keys: list[str] = []
        for shard in range(16):
            response = self.ddb.query(
                TableName=self.stack.contacts_table,
                IndexName=RETENTION_INDEX,
                KeyConditionExpression="gsi5pk = :p",
                ExpressionAttributeValues={":p": {"S": f"P#{shard}"}},
            )
            keys.extend(i["gsi5sk"]["S"] for i in response["Items"])
        return sorted(keys)


@pytest.fixture
def world(stack: Stack) -> World:
    return World(stack)


def test_the_index_holds_each_contact_by_its_oldest_enrichment_data(world: World) -> None:
    world.add("ann@acme.com", "bob@acme.com", first_name="Ann")
    assert world.index() == []  # imported, nothing enriched: not in the sparse index
    world.enrich("ann@acme.com", request_id="r1")
    world.now = T0 + timedelta(days=3)
    world.enrich("bob@acme.com", request_id="r2")
    # Bob's company answer came from the cache, with the provider's time: his oldest data is as old as Ann's
    assert world.index() == [f"{iso(T0)}#default#ann@acme.com", f"{iso(T0)}#default#bob@acme.com"]
    assert world.get("bob@acme.com").enrichment["title"].fetched_at == T0 + timedelta(days=3)
    raw = world.raw("ann@acme.com")
    assert raw["gsi5pk"]["S"].startswith("P#") and raw["gsi5sk"]["S"] == f"{iso(T0)}#default#ann@acme.com"
    assert "gsi5pk" not in world.get("ann@acme.com").model_dump()  # index keys never leak into the model


def test_the_oldest_time_counts_values_insights_and_provider_agreement_with_own_values() -> None:
    def value(provider: str, at: datetime, **kw: Any) -> FieldValue:
        return FieldValue(value="x", provider=provider, confidence=0.9, fetched_at=at, **kw)

    contact = Contact(workspace="w", email="a@b.co", email_domain="b.co", created_at=T0 - timedelta(days=900))
    assert enrichment_since(contact) is None
    contact.enrichment = {"first_name": value("import", contact.created_at)}  # own value, no provider involved
    assert enrichment_since(contact) is None and "gsi5pk" not in contact_to_item(contact)
    contact.enrichment["title"] = value("people", T0)
    assert enrichment_since(contact) == T0
    contact.intelligence = Insight(model="m", generated_at=T0 - timedelta(days=2))
    assert enrichment_since(contact) == T0 - timedelta(days=2)
    # providers agreed with an own value: it ages from that enrichment's time (without one, from the value's own)
    contact.enrichment["first_name"] = value("import", contact.created_at, agreed_by=["people"])
    assert enrichment_since(contact) == contact.created_at
    item = contact_to_item(contact)
    assert item["gsi5sk"]["S"] == f"{iso(contact.created_at)}#w#a@b.co"


def test_old_values_go_fresh_ones_stay_and_quality_follows(world: World) -> None:
    world.add("ann@acme.com", "bob@acme.com", first_name="Ann")
    world.enrich("ann@acme.com", request_id="r1")
    world.now = T0 + timedelta(days=400)
    world.enrich("bob@acme.com", request_id="r2", workspace="default")
    ann_before, bob_before = world.get("ann@acme.com"), world.get("bob@acme.com")
    assert ann_before.enrichment["title"].provider == "people" and ann_before.quality is not None
    assert ann_before.enrichment["first_name"].agreed_by == ["import"]  # the provider and the file agree

    report = world.retention.run({"detail-type": "Scheduled Event", "source": "aws.events"}, retention_days=365)

    assert (report.contacts_checked, report.contacts_purged) == (1, 1)
    ann = world.get("ann@acme.com")
    # provider values are gone; the contact's own first name stays, without the provider's agreement
    assert set(ann.enrichment) == {"first_name"}
    own = ann.enrichment["first_name"]
    assert (own.value, own.provider, own.agreed_by, own.conflicts) == ("Ann", "import", [], [])
    assert own.confidence == IMPORT_RELIABILITY
    assert (report.values_purged, report.own_values_kept) == (len(ann_before.enrichment), 1)
    assert ann.quality == quality(ann.enrichment) and ann.quality < (ann_before.quality or 0)
    # status stays (it records what happened); the below-threshold flag and reason follow the new score
    assert ann.status is PipelineStatus.ENRICHED and ann.lifecycle is ann_before.lifecycle
    assert ann.enrichment_meta is not None and ann.enrichment_meta.below_threshold is True
    assert ann.status_reason == "below_threshold"
    assert ann.first_name == "Ann" and ann.email == "ann@acme.com"  # the contact's own data is not enrichment
    # nothing old is left on her: she left the index; Bob, enriched 400 days later, is untouched
    assert "gsi5pk" not in world.raw("ann@acme.com")
    assert world.index() == [f"{iso(T0 + timedelta(days=400))}#default#bob@acme.com"]
    assert world.get("bob@acme.com").version == bob_before.version
    # the counters follow too (the summary's facets count providers of kept values only)
    totals = world.contacts.counter_totals("default")
    assert totals.get("f:provider:people", 0) == 1  # Bob's


def test_a_value_refreshed_from_the_cache_keeps_its_age_and_is_purged(world: World) -> None:
    world.add("ann@acme.com")
    world.enrich("ann@acme.com", request_id="r1")
    calls = len(world.people.person_calls)
    world.now = T0 + timedelta(days=20)  # inside the 30-day cache: a re-enrichment asks no provider
    world.enrich("ann@acme.com", request_id="r2")
    assert len(world.people.person_calls) == calls
    ann = world.get("ann@acme.com")
    assert ann.enrichment_meta is not None and ann.enrichment_meta.enriched_at == world.now
    assert ann.enrichment["title"].fetched_at == T0  # the provider's time, not the refresh's
    assert world.cached("people", Kind.PERSON, "ann@acme.com") and world.cached("registry", Kind.COMPANY, "acme.com")

    report = world.retention.purge(T0 + timedelta(days=10))

    assert report.contacts_purged == 1 and "title" not in world.get("ann@acme.com").enrichment
    # the cache entries behind the purged values, written before the cutoff, are gone too
    assert report.cache_entries_purged == 2
    assert not world.cached("people", Kind.PERSON, "ann@acme.com")
    assert not world.cached("registry", Kind.COMPANY, "acme.com")
    # a new lawful enrichment asks the provider again: fresh data, not purged by the same cutoff
    world.now = T0 + timedelta(days=21)
    world.enrich("ann@acme.com", request_id="r3")
    assert len(world.people.person_calls) == calls + 1
    assert world.get("ann@acme.com").enrichment["title"].fetched_at == world.now
    again = world.retention.purge(T0 + timedelta(days=10))
    assert (again.contacts_checked, again.contacts_purged, again.cache_entries_purged) == (0, 0, 0)


def test_an_old_insight_is_purged_and_a_fresh_one_kept(world: World) -> None:
    world.add("ann@acme.com", "bob@acme.com")
    world.enrich("ann@acme.com", "bob@acme.com", request_id="r1")

    def with_insight(email: str, at: datetime) -> None:
        def mutate(e: str, c: Contact | None) -> Contact | None:
            assert c is not None
            after = c.model_copy(deep=True)
            after.intelligence = Insight(pain_points=["p"], hooks=["h"], model="m", generated_at=at)
            return after

        world.contacts.upsert("default", [email], mutate)

    world.now = T0 + timedelta(days=50)
    with_insight("ann@acme.com", T0 + timedelta(days=1))
    with_insight("bob@acme.com", T0 + timedelta(days=40))
    purged = purge_contact(world.get("bob@acme.com"), T0 + timedelta(days=30), world.now)
    assert purged is not None and not purged.insight and purged.contact.intelligence is not None

    report = world.retention.purge(T0 + timedelta(days=30))

    assert report.insights_purged == 1
    assert world.get("ann@acme.com").intelligence is None
    bob = world.get("bob@acme.com")
    assert bob.intelligence is not None and bob.enrichment == {}  # his values were older; his insight is not
    assert world.index() == [f"{iso(T0 + timedelta(days=40))}#default#bob@acme.com"]


def test_a_workspace_can_be_purged_alone_and_a_fresh_contact_is_left_unchanged(world: World) -> None:
    world.add("ann@acme.com")
    world.add("ann@acme.com", workspace="other")
    world.enrich("ann@acme.com", request_id="r1")
    world.enrich("ann@acme.com", request_id="r1", workspace="other")
    world.now = T0 + timedelta(days=2)

    report = world.retention.run({"cutoff": iso(T0 + timedelta(days=1)), "workspace": "other"}, retention_days=365)

    assert (report.workspace, report.contacts_checked, report.contacts_purged) == ("other", 1, 1)
    assert world.get("ann@acme.com", "other").enrichment == {}
    assert world.get("ann@acme.com").enrichment != {}
    # a contact the index lists but that is fresh by the time it is read (re-enriched meanwhile) is not written
    before = world.get("ann@acme.com")
    world.retention._purge_page("default", ["ann@acme.com"], T0 - timedelta(days=1), report)
    assert world.get("ann@acme.com").version == before.version


def test_the_budget_stops_a_run_which_the_next_one_completes(world: World) -> None:
    world.add("ann@acme.com", "bob@acme.com")
    world.enrich("ann@acme.com", "bob@acme.com", request_id="r1")
    world.now = T0 + timedelta(days=400)
    spent = world.retention.run({"retention_days": 30}, retention_days=0, budget=Budget(lambda: 0.0, margin=1.0))
    assert spent.more is True and spent.contacts_purged == 0
    done = world.retention.run({"retention_days": 30}, retention_days=0)
    assert (done.more, done.contacts_purged) == (False, 2)
    assert world.index() == []


def test_the_schedule_with_retention_off_purges_nothing(world: World) -> None:
    world.add("ann@acme.com")
    world.enrich("ann@acme.com", request_id="r1")
    world.now = T0 + timedelta(days=4000)
    report = world.retention.run({"detail-type": "Scheduled Event", "source": "aws.events"}, retention_days=0)
    assert report.disabled is True and report.as_dict()["cutoff"] is None
    assert world.get("ann@acme.com").enrichment != {}


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"cutoff": "2099-01-01T00:00:00Z"}, "cutoff is in the future"),
        ({"cutoff": "2026-01-01T00:00:00"}, "cutoff needs a time zone"),
        ({"retention_days": 0}, "retention_days: Input should be greater than or equal to 1"),
        ({"retention_days": 5, "cutoff": "2026-01-01T00:00:00Z"}, "not both"),
        ({"workspace": "No Such/Workspace"}, "workspace: String should match pattern"),
        ({"retension_days": 5}, "retension_days: Extra inputs are not permitted"),
        (["not", "an", "object"], "must be a JSON object"),
    ],
)
def test_a_manual_invocation_with_a_bad_event_is_refused_with_the_reason(
    world: World, event: Any, message: str
) -> None:
    with pytest.raises(BadRequest) as caught:
        world.retention.run(event, retention_days=365)
    assert message in caught.value.message


def test_a_purged_field_falls_back_to_the_contacts_own_value_even_one_that_lost_the_merge() -> None:
    old = T0 - timedelta(days=500)
    contact = Contact(
        workspace="w", email="a@b.co", email_domain="b.co", title="Chief Tech", created_at=old, updated_at=old
    )
    contact.enrichment = {
        "title": FieldValue(
            value="CTO",
            provider="people",
            confidence=0.46,
            fetched_at=old,
            conflicts=[Conflict(value="Chief Tech", provider="import")],
        ),
        "industry": FieldValue(value="software", provider="registry", confidence=0.9, fetched_at=old),
    }
    contact.quality = quality(contact.enrichment)
    purged = purge_contact(contact, T0, T0)
    assert purged is not None and (purged.values, purged.own) == (2, 1)
    assert purged.providers == {"people", "registry"}
    title = purged.contact.enrichment["title"]
    assert (title.value, title.provider, title.confidence, title.conflicts) == ("Chief Tech", "import", 0.7, [])
    assert "industry" not in purged.contact.enrichment
    assert purged.contact.quality == quality(purged.contact.enrichment)
    assert enrichment_since(purged.contact) is None  # nothing left to purge: out of the index
    assert purge_contact(purged.contact, T0, T0) is None
