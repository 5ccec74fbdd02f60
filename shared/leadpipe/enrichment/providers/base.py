"""The provider interface: batch in, normalised answers out.

A provider declares what it can answer (fields with a reliability per field, for people and/or companies), how
many queries one call takes, its rate limit, and whether it is asynchronous (submit, then poll). It answers every
query it is given: found with fields, or not found (a miss, cached like any answer). A failure of the provider
itself (timeout, 5xx, 429 past its retries, bad key) raises ``ProviderError``; the waterfall records the gap and
goes on with the next provider.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadpipe.enrichment.fields import Kind


@dataclass(frozen=True, slots=True)
class RateLimit:
    calls: int
    per_seconds: float

    @property
    def per_second(self) -> float:
        return self.calls / self.per_seconds


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    name: str
    person_fields: Mapping[str, float] = field(default_factory=dict)  # field -> reliability 0..1
    company_fields: Mapping[str, float] = field(default_factory=dict)
    batch_size: int = 1  # queries per call
    rate_limit: RateLimit = RateLimit(60, 60.0)
    asynchronous: bool = False  # submit, then poll
    needs_key: bool = True
    key_env: str | None = None  # environment variable holding the key when no workspace key is stored
    concurrency: int = 4  # calls in flight at once from one container (the rate limit still applies)

    def fields(self, kind: Kind) -> Mapping[str, float]:
        return self.person_fields if kind is Kind.PERSON else self.company_fields


@dataclass(frozen=True, slots=True)
class PersonQuery:
    email: str
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    domain: str | None = None
    title: str | None = None
    linkedin: str | None = None


@dataclass(frozen=True, slots=True)
class CompanyQuery:
    domain: str
    name: str | None = None


@dataclass(slots=True)
class Answer:
    """One provider's answer about one email or domain, in the enrichment vocabulary (``fields.py``)."""

    kind: Kind
    key: str  # the email or domain asked about
    found: bool
    fields: dict[str, Any] = field(default_factory=dict)
    confidence: float = 1.0  # the provider's own match confidence, multiplied into every field's reliability
    field_confidence: dict[str, float] = field(default_factory=dict)  # optional per-field override of the above
    fetched_at: datetime | None = None  # when the provider gave this answer (set by the waterfall, kept by the cache)

    def weight(self, name: str, reliability: float) -> float:
        return max(0.0, min(1.0, reliability * self.field_confidence.get(name, self.confidence)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "key": self.key,
            "found": self.found,
            "fields": self.fields,
            "confidence": self.confidence,
            "field_confidence": self.field_confidence,
            "fetched_at": self.fetched_at.isoformat() if self.fetched_at else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Answer:
        return cls(
            kind=Kind(data["kind"]),
            key=str(data["key"]),
            found=bool(data["found"]),
            fields=dict(data.get("fields") or {}),
            confidence=float(data.get("confidence", 1.0)),
            field_confidence={k: float(v) for k, v in (data.get("field_confidence") or {}).items()},
            fetched_at=datetime.fromisoformat(data["fetched_at"]) if data.get("fetched_at") else None,
        )

    @classmethod
    def miss(cls, kind: Kind, key: str) -> Answer:
        return cls(kind=kind, key=key, found=False)


class ProviderError(Exception):
    """The provider could not answer (not a miss): the waterfall records the gap and moves on."""

    def __init__(
        self,
        provider: str,
        reason: str,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = True,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{provider}: {reason}: {message}")
        self.provider = provider
        self.reason = reason  # timeout | rate_limited | server_error | auth | quota | bad_request | bad_response
        self.message = message
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


class Provider(ABC):
    """A synchronous provider. Calls receive at most ``info.batch_size`` queries and return one answer each."""

    info: ProviderInfo

    def people(self, queries: Sequence[PersonQuery]) -> list[Answer]:
        raise NotImplementedError(f"{self.info.name} has no person enrichment")

    def companies(self, queries: Sequence[CompanyQuery]) -> list[Answer]:
        raise NotImplementedError(f"{self.info.name} has no company enrichment")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class AsyncProvider(Provider):
    """A provider that takes a batch, works on it, and is polled for the result (e.g. Dropcontact)."""

    @abstractmethod
    def submit(self, queries: Sequence[PersonQuery]) -> str:
        """Start a batch; returns the provider's request id."""

    @abstractmethod
    def poll(self, request_id: str, queries: Sequence[PersonQuery]) -> list[Answer] | None:
        """The answers for a submitted batch (one per query), or None while the provider is still working."""

    poll_interval_seconds: float = 30.0
