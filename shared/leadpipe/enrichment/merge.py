"""Merging providers' answers field by field, and the quality score. The formulas are documented in
docs/enrichment.md; keep the two in step.

Each observation of a field has a weight ``w = reliability(provider, field) x the provider's match confidence``.
Observations whose values are the same (``fields.comparable``) support each other:

    support(value) = 1 - prod(1 - w_i)                 over the observations of that value
    winner         = the value with the highest support (ties: the provider asked first)
    confidence     = support(winner) x support(winner) / sum(support(v) for every value)

One source with w = 0.8 gives 0.8; two agreeing sources (0.8, 0.6) give 0.92; two disagreeing ones (0.8 vs 0.6)
give 0.8 x 0.8 / 1.4 = 0.46. Agreement raises confidence, disagreement lowers it, and the winner keeps the others
as ``conflicts``.

Quality = sum over key fields of weight x confidence x value factor (``QUALITY_WEIGHTS``; the email's factor depends
on its status), between 0 and 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leadpipe.enrichment.fields import comparable
from leadpipe.models import Conflict, FieldValue

IMPORT_SOURCE = "import"  # the contact's own imported values take part in the merge as a source
IMPORT_RELIABILITY = 0.7

# Where a key field is missing, a close substitute counts instead (a person's country: their company's).
QUALITY_FALLBACKS: dict[str, str] = {"country": "company_country"}
QUALITY_WEIGHTS: dict[str, float] = {
    "email_status": 0.20,
    "first_name": 0.10,
    "last_name": 0.10,
    "title": 0.15,
    "company_name": 0.15,
    "industry": 0.10,
    "employee_range": 0.10,
    "country": 0.05,
    "linkedin": 0.05,
}
EMAIL_STATUS_FACTOR: dict[str, float] = {
    "valid": 1.0,
    "accept_all": 0.6,
    "webmail": 0.6,
    "unknown": 0.4,
    "risky": 0.4,
    "disposable": 0.0,
    "invalid": 0.0,
}


@dataclass(frozen=True, slots=True)
class Observation:
    field: str
    value: Any
    provider: str
    weight: float
    fetched_at: datetime
    rank: int  # position of the provider in the waterfall (the contact's own data ranks last)


def support(weights: Sequence[float]) -> float:
    missing = 1.0
    for w in weights:
        missing *= 1.0 - max(0.0, min(1.0, w))
    return 1.0 - missing


def merge_field(observations: Sequence[Observation]) -> FieldValue | None:
    """The merged value of one field, or None when nothing was observed."""
    usable = [o for o in observations if o.value not in (None, "") and o.weight > 0]
    if not usable:
        return None
    groups: dict[Any, list[Observation]] = {}
    for obs in usable:
        groups.setdefault(comparable(obs.field, obs.value), []).append(obs)
    scored = [(support([o.weight for o in group]), -min(o.rank for o in group), group) for group in groups.values()]
    scored.sort(key=lambda s: (s[0], s[1]), reverse=True)
    best_support, _, best = scored[0]
    total = sum(s[0] for s in scored)
    lead = max(best, key=lambda o: (o.weight, -o.rank))
    conflicts = []
    for _, _, group in scored[1:]:
        top = max(group, key=lambda o: (o.weight, -o.rank))
        conflicts.append(Conflict(value=top.value, provider=top.provider))
    return FieldValue(
        value=lead.value,
        provider=lead.provider,
        confidence=round(best_support * best_support / total, 4),
        fetched_at=lead.fetched_at,
        agreed_by=sorted({o.provider for o in best} - {lead.provider}),
        conflicts=conflicts,
    )


def merge_all(observations: Sequence[Observation]) -> dict[str, FieldValue]:
    by_field: dict[str, list[Observation]] = {}
    for obs in observations:
        by_field.setdefault(obs.field, []).append(obs)
    merged = {}
    for name, group in by_field.items():
        value = merge_field(group)
        if value is not None:
            merged[name] = value
    return merged


def quality(fields: Mapping[str, FieldValue]) -> float:
    """0..1: weighted completeness of the key fields, each counted at its confidence."""
    score = 0.0
    for name, weight in QUALITY_WEIGHTS.items():
        value = fields.get(name) or fields.get(QUALITY_FALLBACKS.get(name, ""))
        if value is None:
            continue
        factor = EMAIL_STATUS_FACTOR.get(str(value.value), 0.4) if name == "email_status" else 1.0
        score += weight * value.confidence * factor
    return round(min(1.0, score), 4)
