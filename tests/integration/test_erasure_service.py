"""Erasure (DELETE /contacts/{email}) against moto and the HubSpot fake: every store emptied, counters right, DLQ
messages removed or rewritten while the others stay, idempotent; and every consumer refusing the erased email
afterwards (import, HubSpot import, HubSpot change re-import, enrichment, sync)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from leadpipe.changes.reimport import ChangeService
from leadpipe.contacts import ContactRepository
from leadpipe.deals.store import Deal, DealContact, DealRepository
from leadpipe.enrichment.cache import EnrichmentCache
from leadpipe.enrichment.fields import Kind
from leadpipe.enrichment.http import Budget
from leadpipe.enrichment.keys import ProviderKeys
from leadpipe.enrichment.providers.base import Answer
from leadpipe.erasure import REDACTED, ErasureReport, ErasureService, Verdict, scrub_message
from leadpipe.events import EventPublisher
from leadpipe.hubspot.client import HubSpotClient
from leadpipe.importer import ImportService
from leadpipe.jobs import JobRepository
from leadpipe.models import (
    ChangeMessage,
    EnrichMessage,
    ImportSource,
    Job,
    JobStatus,
    ObjectChange,
    SyncMessage,
)
from leadpipe.remote_import import make_reader
from leadpipe.settings import Settings
from leadpipe.suppression import SuppressionList
from leadpipe.workspaces import HubSpotSettings, WorkspaceRepository
from leadpipe_local.fakes.hubspot import FakeHubSpot
from tests.conftest import Stack
from tests.integration.test_importer import queued, run_queue

ANN, BOB = "ann@acme.com", "bob@acme.com"
HEADER = "Email,First Name,Company,Tags\n"
CSV = (
    HEADER
    + f"{ANN},Ann,Acme,vip\n"  # row 2
    + f"{BOB},Bob,Acme,vip\n"  # row 3
    + f"{ANN};{ANN},Ann,Acme,\n"  # row 4: an invalid email whose value holds Ann's
    + "not-an-email,Xavier,Acme,\n"  # row 5: someone else's invalid row
)
PROVIDERS = ["sample", "apollo", "hunter"]
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


class Harness:
    def __init__(self, stack: Stack, hubspot: FakeHubSpot) -> None:
        self.stack = stack
        self.fake = hubspot
        ddb = stack.client("dynamodb")
        self.ddb = ddb
        self.contacts = ContactRepository(ddb, stack.contacts_table)
        self.jobs = JobRepository(ddb, stack.state_table)
        self.cache = EnrichmentCache(ddb, stack.ref("EnrichCacheTable"))
        self.suppression = SuppressionList(ddb, stack.state_table, "test-salt")
        self.settings = Settings(
            contacts_table=stack.contacts_table,
            state_table=stack.state_table,
            uploads_bucket=stack.bucket,
            import_queue_url=stack.import_queue_url,
            event_bus_name=stack.bus,
            hubspot_base_url=hubspot.url,
            change_queue_url=stack.ref("ChangeQueue"),
            enrich_providers="sample,apollo",
        )
        self.keys = ProviderKeys(None, env={"HUBSPOT_TOKEN": hubspot.token})
        self.workspaces = WorkspaceRepository(
            ddb, stack.state_table, default_hubspot=HubSpotSettings(portal_id=hubspot.portal_id)
        )
        queued(stack)  # S3's test event
        self.importer = ImportService(
            s3=stack.client("s3"),
            sqs=stack.client("sqs"),
            contacts=self.contacts,
            jobs=self.jobs,
            publisher=EventPublisher(stack.client("events"), stack.bus),
            settings=self.settings,
            readers=lambda job, budget: make_reader(
                job, budget, settings=self.settings, keys=self.keys, workspaces=self.workspaces
            ),
            suppression=self.suppression,
        )
        self.dlqs = {"enrich": stack.ref("EnrichDLQ"), "sync": stack.ref("SyncDLQ"), "change": stack.ref("ChangeDLQ")}
        self.service = self.erasure()

    def erasure(self, **overrides: Any) -> ErasureService:
        kwargs: dict[str, Any] = {
            "contacts": self.contacts,
            "jobs": self.jobs,
            "dynamodb": self.ddb,
            "state_table": self.stack.state_table,
            "cache": self.cache,
            "suppression": self.suppression,
            "providers": PROVIDERS,
            "s3": self.stack.client("s3"),
            "uploads_bucket": self.stack.bucket,
            "sqs": self.stack.client("sqs"),
            "dlqs": self.dlqs,
            "hubspot": lambda ws: HubSpotClient(self.fake.token, base_url=self.fake.url, sleep=lambda s: None),
            **overrides,
        }
        return ErasureService(**kwargs)

    def import_csv(self, text: str, name: str = "people.csv") -> Job:
        job = self.importer.start_from_body("default", text.encode(), name)
        run_queue(self.importer, self.stack)
        return self.jobs.require("default", job.job_id)

    def file_exists(self, key: str) -> bool:
        try:
            self.stack.client("s3").head_object(Bucket=self.stack.bucket, Key=key)
        except ClientError:
            return False
        return True

    def send(self, queue: str, body: Any) -> None:
        text = body if isinstance(body, str) else json.dumps(body)
        self.stack.client("sqs").send_message(QueueUrl=self.dlqs[queue], MessageBody=text)

    def bodies(self, queue: str) -> list[Any]:
        """Every message of a DLQ (received, then made visible again)."""
        sqs = self.stack.client("sqs")
        got: list[dict[str, Any]] = []
        while True:
            page = sqs.receive_message(QueueUrl=self.dlqs[queue], MaxNumberOfMessages=10, VisibilityTimeout=30)
            if not page.get("Messages"):
                break
            got.extend(page["Messages"])
        for message in got:
            sqs.change_message_visibility(
                QueueUrl=self.dlqs[queue], ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        return sorted((json.loads(m["Body"]) for m in got), key=json.dumps)

    def hubspot_create(self, email: str) -> str:
        answer = httpx.post(
            f"{self.fake.url}/crm/v3/objects/contacts",
            json={"properties": {"email": email, "firstname": email.split("@", maxsplit=1)[0].title()}},
            headers={"Authorization": f"Bearer {self.fake.token}"},
            timeout=10,
        )
        answer.raise_for_status()
        return str(answer.json()["id"])


@pytest.fixture
def h(stack: Stack, hubspot: FakeHubSpot) -> Harness:
    return Harness(stack, hubspot)


def enrich(emails: list[str], workspace: str = "default", request_id: str = "r1") -> dict[str, Any]:
    return json.loads(EnrichMessage(workspace=workspace, request_id=request_id, emails=emails).model_dump_json())


def seed_everything(h: Harness) -> dict[str, Any]:
    """Ann and Bob everywhere leadpipe keeps data: contacts (tagged), an import job with row errors and its file,
    the cache, the sync log, a closed deal, HubSpot, and messages in three DLQs."""
    job = h.import_csv(CSV)
    assert job.status is JobStatus.COMPLETED_WITH_ERRORS
    assert (job.counts.rows_read, job.counts.valid, job.counts.invalid, job.counts.imported) == (4, 2, 2, 2)
    assert [(e.row, e.code) for e in job.errors] == [(4, "invalid_email"), (5, "invalid_email")]
    assert ANN in (job.errors[0].value or "")

    h.cache.put_many(
        "sample",
        [
            Answer(Kind.PERSON, ANN, True, {"title": "CTO"}),
            Answer(Kind.PERSON, BOB, True, {"title": "CEO"}),
            Answer(Kind.COMPANY, "acme.com", True, {"industry": "software"}),
        ],
    )
    h.cache.put_many("apollo", [Answer.miss(Kind.PERSON, ANN)])  # a cached "not found" is about Ann too
    h.cache.put_many("hunter", [Answer(Kind.PERSON, ANN, True, {"email_status": "valid"})])

    h.ddb.put_item(
        TableName=h.stack.state_table,
        Item={
            "pk": {"S": "SL#default"},
            "sk": {"S": "2026-11-24T09:00:00Z#sync-1#abc123"},
            "request_id": {"S": "sync-1"},
            "errors": {
                "L": [
                    {"M": {"email": {"S": ANN}, "error": {"S": f"HubSpot refused {ANN}"}}},
                    {"M": {"email": {"S": BOB}, "error": {"S": "HubSpot refused it"}}},
                ]
            },
        },
    )
    DealRepository(h.ddb, h.stack.state_table).put_deals(
        [
            Deal(
                workspace="default",
                deal_id="d1",
                name="Acme renewal",
                pipeline="default",
                stage="closedwon",
                outcome="won",
                closed_at=NOW,
                run_id="run-1",
                enriched_at=NOW,
                contacts=[
                    DealContact(hubspot_id="11", email=ANN, name="Ann", title="CTO", role="decision_maker"),
                    DealContact(hubspot_id="12", email=BOB, name="Bob", title="CEO", role="champion"),
                ],
            )
        ]
    )
    hubspot_id = h.hubspot_create(ANN)

    h.send("enrich", enrich([ANN], request_id="alone"))  # about Ann alone: deleted
    h.send("enrich", enrich([ANN, BOB], request_id="both"))  # Ann and Bob: rewritten with Bob only
    h.send("enrich", enrich([ANN], workspace="other", request_id="other"))  # another workspace's Ann: kept
    h.send(  # an EventBridge event (the AutoEnrich rule's delivery) naming Ann alone: deleted
        "enrich",
        {
            "version": "0",
            "id": "e-1",
            "detail-type": "contacts.imported",
            "source": "leadpipe",
            "detail": {"workspace": "default", "source": "api", "job_id": job.job_id, "emails": [ANN]},
        },
    )
    h.send("sync", json.loads(SyncMessage(workspace="default", request_id="s1", emails=[BOB]).model_dump_json()))
    changes = ChangeMessage(
        workspace="default",
        origin="webhook",
        changes=[
            ObjectChange(object_id="11", property="email", value=ANN, occurred_at=1),  # names Ann: taken out
            ObjectChange(object_id="12", property="jobtitle", value="CEO", occurred_at=1),
        ],
    )
    h.send("change", json.loads(changes.model_dump_json()))
    return {"job": job, "hubspot_id": hubspot_id}


def test_erasure_empties_every_store_and_keeps_everyone_else(h: Harness) -> None:
    seeded = seed_everything(h)
    job: Job = seeded["job"]
    assert h.contacts.counts("default")["imported"] == 2
    assert h.file_exists(str(job.key))

    report = h.service.erase("default", ANN, hubspot=True)

    assert isinstance(report, ErasureReport)
    assert report.contact is True and report.suppressed is True and report.complete is True, report.notes
    assert (report.cache_entries, report.job_row_errors, report.source_files) == (3, 1, 1)
    assert (report.sync_log_errors, report.deal_contacts, report.dlq_messages) == (1, 1, 4)
    assert (report.hubspot.status, report.notes) == ("deleted", [])
    assert report.as_dict()["message"].startswith(f"{ANN} was erased")
    assert ANN not in json.dumps(report.counts())  # what is logged holds no email

    # the contact, its tag member item and its counter
    assert h.contacts.get("default", ANN) is None
    assert h.contacts.counts("default")["imported"] == 1
    assert [c.email for c in h.contacts.find("default", tag="vip").items] == [BOB]
    # the person's cache entries, every provider; Bob's and the company's stay
    for provider in PROVIDERS:
        assert h.cache.get_many(provider, Kind.PERSON, [ANN]) == {}
    assert list(h.cache.get_many("sample", Kind.PERSON, [BOB])) == [BOB]
    assert list(h.cache.get_many("sample", Kind.COMPANY, ["acme.com"])) == ["acme.com"]
    # the job: Ann's row error redacted, row and code kept, counts unchanged; Xavier's untouched
    after = h.jobs.require("default", job.job_id)
    assert after.counts == job.counts
    first, second = after.errors
    assert (first.row, first.field, first.code, first.message, first.value) == (
        4,
        "email",
        "invalid_email",
        REDACTED,
        None,
    )
    assert second == job.errors[1]
    assert ANN not in after.model_dump_json()
    # the finished job's source file
    assert not h.file_exists(str(job.key))
    # the sync log and the closed deal
    log = h.ddb.query(
        TableName=h.stack.state_table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "SL#default"}},
    )["Items"]
    assert ANN not in json.dumps(log) and BOB in json.dumps(log)
    [deal] = DealRepository(h.ddb, h.stack.state_table).deals("default")
    assert [c.email for c in deal.contacts] == [BOB]
    # HubSpot
    assert h.fake.get("contacts", seeded["hubspot_id"]) is None
    # the DLQs: Ann's messages gone, the shared one rewritten, the others as they were
    enrich_left = h.bodies("enrich")
    assert sorted((m["request_id"], m["workspace"], m["emails"]) for m in enrich_left) == [
        ("both", "default", [BOB]),
        ("other", "other", [ANN]),
    ]
    assert [m["emails"] for m in h.bodies("sync")] == [[BOB]]
    [change_left] = h.bodies("change")
    assert [c["object_id"] for c in change_left["changes"]] == ["12"]
    # the suppression list: only a salted hash
    assert h.suppression.suppressed("default", [ANN, BOB]) == {ANN: "erased"}
    items = h.ddb.query(
        TableName=h.stack.state_table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "S#default"}},
    )["Items"]
    assert len(items) == 1 and ANN not in json.dumps(items)


def test_repeating_the_erasure_is_harmless(h: Harness) -> None:
    seeded = seed_everything(h)
    h.service.erase("default", ANN, hubspot=True)
    again = h.service.erase("default", ANN, hubspot=True)
    assert again.contact is False and again.suppressed is True and again.complete is True
    assert (again.cache_entries, again.job_row_errors, again.source_files, again.dlq_messages) == (0, 0, 0, 0)
    assert (again.sync_log_errors, again.deal_contacts) == (0, 0)
    assert again.hubspot.status == "not_found"
    assert again.message == f"no contact {ANN} in this workspace; the email is now suppressed all the same"
    assert h.contacts.counts("default")["imported"] == 1  # counters not moved twice
    assert h.contacts.get("default", BOB) is not None
    assert h.fake.get("contacts", seeded["hubspot_id"]) is None
    assert len(h.bodies("enrich")) == 2


def test_an_email_leadpipe_never_had_is_suppressed_all_the_same(h: Harness) -> None:
    h.cache.put_many("sample", [Answer(Kind.PERSON, "nobody@nowhere.example", True, {"title": "CTO"})])
    report = h.erasure(dlqs={}).erase("default", "nobody@nowhere.example")
    assert report.contact is False and report.suppressed is True
    # the shared cache entry may be another workspace's: a workspace without the contact leaves it alone
    assert report.cache_entries == 0 and h.cache.get_many("sample", Kind.PERSON, ["nobody@nowhere.example"])
    assert report.hubspot.status == "skipped"  # not asked
    assert h.suppression.suppressed("default", ["nobody@nowhere.example"]) == {"nobody@nowhere.example": "erased"}
    assert h.suppression.suppressed("other", ["nobody@nowhere.example"]) == {}  # per workspace


def test_hubspot_without_a_token_is_reported_failed_and_the_local_erasure_still_happens(h: Harness) -> None:
    h.import_csv(HEADER + f"{ANN},Ann,Acme,\n")
    report = h.erasure(hubspot=lambda ws: None).erase("default", ANN, hubspot=True)
    assert report.contact is True and report.hubspot.status == "failed"
    assert report.hubspot.message and "no HubSpot access token" in report.hubspot.message
    assert h.contacts.get("default", ANN) is None


def test_a_hubspot_failure_is_reported_and_the_request_can_be_repeated(h: Harness) -> None:
    h.hubspot_create(ANN)
    failing = h.erasure(
        hubspot=lambda ws: HubSpotClient("pat-wrong-token", base_url=h.fake.url, sleep=lambda s: None),
    )
    report = failing.erase("default", ANN, hubspot=True)
    assert report.hubspot.status == "failed" and report.hubspot.message and "auth" in report.hubspot.message
    assert h.service.erase("default", ANN, hubspot=True).hubspot.status == "deleted"


def test_the_file_of_a_running_import_is_kept_then_deleted_by_a_later_erasure(h: Harness) -> None:
    svc = h.importer
    svc.settings = h.settings.model_copy(update={"import_chunk_rows": 1})
    job = svc.start_from_body("default", (HEADER + f"{ANN},Ann,Acme,\n{BOB},Bob,Acme,\n").encode(), "two.csv")
    queued(h.stack)
    first = svc.run("default", job.job_id, remaining_ms=lambda: 0)  # one row, then a follow-up message
    assert first.outcome == "continued" and h.contacts.get("default", ANN) is not None

    report = h.service.erase("default", ANN)
    assert report.contact is True and report.source_files == 0 and report.complete is False
    assert job.job_id in report.notes[0] and h.file_exists(str(job.key))

    run_queue(svc, h.stack)  # the import finishes; Bob's row is imported
    assert h.jobs.require("default", job.job_id).status is JobStatus.COMPLETED
    assert h.contacts.get("default", BOB) is not None

    later = h.service.erase("default", ANN)  # the contact is gone, the suppression entry remembers the job
    assert later.source_files == 1 and later.complete is True and not h.file_exists(str(job.key))
    assert h.service.erase("default", ANN).source_files == 0


def test_dlq_work_is_bounded_and_says_so(h: Harness) -> None:
    for i in range(25):
        h.send("sync", json.loads(SyncMessage(workspace="default", request_id=f"s{i}", emails=[BOB]).model_dump_json()))
    h.send("sync", json.loads(SyncMessage(workspace="default", request_id="ann", emails=[ANN]).model_dump_json()))
    report = h.erasure(max_dlq_messages=10).erase("default", ANN)
    assert report.complete is False and any("sync DLQ" in n for n in report.notes)
    assert len(h.bodies("sync")) + report.dlq_messages == 26  # nothing lost, the held messages visible again
    rest = h.erasure().erase("default", ANN)
    assert report.dlq_messages + rest.dlq_messages == 1 and rest.complete is True
    assert all(m["emails"] == [BOB] for m in h.bodies("sync"))


# ------------------------------------------------------------------------------------------------ consumers refuse


def test_importing_an_erased_email_again_is_a_suppressed_row_error(h: Harness) -> None:
    h.import_csv(CSV)
    h.service.erase("default", ANN)
    job = h.import_csv(HEADER + f"{ANN.upper()},Ann,Acme,\ncarl@acme.com,Carl,Acme,\n", "again.csv")
    assert job.status is JobStatus.COMPLETED_WITH_ERRORS
    assert (job.counts.rows_read, job.counts.valid, job.counts.invalid, job.counts.imported) == (2, 1, 1, 1)
    [error] = job.errors
    assert (error.row, error.field, error.code, error.value) == (2, "email", "suppressed", None)
    assert error.message == "this email was erased at the person's request (GDPR) and may not be imported again"
    assert h.contacts.get("default", ANN) is None and h.contacts.get("default", "carl@acme.com") is not None

    only = h.import_csv(HEADER + f"{ANN},Ann,Acme,\n", "only.csv")  # every row refused: nothing to import
    assert only.status is JobStatus.FAILED and only.error is not None and only.error.code == "all_rows_invalid"
    assert h.contacts.get("default", ANN) is None


def test_a_hubspot_import_does_not_bring_an_erased_contact_back(h: Harness) -> None:
    h.hubspot_create(ANN)
    h.hubspot_create(BOB)
    h.service.erase("default", ANN)  # here only: HubSpot still has Ann
    job = h.importer.start_remote("default", ImportSource.HUBSPOT)
    run_queue(h.importer, h.stack)
    done = h.jobs.require("default", job.job_id)
    assert (done.counts.imported, done.counts.invalid) == (1, 1)
    assert [e.code for e in done.errors] == ["suppressed"]
    assert h.contacts.get("default", ANN) is None and h.contacts.get("default", BOB) is not None


def test_a_hubspot_change_does_not_recreate_an_erased_contact(h: Harness) -> None:
    ann_id = h.hubspot_create(ANN)
    bob_id = h.hubspot_create(BOB)
    h.service.erase("default", ANN)
    changes = ChangeService(
        contacts=h.contacts,
        dynamodb=h.ddb,
        state_table=h.stack.state_table,
        publisher=EventPublisher(h.stack.client("events"), h.stack.bus),
        sqs=h.stack.client("sqs"),
        settings=h.settings,
        keys=h.keys,
        workspaces=h.workspaces,
        cache=h.cache,
        hubspot=lambda tok, burst, budget: HubSpotClient(
            tok, base_url=h.fake.url, burst_limit=burst, budget=budget, sleep=lambda s: None
        ),
        suppression=h.suppression,
    )
    message = ChangeMessage(
        workspace="default",
        origin="poll",
        changes=[ObjectChange(object_id=ann_id, occurred_at=1), ObjectChange(object_id=bob_id, occurred_at=1)],
    )
    report = changes.handle_message(message.model_dump_json(), budget=Budget())
    assert report.created == [BOB] and list(report.refused) == [ann_id]
    assert "suppressed (erased)" in report.refused[ann_id]
    assert h.contacts.get("default", ANN) is None


def test_enrichment_of_an_erased_contact_does_nothing(stack: Stack) -> None:
    from tests.integration.test_enrich_service import BUDGET, World, people, registry

    world = World(stack, [registry(), people()])
    world.add(ANN, BOB)
    erasure = ErasureService(
        contacts=world.contacts,
        jobs=JobRepository(stack.client("dynamodb"), stack.state_table),
        dynamodb=stack.client("dynamodb"),
        state_table=stack.state_table,
        cache=world.cache,
        suppression=world.suppression,
        providers=["registry", "people"],
        s3=stack.client("s3"),
        uploads_bucket=stack.bucket,
        sqs=stack.client("sqs"),
        dlqs={},
    )
    erasure.erase("default", ANN)
    report = world.service.handle_message(world.message(ANN, BOB), budget=BUDGET)  # a message queued before
    assert report is not None and report.missing == [ANN] and report.enriched == [BOB]
    assert world.cache.get_many("people", Kind.PERSON, [ANN]) == {}  # nothing asked, nothing cached
    assert world.contacts.get("default", ANN) is None


def test_sync_of_an_erased_contact_is_skipped(stack: Stack, hubspot: FakeHubSpot) -> None:
    from tests.integration.test_sync_service import World

    world = World(stack, hubspot)
    world.add(ANN, first_name="Ann")
    world.add(BOB, first_name="Bob")
    ErasureService(
        contacts=world.contacts,
        jobs=JobRepository(stack.client("dynamodb"), stack.state_table),
        dynamodb=stack.client("dynamodb"),
        state_table=stack.state_table,
        cache=EnrichmentCache(stack.client("dynamodb"), stack.ref("EnrichCacheTable")),
        suppression=SuppressionList(stack.client("dynamodb"), stack.state_table, "test-salt"),
        providers=PROVIDERS,
        s3=stack.client("s3"),
        uploads_bucket=stack.bucket,
        sqs=stack.client("sqs"),
        dlqs={},
    ).erase("default", ANN)
    report = world.sync(ANN, BOB)  # a sync request queued before the erasure
    assert report.missing == [ANN] and report.created == [BOB]
    emails = [c["properties"]["email"] for c in world.api("GET", "/crm/v3/objects/contacts")["results"]]
    assert emails == [BOB]


# ------------------------------------------------------------------------------------------------ messages


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"workspace":"default","emails":["a@x.io"]}', Verdict.DELETE),
        ('{"workspace":"default","emails":["a@x.io","b@x.io"]}', '{"workspace":"default","emails":["b@x.io"]}'),
        ('{"workspace":"default","emails":["A@X.IO","b@x.io"]}', '{"workspace":"default","emails":["b@x.io"]}'),
        ('{"workspace":"other","emails":["a@x.io"]}', Verdict.KEEP),
        ('{"workspace":"default","emails":["b@x.io"]}', Verdict.KEEP),
        ('{"detail":{"workspace":"default","emails":["a@x.io"]}}', Verdict.DELETE),
        ('{"workspace":"default","error":"a@x.io failed","emails":["b@x.io"]}', Verdict.DELETE),
        ("plain text naming a@x.io", Verdict.DELETE),  # no workspace: the default one's
        ('{"Records":[{"s3":{"object":{"key":"incoming/a.csv"}}}]}', Verdict.KEEP),
        ('{"workspace":"default","emails":["ba@x.io","a@x.io.evil.com"]}', Verdict.KEEP),  # other addresses
        ('{"workspace":"default","value":"Ann <a@x.io>"}', Verdict.DELETE),
    ],
)
def test_scrub_message(body: str, expected: str) -> None:
    assert scrub_message(body, "default", "a@x.io", "default") == expected


def test_scrub_message_recognises_an_idna_domain_written_in_unicode() -> None:
    body = json.dumps({"workspace": "w", "changes": [{"value": "jo@bücher.de"}, {"value": "x@y.de"}]})
    assert json.loads(scrub_message(body, "w", "jo@xn--bcher-kva.de", "default")) == {
        "workspace": "w",
        "changes": [{"value": "x@y.de"}],
    }
