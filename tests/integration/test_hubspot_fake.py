"""Contract tests of the local HubSpot fake, driven through HubSpot's own Python client (``hubspot-api-client``): every
answer has to deserialize into the SDK's models, and errors surface the way the SDK surfaces HubSpot's."""

# mypy: disable-error-code="import-untyped"
# (hubspot-api-client ships no type information)

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import hubspot
import pytest
from hubspot.crm.associations.v4 import (
    AssociationSpec,
    BatchInputPublicAssociationMultiArchive,
    BatchInputPublicAssociationMultiPost,
    BatchInputPublicDefaultAssociationMultiPost,
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicAssociationMultiArchive,
    PublicAssociationMultiPost,
    PublicDefaultAssociationMultiPost,
    PublicFetchAssociationsBatchRequest,
)
from hubspot.crm.associations.v4 import PublicObjectId as V4ObjectId
from hubspot.crm.companies import BatchInputSimplePublicObjectBatchInputUpsert as CompanyUpsertBatch
from hubspot.crm.companies import SimplePublicObjectBatchInputUpsert as CompanyUpsert
from hubspot.crm.companies import SimplePublicObjectInputForCreate as CompanyCreate
from hubspot.crm.companies.exceptions import ApiException as CompanyApiException
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchInputSimplePublicObjectId,
    BatchReadInputSimplePublicObjectId,
    BatchResponseSimplePublicObject,
    BatchResponseSimplePublicObjectWithErrors,
    BatchResponseSimplePublicUpsertObject,
    BatchResponseSimplePublicUpsertObjectWithErrors,
    CollectionResponseSimplePublicObjectWithAssociationsForwardPaging,
    CollectionResponseWithTotalSimplePublicObjectForwardPaging,
    Filter,
    FilterGroup,
    PublicGdprDeleteInput,
    PublicObjectSearchRequest,
    SimplePublicObject,
    SimplePublicObjectBatchInput,
    SimplePublicObjectBatchInputForCreate,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectId,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
    SimplePublicObjectWithAssociations,
    SimplePublicUpsertObject,
)
from hubspot.crm.contacts.exceptions import ApiException, NotFoundException, ServiceException, UnauthorizedException
from hubspot.crm.objects.notes import PublicAssociationsForObject
from hubspot.crm.objects.notes import PublicObjectId as NoteTarget
from hubspot.crm.objects.notes import SimplePublicObjectInputForCreate as NoteCreate
from hubspot.crm.objects.notes.exceptions import ApiException as NoteApiException
from hubspot.crm.objects.notes.models import AssociationSpec as NoteAssociationSpec
from hubspot.crm.properties import (
    BatchInputPropertyCreate,
    ModelProperty,
    PropertyCreate,
    PropertyGroup,
    PropertyGroupCreate,
)
from hubspot.crm.properties.exceptions import ApiException as PropertyApiException
from hubspot.utils.signature import Signature

from leadpipe_local.fakes import hubspot as hubspot_fake
from leadpipe_local.fakes.base import Fault
from leadpipe_local.fakes.hubspot import FakeHubSpot
from tests.integration.conftest import DAY_START, Clock

START_ISO = "2024-10-04T00:00:00.000Z"  # DAY_START (86,400 s x 20,000 days) in HubSpot's format
START_MS = int(DAY_START * 1000)


# ------------------------------------------------------------------------------------------------ fixtures


