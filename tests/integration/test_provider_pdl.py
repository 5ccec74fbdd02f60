"""The People Data Labs company adapter against the local fake, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from leadpipe.enrichment.fields import Kind
from leadpipe.enrichment.providers.base import CompanyQuery, ProviderError
from leadpipe.enrichment.providers.pdl import PdlProvider, company_linkedin, confidence_of, place_name
from leadpipe_local.fakes.base import Fault
from leadpipe_local.fakes.pdl import FakePdl
from tests.integration.conftest import Sleeps

PDL_RECORD: dict[str, Any] = {
    "id": "tnHcNHbCv8MKeLh92946LAkX6PKg",
    "name": "people data labs",
    "display_name": "People Data Labs",
    "size": "51-200",
    "employee_count": 83,
    "founded": 2015,
    "industry": "computer software",
    "location": {
        "name": "san francisco, california, united states",
        "locality": "san francisco",
        "region": "california",
        "country": "united states",
        "continent": "north america",
    },
    "linkedin_url": "linkedin.com/company/peopledatalabs",
    "website": "peopledatalabs.com",
    "headline": "The source of truth for person data",
    "summary": (
        "People Data Labs builds people data. Developers use our datasets of resume, contact and demographic data "
        "to build products. We were founded in 2015!  Our APIs serve billions of records."
    ),
}

BETA_RECORD: dict[str, Any] = {
    "name": "beta gmbh",
    "display_name": None,
    "size": None,
    "employee_count": 12000,
    "founded": None,
    "industry": "Machinery",
    "location": {"locality": "saint-denis", "country": "democratic republic of the congo"},
    "linkedin_url": "https://de.linkedin.com/company/beta-gmbh/about/",
    "summary": None,
    "headline": "Machines for the world",
}


pytestmark = pytest.mark.usefixtures("deterministic_http")


@pytest.fixture(scope="module")
def server() -> Iterator[FakePdl]:
    running = FakePdl(forbidden_keys=frozenset({"no-company-access"}))
    running.start()
    yield running
    running.stop()


@pytest.fixture
def fake(server: FakePdl) -> FakePdl:
    server.reset()
    server.add_company("peopledatalabs.com", PDL_RECORD, likelihood=6)
    server.add_company("beta.de", BETA_RECORD, likelihood=10)
    return server


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


Make = Callable[..., PdlProvider]


@pytest.fixture
def make(fake: FakePdl, sleeps: Sleeps) -> Iterator[Make]:
    made: list[PdlProvider] = []

    def build(**kwargs: Any) -> PdlProvider:
        options: dict[str, Any] = {"base_url": fake.url, "sleep": sleeps, "timeout": 2.0, **kwargs}
        provider = PdlProvider(str(options.pop("api_key", "test-key")), **options)
        made.append(provider)
        return provider

    yield build
    for provider in made:
        provider.close()


def c(domain: str, name: str | None = None) -> CompanyQuery:
    return CompanyQuery(domain=domain, name=name)


# ------------------------------------------------------------------------------------------------ request and mapping


def test_one_bulk_call_with_the_documented_body(fake: FakePdl, make: Make) -> None:
    make().companies([c("peopledatalabs.com"), c("beta.de", name="Beta GmbH")])

    (call,) = fake.calls()
    assert (call.method, call.path, call.headers["x-api-key"]) == ("POST", "/v5/company/enrich/bulk", "test-key")
    assert call.json() == {
        "requests": [
            {"params": {"website": "peopledatalabs.com", "min_likelihood": 3}, "metadata": {"index": 0}},
            {"params": {"website": "beta.de", "min_likelihood": 3, "name": "Beta GmbH"}, "metadata": {"index": 1}},
        ]
    }


def test_every_mapped_field(make: Make) -> None:
    (answer,) = make().companies([c("peopledatalabs.com")])

    assert (answer.kind, answer.key, answer.found) == (Kind.COMPANY, "peopledatalabs.com", True)
    assert answer.fields == {
        "company_name": "People Data Labs",
        "industry": "computer software",
        "employee_range": "51-200",
        "country": "United States",
        "city": "San Francisco",
        "founded_year": 2015,
        "company_linkedin": "https://www.linkedin.com/company/peopledatalabs",
        "description": (
            "People Data Labs builds people data. Developers use our datasets of resume, contact and demographic "
            "data to build products."
        ),
    }
    assert answer.confidence == 0.85  # likelihood 6


def test_fallbacks_name_count_headline_and_full_linkedin_urls(make: Make) -> None:
    (answer,) = make().companies([c("beta.de")])

    assert answer.fields == {
        "company_name": "Beta Gmbh",
        "industry": "machinery",
        "employee_range": "10001+",
        "country": "Democratic Republic of the Congo",
        "city": "Saint-Denis",
        "company_linkedin": "https://www.linkedin.com/company/beta-gmbh",
        "description": "Machines for the world",
    }
    assert answer.confidence == 1.0  # likelihood 10


def test_bulk_with_found_and_missed_items_keeps_the_order(fake: FakePdl, make: Make) -> None:
    queries = [c("nowhere.example"), c("beta.de"), c("void.example"), c("peopledatalabs.com")]

    answers = make().companies(queries)

    assert [(a.key, a.found) for a in answers] == [
        ("nowhere.example", False),
        ("beta.de", True),
        ("void.example", False),
        ("peopledatalabs.com", True),
    ]
    assert answers[0].fields == {} and answers[2].fields == {}
    assert fake.billed == 2 and len(fake.calls()) == 1


@pytest.mark.parametrize(
    ("likelihood", "min_likelihood", "found", "confidence"),
    [
        (2, 3, False, 1.0),  # under min_likelihood: PDL answers 404
        (2, 2, True, 0.45),
        (3, 3, True, 0.6),
        (5, 3, True, 0.78),
        (8, 3, True, 0.94),
        (9, 9, True, 0.97),
    ],
)
def test_likelihood_becomes_the_answer_confidence(
    fake: FakePdl, make: Make, likelihood: int, min_likelihood: int, found: bool, confidence: float
) -> None:
    fake.add_company("gamma.io", {"display_name": "Gamma"}, likelihood=likelihood)

    (answer,) = make(min_likelihood=min_likelihood).companies([c("gamma.io")])

    assert (answer.found, answer.confidence) == (found, confidence)
    assert answer.fields == ({"company_name": "Gamma"} if found else {})
    assert fake.calls()[0].json()["requests"][0]["params"]["min_likelihood"] == min_likelihood


def test_an_item_failing_on_pdls_side_is_asked_again_alone(fake: FakePdl, make: Make) -> None:
    fake.item_faults["beta.de"] = [503]

    answers = make().companies([c("peopledatalabs.com"), c("beta.de"), c("nowhere.example")])

    assert [(a.key, a.found) for a in answers] == [
        ("peopledatalabs.com", True),
        ("beta.de", True),
        ("nowhere.example", False),
    ]
    first, second = fake.calls()
    assert len(first.json()["requests"]) == 3
    assert second.json()["requests"] == [
        {"params": {"website": "beta.de", "min_likelihood": 3}, "metadata": {"index": 1}}
    ]


def test_an_item_failing_twice_fails_the_batch(fake: FakePdl, make: Make) -> None:
    fake.item_faults["beta.de"] = [500, 502]
    with pytest.raises(ProviderError) as caught:
        make().companies([c("peopledatalabs.com"), c("beta.de")])
    assert (caught.value.reason, caught.value.status, caught.value.retryable) == ("server_error", 502, True)


def test_an_item_pdl_cannot_match_on_is_a_miss(fake: FakePdl, make: Make) -> None:
    answers = make().companies([c(""), c("beta.de")])  # no website: that item alone answers 400

    assert [(a.key, a.found) for a in answers] == [("", False), ("beta.de", True)]


def test_every_item_refused_is_a_bad_request(fake: FakePdl, make: Make) -> None:
    with pytest.raises(ProviderError) as caught:
        make(min_likelihood=11).companies([c("peopledatalabs.com"), c("beta.de")])
    assert (caught.value.reason, caught.value.retryable) == ("bad_request", False)
    assert "invalid_request_error" in caught.value.message


# ------------------------------------------------------------------------------------------------ the fake's endpoints


def test_the_single_endpoint_answers_in_the_documented_shapes(fake: FakePdl) -> None:
    key = {"X-Api-Key": "test-key"}
    found = httpx.get(f"{fake.url}/v5/company/enrich", params={"website": "https://www.beta.de/about"}, headers=key)
    assert found.status_code == 200
    assert found.json() == {"status": 200, **BETA_RECORD, "likelihood": 10}
    assert set(found.headers) >= {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"}

    missed = httpx.get(f"{fake.url}/v5/company/enrich", params={"website": "nowhere.example"}, headers=key)
    assert missed.status_code == 404
    assert missed.json() == {
        "status": 404,
        "error": {"type": "not_found", "message": "No records were found matching your request"},
    }

    by_name = httpx.get(f"{fake.url}/v5/company/enrich", params={"name": "People Data Labs", "api_key": "test-key"})
    assert by_name.status_code == 200 and by_name.json()["likelihood"] == 6

    refused = httpx.get(f"{fake.url}/v5/company/enrich", params={"website": "beta.de"}, headers={"X-Api-Key": "x"})
    assert refused.status_code == 401
    assert refused.json() == {"status": 401, "error": {"type": "authentication_error", "message": "Invalid API key"}}


def test_a_bulk_over_100_requests_is_rejected(fake: FakePdl, make: Make) -> None:
    queries = [c(f"d{i}.example") for i in range(101)]
    with pytest.raises(ProviderError) as caught:
        make().companies(queries)
    assert (caught.value.reason, caught.value.retryable) == ("bad_request", False)
    assert fake.calls() == []

    body = {"requests": [{"params": {"website": q.domain}} for q in queries]}
    response = httpx.post(f"{fake.url}/v5/company/enrich/bulk", json=body, headers={"X-Api-Key": "test-key"})
    assert response.status_code == 400
    assert response.json() == {
        "status": 400,
        "error": {"type": "invalid_request_error", "message": "You can only send up to 100 requests at once"},
    }
    assert len(make().companies(queries[:100])) == 100


# ------------------------------------------------------------------------------------------------ failures


@pytest.mark.parametrize(("key", "status"), [("wrong", 401), ("no-company-access", 403)])
def test_a_bad_key_is_an_auth_error_without_retry(
    fake: FakePdl, make: Make, sleeps: Sleeps, key: str, status: int
) -> None:
    with pytest.raises(ProviderError) as caught:
        make(api_key=key).companies([c("beta.de")])
    error = caught.value
    assert (error.provider, error.reason, error.retryable, error.status) == ("pdl", "auth", False, status)
    assert len(fake.calls()) == 1 and sleeps == []


def test_a_429_is_retried_after_retry_after(fake: FakePdl, make: Make, sleeps: Sleeps) -> None:
    fake.inject(fake.rate_limit_fault(retry_after=3))
    provider = make()

    (answer,) = provider.companies([c("beta.de")])

    assert answer.found and sleeps == [3.0]
    assert len(fake.calls()) == 2 and provider.http.throttled == 1


def test_a_429_without_retry_after_waits_for_the_window_reset(fake: FakePdl, make: Make, sleeps: Sleeps) -> None:
    reset = datetime.fromtimestamp(time.time() + 20, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    fault = fake.rate_limit_fault()
    fault.headers["x-ratelimit-reset"] = reset
    fake.inject(fault)

    (answer,) = make().companies([c("beta.de")])

    assert answer.found and len(sleeps) == 1
    assert sleeps[0] == pytest.approx(20, abs=1.5)


def test_5xx_is_retried_with_back_off_until_recovery(fake: FakePdl, make: Make, sleeps: Sleeps) -> None:
    fake.inject(Fault(status=502, body={"status": 502, "error": {"type": "api_error"}}, times=2))

    answers = make().companies([c("beta.de"), c("peopledatalabs.com")])

    assert [a.found for a in answers] == [True, True]
    assert sleeps == [0.5, 1.0] and len(fake.calls()) == 3


def test_5xx_past_the_retries_is_a_server_error(fake: FakePdl, make: Make, sleeps: Sleeps) -> None:
    fake.inject(Fault(status=500, times=10))
    with pytest.raises(ProviderError) as caught:
        make().companies([c("beta.de")])
    assert (caught.value.reason, caught.value.status, caught.value.retryable) == ("server_error", 500, True)
    assert sleeps == [0.5, 1.0, 2.0] and len(fake.calls()) == 4


def test_a_timeout_is_retried(fake: FakePdl, make: Make, sleeps: Sleeps) -> None:
    fake.inject(Fault(timeout=0.6, times=1))

    (answer,) = make(timeout=0.2).companies([c("beta.de")])

    assert answer.found and sleeps == [0.5] and len(fake.calls()) == 2


def test_malformed_json_is_a_bad_response(fake: FakePdl, make: Make) -> None:
    fake.inject(Fault(malformed=True, times=1))
    with pytest.raises(ProviderError) as caught:
        make().companies([c("beta.de")])
    assert caught.value.reason == "bad_response"


def test_an_answer_that_is_not_one_item_per_request_is_a_bad_response(fake: FakePdl, make: Make) -> None:
    fake.inject(Fault(status=200, body=[{"status": 200}], times=1))
    with pytest.raises(ProviderError) as caught:
        make().companies([c("beta.de"), c("peopledatalabs.com")])
    assert caught.value.reason == "bad_response"


# ------------------------------------------------------------------------------------------------ helpers


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("linkedin.com/company/peopledatalabs", "https://www.linkedin.com/company/peopledatalabs"),
        ("https://www.linkedin.com/company/acme-inc/", "https://www.linkedin.com/company/acme-inc"),
        ("http://fr.linkedin.com/company/acme?trk=x", "https://www.linkedin.com/company/acme"),
        ("linkedin.com/in/someone", None),
        (None, None),
    ],
)
def test_company_linkedin_urls_are_normalised(url: str | None, expected: str | None) -> None:
    assert company_linkedin(url) == expected


def test_place_names_and_confidence_helpers() -> None:
    assert place_name("united kingdom") == "United Kingdom"
    assert place_name("isle of man") == "Isle of Man"
    assert place_name("  ") is None
    assert [confidence_of(x) for x in (0, 1, 6.4, 12, None, "7", True)] == [0.3, 0.3, 0.85, 1.0, 0.6, 0.6, 0.6]
