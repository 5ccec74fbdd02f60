"""The intelligence step against the fake Chat Completions endpoint, over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from leadpipe.enrichment.http import Budget, TokenBucket
from leadpipe.enrichment.intelligence import (
    DEFAULT_BASE_URL,
    DEFAULT_MODEL,
    RATE_LIMIT,
    SYSTEM_PROMPT,
    ContactProfile,
    Intelligence,
    from_env,
)
from leadpipe.enrichment.providers.base import ProviderError
from leadpipe.models import Contact, FieldValue
from leadpipe_local.fakes.base import Fault
from leadpipe_local.fakes.llm import FakeLlm

KEY = "sk-test-fake-llm-key-0001"
PATH = "/v1/chat/completions"
ANSWERED_MODEL = f"{DEFAULT_MODEL}-2025-04-14"


class Sleeps(list[float]):
    """Records the waits instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLlm]:
    # One server for the module: stopping one takes half a second (the serve_forever poll interval).
    fake = FakeLlm(api_key=KEY)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(server: FakeLlm) -> Iterator[FakeLlm]:
    """The shared fake, with no requests, faults or queued modes left from another test. Afterwards, whatever the
    test: no request sent an email address."""
    with server.lock:
        server.requests.clear()
        server.faults.clear()
        server.modes.clear()
    server.mode = "ok"
    yield server
    for intelligence in _clients:
        intelligence.close()
    _clients.clear()
    for request in server.calls(PATH):
        assert b"@" not in request.body


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


_clients: list[Intelligence] = []


def client(fake: FakeLlm, sleeps: Sleeps, key: str = KEY, **kwargs: Any) -> Intelligence:
    intelligence = Intelligence(key, base_url=fake.url, sleep=sleeps, **kwargs)
    intelligence.http.bucket = TokenBucket(RATE_LIMIT)  # a full bucket: no test waits on the calls of another
    _clients.append(intelligence)
    return intelligence


def people(count: int) -> list[ContactProfile]:
    industries = ("software", "healthcare", "retail")
    sizes = ("11-50", "201-500", "1001-5000")
    departments = ("sales", "marketing", "engineering")
    return [
        ContactProfile(
            email=f"person{i:02d}@acme{i % 3}.example",
            first_name=f"Name{i}",
            title="VP Sales",
            seniority="vp",
            department=departments[i % 3],
            company_name=f"Acme {i % 3}",
            industry=industries[i % 3],
            employee_range=sizes[i % 3],
            country="Germany",
        )
        for i in range(count)
    ]


def bodies(fake: FakeLlm) -> list[dict[str, Any]]:
    return [request.json() for request in fake.calls(PATH, "POST")]


def contacts_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    contacts: list[dict[str, Any]] = json.loads(body["messages"][1]["content"])["contacts"]
    return contacts


def ids(count: int) -> list[str]:
    return [f"c{n}" for n in range(1, count + 1)]


def assert_no_email_sent(fake: FakeLlm, profiles: list[ContactProfile]) -> None:
    """No request body, in its raw bytes, holds an email address, nor (in any case) one of the profiles' emails or
    their domains. (The local part may equal the first name, which is sent.)"""
    sent = fake.calls(PATH)
    assert sent
    for request in sent:
        raw = request.body.lower()
        assert b"@" not in raw and b"%40" not in raw and b"\\u0040" not in raw
        for profile in profiles:
            email = profile.email.strip().lower().encode()
            assert email not in raw
            assert email.split(b"@")[1] not in raw


def test_23_contacts_take_three_requests_of_10_10_and_3(fake: FakeLlm, sleeps: Sleeps) -> None:
    profiles = people(23)
    emails = [p.email for p in profiles]
    intelligence = client(fake, sleeps)
    before = datetime.now(UTC)

    result = intelligence.generate(profiles)

    sent = bodies(fake)
    assert len(sent) == 3
    # Per-request ids, in each chunk's order: every request starts again at c1.
    assert [[c["id"] for c in contacts_of(body)] for body in sent] == [ids(10), ids(10), ids(3)]
    assert [[c["first_name"] for c in contacts_of(body)] for body in sent] == [
        [p.first_name for p in profiles[:10]],
        [p.first_name for p in profiles[10:20]],
        [p.first_name for p in profiles[20:]],
    ]
    assert [body["response_format"]["json_schema"]["schema"]["required"] for body in sent] == [
        ids(10),
        ids(10),
        ids(3),
    ]
    assert_no_email_sent(fake, profiles)
    assert list(result) == emails
    assert result["person00@acme0.example"].pain_points == [
        "Reps spend hours researching accounts instead of selling",
        "Standing out in a crowded software market",
        "Doing more with a small team and a tight budget",
    ]
    assert result["person00@acme0.example"].hooks == [
        "Name0, how is Acme 0 tackling this quarter's priorities?",
        "Ideas that worked for other teams in software",
        "A quick thought for someone working as VP Sales",
    ]
    for index, profile in enumerate(profiles):
        expected = FakeLlm.insight_for(profile.prompt_fields(f"c{index % 10 + 1}"))
        insight = result[profile.email]  # each answer mapped back to its own contact's email
        assert (insight.pain_points, insight.hooks) == (expected["pain_points"], expected["hooks"])
        assert insight.model == ANSWERED_MODEL
        assert insight.generated_at.tzinfo is UTC
        assert before <= insight.generated_at <= datetime.now(UTC)
    assert intelligence.failures == []
    assert intelligence.calls == 3
    assert intelligence.prompt_tokens > 0
    assert intelligence.completion_tokens > 0
    assert sleeps == []