class Receiver:
    """A webhook endpoint on 127.0.0.1 that records every request and answers ``statuses`` in turn (then 204)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.arrived = threading.Condition()
        receiver = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.arrived:
                    receiver.requests.append(
                        {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                    )
                    status = receiver.statuses.pop(0) if receiver.statuses else 204
                    receiver.arrived.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hubspot/webhooks?app=leadpipe"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def events(self) -> list[dict[str, Any]]:
        return [e for r in self.requests for e in json.loads(r["body"])]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def server(clock: Clock) -> Iterator[FakeHubSpot]:
    running = FakeHubSpot(clock=clock).start()
    yield running
    running.stop()


@pytest.fixture
def fake(server: FakeHubSpot, clock: Clock) -> FakeHubSpot:
    clock.now = DAY_START
    server.reset()
    return server


@pytest.fixture
def client(fake: FakeHubSpot) -> hubspot.HubSpot:
    return hubspot.HubSpot(access_token=fake.token, host=fake.url)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.stop()


def body_of(exc: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


def create_contacts(client: hubspot.HubSpot, *props: dict[str, str]) -> list[str]:
    inputs = [SimplePublicObjectBatchInputForCreate(properties=p) for p in props]
    created = client.crm.contacts.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs))
    return [r.id for r in created.results]


def search(client: hubspot.HubSpot, clock: Clock, **request: Any) -> Any:
    clock.now += 1.0  # a second apart: the search API allows 5 calls a second
    return client.crm.contacts.search_api.do_search(PublicObjectSearchRequest(**request))


# ------------------------------------------------------------------------------------------------ records


def test_create_get_update_archive_a_contact(client: hubspot.HubSpot, clock: Clock) -> None:
    contacts = client.crm.contacts.basic_api
    created = contacts.create(
        SimplePublicObjectInputForCreate(properties={"email": "Ada@Example.com", "firstname": "Ada"})
    )
    assert isinstance(created, SimplePublicObject)
    assert created.id == "1"
    assert created.properties == {
        "createdate": START_ISO,
        "hs_object_id": "1",
        "lastmodifieddate": START_ISO,
        "email": "ada@example.com",  # HubSpot lower-cases emails
        "firstname": "Ada",
    }
    assert created.created_at.isoformat() == "2024-10-04T00:00:00+00:00"
    assert created.archived is False

    fetched, status, headers = contacts.get_by_id_with_http_info("1", properties=["email", "phone"])
    assert status == 200
    assert isinstance(fetched, SimplePublicObjectWithAssociations)
    assert fetched.properties == {
        "email": "ada@example.com",
        "phone": None,  # asked for and empty: null
        "createdate": START_ISO,
        "hs_object_id": "1",
        "lastmodifieddate": START_ISO,
    }
    assert headers["X-HubSpot-RateLimit-Max"] == "100"
    assert headers["X-HubSpot-RateLimit-Remaining"] == "98"
    assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert headers["X-HubSpot-RateLimit-Daily"] == "250000"
    assert headers["X-HubSpot-RateLimit-Daily-Remaining"] == "249998"

    by_email = contacts.get_by_id("ADA@example.com", id_property="email")
    assert by_email.id == "1"
    assert by_email.properties == {
        "createdate": START_ISO,
        "email": "ada@example.com",
        "firstname": "Ada",
        "hs_object_id": "1",
        "lastmodifieddate": START_ISO,
        "lastname": None,
    }

    clock.now += 60
    updated = contacts.update("1", SimplePublicObjectInput(properties={"lastname": "Lovelace", "firstname": "Ada"}))
    assert updated.properties["lastname"] == "Lovelace"
    assert updated.properties["lastmodifieddate"] == "2024-10-04T00:01:00.000Z"
    assert updated.updated_at.isoformat() == "2024-10-04T00:01:00+00:00"
    assert (
        contacts.update(
            "ada@example.com", SimplePublicObjectInput(properties={"jobtitle": "CTO"}), id_property="email"
        ).id
        == "1"
    )

    assert contacts.archive("1") is None
    with pytest.raises(NotFoundException) as missing:
        contacts.get_by_id("1")
    assert missing.value.status == 404
    assert body_of(missing.value)["category"] == "OBJECT_NOT_FOUND"
    archived = contacts.get_by_id("1", archived=True)
    assert archived.archived is True
    assert archived.archived_at.isoformat() == "2024-10-04T00:01:00+00:00"


def test_create_with_an_existing_email_is_a_conflict(client: hubspot.HubSpot) -> None:
    contacts = client.crm.contacts.basic_api
    contacts.create(SimplePublicObjectInputForCreate(properties={"email": "ada@example.com"}))
    with pytest.raises(ApiException) as conflict:
        contacts.create(SimplePublicObjectInputForCreate(properties={"email": "ADA@example.com"}))
    assert conflict.value.status == 409
    body = body_of(conflict.value)
    assert (body["status"], body["category"], body["message"]) == (
        "error",
        "CONFLICT",
        "Contact already exists. Existing ID: 1",
    )
    assert conflict.value.headers["X-HubSpot-Correlation-Id"] == body["correlationId"]


def test_single_writes_validate_property_values(client: hubspot.HubSpot) -> None:
    contacts = client.crm.contacts.basic_api
    with pytest.raises(ApiException) as invalid:
        contacts.create(SimplePublicObjectInputForCreate(properties={"email": "not-an-email", "favourite": "tea"}))
    assert invalid.value.status == 400
    body = body_of(invalid.value)
    assert body["category"] == "VALIDATION_ERROR"
    assert body["message"].startswith("Property values were not valid: [")
    details = json.loads(body["message"].removeprefix("Property values were not valid: "))
    assert [(d["name"], d["error"], d["message"]) for d in details] == [
        ("email", "INVALID_EMAIL", "Email address not-an-email is invalid"),
        ("favourite", "PROPERTY_DOESNT_EXIST", 'Property "favourite" does not exist'),
    ]
    with pytest.raises(ApiException) as read_only:
        contacts.create(SimplePublicObjectInputForCreate(properties={"hs_object_id": "7"}))
    assert json.loads(body_of(read_only.value)["message"].split(": ", 1)[1])[0]["error"] == "READ_ONLY_VALUE"
    with pytest.raises(ApiException) as option:
        contacts.create(SimplePublicObjectInputForCreate(properties={"lifecyclestage": "friend"}))
    assert json.loads(body_of(option.value)["message"].split(": ", 1)[1])[0]["error"] == "INVALID_OPTION"
    assert contacts.get_page().results == []


def test_an_archived_contact_leaves_lists_search_and_its_email(client: hubspot.HubSpot, clock: Clock) -> None:
    contacts = client.crm.contacts.basic_api
    first = contacts.create(SimplePublicObjectInputForCreate(properties={"email": "re@example.com"})).id
    contacts.archive(first)
    second = contacts.create(SimplePublicObjectInputForCreate(properties={"email": "re@example.com"})).id
    assert (first, second) == ("1", "2")
    assert [r.id for r in contacts.get_page().results] == ["2"]
    assert [r.id for r in contacts.get_page(archived=True).results] == ["1"]
    assert [r.id for r in search(client, clock).results] == ["2"]
    assert contacts.get_by_id("re@example.com", id_property="email").id == "2"


def test_list_pages_with_after_and_no_paging_on_the_last_page(client: hubspot.HubSpot) -> None:
    create_contacts(client, *({"email": f"p{i}@example.com"} for i in range(5)))
    contacts = client.crm.contacts.basic_api
    first = contacts.get_page(limit=2, properties=["email"])
    assert isinstance(first, CollectionResponseSimplePublicObjectWithAssociationsForwardPaging)
    assert [r.properties["email"] for r in first.results] == ["p0@example.com", "p1@example.com"]
    assert first.paging.next.after == "3"
    assert first.paging.next.link.endswith("/crm/v3/objects/contacts?limit=2&properties=email&after=3")
    second = contacts.get_page(limit=2, after=first.paging.next.after)
    assert [r.id for r in second.results] == ["3", "4"]
    last = contacts.get_page(limit=2, after=second.paging.next.after)
    assert [r.id for r in last.results] == ["5"]
    assert last.paging is None
    assert [r.id for r in client.crm.contacts.get_all(limit=4)] == ["1", "2", "3", "4"]
    assert len(contacts.get_page().results) == 5  # default limit 10
    with pytest.raises(ApiException) as too_many:
        contacts.get_page(limit=101)
    assert too_many.value.status == 400


# ------------------------------------------------------------------------------------------------ batches


def test_batch_create_read_update_archive(client: hubspot.HubSpot, clock: Clock) -> None:
    batch = client.crm.contacts.batch_api
    inputs = [SimplePublicObjectBatchInputForCreate(properties={"email": f"b{i}@example.com"}) for i in range(3)]
    created, status, _ = batch.create_with_http_info(BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs))
    assert status == 201
    assert isinstance(created, BatchResponseSimplePublicObject)
    assert created.status == "COMPLETE"
    assert [r.id for r in created.results] == ["1", "2", "3"]
    assert created.started_at.isoformat() == "2024-10-04T00:00:00+00:00"

    read = batch.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id="1"), SimplePublicObjectId(id="3")],
            properties=["email"],
            properties_with_history=[],
        )
    )
    assert isinstance(read, BatchResponseSimplePublicObject)
    assert [(r.id, r.properties["email"]) for r in read.results] == [("1", "b0@example.com"), ("3", "b2@example.com")]

    partly, status, _ = batch.read_with_http_info(
        BatchReadInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id="b1@example.com"), SimplePublicObjectId(id="nobody@example.com")],
            id_property="email",
            properties=["email"],
            properties_with_history=[],
        )
    )
    assert status == 207
    assert isinstance(partly, BatchResponseSimplePublicObjectWithErrors)
    assert [r.id for r in partly.results] == ["2"]
    assert partly.num_errors == 1
    error = partly.errors[0]
    assert (error.status, error.category, error.context) == (
        "error",
        "OBJECT_NOT_FOUND",
        {"ids": ["nobody@example.com"]},
    )
    assert error.message == (
        "Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid."
    )

    clock.now += 5
    updated = batch.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[
                SimplePublicObjectBatchInput(id="1", properties={"firstname": "One"}),
                SimplePublicObjectBatchInput(id="2", properties={"firstname": "Two"}),
            ]
        )
    )
    assert isinstance(updated, BatchResponseSimplePublicObject)
    assert [(r.id, r.properties["firstname"], r.properties["lastmodifieddate"]) for r in updated.results] == [
        ("1", "One", "2024-10-04T00:00:05.000Z"),
        ("2", "Two", "2024-10-04T00:00:05.000Z"),
    ]
    missing, status, _ = batch.update_with_http_info(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[
                SimplePublicObjectBatchInput(id="3", properties={"firstname": "Three"}, object_write_trace_id="t3"),
                SimplePublicObjectBatchInput(id="999", properties={"firstname": "Gone"}, object_write_trace_id="t9"),
            ]
        )
    )
    assert status == 207
    assert [r.object_write_trace_id for r in missing.results] == ["t3"]
    assert missing.errors[0].category == "OBJECT_NOT_FOUND"
    assert missing.errors[0].context == {"ids": ["999"], "objectWriteTraceId": ["t9"]}

    with pytest.raises(ApiException) as by_email:
        batch.update(
            BatchInputSimplePublicObjectBatchInput(
                inputs=[SimplePublicObjectBatchInput(id="b0@example.com", id_property="email", properties={"zip": "1"})]
            )
        )
    assert body_of(by_email.value)["message"] == "Unable to perform update/upsert by non-unique 0-1 property email"

    assert batch.archive(BatchInputSimplePublicObjectId(inputs=[SimplePublicObjectId(id="1")])) is None
    assert [r.id for r in client.crm.contacts.basic_api.get_page().results] == ["2", "3"]


def test_batch_upsert_creates_and_updates_by_email(client: hubspot.HubSpot) -> None:
    create_contacts(client, {"email": "old@example.com", "firstname": "Old"})
    request = BatchInputSimplePublicObjectBatchInputUpsert(
        inputs=[
            SimplePublicObjectBatchInputUpsert(
                id="OLD@example.com", id_property="email", properties={"lastname": "Timer"}
            ),
            SimplePublicObjectBatchInputUpsert(
                id="new@example.com", id_property="email", properties={"firstname": "New"}
            ),
        ]
    )
    upserted, status, _ = client.crm.contacts.batch_api.upsert_with_http_info(request)
    assert status == 200
    assert isinstance(upserted, BatchResponseSimplePublicUpsertObject)
    assert all(isinstance(r, SimplePublicUpsertObject) for r in upserted.results)
    assert [(r.id, r.new, r.properties["email"]) for r in upserted.results] == [
        ("1", False, "old@example.com"),
        ("2", True, "new@example.com"),
    ]
    assert (
        client.crm.contacts.basic_api.get_by_id("1", properties=["firstname", "lastname"]).properties["lastname"]
        == "Timer"
    )


def test_an_invalid_email_with_trace_ids_is_a_207_for_that_record_only(
    client: hubspot.HubSpot, fake: FakeHubSpot
) -> None:
    request = BatchInputSimplePublicObjectBatchInputUpsert(
        inputs=[
            SimplePublicObjectBatchInputUpsert(
                id="good@example.com", id_property="email", properties={"firstname": "Good"}, object_write_trace_id="t1"
            ),
            SimplePublicObjectBatchInputUpsert(
                id="bad@example", id_property="email", properties={"firstname": "Bad"}, object_write_trace_id="t2"
            ),
        ]
    )
    answer, status, _ = client.crm.contacts.batch_api.upsert_with_http_info(request)
    # The SDK does not raise on 207: it answers the ...WithErrors model, with the failures in ``errors``.
    assert status == 207
    assert isinstance(answer, BatchResponseSimplePublicUpsertObjectWithErrors)
    assert [(r.id, r.new, r.object_write_trace_id) for r in answer.results] == [("1", True, "t1")]
    assert answer.num_errors == 1
    error = answer.errors[0]
    assert (error.status, error.category, error.context) == (
        "error",
        "VALIDATION_ERROR",
        {"objectWriteTraceId": ["t2"]},
    )
    assert error.message.startswith(
        'Property values were not valid: [{"isValid":false,"message":"Email address bad@example'
    )
    assert [(d.code, d._in, d.message) for d in error.errors] == [
        ("INVALID_EMAIL", "email", "Email address bad@example is invalid")
    ]
    assert fake.counts()["contacts"] == 1


def test_without_trace_ids_one_invalid_record_fails_the_whole_batch(client: hubspot.HubSpot, fake: FakeHubSpot) -> None:
    request = BatchInputSimplePublicObjectBatchInputUpsert(
        inputs=[
            SimplePublicObjectBatchInputUpsert(
                id="good@example.com", id_property="email", properties={"firstname": "G"}
            ),
            SimplePublicObjectBatchInputUpsert(id="bad@example", id_property="email", properties={"firstname": "B"}),
        ]
    )
    with pytest.raises(ApiException) as rejected:
        client.crm.contacts.batch_api.upsert(request)
    assert rejected.value.status == 400
    body = body_of(rejected.value)
    assert body["category"] == "VALIDATION_ERROR"
    assert '"error":"INVALID_EMAIL","name":"email"' in body["message"]
    assert fake.counts()["contacts"] == 0

    creates = BatchInputSimplePublicObjectBatchInputForCreate(
        inputs=[
            SimplePublicObjectBatchInputForCreate(properties={"email": "a@example.com"}),
            SimplePublicObjectBatchInputForCreate(properties={"email": "b@example.com", "favourite_colour": "blue"}),
        ]
    )
    with pytest.raises(ApiException) as unknown:
        client.crm.contacts.batch_api.create(creates)
    assert unknown.value.status == 400
    assert json.loads(body_of(unknown.value)["message"].split(": ", 1)[1]) == [
        {
            "isValid": False,
            "message": 'Property "favourite_colour" does not exist',
            "error": "PROPERTY_DOESNT_EXIST",
            "name": "favourite_colour",
            "localizedErrorMessage": 'Property "favourite_colour" does not exist',
            "portalId": 62515,
        }
    ]
    assert fake.counts()["contacts"] == 0


def test_batch_limits_and_duplicate_ids(client: hubspot.HubSpot) -> None:
    too_many = [SimplePublicObjectBatchInputForCreate(properties={"email": f"x{i}@example.com"}) for i in range(101)]
    with pytest.raises(ApiException) as limit:
        client.crm.contacts.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=too_many))
    assert limit.value.status == 400
    assert body_of(limit.value)["category"] == "VALIDATION_ERROR"
    twice = [
        SimplePublicObjectBatchInputUpsert(id="a@example.com", id_property="email", properties={}),
        SimplePublicObjectBatchInputUpsert(id="A@example.com", id_property="email", properties={}),
    ]
    with pytest.raises(ApiException) as duplicates:
        client.crm.contacts.batch_api.upsert(BatchInputSimplePublicObjectBatchInputUpsert(inputs=twice))
    assert duplicates.value.status == 400
    body = body_of(duplicates.value)
    assert body["message"] == "Duplicate IDs found in batch input: [a@example.com]. IDs must be unique"
    assert (body["category"], body["context"]) == ("VALIDATION_ERROR", {"ids": ["a@example.com"]})


def test_companies_cannot_be_upserted_by_domain(client: hubspot.HubSpot) -> None:
    created = client.crm.companies.basic_api.create(CompanyCreate(properties={"name": "Acme", "domain": "acme.com"}))
    assert created.properties["hs_lastmodifieddate"] == START_ISO
    upsert = CompanyUpsertBatch(inputs=[CompanyUpsert(id="acme.com", id_property="domain", properties={"name": "A"})])
    with pytest.raises(CompanyApiException) as refused:
        client.crm.companies.batch_api.upsert(upsert)
    assert refused.value.status == 400
    assert body_of(refused.value)["message"] == "Unable to perform update/upsert by non-unique 0-2 property domain"


# ------------------------------------------------------------------------------------------------ search


@pytest.fixture
def people(client: hubspot.HubSpot, clock: Clock) -> list[str]:
    rows = [
        {"email": "ada@acme.com", "firstname": "Ada", "lifecyclestage": "lead", "jobtitle": "Chief Engineer"},
        {"email": "bob@acme.com", "firstname": "Bob", "lifecyclestage": "customer"},
        {"email": "cy@globex.com", "firstname": "Cy", "lifecyclestage": "lead", "phone": "+1 555 0100"},
        {"email": "di@globex.com", "firstname": "Di"},
    ]
    ids = []
    for row in rows:  # a minute apart: createdate 00:00, 00:01, 00:02, 00:03
        ids += create_contacts(client, row)
        clock.now += 60
    return ids


def test_search_operators(client: hubspot.HubSpot, clock: Clock, people: list[str]) -> None:
    def ids(*filters: Filter, groups: list[list[Filter]] | None = None) -> list[str]:
        filter_groups = [FilterGroup(filters=g) for g in groups] if groups else [FilterGroup(filters=list(filters))]
        found = search(client, clock, filter_groups=filter_groups)
        assert isinstance(found, CollectionResponseWithTotalSimplePublicObjectForwardPaging)
        assert found.total == len(found.results)
        return [r.id for r in found.results]

    assert ids(Filter(property_name="email", operator="EQ", value="ADA@acme.com")) == ["1"]
    assert ids(Filter(property_name="lifecyclestage", operator="NEQ", value="lead")) == ["2", "4"]
    assert ids(Filter(property_name="lifecyclestage", operator="IN", values=["lead", "customer"])) == ["1", "2", "3"]
    assert ids(Filter(property_name="lifecyclestage", operator="NOT_IN", values=["lead"])) == ["2", "4"]
    assert ids(Filter(property_name="phone", operator="HAS_PROPERTY")) == ["3"]
    assert ids(Filter(property_name="lifecyclestage", operator="NOT_HAS_PROPERTY")) == ["4"]
    assert ids(Filter(property_name="email", operator="CONTAINS_TOKEN", value="*@globex.com")) == ["3", "4"]
    assert ids(Filter(property_name="jobtitle", operator="CONTAINS_TOKEN", value="engineer")) == ["1"]
    assert ids(Filter(property_name="email", operator="NOT_CONTAINS_TOKEN", value="*@acme.com")) == ["3", "4"]
    one_minute = str(START_MS + 60_000)
    assert ids(Filter(property_name="createdate", operator="GT", value=one_minute)) == ["3", "4"]
    assert ids(Filter(property_name="createdate", operator="GTE", value=one_minute)) == ["2", "3", "4"]
    assert ids(Filter(property_name="createdate", operator="LT", value=one_minute)) == ["1"]
    assert ids(Filter(property_name="lastmodifieddate", operator="LTE", value="2024-10-04T00:01:00Z")) == ["1", "2"]
    assert ids(
        Filter(property_name="createdate", operator="BETWEEN", value=one_minute, high_value=str(START_MS + 120_000))
    ) == ["2", "3"]
    assert ids(Filter(property_name="hs_object_id", operator="GT", value="2")) == ["3", "4"]
    # groups are ORed, filters in a group ANDed
    assert ids(
        groups=[
            [
                Filter(property_name="lifecyclestage", operator="EQ", value="lead"),
                Filter(property_name="phone", operator="HAS_PROPERTY"),
            ],
            [Filter(property_name="firstname", operator="EQ", value="bob")],
        ]
    ) == ["2", "3"]
    free_text = search(client, clock, query="globex")
    assert [r.id for r in free_text.results] == ["3", "4"]


def test_search_properties_sorting_and_paging(client: hubspot.HubSpot, clock: Clock, people: list[str]) -> None:
    everyone = search(
        client, clock, properties=["firstname"], sorts=[{"propertyName": "createdate", "direction": "DESCENDING"}]
    )
    assert [r.properties["firstname"] for r in everyone.results] == ["Di", "Cy", "Bob", "Ada"]
    assert set(everyone.results[0].properties) == {"firstname", "createdate", "hs_object_id", "lastmodifieddate"}
    assert everyone.paging is None
    defaults = search(client, clock, limit=1)
    assert set(defaults.results[0].properties) == {
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    }
    by_name = search(client, clock, sorts=["-firstname"], limit=2)
    assert (by_name.total, [r.properties["firstname"] for r in by_name.results]) == (4, ["Di", "Cy"])
    assert by_name.paging.next.after == "2"
    rest = search(client, clock, sorts=["-firstname"], limit=2, after=by_name.paging.next.after)
    assert [r.properties["firstname"] for r in rest.results] == ["Bob", "Ada"]
    assert rest.paging is None


def test_search_limits(client: hubspot.HubSpot, clock: Clock, fake: FakeHubSpot, people: list[str]) -> None:
    def rejected(**request: Any) -> dict[str, Any]:
        with pytest.raises(ApiException) as refused:
            search(client, clock, **request)
        assert refused.value.status == 400
        return body_of(refused.value)

    has = Filter(property_name="email", operator="HAS_PROPERTY")
    assert rejected(filter_groups=[FilterGroup(filters=[has])] * 6)["category"] == "VALIDATION_ERROR"
    rejected(filter_groups=[FilterGroup(filters=[has] * 7)])
    rejected(filter_groups=[FilterGroup(filters=[has] * 6)] * 3 + [FilterGroup(filters=[has])])  # 19 filters
    assert search(client, clock, filter_groups=[FilterGroup(filters=[has] * 6)] * 3).total == 4  # 18 are fine
    rejected(sorts=["createdate", "email"])
    rejected(limit=201)
    rejected(filter_groups=[FilterGroup(filters=[Filter(property_name="email", operator="LIKE", value="x")])])

    fake.search_cap = 3  # HubSpot's is 10,000 results a query
    first = search(client, clock, limit=2)
    assert (first.total, first.paging.next.after) == (4, "2")
    assert rejected(limit=2, after=first.paging.next.after)["category"] == "VALIDATION_ERROR"
    assert len(search(client, clock, limit=1, after="2").results) == 1


def test_search_lags_writes(client: hubspot.HubSpot, clock: Clock, fake: FakeHubSpot) -> None:
    fake.search_lag = 5.0
    create_contacts(client, {"email": "late@example.com", "firstname": "Late"})
    assert search(client, clock).total == 0  # 1 s after the write
    clock.now += 4
    assert search(client, clock).results[0].properties["firstname"] == "Late"
    client.crm.contacts.basic_api.update("1", SimplePublicObjectInput(properties={"firstname": "Later"}))
    named = [Filter(property_name="firstname", operator="EQ", value="Later")]
    assert search(client, clock, filter_groups=[FilterGroup(filters=named)]).total == 0  # still the old value
    clock.now += 5
    assert search(client, clock, filter_groups=[FilterGroup(filters=named)]).total == 1


def test_search_has_its_own_secondly_limit(client: hubspot.HubSpot, clock: Clock, fake: FakeHubSpot) -> None:
    searches = client.crm.contacts.search_api
    for _ in range(5):
        _, status, headers = searches.do_search_with_http_info(PublicObjectSearchRequest())
        assert status == 200
        assert not any(h.lower().startswith("x-hubspot-ratelimit") for h in headers)
    with pytest.raises(ApiException) as limited:
        searches.do_search(PublicObjectSearchRequest())
    assert limited.value.status == 429
    body = body_of(limited.value)
    assert (body["status"], body["message"], body["errorType"]) == (
        "error",
        "You have reached your secondly limit.",
        "RATE_LIMIT",
    )
    assert not any(h.lower().startswith("x-hubspot-ratelimit") for h in limited.value.headers)
    assert fake.throttled_by_policy == {"SECONDLY": 1}
    clock.now += 1.0
    assert searches.do_search(PublicObjectSearchRequest()).total == 0


# ------------------------------------------------------------------------------------------------ properties


def test_properties_and_groups(client: hubspot.HubSpot) -> None:
    core = client.crm.properties.core_api
    names = {p.name for p in core.get_all("contacts").results}
    assert {
        "email",
        "firstname",
        "lastname",
        "jobtitle",
        "phone",
        "mobilephone",
        "company",
        "website",
        "city",
        "state",
        "country",
        "industry",
        "lifecyclestage",
        "hs_object_id",
        "createdate",
        "lastmodifieddate",
    } <= names
    company_names = {p.name for p in core.get_all("companies").results}
    assert {"name", "domain", "numberofemployees", "linkedin_company_page", "hs_lastmodifieddate"} <= company_names
    assert {p.name for p in core.get_all("notes").results} >= {"hs_note_body", "hs_timestamp"}
    email = core.get_by_name("contacts", "email")
    assert isinstance(email, ModelProperty)
    assert (email.type, email.field_type, email.group_name, email.hubspot_defined) == (
        "string",
        "text",
        "contactinformation",
        True,
    )

    groups = client.crm.properties.groups_api
    group = groups.create("contacts", PropertyGroupCreate(name="leadpipe", label="leadpipe", display_order=3))
    assert isinstance(group, PropertyGroup)
    assert (group.name, group.label, group.display_order, group.archived) == ("leadpipe", "leadpipe", 3, False)
    with pytest.raises(PropertyApiException) as group_twice:
        groups.create("contacts", PropertyGroupCreate(name="leadpipe", label="again"))
    assert group_twice.value.status == 409
    assert "leadpipe" in {g.name for g in groups.get_all("contacts").results}

    score = PropertyCreate(
        name="leadpipe_score", label="Lead score", type="number", field_type="number", group_name="leadpipe"
    )
    created, status, _ = core.create_with_http_info("contacts", score)
    assert status == 201
    assert (created.name, created.type, created.group_name, created.has_unique_value) == (
        "leadpipe_score",
        "number",
        "leadpipe",
        False,
    )
    with pytest.raises(PropertyApiException) as twice:
        core.create("contacts", score)
    assert twice.value.status == 409
    conflict = body_of(twice.value)
    assert (conflict["status"], conflict["category"]) == ("error", "OBJECT_ALREADY_EXISTS")
    with pytest.raises(PropertyApiException) as incomplete:
        core.create("contacts", PropertyCreate(name="half", label="Half", type="string", field_type="text"))
    assert incomplete.value.status == 400
    assert body_of(incomplete.value)["message"] == "Some required fields were not set: [groupName]"

    made = client.crm.properties.batch_api.create(
        "contacts",
        BatchInputPropertyCreate(
            inputs=[
                PropertyCreate(
                    name="leadpipe_key",
                    label="leadpipe key",
                    type="string",
                    field_type="text",
                    group_name="leadpipe",
                    has_unique_value=True,
                )
            ]
        ),
    )
    assert [p.name for p in made.results] == ["leadpipe_key"]

    contact = client.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(
            properties={"email": "p@example.com", "leadpipe_score": "87", "leadpipe_key": "k1"}
        )
    )
    assert contact.properties["leadpipe_score"] == "87"
    with pytest.raises(ApiException) as not_a_number:
        client.crm.contacts.basic_api.update(contact.id, SimplePublicObjectInput(properties={"leadpipe_score": "high"}))
    assert not_a_number.value.status == 400
    by_key = client.crm.contacts.batch_api.upsert(
        BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[
                SimplePublicObjectBatchInputUpsert(id="k1", id_property="leadpipe_key", properties={"city": "Oslo"})
            ]
        )
    )
    assert [(r.id, r.new, r.properties["city"]) for r in by_key.results] == [(contact.id, False, "Oslo")]


# ------------------------------------------------------------------------------------------------ associations


def test_associations_v4_default_labelled_read_and_archive(client: hubspot.HubSpot) -> None:
    contact_id = client.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"email": "a@acme.com"})
    ).id
    company_id = client.crm.companies.basic_api.create(
        CompanyCreate(properties={"name": "Acme", "domain": "acme.com"})
    ).id
    v4 = client.crm.associations.v4

    default = v4.batch_api.create_default(
        "contacts",
        "companies",
        BatchInputPublicDefaultAssociationMultiPost(
            inputs=[PublicDefaultAssociationMultiPost(_from=V4ObjectId(id=contact_id), to=V4ObjectId(id=company_id))]
        ),
    )
    assert default.status == "COMPLETE"
    spec = default.results[0].association_spec
    assert (default.results[0]._from.id, default.results[0].to.id) == (contact_id, company_id)
    assert (spec.association_category, spec.association_type_id) == ("HUBSPOT_DEFINED", 279)

    labelled, status, _ = v4.batch_api.create_with_http_info(
        "contacts",
        "companies",
        BatchInputPublicAssociationMultiPost(
            inputs=[
                PublicAssociationMultiPost(
                    _from=V4ObjectId(id=contact_id),
                    to=V4ObjectId(id=company_id),
                    types=[AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=1)],
                )
            ]
        ),
    )
    assert status == 201
    pair = labelled.results[0]
    assert (pair.from_object_type_id, pair.from_object_id, pair.to_object_type_id, pair.to_object_id, pair.labels) == (
        "0-1",
        contact_id,
        "0-2",
        company_id,
        ["Primary"],
    )

    page = v4.basic_api.get_page("contacts", contact_id, "companies")
    assert page.results[0].to_object_id == company_id
    assert [(t.category, t.type_id, t.label) for t in page.results[0].association_types] == [
        ("HUBSPOT_DEFINED", 279, None),
        ("HUBSPOT_DEFINED", 1, "Primary"),
    ]
    inverse = v4.basic_api.get_page("companies", company_id, "contacts")
    assert [t.type_id for t in inverse.results[0].association_types] == [280, 2]
    v3 = client.crm.contacts.basic_api.get_by_id(contact_id, associations=["companies"])
    assert [(a.id, a.type) for a in v3.associations["companies"].results] == [
        (company_id, "contact_to_company"),
        (company_id, "contact_to_company_unlabeled"),
    ]

    read, status, _ = v4.batch_api.get_page_with_http_info(
        "companies",
        "contacts",
        BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[PublicFetchAssociationsBatchRequest(id=company_id), PublicFetchAssociationsBatchRequest(id="999")]
        ),
    )
    assert status == 207
    assert (read.results[0]._from.id, read.results[0].to[0].to_object_id) == (company_id, contact_id)
    assert (read.num_errors, read.errors[0].category) == (1, "OBJECT_NOT_FOUND")

    gone, status, _ = v4.batch_api.create_with_http_info(
        "contacts",
        "companies",
        BatchInputPublicAssociationMultiPost(
            inputs=[
                PublicAssociationMultiPost(
                    _from=V4ObjectId(id=contact_id),
                    to=V4ObjectId(id="999"),
                    types=[AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=279)],
                )
            ]
        ),
    )
    assert (status, gone.results, gone.num_errors) == (207, [], 1)
    single = v4.basic_api.create_default("companies", company_id, "contacts", contact_id)
    assert single.results[0].association_spec.association_type_id == 280

    archived = v4.batch_api.archive(
        "contacts",
        "companies",
        BatchInputPublicAssociationMultiArchive(
            inputs=[PublicAssociationMultiArchive(_from=V4ObjectId(id=contact_id), to=[V4ObjectId(id=company_id)])]
        ),
    )
    assert archived is None
    assert v4.basic_api.get_page("companies", company_id, "contacts").results == []

    with pytest.raises(hubspot.crm.associations.v4.exceptions.ApiException) as wrong_type:
        v4.batch_api.create(
            "contacts",
            "companies",
            BatchInputPublicAssociationMultiPost(
                inputs=[
                    PublicAssociationMultiPost(
                        _from=V4ObjectId(id=contact_id),
                        to=V4ObjectId(id=company_id),
                        types=[AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=202)],
                    )
                ]
            ),
        )
    assert wrong_type.value.status == 400


def test_notes_created_with_associations_are_associated(client: hubspot.HubSpot) -> None:
    contact_id = client.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"email": "a@acme.com"})
    ).id
    company_id = client.crm.companies.basic_api.create(CompanyCreate(properties={"name": "Acme"})).id
    notes = client.crm.objects.notes.basic_api
    note = notes.create(
        NoteCreate(
            properties={"hs_timestamp": "2024-10-04T10:00:00Z", "hs_note_body": "Enriched by leadpipe"},
            associations=[
                PublicAssociationsForObject(
                    to=NoteTarget(id=contact_id),
                    types=[NoteAssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=202)],
                ),
                PublicAssociationsForObject(
                    to=NoteTarget(id=company_id),
                    types=[NoteAssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=190)],
                ),
            ],
        )
    )
    assert note.properties["hs_timestamp"] == "2024-10-04T10:00:00.000Z"
    assert note.properties["hs_note_body"] == "Enriched by leadpipe"
    v4 = client.crm.associations.v4.basic_api
    assert [
        (r.to_object_id, [t.type_id for t in r.association_types])
        for r in v4.get_page("notes", note.id, "contacts").results
    ] == [(contact_id, [202])]
    assert [t.type_id for t in v4.get_page("contacts", contact_id, "notes").results[0].association_types] == [201]
    assert [t.type_id for t in v4.get_page("companies", company_id, "notes").results[0].association_types] == [189]
    with pytest.raises(NoteApiException) as no_timestamp:
        notes.create(NoteCreate(properties={"hs_note_body": "no time"}))
    assert no_timestamp.value.status == 400
    assert '"error":"REQUIRED_FIELD","name":"hs_timestamp"' in body_of(no_timestamp.value)["message"]


def test_gdpr_delete_removes_the_contact_for_good(client: hubspot.HubSpot, fake: FakeHubSpot) -> None:
    contact_id = client.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"email": "gone@example.com"})
    ).id
    assert (
        client.crm.contacts.basic_api.purge(PublicGdprDeleteInput(object_id="gone@example.com", id_property="email"))
        is None
    )
    for archived in (False, True):
        with pytest.raises(NotFoundException):
            client.crm.contacts.basic_api.get_by_id(contact_id, archived=archived)
    assert fake.get("contacts", contact_id) is None


# ------------------------------------------------------------------------------------------------ auth and limits


def test_a_wrong_or_missing_token_is_401(fake: FakeHubSpot) -> None:
    for token in ("pat-na1-wrong", None):
        client = hubspot.HubSpot(access_token=token, host=fake.url)
        with pytest.raises(UnauthorizedException) as refused:
            client.crm.contacts.basic_api.get_page()
        assert refused.value.status == 401
        body = body_of(refused.value)
        assert (body["status"], body["category"]) == ("error", "INVALID_AUTHENTICATION")
        assert body["message"].startswith("Authentication credentials not found.")
        assert body["correlationId"]
    assert fake.api_calls == 0


def test_the_ten_secondly_limit_answers_429_and_recovers_after_the_window(
    client: hubspot.HubSpot, clock: Clock, fake: FakeHubSpot
) -> None:
    fake.burst_limit = 10
    contacts = client.crm.contacts.basic_api
    remaining = []
    for _ in range(10):
        _, _, headers = contacts.get_page_with_http_info()
        remaining.append(int(headers["X-HubSpot-RateLimit-Remaining"]))
        clock.now += 0.5
    assert remaining == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    with pytest.raises(ApiException) as limited:
        contacts.get_page()
    assert limited.value.status == 429
    body = body_of(limited.value)
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert (body["status"], body["errorType"], body["message"]) == (
        "error",
        "RATE_LIMIT",
        "You have reached your ten_secondly_rolling limit.",
    )
    assert body["groupName"] == "publicapi:private_app-api-calls-ten-secondly:9001:62515"
    assert body["correlationId"]
    headers = limited.value.headers
    assert (headers["X-HubSpot-RateLimit-Max"], headers["X-HubSpot-RateLimit-Remaining"]) == ("10", "0")
    assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert (headers["X-HubSpot-RateLimit-Daily"], headers["X-HubSpot-RateLimit-Daily-Remaining"]) == (
        "250000",
        "249990",
    )
    assert "Retry-After" not in headers
    assert (fake.throttled, fake.api_calls) == (1, 10)

    clock.now = DAY_START + 10.0  # the first call has left the rolling 10-second window: one more may go
    contacts.get_page()
    with pytest.raises(ApiException):
        contacts.get_page()
    clock.now += 10.0
    assert contacts.get_page_with_http_info()[2]["X-HubSpot-RateLimit-Remaining"] == "9"
    assert fake.throttled_by_policy == {"TEN_SECONDLY_ROLLING": 2}
    assert fake.peak_requests_per_second() == 2
    assert fake.requests_per_second(window=10.0) == 0.1


def test_the_daily_limit_answers_429_daily_until_the_next_day(
    client: hubspot.HubSpot, clock: Clock, fake: FakeHubSpot
) -> None:
    fake.daily_limit = 3
    for _ in range(3):
        client.crm.contacts.basic_api.get_page()
    with pytest.raises(ApiException) as limited:
        client.crm.contacts.basic_api.get_page()
    body = body_of(limited.value)
    assert (limited.value.status, body["policyName"], body["message"]) == (
        429,
        "DAILY",
        "You have reached your daily limit.",
    )
    assert limited.value.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"
    clock.now += 86_400
    assert client.crm.contacts.basic_api.get_page_with_http_info()[2]["X-HubSpot-RateLimit-Daily-Remaining"] == "2"


def test_fault_injection_still_works(client: hubspot.HubSpot, fake: FakeHubSpot) -> None:
    fake.inject(
        Fault(status=503, body={"status": "error", "message": "down"}, times=1, path="/crm/v3/objects/contacts")
    )
    with pytest.raises(ServiceException) as down:
        client.crm.contacts.basic_api.get_page()
    assert down.value.status == 503
    fake.inject(fake.rate_limit_fault(times=1))
    with pytest.raises(ApiException) as storm:
        client.crm.contacts.basic_api.get_page()
    assert (storm.value.status, body_of(storm.value)["policyName"]) == (429, "TEN_SECONDLY_ROLLING")
    assert client.crm.contacts.basic_api.get_page().results == []


# ------------------------------------------------------------------------------------------------ webhooks


def verify_v3(request: dict[str, Any], url: str, secret: str) -> None:
    """The receiver's check, written from HubSpot's validation guide rather than from the fake's code."""
    headers = request["headers"]
    assert headers["x-hubspot-signature-version"] == "v3"
    timestamp = headers["x-hubspot-request-timestamp"]
    source = b"POST" + url.encode() + request["body"] + timestamp.encode()
    expected = base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()
    assert hmac.compare_digest(expected, headers["x-hubspot-signature-v3"])
    assert Signature.is_valid(
        signature=headers["x-hubspot-signature-v3"],
        client_secret=secret,
        request_body=request["body"].decode(),
        http_uri=url,
        signature_version="v3",
        timestamp=timestamp,
    )


