"""The Apollo adapter against the local fake, over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from leadpipe.enrichment.fields import COMPANY_FIELDS, DEPARTMENTS, EMAIL_STATUSES, PERSON_FIELDS, SENIORITIES, Kind
from leadpipe.enrichment.http import Budget
from leadpipe.enrichment.providers import apollo
from leadpipe.enrichment.providers.apollo import ApolloProvider
from leadpipe.enrichment.providers.base import Answer, CompanyQuery, PersonQuery, ProviderError, RateLimit
from leadpipe_local.fakes.apollo import FakeApollo
from leadpipe_local.fakes.base import Fault
from tests.integration.conftest import Clock, Sleeps

pytestmark = pytest.mark.usefixtures("deterministic_http")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeApollo]:
    running = FakeApollo()
    running.start()
    yield running
    running.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(server: FakeApollo, clock: Clock) -> FakeApollo:
    server.reset()
    server.clock = clock
    return server


@pytest.fixture
def sleeps(clock: Clock) -> Sleeps:
    return Sleeps(clock)


Make = Callable[..., ApolloProvider]


@pytest.fixture
def make(fake: FakeApollo, sleeps: Sleeps) -> Iterator[Make]:
    made: list[ApolloProvider] = []

    def build(api_key: str = "test-key", **kwargs: Any) -> ApolloProvider:
        kwargs.setdefault("sleep", sleeps)
        provider = ApolloProvider(api_key, base_url=fake.url, **kwargs)
        made.append(provider)
        return provider

    yield build
    for provider in made:
        provider.close()


def add_acme(fake: FakeApollo) -> None:
    fake.add_organization(
        "acme.io",
        name="Acme",
        industry="Information Technology & Services",
        estimated_num_employees=1600,
        city="San Francisco",
        state="California",
        country="United States",
        founded_year=2015,
        linkedin_url="http://www.linkedin.com/company/acme-io",
        short_description="Acme builds rockets.io for everyone. Trusted by 160,000 companies, Acme ships fast. "
        "By helping teams, Acme sells anything.\n\nCelebrating a $100M Series D.",
    )


def add_marcus(fake: FakeApollo) -> None:
    fake.add_person(
        "marcus@acme.io",
        first_name="Marcus",
        last_name="Ellery",
        title="VP of Sales Operations",
        seniority="vp",
        departments=["master_sales"],
        subdepartments=["sales_operations"],
        linkedin_url="http://www.linkedin.com/in/marcus-ellery-4c2b81de",
        city="San Francisco",
        state="California",
        country="United States",
        email_status="verified",
        organization_domain="acme.io",
        organization_name="Acme",
    )


def person(email: str, **kwargs: Any) -> PersonQuery:
    return PersonQuery(email=email, **kwargs)


# ------------------------------------------------------------------------------------------------------ people


def test_every_person_field_is_mapped(fake: FakeApollo, make: Make) -> None:
    add_acme(fake)
    add_marcus(fake)

    [answer] = make().people([person("Marcus@Acme.io")])

    assert answer == Answer(
        kind=Kind.PERSON,
        key="Marcus@Acme.io",
        found=True,
        fields={
            "first_name": "Marcus",
            "last_name": "Ellery",
            "title": "VP of Sales Operations",
            "seniority": "vp",
            "department": "revenue_operations",
            "linkedin": "https://www.linkedin.com/in/marcus-ellery-4c2b81de",
            "city": "San Francisco",
            "country": "United States",
            "email_status": "valid",
        },
    )
    assert set(answer.fields) == set(ApolloProvider.info.person_fields)


def test_the_request_carries_the_key_and_what_is_known(fake: FakeApollo, make: Make) -> None:
    add_marcus(fake)
    full = person(
        "marcus@acme.io",
        first_name="Marcus",
        last_name="Ellery",
        company="Acme",
        domain="https://www.Acme.io/",
        title="VP",
        linkedin="https://linkedin.com/in/marcus-ellery-4c2b81de",
    )

    make().people([full, person("bare@acme.io")])

    [request] = fake.calls("bulk_match", "POST")
    assert request.headers["x-api-key"] == "test-key"
    assert request.json() == {
        "details": [
            {
                "email": "marcus@acme.io",
                "first_name": "Marcus",
                "last_name": "Ellery",
                "organization_name": "Acme",
                "domain": "acme.io",
                "linkedin_url": "https://linkedin.com/in/marcus-ellery-4c2b81de",
            },
            {"email": "bare@acme.io"},
        ]
    }


def test_unmatched_people_are_misses_in_their_place(fake: FakeApollo, make: Make) -> None:
    add_marcus(fake)
    fake.add_person(
        "old@beta.io",
        first_name="Ann",
        last_name="Lee",
        title="Engineer",
        seniority="entry",
        organization_domain="b.io",
    )
    queries = [
        person("nobody@acme.io"),
        person("marcus@acme.io"),
        person("ann.lee@beta.io", first_name="Ann", last_name="Lee", domain="b.io"),
        person("name.only@x.io", first_name="Ann", last_name="Lee"),  # a name without employer matches nobody
    ]

    answers = make().people(queries)

    assert [(a.key, a.found) for a in answers] == [
        ("nobody@acme.io", False),
        ("marcus@acme.io", True),
        ("ann.lee@beta.io", True),
        ("name.only@x.io", False),
    ]
    assert answers[0] == Answer.miss(Kind.PERSON, "nobody@acme.io")
    # Ann was matched on name and employer; Apollo holds another email for her, so its status is not about ours.
    assert answers[2].fields == {"first_name": "Ann", "last_name": "Lee", "title": "Engineer", "seniority": "entry"}
    assert len(fake.calls("bulk_match")) == 1


def test_a_batch_of_ten_is_one_call(fake: FakeApollo, make: Make) -> None:
    for i in range(10):
        fake.add_person(f"p{i}@acme.io", first_name=f"P{i}", last_name="Doe", title="Engineer", seniority="senior")
    queries = [person(f"p{i}@acme.io") for i in range(10)]

    answers = make().people(queries)

    assert [a.key for a in answers] == [q.email for q in queries]
    assert [a.fields["first_name"] for a in answers] == [f"P{i}" for i in range(10)]
    [request] = fake.calls("bulk_match")
    assert len(request.json()["details"]) == 10


def test_more_than_ten_is_refused_without_a_call(fake: FakeApollo, make: Make) -> None:
    with pytest.raises(ValueError, match="at most 10 people per call, got 11"):
        make().people([person(f"p{i}@acme.io") for i in range(11)])
    assert fake.calls() == []


def test_match_confidence_when_the_answer_has_one(fake: FakeApollo, make: Make) -> None:
    fake.add_person("low@acme.io", first_name="Lo", last_name="W", match_confidence="low")
    fake.add_person("none@acme.io", first_name="No", last_name="Ne", match_confidence="none")

    low, none = make().people([person("low@acme.io"), person("none@acme.io")])

    assert (low.found, low.confidence, low.fields["first_name"]) == (True, 0.5, "Lo")
    assert none == Answer.miss(Kind.PERSON, "none@acme.io")


def test_unavailable_email_gives_no_status(fake: FakeApollo, make: Make) -> None:
    fake.add_person("gone@acme.io", first_name="Gone", email_status="unavailable")

    [answer] = make().people([person("gone@acme.io")])

    assert answer.fields == {"first_name": "Gone"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("founder", "owner"),
        ("owner", "owner"),
        ("partner", "owner"),
        ("c_suite", "c_suite"),
        ("vp", "vp"),
        ("head", "head"),
        ("director", "director"),
        ("manager", "manager"),
        ("senior", "senior"),
        ("entry", "entry"),
        ("intern", "intern"),
        ("astronaut", None),
        (None, None),
    ],
)
def test_seniorities(value: str | None, expected: str | None) -> None:
    assert apollo.seniority_of(value) == expected


@pytest.mark.parametrize(
    ("departments", "subdepartments", "expected"),
    [
        (["c_suite"], ["executive", "founder"], "executive"),
        (["c_suite", "master_engineering_technical"], [], "engineering"),  # a CTO: the function wins
        (["master_marketing"], ["marketing", "product_marketing"], "marketing"),
        (["master_sales"], ["sales_operations"], "revenue_operations"),
        (["master_information_technology"], [], "it"),
        (["master_finance"], [], "finance"),
        (["master_human_resources"], [], "hr"),
        (["master_legal"], [], "legal"),
        (["master_operations"], [], "operations"),
        (["product_management"], [], "product"),
        (["design"], [], "design"),
        (["master_support"], [], "customer_success"),
        (["master_engineering_technical"], ["data_science"], "data"),
        (["consulting"], [], "other"),
        (["medical_health", "master_sales"], [], "sales"),
        ([], [], None),
        (None, None, None),
    ],
)
def test_departments(departments: list[str] | None, subdepartments: list[str] | None, expected: str | None) -> None:
    assert apollo.department_of(departments, subdepartments) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("verified", "valid"),
        ("unverified", "unknown"),
        ("likely to engage", "risky"),
        ("extrapolated", "risky"),
        ("guessed", "risky"),
        ("bounced", "invalid"),
        ("unavailable", None),
        (None, None),
    ],
)
def test_email_statuses(value: str | None, expected: str | None) -> None:
    assert apollo.email_status_of(value) == expected


def test_every_mapping_lands_in_the_vocabulary() -> None:
    assert set(apollo.SENIORITY.values()) <= set(SENIORITIES)
    assert set(apollo.DEPARTMENT.values()) | set(apollo.SUBDEPARTMENT.values()) <= set(DEPARTMENTS)
    assert set(apollo.EMAIL_STATUS.values()) <= set(EMAIL_STATUSES)


@pytest.mark.parametrize(
    ("url", "kind", "expected"),
    [
        ("http://www.linkedin.com/in/tim-zheng-677ba010", "in", "https://www.linkedin.com/in/tim-zheng-677ba010"),
        ("linkedin.com/in/tim/", "in", "https://www.linkedin.com/in/tim"),
        ("https://uk.linkedin.com/in/tim?trk=x", "in", "https://www.linkedin.com/in/tim"),
        ("http://www.linkedin.com/company/apolloio", "company", "https://www.linkedin.com/company/apolloio"),
        ("http://www.linkedin.com/company/apolloio", "in", None),
        ("https://twitter.com/tim", "in", None),
        (None, "in", None),
    ],
)
def test_linkedin_urls(url: str | None, kind: str, expected: str | None) -> None:
    assert apollo.linkedin_url(url, kind) == expected


# ---------------------------------------------------------------------------------------------------- companies


def test_every_company_field_is_mapped(fake: FakeApollo, make: Make) -> None:
    add_acme(fake)

    [answer] = make().companies([CompanyQuery("www.Acme.io")])

    assert answer == Answer(
        kind=Kind.COMPANY,
        key="www.Acme.io",
        found=True,
        fields={
            "company_name": "Acme",
            "industry": "information technology & services",
            "employee_range": "1001-5000",
            "country": "United States",
            "city": "San Francisco",
            "founded_year": 2015,
            "company_linkedin": "https://www.linkedin.com/company/acme-io",
            "description": "Acme builds rockets.io for everyone. Trusted by 160,000 companies, Acme ships fast.",
        },
    )
    assert set(answer.fields) == set(ApolloProvider.info.company_fields)
    [request] = fake.calls("organizations/enrich", "GET")
    assert request.query == {"domain": ["acme.io"]}
    assert request.headers["x-api-key"] == "test-key"


def test_companies_make_one_call_per_domain_and_unknown_domains_are_misses(fake: FakeApollo, make: Make) -> None:
    add_acme(fake)
    fake.add_organization("beta.io", name="Beta", estimated_num_employees=7)

    answers = make().companies([CompanyQuery("beta.io"), CompanyQuery("unknown.io"), CompanyQuery("acme.io")])

    assert [(a.key, a.found) for a in answers] == [("beta.io", True), ("unknown.io", False), ("acme.io", True)]
    assert answers[0].fields == {"company_name": "Beta", "employee_range": "1-10"}
    assert answers[1] == Answer.miss(Kind.COMPANY, "unknown.io")
    assert [r.query["domain"] for r in fake.calls("organizations/enrich")] == [["beta.io"], ["unknown.io"], ["acme.io"]]


def test_a_404_for_a_domain_is_a_miss(fake: FakeApollo, make: Make) -> None:
    fake.inject(Fault(status=404, body={"error": "not found"}, times=1))

    assert make().companies([CompanyQuery("acme.io")]) == [Answer.miss(Kind.COMPANY, "acme.io")]


def test_nothing_to_ask_makes_no_call(fake: FakeApollo, make: Make) -> None:
    provider = make()
    assert provider.people([]) == []
    assert provider.companies([]) == []
    assert fake.calls() == []


def test_provider_info() -> None:
    info = ApolloProvider.info
    assert (info.name, info.batch_size, info.rate_limit, info.key_env) == (
        "apollo",
        10,
        RateLimit(50, 60.0),
        "APOLLO_API_KEY",
    )
    assert set(info.person_fields) <= set(PERSON_FIELDS)
    assert set(info.company_fields) <= set(COMPANY_FIELDS)
    assert all(0 < r <= 1 for r in [*info.person_fields.values(), *info.company_fields.values()])


# ------------------------------------------------------------------------------------------------------ failures


def test_a_wrong_key_is_an_auth_error_without_retry(fake: FakeApollo, make: Make, sleeps: Sleeps) -> None:
    with pytest.raises(ProviderError) as caught:
        make("wrong-key").people([person("marcus@acme.io")])

    error = caught.value
    assert (error.reason, error.status, error.retryable) == ("auth", 401, False)
    assert "Invalid API key" in error.message
    assert len(fake.calls()) == 1
    assert sleeps == []


def test_a_key_without_the_endpoint_in_its_scope_is_an_auth_error(fake: FakeApollo, make: Make) -> None:
    add_marcus(fake)
    fake.add_key("people-only", endpoints=["api/v1/people/bulk_match"])
    provider = make("people-only")

    assert provider.people([person("marcus@acme.io")])[0].found
    with pytest.raises(ProviderError) as caught:
        provider.companies([CompanyQuery("acme.io")])
    assert (caught.value.reason, caught.value.status, caught.value.retryable) == ("auth", 403, False)
    assert "API_INACCESSIBLE" in caught.value.message


def test_429_is_retried_after_the_hinted_delay(fake: FakeApollo, make: Make, sleeps: Sleeps) -> None:
    add_marcus(fake)
    fake.limits = {"minute": 1}
    provider = make()

    first = provider.people([person("marcus@acme.io")])
    second = provider.people([person("marcus@acme.io")])

    assert first == second
    assert second[0].found
    assert sleeps == [60.0]  # the fake's Retry-After: the seconds left in its minute window
    assert [r.path for r in fake.calls()] == ["/api/v1/people/bulk_match"] * 3
    assert provider.http.throttled == 1


def test_5xx_twice_then_success(fake: FakeApollo, make: Make, sleeps: Sleeps) -> None:
    add_marcus(fake)
    fake.inject(Fault(status=503, body={"error": "unavailable"}, times=2))

    [answer] = make().people([person("marcus@acme.io")])

    assert answer.found
    assert sleeps == [0.5, 1.0]
    assert len(fake.calls()) == 3


def test_a_timeout_is_retried(fake: FakeApollo, make: Make, sleeps: Sleeps) -> None:
    add_acme(fake)
    fake.inject(Fault(timeout=0.5, times=1))

    [answer] = make(timeout=0.1).companies([CompanyQuery("acme.io")])

    assert answer.found
    assert sleeps == [0.5]
    assert len(fake.calls()) == 2


def test_persistent_5xx_fails_after_the_retries(fake: FakeApollo, make: Make, sleeps: Sleeps) -> None:
    fake.inject(Fault(status=500, body={"error": "boom"}))

    with pytest.raises(ProviderError) as caught:
        make().people([person("marcus@acme.io")])

    assert (caught.value.reason, caught.value.status, caught.value.retryable) == ("server_error", 500, True)
    assert sleeps == [0.5, 1.0, 2.0]
    assert len(fake.calls()) == 4


def test_malformed_json_is_a_bad_response(fake: FakeApollo, make: Make, sleeps: Sleeps) -> None:
    fake.inject(Fault(malformed=True, times=1))

    with pytest.raises(ProviderError) as caught:
        make().people([person("marcus@acme.io")])

    assert caught.value.reason == "bad_response"
    assert len(fake.calls()) == 1
    assert sleeps == []


def test_a_matches_list_of_the_wrong_length_is_a_bad_response(fake: FakeApollo, make: Make) -> None:
    fake.inject(Fault(status=200, body={"status": "success", "matches": [None]}, times=1))

    with pytest.raises(ProviderError) as caught:
        make().people([person("a@acme.io"), person("b@acme.io")])

    assert caught.value.reason == "bad_response"
    assert "1 matches for 2 people" in caught.value.message


def test_the_budget_refuses_a_long_retry_after(fake: FakeApollo, make: Make, sleeps: Sleeps) -> None:
    add_marcus(fake)
    fake.limits = {"hour": 1}
    provider = make(budget=Budget(lambda: 60.0))  # 55 s left after the margin
    provider.people([person("marcus@acme.io")])

    with pytest.raises(ProviderError) as caught:
        provider.people([person("marcus@acme.io")])

    assert caught.value.reason == "budget"
    assert "3600.0s" in caught.value.message
    assert sleeps == []
    assert len(fake.calls()) == 2


# --------------------------------------------------------------------------------------- the fake's own answers


def test_the_fake_answers_errors_in_the_documented_shapes(fake: FakeApollo) -> None:
    fake.limits = {"minute": 2}
    url = fake.url + "/api/v1/people/bulk_match"
    key = {"x-api-key": "test-key"}
    with httpx.Client() as client:
        unauthorized = client.post(url, json={"details": [{"email": "a@b.io"}]})
        ok = client.post(url, json={"details": [{"email": "a@b.io"}]}, headers=key)
        too_many = client.post(url, json={"details": [{"email": f"{i}@b.io"} for i in range(11)]}, headers=key)
        throttled = client.post(url, json={"details": [{"email": "a@b.io"}]}, headers=key)
        missing = client.get(fake.url + "/api/v1/organizations/enrich", headers=key)

    assert unauthorized.status_code == 401
    assert unauthorized.headers["content-type"].startswith("text/plain")
    assert unauthorized.text.startswith("Invalid API key. See https://docs.apollo.io/reference/authentication")
    assert ok.json() == {
        "status": "success",
        "error_code": None,
        "error_message": None,
        "total_requested_enrichments": 1,
        "unique_enriched_records": 0,
        "missing_records": 1,
        "credits_consumed": 0,
        "matches": [None],
    }
    assert (ok.headers["x-rate-limit-minute"], ok.headers["x-minute-requests-left"], ok.headers["x-minute-usage"]) == (
        "2",
        "1",
        "1",
    )
    assert (too_many.status_code, too_many.json()) == (
        400,
        {
            "status": "failed",
            "error_code": "RECORD_LIMIT_EXCEEDED",
            "error_message": "cannot enrich more than 10 in a single request",
        },
    )
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "60"
    assert throttled.json() == {
        "message": "The maximum number of api calls allowed for api/v1/people/bulk_match is 2 times per minute. "
        "Please upgrade your plan from https://app.apollo.io/#/settings/plans/upgrade."
    }
    assert (missing.status_code, missing.json()) == (422, {"error": "Required parameter 'domain' missing"})


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{}", 400, "INVALID_REQUEST"),
        (b'{"details": []}', 400, "INVALID_REQUEST"),
        (b'{"details": ["a@b.io"]}', 422, "UNKNOWN_ERROR"),
        (b'{"details": ', 422, "UNKNOWN_ERROR"),
    ],
)
def test_the_fake_refuses_malformed_bodies(fake: FakeApollo, body: bytes, status: int, code: str) -> None:
    reply = httpx.post(
        fake.url + "/api/v1/people/bulk_match",
        content=body,
        headers={"x-api-key": "test-key", "content-type": "application/json"},
    )
    assert (reply.status_code, reply.json()["status"], reply.json()["error_code"]) == (status, "failed", code)
