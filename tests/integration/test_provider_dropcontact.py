"""The Dropcontact adapter against the local fake, over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from leadpipe.enrichment.fields import EMAIL_STATUSES, Kind
from leadpipe.enrichment.http import Budget
from leadpipe.enrichment.providers.base import PersonQuery, ProviderError
from leadpipe.enrichment.providers.dropcontact import DropcontactProvider, email_status, linkedin_profile
from leadpipe_local.fakes.base import Fault
from leadpipe_local.fakes.dropcontact import NOT_READY_REASON, FakeDropcontact
from tests.integration.conftest import Sleeps

DENIS = {
    "civility": "Mr",
    "first_name": "Denis",
    "last_name": "Dupont",
    "full_name": "Denis Dupont",
    "email": [
        {"email": "denis@acme.fr", "qualification": "nominative@pro"},
        {"email": "contact@acme.fr", "qualification": "generic@pro"},
    ],
    "mobile_phone": "+33 6 12 34 56 78",
    "phone": "+33 1 23 45 67 89",
    "company": "Acme",
    "website": "www.acme.fr",
    "linkedin": "www.linkedin.com/in/denis-dupont",
    "job": "Customer Success Manager",
    "job_level": "Manager",
    "job_function": "Sales",
    "nb_employees": "202",
    "company_linkedin": "www.linkedin.com/company/acme",
}


pytestmark = pytest.mark.usefixtures("deterministic_http")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeDropcontact]:
    running = FakeDropcontact(polls_until_ready=0)
    running.start()
    yield running
    running.stop()


@pytest.fixture
def fake(server: FakeDropcontact) -> FakeDropcontact:
    server.reset()
    server.add_contact("denis@acme.fr", DENIS)
    return server


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


Make = Callable[..., DropcontactProvider]


@pytest.fixture
def make(fake: FakeDropcontact, sleeps: Sleeps) -> Iterator[Make]:
    made: list[DropcontactProvider] = []

    def build(**kwargs: Any) -> DropcontactProvider:
        options: dict[str, Any] = {"base_url": fake.url, "sleep": sleeps, "timeout": 2.0, **kwargs}
        provider = DropcontactProvider(str(options.pop("api_key", "test-key")), **options)
        made.append(provider)
        return provider

    yield build
    for provider in made:
        provider.close()


def q(email: str, **kwargs: Any) -> PersonQuery:
    return PersonQuery(email=email, **kwargs)


# ------------------------------------------------------------------------------------------------ request and mapping


def test_submit_sends_the_documented_body_and_returns_the_request_id(fake: FakeDropcontact, make: Make) -> None:
    query = q("denis@acme.fr", first_name="denis", last_name="dupont", company="Acme", domain="acme.fr", title="CSM")
    request_id = make().submit([query, q("x@y.io")])

    assert request_id in fake.batches and len(request_id) == 15
    (call,) = fake.calls("/v1/enrich/all", "POST")
    assert call.headers["x-access-token"] == "test-key"
    assert call.json() == {
        "data": [
            {
                "email": "denis@acme.fr",
                "first_name": "denis",
                "last_name": "dupont",
                "company": "Acme",
                "website": "acme.fr",
                "job": "CSM",
                "custom_fields": {"leadpipe_email": "denis@acme.fr"},
            },
            {"email": "x@y.io", "custom_fields": {"leadpipe_email": "x@y.io"}},
        ],
        "siren": False,
        "language": "en",
    }
    assert fake.batches[request_id].unexpected_fields == []


def test_pending_polls_return_none_then_every_mapped_field(fake: FakeDropcontact, make: Make) -> None:
    fake.polls_until_ready = 2
    provider = make()
    queries = [q("denis@acme.fr", first_name="denis", last_name="dupont", domain="acme.fr")]
    request_id = provider.submit(queries)

    assert provider.poll(request_id, queries) is None
    assert provider.poll(request_id, queries) is None
    answers = provider.poll(request_id, queries)

    assert answers is not None and len(answers) == 1
    answer = answers[0]
    assert (answer.kind, answer.key, answer.found) == (Kind.PERSON, "denis@acme.fr", True)
    assert answer.fields == {
        "first_name": "Denis",
        "last_name": "Dupont",
        "title": "Customer Success Manager",
        "linkedin": "https://www.linkedin.com/in/denis-dupont",
        "phone": "+33 6 12 34 56 78",
        "email_status": "valid",
    }
    assert answer.confidence == 1.0 and answer.field_confidence == {}
    assert len(fake.calls("/v1/enrich/all/", "GET")) == 3


def test_qualifications_map_onto_email_statuses_in_order(fake: FakeDropcontact, make: Make) -> None:
    cases = {
        "a@acme.fr": ("nominative@pro", "valid"),
        "b@acme.fr": ("nominatif@pro", "valid"),
        "c@acme.fr": ("catch-all@pro", "accept_all"),
        "d@gmail.com": ("nominative@perso", "webmail"),
        "e@acme.fr": ("generic@pro", "risky"),
        "f@acme.fr": ("Do_Not_Contact@pro", "risky"),
        "g@acme.fr": ("non_validated@pro", "unknown"),
        "h@acme.fr": ("invalid@pro", "invalid"),
        "i@nowhere.zz": ("nominative@invalid domain", "invalid"),
        "j@yopmail.com": ("nominative@disposable", "disposable"),
        "k@school.edu": ("nominative@school", "valid"),
    }
    for email, (qualification, _) in cases.items():
        fake.add_contact(email, qualification=qualification)
    queries = [q(email) for email in reversed(list(cases))]
    provider = make()

    answers = provider.poll(provider.submit(queries), queries)

    assert answers is not None
    assert [a.key for a in answers] == [query.email for query in queries]
    assert {a.key: a.fields for a in answers} == {e: {"email_status": s} for e, (_, s) in cases.items()}
    assert {s for _, s in cases.values()} == set(EMAIL_STATUSES)  # every status is reachable


def test_a_company_switchboard_stands_in_for_a_missing_mobile_with_lower_confidence(
    fake: FakeDropcontact, make: Make
) -> None:
    fake.add_contact("ops@acme.fr", {"phone": "+33 1 23 45 67 89", "job": "Head of Operations"})
    provider = make()
    queries = [q("ops@acme.fr")]

    (answer,) = provider.poll(provider.submit(queries), queries) or []

    assert answer.fields == {"phone": "+33 1 23 45 67 89", "title": "Head of Operations"}
    assert answer.field_confidence == {"phone": 0.5}
    assert answer.weight("phone", 0.5) == 0.25 and answer.weight("title", 0.7) == 0.7


def test_misses_keep_their_place_and_a_cleaned_echo_of_the_input_is_a_miss(fake: FakeDropcontact, make: Make) -> None:
    fake.add_contact("zoe@beta.io", first_name="Zoé", last_name="Martin", qualification="catch-all@pro")
    queries = [
        q("nobody@void.io"),
        q("denis@acme.fr"),
        q("echo@void.io", first_name="jean", last_name="valjean", company="Void", domain="void.io"),
        q("zoe@beta.io"),
    ]
    provider = make()

    answers = provider.poll(provider.submit(queries), queries)

    assert answers is not None
    assert [(a.key, a.found) for a in answers] == [
        ("nobody@void.io", False),
        ("denis@acme.fr", True),
        ("echo@void.io", False),
        ("zoe@beta.io", True),
    ]
    assert answers[0].fields == {} and answers[2].fields == {}
    assert answers[3].fields == {"first_name": "Zoé", "last_name": "Martin", "email_status": "accept_all"}
    echoed = fake.batches[next(iter(fake.batches))].result[2]
    assert echoed["first_name"] == "Jean" and echoed["website"] == "www.void.io"  # the fake did clean it


def test_records_are_matched_by_position_when_custom_fields_are_not_echoed(fake: FakeDropcontact, make: Make) -> None:
    fake.echo_custom_fields = False
    fake.add_contact("zoe@beta.io", qualification="invalid@pro")
    queries = [q("zoe@beta.io"), q("nobody@void.io"), q("denis@acme.fr")]
    provider = make()

    answers = provider.poll(provider.submit(queries), queries)

    assert answers is not None
    assert [(a.key, a.found, a.fields.get("email_status")) for a in answers] == [
        ("zoe@beta.io", True, "invalid"),
        ("nobody@void.io", False, None),
        ("denis@acme.fr", True, "valid"),
    ]


def test_an_unknown_request_id_is_pending_as_the_api_answers(fake: FakeDropcontact, make: Make) -> None:
    assert make().poll("doesnotexistyet", [q("denis@acme.fr")]) is None
    response = httpx.get(f"{fake.url}/v1/enrich/all/doesnotexistyet", headers={"X-Access-Token": "test-key"})
    assert response.status_code == 200
    assert response.json() == {"error": False, "reason": NOT_READY_REASON, "success": False}


# ------------------------------------------------------------------------------------------------ limits and paths


def test_a_batch_over_250_records_is_rejected(fake: FakeDropcontact, make: Make) -> None:
    queries = [q(f"p{i}@acme.fr") for i in range(251)]
    with pytest.raises(ProviderError) as caught:
        make().submit(queries)
    assert (caught.value.reason, caught.value.retryable) == ("bad_request", False)
    assert fake.calls() == []  # refused before any call

    records = [{"email": query.email} for query in queries]
    response = httpx.post(f"{fake.url}/v1/enrich/all", json={"data": records}, headers={"X-Access-Token": "test-key"})
    assert response.status_code == 400
    assert response.json() == {
        "error": True,
        "reason": "Too many records, you can only submit up to 250 records",
        "success": False,
    }
    assert make().poll(make().submit(queries[:250]), queries[:250]) is not None


def test_the_synchronous_path_submits_then_polls_every_interval(
    fake: FakeDropcontact, make: Make, sleeps: Sleeps
) -> None:
    fake.polls_until_ready = 2
    answers = make(poll_interval_seconds=0.01).people([q("denis@acme.fr"), q("nobody@void.io")])

    assert [(a.key, a.found) for a in answers] == [("denis@acme.fr", True), ("nobody@void.io", False)]
    assert sleeps == [0.01, 0.01, 0.01]
    assert len(fake.calls("/v1/enrich/all$", "POST")) == 1 and len(fake.calls("/v1/enrich/all/", "GET")) == 3


def test_the_synchronous_path_gives_up_when_the_budget_runs_out_while_pending(fake: FakeDropcontact) -> None:
    fake.polls_until_ready = 5
    clock = {"now": 0.0}

    def sleep(seconds: float) -> None:
        clock["now"] += seconds

    budget = Budget(lambda: 70.0 - clock["now"], margin=5.0)
    provider = DropcontactProvider("test-key", base_url=fake.url, budget=budget, sleep=sleep)
    try:
        with pytest.raises(ProviderError) as caught:
            provider.people([q("denis@acme.fr")])
    finally:
        provider.close()

    assert caught.value.reason == "budget" and caught.value.retryable
    (request_id,) = fake.batches
    assert request_id in caught.value.message
    assert clock["now"] == 60.0  # two 30 s waits fitted in 65 s; a third would not
    assert len(fake.calls("/v1/enrich/all/", "GET")) == 2


# ------------------------------------------------------------------------------------------------ failures


def test_a_bad_key_is_an_auth_error_without_retry(fake: FakeDropcontact, make: Make, sleeps: Sleeps) -> None:
    with pytest.raises(ProviderError) as caught:
        make(api_key="wrong").submit([q("denis@acme.fr")])
    error = caught.value
    assert (error.provider, error.reason, error.retryable, error.status) == ("dropcontact", "auth", False, 401)
    assert len(fake.calls()) == 1 and sleeps == []


def test_a_429_is_retried_after_the_hinted_delay(fake: FakeDropcontact, make: Make, sleeps: Sleeps) -> None:
    fake.inject(FakeDropcontact.rate_limit_fault(retry_after=7))
    provider = make()

    request_id = provider.submit([q("denis@acme.fr")])

    assert sleeps == [7.0]
    assert request_id in fake.batches and len(fake.calls("/v1/enrich/all", "POST")) == 2
    assert provider.http.throttled == 1


def test_5xx_answers_are_retried_with_back_off_until_recovery(
    fake: FakeDropcontact, make: Make, sleeps: Sleeps
) -> None:
    provider = make()
    queries = [q("denis@acme.fr")]
    request_id = provider.submit(queries)
    fake.inject(Fault(status=503, body={"detail": "Service Unavailable"}, times=2, path="/v1/enrich/all/"))

    answers = provider.poll(request_id, queries)

    assert answers is not None and answers[0].found
    assert sleeps == [0.5, 1.0]
    assert len(fake.calls("/v1/enrich/all/", "GET")) == 3


def test_5xx_past_the_retries_is_a_server_error(fake: FakeDropcontact, make: Make, sleeps: Sleeps) -> None:
    provider = make()
    request_id = provider.submit([q("denis@acme.fr")])
    fake.inject(Fault(status=500, body={"detail": "Internal Server Error"}, times=10, path="/v1/enrich/all/"))
    with pytest.raises(ProviderError) as caught:
        provider.poll(request_id, [q("denis@acme.fr")])
    assert (caught.value.reason, caught.value.status, caught.value.retryable) == ("server_error", 500, True)
    assert sleeps == [0.5, 1.0, 2.0] and len(fake.calls("/v1/enrich/all/", "GET")) == 4


def test_a_submit_answered_with_a_5xx_is_not_sent_again(fake: FakeDropcontact, make: Make, sleeps: Sleeps) -> None:
    # A 500 or a gateway's 502/504 may come after the batch was accepted: a second submit could be paid twice.
    fake.inject(Fault(status=502, body={"detail": "Bad Gateway"}, times=1, path="^/v1/enrich/all$"))
    with pytest.raises(ProviderError) as caught:
        make().submit([q("denis@acme.fr")])
    assert (caught.value.reason, caught.value.status) == ("server_error", 502)
    assert sleeps == [] and len(fake.calls()) == 1


def test_a_submit_refused_with_a_429_is_sent_again(fake: FakeDropcontact, make: Make, sleeps: Sleeps) -> None:
    # A rate limit refuses the request before doing anything: sending it again after the wait is safe.
    fake.inject(Fault(status=429, body={"detail": "Too Many Requests"}, times=1, path="^/v1/enrich/all$"))
    assert make().submit([q("denis@acme.fr")])
    assert len(fake.calls()) == 2


def test_a_timeout_is_retried(fake: FakeDropcontact, make: Make, sleeps: Sleeps) -> None:
    provider = make(timeout=0.2)
    queries = [q("denis@acme.fr")]
    request_id = provider.submit(queries)
    fake.inject(Fault(timeout=0.6, times=1, path="/v1/enrich/all/"))

    answers = provider.poll(request_id, queries)

    assert answers is not None and answers[0].fields["email_status"] == "valid"
    assert sleeps == [0.5] and len(fake.calls("/v1/enrich/all/", "GET")) == 2


def test_a_submit_that_timed_out_is_not_sent_again(fake: FakeDropcontact, make: Make, sleeps: Sleeps) -> None:
    # The batch may have been accepted: a second submit would create (and bill) a second batch.
    fake.inject(Fault(timeout=0.6, times=1, path="^/v1/enrich/all$"))
    with pytest.raises(ProviderError) as caught:
        make(timeout=0.2).submit([q("denis@acme.fr")])
    assert caught.value.reason == "timeout"
    assert sleeps == [] and len(fake.calls("^/v1/enrich/all$", "POST")) == 1


def test_malformed_json_is_a_bad_response(fake: FakeDropcontact, make: Make) -> None:
    fake.inject(Fault(malformed=True, times=1))
    with pytest.raises(ProviderError) as caught:
        make().submit([q("denis@acme.fr")])
    assert caught.value.reason == "bad_response"


def test_a_refusal_in_a_200_answer_is_read_from_success_and_reason(fake: FakeDropcontact, make: Make) -> None:
    refusal = {"error": True, "reason": "You don't have enough credits", "success": False}
    fake.inject(Fault(status=200, body=refusal, times=1))
    with pytest.raises(ProviderError) as caught:
        make().submit([q("denis@acme.fr")])
    assert (caught.value.reason, caught.value.retryable) == ("quota", False)


# ------------------------------------------------------------------------------------------------ helpers


@pytest.mark.parametrize(
    ("qualification", "status"),
    [
        ("nominative@pro", "valid"),
        ("NOMINATIF@PRO", "valid"),
        ("catch_all@pro", "accept_all"),
        ("invalide@domaine invalide", "invalid"),
        ("generique@jetable", "disposable"),
        ("non_validé@perso", "webmail"),
        ("invalid@perso", "invalid"),
        ("something_new@pro", "unknown"),
        ("", None),
        (None, None),
        ("nonsense", None),
    ],
)
def test_email_status_of_a_qualification(qualification: str | None, status: str | None) -> None:
    assert email_status(qualification) == status


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("www.linkedin.com/in/denis-dupont", "https://www.linkedin.com/in/denis-dupont"),
        ("https://fr.linkedin.com/in/denis.dupont/", "https://www.linkedin.com/in/denis.dupont"),
        ("http://linkedin.com/in/x?trk=1", "https://www.linkedin.com/in/x"),
        ("www.linkedin.com/company/acme", None),
        (None, None),
    ],
)
def test_linkedin_profile_urls_are_normalised(url: str | None, expected: str | None) -> None:
    assert linkedin_profile(url) == expected
