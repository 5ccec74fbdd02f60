"""The waterfall: ask providers in order, per field, until each field is filled with enough confidence.

For one batch of contacts:

1. Company data is asked once per domain in the batch, person data once per email; each provider is asked only for
   the keys that still miss one of the fields it supplies at the required confidence.
2. Before calling a provider, its cached answers are used (misses included); only what is left is sent, in calls of
   the provider's batch size, several calls in flight within its rate limit. Fresh answers go to the cache.
3. A provider that fails (timeout, 5xx, 429 past its retries, bad key, no time left) leaves a gap for the keys it
   was asked about; the waterfall continues with the next provider.
4. Asynchronous providers (submit, then poll) come after the synchronous ones; a batch still pending when the
   invocation's time runs short is handed back as a ``PendingBatch`` for a follow-up message.
5. Every contact's fields are merged from its person answers, its company's answers and its own imported values
   (``merge.py``), and scored.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from leadpipe.enrichment.cache import EnrichmentCache
from leadpipe.enrichment.fields import Kind
from leadpipe.enrichment.http import Budget
from leadpipe.enrichment.merge import IMPORT_RELIABILITY, IMPORT_SOURCE, Observation, merge_all, merge_field, quality
from leadpipe.enrichment.providers.base import (
    Answer,
    AsyncProvider,
    CompanyQuery,
    PersonQuery,
    Provider,
    ProviderError,
)
from leadpipe.models import Contact, FieldValue, ProviderGap, utcnow

# A company answer's country/city are its headquarters', not the person's.
COMPANY_FIELD_NAMES = {"country": "company_country", "city": "company_city"}
# The contact's own (imported) values that take part in the merge, as vocabulary fields.
IMPORTED_FIELDS = {
    "first_name": "first_name",
    "last_name": "last_name",
    "title": "title",
    "company": "company_name",
    "linkedin": "linkedin",
    "phone": "phone",
    "country": "country",
    "city": "city",
}


@dataclass
class PendingBatch:
    provider: str
    provider_request_id: str
    emails: list[str]


@dataclass
class ContactOutcome:
    email: str
    fields: dict[str, FieldValue] = field(default_factory=dict)
    quality: float = 0.0
    sources_asked: list[str] = field(default_factory=list)
    cache_hits: int = 0
    gaps: list[ProviderGap] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    answered: bool = False  # some provider answered (found or not): False with gaps means every one failed

    @property
    def failed(self) -> bool:
        return bool(self.gaps) and not self.answered and not self.pending


@dataclass
class WaterfallResult:
    contacts: dict[str, ContactOutcome]
    pending: list[PendingBatch] = field(default_factory=list)
    provider_calls: Counter[str] = field(default_factory=Counter)  # calls of provider methods, by provider
    cache_hits: Counter[str] = field(default_factory=Counter)
    cache_lookups: Counter[str] = field(default_factory=Counter)  # keys looked up in the cache (hits + misses)


def person_query(contact: Contact) -> PersonQuery:
    return PersonQuery(
        email=contact.email,
        first_name=contact.first_name,
        last_name=contact.last_name,
        company=contact.company,
        domain=contact.domain,
        title=contact.title,
        linkedin=contact.linkedin,
    )


class Waterfall:
    def __init__(
        self,
        providers: Sequence[Provider],
        *,
        cache: EnrichmentCache | None = None,
        threshold: float = 0.7,
        thresholds: Mapping[str, float] | None = None,
        budget: Budget | None = None,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.providers = list(providers)
        self.cache = cache
        self.threshold = threshold
        self.thresholds = dict(thresholds or {})
        self.budget = budget or Budget()
        self.clock = clock
        self.sleep = sleep

    # ---------------------------------------------------------------------------------------------- decisions

    def _satisfied(self, observations: Sequence[Observation]) -> bool:
        if not observations:
            return False
        merged = merge_field(observations)
        return merged is not None and merged.confidence >= self.thresholds.get(observations[0].field, self.threshold)

    def _needs(self, observed: Mapping[str, list[Observation]], fields: Mapping[str, float]) -> bool:
        return any(not self._satisfied(observed.get(name, [])) for name in fields)

    # ---------------------------------------------------------------------------------------------- asking

    def _call(
        self, provider: Provider, kind: Kind, chunk: list[str], queries: Mapping[str, PersonQuery | CompanyQuery]
    ) -> list[Answer] | ProviderError:
        try:
            if kind is Kind.PERSON:
                return provider.people([queries[k] for k in chunk])  # type: ignore[misc]
            return provider.companies([queries[k] for k in chunk])  # type: ignore[misc]
        except ProviderError as exc:
            return exc

    def _ask(
        self,
        provider: Provider,
        rank: int,
        kind: Kind,
        keys: list[str],
        queries: Mapping[str, PersonQuery | CompanyQuery],
        observed: dict[str, dict[str, list[Observation]]],
        trace: dict[str, ContactOutcome],
        result: WaterfallResult,
        use_cache: bool,
    ) -> None:
        name = provider.info.name
        for key in keys:
            trace[key].sources_asked.append(name)
        answers: dict[str, Answer] = {}
        if self.cache is not None and use_cache:
            answers = self.cache.get_many(name, kind, keys)
            result.cache_lookups[name] += len(keys)
            result.cache_hits[name] += len(answers)
            for key in answers:
                trace[key].cache_hits += 1
        missing = [k for k in keys if k not in answers]
        if missing and self.budget.left() < 1.0:
            for key in missing:
                trace[key].gaps.append(ProviderGap(provider=name, reason="budget", message="no time left to ask"))
            missing = []
        size = max(1, provider.info.batch_size)
        chunks = [missing[i : i + size] for i in range(0, len(missing), size)]
        fresh: list[Answer] = []
        if chunks:
            workers = max(1, min(provider.info.concurrency, len(chunks)))
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"ask-{name}") as pool:
                outcomes = list(pool.map(lambda c: self._call(provider, kind, c, queries), chunks))
            result.provider_calls[name] += len(chunks)
            for chunk, outcome in zip(chunks, outcomes, strict=True):
                if isinstance(outcome, ProviderError):
                    for key in chunk:
                        trace[key].gaps.append(
                            ProviderGap(provider=name, reason=outcome.reason, message=outcome.message)
                        )
                    continue
                got = {a.key: a for a in outcome}
                stamp = self.clock()
                for answer in got.values():
                    answer.fetched_at = answer.fetched_at or stamp
                for key in chunk:
                    if key in got:
                        fresh.append(got[key])
                        answers[key] = got[key]
                    else:
                        trace[key].gaps.append(
                            ProviderGap(provider=name, reason="bad_response", message="no answer for this key")
                        )
        if self.cache is not None and fresh:
            self.cache.put_many(name, fresh)
        self._observe(provider, rank, kind, answers, observed, trace)

    def _observe(
        self,
        provider: Provider,
        rank: int,
        kind: Kind,
        answers: Mapping[str, Answer],
        observed: dict[str, dict[str, list[Observation]]],
        trace: dict[str, ContactOutcome],
    ) -> None:
        reliabilities = provider.info.fields(kind)
        now = self.clock()
        for key, answer in answers.items():
            fetched = answer.fetched_at or now
            trace[key].answered = True
            if not answer.found:
                continue
            for name, value in answer.fields.items():
                if name not in reliabilities or value in (None, ""):
                    continue
                observed.setdefault(key, {}).setdefault(name, []).append(
                    Observation(
                        name, value, provider.info.name, answer.weight(name, reliabilities[name]), fetched, rank
                    )
                )

    def _ask_async(
        self,
        provider: AsyncProvider,
        rank: int,
        keys: list[str],
        queries: Mapping[str, PersonQuery],
        observed: dict[str, dict[str, list[Observation]]],
        trace: dict[str, ContactOutcome],
        result: WaterfallResult,
        use_cache: bool,
    ) -> None:
        name = provider.info.name
        for key in keys:
            trace[key].sources_asked.append(name)
        answers: dict[str, Answer] = {}
        if self.cache is not None and use_cache:
            answers = self.cache.get_many(name, Kind.PERSON, keys)
            result.cache_lookups[name] += len(keys)
            result.cache_hits[name] += len(answers)
            for key in answers:
                trace[key].cache_hits += 1
        missing = [k for k in keys if k not in answers]
        size = max(1, provider.info.batch_size)
        submitted: list[tuple[str, list[str]]] = []
        for chunk in (missing[i : i + size] for i in range(0, len(missing), size)):
            result.provider_calls[name] += 1
            try:
                submitted.append((provider.submit([queries[k] for k in chunk]), chunk))
            except ProviderError as exc:
                for key in chunk:
                    trace[key].gaps.append(ProviderGap(provider=name, reason=exc.reason, message=exc.message))
        fresh: list[Answer] = []
        while submitted and self.budget.can_wait(provider.poll_interval_seconds):
            self.sleep(provider.poll_interval_seconds)
            still: list[tuple[str, list[str]]] = []
            for request_id, chunk in submitted:
                result.provider_calls[name] += 1
                try:
                    polled = provider.poll(request_id, [queries[k] for k in chunk])
                except ProviderError as exc:
                    for key in chunk:
                        trace[key].gaps.append(ProviderGap(provider=name, reason=exc.reason, message=exc.message))
                    continue
                if polled is None:
                    still.append((request_id, chunk))
                    continue
                got = {a.key: a for a in polled}
                stamp = self.clock()
                for key in chunk:
                    answer = got.get(key, Answer.miss(Kind.PERSON, key))
                    answer.fetched_at = answer.fetched_at or stamp
                    answers[key] = answer
                    fresh.append(answer)
            submitted = still
        for request_id, chunk in submitted:
            result.pending.append(PendingBatch(name, request_id, chunk))
            for key in chunk:
                trace[key].pending.append(name)
        if self.cache is not None and fresh:
            self.cache.put_many(name, fresh)
        self._observe(provider, rank, Kind.PERSON, answers, observed, trace)

    # ---------------------------------------------------------------------------------------------- the run

    def enrich(
        self, contacts: Sequence[Contact], *, include_company: bool = True, use_cache: bool = True
    ) -> WaterfallResult:
        people = {c.email: c for c in contacts}
        person_queries = {e: person_query(c) for e, c in people.items()}
        company_queries: dict[str, CompanyQuery] = {}
        if include_company:
            for contact in contacts:
                if contact.domain and contact.domain not in company_queries:
                    company_queries[contact.domain] = CompanyQuery(contact.domain, contact.company)

        person_obs: dict[str, dict[str, list[Observation]]] = {e: {} for e in people}
        company_obs: dict[str, dict[str, list[Observation]]] = {d: {} for d in company_queries}
        traces = {e: ContactOutcome(email=e) for e in people}
        company_traces = {d: ContactOutcome(email=d) for d in company_queries}
        imported_rank = len(self.providers)
        for email, contact in people.items():
            for attr, name in IMPORTED_FIELDS.items():
                value = getattr(contact, attr)
                if value:
                    person_obs[email].setdefault(name, []).append(
                        Observation(name, value, IMPORT_SOURCE, IMPORT_RELIABILITY, contact.created_at, imported_rank)
                    )

        result = WaterfallResult(contacts=traces)
        synchronous = [(r, p) for r, p in enumerate(self.providers) if not p.info.asynchronous]
        asynchronous = [(r, p) for r, p in enumerate(self.providers) if p.info.asynchronous]
        for rank, provider in synchronous:
            info = provider.info
            if info.company_fields and company_queries:
                need = [d for d in company_queries if self._needs(company_obs[d], info.company_fields)]
                if need:
                    self._ask(
                        provider,
                        rank,
                        Kind.COMPANY,
                        need,
                        company_queries,
                        company_obs,
                        company_traces,
                        result,
                        use_cache,
                    )
            if info.person_fields:
                need = [e for e in people if self._needs(person_obs[e], info.person_fields)]
                if need:
                    self._ask(provider, rank, Kind.PERSON, need, person_queries, person_obs, traces, result, use_cache)
        for rank, provider in asynchronous:
            if not provider.info.person_fields or not isinstance(provider, AsyncProvider):
                continue
            need = [e for e in people if self._needs(person_obs[e], provider.info.person_fields)]
            if need:
                self._ask_async(provider, rank, need, person_queries, person_obs, traces, result, use_cache)

        for email, contact in people.items():
            outcome = traces[email]
            observations = [o for group in person_obs[email].values() for o in group]
            if contact.domain in company_obs:
                company = company_traces[contact.domain]
                outcome.answered = outcome.answered or company.answered
                outcome.gaps.extend(company.gaps)
                outcome.cache_hits += company.cache_hits
                outcome.sources_asked = list(dict.fromkeys([*company.sources_asked, *outcome.sources_asked]))
                for group in company_obs[contact.domain].values():
                    observations.extend(
                        Observation(
                            COMPANY_FIELD_NAMES.get(o.field, o.field),
                            o.value,
                            o.provider,
                            o.weight,
                            o.fetched_at,
                            o.rank,
                        )
                        for o in group
                    )
            outcome.fields = merge_all(observations)
            outcome.quality = quality(outcome.fields)
        return result
