"""Re-import of HubSpot changes (ChangeService) against moto and the HubSpot fake over real HTTP."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from leadpipe.changes import reimport
from leadpipe.changes.reimport import ChangeService
from leadpipe.enrichment.cache import EnrichmentCache
from leadpipe.enrichment.fields import Kind
from leadpipe.enrichment.keys import ProviderKeys
from leadpipe.enrichment.providers.base import Answer
from leadpipe.events import EventPublisher
from leadpipe.hubspot.client import HubSpotClient
from leadpipe.models import ChangeMessage, ObjectChange, PipelineStatus
from leadpipe.settings import Settings
from leadpipe.workspaces import HubSpotSettings, WorkspaceRepository
from leadpipe_local.fakes.hubspot import FakeHubSpot
from tests.conftest import Stack
from tests.integration.test_sync_service import BUDGET, NOW, World

APP_ID = 9001  # the fake's app: its API writes come back as INTEGRATION from this app


class Changes:
    def __init__(self, world: World, stack: Stack, hubspot: FakeHubSpot) -> None:
        self.world = world
        self.fake = hubspot
        self.stack = stack
        ddb = stack.client("dynamodb")
        self.queue_url = stack.ref("ChangeQueue")
        self.cache = EnrichmentCache(ddb, stack.ref("EnrichCacheTable"))
        self.settings = Settings(
            contacts_table=stack.contacts_table,
            state_table=stack.state_table,
            event_bus_name=stack.bus,
            change_queue_url=self.queue_url,
            enrich_providers="sample,apollo",
        )
        self.workspaces = WorkspaceRepository(
            ddb, stack.state_table, default_hubspot=HubSpotSettings(portal_id=hubspot.portal_id, app_id=APP_ID)
        )
        self.service = ChangeService(
            contacts=world.contacts,
            dynamodb=ddb,
            state_table=stack.state_table,
            publisher=EventPublisher(stack.client("events"), stack.bus),
            sqs=stack.client("sqs"),
            settings=self.settings,
            keys=ProviderKeys(None, env={"HUBSPOT_TOKEN": hubspot.token}),
            workspaces=self.workspaces,
            cache=self.cache,
            hubspot=lambda tok, burst, budget: HubSpotClient(
                tok, base_url=hubspot.url, burst_limit=burst, budget=budget, sleep=lambda s: None
            ),
            clock=lambda: NOW,
        )

    def edit(self, contact_id: str, **props: str) -> None:
        """A person edits the contact in HubSpot's UI."""
        response = httpx.patch(f"{self.fake.url}/_fake/contacts/{contact_id}", json={"properties": props}, timeout=10)
        response.raise_for_status()

    def send(self, *changes: ObjectChange, attempt: int = 1) -> Any:
        message = ChangeMessage(workspace="default", origin="webhook", changes=list(changes), attempt=attempt)
        return self.service.handle_message(message.model_dump_json(), budget=BUDGET)

    def hubspot_calls(self) -> int:
        return len([r for r in self.fake.requests if not r.path.startswith("/_fake")])


def change(object_id: str, prop: str | None = None, value: str | None = None, **kw: Any) -> ObjectChange:
    kw.setdefault("occurred_at", 1_700_000_000_000)
    kw.setdefault("change_source", "CRM_UI")
    return ObjectChange(object_id=object_id, property=prop, value=value, **kw)


@pytest.fixture
def loop(stack: Stack, hubspot: FakeHubSpot) -> tuple[World, Changes]:
    world = World(stack, hubspot)
    world.add("ann@acme.com", first_name="Ann", last_name="Lee", phone="+1 555 0100")
    world.add("bob@acme.com", first_name="Bob")
    world.sync("ann@acme.com", "bob@acme.com")
    return world, Changes(world, stack, hubspot)


def contact_id(world: World, email: str) -> str:
    ref = world.get(email).hubspot
    assert ref is not None and ref.contact_id
    return ref.contact_id


def imported_events(bus_tap: Any) -> list[list[str]]:
    return [e["detail"]["emails"] for e in bus_tap.drain() if e["detail-type"] == "contacts.imported"]


