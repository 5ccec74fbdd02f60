"""HubSpot: overwrite policies and values (pure), and the client's retry rules and batching (mock transport)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from leadpipe.enrichment.http import SlidingWindow, bucket_for, reset_rate_limits, set_container_share
from leadpipe.enrichment.providers.base import ProviderError, RateLimit
from leadpipe.hubspot.client import HubSpotClient, classify
from leadpipe.hubspot.mapping import DEFAULT_MAPPING, PropertyMapping, decide, value_of
from leadpipe.hubspot.sync import desired_hash, note_body
from leadpipe.models import Contact, EnrichmentMeta, FieldValue

T = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def fv(value: object, provider: str = "sample", confidence: float = 0.9) -> FieldValue:
    return FieldValue(value=value, provider=provider, confidence=confidence, fetched_at=T)  # type: ignore[arg-type]


def ann(**fields: Any) -> Contact:
    base: dict[str, Any] = {
        "workspace": "default",
        "email": "ann@acme.com",
        "email_domain": "acme.com",
        "domain": "acme.com",
        "first_name": "Ann",
        "title": "Head of Sales",
        "quality": 0.8123,
        "enrichment": {
            "title": fv("VP Sales", "apollo", 0.9),
            "industry": fv("software"),
            "seniority": fv("vp", "sample-web"),
            "email_status": fv("valid", "hunter", 0.95),
            "first_name": fv("Ann", "import", 0.7),
            "company_name": fv("Acme", "sample", 0.5),
        },
        "enrichment_meta": EnrichmentMeta(request_id="req-1", enriched_at=T, sources_asked=["sample", "apollo"]),
    }
    base.update(fields)
    return Contact(**base)


def m(source: str, prop: str, policy: Any = None) -> PropertyMapping:
    return PropertyMapping(source=source, property=prop, policy=policy)


# ------------------------------------------------------------------------------------------------ values and policies


def test_values_prefer_confident_enrichment_and_fall_back_to_the_contacts_own() -> None:
    c = ann(company="Acme Corp")
    assert value_of(c, "title") == "VP Sales"  # enriched at 0.9
    assert value_of(c, "company") == "Acme Corp"  # enriched company_name only 0.5: the imported value
    assert value_of(c, "industry") == "software"
    assert value_of(c, "quality") == "0.8123"
    assert (
        value_of(c, "confidence") == "0.79"
    )  # mean of the key fields present: email, first name, title, company, industry
    assert value_of(c, "sources") == "apollo;hunter;sample;sample-web"  # "import" is not a provider
    assert value_of(c, "enriched_at") == "2026-11-24T09:30:00.000Z"
    assert value_of(c, "phone") is None


def test_default_policies() -> None:
    assert m("title", "jobtitle").policy == "fill_empty"
    assert m("seniority", "leadpipe_seniority").policy == "ours"
    assert m("title", "jobtitle", "always").policy == "always"
    assert PropertyMapping.model_validate({"source": "title", "property": "jobtitle"}).policy == "fill_empty"
    assert {p.property for p in DEFAULT_MAPPING} >= {"firstname", "jobtitle", "leadpipe_quality_score"}
    assert all(p.policy in {"fill_empty", "ours"} for p in DEFAULT_MAPPING)


def test_a_mapping_names_a_field_leadpipe_has() -> None:
    with pytest.raises(ValidationError, match="unknown leadpipe field 'favourite_colour'"):
        PropertyMapping.model_validate({"source": "favourite_colour", "property": "color"})
    with pytest.raises(ValidationError):
        PropertyMapping.model_validate({"source": "custom.", "property": "x"})
    with pytest.raises(ValidationError):
        PropertyMapping.model_validate({"source": "title", "property": "jobtitle", "policy": "sometimes"})
    for source in ("company_name", "founded_year", "quality", "website", "custom.lead_source"):
        assert PropertyMapping.model_validate({"source": source, "property": "p"}).source == source


def test_a_custom_csv_column_can_be_mapped() -> None:
    contact = ann().model_copy(update={"custom": {"lead_source": "webinar"}})  # a "Lead Source" column
    mapping = [m("custom.lead_source", "lead_source"), m("custom.missing", "other")]
    assert value_of(contact, "custom.lead_source") == "webinar"
    assert decide(contact, mapping, None, {}) == {"lead_source": "webinar"}


def test_fill_empty_never_replaces_a_value() -> None:
    mapping = [m("title", "jobtitle"), m("industry", "industry")]
    assert decide(ann(), mapping, None, {}) == {"jobtitle": "VP Sales", "industry": "software"}  # a new contact
    assert decide(ann(), mapping, {"jobtitle": "CRO (typed by a rep)", "industry": ""}, {}) == {"industry": "software"}


def test_ours_overwrites_only_what_leadpipe_wrote_last() -> None:
    mapping = [m("seniority", "leadpipe_seniority"), m("title", "jobtitle", "ours")]
    last = {"leadpipe_seniority": "manager", "jobtitle": "Sales Lead"}
    # HubSpot still holds leadpipe's last values: leadpipe may update them
    assert decide(ann(), mapping, {"leadpipe_seniority": "manager", "jobtitle": "Sales Lead"}, last) == {
        "leadpipe_seniority": "vp",
        "jobtitle": "VP Sales",
    }
    # a person changed them since: theirs wins
    assert decide(ann(), mapping, {"leadpipe_seniority": "c_suite", "jobtitle": "Chief Sales Officer"}, last) == {}


def test_always_overwrites_and_nothing_is_written_when_equal() -> None:
    mapping = [m("title", "jobtitle", "always"), m("industry", "industry", "always")]
    assert decide(ann(), mapping, {"jobtitle": "Intern", "industry": "software"}, {}) == {"jobtitle": "VP Sales"}


def test_the_hash_changes_with_the_values_written_only() -> None:
    mapping = list(DEFAULT_MAPPING)
    same = desired_hash(ann(), mapping)
    assert desired_hash(ann(tags={"x": T}), mapping) == same  # tags are not synced
    assert desired_hash(ann(quality=0.5), mapping) != same
    assert desired_hash(ann(), mapping[:3]) != same


def test_the_note_summarises_the_enrichment() -> None:
    text = note_body(ann())
    assert text.startswith("leadpipe enriched this contact: quality 0.81")
    assert "Sources asked: sample, apollo" in text
    assert "- title: VP Sales (apollo, confidence 0.90)" in text


# ------------------------------------------------------------------------------------------------ retry rules


def response(status: int, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body if body is not None else {}, headers=headers or {})


def test_hubspot_answers_are_classified_for_retrying() -> None:
    burst = response(
        429,
        {"policyName": "TEN_SECONDLY_ROLLING", "message": "You have reached your ten_secondly_rolling limit."},
        {"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"},
    )
    error = classify(burst)
    assert error is not None and (error.reason, error.retryable, error.retry_after) == ("rate_limited", True, 2.0)
    daily = classify(response(429, {"policyName": "DAILY", "message": "You have reached your daily limit."}))
    assert daily is not None and (daily.reason, daily.retryable) == ("daily_limit", False)
    search = classify(response(429, {"message": "You have reached your secondly limit."}))
    assert search is not None and (search.reason, search.retry_after) == ("rate_limited", 1.0)
    locked = classify(response(423, {"message": "locked"}))
    assert locked is not None and (locked.reason, locked.retry_after) == ("locked", 2.0)
    migrating = classify(response(477, {"message": "Migration in progress"}, {"Retry-After": "7"}))
    assert migrating is not None and (migrating.reason, migrating.retry_after) == ("migration", 7.0)
    for status in (500, 502, 503, 504, 521, 524):
        assert classify(response(status)).reason == "server_error"  # type: ignore[union-attr]
    assert classify(response(401)).retryable is False  # type: ignore[union-attr]
    assert classify(response(400, {"message": "bad"})) is None  # not HubSpot-specific: the generic rules decide


# ------------------------------------------------------------------------------------------------ batching


class Recorder:
    def __init__(self, answers: list[httpx.Response | Exception] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.answers = answers or []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.answers:
            answer = self.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        body = json.loads(request.content or b"{}")
        if request.url.path.endswith("/search"):
            domains = body["filterGroups"][0]["filters"][0]["values"]
            return httpx.Response(
                200,
                json={
                    "total": len(domains),
                    "results": [
                        {"id": str(i), "properties": {"domain": d, "createdate": "2026-01-01"}}
                        for i, d in enumerate(domains)
                    ],
                },
            )
        inputs = body.get("inputs", [])
        return httpx.Response(
            200,
            json={
                "status": "COMPLETE",
                "results": [
                    {"id": str(i), "properties": {"email": x.get("id")}, "new": True} for i, x in enumerate(inputs)
                ],
            },
        )


@pytest.fixture
def rec() -> Iterator[Recorder]:
    reset_rate_limits()
    yield Recorder()
    reset_rate_limits()


def client(rec: Recorder, **kw: Any) -> HubSpotClient:
    return HubSpotClient(
        "pat-na1-test",
        base_url="https://api.hubapi.test",
        transport=httpx.MockTransport(rec),
        sleep=kw.pop("sleep", lambda s: None),
        **kw,
    )


def test_batches_are_100_inputs_with_the_bearer_token(rec: Recorder) -> None:
    outcome = client(rec).upsert("contacts", "email", [(f"p{i}@acme.com", {"jobtitle": "x"}) for i in range(250)])
    assert [len(json.loads(r.content)["inputs"]) for r in rec.requests] == [100, 100, 50]
    assert rec.requests[0].url.path == "/crm/v3/objects/contacts/batch/upsert"
    assert rec.requests[0].headers["authorization"] == "Bearer pat-na1-test"
    assert json.loads(rec.requests[0].content)["inputs"][0] == {
        "id": "p0@acme.com",
        "idProperty": "email",
        "properties": {"jobtitle": "x"},
        "objectWriteTraceId": "p0@acme.com",
    }
    assert len(outcome.results) == 250


def test_207_errors_are_returned_not_raised(rec: Recorder) -> None:
    rec.answers = [
        httpx.Response(
            207,
            json={
                "status": "COMPLETE",
                "numErrors": 1,
                "results": [{"id": "1", "properties": {"email": "a@acme.com"}, "new": False}],
                "errors": [
                    {
                        "status": "error",
                        "category": "VALIDATION_ERROR",
                        "message": "Email address bad@ is invalid",
                        "context": {"id": ["bad@"]},
                    }
                ],
            },
        )
    ]
    outcome = client(rec).upsert("contacts", "email", [("a@acme.com", {}), ("bad@", {})])
    assert [r["id"] for r in outcome.results] == ["1"]
    assert outcome.errors[0]["category"] == "VALIDATION_ERROR"


def test_a_burst_429_is_retried_and_daily_is_not(rec: Recorder) -> None:
    slept: list[float] = []
    rec.answers = [
        httpx.Response(
            429,
            json={"policyName": "TEN_SECONDLY_ROLLING", "message": "ten_secondly_rolling"},
            headers={"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"},
        ),
        httpx.Response(200, json={"status": "COMPLETE", "results": []}),
        httpx.Response(429, json={"policyName": "DAILY", "message": "daily"}),
    ]
    hs = client(rec, sleep=slept.append)
    hs.upsert("contacts", "email", [("a@acme.com", {})])
    assert slept == [2.0] and hs.throttled == 1
    with pytest.raises(ProviderError) as daily:
        hs.upsert("contacts", "email", [("a@acme.com", {})])
    assert daily.value.reason == "daily_limit" and len(rec.requests) == 3


MAYBE_CARRIED_OUT: list[Any] = [
    httpx.ReadTimeout("read"),
    httpx.ReadError("reset"),
    httpx.RemoteProtocolError("Server disconnected without sending a response."),
    *(httpx.Response(status, json={"message": "gateway"}) for status in (500, 502, 504, 524)),
]
NOT_CARRIED_OUT: list[Any] = [
    httpx.ConnectError("refused"),
    httpx.ConnectTimeout("connect"),
    httpx.Response(429, json={"policyName": "TEN_SECONDLY_ROLLING", "message": "ten_secondly_rolling"}),
    httpx.Response(423, json={"message": "locked"}),
]
COMPLETE = {"status": "COMPLETE", "results": [{"id": "1", "properties": {}, "objectWriteTraceId": "0"}]}


@pytest.mark.parametrize("failure", MAYBE_CARRIED_OUT, ids=repr)
def test_a_create_that_may_have_been_carried_out_is_not_sent_again(rec: Recorder, failure: Any) -> None:
    rec.answers = [failure, httpx.Response(201, json=COMPLETE)]
    with pytest.raises(ProviderError):
        client(rec).create_notes([("501", "2026-11-24T09:30:00.000Z", "hello")])
    assert len(rec.requests) == 1  # the caller reads back what exists before making it again


@pytest.mark.parametrize("failure", NOT_CARRIED_OUT, ids=repr)
def test_a_create_that_never_reached_hubspot_or_was_refused_first_is_sent_again(rec: Recorder, failure: Any) -> None:
    rec.answers = [failure, httpx.Response(201, json=COMPLETE)]
    outcome = client(rec).create_notes([("501", "2026-11-24T09:30:00.000Z", "hello")])
    assert len(rec.requests) == 2 and len(outcome.results) == 1


@pytest.mark.parametrize("failure", MAYBE_CARRIED_OUT + NOT_CARRIED_OUT, ids=repr)
def test_an_upsert_is_sent_again_after_any_passing_failure(rec: Recorder, failure: Any) -> None:
    rec.answers = [failure, httpx.Response(200, json=COMPLETE)]
    client(rec).upsert("contacts", "email", [("a@acme.com", {})])
    assert len(rec.requests) == 2  # an upsert by a unique key is idempotent


def test_companies_are_searched_100_domains_at_a_time(rec: Recorder) -> None:
    hs = client(rec)
    found = hs.companies_by_domain([f"d{i}.com" for i in range(130)] + ["d0.com", ""])
    searches = [json.loads(r.content) for r in rec.requests]
    assert [len(s["filterGroups"][0]["filters"][0]["values"]) for s in searches] == [100, 30]
    assert searches[0]["filterGroups"][0]["filters"][0]["operator"] == "IN" and searches[0]["limit"] == 200
    assert len(found) == 130 and hs.search_http.calls == 2 and hs.http.calls == 0


def test_notes_are_created_with_their_contact_association(rec: Recorder) -> None:
    client(rec).create_notes([("501", "2026-11-24T09:30:00.000Z", "hello")])
    [request] = rec.requests
    body = json.loads(request.content)
    assert request.url.path == "/crm/v3/objects/notes/batch/create"
    assert body["inputs"][0] == {
        "objectWriteTraceId": "0",
        "properties": {"hs_timestamp": "2026-11-24T09:30:00.000Z", "hs_note_body": "hello"},
        "associations": [
            {"to": {"id": "501"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}]}
        ],
    }


# -------------------------------------------------------------------------------------------- the limiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_sliding_window_never_lets_more_than_the_limit_into_any_window() -> None:
    import random

    clock = FakeClock()
    window = SlidingWindow(RateLimit(100, 10.0), clock=clock)
    rng = random.Random(3)
    starts = []
    for _ in range(1_000):
        clock.now += rng.choice([0.0, 0.0, 0.01, 0.2, 1.5])  # bursts and pauses
        starts.append(clock.now + window.reserve())
    starts.sort()
    # any 10 s window holds at most 100 starts (a token bucket of 100 would allow up to 200 in the first one)
    assert all(starts[i + 100] - starts[i] >= 10.0 for i in range(len(starts) - 100))
    # and it is not slower than it must be: 1,000 calls asked at once start within 9 windows
    at_once = SlidingWindow(RateLimit(100, 10.0), clock=FakeClock())
    assert max(at_once.reserve() for _ in range(1_000)) == 90.0


def test_a_burst_goes_out_at_once_then_waits_for_the_window_to_roll() -> None:
    clock = FakeClock()
    window = SlidingWindow(RateLimit(10, 10.0), margin=0.5, clock=clock)
    assert [window.reserve() for _ in range(10)] == [0.0] * 10
    assert window.reserve() == 10.5  # the first call leaves the window (plus the margin)
    clock.now = 4.0
    assert window.reserve() == 6.5
    assert window.waited == 17.0


def test_each_container_keeps_its_share_of_the_portal() -> None:
    reset_rate_limits()
    try:
        set_container_share(2)
        limiter = bucket_for("hubspot:test", RateLimit(190, 10.0), rolling=True)
        assert isinstance(limiter, SlidingWindow) and limiter.capacity == 95 and limiter.window == 10.5
        assert bucket_for("hubspot:test", RateLimit(190, 10.0), rolling=True) is limiter  # one per container
        search = bucket_for("hubspot-search:test", RateLimit(5, 1.0), rolling=True)
        assert (
            isinstance(search, SlidingWindow) and search.capacity == 2 and search.window == pytest.approx(0.8 + 0.08)
        )  # 2.5/s each
    finally:
        reset_rate_limits()


def test_functions_split_the_portal_between_them() -> None:
    """Sync keeps 90 % of the limits over its containers; the change consumer and the poller a tenth: together they
    never exceed the portal's limit."""
    reset_rate_limits()
    try:
        set_container_share(2, 0.9)  # SyncFunction, SyncConcurrency 2
        sync = bucket_for("hubspot:test", RateLimit(100, 10.0), rolling=True)
        assert isinstance(sync, SlidingWindow) and sync.capacity == 45 and sync.rate == pytest.approx(4.5)
        reset_rate_limits()
        set_container_share(2, 0.1)  # ImportFunction's change consumers
        changes = bucket_for("hubspot:test", RateLimit(100, 10.0), rolling=True)
        assert isinstance(changes, SlidingWindow) and changes.capacity == 5 and changes.rate == pytest.approx(0.5)
        assert 2 * sync.rate + 2 * changes.rate == pytest.approx(10.0)  # the portal's 100 per 10 s
        reset_rate_limits()
        set_container_share(1, 0.1)  # the poller's searches: half a search a second
        search = bucket_for("hubspot-search:test", RateLimit(5, 1.0), rolling=True)
        assert isinstance(search, SlidingWindow) and search.capacity == 1 and search.rate == pytest.approx(0.5)
    finally:
        reset_rate_limits()