def test_request_carries_the_key_the_prompt_and_a_strict_schema_keyed_by_id(fake: FakeLlm, sleeps: Sleeps) -> None:
    profiles = [
        ContactProfile(
            email="ada@acme.example",
            first_name="Ada",
            title="Head of  Revenue Operations",
            seniority="head",
            department="revenue_operations",
            company_name="Acme",
            industry="software",
            employee_range="51-200",
            country="Germany",
        ),
        ContactProfile(email="bob@beta.example", company_name="Beta"),
    ]

    result = client(fake, sleeps).generate(profiles)

    (request,) = fake.calls(PATH)
    assert request.method == "POST"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"] == "application/json"
    entry = {
        "type": "object",
        "properties": {
            "pain_points": {
                "type": "array",
                "description": "Up to 3 likely business pain points, each one sentence of at most 200 characters.",
                "items": {"type": "string"},
                "maxItems": 3,
            },
            "hooks": {
                "type": "array",
                "description": "Up to 3 personalisation hooks for a first message, each one sentence of at most 200 "
                "characters.",
                "items": {"type": "string"},
                "maxItems": 3,
            },
        },
        "required": ["pain_points", "hooks"],
        "additionalProperties": False,
    }
    assert request.json() == {
        "model": DEFAULT_MODEL,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {
                "role": "user",
                "content": json.dumps(
                    {
                        "contacts": [
                            {
                                "id": "c1",
                                "first_name": "Ada",
                                "title": "Head of Revenue Operations",
                                "seniority": "head",
                                "department": "revenue_operations",
                                "company_name": "Acme",
                                "industry": "software",
                                "employee_range": "51-200",
                                "country": "Germany",
                            },
                            {"id": "c2", "company_name": "Beta"},
                        ]
                    }
                ),
            },
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "contact_insights",
                "strict": True,
                "schema": {
                    "type": "object",
                    "properties": {"c1": entry, "c2": entry},
                    "required": ["c1", "c2"],
                    "additionalProperties": False,
                },
            },
        },
    }
    assert_no_email_sent(fake, profiles)
    assert list(result) == ["ada@acme.example", "bob@beta.example"]


def test_no_phone_numbers_or_other_private_fields_are_sent(fake: FakeLlm, sleeps: Sleeps) -> None:
    at = datetime(2026, 1, 5, tzinfo=UTC)
    contact = Contact(
        workspace="default",
        email="ada@acme.example",
        email_domain="acme.example",
        first_name="Ada",
        last_name="Lovelace",
        company="Acme",
        title="Head of Sales (+44 20 7946 0958)",
        phone="+44 20 7946 0958",
        linkedin="https://www.linkedin.com/in/ada-lovelace",
        city="London",
        country="United Kingdom",
        enrichment={
            "phone": FieldValue(value="+1 415 555 0132", provider="p", confidence=0.9, fetched_at=at),
            "industry": FieldValue(value="software", provider="p", confidence=0.9, fetched_at=at),
            "employee_range": FieldValue(value="51-200", provider="p", confidence=0.9, fetched_at=at),
        },
    )

    result = client(fake, sleeps).generate([ContactProfile.from_contact(contact)])

    (request,) = fake.calls(PATH)
    raw = request.body.decode()
    for private in ("phone", "7946", "0958", "415", "0132", "Lovelace", "London", "linkedin"):
        assert private not in raw
    assert contacts_of(request.json()) == [
        {
            "id": "c1",
            "first_name": "Ada",
            "title": "Head of Sales",
            "seniority": "head",
            "department": "sales",
            "company_name": "Acme",
            "industry": "software",
            "employee_range": "51-200",
            "country": "United Kingdom",
        }
    ]
    assert list(result) == ["ada@acme.example"]


