"""The Lemlist adapter against the local fake, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from leadpipe.enrichment.http import Budget, SlidingWindow, TokenBucket
from leadpipe.enrichment.providers.base import ProviderError, RateLimit
from leadpipe.lemlist import (
    RATE_LIMIT,
    Campaign,
    LeadPage,
    LemlistClient,
    LemlistLead,
    campaign_tag,
    lead_rows,
)
from leadpipe.models import RowError
from leadpipe_local.fakes.base import Fault
from leadpipe_local.fakes.lemlist import FakeLemlist
from tests.integration.conftest import Clock, Sleeps

pytestmark = pytest.mark.usefixtures("deterministic_http")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLemlist]:
    running = FakeLemlist()
    running.start()
    yield running
    running.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(server: FakeLemlist, clock: Clock) -> FakeLemlist:
    server.reset()
    server.clock = clock
    return server


@pytest.fixture
def sleeps(clock: Clock) -> Sleeps:
    return Sleeps(clock)


Make = Callable[..., LemlistClient]


@pytest.fixture
def make(fake: FakeLemlist, sleeps: Sleeps) -> Iterator[Make]:
    made: list[LemlistClient] = []

    def build(api_key: str = "test-key", **kwargs: Any) -> LemlistClient:
        kwargs.setdefault("sleep", sleeps)
        client = LemlistClient(api_key, fake.api_url, **kwargs)
        made.append(client)
        return client

    yield build
    for client in made:
        client.close()


def person(n: int) -> dict[str, str]:
    return {
        "email": f"lead{n:03d}@acme.io",
        "firstName": f"First{n}",
        "lastName": f"Last{n}",
        "companyName": "Acme",
        "companyDomain": "acme.io",
    }


def seeded(fake: FakeLemlist, count: int, name: str = "Outbound Q3") -> str:
    campaign_id = fake.add_campaign(name)
    fake.add_leads(campaign_id, [person(n) for n in range(count)])
    return campaign_id


# ---------------------------------------------------------------------------------------------------- campaigns


def test_campaigns_lists_every_campaign(fake: FakeLemlist, make: Make) -> None:
    first = fake.add_campaign("Outbound Q3", labels=["eu"])
    second = fake.add_campaign("Webinar follow-up", status="paused")
    third = fake.add_campaign("Old one", status="archived", created_at="2023-05-01T10:00:00.000Z")

    campaigns = make().campaigns()

    assert campaigns == [
        Campaign(id=first, name="Outbound Q3", status="running", labels=["eu"], created_at="2025-01-06T09:00:00.000Z"),
        Campaign(id=second, name="Webinar follow-up", status="paused", created_at="2025-01-06T09:01:00.000Z"),
        Campaign(id=third, name="Old one", status="archived", created_at="2023-05-01T10:00:00.000Z"),
    ]
    [request] = fake.calls("/campaigns$", "GET")
    assert request.query == {"version": ["v2"], "offset": ["0"], "limit": ["100"]}


def test_campaigns_pages_by_100(fake: FakeLemlist, make: Make) -> None:
    ids = [fake.add_campaign(f"Campaign {n}") for n in range(150)]

    campaigns = make().campaigns()

    assert [c.id for c in campaigns] == ids
    assert [r.query["offset"] for r in fake.calls("/campaigns$")] == [["0"], ["100"]]


def test_campaigns_by_status(fake: FakeLemlist, make: Make) -> None:
    fake.add_campaign("Running")
    paused = fake.add_campaign("Paused", status="paused")

    assert [c.id for c in make().campaigns(status="paused")] == [paused]
    assert fake.calls("/campaigns$")[0].query["status"] == ["paused"]


def test_a_list_that_does_not_page_is_a_bad_response(fake: FakeLemlist, make: Make) -> None:
    fake.add_campaign("Only one")
    page = [{"_id": f"cam_{n:017d}", "name": f"C{n}"} for n in range(100)]
    fake.inject(Fault(status=200, body=page, path=r"/campaigns$"))  # the same full page, whatever the offset

    with pytest.raises(ProviderError) as caught:
        make().campaigns()

    assert caught.value.reason == "bad_response"
    assert caught.value.message == "offset 100 answered campaigns already listed"
    assert len(fake.calls()) == 2


def test_one_campaign(fake: FakeLemlist, make: Make) -> None:
    campaign_id = fake.add_campaign("Outbound Q3", labels=["eu", "saas"])

    assert make().campaign(campaign_id) == Campaign(
        id=campaign_id,
        name="Outbound Q3",
        status="running",
        labels=["eu", "saas"],
        created_at="2025-01-06T09:00:00.000Z",
    )


def test_an_unknown_campaign_is_a_clear_not_found(fake: FakeLemlist, make: Make, sleeps: Sleeps) -> None:
    with pytest.raises(ProviderError) as caught:
        make().campaign("cam_doesNotExist0001")

    error = caught.value
    assert (error.reason, error.status, error.retryable) == ("not_found", 404, False)
    assert error.message == "no Lemlist campaign cam_doesNotExist0001"
    assert str(error) == "lemlist: not_found: no Lemlist campaign cam_doesNotExist0001"
    assert len(fake.calls()) == 1
    assert sleeps == []


def test_exporting_an_unknown_campaign_is_a_clear_not_found(fake: FakeLemlist, make: Make) -> None:
    with pytest.raises(ProviderError) as caught:
        list(make().leads("cam_doesNotExist0001"))

    assert (caught.value.reason, caught.value.message) == ("not_found", "no Lemlist campaign cam_doesNotExist0001")
    assert len(fake.calls()) == 1


def test_a_campaign_id_stays_one_path_segment(fake: FakeLemlist, make: Make) -> None:
    with pytest.raises(ProviderError) as caught:
        make().campaign("cam_x/export/leads")

    assert caught.value.reason == "not_found"
    [request] = fake.calls()
    assert request.path == "/api/campaigns/cam_x%2Fexport%2Fleads"
    with pytest.raises(ValueError, match="not a Lemlist id"):
        make().campaign("..")


# -------------------------------------------------------------------------------------------------------- leads


def test_the_export_streams_every_lead_in_one_call(fake: FakeLemlist, make: Make) -> None:
    campaign_id = seeded(fake, 250)

    leads = list(make().leads(campaign_id))

    assert [lead.email for lead in leads] == [f"lead{n:03d}@acme.io" for n in range(250)]
    [request] = fake.calls()
    assert request.path == f"/api/v2/campaigns/{campaign_id}/export/leads"
    assert request.query == {"state": ["all"], "format": ["csv"]}


def test_250_leads_across_pages(fake: FakeLemlist, make: Make) -> None:
    campaign_id = seeded(fake, 250)
    client = make()

    pages: list[LeadPage] = []
    offset: int | None = 0
    for _ in range(5):  # bounded: a pager that never ends fails here instead of hanging
        if offset is None:
            break
        page = client.lead_page(campaign_id, offset=offset, limit=100)
        pages.append(page)
        offset = page.next_offset

    assert [(p.offset, len(p.leads), p.next_offset, p.next_cursor) for p in pages] == [
        (0, 100, 100, "100"),
        (100, 100, 200, "200"),
        (200, 50, None, None),
    ]
    emails = [lead.email for p in pages for lead in p.leads]
    assert emails == [f"lead{n:03d}@acme.io" for n in range(250)]
    assert len(fake.calls("/export/leads")) == 3


def test_leads_from_an_offset(fake: FakeLemlist, make: Make) -> None:
    campaign_id = seeded(fake, 5)

    assert [lead.email for lead in make().leads(campaign_id, offset=3)] == ["lead003@acme.io", "lead004@acme.io"]
    assert make().lead_page(campaign_id, offset=5, limit=10) == LeadPage([], 5, None)


def test_an_empty_campaign_has_no_leads(fake: FakeLemlist, make: Make) -> None:
    campaign_id = fake.add_campaign("Empty")

    assert list(make().leads(campaign_id)) == []
    assert make().lead_page(campaign_id) == LeadPage([], 0, None)


def test_the_state_filter_is_passed_on(fake: FakeLemlist, make: Make) -> None:
    campaign_id = fake.add_campaign("Mixed")
    fake.add_leads(
        campaign_id,
        [
            {**person(1), "lastState": "emailsReplied", "status": "done"},
            {**person(2), "lastState": "emailsSent"},
            {**person(3), "lastState": "emailsInterested", "status": "interested"},
        ],
    )

    leads = list(make().leads(campaign_id, state="emailsReplied,emailsInterested"))

    assert [(lead.email, lead.state, lead.status) for lead in leads] == [
        ("lead001@acme.io", "emailsReplied", "done"),
        ("lead003@acme.io", "emailsInterested", "interested"),
    ]
    assert fake.calls()[0].query["state"] == ["emailsReplied,emailsInterested"]


def test_leads_are_normalised(fake: FakeLemlist, make: Make) -> None:
    campaign_id = fake.add_campaign("Outbound Q3")
    [ann_id, bob_id] = fake.add_leads(
        campaign_id,
        [
            {
                "email": "  Ann.Lee@ACME.io ",
                "firstName": " Ann ",
                "lastName": "Lee  Smith",
                "companyName": " Acme,  Inc. ",
                "companyDomain": "https://www.Acme.io/about",
                "jobTitle": "Head of Growth",
                "phone": "+33 1 23 45 67 89",
                "linkedinUrl": "https://www.linkedin.com/in/annlee",
                "icebreaker": "Saw your talk,\nloved it",
                "timezone": "Europe/Paris",
                "emailStatus": "deliverable",
                "lastState": "emailsOpened",
                "status": "done",
                "Lead Source": "webinar",
                "Website": "acme.io/pricing",
                "empty variable": "  ",
            },
            {"email": "BOB@example.com", "companyDomain": "not a domain"},
        ],
    )

    ann, bob = make().leads(campaign_id)

    assert ann == LemlistLead(
        lemlist_id=ann_id,
        email="ann.lee@acme.io",
        first_name="Ann",
        last_name="Lee Smith",
        company="Acme, Inc.",
        domain="acme.io",
        title="Head of Growth",
        phone="+33 1 23 45 67 89",
        linkedin="https://www.linkedin.com/in/annlee",
        state="emailsOpened",
        status="done",
        email_status="deliverable",
        custom={
            "timezone": "Europe/Paris",
            "icebreaker": "Saw your talk, loved it",
            "Lead Source": "webinar",
            "Website": "acme.io/pricing",
        },
    )
    assert bob == LemlistLead(
        lemlist_id=bob_id, email="bob@example.com", domain="not a domain", state="imported", status="review"
    )


def test_lead_rows_use_the_csv_import_keys_and_tag_the_campaign(fake: FakeLemlist, make: Make) -> None:
    campaign_id = fake.add_campaign("Outbound, Q3 | EU")
    [ann_id, _, carl_id] = fake.add_leads(
        campaign_id,
        [
            {
                **person(1),
                "email": "Ann@Acme.io",
                "jobTitle": "CTO",
                "linkedinUrl": "linkedin.com/in/ann",
                "phone": "0123",
                "icebreaker": "Hi!",
                "Website": "acme.io/pricing",
            },
            {"firstName": "Nobody", "lastName": "Here", "companyName": "Ghost Ltd"},
            {"email": "carl@beta.dev"},
        ],
    )
    client = make()
    campaign = client.campaign(campaign_id)

    rows = list(lead_rows(client.leads(campaign_id), campaign.name))

    assert [(r.row, r.lemlist_id, r.error is None) for r in rows] == [
        (1, ann_id, True),
        (2, rows[1].lemlist_id, False),
        (3, carl_id, True),
    ]
    assert rows[0].values == {
        "email": "ann@acme.io",
        "first_name": "First1",
        "last_name": "Last1",
        "company": "Acme",
        "title": "CTO",
        "phone": "0123",
        "website": "acme.io",
        "linkedin": "linkedin.com/in/ann",
        "tags": "lemlist:outbound q3 eu",
        "custom:icebreaker": "Hi!",
        "custom:website_2": "acme.io/pricing",  # "website" is one of leadpipe's own fields
    }
    assert rows[0].custom == {"icebreaker": "Hi!", "website_2": "acme.io/pricing"}
    assert rows[1].values == {
        "first_name": "Nobody",
        "last_name": "Here",
        "company": "Ghost Ltd",
        "tags": "lemlist:outbound q3 eu",
    }
    assert rows[1].error == RowError(
        row=2,
        field="email",
        code="missing_email",
        message=f"no email: Lemlist lead {rows[1].lemlist_id} (Nobody Here) has no email address",
    )
    assert rows[2].values == {"email": "carl@beta.dev", "tags": "lemlist:outbound q3 eu"}


def test_lead_rows_number_rows_from_first_row() -> None:
    leads = [LemlistLead(email="a@x.io"), LemlistLead(first_name="Zed")]

    rows = list(lead_rows(leads, "C", first_row=101))

    assert [(r.row, r.lemlist_id) for r in rows] == [(101, None), (102, None)]
    assert rows[1].error is not None
    assert rows[1].error.message == "no email: Lemlist lead without an id (Zed) has no email address"


@pytest.mark.parametrize(
    ("name", "tag"),
    [
        ("Outbound Q3", "lemlist:outbound q3"),
        ("A;B|C,D", "lemlist:a b c d"),
        ("   ", "lemlist:campaign"),
        ("x" * 100, "lemlist:" + "x" * 56),
    ],
)
def test_campaign_tag(name: str, tag: str) -> None:
    assert campaign_tag(name) == tag


def test_the_key_travels_as_basic_auth_not_in_the_url(fake: FakeLemlist, make: Make) -> None:
    campaign_id = seeded(fake, 1)
    client = make("s3cret-key")
    fake.api_key = "s3cret-key"
    try:
        client.campaigns()
        list(client.leads(campaign_id))
    finally:
        fake.api_key = "test-key"

    expected = "Basic " + base64.b64encode(b":s3cret-key").decode()
    for request in fake.calls():
        assert request.headers["authorization"] == expected
        assert "s3cret-key" not in str(request.query)


# ----------------------------------------------------------------------------------------------------- failures


def test_a_wrong_key_is_an_auth_error_without_retry(fake: FakeLemlist, make: Make, sleeps: Sleeps) -> None:
    campaign_id = seeded(fake, 1)
    client = make("wrong-key")

    with pytest.raises(ProviderError) as caught:
        client.campaigns()
    with pytest.raises(ProviderError) as caught_export:
        list(client.leads(campaign_id))

    for error in (caught.value, caught_export.value):
        assert (error.reason, error.status, error.retryable) == ("auth", 401, False)
        assert error.message == "HTTP 401: The authentication you supplied is incorrect"
    assert len(fake.calls()) == 2
    assert sleeps == []


def test_a_key_without_a_user_is_an_auth_error_not_a_missing_campaign(fake: FakeLemlist, make: Make) -> None:
    fake.inject(Fault(status=404, body=b"No user found for this API key", times=2))
    client = make()

    with pytest.raises(ProviderError) as caught:
        client.campaign("cam_any")
    with pytest.raises(ProviderError) as caught_list:
        client.campaigns()

    assert (caught.value.reason, caught.value.status) == ("auth", 404)
    assert (caught_list.value.reason, caught_list.value.status, caught_list.value.retryable) == ("auth", 404, False)


def test_a_429_is_retried_after_its_retry_after(fake: FakeLemlist, make: Make, sleeps: Sleeps) -> None:
    campaign_id = fake.add_campaign("Outbound Q3")
    fake.inject(Fault(status=429, body=b"Too many requests", headers={"Retry-After": "3"}, times=1))
    client = make()

    assert [c.id for c in client.campaigns()] == [campaign_id]
    assert sleeps == [3.0]
    assert client.http.throttled == 1
    assert len(fake.calls()) == 2


def test_a_429_on_the_export_is_retried_after_its_retry_after(fake: FakeLemlist, make: Make, sleeps: Sleeps) -> None:
    campaign_id = seeded(fake, 3)
    fake.inject(Fault(status=429, body=b"Too many requests", headers={"Retry-After": "2"}, times=2))
    client = make()

    emails = [lead.email for lead in client.leads(campaign_id)]

    assert emails == ["lead000@acme.io", "lead001@acme.io", "lead002@acme.io"]
    assert sleeps == [2.0, 2.0]
    assert client.http.throttled == 2
    assert len(fake.calls()) == 3


def test_the_fakes_rate_limit_answers_429_and_the_client_waits(fake: FakeLemlist, make: Make, sleeps: Sleeps) -> None:
    campaign_id = fake.add_campaign("Outbound Q3")
    fake.rate_limit = (2, 2.0)
    client = make(bucket=TokenBucket(RateLimit(100, 1.0)))  # a limiter far above the fake's: the fake decides

    for _ in range(3):
        assert client.campaign(campaign_id).id == campaign_id

    assert sleeps == [2.0]  # the fake's Retry-After: the window's first call leaves it 2 s later
    assert client.http.throttled == 1
    assert len(fake.calls()) == 4


def test_the_client_stays_under_20_calls_in_2_seconds(
    fake: FakeLemlist, make: Make, sleeps: Sleeps, clock: Clock
) -> None:
    campaign_id = fake.add_campaign("Outbound Q3")
    bucket = SlidingWindow(RATE_LIMIT, margin=0.2, clock=clock)  # what bucket_for(..., rolling=True) builds
    client = make(bucket=bucket)

    for _ in range(30):
        client.campaign(campaign_id)

    assert list(sleeps) == pytest.approx([2.2])  # the 21st call waits for the first one to leave the window
    assert client.http.throttled == 0
    assert len(fake.calls()) == 30


def test_5xx_is_retried(fake: FakeLemlist, make: Make, sleeps: Sleeps) -> None:
    campaign_id = seeded(fake, 2)
    fake.inject(Fault(status=502, body=b"Bad gateway", times=2))
    client = make()

    assert client.campaign(campaign_id).name == "Outbound Q3"
    assert sleeps == [0.5, 1.0]
    fake.inject(Fault(status=503, body=b"Unavailable", times=1))
    assert [lead.email for lead in client.leads(campaign_id)] == ["lead000@acme.io", "lead001@acme.io"]
    assert sleeps == [0.5, 1.0, 0.5]
    assert len(fake.calls()) == 5


def test_persistent_5xx_fails_after_the_retries(fake: FakeLemlist, make: Make, sleeps: Sleeps) -> None:
    campaign_id = seeded(fake, 2)
    fake.inject(Fault(status=500, body=b"oops"))

    with pytest.raises(ProviderError) as caught:
        list(make().leads(campaign_id))

    assert (caught.value.reason, caught.value.status, caught.value.retryable) == ("server_error", 500, True)
    assert sleeps == [0.5, 1.0, 2.0]
    assert len(fake.calls()) == 4


def test_a_timeout_is_retried(fake: FakeLemlist, make: Make, sleeps: Sleeps) -> None:
    campaign_id = seeded(fake, 2)
    fake.inject(Fault(timeout=0.5, status=504, times=1))  # answered after the client gave up, without the handler

    assert len(list(make(timeout=0.1).leads(campaign_id))) == 2
    assert sleeps == [0.5]
    assert len(fake.calls()) == 2


@pytest.mark.parametrize("call", ["campaign", "leads"])
def test_persistent_timeouts_are_a_timeout_error(fake: FakeLemlist, make: Make, sleeps: Sleeps, call: str) -> None:
    campaign_id = seeded(fake, 2)
    fake.inject(Fault(timeout=0.5, status=504, times=4))  # late answers must not count in a later test's window
    client = make(timeout=0.1)

    action = (lambda: client.campaign(campaign_id)) if call == "campaign" else (lambda: list(client.leads(campaign_id)))

    with pytest.raises(ProviderError) as caught:
        action()

    assert (caught.value.reason, caught.value.retryable) == ("timeout", True)
    assert sleeps == [0.5, 1.0, 2.0]
    assert len(fake.calls()) == 4


def test_malformed_json_is_a_bad_response(fake: FakeLemlist, make: Make, sleeps: Sleeps) -> None:
    campaign_id = seeded(fake, 1)
    fake.inject(Fault(malformed=True, times=2))
    client = make()

    with pytest.raises(ProviderError) as caught:
        client.campaigns()
    with pytest.raises(ProviderError) as caught_one:
        client.campaign(campaign_id)

    for error in (caught.value, caught_one.value):
        assert error.reason == "bad_response"
        assert error.message == "not JSON: '{\"truncated\": '"
    assert len(fake.calls()) == 2
    assert sleeps == []


def test_a_malformed_export_is_a_bad_response(fake: FakeLemlist, make: Make) -> None:
    campaign_id = seeded(fake, 1)
    fake.inject(Fault(malformed=True, times=1))
    fake.inject(Fault(status=200, body=b"name,phone\nAnn,0123\n", headers={"content-type": "text/csv"}, times=1))
    client = make()

    with pytest.raises(ProviderError) as caught:
        list(client.leads(campaign_id))
    with pytest.raises(ProviderError) as caught_csv:
        list(client.leads(campaign_id))

    assert caught.value.reason == "bad_response"
    assert caught.value.message == "expected a CSV export, got application/json: b'{\"truncated\": '"
    assert caught_csv.value.reason == "bad_response"
    assert caught_csv.value.message == "the export has no email column: ['name', 'phone']"


def test_an_answer_that_is_not_a_campaign_is_a_bad_response(fake: FakeLemlist, make: Make) -> None:
    fake.inject(Fault(status=200, body={"error": "?"}, times=1))
    fake.inject(Fault(status=200, body=[{"name": "no id"}], times=1))
    client = make()

    with pytest.raises(ProviderError) as caught:
        client.campaigns()
    with pytest.raises(ProviderError) as caught_item:
        client.campaigns()

    assert caught.value.message == "no campaign list in \"{'error': '?'}\""
    assert caught_item.value.message == "not a campaign: \"{'name': 'no id'}\""


def test_the_budget_refuses_a_long_retry_after(fake: FakeLemlist, make: Make, sleeps: Sleeps) -> None:
    campaign_id = seeded(fake, 1)
    fake.inject(Fault(status=429, headers={"Retry-After": "120"}, body=b"Too many requests", times=1))

    with pytest.raises(ProviderError) as caught:
        list(make(budget=Budget(lambda: 30.0)).leads(campaign_id))

    assert caught.value.reason == "budget"
    assert "120.0s" in caught.value.message
    assert sleeps == []
    assert len(fake.calls()) == 1


class _CutStream(httpx.SyncByteStream):
    """A body that breaks after ``cut`` bytes, like a connection lost mid-download."""

    def __init__(self, data: bytes, cut: int) -> None:
        self.data = data
        self.cut = cut

    def __iter__(self) -> Iterator[bytes]:
        yield self.data[: self.cut]
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


class _CuttingTransport(httpx.BaseTransport):
    """Real HTTP to the fake; the first export's body is cut short."""

    def __init__(self, cut: int) -> None:
        self.inner = httpx.HTTPTransport()
        self.cut = cut
        self.cuts_left = 1

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if self.cuts_left and request.url.path.endswith("/export/leads"):
            self.cuts_left -= 1
            data = response.read()
            response.close()
            return httpx.Response(response.status_code, headers=response.headers, stream=_CutStream(data, self.cut))
        return response

    def close(self) -> None:
        self.inner.close()


