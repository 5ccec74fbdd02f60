"""In-memory providers for tests of the waterfall and the enrich service (no network)."""

from __future__ import annotations

from collections.abc import Sequence

from leadpipe.enrichment.fields import Kind
from leadpipe.enrichment.providers.base import (
    Answer,
    CompanyQuery,
    PersonQuery,
    Provider,
    ProviderError,
    ProviderInfo,
    RateLimit,
)


class ScriptedProvider(Provider):
    """Answers from dictionaries; records every call; can be told to fail."""

    def __init__(
        self,
        name: str,
        *,
        people: dict[str, dict[str, object]] | None = None,
        companies: dict[str, dict[str, object]] | None = None,
        person_fields: dict[str, float] | None = None,
        company_fields: dict[str, float] | None = None,
        batch_size: int = 10,
        error: ProviderError | None = None,
        confidence: float = 1.0,
    ) -> None:
        self.info = ProviderInfo(
            name=name,
            person_fields=person_fields or {},
            company_fields=company_fields or {},
            batch_size=batch_size,
            rate_limit=RateLimit(1000, 1),
            needs_key=False,
        )
        self.people_data = people or {}
        self.company_data = companies or {}
        self.error = error
        self.confidence = confidence
        self.person_calls: list[list[str]] = []
        self.company_calls: list[list[str]] = []

    def people(self, queries: Sequence[PersonQuery]) -> list[Answer]:
        self.person_calls.append([q.email for q in queries])
        if self.error:
            raise self.error
        return [
            Answer(Kind.PERSON, q.email, True, dict(self.people_data[q.email]), self.confidence)
            if q.email in self.people_data
            else Answer.miss(Kind.PERSON, q.email)
            for q in queries
        ]

    def companies(self, queries: Sequence[CompanyQuery]) -> list[Answer]:
        self.company_calls.append([q.domain for q in queries])
        if self.error:
            raise self.error
        return [
            Answer(Kind.COMPANY, q.domain, True, dict(self.company_data[q.domain]), self.confidence)
            if q.domain in self.company_data
            else Answer.miss(Kind.COMPANY, q.domain)
            for q in queries
        ]

    @property
    def asked_people(self) -> list[str]:
        return [e for call in self.person_calls for e in call]