def test_email_addresses_in_the_profile_fields_are_not_sent(fake: FakeLlm, sleeps: Sleeps) -> None:
    profile = ContactProfile(
        email="Ada.Lovelace@Acme.example",
        first_name="ada.lovelace@acme.example",  # an import that put the address in the name
        title="Head of Sales (ada.lovelace@acme.example)",
        company_name="Acme <mailto:info@acme.example>",
        industry="software, ask sales+eu@acme.example",
        country="UK [ada@acme.example]",
    )

    result = client(fake, sleeps).generate([profile])

    (request,) = fake.calls(PATH)
    assert contacts_of(request.json()) == [
        {"id": "c1", "title": "Head of Sales", "company_name": "Acme", "industry": "software, ask", "country": "UK"}
    ]
    assert_no_email_sent(fake, [profile])
    assert list(result) == ["Ada.Lovelace@Acme.example"]


def test_a_sloppy_answer_is_trimmed_and_unknown_or_missing_ids_handled(fake: FakeLlm, sleeps: Sleeps) -> None:
    profiles = people(3)
    fake.mode = "sloppy"  # 5 pain points (one 255 characters), blank and repeated hooks, an extra key, the first
    # id upper-cased ("C1"), the last contact left out, a contact nobody asked about ("c4")

    result = client(fake, sleeps).generate(profiles)

    assert list(result) == [profiles[0].email, profiles[1].email]
    for index, profile in enumerate(profiles[:2]):
        expected = FakeLlm.insight_for(profile.prompt_fields(f"c{index + 1}"))
        insight = result[profile.email]
        assert insight.pain_points == [
            "Budget pressure " * 12 + "Budget…",
            expected["pain_points"][0],
            expected["pain_points"][1],
        ]
        assert insight.hooks == expected["hooks"]
    assert len(result[profiles[0].email].pain_points[0]) == 199


def test_bad_json_in_one_chunk_does_not_lose_the_others(fake: FakeLlm, sleeps: Sleeps) -> None:
    profiles = people(23)
    emails = [p.email for p in profiles]
    fake.queue("ok", "invalid_json", "ok")
    intelligence = client(fake, sleeps)

    result = intelligence.generate(profiles)

    assert list(result) == emails[:10] + emails[20:]
    (failure,) = intelligence.failures
    assert failure.emails == tuple(emails[10:20])
    assert failure.error.reason == "bad_response"
    assert failure.error.message == "the model's output is not JSON (Expecting value at character 0)"
    assert intelligence.calls == 3
    assert sleeps == []


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("invalid_json", "the model's output is not JSON (Expecting value at character 0)"),
        (
            "schema_violation",
            "the model's output does not match the schema (pain_points: Input should be a valid list)",
        ),
        ("not_object", "the model's output is a JSON list, not an object keyed by contact id"),
        ("refusal", "the model refused to answer"),
        ("truncated", "the model's JSON was cut off at the output token limit"),
    ],
)
def test_unusable_output_is_a_bad_response_without_retry(
    fake: FakeLlm, sleeps: Sleeps, mode: Any, message: str
) -> None:
    fake.mode = mode
    intelligence = client(fake, sleeps)

    with pytest.raises(ProviderError) as raised:
        intelligence.generate(people(4))

    assert (raised.value.provider, raised.value.reason, raised.value.message) == ("llm", "bad_response", message)
    assert len(intelligence.failures) == 1
    assert intelligence.calls == 1
    assert sleeps == []


def test_a_wrong_key_is_an_auth_error_not_retried_and_not_echoed(fake: FakeLlm, sleeps: Sleeps) -> None:
    wrong = "sk-wrong-key-abcdef123456"
    intelligence = client(fake, sleeps, key=wrong)

    with pytest.raises(ProviderError) as raised:
        intelligence.generate(people(23))

    error = raised.value
    assert (error.reason, error.status, error.retryable) == ("auth", 401, False)
    assert "invalid_api_key" in error.message
    assert "Incorrect API key provided: ***" in error.message
    for secret in (wrong, "3456", "sk-wro"):
        assert secret not in str(error)
    assert error.__cause__ is None and error.__suppress_context__
    assert intelligence.calls == 1  # not retried, and the other two chunks not tried
    assert len(fake.calls(PATH)) == 1
    assert sleeps == []
    assert "sk-" not in repr(intelligence)


def test_429_with_retry_after_is_retried_after_the_given_delay(fake: FakeLlm, sleeps: Sleeps) -> None:
    fake.rate_limit(times=2, retry_after=7)
    intelligence = client(fake, sleeps)

    result = intelligence.generate(people(2))

    assert sleeps == [7.0, 7.0]
    assert intelligence.calls == 3
    assert intelligence.http.throttled == 2
    assert list(result) == [p.email for p in people(2)]