def test_an_export_cut_mid_stream_resumes_after_the_leads_handed_out(
    fake: FakeLemlist, make: Make, sleeps: Sleeps
) -> None:
    campaign_id = seeded(fake, 40)
    body = httpx.get(
        f"{fake.api_url}/v2/campaigns/{campaign_id}/export/leads", auth=("", "test-key"), params={"state": "all"}
    ).content
    cut = body.index(b"lead017@acme.io") + 4  # in the middle of the 18th lead's row

    leads = list(make(transport=_CuttingTransport(cut)).leads(campaign_id))

    assert [lead.email for lead in leads] == [f"lead{n:03d}@acme.io" for n in range(40)]  # each once, in order
    assert sleeps == [0.5]
    assert len(fake.calls("/export/leads")) == 3  # the one above, the cut one, the resumed one


# --------------------------------------------------------------------------------------- the fake's own answers


def test_the_fake_answers_in_the_documented_shapes(fake: FakeLemlist) -> None:
    campaign_id = fake.add_campaign("Outbound Q3")
    [lead_id] = fake.add_leads(
        campaign_id,
        [{**person(7), "jobTitle": "CTO", "Lead Source": "webinar", "lastState": "emailsReplied", "status": "done"}],
    )
    auth = ("", "test-key")
    with httpx.Client(base_url=fake.api_url) as client:
        no_key = client.get("/campaigns")
        wrong_key = client.get("/campaigns", auth=("", "nope"))
        with_user = client.get("/campaigns", auth=("someone", "test-key"))
        listed = client.get("/campaigns", auth=auth, params={"version": "v2"})
        missing = client.get("/campaigns/cam_missing", auth=auth)
        as_csv = client.get(f"/v2/campaigns/{campaign_id}/export/leads", auth=auth, params={"state": "all"})
        as_json = client.get(f"/campaigns/{campaign_id}/export/leads", auth=auth, params={"format": "json"})

    assert (no_key.status_code, no_key.text) == (400, "No API key provided")
    assert (wrong_key.status_code, wrong_key.text) == (401, "The authentication you supplied is incorrect")
    assert wrong_key.headers["content-type"].startswith("text/plain")
    assert with_user.status_code == 401
    assert listed.json() == [
        {
            "_id": campaign_id,
            "name": "Outbound Q3",
            "labels": [],
            "createdAt": "2025-01-06T09:00:00.000Z",
            "createdBy": "usr_fakeLemlistUser01",
            "status": "running",
        }
    ]
    assert listed.headers["x-ratelimit-limit"] == "20"
    assert listed.headers["x-ratelimit-remaining"] == "19"
    assert listed.headers["x-ratelimit-reset"].endswith("GMT+0000 (Coordinated Universal Time)")
    assert (missing.status_code, missing.text) == (404, "Campaign not found")
    assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert as_csv.text == (
        "emailStatus,email,firstName,lastName,picture,phone,linkedinUrl,timezone,companyName,companyDomain,"
        "icebreaker,jobTitle,Lead Source,lastState,status,_id\n"
        f",lead007@acme.io,First7,Last7,,,,,Acme,acme.io,,CTO,webinar,emailsReplied,done,{lead_id}\n"
    )
    assert as_json.json() == [
        {
            **person(7),
            "jobTitle": "CTO",
            "Lead Source": "webinar",
            "lastState": "emailsReplied",
            "status": "done",
            "_id": lead_id,
        }
    ]


def test_the_fake_limits_20_calls_in_any_2_seconds(fake: FakeLemlist, clock: Clock) -> None:
    with httpx.Client(base_url=fake.api_url, auth=("", "test-key")) as client:
        statuses = [client.get("/campaigns").status_code for _ in range(20)]
        clock.now += 1.5
        throttled = client.get("/campaigns")
        clock.now += 0.5
        again = client.get("/campaigns")

    assert statuses == [200] * 20
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "1"  # the first 20 leave the window 0.5 s later: rounded up
    assert throttled.headers["x-ratelimit-remaining"] == "0"
    assert throttled.text == "Too many requests"
    assert again.status_code == 200