def test_the_v3_check_matches_hubspots_published_example() -> None:
    body = (
        b'[{"eventId":531833541,"subscriptionId":3923621,"portalId":48807704,"appId":16111050,"occurredAt":1752613920733,'
        b'"subscriptionType":"contact.creation","attemptNumber":0,"objectId":138017612137,"changeFlag":"CREATED",'
        b'"changeSource":"CRM_UI","sourceId":"userId:76023669"}]'
    )
    url = "https://webhook.site/335453f5-94b3-49d9-b684-a55354d4b8df"
    source = b"POST" + url.encode() + body + b"1752613922216"
    digest = hmac.new(b"cfc68c0b-4b4e-4ef8-b764-95350e4ea479", source, hashlib.sha256).digest()
    assert base64.b64encode(digest).decode() == "gbj1XPRvUt0noT7i7fXfTzOD4sLzQmf0VT28ZYq0EYg="
    assert (
        hubspot_fake.signature_v3("cfc68c0b-4b4e-4ef8-b764-95350e4ea479", "POST", url, body.decode(), "1752613922216")
        == "gbj1XPRvUt0noT7i7fXfTzOD4sLzQmf0VT28ZYq0EYg="
    )


def test_webhooks_are_signed_batched_and_sent_after_the_answer(
    client: hubspot.HubSpot, clock: Clock, fake: FakeHubSpot, receiver: Receiver
) -> None:
    fake.webhook_url = receiver.url
    fake.webhook_delay = 0.3
    contacts = client.crm.contacts.basic_api
    contact_id = contacts.create(
        SimplePublicObjectInputForCreate(properties={"email": "w@example.com", "firstname": "W"})
    ).id
    assert receiver.requests == []  # the API call answered before any webhook went out
    assert fake.wait_for_webhooks(5)
    assert len(receiver.requests) == 1  # the events of one call arrive together
    first = receiver.requests[0]
    assert first["path"] == "/hubspot/webhooks?app=leadpipe"
    assert first["headers"]["content-type"] == "application/json"
    verify_v3(first, receiver.url, "fake-client-secret")
    common = {"portalId": 62515, "appId": 9001, "attemptNumber": 0, "objectId": int(contact_id), "occurredAt": START_MS}
    events = json.loads(first["body"])
    assert [
        {k: v for k, v in e.items() if k not in common and k not in ("eventId", "subscriptionId")} for e in events
    ] == [
        {
            "subscriptionType": "contact.creation",
            "changeFlag": "CREATED",
            "changeSource": "INTEGRATION",
            "sourceId": "9001",
        },
        {
            "subscriptionType": "contact.propertyChange",
            "propertyName": "email",
            "propertyValue": "w@example.com",
            "changeSource": "INTEGRATION",
            "sourceId": "9001",
        },
        {
            "subscriptionType": "contact.propertyChange",
            "propertyName": "firstname",
            "propertyValue": "W",
            "changeSource": "INTEGRATION",
            "sourceId": "9001",
        },
    ]
    assert all(all(e[k] == v for k, v in common.items()) for e in events)
    assert list(events[0]) == [
        "eventId",
        "subscriptionId",
        "portalId",
        "appId",
        "occurredAt",
        "subscriptionType",
        "attemptNumber",
        "objectId",
        "changeFlag",
        "changeSource",
        "sourceId",
    ]
    assert len({e["eventId"] for e in events}) == 3

    fake.webhook_delay = 0.0
    clock.now += 1
    contacts.update(contact_id, SimplePublicObjectInput(properties={"firstname": "W", "lastname": "X"}))  # W unchanged
    edited = httpx.patch(f"{fake.url}/_fake/contacts/{contact_id}", json={"properties": {"jobtitle": "Founder"}})
    assert edited.status_code == 200
    assert edited.json()["properties"]["jobtitle"] == "Founder"
    assert fake.wait_for_webhooks(5)
    contacts.archive(contact_id)
    assert fake.wait_for_webhooks(5)
    client.crm.contacts.basic_api.purge(PublicGdprDeleteInput(object_id=contact_id))
    assert fake.wait_for_webhooks(5)

    later = [
        (
            e["subscriptionType"],
            e.get("propertyName"),
            e.get("propertyValue"),
            e["changeSource"],
            e["sourceId"],
            e.get("changeFlag"),
        )
        for e in receiver.events()[3:]
    ]
    assert later == [
        ("contact.propertyChange", "lastname", "X", "INTEGRATION", "9001", None),
        ("contact.propertyChange", "jobtitle", "Founder", "CRM_UI", "userId:76023669", None),
        ("contact.deletion", None, None, "INTEGRATION", "9001", "DELETED"),
        ("contact.privacyDeletion", None, None, "INTEGRATION", "9001", None),
    ]
    for request in receiver.requests:
        verify_v3(request, receiver.url, "fake-client-secret")
    assert [d["status"] for d in fake.delivered] == [204] * len(receiver.requests)