def test_a_persons_title_edit_is_taken_in_and_restarts_the_loop(loop: tuple[World, Changes], bus_tap: Any) -> None:
    world, changes = loop
    ann_id = contact_id(world, "ann@acme.com")
    bus_tap.drain()
    changes.edit(ann_id, jobtitle="Chief Revenue Officer")
    report = changes.send(change(ann_id, "jobtitle", "Chief Revenue Officer", dedupe_key="e1:s1:1"))
    assert report.restarted == ["ann@acme.com"] and not report.updated
    ann = world.get("ann@acme.com")
    assert ann.title == "Chief Revenue Officer" and ann.status is PipelineStatus.IMPORTED
    assert ann.status_reason == "changed in HubSpot"
    assert ann.hubspot is not None and ann.hubspot.observed["jobtitle"] == "Chief Revenue Officer"
    assert ann.sources[-1].source == "hubspot" and ann.sources[-1].effect == "updated"
    assert imported_events(bus_tap) == [["ann@acme.com"]]

    # The same edit seen again (a later poll): nothing new, nothing published.
    again = changes.send(change(ann_id, "jobtitle", "Chief Revenue Officer", dedupe_key="e2:s1:2"))
    assert again.unchanged == ["ann@acme.com"] and not again.restarted
    assert imported_events(bus_tap) == []


def test_a_phone_edit_only_updates_the_record(loop: tuple[World, Changes], bus_tap: Any) -> None:
    world, changes = loop
    ann_id = contact_id(world, "ann@acme.com")
    bus_tap.drain()
    changes.edit(ann_id, phone="+44 20 7946 0000")
    report = changes.send(change(ann_id, "phone", "+44 20 7946 0000"))
    assert report.updated == ["ann@acme.com"] and not report.restarted
    ann = world.get("ann@acme.com")
    assert ann.phone == "+44 20 7946 0000" and ann.status is PipelineStatus.SYNCED
    assert imported_events(bus_tap) == []


def test_our_own_writes_coming_back_are_dropped(loop: tuple[World, Changes], bus_tap: Any) -> None:
    world, changes = loop
    ann_id = contact_id(world, "ann@acme.com")
    bus_tap.drain()
    before = changes.hubspot_calls()
    # A webhook for leadpipe's own write: dropped without reading HubSpot.
    echo = change(ann_id, "firstname", "Ann", change_source="INTEGRATION", source_id=str(APP_ID))
    report = changes.send(echo)
    assert report.echoes == 1 and changes.hubspot_calls() == before
    # A poll finds the same record (no change source): its values are what leadpipe wrote, so nothing changes.
    polled = changes.send(ObjectChange(object_id=ann_id, occurred_at=1))
    assert polled.unchanged == ["ann@acme.com"]
    assert world.get("ann@acme.com").status is PipelineStatus.SYNCED
    assert imported_events(bus_tap) == []


def test_a_repeated_delivery_is_processed_once(loop: tuple[World, Changes]) -> None:
    world, changes = loop
    ann_id = contact_id(world, "ann@acme.com")
    changes.edit(ann_id, jobtitle="COO")
    event = change(ann_id, "jobtitle", "COO", dedupe_key="101:3100001:1700000000000")
    first = changes.send(event)
    assert first.restarted == ["ann@acme.com"]
    calls = changes.hubspot_calls()
    second = changes.send(event)  # HubSpot retried the delivery
    assert second.duplicates == 1 and not second.restarted and changes.hubspot_calls() == calls


def test_out_of_order_events_end_on_hubspots_latest_value(loop: tuple[World, Changes]) -> None:
    world, changes = loop
    ann_id = contact_id(world, "ann@acme.com")
    changes.edit(ann_id, jobtitle="VP Sales")
    changes.edit(ann_id, jobtitle="CRO")
    newer = change(ann_id, "jobtitle", "CRO", occurred_at=2_000, dedupe_key="2:1:2000")
    older = change(ann_id, "jobtitle", "VP Sales", occurred_at=1_000, dedupe_key="1:1:1000")
    changes.send(newer)
    changes.send(older)  # arrives late: the record is read from HubSpot, which says CRO
    assert world.get("ann@acme.com").title == "CRO"


