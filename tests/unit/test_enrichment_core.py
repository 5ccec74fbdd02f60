"""Field merge, quality score and the waterfall, with in-memory providers and cache (no network, no AWS)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadpipe.enrichment.fields import Kind, department_of, employee_range, range_of, seniority_of
from leadpipe.enrichment.http import Budget
from leadpipe.enrichment.merge import QUALITY_WEIGHTS, Observation, merge_field, quality, support
from leadpipe.enrichment.providers.base import (
    Answer,
    AsyncProvider,
    PersonQuery,
    ProviderError,
    ProviderInfo,
    RateLimit,
)
from leadpipe.enrichment.waterfall import Waterfall
from leadpipe.models import Contact, FieldValue
from tests.scripted import ScriptedProvider

T = datetime(2026, 11, 24, tzinfo=UTC)


def obs(value: object, provider: str, weight: float, rank: int = 0, name: str = "industry") -> Observation:
    return Observation(name, value, provider, weight, T, rank)


# ------------------------------------------------------------------------------------------------ merge


def test_one_source_keeps_its_weight() -> None:
    merged = merge_field([obs("software", "a", 0.8)])
    assert merged is not None
    assert (merged.value, merged.provider, merged.confidence, merged.agreed_by, merged.conflicts) == (
        "software",
        "a",
        0.8,
        [],
        [],
    )


def test_agreement_raises_confidence_and_names_every_source() -> None:
    merged = merge_field([obs("Software", "a", 0.8), obs("software ", "b", 0.6, rank=1)])
    assert merged is not None
    assert merged.value == "Software" and merged.provider == "a" and merged.agreed_by == ["b"]
    assert merged.confidence == pytest.approx(0.92)


def test_disagreement_lowers_confidence_and_keeps_the_loser() -> None:
    merged = merge_field([obs("software", "a", 0.8), obs("fintech", "b", 0.6, rank=1)])
    assert merged is not None
    assert merged.value == "software"
    assert merged.confidence == pytest.approx(0.8 * 0.8 / 1.4, abs=1e-4)
    assert [(c.value, c.provider) for c in merged.conflicts] == [("fintech", "b")]


def test_two_weaker_agreeing_sources_beat_one_stronger() -> None:
    merged = merge_field([obs("51-200", "a", 0.8), obs("11-50", "b", 0.6, 1), obs("11-50", "c", 0.6, 2)])
    assert merged is not None and merged.value == "11-50"  # support 0.84 vs 0.8
    assert sorted([merged.provider, *merged.agreed_by]) == ["b", "c"]


def test_ties_go_to_the_provider_asked_first_and_empty_values_are_ignored() -> None:
    merged = merge_field([obs("x", "late", 0.7, rank=3), obs("y", "early", 0.7, rank=1), obs("", "z", 0.9)])
    assert merged is not None and merged.value == "y"
    assert merge_field([obs(None, "a", 0.9), obs("v", "b", 0.0)]) is None


def test_company_names_compare_without_legal_suffix() -> None:
    merged = merge_field(
        [
            obs("Kestrel Freight, Inc.", "a", 0.7, name="company_name"),
            obs("Kestrel Freight", "b", 0.7, 1, name="company_name"),
        ]
    )
    assert merged is not None and merged.conflicts == [] and merged.agreed_by == ["b"]


weights = st.floats(min_value=0.01, max_value=1.0, allow_nan=False)


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), weights), min_size=1, max_size=8))
@settings(max_examples=300, deadline=None)
def test_confidence_is_a_probability_and_at_most_the_winners_support(values: list[tuple[str, float]]) -> None:
    observations = [obs(v, f"p{i}", w, i) for i, (v, w) in enumerate(values)]
    merged = merge_field(observations)
    assert merged is not None
    win = support([o.weight for o in observations if o.value == merged.value])
    assert 0.0 <= merged.confidence <= win + 5e-5  # confidences are rounded to 4 places
    if len({v for v, _ in values}) == 1:
        assert merged.confidence == pytest.approx(win, abs=1e-4)


@given(st.lists(weights, min_size=1, max_size=6), weights)
@settings(max_examples=200, deadline=None)
def test_another_agreeing_source_never_lowers_confidence(ws: list[float], extra: float) -> None:
    base = merge_field([obs("v", f"p{i}", w, i) for i, w in enumerate(ws)])
    more = merge_field([obs("v", f"p{i}", w, i) for i, w in enumerate([*ws, extra])])
    assert base is not None and more is not None
    assert more.confidence >= base.confidence - 1e-9


def fv(value: object, confidence: float) -> FieldValue:
    return FieldValue(value=value, provider="p", confidence=confidence, fetched_at=T)  # type: ignore[arg-type]


def test_quality_formula() -> None:
    assert sum(QUALITY_WEIGHTS.values()) == pytest.approx(1.0)
    full = {name: fv("x", 1.0) for name in QUALITY_WEIGHTS} | {"email_status": fv("valid", 1.0)}
    assert quality(full) == 1.0
    assert quality({}) == 0.0
    half = {name: fv("x", 0.5) for name in QUALITY_WEIGHTS} | {"email_status": fv("valid", 0.5)}
    assert quality(half) == 0.5
    invalid = full | {"email_status": fv("invalid", 1.0)}
    assert quality(invalid) == pytest.approx(0.8)
    webmail = full | {"email_status": fv("webmail", 1.0)}
    assert quality(webmail) == pytest.approx(0.92)
    no_country = {k: v for k, v in full.items() if k != "country"}
    assert quality(no_country | {"company_country": fv("France", 0.6)}) == pytest.approx(0.95 + 0.05 * 0.6)


def test_vocabulary_helpers() -> None:
    assert [employee_range(n) for n in (1, 10, 11, 200, 201, 5000, 10000, 10001, 0, None)] == [
        "1-10",
        "1-10",
        "11-50",
        "51-200",
        "201-500",
        "1001-5000",
        "5001-10000",
        "10001+",
        None,
        None,
    ]
    assert [range_of(s) for s in ("51 - 200", "51_200", "10,001+", "10000+", "200", "lots", None)] == [
        "51-200",
        "51-200",
        "10001+",
        "10001+",
        "51-200",
        None,
        None,
    ]
    titles = ("Co-Founder & CEO", "Chief Revenue Officer", "VP Sales", "Head of RevOps", "Account Executive", None)
    assert [seniority_of(t) for t in titles] == ["owner", "c_suite", "vp", "head", "entry", None]
    assert department_of("Head of Revenue Operations") == "revenue_operations"
    assert department_of("Senior Software Engineer") == "engineering"
    assert department_of("CEO") == "executive"
    assert department_of("Barista") == "other"


# ------------------------------------------------------------------------------------------------ waterfall


class MemoryCache:
    def __init__(self) -> None:
        self.store: dict[tuple[str, Kind, str], Answer] = {}
        self.gets = 0

    def get_many(self, provider: str, kind: Kind, keys: Sequence[str]) -> dict[str, Answer]:
        self.gets += 1
        return {k: self.store[(provider, kind, k)] for k in keys if (provider, kind, k) in self.store}

    def put_many(self, provider: str, answers: Sequence[Answer]) -> None:
        for a in answers:
            self.store[(provider, a.kind, a.key)] = a


def contact(email: str, **fields: object) -> Contact:
    domain = email.split("@")[1]
    return Contact(workspace="default", email=email, email_domain=domain, domain=domain, **fields)  # type: ignore[arg-type]


def team(n: int, domains: int) -> list[Contact]:
    return [contact(f"p{i}@d{i % domains}.com") for i in range(n)]


def test_company_data_is_asked_once_per_domain_and_people_in_batches() -> None:
    registry = ScriptedProvider(
        "registry",
        companies={f"d{i}.com": {"industry": "software", "employee_range": "11-50"} for i in range(7)},
        company_fields={"industry": 0.8, "employee_range": 0.8},
        batch_size=3,
    )
    people = ScriptedProvider(
        "people",
        people={f"p{i}@d{i % 7}.com": {"title": "CTO"} for i in range(25)},
        person_fields={"title": 0.8},
        batch_size=10,
    )
    result = Waterfall([registry, people]).enrich(team(25, 7))
    assert sorted(d for call in registry.company_calls for d in call) == [f"d{i}.com" for i in range(7)]
    assert sorted(len(c) for c in registry.company_calls) == [1, 3, 3]  # calls run concurrently
    assert sorted(len(c) for c in people.person_calls) == [5, 10, 10]
    assert result.provider_calls == {"registry": 3, "people": 3}
    p3 = result.contacts["p3@d3.com"]
    assert p3.fields["industry"].value == "software" and p3.fields["title"].value == "CTO"
    assert p3.sources_asked == ["registry", "people"]


def test_a_satisfied_field_is_not_asked_again_and_a_weak_one_is() -> None:
    strong = ScriptedProvider("strong", people={"a@x.com": {"title": "CTO"}}, person_fields={"title": 0.9})
    weak = ScriptedProvider("weak", people={"b@x.com": {"title": "CEO"}}, person_fields={"title": 0.5})
    third = ScriptedProvider(
        "third", people={"b@x.com": {"title": "CEO"}, "a@x.com": {"title": "CTO"}}, person_fields={"title": 0.6}
    )
    contacts = [contact("a@x.com"), contact("b@x.com")]
    result = Waterfall([strong, weak, third], threshold=0.7).enrich(contacts, include_company=False)
    assert strong.person_calls == [["a@x.com", "b@x.com"]]
    assert weak.person_calls == [["b@x.com"]]  # a was satisfied by strong (0.9 >= 0.7)
    assert third.person_calls == [["b@x.com"]]  # b's 0.5 was not enough
    title = result.contacts["b@x.com"].fields["title"]
    assert title.value == "CEO" and title.confidence == pytest.approx(0.8)  # 1 - 0.5*0.4


def test_imported_values_count_as_a_source() -> None:
    provider = ScriptedProvider("p", people={"a@x.com": {"title": "VP Sales"}}, person_fields={"title": 0.6})
    result = Waterfall([provider], threshold=0.95).enrich(
        [contact("a@x.com", title="Head of Sales", first_name="Ann")], include_company=False
    )
    fields = result.contacts["a@x.com"].fields
    assert fields["first_name"].provider == "import" and fields["first_name"].confidence == 0.7
    assert fields["title"].value == "Head of Sales" and fields["title"].conflicts[0].provider == "p"


def test_a_failing_provider_leaves_a_gap_and_the_next_one_answers() -> None:
    down = ScriptedProvider(
        "down", person_fields={"title": 0.9}, error=ProviderError("down", "server_error", "HTTP 503", status=503)
    )
    up = ScriptedProvider("up", people={"a@x.com": {"title": "CTO"}}, person_fields={"title": 0.8})
    result = Waterfall([down, up]).enrich([contact("a@x.com")], include_company=False)
    outcome = result.contacts["a@x.com"]
    assert outcome.fields["title"].value == "CTO" and not outcome.failed
    assert [(g.provider, g.reason) for g in outcome.gaps] == [("down", "server_error")]


def test_every_provider_failing_fails_the_contact_but_a_miss_does_not() -> None:
    down = ScriptedProvider("down", person_fields={"title": 0.9}, error=ProviderError("down", "timeout", "slow"))
    result = Waterfall([down]).enrich([contact("a@x.com")], include_company=False)
    assert result.contacts["a@x.com"].failed
    nothing = ScriptedProvider("nothing", person_fields={"title": 0.9})
    result = Waterfall([nothing]).enrich([contact("a@x.com")], include_company=False)
    assert not result.contacts["a@x.com"].failed and result.contacts["a@x.com"].answered


def test_cached_answers_and_misses_are_not_asked_again() -> None:
    cache = MemoryCache()
    provider = ScriptedProvider(
        "p",
        people={"a@x.com": {"title": "CTO"}},
        companies={"x.com": {"industry": "software"}},
        person_fields={"title": 0.8},
        company_fields={"industry": 0.8},
    )
    contacts = [contact("a@x.com"), contact("b@x.com")]
    first = Waterfall([provider], cache=cache).enrich(contacts)  # type: ignore[arg-type]
    assert first.provider_calls == {"p": 2}
    later = datetime(2027, 1, 1, tzinfo=UTC)
    second = Waterfall([provider], cache=cache, clock=lambda: later).enrich(contacts)  # type: ignore[arg-type]
    assert second.provider_calls == {}
    assert second.cache_hits == {"p": 3}  # two people (one a miss) and one company
    # the same values, with the time the provider gave them, not the time they were read from the cache
    assert second.contacts["a@x.com"].fields == first.contacts["a@x.com"].fields
    assert second.contacts["a@x.com"].fields["title"].fetched_at < later
    third = Waterfall([provider], cache=cache).enrich(contacts, use_cache=False)  # type: ignore[arg-type]
    assert third.provider_calls == {"p": 2}


def test_no_time_left_means_a_budget_gap_not_a_call() -> None:
    provider = ScriptedProvider("p", person_fields={"title": 0.8})
    result = Waterfall([provider], budget=Budget(lambda: 0.5, margin=0)).enrich(
        [contact("a@x.com")], include_company=False
    )
    assert provider.person_calls == []
    assert [(g.provider, g.reason) for g in result.contacts["a@x.com"].gaps] == [("p", "budget")]


def test_company_headquarters_do_not_overwrite_the_persons_country() -> None:
    provider = ScriptedProvider(
        "p", companies={"x.com": {"country": "Germany", "city": "Berlin"}}, company_fields={"country": 0.9, "city": 0.9}
    )
    result = Waterfall([provider]).enrich([contact("a@x.com", country="France")])
    fields = result.contacts["a@x.com"].fields
    assert fields["country"].value == "France" and fields["company_country"].value == "Germany"
    assert fields["company_city"].value == "Berlin"


class SlowAsync(AsyncProvider):
    info = ProviderInfo(
        name="slow",
        person_fields={"phone": 0.8},
        batch_size=2,
        rate_limit=RateLimit(100, 1),
        asynchronous=True,
        needs_key=False,
    )
    poll_interval_seconds = 1.0

    def __init__(self, ready_after: int) -> None:
        self.ready_after = ready_after
        self.polls = 0
        self.submitted: list[list[str]] = []

    def submit(self, queries: Sequence[PersonQuery]) -> str:
        self.submitted.append([q.email for q in queries])
        return f"job{len(self.submitted)}"

    def poll(self, request_id: str, queries: Sequence[PersonQuery]) -> list[Answer] | None:
        self.polls += 1
        if self.polls < self.ready_after:
            return None
        return [Answer(Kind.PERSON, q.email, True, {"phone": "+33 1 23 45 67 89"}) for q in queries]


def test_async_provider_finishes_within_the_budget() -> None:
    slow = SlowAsync(ready_after=2)
    slept: list[float] = []
    result = Waterfall([slow], sleep=slept.append).enrich([contact("a@x.com")], include_company=False)
    assert result.pending == [] and slept == [1.0, 1.0]
    assert result.contacts["a@x.com"].fields["phone"].value == "+33 1 23 45 67 89"


def test_async_provider_still_working_is_handed_back_as_pending() -> None:
    slow = SlowAsync(ready_after=99)
    clock = {"t": 0.0}
    budget = Budget(lambda: 3.5 - clock["t"], margin=0)  # 3.5 s left: time for three polls of 1 s

    def sleep(seconds: float) -> None:
        clock["t"] += seconds

    result = Waterfall([slow], budget=budget, sleep=sleep).enrich(
        [contact("a@x.com"), contact("b@x.com"), contact("c@x.com")], include_company=False
    )
    assert slow.submitted == [["a@x.com", "b@x.com"], ["c@x.com"]]
    assert [(p.provider, p.provider_request_id, p.emails) for p in result.pending] == [
        ("slow", "job1", ["a@x.com", "b@x.com"]),
        ("slow", "job2", ["c@x.com"]),
    ]
    assert result.contacts["c@x.com"].pending == ["slow"] and not result.contacts["c@x.com"].failed
    assert slow.polls == 6  # 3 rounds x 2 batches, then the budget ran out
