"""Deals and pipelines in the local HubSpot fake, and ``leadpipe.hubspot.deals`` reading closed deals through it.

The first part drives the fake with HubSpot's own Python client (``hubspot-api-client``): every answer has to
deserialize into the SDK's models. The second runs ``closed_deals`` against the fake over real HTTP through
``HubSpotClient``: won and lost decided by stage metadata in two pipelines (one with its own stage ids and labels),
open deals and deals outside the window left out, the search's result cap, the limit, and associations read in
batches (counted in the fake's request log).

The client's rate-limit waits are recorded instead of slept, and the fake's clock runs that much ahead of real time:
the fake sees the calls as far apart as the client meant them (or further), so the search API's 5 calls a second
hold on both sides without real waiting, however slow the machine.
"""

# mypy: disable-error-code="import-untyped"
# (hubspot-api-client ships no type information)

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import hubspot
import pytest
from hubspot.crm.associations.v4 import (
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicFetchAssociationsBatchRequest,
)
from hubspot.crm.associations.v4.exceptions import ApiException as AssociationsApiException
from hubspot.crm.deals import (
    AssociationSpec,
    Filter,
    FilterGroup,
    PublicAssociationsForObject,
    PublicObjectId,
    PublicObjectSearchRequest,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.deals.exceptions import ApiException as DealsApiException
from hubspot.crm.pipelines.exceptions import ApiException as PipelinesApiException
from hubspot.crm.pipelines.exceptions import NotFoundException as PipelineNotFound

from leadpipe.enrichment.http import reset_rate_limits
from leadpipe.hubspot.client import HubSpotClient
from leadpipe.hubspot.deals import (
    ClosedDeal,
    Stage,
    closed_deals,
    closed_stages,
    deal_pipelines,
    scan_closed_deals,
    to_epoch_ms,
)
from leadpipe_local.fakes.hubspot import FakeHubSpot, StageSpec

NOW = datetime(2024, 10, 4, tzinfo=UTC)  # the end of every window (close dates do not depend on the fake's clock)
SINCE = NOW - timedelta(days=90)
DEAL_SEARCH = r"/crm/v3/objects/deals/search$"
READ_CONTACTS = r"/crm/v4/associations/deals/contacts/batch/read$"
READ_COMPANIES = r"/crm/v4/associations/deals/companies/batch/read$"
DEFAULT_STAGES = [
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
    "closedwon",
    "closedlost",
]
# A pipeline whose ids and labels say nothing HubSpot's defaults say: only the metadata tells won from lost. The open
# stage is even labelled like a won one.
ENTERPRISE = (
    StageSpec("9912340", "Closed Won (awaiting signature)", 0.9),
    StageSpec("9912345", "Signed", 1.0, closed=True),
    StageSpec("9912346", "No decision", 0.0, closed=True),
)


# ------------------------------------------------------------------------------------------------ fixtures


class SkippedWaits(list[float]):
    """The waits the client asks for, recorded instead of slept; ``clock`` (the fake's) runs that much ahead."""

    def __init__(self) -> None:
        super().__init__()
        self.ahead = 0.0

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        self.ahead += seconds

    def clock(self) -> float:
        return time.time() + self.ahead


@pytest.fixture(scope="module")
def waits() -> SkippedWaits:
    return SkippedWaits()


@pytest.fixture(scope="module")
def server(waits: SkippedWaits) -> Iterator[FakeHubSpot]:
    running = FakeHubSpot(clock=waits.clock).start()
    yield running
    running.stop()


@pytest.fixture
def fake(server: FakeHubSpot) -> Iterator[FakeHubSpot]:
    server.reset()
    reset_rate_limits()
    yield server
    reset_rate_limits()


@pytest.fixture
def sdk(fake: FakeHubSpot) -> hubspot.HubSpot:
    return hubspot.HubSpot(access_token=fake.token, host=fake.url)


@pytest.fixture
def client(fake: FakeHubSpot, waits: SkippedWaits) -> Iterator[HubSpotClient]:
    with HubSpotClient(fake.token, base_url=fake.url, sleep=waits) as running:
        yield running


def bodies(fake: FakeHubSpot, path: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [r.json() for r in fake.calls(path, "POST")]
    return found


def people(fake: FakeHubSpot, count: int, prefix: str = "p") -> list[str]:
    return [fake.add_record("contacts", {"email": f"{prefix}{i}@example.com"}) for i in range(count)]


def at(days_ago: float) -> datetime:
    return NOW - timedelta(days=days_ago)


# ------------------------------------------------------------------------------------------------ the fake, via the SDK


def test_the_default_pipeline_has_hubspots_stage_ids_and_string_metadata(sdk: hubspot.HubSpot) -> None:
    pipelines = sdk.crm.pipelines.pipelines_api.get_all("deals").results
    assert [(p.id, p.label, p.display_order, p.archived) for p in pipelines] == [
        ("default", "Sales Pipeline", 0, False)
    ]
    stages = {s.id: s for s in pipelines[0].stages}
    assert [s.id for s in pipelines[0].stages] == DEFAULT_STAGES
    assert stages["appointmentscheduled"].metadata == {"isClosed": "false", "probability": "0.2"}
    assert stages["contractsent"].metadata == {"isClosed": "false", "probability": "0.9"}
    assert (stages["closedwon"].label, stages["closedwon"].metadata) == (
        "Closed Won",
        {"isClosed": "true", "probability": "1.0"},
    )
    assert (stages["closedlost"].label, stages["closedlost"].metadata) == (
        "Closed Lost",
        {"isClosed": "true", "probability": "0.0"},
    )

    one = sdk.crm.pipelines.pipelines_api.get_by_id("deals", "default")
    assert [s.id for s in one.stages] == DEFAULT_STAGES
    listed = sdk.crm.pipelines.pipeline_stages_api.get_all("deals", "default").results
    assert [s.id for s in listed] == DEFAULT_STAGES
    won = sdk.crm.pipelines.pipeline_stages_api.get_by_id("deals", "default", "closedwon")
    assert (won.display_order, won.metadata["isClosed"]) == (5, "true")

    with pytest.raises(PipelineNotFound):
        sdk.crm.pipelines.pipelines_api.get_by_id("deals", "404")
    with pytest.raises(PipelineNotFound):
        sdk.crm.pipelines.pipeline_stages_api.get_by_id("deals", "default", "nope")
    with pytest.raises(PipelinesApiException) as contacts:
        sdk.crm.pipelines.pipelines_api.get_all("contacts")
    assert contacts.value.status == 400


def test_a_custom_pipeline_keeps_its_own_ids_labels_and_order(fake: FakeHubSpot, sdk: hubspot.HubSpot) -> None:
    enterprise = fake.add_pipeline("Enterprise", ENTERPRISE)
    assert enterprise.isdigit()
    pipelines = sdk.crm.pipelines.pipelines_api.get_all("deals").results
    assert [p.label for p in pipelines] == ["Sales Pipeline", "Enterprise"]
    assert [(s.id, s.label, s.metadata) for s in pipelines[1].stages] == [
        ("9912340", "Closed Won (awaiting signature)", {"isClosed": "false", "probability": "0.9"}),
        ("9912345", "Signed", {"isClosed": "true", "probability": "1.0"}),
        ("9912346", "No decision", {"isClosed": "true", "probability": "0.0"}),
    ]
    options = {p.name: p.options for p in sdk.crm.properties.core_api.get_all("deals").results}
    assert [o.value for o in options["pipeline"]] == ["default", enterprise]
    assert [o.value for o in options["dealstage"]][-3:] == ["9912340", "9912345", "9912346"]
    with pytest.raises(ValueError, match="already used"):
        fake.add_pipeline("Again", [("closedwon", "Won", 1.0, True)])


def test_deals_are_created_searched_and_closed_through_the_sdk(fake: FakeHubSpot, sdk: hubspot.HubSpot) -> None:
    enterprise = fake.add_pipeline("Enterprise", ENTERPRISE)
    contact = fake.add_record("contacts", {"email": "ada@acme.com"})
    company = fake.add_record("companies", {"name": "Acme", "domain": "acme.com"})
    deals = sdk.crm.deals.basic_api

    def spec(type_id: int) -> list[AssociationSpec]:
        return [AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=type_id)]

    created = deals.create(
        SimplePublicObjectInputForCreate(
            properties={"dealname": "Acme renewal", "amount": "1200.50", "dealstage": "contractsent"},
            associations=[
                PublicAssociationsForObject(to=PublicObjectId(id=contact), types=spec(3)),
                PublicAssociationsForObject(to=PublicObjectId(id=company), types=spec(341)),
            ],
        )
    )
    wanted = ["dealname", "amount", "pipeline", "dealstage", "hs_is_closed", "hs_is_closed_won", "hs_is_closed_lost"]
    read = deals.get_by_id(created.id, properties=wanted, associations=["contacts", "companies"])
    assert {k: read.properties[k] for k in wanted} == {
        "dealname": "Acme renewal",
        "amount": "1200.50",
        "pipeline": "default",  # no pipeline given: the default one
        "dealstage": "contractsent",
        "hs_is_closed": "false",
        "hs_is_closed_won": "false",
        "hs_is_closed_lost": "false",
    }
    assert [(a.id, a.type) for a in read.associations["contacts"].results] == [(contact, "deal_to_contact")]
    assert [(a.id, a.type) for a in read.associations["companies"].results] == [(company, "deal_to_company_unlabeled")]

    deals.update(
        created.id, SimplePublicObjectInput(properties={"dealstage": "closedlost", "closedate": "1727740800000"})
    )
    lost = deals.get_by_id(created.id, properties=[*wanted, "closedate"]).properties
    assert (lost["hs_is_closed"], lost["hs_is_closed_won"], lost["hs_is_closed_lost"]) == ("true", "false", "true")
    assert lost["closedate"] == "2024-10-01T00:00:00.000Z"

    signed = deals.create(
        SimplePublicObjectInputForCreate(
            properties={"dealname": "Big one", "pipeline": enterprise, "dealstage": "9912345"}
        )
    )
    assert deals.get_by_id(signed.id, properties=["hs_is_closed_won"]).properties["hs_is_closed_won"] == "true"
    waiting = deals.create(
        SimplePublicObjectInputForCreate(
            properties={"dealname": "Not yet", "pipeline": enterprise, "dealstage": "9912340"}
        )
    )
    assert deals.get_by_id(waiting.id, properties=["hs_is_closed"]).properties["hs_is_closed"] == "false"

    # a stage of another pipeline, an unknown stage, a calculated property: refused
    for properties in (
        {"dealname": "x", "dealstage": "9912345"},
        {"dealname": "x", "pipeline": enterprise, "dealstage": "closedwon"},
        {"dealname": "x", "dealstage": "nope"},
        {"dealname": "x", "dealstage": "closedwon", "hs_is_closed_won": "true"},
    ):
        with pytest.raises(DealsApiException) as refused:
            deals.create(SimplePublicObjectInputForCreate(properties=properties))
        assert refused.value.status == 400, properties
    with pytest.raises(DealsApiException):  # moving to another pipeline keeps a stage that is not in it
        deals.update(created.id, SimplePublicObjectInput(properties={"pipeline": enterprise}))

    found = sdk.crm.deals.search_api.do_search(
        PublicObjectSearchRequest(
            filter_groups=[
                FilterGroup(
                    filters=[
                        Filter(property_name="dealstage", operator="IN", values=["closedlost", "9912345"]),
                        Filter(property_name="hs_is_closed", operator="EQ", value="true"),
                    ]
                )
            ],
            sorts=["dealname"],
        )
    )
    assert found.total == 2
    assert [r.properties["dealname"] for r in found.results] == ["Acme renewal", "Big one"]
    # the deals search's default properties
    assert set(found.results[0].properties) == {
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    }


def test_v4_batch_reads_deal_associations_with_hubspots_type_ids(fake: FakeHubSpot, sdk: hubspot.HubSpot) -> None:
    contacts = people(fake, 2)
    company = fake.add_record("companies", {"name": "Acme", "domain": "acme.com"})
    deal = fake.add_deal("Acme", stage="closedwon", amount=10, contact_ids=contacts, company_ids=[company])
    alone = fake.add_deal("Nobody", stage="closedwon")
    batch = sdk.crm.associations.v4.batch_api

    def read(from_type: str, to_type: str, *ids: str) -> Any:
        inputs = [PublicFetchAssociationsBatchRequest(id=i) for i in ids]
        return batch.get_page_with_http_info(
            from_type, to_type, BatchInputPublicFetchAssociationsBatchRequest(inputs=inputs)
        )

    answer, status, _ = read("deals", "contacts", deal, alone)
    assert status == 207  # the deal without contacts is a per-record error
    assert answer.results[0]._from.id == deal
    assert [(t.to_object_id, [a.type_id for a in t.association_types]) for t in answer.results[0].to] == [
        (contacts[0], [3]),
        (contacts[1], [3]),
    ]
    assert answer.results[0].paging is None
    assert (answer.num_errors, answer.errors[0].context["fromObjectId"]) == (1, [alone])

    companies, status, _ = read("deals", "companies", deal)
    assert status == 200
    assert [(t.to_object_id, t.association_types[0].type_id) for t in companies.results[0].to] == [(company, 341)]
    inverse, _, _ = read("contacts", "deals", contacts[0])
    assert [(t.to_object_id, t.association_types[0].type_id) for t in inverse.results[0].to] == [(deal, 4)]
    back, _, _ = read("companies", "deals", company)
    assert [(t.to_object_id, t.association_types[0].type_id) for t in back.results[0].to] == [(deal, 342)]

    with pytest.raises(AssociationsApiException) as too_many:
        read("deals", "contacts", *[str(i) for i in range(1, 1002)])
    assert too_many.value.status == 400
    _, status, _ = read("deals", "contacts", *[str(i) for i in range(1, 1001)])
    assert status == 207  # 1,000 ids are allowed


def test_a_record_with_many_associations_is_paged_with_after(
    fake: FakeHubSpot, sdk: hubspot.HubSpot, client: HubSpotClient
) -> None:
    fake.association_page_size = 2
    contacts = people(fake, 5)
    deal = fake.add_deal("Crowded", stage="closedwon", contact_ids=contacts)
    other = fake.add_deal("Pair", stage="closedlost", contact_ids=contacts[:1])
    batch = sdk.crm.associations.v4.batch_api
    first = batch.get_page(
        "deals", "contacts", BatchInputPublicFetchAssociationsBatchRequest(inputs=[{"id": deal}])
    ).results[0]
    assert [t.to_object_id for t in first.to] == contacts[:2]
    after = first.paging.next.after
    second = batch.get_page(
        "deals", "contacts", BatchInputPublicFetchAssociationsBatchRequest(inputs=[{"id": deal, "after": after}])
    ).results[0]
    assert [t.to_object_id for t in second.to] == contacts[2:4]

    calls = len(fake.calls(READ_CONTACTS))
    assert client.associations("deals", "contacts", [deal, other, "999"]) == {
        deal: contacts,
        other: contacts[:1],
        "999": [],
    }
    assert len(fake.calls(READ_CONTACTS)) - calls == 3  # the first page of all three, then the crowded one twice


# ------------------------------------------------------------------------------------------------ leadpipe's reader


def test_closed_stages_come_from_the_metadata_not_the_names(fake: FakeHubSpot, client: HubSpotClient) -> None:
    enterprise = fake.add_pipeline("Enterprise", ENTERPRISE)
    stages = closed_stages(client)
    assert stages == {
        "closedwon": Stage("closedwon", "Closed Won", "default", True, True, 1.0, "Sales Pipeline"),
        "closedlost": Stage("closedlost", "Closed Lost", "default", True, False, 0.0, "Sales Pipeline"),
        "9912345": Stage("9912345", "Signed", enterprise, True, True, 1.0, "Enterprise"),
        "9912346": Stage("9912346", "No decision", enterprise, True, False, 0.0, "Enterprise"),
    }
    labels = {p.label: [(s.label, s.is_closed) for s in p.stages] for p in deal_pipelines(client)}
    assert labels["Enterprise"][0] == ("Closed Won (awaiting signature)", False)


def test_won_and_lost_deals_of_two_pipelines_within_the_window(fake: FakeHubSpot, client: HubSpotClient) -> None:
    enterprise = fake.add_pipeline("Enterprise", ENTERPRISE)
    ada, bob, cy = people(fake, 3)
    acme = fake.add_record("companies", {"name": "Acme", "domain": "acme.com"})
    globex = fake.add_record("companies", {"name": "Globex", "domain": "globex.com"})
    won = fake.add_deal(
        "Acme won", stage="closedwon", amount=1200.5, closed_at=at(10), contact_ids=[ada, bob], company_ids=[acme]
    )
    lost = fake.add_deal("Acme lost", stage="closedlost", closed_at=at(20), contact_ids=[bob], company_ids=[acme])
    signed = fake.add_deal(
        "Globex signed",
        stage="9912345",
        pipeline=enterprise,
        amount=50_000,
        closed_at=at(5),
        contact_ids=[cy],
        company_ids=[globex],
    )
    no_decision = fake.add_deal(
        "Globex no decision", stage="9912346", pipeline=enterprise, closed_at=at(30), company_ids=[globex]
    )
    edge = fake.add_deal("On the first day", stage="closedwon", closed_at=SINCE, contact_ids=[ada])
    # left out: open deals (one in a stage labelled like a won one), and closed ones outside the window
    fake.add_deal("Open", stage="contractsent", closed_at=at(3), contact_ids=[ada])
    fake.add_deal("Awaiting", stage="9912340", pipeline=enterprise, closed_at=at(3), contact_ids=[ada])
    fake.add_deal("Too old", stage="closedwon", closed_at=SINCE - timedelta(milliseconds=1), contact_ids=[ada])
    fake.add_deal("Too old, lost", stage="9912346", pipeline=enterprise, closed_at=at(200))
    fake.add_deal("Later", stage="closedwon", closed_at=NOW + timedelta(milliseconds=1))
    fake.add_deal("No close date", stage="closedwon")

    found = closed_deals(client, since=SINCE, until=NOW, limit=None)

    assert [d.id for d in found] == [signed, won, lost, no_decision, edge]  # newest first
    by_id = {d.id: d for d in found}
    assert by_id[won] == ClosedDeal(
        id=won,
        name="Acme won",
        pipeline="default",
        stage="closedwon",
        outcome="won",
        amount=1200.5,
        closed_at=at(10),
        contact_ids=[ada, bob],
        company_ids=[acme],
        pipeline_label="Sales Pipeline",
        stage_label="Closed Won",
    )
    assert [(by_id[i].outcome, by_id[i].pipeline, by_id[i].stage) for i in (signed, no_decision)] == [
        ("won", enterprise, "9912345"),
        ("lost", enterprise, "9912346"),
    ]
    assert (by_id[lost].outcome, by_id[lost].amount, by_id[lost].contact_ids) == ("lost", None, [bob])
    assert (by_id[signed].amount, by_id[signed].company_ids) == (50_000.0, [globex])
    assert (by_id[no_decision].contact_ids, by_id[no_decision].company_ids) == ([], [globex])  # no contacts
    assert (by_id[edge].closed_at, by_id[edge].company_ids) == (SINCE, [])

    # one search (the closed stages of both pipelines, the window in epoch ms), one read per associated type
    (search,) = bodies(fake, DEAL_SEARCH)
    filters = {f["propertyName"]: f for f in search["filterGroups"][0]["filters"]}
    assert sorted(filters["dealstage"]["values"]) == ["9912345", "9912346", "closedlost", "closedwon"]
    assert (filters["closedate"]["operator"], filters["closedate"]["value"], filters["closedate"]["highValue"]) == (
        "BETWEEN",
        str(to_epoch_ms(SINCE)),
        str(to_epoch_ms(NOW)),
    )
    assert search["sorts"] == [{"propertyName": "closedate", "direction": "DESCENDING"}]
    assert [len(b["inputs"]) for b in bodies(fake, READ_CONTACTS)] == [5]
    assert [len(b["inputs"]) for b in bodies(fake, READ_COMPANIES)] == [5]

    # a shorter lookback
    assert [d.id for d in closed_deals(client, since=at(15), until=NOW)] == [signed, won]
    assert closed_deals(client, since=NOW, until=SINCE) == []


def test_associations_are_read_a_thousand_deals_a_call(fake: FakeHubSpot, client: HubSpotClient) -> None:
    contacts = people(fake, 7)
    companies = [fake.add_record("companies", {"name": f"Co {i}"}) for i in range(3)]
    ids = [
        fake.add_deal(
            f"Deal {i}",
            stage="closedwon" if i % 3 else "closedlost",
            amount=i,
            closed_at=at(1 + i / 100),
            contact_ids=[contacts[i % 7]],
            company_ids=[] if i % 10 == 0 else [companies[i % 3]],
        )
        for i in range(1001)
    ]

    found = closed_deals(client, since=SINCE, until=NOW)

    assert [d.id for d in found] == ids  # deal i closed i/100 days before the one before it: newest first
    assert all(d.contact_ids == [contacts[i % 7]] for i, d in enumerate(found))
    assert all(d.company_ids == ([] if i % 10 == 0 else [companies[i % 3]]) for i, d in enumerate(found))
    assert sum(d.outcome == "won" for d in found) == 667
    assert [len(b["inputs"]) for b in bodies(fake, READ_CONTACTS)] == [1000, 1]
    assert [len(b["inputs"]) for b in bodies(fake, READ_COMPANIES)] == [1000, 1]
    assert len(fake.calls(DEAL_SEARCH)) == 6  # 200 a page
    assert len(fake.calls(r"/crm/v3/pipelines/deals$", "GET")) == 1
    assert fake.throttled == 0


def test_the_limit_keeps_the_newest_deals(fake: FakeHubSpot, client: HubSpotClient) -> None:
    contact = fake.add_record("contacts", {"email": "ada@acme.com"})
    ids = [fake.add_deal(f"D{i}", stage="closedwon", closed_at=at(i + 1), contact_ids=[contact]) for i in range(30)]

    found = closed_deals(client, since=SINCE, until=NOW, limit=5)

    assert [d.id for d in found] == ids[:5]
    assert [len(b["inputs"]) for b in bodies(fake, READ_CONTACTS)] == [5]
    assert len(fake.calls(DEAL_SEARCH)) == 1
    assert closed_deals(client, since=SINCE, until=NOW, limit=0) == []


def test_the_search_cap_is_kept_by_narrowing_the_window(fake: FakeHubSpot, client: HubSpotClient) -> None:
    fake.search_cap = 50  # HubSpot's is 10,000: a page past it answers 400
    moments = [at(1 + i // 3) for i in range(90)]  # three deals a day
    spread = [fake.add_deal(f"S{i}", stage="closedlost", closed_at=m) for i, m in enumerate(moments)]
    instant = at(60)
    crowd = [fake.add_deal(f"C{i}", stage="closedwon", closed_at=instant) for i in range(120)]  # one instant

    found = closed_deals(client, since=SINCE, until=NOW, search_cap=50)

    assert len(found) == len({d.id for d in found}) == 210
    assert [d.id for d in found[:90]] == spread
    assert sorted(d.id for d in found[90:]) == sorted(crowd)
    searches = bodies(fake, DEAL_SEARCH)
    assert all(int(s.get("after") or 0) + s["limit"] <= 50 for s in searches)
    by_id = [s for s in searches if s["sorts"][0]["propertyName"] == "hs_object_id"]
    assert by_id and all(
        {"propertyName": "closedate", "operator": "EQ", "value": str(to_epoch_ms(instant))}
        in s["filterGroups"][0]["filters"]
        for s in by_id
    )


def test_more_closed_stages_than_one_in_filter_takes_go_in_or_ed_filter_groups(
    fake: FakeHubSpot, client: HubSpotClient
) -> None:
    regions = [
        fake.add_pipeline(f"Region {r}", [(f"{r}{i:02d}", f"Lost {i}", 0.0, True) for i in range(80)]) for r in (5, 6)
    ]
    newest = fake.add_deal("East", stage="679", pipeline=regions[1], closed_at=at(1))
    middle = fake.add_deal("Home", stage="closedwon", closed_at=at(2))
    oldest = fake.add_deal("West", stage="500", pipeline=regions[0], closed_at=at(3))

    found = closed_deals(client, since=SINCE, until=NOW)

    assert [(d.id, d.outcome) for d in found] == [(newest, "lost"), (middle, "won"), (oldest, "lost")]
    (search,) = bodies(fake, DEAL_SEARCH)
    groups = search["filterGroups"]
    assert [len(g["filters"][0]["values"]) for g in groups] == [100, 62]  # 162 closed stages
    assert all(g["filters"][1]["operator"] == "BETWEEN" for g in groups)
    with pytest.raises(ValueError, match="1 to 100 stages"):
        fake.add_pipeline("Too long", [(f"x{i}", f"S{i}", 0.5, False) for i in range(101)])


def test_a_closed_stage_between_won_and_lost_follows_hs_is_closed_won(fake: FakeHubSpot, client: HubSpotClient) -> None:
    partners = fake.add_pipeline(
        "Partners",
        [
            StageSpec("7700001", "Closed via partner", 0.5, closed=True, won=True),
            StageSpec("7700002", "Closed, parked", None, closed=True, won=False),
        ],
    )
    assert {k: v.won for k, v in closed_stages(client).items() if v.pipeline_id == partners} == {
        "7700001": None,
        "7700002": None,
    }
    via = fake.add_deal("Via partner", stage="7700001", pipeline=partners, closed_at=at(2))
    parked = fake.add_deal("Parked", stage="7700002", pipeline=partners, closed_at=at(3))

    found = closed_deals(client, since=SINCE, until=NOW)

    assert [(d.id, d.outcome) for d in found] == [(via, "won"), (parked, "lost")]


class StubDeals:
    """Answers as HubSpot would for a portal whose closed, undecided stage leaves ``hs_is_closed_won`` empty."""

    def __init__(self) -> None:
        self.searches = 0

    def pipelines(self, object_type: str = "deals") -> list[dict[str, Any]]:
        stages = [
            {"id": "s1", "label": "Done", "displayOrder": 0, "metadata": {"isClosed": "true", "probability": "0.5"}},
            {"id": "s2", "label": "Won", "displayOrder": 1, "metadata": {"isClosed": "true", "probability": "1.0"}},
        ]
        return [{"id": "p", "label": "P", "displayOrder": 0, "stages": stages}]

    def search(self, object_type: str, request: Mapping[str, Any]) -> dict[str, Any]:
        self.searches += 1
        day = "2024-09-30T12:00:00Z"
        return {
            "total": 2,
            "results": [
                {"id": "1", "properties": {"dealstage": "s1", "closedate": day, "hs_is_closed_won": None}},
                {"id": "2", "properties": {"dealstage": "s2", "closedate": day, "amount": "12"}},
            ],
        }

    def associations(self, from_type: str, to_type: str, ids: Sequence[str]) -> dict[str, list[str]]:
        return {i: [] for i in ids}


def test_a_deal_that_nothing_decides_is_skipped_with_a_reason() -> None:
    scan = scan_closed_deals(StubDeals(), since=SINCE, until=NOW)
    assert [(d.id, d.outcome, d.amount) for d in scan.deals] == [("2", "won", 12.0)]
    assert [deal_id for deal_id, _ in scan.skipped] == ["1"]
    assert "hs_is_closed_won" in scan.skipped[0][1] and "0.5" in scan.skipped[0][1]
