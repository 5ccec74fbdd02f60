"""The ideal-customer profile learned from won versus lost deals, and a contact's fit to it. Pure logic, no I/O.

The method is documented in docs/icp.md; keep the two in step. In short, over N closed deals of which W were won:

    p0       = (W + 1) / (N + 2)                              overall win rate, Laplace-smoothed
    p(v)     = (won(v) + prior x p0) / (n(v) + prior)         a value's win rate, smoothed toward p0
    s(v)     = min(1, n(v) / min_support)                     support weight (n(v): deals with the value)
    lift(v)  = exp(s(v) x ln(p(v) / p0))                      low-support values shrunk toward 1
    fit      = 1 / (1 + exp(-sum of ln lift(v_d)))             over the contact's known dimensions d

so a contact's fit odds are the product of its values' lifts: 0.5 is an average deal, unknown values count 1.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from leadpipe.enrichment.fields import range_of

Dimension = Literal["industry", "company_size", "country", "role"]
DIMENSIONS: tuple[Dimension, ...] = ("industry", "company_size", "country", "role")
LABELS: dict[str, str] = {"industry": "industry", "company_size": "size", "country": "country", "role": "role"}
NO_ROLE = "other"  # buying_role's answer when a contact has no buying role (or nothing is known): not a signal
FORMAT_VERSION = 1
NO_DEALS = "no closed deals yet"


@dataclass(frozen=True, slots=True)
class DealRecord:
    """One closed deal, as the profile sees it: outcome, account, and the buying roles of its contacts."""

    deal_id: str
    outcome: Literal["won", "lost"]
    amount: float | None = None
    industry: str | None = None
    company_size: str | None = None
    country: str | None = None
    roles: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)  # for display; the profile uses the roles


@dataclass(frozen=True, slots=True)
class ValueStats:
    """One value of one dimension: its closed deals, smoothed win rate and lift."""

    dimension: str
    value: str
    won: int
    lost: int
    win_rate: float  # p(v), smoothed toward the overall win rate
    lift: float  # p(v) / p0, shrunk toward 1 under min_support
    low_support: bool

    @property
    def support(self) -> int:
        """Closed deals with this value."""
        return self.won + self.lost

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "won": self.won,
            "lost": self.lost,
            "support": self.support,
            "win_rate": self.win_rate,
            "lift": self.lift,
            "low_support": self.low_support,
        }


@dataclass(frozen=True, slots=True)
class FitScore:
    score: float  # 0..1; 0.5 is an average deal
    explanation: str
    contributions: dict[str, float]  # dimension -> ln(lift) it added to the log-odds (0 when unknown)


def normalise(dimension: str, value: object) -> tuple[str, str] | None:
    """``(key, label)`` of a dimension's value: keys compare case- and space-insensitively, employee ranges are
    normalised ("51 - 200" -> "51-200"), industries and roles are lower case. None for an unknown value (and for the
    role "other", which is not a buying role)."""
    if value is None:
        return None
    text = " ".join(str(value).split())
    if not text:
        return None
    if dimension == "company_size":
        text = range_of(text) or text
    elif dimension in ("industry", "role"):
        text = text.lower()
    if dimension == "role" and text == NO_ROLE:
        return None
    return text.casefold(), text


def _deal_values(deal: DealRecord, dimension: str) -> dict[str, str]:
    """key -> label of the deal's values in one dimension (a role counts once per deal)."""
    raw: Sequence[object] = deal.roles if dimension == "role" else [getattr(deal, dimension)]
    out: dict[str, str] = {}
    for value in raw:
        normal = normalise(dimension, value)
        if normal is not None:
            out.setdefault(*normal)
    return out


def _check_dimension(dimension: str) -> None:
    if dimension not in DIMENSIONS:
        raise ValueError(f"unknown dimension {dimension!r} (known: {', '.join(DIMENSIONS)})")