def test_failed_webhooks_are_retried_with_a_growing_attempt_number(
    client: hubspot.HubSpot, fake: FakeHubSpot, receiver: Receiver
) -> None:
    fake.webhook_url = receiver.url
    fake.webhook_delay = 0.0
    fake.webhook_retry_delays = (0.01, 0.01, 0.01)
    fake.client_secret = "rotated-secret"
    receiver.statuses = [500, 503]
    client.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={}))
    assert fake.wait_for_webhooks(5)
    attempts = [[e["attemptNumber"] for e in json.loads(r["body"])] for r in receiver.requests]
    assert attempts == [[0], [1], [2]]
    assert [(d["attempt"], d["status"], d["ok"]) for d in fake.delivered] == [
        (0, 500, False),
        (1, 503, False),
        (2, 204, True),
    ]
    assert len({json.loads(r["body"])[0]["eventId"] for r in receiver.requests}) == 1  # the same event each time
    for request in receiver.requests:
        verify_v3(request, receiver.url, "rotated-secret")

    receiver.statuses = [500] * 4  # gives up after the last retry
    client.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={}))
    assert fake.wait_for_webhooks(5)
    assert [d["attempt"] for d in fake.delivered[3:]] == [0, 1, 2, 3]
    assert not any(d["ok"] for d in fake.delivered[3:])


