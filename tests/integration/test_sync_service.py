"""The sync service against moto and the local HubSpot fake (over real HTTP on 127.0.0.1)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from leadpipe.contacts import ContactChange, ContactRepository
from leadpipe.enrichment.http import Budget
from leadpipe.enrichment.keys import ProviderKeys
from leadpipe.events import EventPublisher
from leadpipe.hubspot import sync as sync_module
from leadpipe.hubspot.client import HubSpotClient
from leadpipe.hubspot.mapping import LEADPIPE_PROPERTIES, PropertyMapping
from leadpipe.hubspot.sync import SyncService
from leadpipe.models import (
    Contact,
    EnrichmentMeta,
    FieldValue,
    PipelineStatus,
    SyncMessage,
    SyncOptions,
)
from leadpipe.settings import Settings
from leadpipe.workspaces import SyncSettings, WorkspaceRepository, WorkspaceSettings
from leadpipe_local.fakes.base import Fault
from leadpipe_local.fakes.hubspot import FakeHubSpot
from tests.conftest import Stack

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
BUDGET = Budget()


def fv(value: object, provider: str = "sample", confidence: float = 0.9) -> FieldValue:
    return FieldValue(value=value, provider=provider, confidence=confidence, fetched_at=NOW)  # type: ignore[arg-type]


class World:
    def __init__(self, stack: Stack, hubspot: FakeHubSpot, token: str | None = "default") -> None:
        self.stack = stack
        self.fake = hubspot
        self.now = NOW
        ddb = stack.client("dynamodb")
        self.contacts = ContactRepository(ddb, stack.contacts_table)
        self.workspaces = WorkspaceRepository(ddb, stack.state_table)
        self.queue_url = stack.ref("SyncQueue")
        self.slept: list[float] = []
        env = {"HUBSPOT_TOKEN": hubspot.token if token == "default" else (token or "")}
        self.service = SyncService(
            contacts=self.contacts,
            dynamodb=ddb,
            state_table=stack.state_table,
            publisher=EventPublisher(stack.client("events"), stack.bus),
            sqs=stack.client("sqs"),
            settings=Settings(
                contacts_table=stack.contacts_table,
                state_table=stack.state_table,
                event_bus_name=stack.bus,
                sync_queue_url=self.queue_url,
                auto_sync_after_enrich=True,  # the rule's contacts.enriched events are synced
            ),
            keys=ProviderKeys(None, env=env),
            workspaces=self.workspaces,
            hubspot=lambda tok, burst, budget: HubSpotClient(
                tok, base_url=hubspot.url, burst_limit=burst, budget=budget, sleep=self.slept.append
            ),
            clock=lambda: self.now,
        )

    def add(self, email: str, *, request: str = "enr-1", **fields: Any) -> None:
        domain = fields.pop("domain", email.split("@")[1])
        contact = Contact(
            workspace="default",
            email=email,
            email_domain=email.split("@")[1],
            domain=domain,
            status=fields.pop("status", PipelineStatus.ENRICHED),
            created_at=NOW,
            updated_at=NOW,
            quality=0.81,
            enrichment=fields.pop(
                "enrichment",
                {
                    "title": fv("VP Sales", "apollo"),
                    "industry": fv("software"),
                    "seniority": fv("vp", "sample-web"),
                    "company_name": fv("Acme", "sample"),
                    "email_status": fv("valid", "hunter"),
                },
            ),
            enrichment_meta=EnrichmentMeta(request_id=request, enriched_at=NOW, sources_asked=["sample", "apollo"]),
            **fields,
        )
        assert not self.contacts.save([ContactChange(None, contact)]).conflicts

    def get(self, email: str) -> Contact:
        contact = self.contacts.get("default", email)
        assert contact is not None
        return contact

    def sync(self, *emails: str, request_id: str = "sync-1", options: SyncOptions | None = None) -> Any:
        message = SyncMessage(workspace="default", request_id=request_id, emails=list(emails), options=options)
        return self.service.handle_message(message.model_dump_json(), budget=BUDGET)

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(
            method, self.fake.url + path, headers={"Authorization": f"Bearer {self.fake.token}"}, timeout=10, **kwargs
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def hubspot_contact(self, contact_id: str, *props: str) -> dict[str, Any]:
        return self.api("GET", f"/crm/v3/objects/contacts/{contact_id}", params={"properties": ",".join(props)})[
            "properties"
        ]

    def requests(self) -> int:
        return len([r for r in self.fake.requests if not r.path.startswith("/_fake")])


def test_a_first_sync_creates_contacts_companies_associations_notes_and_properties(
    stack: Stack, hubspot: FakeHubSpot, bus_tap: Any
) -> None:
    world = World(stack, hubspot)
    world.add("ann@acme.com", first_name="Ann", last_name="Lee", title="Head of Sales")
    world.add("bob@acme.com", first_name="Bob")
    world.add("cy@beta.io", first_name="Cy", domain="beta.io")
    report = world.sync("ann@acme.com", "bob@acme.com", "cy@beta.io")
    assert sorted(report.created) == ["ann@acme.com", "bob@acme.com", "cy@beta.io"]
    assert (report.companies_created, report.associations, report.notes) == (2, 3, 3)
    assert report.failed == {} and report.mapping_problems == []

    ann = world.get("ann@acme.com")
    assert ann.status is PipelineStatus.SYNCED and ann.hubspot is not None
    assert ann.hubspot.contact_id and ann.hubspot.company_id and ann.hubspot.synced_at == NOW
    assert ann.hubspot.note_for == "enr-1" and ann.hubspot.request_id == "sync-1"
    props = world.hubspot_contact(
        ann.hubspot.contact_id,
        "email",
        "firstname",
        "lastname",
        "jobtitle",
        "leadpipe_quality_score",
        "leadpipe_seniority",
        "leadpipe_sources",
    )
    assert props["email"] == "ann@acme.com" and props["firstname"] == "Ann" and props["lastname"] == "Lee"
    assert props["jobtitle"] == "VP Sales"  # the confident enriched value
    assert props["leadpipe_quality_score"] == "0.81" and props["leadpipe_seniority"] == "vp"
    assert props["leadpipe_sources"] == "apollo;hunter;sample;sample-web"
    assert ann.hubspot.written["jobtitle"] == "VP Sales"
    bob = world.get("bob@acme.com")
    assert bob.hubspot is not None and bob.hubspot.company_id == ann.hubspot.company_id  # one company per domain

    names = {p["name"]: p for p in world.api("GET", "/crm/v3/properties/contacts")["results"]}
    assert names["leadpipe_quality_score"]["groupName"] == "leadpipe"
    associated = world.api("GET", f"/crm/v4/objects/contacts/{ann.hubspot.contact_id}/associations/companies")
    assert [r["toObjectId"] for r in associated["results"]] in ([int(ann.hubspot.company_id)], [ann.hubspot.company_id])
    notes = world.api("GET", f"/crm/v4/objects/contacts/{ann.hubspot.contact_id}/associations/notes")["results"]
    assert len(notes) == 1

    events = [e for e in bus_tap.drain() if e["detail-type"] == "contacts.synced"]
    assert sorted(events[0]["detail"]["emails"]) == ["ann@acme.com", "bob@acme.com", "cy@beta.io"]
    [log] = world.service.recent_log("default")
    assert (log["created"], log["failed"], log["companies_created"], log["notes"]) == (3, 0, 2, 3)
    assert log["hubspot_calls"] == report.hubspot_calls > 0


def test_leadpipe_properties_are_created_in_one_batch_call_alongside_existing_ones(
    stack: Stack, hubspot: FakeHubSpot
) -> None:
    world = World(stack, hubspot)
    world.api("POST", "/crm/v3/properties/contacts/groups", json={"name": "leadpipe", "label": "leadpipe"})
    first = LEADPIPE_PROPERTIES[0]
    world.api("POST", "/crm/v3/properties/contacts", json={**first, "groupName": "leadpipe"})  # an older install's
    world.add("ann@acme.com", first_name="Ann")
    report = world.sync("ann@acme.com")
    assert report.synced == ["ann@acme.com"] and not report.mapping_problems
    calls = [(r.method, r.path) for r in hubspot.requests if r.path.startswith("/crm/v3/properties")]
    assert calls[2:] == [  # after our own two setup calls: one read, the group (409: it exists), one batch
        ("GET", "/crm/v3/properties/contacts"),
        ("POST", "/crm/v3/properties/contacts/groups"),
        ("POST", "/crm/v3/properties/contacts/batch/create"),  # every missing property, in one call
        # a company to create: leadpipe's unique company key first (so creating companies is idempotent)
        ("GET", "/crm/v3/properties/companies"),
        ("POST", "/crm/v3/properties/companies/groups"),
        ("POST", "/crm/v3/properties/companies/batch/create"),
    ]
    key = world.api("GET", "/crm/v3/properties/companies/leadpipe_company_key")
    assert key["hasUniqueValue"] is True and key["groupName"] == "leadpipe"
    # Two containers creating at once: the one that loses gets 207 OBJECT_ALREADY_EXISTS, and counts them as there.
    new = {"name": "leadpipe_extra", "label": "extra", "type": "string", "fieldType": "text", "groupName": "leadpipe"}
    with HubSpotClient(hubspot.token, base_url=hubspot.url, budget=BUDGET) as client:
        assert client.create_properties("contacts", [{**first, "groupName": "leadpipe"}, new]) == {
            first["name"],
            "leadpipe_extra",
        }
    names = {p["name"] for p in world.api("GET", "/crm/v3/properties/contacts")["results"]}
    assert {p["name"] for p in LEADPIPE_PROPERTIES} <= names


def notes_of(world: World, contact_id: str) -> list[str]:
    found = world.api("GET", f"/crm/v4/objects/contacts/{contact_id}/associations/notes")["results"]
    return [str(n["toObjectId"]) for n in found]


def test_a_sync_that_died_after_creating_notes_does_not_create_them_again(stack: Stack, hubspot: FakeHubSpot) -> None:
    world = World(stack, hubspot)
    for email in ("ann@acme.com", "bob@acme.com"):
        world.add(email, first_name=email[:3].title())
    world.sync("ann@acme.com", "bob@acme.com")
    first = {e: world.get(e) for e in ("ann@acme.com", "bob@acme.com")}
    # The state an invocation leaves when it dies after HubSpot made the notes and before it recorded them: the
    # contacts still `syncing`, no note recorded. Ann is left that way; Bob is put back to `enriched` with no note
    # recorded, as a contact nobody was unsure about (the control: his note is made again, hers is not).
    for email, status in (("ann@acme.com", PipelineStatus.SYNCING), ("bob@acme.com", PipelineStatus.ENRICHED)):
        before = first[email]
        assert before.hubspot is not None and before.hubspot.note_for == "enr-1"
        after = before.model_copy(deep=True)
        after.status = status
        assert after.hubspot is not None
        after.hubspot.note_for = None
        after.hubspot.written_hash = None
        assert not world.contacts.save([ContactChange(before, after)]).conflicts
    # The redelivery comes after the attempt could have run (SYNC_INFLIGHT_SECONDS, 300) and settled (120 s): its
    # notes are there to be read. (Sooner, it might still be running: test_a_duplicate_beside_a_running_attempt...)
    world.now = NOW + timedelta(minutes=8)
    report = world.sync("ann@acme.com", "bob@acme.com", request_id="sync-2")
    assert sorted(report.synced) == ["ann@acme.com", "bob@acme.com"]
    ann, bob = world.get("ann@acme.com"), world.get("bob@acme.com")
    assert ann.hubspot is not None and bob.hubspot is not None
    assert len(notes_of(world, ann.hubspot.contact_id)) == 1  # read back, found by its marker, not made again
    assert len(notes_of(world, bob.hubspot.contact_id)) == 2
    assert ann.hubspot.note_for == bob.hubspot.note_for == "enr-1"
    [note] = world.api(
        "POST",
        "/crm/v3/objects/notes/batch/read",
        json={"inputs": [{"id": notes_of(world, ann.hubspot.contact_id)[0]}], "properties": ["hs_note_body"]},
    )["results"]
    assert note["properties"]["hs_note_body"].endswith("leadpipe enrichment enr-1")


def leave_syncing(world: World, email: str) -> Contact:
    """The state a sync attempt leaves while it runs (or when it dies): ``syncing``, nothing of it recorded yet."""
    before = world.get(email)
    after = before.model_copy(deep=True)
    after.status = PipelineStatus.SYNCING
    after.updated_at = world.now
    assert not world.contacts.save([ContactChange(before, after)]).conflicts
    return after


def test_a_duplicate_beside_a_running_attempt_makes_no_note_until_that_attempt_could_be_over(
    stack: Stack, hubspot: FakeHubSpot
) -> None:
    world = World(stack, hubspot)
    world.add("ann@acme.com", first_name="Ann")
    leave_syncing(world, "ann@acme.com")  # attempt A took Ann at NOW and is making her note
    world.now = NOW + timedelta(minutes=3)  # a duplicate delivery, 3 minutes into A (the function may run 5)
    early = world.sync("ann@acme.com")
    assert "may still be on its way" in early.failed["ann@acme.com"] and early.notes == 0
    assert early.counts()["synced"] == 0 and early.counts()["failed"] == 1
    waiting = world.get("ann@acme.com")
    assert waiting.status is PipelineStatus.FAILED and waiting.failure is not None
    assert waiting.failure.attempts == 0 and waiting.failure.next_retry_at == world.now + timedelta(minutes=15)
    assert not [r for r in hubspot.requests if r.path.startswith("/crm/v3/objects/notes")]
    world.now = NOW + timedelta(minutes=16)  # the sync retry: A is long over, its notes settled; none was made
    report = world.sync("ann@acme.com", request_id="retry-1")
    ann = world.get("ann@acme.com")
    assert report.synced == ["ann@acme.com"] and report.notes == 1 and ann.hubspot is not None
    assert len(notes_of(world, ann.hubspot.contact_id)) == 1 and ann.hubspot.note_for == "enr-1"


def test_a_duplicate_that_read_the_contact_before_the_running_attempt_took_it_still_waits(
    stack: Stack, hubspot: FakeHubSpot, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World(stack, hubspot)
    world.add("ann@acme.com", first_name="Ann")
    stale = {"ann@acme.com": world.get("ann@acme.com")}  # B reads Ann `enriched` ...
    leave_syncing(world, "ann@acme.com")  # ... then A takes her (A is making her note now)
    first_read = iter([stale])
    original = world.contacts.batch_get
    monkeypatch.setattr(world.contacts, "batch_get", lambda ws, emails: next(first_read, None) or original(ws, emails))
    report = world.sync("ann@acme.com")
    # B's own `syncing` write lost to A's, read her again and replaced A's `syncing`: it waits, as if it had seen it
    assert "may still be on its way" in report.failed["ann@acme.com"] and report.notes == 0
    assert not [r for r in hubspot.requests if r.path.startswith("/crm/v3/objects/notes")]


def test_a_note_hubspot_refused_is_not_recorded_as_made_and_the_retry_makes_it(
    stack: Stack, hubspot: FakeHubSpot
) -> None:
    world = World(stack, hubspot)
    world.add("ann@acme.com", first_name="Ann")
    world.add("bob@acme.com", first_name="Bob")
    made = {"objectWriteTraceId": "0", "id": "9001", "properties": {}}
    refusal = {
        "status": "COMPLETE",
        "results": [],
        "numErrors": 1,
        "errors": [
            {
                "status": "error",
                "category": "VALIDATION_ERROR",
                "message": "Property values were not valid",
                "context": {"objectWriteTraceId": ["1"]},
            }
        ],
    }
    # HubSpot's 207: the first input (Ann's note) made, the second (Bob's) refused
    hubspot.inject(Fault(status=207, body=refusal | {"results": [made]}, times=1, path="/notes/batch/create"))
    report = world.sync("ann@acme.com", "bob@acme.com")
    assert report.synced == ["ann@acme.com"] and "Property values were not valid" in report.failed["bob@acme.com"]
    assert report.counts()["synced"] == 1 and report.counts()["failed"] == 1
    bob = world.get("bob@acme.com")
    assert bob.status is PipelineStatus.FAILED and bob.hubspot is not None and bob.hubspot.note_for is None
    assert world.get("ann@acme.com").hubspot.note_for == "enr-1"  # type: ignore[union-attr]
    world.now = NOW + timedelta(minutes=16)
    again = world.sync("bob@acme.com", request_id="retry-1")
    bob = world.get("bob@acme.com")
    assert again.synced == ["bob@acme.com"] and again.notes == 1 and bob.hubspot is not None
    assert len(notes_of(world, bob.hubspot.contact_id)) == 1 and bob.hubspot.note_for == "enr-1"


def test_a_note_create_answered_with_a_5xx_is_not_sent_again_and_counts_no_contact_synced(
    stack: Stack, hubspot: FakeHubSpot
) -> None:
    world = World(stack, hubspot)
    world.add("ann@acme.com", first_name="Ann")
    hubspot.inject(Fault(status=502, body={"message": "Bad Gateway"}, times=1, path="/notes/batch/create"))
    with pytest.raises(Exception, match="server_error: Bad Gateway"):
        world.sync("ann@acme.com")
    assert len([r for r in hubspot.requests if r.path == "/crm/v3/objects/notes/batch/create"]) == 1
    [log] = world.service.recent_log("default")
    assert (log["created"], log["failed"]) == (0, 1)  # its record was written, but the contact is not synced
    failed = world.get("ann@acme.com")
    assert failed.status is PipelineStatus.FAILED and failed.failure is not None and failed.failure.attempts == 1
    world.now = NOW + timedelta(minutes=16)
    report = world.sync("ann@acme.com", request_id="retry-1")
    ann = world.get("ann@acme.com")
    assert report.synced == ["ann@acme.com"] and ann.hubspot is not None
    assert len(notes_of(world, ann.hubspot.contact_id)) == 1  # read back (none there), then made once


def test_a_company_key_property_without_unique_values_gives_plain_creates_not_a_stuck_sync(
    stack: Stack, hubspot: FakeHubSpot
) -> None:
    world = World(stack, hubspot)
    world.api("POST", "/crm/v3/properties/companies/groups", json={"name": "leadpipe", "label": "leadpipe"})
    world.api(  # made by hand, without "unique values": every upsert by it would be refused
        "POST",
        "/crm/v3/properties/companies",
        json={
            "name": "leadpipe_company_key",
            "label": "key",
            "type": "string",
            "fieldType": "text",
            "groupName": "leadpipe",
        },
    )
    world.add("ann@acme.com", first_name="Ann")
    report = world.sync("ann@acme.com")
    ann = world.get("ann@acme.com")
    assert report.synced == ["ann@acme.com"] and ann.status is PipelineStatus.SYNCED
    assert ann.hubspot is not None and ann.hubspot.company_id and report.companies_created == 1
    assert not [r for r in hubspot.requests if r.path == "/crm/v3/objects/companies/batch/upsert"]


def short_timeouts(world: World) -> World:
    """The HubSpot client gives up after 0.5 s (a `timeout` fault of 1 s then outlasts it)."""
    world.service.hubspot = lambda tok, burst, budget: HubSpotClient(
        tok, base_url=world.fake.url, burst_limit=burst, budget=budget, sleep=world.slept.append, timeout=0.5
    )
    return world


def test_a_note_create_that_timed_out_is_not_sent_again_and_the_retry_makes_none_twice(
    stack: Stack, hubspot: FakeHubSpot
) -> None:
    world = short_timeouts(World(stack, hubspot))
    world.add("ann@acme.com", first_name="Ann")
    # HubSpot makes the note but answers after the client gave up
    hubspot.inject(Fault(timeout=1.0, times=1, path="/crm/v3/objects/notes/batch/create"))
    with pytest.raises(Exception, match="timeout"):
        world.sync("ann@acme.com")
    creates = [r for r in hubspot.requests if r.path == "/crm/v3/objects/notes/batch/create"]
    assert len(creates) == 1  # not retried: it may have been carried out
    failed = world.get("ann@acme.com")
    assert failed.status is PipelineStatus.FAILED and failed.failure is not None and failed.failure.stage == "sync"
    contact_id = world.api("GET", "/crm/v3/objects/contacts/ann@acme.com", params={"idProperty": "email"})["id"]
    # The message comes back at once (a concurrent duplicate, or a short visibility timeout), before HubSpot carried
    # out the create the client gave up on: a read-back now would find nothing, so the note is not made now.
    early = world.sync("ann@acme.com")
    assert "may still be on its way" in early.failed["ann@acme.com"] and early.notes == 0
    waiting = world.get("ann@acme.com").failure
    assert waiting is not None and waiting.attempts == 1 and waiting.next_retry_at  # the wait used up no attempt
    deadline = time.monotonic() + 10
    while not notes_of(world, contact_id):  # HubSpot carries out the create the client gave up on
        assert time.monotonic() < deadline, "the timed-out create was never carried out"
        time.sleep(0.05)
    world.now = NOW + timedelta(minutes=16)  # the sync retry, once the attempt settled
    world.sync("ann@acme.com")
    ann = world.get("ann@acme.com")
    assert ann.status is PipelineStatus.SYNCED and ann.hubspot is not None
    assert len(notes_of(world, ann.hubspot.contact_id)) == 1
    assert len([r for r in hubspot.requests if r.path == "/crm/v3/objects/notes/batch/create"]) == 1


def test_a_company_create_that_timed_out_is_sent_again_and_makes_one_company(
    stack: Stack, hubspot: FakeHubSpot
) -> None:
    world = short_timeouts(World(stack, hubspot))
    world.add("ann@acme.com", first_name="Ann")
    hubspot.inject(Fault(timeout=1.0, times=1, path="/crm/v3/objects/companies/batch/upsert"))
    report = world.sync("ann@acme.com")
    assert report.synced == ["ann@acme.com"]
    sent = [r for r in hubspot.requests if r.path == "/crm/v3/objects/companies/batch/upsert"]
    assert len(sent) == 2  # sent again: an upsert by leadpipe's unique company key is idempotent
    found = world.api(
        "POST",
        "/crm/v3/objects/companies/search",
        json={"filterGroups": [{"filters": [{"propertyName": "domain", "operator": "EQ", "value": "acme.com"}]}]},
    )
    assert found["total"] == 1
    assert world.get("ann@acme.com").hubspot.company_id == found["results"][0]["id"]  # type: ignore[union-attr]


def test_an_answer_cut_short_is_asked_for_again_unless_the_request_was_a_create(
    stack: Stack, hubspot: FakeHubSpot
) -> None:
    world = World(stack, hubspot)
    world.add("ann@acme.com", first_name="Ann")
    # the contacts read and the upsert each get a truncated 200 once: asked again, the sync goes through
    hubspot.inject(Fault(malformed=True, times=1, path="/crm/v3/objects/contacts/batch/read"))
    hubspot.inject(Fault(malformed=True, times=1, path="/crm/v3/objects/contacts/batch/upsert"))
    report = world.sync("ann@acme.com")
    assert report.synced == ["ann@acme.com"]
    assert len([r for r in hubspot.requests if r.path == "/crm/v3/objects/contacts/batch/read"]) == 2
    assert len([r for r in hubspot.requests if r.path == "/crm/v3/objects/contacts/batch/upsert"]) == 2
    # a create cut short is not sent again (it may have been carried out): the batch fails for a retry instead
    world.add("bob@acme.com", first_name="Bob")
    hubspot.inject(Fault(malformed=True, times=1, path="/crm/v3/objects/notes/batch/create"))
    with pytest.raises(Exception, match="not JSON"):
        world.sync("bob@acme.com", request_id="sync-2")
    assert len([r for r in hubspot.requests if r.path == "/crm/v3/objects/notes/batch/create"]) == 2  # Ann's, Bob's


def test_nothing_changed_means_no_hubspot_call_and_redelivery_is_a_no_op(stack: Stack, hubspot: FakeHubSpot) -> None:
    world = World(stack, hubspot)
    world.add("ann@acme.com", first_name="Ann")
    world.sync("ann@acme.com")
    before = world.requests()
    again = world.sync("ann@acme.com")  # the same message delivered twice
    assert again.already_done == ["ann@acme.com"]
    later = world.sync("ann@acme.com", request_id="sync-2")  # a new request, nothing new to write
    assert later.unchanged == ["ann@acme.com"] and later.hubspot_calls == 0
    assert world.requests() == before
    assert world.get("ann@acme.com").status is PipelineStatus.SYNCED


def test_a_persons_edit_survives_the_next_sync(stack: Stack, hubspot: FakeHubSpot) -> None:
    world = World(stack, hubspot)
    world.add("ann@acme.com", first_name="Ann")
    world.sync("ann@acme.com")
    contact_id = world.get("ann@acme.com").hubspot.contact_id  # type: ignore[union-attr]
    # a person edits a standard property and one of leadpipe's in HubSpot's UI
    httpx.patch(
        f"{hubspot.url}/_fake/contacts/{contact_id}",
        json={"properties": {"jobtitle": "Chief Revenue Officer", "leadpipe_seniority": "c_suite"}},
        timeout=10,
    ).raise_for_status()

    # new data for the contact: a phone number and a new enrichment with other values
    def refresh(email: str, c: Contact | None) -> Contact:
        assert c is not None
        after = c.model_copy(deep=True)
        after.phone = "+44 20 7946 0958"
        after.enrichment["title"] = fv("SVP Sales", "apollo")
        after.enrichment["seniority"] = fv("vp", "apollo", 0.95)
        after.enrichment_meta = EnrichmentMeta(request_id="enr-2", enriched_at=NOW, sources_asked=["apollo"])
        after.status = PipelineStatus.ENRICHED
        return after

    world.contacts.upsert("default", ["ann@acme.com"], refresh)
    report = world.sync("ann@acme.com", request_id="sync-2")
    assert report.updated == ["ann@acme.com"] and report.notes == 1  # a new enrichment: a new note
    props = world.hubspot_contact(contact_id, "jobtitle", "leadpipe_seniority", "phone")
    assert props["jobtitle"] == "Chief Revenue Officer"  # fill_empty: the person's value stays
    assert props["leadpipe_seniority"] == "c_suite"  # ours: changed by a person since leadpipe wrote it
    assert props["phone"] == "+44 20 7946 0958"  # empty in HubSpot: written
    notes = world.api("GET", f"/crm/v4/objects/contacts/{contact_id}/associations/notes")["results"]
    assert len(notes) == 2


def test_values_hubspot_already_holds_as_leadpipe_would_write_them_count_as_leadpipes(
    stack: Stack, hubspot: FakeHubSpot
) -> None:
    # HubSpot has the contact with exactly leadpipe's values (a sync whose state update was lost, a reinstall)
    world = World(stack, hubspot)
    world.add("bob@acme.com")
    world.sync("bob@acme.com", request_id="sync-0")  # the first sync of the portal creates leadpipe's properties
    world.api(
        "POST",
        "/crm/v3/objects/contacts",
        json={"properties": {"email": "ann@acme.com", "leadpipe_seniority": "vp", "jobtitle": "VP Sales"}},
    )
    world.add("ann@acme.com")
    first = world.sync("ann@acme.com", request_id="sync-1")
    assert first.synced == ["ann@acme.com"]
    ann = world.get("ann@acme.com")
    assert ann.hubspot and ann.hubspot.written["leadpipe_seniority"] == "vp"

    def promoted(email: str, c: Contact | None) -> Contact:
        assert c is not None
        after = c.model_copy(deep=True)
        after.enrichment["seniority"] = fv("director", "apollo", 0.95)
        after.status = PipelineStatus.ENRICHED
        return after

    world.contacts.upsert("default", ["ann@acme.com"], promoted)
    world.sync("ann@acme.com", request_id="sync-2")
    props = world.hubspot_contact(ann.hubspot.contact_id or "", "leadpipe_seniority", "jobtitle")
    assert props["leadpipe_seniority"] == "director"  # "ours": the value was leadpipe's, so the new one replaces it
    assert props["jobtitle"] == "VP Sales"


def test_a_207_fails_only_the_records_it_names(stack: Stack, hubspot: FakeHubSpot) -> None:
    world = World(stack, hubspot)
    for email in ("ann@acme.com", "bob@acme.com", "cy@acme.com"):
        world.add(email)
    body = {
        "status": "COMPLETE",
        "numErrors": 1,
        "results": [
            {
                "id": "9001",
                "properties": {"email": "ann@acme.com"},
                "new": True,
                "createdAt": "2026-11-24T10:00:00Z",
                "updatedAt": "2026-11-24T10:00:00Z",
                "archived": False,
            },
            {
                "id": "9002",
                "properties": {"email": "cy@acme.com"},
                "new": True,
                "createdAt": "2026-11-24T10:00:00Z",
                "updatedAt": "2026-11-24T10:00:00Z",
                "archived": False,
            },
        ],
        "errors": [
            {
                "status": "error",
                "category": "VALIDATION_ERROR",
                "message": "Property values were not valid: bob@acme.com",
                "context": {"id": ["bob@acme.com"]},
            }
        ],
        "startedAt": "2026-11-24T10:00:00Z",
        "completedAt": "2026-11-24T10:00:00Z",
    }
    hubspot.inject(Fault(status=207, body=body, times=1, path="contacts/batch/upsert"))
    report = world.sync(
        "ann@acme.com", "bob@acme.com", "cy@acme.com", options=SyncOptions(associate_company=False, log_activity=False)
    )
    assert sorted(report.created) == ["ann@acme.com", "cy@acme.com"] and list(report.failed) == ["bob@acme.com"]
    bob = world.get("bob@acme.com")
    assert bob.status is PipelineStatus.FAILED and bob.failure is not None
    assert (bob.failure.stage, bob.failure.attempts, bob.failure.next_retry_at) == (
        "sync",
        1,
        NOW + timedelta(minutes=15),
    )
    assert "VALIDATION_ERROR" in bob.failure.error
    assert world.get("ann@acme.com").status is PipelineStatus.SYNCED


def test_a_429_storm_is_ridden_out_without_losing_a_write(stack: Stack, hubspot: FakeHubSpot) -> None:
    world = World(stack, hubspot)
    world.add("ann@acme.com")
    storm = {
        "status": "error",
        "message": "You have reached your ten_secondly_rolling limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": "c0ffee",
        "policyName": "TEN_SECONDLY_ROLLING",
        "groupName": "api-calls",
    }
    hubspot.inject(
        Fault(status=429, body=storm, times=3, headers={"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"})
    )
    report = world.sync("ann@acme.com")
    assert report.created == ["ann@acme.com"] and report.throttled == 3
    assert world.slept[:3] == [2.0, 2.0, 2.0]


def test_hubspot_down_fails_the_batch_for_a_retry_and_the_schedule_requeues_it(
    stack: Stack, hubspot: FakeHubSpot
) -> None:
    world = World(stack, hubspot)
    world.add("ann@acme.com")
    hubspot.inject(Fault(status=503, body={"message": "down"}, times=50))
    with pytest.raises(Exception, match="server_error"):
        world.sync("ann@acme.com")
    ann = world.get("ann@acme.com")
    assert ann.status is PipelineStatus.FAILED and ann.failure is not None and ann.failure.stage == "sync"
    hubspot.clear_faults()
    assert world.service.requeue_due("default") is None
    world.now = NOW + timedelta(minutes=16)
    queued = world.service.requeue_due("default")
    assert queued is not None and queued.queued == 1
    sqs = stack.client("sqs")
    [message] = sqs.receive_message(QueueUrl=world.queue_url, MaxNumberOfMessages=10)["Messages"]
    world.service.handle_message(message["Body"], budget=BUDGET)
    assert world.get("ann@acme.com").status is PipelineStatus.SYNCED


def test_options_create_if_new_associate_company_and_log_activity(stack: Stack, hubspot: FakeHubSpot) -> None:
    world = World(stack, hubspot)
    world.add("ann@acme.com")
    report = world.sync("ann@acme.com", options=SyncOptions(create_if_new=False))
    assert report.skipped == {"ann@acme.com": "not in HubSpot, and createIfNew is off"}
    ann = world.get("ann@acme.com")
    assert ann.status is PipelineStatus.ENRICHED and ann.status_reason == "not in HubSpot, and createIfNew is off"
    assert ann.hubspot is not None and ann.hubspot.request_id == "sync-1" and ann.hubspot.contact_id is None
    report = world.sync(
        "ann@acme.com", request_id="sync-2", options=SyncOptions(associate_company=False, log_activity=False)
    )
    assert report.created == ["ann@acme.com"] and report.companies_created == 0 and report.notes == 0
    assert world.api("POST", "/crm/v3/objects/companies/search", json={"filterGroups": []})["total"] == 0


def test_an_existing_company_is_found_by_domain_and_the_map_is_remembered(stack: Stack, hubspot: FakeHubSpot) -> None:
    world = World(stack, hubspot)
    existing = world.api(
        "POST", "/crm/v3/objects/companies", json={"properties": {"name": "Acme", "domain": "acme.com"}}
    )
    world.add("ann@acme.com")
    report = world.sync("ann@acme.com")
    assert report.companies_created == 0
    assert world.get("ann@acme.com").hubspot.company_id == existing["id"]  # type: ignore[union-attr]
    world.add("bob@acme.com")
    searches = len(hubspot.calls("companies/search"))
    world.sync("bob@acme.com", request_id="sync-2")
    assert len(hubspot.calls("companies/search")) == searches  # the stored domain -> id map answered


def test_without_deduplicate_existing_companies_are_not_searched_for(stack: Stack, hubspot: FakeHubSpot) -> None:
    world = World(stack, hubspot)
    world.api("POST", "/crm/v3/objects/companies", json={"properties": {"name": "Acme", "domain": "acme.com"}})
    world.add("ann@acme.com")
    world.add("bob@acme.com")
    report = world.sync("ann@acme.com", "bob@acme.com", "ann@acme.com", options=SyncOptions(deduplicate=False))
    # repeated emails are still sent once (HubSpot refuses a batch naming one twice) ...
    assert sorted(report.created) == ["ann@acme.com", "bob@acme.com"] and report.failed == {}
    [upsert] = hubspot.calls("contacts/batch/upsert")
    assert len(json.loads(upsert.body)["inputs"]) == 2
    # ... but the company is created without looking for the one a person made: a first load into an empty portal
    assert hubspot.calls("companies/search") == [] and report.companies_created == 1
    assert world.api("POST", "/crm/v3/objects/companies/search", json={"filterGroups": []})["total"] == 2
    ann, bob = world.get("ann@acme.com"), world.get("bob@acme.com")
    assert ann.hubspot and bob.hubspot and ann.hubspot.company_id == bob.hubspot.company_id


def test_a_mapping_to_a_missing_property_is_reported_not_a_400(stack: Stack, hubspot: FakeHubSpot) -> None:
    world = World(stack, hubspot)
    settings = SyncSettings(
        mapping=[
            PropertyMapping(source="title", property="jobtitel"),
            PropertyMapping(source="first_name", property="firstname"),
        ]
    )
    world.workspaces.put(WorkspaceSettings(workspace="default", sync=settings))
    world.add("ann@acme.com", first_name="Ann")
    report = world.sync("ann@acme.com")
    assert report.created == ["ann@acme.com"]
    assert report.mapping_problems == [
        "title -> 'jobtitel': HubSpot has no contact property with that name; the field is not synced until "
        "the mapping or the portal is fixed"
    ]
    assert world.service.recent_log("default")[0]["mapping_problems"] == report.mapping_problems


def test_without_a_token_the_contacts_fail_with_a_clear_reason(stack: Stack, hubspot: FakeHubSpot) -> None:
    world = World(stack, hubspot, token=None)
    world.add("ann@acme.com")
    report = world.sync("ann@acme.com")
    ann = world.get("ann@acme.com")
    assert ann.status is PipelineStatus.FAILED and ann.failure is not None
    assert "no HubSpot access token" in ann.failure.error and report.hubspot_calls == 0
    assert ann.hubspot is not None and ann.hubspot.request_id == "sync-1"  # `leadpipe sync --wait` sees it finished


def test_enriched_events_and_unknown_messages(stack: Stack, hubspot: FakeHubSpot) -> None:
    from leadpipe.errors import BadRequest

    world = World(stack, hubspot)
    world.add("ann@acme.com")
    event = {
        "version": "0",
        "id": "ev-9",
        "detail-type": "contacts.enriched",
        "source": "leadpipe",
        "detail": {"workspace": "default", "request_id": "enr-1", "emails": ["ann@acme.com"]},
    }
    report = world.service.handle_message(json.dumps(event), budget=BUDGET)
    assert report.created == ["ann@acme.com"] and world.get("ann@acme.com").hubspot.request_id == "evt-ev-9"  # type: ignore[union-attr]
    for body in ("nope", "{}", '{"type": "sync.other"}'):
        with pytest.raises(BadRequest):
            world.service.handle_message(body, budget=BUDGET)


# ---------------------------------------------------------------------- two syncs meeting the same new company


def search_hook(world: World, before_answer: Any) -> None:
    """Run ``before_answer()`` inside ``world``'s next company search, after HubSpot answered it: another sync
    acting between this one's search and its creation of the missing companies."""
    factory = world.service.hubspot

    def make(token: str, burst: int, budget: Budget) -> HubSpotClient:
        client = factory(token, burst, budget)
        search = client.companies_by_domain

        def searched(domains: Any) -> dict[str, str]:
            found = search(domains)
            before_answer()
            return found

        client.companies_by_domain = searched  # type: ignore[method-assign]
        return client

    world.service.hubspot = make