@dataclass(frozen=True, slots=True)
class IcpProfile:
    deals: int
    won: int
    min_support: int
    prior: float
    win_rate: float  # p0, Laplace-smoothed; 0.5 with no deals
    values: dict[str, dict[str, ValueStats]]  # dimension -> value key -> stats

    @property
    def lost(self) -> int:
        return self.deals - self.won

    # ------------------------------------------------------------------------------------------ learning

    @classmethod
    def compute(cls, deals: Sequence[DealRecord], *, min_support: int = 3, prior: float = 1.0) -> IcpProfile:
        """The profile of these closed deals. ``prior`` is the smoothing's weight in pseudo-deals at the overall win
        rate; values seen in fewer than ``min_support`` deals are kept, flagged ``low_support`` and shrunk."""
        if min_support < 1:
            raise ValueError("min_support must be at least 1")
        if not prior > 0:
            raise ValueError("prior must be positive")
        for deal in deals:
            if deal.outcome not in ("won", "lost"):
                raise ValueError(f"deal {deal.deal_id}: outcome must be 'won' or 'lost', not {deal.outcome!r}")
        total = len(deals)
        won = sum(deal.outcome == "won" for deal in deals)
        p0 = (won + 1) / (total + 2)

        values: dict[str, dict[str, ValueStats]] = {}
        for dimension in DIMENSIONS:
            counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
            labels: dict[str, Counter[str]] = defaultdict(Counter)
            for deal in deals:
                for key, label in _deal_values(deal, dimension).items():
                    counts[key][0 if deal.outcome == "won" else 1] += 1
                    labels[key][label] += 1
            stats: dict[str, ValueStats] = {}
            for key, (value_won, value_lost) in counts.items():
                support = value_won + value_lost
                rate = (value_won + prior * p0) / (support + prior)
                weight = min(1.0, support / min_support)
                # The most frequent spelling names the value (ties: the first in sort order), whatever the deals' order.
                label = min(labels[key].items(), key=lambda item: (-item[1], item[0]))[0]
                stats[key] = ValueStats(
                    dimension=dimension,
                    value=label,
                    won=value_won,
                    lost=value_lost,
                    win_rate=rate,
                    lift=math.exp(weight * math.log(rate / p0)),
                    low_support=support < min_support,
                )
            values[dimension] = stats
        return cls(deals=total, won=won, min_support=min_support, prior=prior, win_rate=p0, values=values)

    # ------------------------------------------------------------------------------------------ reading

    def stats(self, dimension: str, value: object) -> ValueStats | None:
        """A value's statistics (None when unknown or never seen in a closed deal)."""
        _check_dimension(dimension)
        normal = normalise(dimension, value)
        return self.values.get(dimension, {}).get(normal[0]) if normal else None

    def top(self, dimension: str, n: int = 5) -> list[ValueStats]:
        """The dimension's ``n`` best values: by lift, then support, then name."""
        _check_dimension(dimension)
        ranked = sorted(self.values.get(dimension, {}).values(), key=lambda s: (-s.lift, -s.support, s.value))
        return ranked[: max(n, 0)]

    def fit(
        self,
        industry: str | None = None,
        company_size: str | None = None,
        country: str | None = None,
        role: str | None = None,
    ) -> FitScore:
        """How closely an account and buying role match the won deals: ``1 / (1 + exp(-sum ln lift))`` over the
        known dimensions; values that are unknown, never seen in a closed deal, or the role "other" add nothing."""
        if self.deals == 0:
            return FitScore(0.5, NO_DEALS, dict.fromkeys(DIMENSIONS, 0.0))
        known: list[str] = []
        unknown: list[str] = []
        contributions: dict[str, float] = {}
        for dimension, value in zip(DIMENSIONS, (industry, company_size, country, role), strict=True):
            label = LABELS[dimension]
            normal = normalise(dimension, value)
            stats = self.values.get(dimension, {}).get(normal[0]) if normal else None
            if stats is None:
                contributions[dimension] = 0.0
                if normal is not None:
                    unknown.append(f"{label} {normal[1]} not in closed deals")
                elif dimension == "role" and value is not None and str(value).strip():
                    unknown.append("no buying role")
                else:
                    unknown.append(f"{label} unknown")
                continue
            contributions[dimension] = math.log(stats.lift)
            note = ", low support" if stats.low_support else ""
            known.append(f"{label} {stats.value} (lift {stats.lift:.1f}{note})")
        log_odds = sum(contributions.values())
        score = 1.0 / (1.0 + math.exp(-log_odds))
        explanation = ", ".join(known)
        if unknown:
            explanation = f"{explanation}; {', '.join(unknown)}" if known else ", ".join(unknown)
        return FitScore(score, explanation, contributions)

    # ------------------------------------------------------------------------------------------ storage

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (values of each dimension in ``top`` order)."""
        return {
            "version": FORMAT_VERSION,
            "deals": self.deals,
            "won": self.won,
            "lost": self.lost,
            "win_rate": self.win_rate,
            "min_support": self.min_support,
            "prior": self.prior,
            "dimensions": {
                dimension: [s.to_dict() for s in self.top(dimension, len(self.values.get(dimension, {})))]
                for dimension in DIMENSIONS
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IcpProfile:
        """Back from ``to_dict`` (also as read back from DynamoDB: numbers may come back as int, empty parts may be
        missing)."""
        version = int(data.get("version", FORMAT_VERSION))
        if version != FORMAT_VERSION:
            raise ValueError(f"unsupported ICP profile version {version}")
        dimensions: Mapping[str, Any] = data.get("dimensions") or {}
        values: dict[str, dict[str, ValueStats]] = {}
        for dimension in DIMENSIONS:
            stats: dict[str, ValueStats] = {}
            for item in dimensions.get(dimension) or []:
                normal = normalise(dimension, item["value"])
                if normal is None:
                    continue
                stats[normal[0]] = ValueStats(
                    dimension=dimension,
                    value=str(item["value"]),
                    won=int(item.get("won", 0)),
                    lost=int(item.get("lost", 0)),
                    win_rate=float(item["win_rate"]),
                    lift=float(item["lift"]),
                    low_support=bool(item.get("low_support", False)),
                )
            values[dimension] = stats
        return cls(
            deals=int(data.get("deals", 0)),
            won=int(data.get("won", 0)),
            min_support=int(data.get("min_support", 3)),
            prior=float(data.get("prior", 1.0)),
            win_rate=float(data.get("win_rate", 0.5)),
            values=values,
        )