def test_webhooks_to_an_unreachable_url_are_logged_as_failed(client: hubspot.HubSpot, fake: FakeHubSpot) -> None:
    receiver = Receiver()
    receiver.stop()  # nothing listens there any more
    fake.webhook_url = receiver.url
    fake.webhook_delay = 0.0
    fake.webhook_retry_delays = ()
    client.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={}))
    assert fake.wait_for_webhooks(5)
    assert [(d["status"], d["ok"]) for d in fake.delivered] == [(None, False)]
    assert fake.delivered[0]["error"].startswith("ConnectionRefusedError")


# ------------------------------------------------------------------------------------------------ admin and CLI


def test_admin_endpoints(client: hubspot.HubSpot, fake: FakeHubSpot) -> None:
    create_contacts(client, {"email": "a@example.com"}, {"email": "b@example.com"})
    state = httpx.get(f"{fake.url}/_fake/state").json()
    assert (state["counts"]["contacts"], state["counts"]["companies"], state["counts"]["api_calls"]) == (2, 0, 1)
    configured = httpx.post(f"{fake.url}/_fake/config", json={"burst_limit": 3, "search_cap": 50, "search_lag": 1.5})
    assert configured.status_code == 200
    assert (configured.json()["burst_limit"], fake.search_cap, fake.search_lag) == (3, 50, 1.5)
    assert httpx.post(f"{fake.url}/_fake/config", json={"nope": 1}).status_code == 400
    _, _, headers = client.crm.contacts.basic_api.get_page_with_http_info()
    assert headers["X-HubSpot-RateLimit-Max"] == "3"
    assert httpx.patch(f"{fake.url}/_fake/contacts/999", json={"properties": {}}).status_code == 404
    assert httpx.post(f"{fake.url}/_fake/reset").status_code == 200
    assert (fake.burst_limit, fake.counts()["contacts"]) == (100, 0)


def test_cli_parses_its_arguments_and_serves_until_stopped(capsys: pytest.CaptureFixture[str]) -> None:
    defaults = hubspot_fake.parse_args([])
    assert (defaults.host, defaults.port, defaults.webhook_url, defaults.token) == (
        "127.0.0.1",
        8790,
        None,
        "pat-local-fake",
    )
    args = hubspot_fake.parse_args(["--port", "0", "--webhook-url", "http://127.0.0.1:9/hook", "--client-secret", "s3"])
    built = hubspot_fake.build(args)
    assert (built.port, built.webhook_url, built.client_secret, built.portal_id) == (
        0,
        "http://127.0.0.1:9/hook",
        "s3",
        62515,
    )
    stop = threading.Event()
    stop.set()
    assert hubspot_fake.main(["--port", "0", "--token", "pat-demo"], stop=stop) == 0
    printed = capsys.readouterr().out
    assert "HubSpot fake serving at http://127.0.0.1:" in printed
    assert "token:         pat-demo" in printed
    assert "portal id:     62515" in printed
    assert "client secret: fake-client-secret" in printed
