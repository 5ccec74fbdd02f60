"""The Hunter adapter against the local fake, over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from leadpipe.enrichment.fields import EMAIL_STATUSES, Kind
from leadpipe.enrichment.http import Budget
from leadpipe.enrichment.providers.base import Answer, PersonQuery, ProviderError, RateLimit
from leadpipe.enrichment.providers.hunter import HunterProvider
from leadpipe_local.fakes.base import Fault
from leadpipe_local.fakes.hunter import FakeHunter
from tests.integration.conftest import Clock, Sleeps

pytestmark = pytest.mark.usefixtures("deterministic_http")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeHunter]:
    running = FakeHunter()
    running.start()
    yield running
    running.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(server: FakeHunter, clock: Clock) -> FakeHunter:
    server.reset()
    server.clock = clock
    return server


@pytest.fixture
def sleeps(clock: Clock) -> Sleeps:
    return Sleeps(clock)


Make = Callable[..., HunterProvider]


@pytest.fixture
def make(fake: FakeHunter, sleeps: Sleeps) -> Iterator[Make]:
    made: list[HunterProvider] = []

    def build(api_key: str = "test-key", **kwargs: Any) -> HunterProvider:
        kwargs.setdefault("sleep", sleeps)
        provider = HunterProvider(api_key, base_url=fake.url, **kwargs)
        made.append(provider)
        return provider

    yield build
    for provider in made:
        provider.close()


def person(email: str) -> PersonQuery:
    return PersonQuery(email=email)


def found(email: str, status: str, confidence: float) -> Answer:
    return Answer(
        kind=Kind.PERSON,
        key=email,
        found=True,
        fields={"email_status": status},
        field_confidence={"email_status": confidence},
    )


# ------------------------------------------------------------------------------------------------------ answers


@pytest.mark.parametrize(
    ("status", "score"),
    [("valid", 97), ("invalid", 12), ("accept_all", 76), ("webmail", 70), ("disposable", 4), ("unknown", 35)],
)
def test_each_status_and_its_score(fake: FakeHunter, make: Make, status: str, score: int) -> None:
    fake.add_person("ann@acme.io", status=status, score=score)

    answers = make().people([person("ann@acme.io")])

    assert answers == [found("ann@acme.io", status, score / 100)]
    assert status in EMAIL_STATUSES


def test_the_key_travels_in_a_header_not_the_url(fake: FakeHunter, make: Make) -> None:
    fake.add_person("ann@acme.io")

    make().people([person("ann@acme.io")])

    [request] = fake.calls("/v2/email-verifier", "GET")
    assert request.query == {"email": ["ann@acme.io"]}
    assert request.headers["x-api-key"] == "test-key"


def test_people_makes_one_call_per_email_in_order(fake: FakeHunter, make: Make) -> None:
    fake.add_person("ann@acme.io", status="valid", score=91)
    fake.add_person("bob@gmail.com", status="webmail", score=70)

    answers = make().people([person("ann@acme.io"), person("who@nowhere.io"), person("bob@gmail.com")])

    assert answers == [
        found("ann@acme.io", "valid", 0.91),
        found("who@nowhere.io", "unknown", 0.0),  # the fake's answer for an email it knows nothing about
        found("bob@gmail.com", "webmail", 0.7),
    ]
    assert [r.query["email"] for r in fake.calls()] == [["ann@acme.io"], ["who@nowhere.io"], ["bob@gmail.com"]]


def test_a_person_hunter_does_not_process_is_a_miss(fake: FakeHunter, make: Make, sleeps: Sleeps) -> None:
    fake.add_person("claimed@acme.io", restricted=True)

    assert make().people([person("claimed@acme.io")]) == [Answer.miss(Kind.PERSON, "claimed@acme.io")]
    assert len(fake.calls()) == 1
    assert sleeps == []


def test_the_deprecated_result_is_read_when_there_is_no_status(fake: FakeHunter, make: Make) -> None:
    fake.inject(Fault(status=200, body={"data": {"result": "risky", "score": 50}}, times=1))

    assert make().people([person("ann@acme.io")]) == [found("ann@acme.io", "risky", 0.5)]


def test_an_answer_without_a_known_status_is_a_bad_response(fake: FakeHunter, make: Make) -> None:
    fake.inject(Fault(status=200, body={"data": {"status": "maybe"}}, times=1))

    with pytest.raises(ProviderError) as caught:
        make().people([person("ann@acme.io")])
    assert caught.value.reason == "bad_response"


def test_nothing_to_ask_makes_no_call(fake: FakeHunter, make: Make) -> None:
    assert make().people([]) == []
    assert fake.calls() == []


def test_provider_info() -> None:
    info = HunterProvider.info
    assert (info.name, dict(info.person_fields), dict(info.company_fields)) == (
        "hunter",
        {"email_status": 0.9},
        {},
    )
    assert (info.batch_size, info.rate_limit, info.key_env) == (1, RateLimit(10, 1.0), "HUNTER_API_KEY")


# ----------------------------------------------------------------------------------------------- 202 in progress


def test_in_progress_is_asked_again_after_a_short_wait(fake: FakeHunter, make: Make, sleeps: Sleeps) -> None:
    fake.add_person("slow@acme.io", status="accept_all", score=80, pending=2)

    assert make().people([person("slow@acme.io")]) == [found("slow@acme.io", "accept_all", 0.8)]
    assert sleeps == [2.0, 2.0]
    assert len(fake.calls()) == 3


def test_still_in_progress_after_the_retries_is_a_retryable_error(fake: FakeHunter, make: Make, sleeps: Sleeps) -> None:
    fake.add_person("slow@acme.io", pending=10)

    with pytest.raises(ProviderError) as caught:
        make().people([person("slow@acme.io")])

    error = caught.value
    assert (error.reason, error.status, error.retryable, error.retry_after) == ("timeout", 202, True, 2.0)
    assert sleeps == [2.0, 2.0, 2.0]
    assert len(fake.calls()) == 4


def test_the_budget_refuses_the_wait_for_a_verification(fake: FakeHunter, make: Make, sleeps: Sleeps) -> None:
    fake.add_person("slow@acme.io", pending=1)

    with pytest.raises(ProviderError) as caught:
        make(budget=Budget(lambda: 6.5)).people([person("slow@acme.io")])  # 1.5 s left after the margin

    assert caught.value.reason == "budget"
    assert sleeps == []


# ------------------------------------------------------------------------------------------------------ failures


def test_a_wrong_key_is_an_auth_error_without_retry(fake: FakeHunter, make: Make, sleeps: Sleeps) -> None:
    with pytest.raises(ProviderError) as caught:
        make("wrong-key").people([person("ann@acme.io")])

    error = caught.value
    assert (error.reason, error.status, error.retryable) == ("auth", 401, False)
    assert "authentication_failed" in error.message
    assert len(fake.calls()) == 1
    assert sleeps == []


def test_the_rate_limit_403_is_retried_after_a_wait(fake: FakeHunter, make: Make, sleeps: Sleeps) -> None:
    fake.add_person("ann@acme.io", score=95)
    fake.add_person("bob@acme.io", score=90)
    fake.limits = {"second": 1}
    provider = make()

    answers = provider.people([person("ann@acme.io"), person("bob@acme.io")])

    assert answers == [found("ann@acme.io", "valid", 0.95), found("bob@acme.io", "valid", 0.9)]
    assert sleeps == [1.0]  # no Retry-After from Hunter: the adapter's own first wait, then a new second
    assert len(fake.calls()) == 3
    assert provider.http.throttled == 1


def test_a_retry_after_on_the_403_is_honoured(fake: FakeHunter, make: Make, sleeps: Sleeps) -> None:
    fake.add_person("ann@acme.io", score=95)
    fake.inject(Fault(status=403, headers={"Retry-After": "3"}, body={"errors": []}, times=1))

    assert make().people([person("ann@acme.io")]) == [found("ann@acme.io", "valid", 0.95)]
    assert sleeps == [3.0]


def test_a_persistent_rate_limit_fails_after_the_retries(fake: FakeHunter, make: Make) -> None:
    fake.add_person("ann@acme.io")
    fake.limits = {"second": 1}
    waits: list[float] = []
    provider = make(sleep=waits.append)  # time stands still: the window never resets
    provider.people([person("ann@acme.io")])

    with pytest.raises(ProviderError) as caught:
        provider.people([person("ann@acme.io")])

    error = caught.value
    assert (error.reason, error.status, error.retryable, error.retry_after) == ("rate_limited", 403, True, 8.0)
    assert waits == [1.0, 2.0, 4.0]
    assert len(fake.calls()) == 5


def test_the_usage_limit_429_is_a_quota_error_without_retry(fake: FakeHunter, make: Make, sleeps: Sleeps) -> None:
    fake.add_person("ann@acme.io")
    fake.add_person("bob@gmail.com", status="webmail")
    fake.credits = 0

    provider = make()
    assert provider.people([person("bob@gmail.com")]) == [found("bob@gmail.com", "webmail", 0.7)]  # free
    with pytest.raises(ProviderError) as caught:
        provider.people([person("ann@acme.io")])

    error = caught.value
    assert (error.reason, error.status, error.retryable) == ("quota", 429, False)
    assert len(fake.calls()) == 2
    assert sleeps == []


def test_a_429_is_not_retried_even_with_retry_after(fake: FakeHunter, make: Make, sleeps: Sleeps) -> None:
    # Hunter's 429 is the plan's usage limit (its throttling is the 403): waiting does not bring credits back.
    fake.inject(Fault(status=429, headers={"Retry-After": "5"}, body={"errors": []}, times=1))

    with pytest.raises(ProviderError) as caught:
        make().people([person("ann@acme.io")])

    assert (caught.value.reason, caught.value.retryable) == ("quota", False)
    assert sleeps == []
    assert len(fake.calls()) == 1


def test_5xx_twice_then_success(fake: FakeHunter, make: Make, sleeps: Sleeps) -> None:
    fake.add_person("ann@acme.io", score=95)
    fake.inject(Fault(status=502, body={"errors": []}, times=2))

    assert make().people([person("ann@acme.io")]) == [found("ann@acme.io", "valid", 0.95)]
    assert sleeps == [0.5, 1.0]
    assert len(fake.calls()) == 3


def test_a_timeout_is_retried(fake: FakeHunter, make: Make, sleeps: Sleeps) -> None:
    fake.add_person("ann@acme.io", score=95)
    fake.inject(Fault(timeout=0.5, times=1))

    assert make(timeout=0.1).people([person("ann@acme.io")]) == [found("ann@acme.io", "valid", 0.95)]
    assert sleeps == [0.5]
    assert len(fake.calls()) == 2


def test_persistent_5xx_fails_after_the_retries(fake: FakeHunter, make: Make, sleeps: Sleeps) -> None:
    fake.inject(Fault(status=500, body={"errors": []}))

    with pytest.raises(ProviderError) as caught:
        make().people([person("ann@acme.io")])

    assert (caught.value.reason, caught.value.status, caught.value.retryable) == ("server_error", 500, True)
    assert sleeps == [0.5, 1.0, 2.0]
    assert len(fake.calls()) == 4


def test_malformed_json_is_a_bad_response(fake: FakeHunter, make: Make, sleeps: Sleeps) -> None:
    fake.inject(Fault(malformed=True, times=1))

    with pytest.raises(ProviderError) as caught:
        make().people([person("ann@acme.io")])

    assert caught.value.reason == "bad_response"
    assert len(fake.calls()) == 1
    assert sleeps == []


def test_the_budget_refuses_a_long_retry_after(fake: FakeHunter, make: Make, sleeps: Sleeps) -> None:
    fake.inject(Fault(status=503, headers={"Retry-After": "120"}, body={"errors": []}, times=1))

    with pytest.raises(ProviderError) as caught:
        make(budget=Budget(lambda: 30.0)).people([person("ann@acme.io")])

    assert caught.value.reason == "budget"
    assert "120.0s" in caught.value.message
    assert sleeps == []
    assert len(fake.calls()) == 1


def test_a_malformed_email_is_a_bad_request(fake: FakeHunter, make: Make) -> None:
    with pytest.raises(ProviderError) as caught:
        make().people([person("not-an-email")])

    assert (caught.value.reason, caught.value.status, caught.value.retryable) == ("bad_request", 400, False)
    assert "invalid_email" in caught.value.message


def test_an_unexpected_success_status_is_a_retryable_error(fake: FakeHunter, make: Make) -> None:
    fake.inject(Fault(status=222, body={"errors": []}, times=1))

    with pytest.raises(ProviderError) as caught:
        make().people([person("ann@acme.io")])

    assert (caught.value.reason, caught.value.status, caught.value.retryable) == ("server_error", 222, True)


# --------------------------------------------------------------------------------------- the fake's own answers


def test_the_fake_answers_in_the_documented_shapes(fake: FakeHunter) -> None:
    fake.add_person("ann@acme.io", status="valid", score=97, pending=1)
    url = fake.url + "/v2/email-verifier"
    with httpx.Client() as client:
        unauthorized = client.get(url, params={"email": "ann@acme.io"})
        in_progress = client.get(url, params={"email": "ann@acme.io", "api_key": "test-key"})
        done = client.get(url, params={"email": "ann@acme.io", "api_key": "test-key"})
        missing = client.get(url, params={"api_key": "test-key"})

    assert unauthorized.status_code == 401
    assert unauthorized.json() == {
        "errors": [{"id": "authentication_failed", "code": 401, "details": "No user found for the API key supplied"}]
    }
    assert in_progress.status_code == 202
    assert done.status_code == 200
    assert done.json() == {
        "data": {
            "status": "valid",
            "result": "deliverable",
            "score": 97,
            "email": "ann@acme.io",
            "regexp": True,
            "gibberish": False,
            "disposable": False,
            "webmail": False,
            "mx_records": True,
            "smtp_server": True,
            "smtp_check": True,
            "accept_all": False,
            "block": False,
            "sources": [],
        },
        "meta": {"params": {"email": "ann@acme.io"}},
    }
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["code"] == 400


def test_the_fake_throttles_with_403_and_meters_usage_with_429(fake: FakeHunter) -> None:
    fake.add_person("ann@acme.io")
    url = fake.url + "/v2/email-verifier"
    key = {"X-API-KEY": "test-key"}
    with httpx.Client() as client:
        fake.limits = {"second": 1}
        client.get(url, params={"email": "ann@acme.io"}, headers=key)
        throttled = client.get(url, params={"email": "ann@acme.io"}, headers=key)
        fake.limits = {}
        fake.credits = 0
        spent = client.get(url, params={"email": "ann@acme.io"}, headers=key)

    assert throttled.status_code == 403
    assert "retry-after" not in throttled.headers
    assert throttled.json()["errors"][0]["code"] == 403
    assert spent.status_code == 429
    assert spent.json()["errors"][0]["code"] == 429