def test_429_without_retry_after_waits_for_the_exhausted_limit_to_reset(fake: FakeLlm, sleeps: Sleeps) -> None:
    fake.rate_limit(times=1, retry_after=None, reset="1m0.5s")

    result = client(fake, sleeps).generate(people(1))

    assert sleeps == [60.5]
    assert len(result) == 1


def test_429_past_the_retries_is_rate_limited(fake: FakeLlm, sleeps: Sleeps) -> None:
    fake.rate_limit(times=10, retry_after=1)
    intelligence = client(fake, sleeps)

    with pytest.raises(ProviderError) as raised:
        intelligence.generate(people(1))

    assert (raised.value.reason, raised.value.status, raised.value.retry_after) == ("rate_limited", 429, 1.0)
    assert "rate_limit_exceeded" in raised.value.message
    assert intelligence.calls == 4
    assert sleeps == [1.0, 1.0, 1.0]


def test_429_for_exhausted_quota_is_not_retried(fake: FakeLlm, sleeps: Sleeps) -> None:
    fake.quota_exhausted(times=5)
    intelligence = client(fake, sleeps)

    with pytest.raises(ProviderError) as raised:
        intelligence.generate(people(12))

    assert (raised.value.reason, raised.value.status, raised.value.retryable) == ("quota", 429, False)
    assert raised.value.message.startswith("HTTP 429 insufficient_quota: You exceeded your current quota")
    assert intelligence.calls == 1
    assert sleeps == []


def test_server_errors_in_one_chunk_do_not_lose_the_others(fake: FakeLlm, sleeps: Sleeps) -> None:
    profiles = people(13)
    fake.inject(Fault(status=503, body={"error": {"message": "overloaded", "type": "server_error"}}, times=4))
    intelligence = client(fake, sleeps)

    result = intelligence.generate(profiles)

    assert list(result) == [p.email for p in profiles[10:]]
    (failure,) = intelligence.failures
    assert (failure.error.reason, failure.error.status) == ("server_error", 503)
    assert failure.emails == tuple(p.email for p in profiles[:10])
    assert intelligence.calls == 5
    assert len(sleeps) == 3


def test_no_request_is_started_without_time_for_it(fake: FakeLlm, sleeps: Sleeps) -> None:
    intelligence = client(fake, sleeps, budget=Budget(lambda: 20.0, margin=5.0), timeout=30.0)

    with pytest.raises(ProviderError) as raised:
        intelligence.generate(people(3))

    assert raised.value.reason == "budget"
    assert fake.calls(PATH) == []


def test_nothing_to_do_and_repeated_emails(fake: FakeLlm, sleeps: Sleeps) -> None:
    intelligence = client(fake, sleeps)
    assert intelligence.generate([]) == {}
    assert fake.calls(PATH) == []

    first = people(1)[0]
    again = ContactProfile(email=first.email.upper(), company_name="Other")
    result = intelligence.generate([first, again])

    assert list(result) == [first.email]
    (sent,) = contacts_of(bodies(fake)[0])
    assert (sent["id"], sent["company_name"]) == ("c1", first.company_name)
    assert_no_email_sent(fake, [first, again])


def test_from_env_is_off_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLM_API_KEY", raising=False)
    assert from_env() is None
    assert Intelligence.from_env(environ={}) is None
    assert Intelligence.from_env(environ={"LLM_API_KEY": "  ", "LLM_BASE_URL": "http://x"}) is None

    defaults = Intelligence.from_env(environ={"LLM_API_KEY": "sk-anything"})
    assert defaults is not None
    assert (defaults.base_url, defaults.model) == (DEFAULT_BASE_URL, DEFAULT_MODEL)
    defaults.close()


def test_from_env_with_a_key_uses_the_configured_endpoint_and_model(fake: FakeLlm, sleeps: Sleeps) -> None:
    environ = {"LLM_API_KEY": KEY, "LLM_BASE_URL": f"{fake.url}/v1/", "LLM_MODEL": "local-model"}
    intelligence = Intelligence.from_env(Budget(), environ=environ, sleep=sleeps)
    assert intelligence is not None
    assert (intelligence.base_url, intelligence.model) == (fake.url, "local-model")

    with intelligence:
        result = intelligence.generate(people(1))

    assert intelligence.http.client.is_closed
    assert bodies(fake)[0]["model"] == "local-model"
    assert result["person00@acme0.example"].model == "local-model-2025-04-14"