def companies_named(world: World, domain: str) -> int:
    body = {"filterGroups": [{"filters": [{"propertyName": "domain", "operator": "EQ", "value": domain}]}]}
    return int(world.api("POST", "/crm/v3/objects/companies/search", json=body)["total"])


def test_two_syncs_meeting_a_new_domain_create_one_company(stack: Stack, hubspot: FakeHubSpot) -> None:
    first, second = World(stack, hubspot), World(stack, hubspot)
    first.add("ann@newco.io")
    first.add("bob@newco.io")
    # the second sync runs to the end between the first one's search and its creation of newco.io
    search_hook(first, lambda: second.sync("bob@newco.io", request_id="sync-b"))
    report = first.sync("ann@newco.io", request_id="sync-a")
    assert report.companies_created == 0 and report.failed == {}
    ann, bob = first.get("ann@newco.io"), first.get("bob@newco.io")
    assert ann.hubspot and bob.hubspot and ann.hubspot.company_id == bob.hubspot.company_id is not None
    assert companies_named(first, "newco.io") == 1


def test_a_company_still_being_created_elsewhere_fails_the_contact_for_a_retry(
    stack: Stack, hubspot: FakeHubSpot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sync_module, "CLAIM_WAIT_SECONDS", 1.0)
    world = World(stack, hubspot)
    world.add("ann@newco.io")
    claim = {"pk": {"S": "HC#default"}, "sk": {"S": "newco.io"}, "claim": {"S": "other"}}
    claim["claimed_at"] = {"N": str(int(NOW.timestamp()) - 10)}  # fresh: the other sync is at work
    search_hook(world, lambda: stack.client("dynamodb").put_item(TableName=stack.state_table, Item=claim))
    report = world.sync("ann@newco.io")
    assert report.synced == [] and report.companies_created == 0
    assert "still being created by another sync" in report.failed["ann@newco.io"]
    ann = world.get("ann@newco.io")
    assert ann.status is PipelineStatus.FAILED and ann.hubspot and ann.hubspot.contact_id is None
    assert companies_named(world, "newco.io") == 0
    # a claim abandoned for longer than CLAIM_STALE_SECONDS is taken over: the retry creates the company
    world.now = NOW + timedelta(minutes=16)
    retry = world.sync("ann@newco.io", request_id="sync-2")
    assert retry.companies_created == 1 and retry.failed == {}
    assert companies_named(world, "newco.io") == 1
    assert world.get("ann@newco.io").status is PipelineStatus.SYNCED


def test_messages_group_contacts_by_domain(stack: Stack, hubspot: FakeHubSpot) -> None:
    from leadpipe.hubspot.sync import MESSAGE_EMAILS, queue_sync

    emails = [f"p{i}@d{i % 7}.com" for i in range(1_200)]
    queued = queue_sync(stack.client("sqs"), stack.ref("SyncQueue"), "default", emails + emails[:5], None, "r-1")
    assert (queued.queued, queued.messages) == (1_200, 3)
    sqs = stack.client("sqs")
    bodies = []
    while len(bodies) < 3:
        got = sqs.receive_message(QueueUrl=stack.ref("SyncQueue"), MaxNumberOfMessages=10)
        bodies += [json.loads(m["Body"]) for m in got.get("Messages", [])]
    sent = [e for body in sorted(bodies, key=lambda b: b["emails"][0].split("@")[1]) for e in body["emails"]]
    assert sorted(sent) == sorted(emails) and max(len(b["emails"]) for b in bodies) == MESSAGE_EMAILS
    assert all(len({e.split("@")[1] for e in b["emails"]}) <= 4 for b in bodies)  # ~171 contacts per domain