def test_a_person_undoing_their_edit_back_to_what_leadpipe_wrote_is_taken_in(
    loop: tuple[World, Changes], bus_tap: Any
) -> None:
    world, changes = loop
    ann_id = contact_id(world, "ann@acme.com")
    ann = world.get("ann@acme.com")
    assert ann.hubspot is not None and ann.hubspot.written["firstname"] == "Ann"  # leadpipe wrote it
    bus_tap.drain()
    changes.edit(ann_id, firstname="Annie")
    assert changes.send(change(ann_id, "firstname", "Annie", dedupe_key="1:1:1000")).restarted == ["ann@acme.com"]
    assert world.get("ann@acme.com").first_name == "Annie"
    # The person puts the name back (the event after the first was handled, before any sync): HubSpot's latest
    # value is the one leadpipe wrote there once, but it is the person's now, not leadpipe's write coming back.
    changes.edit(ann_id, firstname="Ann")
    undone = changes.send(change(ann_id, "firstname", "Ann", dedupe_key="2:1:2000"))
    assert undone.restarted == ["ann@acme.com"]
    ann = world.get("ann@acme.com")
    assert ann.first_name == "Ann" and ann.hubspot is not None and ann.hubspot.observed["firstname"] == "Ann"
    assert imported_events(bus_tap) == [["ann@acme.com"], ["ann@acme.com"]]
    # Seen again (a retried delivery under another key, a poll): nothing new.
    again = changes.send(change(ann_id, "firstname", "Ann", dedupe_key="3:1:2000"))
    assert again.unchanged == ["ann@acme.com"] and imported_events(bus_tap) == []


def test_a_value_a_person_put_there_then_deleted_is_deleted_here_too(loop: tuple[World, Changes]) -> None:
    world, changes = loop
    ann_id = contact_id(world, "ann@acme.com")
    changes.edit(ann_id, city="Lisbon")  # leadpipe never wrote a city
    changes.send(change(ann_id, "city", "Lisbon", dedupe_key="1:1:1000"))
    assert world.get("ann@acme.com").city == "Lisbon"
    changes.edit(ann_id, city="")
    report = changes.send(change(ann_id, "city", "", dedupe_key="2:1:2000"))
    assert report.updated == ["ann@acme.com"]
    ann = world.get("ann@acme.com")
    assert ann.city is None and ann.hubspot is not None and ann.hubspot.observed["city"] == ""
    # and a title leadpipe wrote, changed by a person, then deleted: gone here too
    changes.edit(ann_id, jobtitle="CRO")
    changes.send(change(ann_id, "jobtitle", "CRO", dedupe_key="3:1:3000"))
    changes.edit(ann_id, jobtitle="")
    changes.send(change(ann_id, "jobtitle", "", dedupe_key="4:1:4000"))
    assert world.get("ann@acme.com").title is None


def test_deletion_erases_the_contact_and_its_cached_answers(loop: tuple[World, Changes]) -> None:
    world, changes = loop
    bob_id = contact_id(world, "bob@acme.com")
    answer = Answer(kind=Kind.PERSON, key="bob@acme.com", found=True, fields={"title": "x"}, fetched_at=NOW)
    changes.cache.put_many("sample", [answer])
    assert changes.cache.get_many("sample", Kind.PERSON, ["bob@acme.com"])
    report = changes.send(change(bob_id, kind="deletion"))
    assert report.deleted == ["bob@acme.com"]
    assert world.contacts.get("default", "bob@acme.com") is None
    assert changes.cache.get_many("sample", Kind.PERSON, ["bob@acme.com"]) == {}
    assert world.contacts.get("default", "ann@acme.com") is not None  # nobody else
    assert changes.service.suppression is None or not changes.service.suppression.suppressed(
        "default", ["bob@acme.com"]
    )


def test_a_privacy_deletion_also_suppresses_the_person(loop: tuple[World, Changes]) -> None:
    from leadpipe.suppression import SuppressionList

    world, changes = loop
    suppression = SuppressionList(changes.stack.client("dynamodb"), changes.stack.state_table, "test-salt")
    changes.service.suppression = suppression
    bob_id = contact_id(world, "bob@acme.com")
    report = changes.send(change(bob_id, kind="deletion", privacy=True))
    assert report.deleted == ["bob@acme.com"]
    assert suppression.suppressed("default", ["bob@acme.com", "ann@acme.com"]) == {"bob@acme.com": "erased"}


def test_a_contact_created_in_hubspot_is_imported(loop: tuple[World, Changes], bus_tap: Any) -> None:
    world, changes = loop
    created = world.api(
        "POST",
        "/crm/v3/objects/contacts",
        json={"properties": {"email": "Dee@Gamma.io", "firstname": "Dee", "jobtitle": "CTO", "website": "gamma.io"}},
    )
    bus_tap.drain()
    report = changes.send(change(str(created["id"]), kind="change", change_source="CRM_UI"))
    assert report.created == ["dee@gamma.io"]
    dee = world.get("dee@gamma.io")
    assert (dee.first_name, dee.title, dee.domain, dee.status) == ("Dee", "CTO", "gamma.io", PipelineStatus.IMPORTED)
    assert dee.hubspot is not None and dee.hubspot.contact_id == str(created["id"])
    assert imported_events(bus_tap) == [["dee@gamma.io"]]


def test_an_email_changed_in_hubspot_moves_the_contact(loop: tuple[World, Changes]) -> None:
    world, changes = loop
    bob_id = contact_id(world, "bob@acme.com")
    changes.edit(bob_id, email="robert@acme.com")
    report = changes.send(change(bob_id, "email", "robert@acme.com"))
    assert report.restarted == ["robert@acme.com"]
    assert world.contacts.get("default", "bob@acme.com") is None
    robert = world.get("robert@acme.com")
    assert robert.first_name == "Bob" and robert.hubspot is not None and robert.hubspot.contact_id == bob_id
    assert robert.status_reason == "email changed in HubSpot (was bob@acme.com)"


def test_a_contact_being_synced_is_looked_at_again_later(
    loop: tuple[World, Changes], monkeypatch: pytest.MonkeyPatch
) -> None:
    world, changes = loop
    sent: list[tuple[list[str], int]] = []
    real_send = reimport.send_batch

    def spy(sqs: Any, url: str, bodies: list[str], delay: int = 0) -> int:
        sent.append((bodies, delay))
        return real_send(sqs, url, bodies, delay)

    monkeypatch.setattr(reimport, "send_batch", spy)
    ann_id = contact_id(world, "ann@acme.com")
    world.contacts.upsert(
        "default",
        ["ann@acme.com"],
        lambda e, c: c.model_copy(update={"status": PipelineStatus.SYNCING}) if c else None,
    )
    changes.edit(ann_id, jobtitle="COO")
    report = changes.send(change(ann_id, "jobtitle", "COO"))
    assert report.deferred == [ann_id] and not report.restarted
    [([body], delay)] = sent
    retry = json.loads(body)
    assert delay == 60 and retry["attempt"] == 2 and [c["object_id"] for c in retry["changes"]] == [ann_id]
    attributes = changes.stack.client("sqs").get_queue_attributes(
        QueueUrl=changes.queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"  # on ChangeQueue, invisible for a minute
    # After the last deferral the change is taken in whatever the status.
    late = changes.send(change(ann_id, "jobtitle", "COO"), attempt=5)
    assert late.restarted == ["ann@acme.com"]


def test_a_bad_message_is_refused_clearly(loop: tuple[World, Changes]) -> None:
    _, changes = loop
    from leadpipe.errors import BadRequest

    with pytest.raises(BadRequest, match="unrecognised ChangeQueue message"):
        changes.service.handle_message('{"type": "change.batch", "changes": []}', budget=BUDGET)
