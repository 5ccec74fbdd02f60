"""Engagements and the business lifecycle: what moves a contact from ``new`` to ``converted``.

The lifecycle (``models.LifecycleStage``) is separate from the pipeline status. Its rules live here, in pure
functions, and every writer uses them (the enrichment service, engagements, PATCH /contacts/{email}):

=====================  ==========================================================================================
signal                 stage it moves the contact to (never backwards; a ``disqualified`` contact stays so)
=====================  ==========================================================================================
enrichment             ``enriched``, or ``verified`` when the email was verified (``email_status`` = ``valid`` with
                       confidence >= ``VERIFIED_CONFIDENCE``: Hunter's verifier, or agreeing providers)
``email_sent``         no change: it is our action, it says nothing about the person
``email_opened``       ``engaged``
``link_clicked``       ``engaged``
``website_visit``      ``engaged``
``reply_received``     ``engaged`` (a reply also proves the mailbox, but ``engaged`` is already past ``verified``)
``meeting_booked``     ``converted``
PATCH ``lifecycle``    exactly the stage given: a person's decision (``disqualified``, or back to ``new`` to
                       requalify a contact); the only way into or out of ``disqualified``
=====================  ==========================================================================================

Stages are ordered ``new < enriched < verified < engaged < converted``; an automatic signal takes the higher of
the current stage and its own, so signals arriving out of order (a late ``email_opened`` after ``meeting_booked``)
leave the same result.

History: the newest ``MAX_HISTORY`` engagements (by ``at``) are kept on the contact, newest first, and
``engagement_counts`` counts every engagement ever recorded (older ones included), so the item stays bounded
(``MAX_DETAILS_BYTES`` per engagement: at most about 130 KB of a 400 KB DynamoDB item). An engagement sent with an
``id`` that is still in the history is a repeat (a client's retry) and is not counted twice.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, field_validator

from leadpipe.contacts import UNCHANGED, ContactRepository, Unchanged
from leadpipe.errors import BadRequest, NotFound
from leadpipe.ids import new_id
from leadpipe.models import Contact, Engagement, EngagementType, FieldValue, LifecycleStage

MAX_HISTORY = 100
MAX_DETAIL_KEYS = 20
MAX_DETAIL_STRING = 500
MAX_DETAILS_BYTES = 1024  # the details as compact JSON
MAX_DETAIL_INT = 10**15
FUTURE_SKEW = timedelta(minutes=5)  # clocks differ: an engagement "now" on the caller's clock may be ahead of ours
OLDEST = datetime(2000, 1, 1, tzinfo=UTC)
VERIFIED_CONFIDENCE = 0.8

STAGE_ORDER: tuple[LifecycleStage, ...] = (
    LifecycleStage.NEW,
    LifecycleStage.ENRICHED,
    LifecycleStage.VERIFIED,
    LifecycleStage.ENGAGED,
    LifecycleStage.CONVERTED,
)
_RANK = {stage: rank for rank, stage in enumerate(STAGE_ORDER)}

ENGAGEMENT_STAGE: dict[EngagementType, LifecycleStage | None] = {
    EngagementType.EMAIL_SENT: None,
    EngagementType.EMAIL_OPENED: LifecycleStage.ENGAGED,
    EngagementType.LINK_CLICKED: LifecycleStage.ENGAGED,
    EngagementType.WEBSITE_VISIT: LifecycleStage.ENGAGED,
    EngagementType.REPLY_RECEIVED: LifecycleStage.ENGAGED,
    EngagementType.MEETING_BOOKED: LifecycleStage.CONVERTED,
}

# ---------------------------------------------------------------------------------------------------- the rules


def advance(current: LifecycleStage, target: LifecycleStage | None) -> LifecycleStage:
    """The stage after an automatic signal pointing at ``target`` (None: the signal moves nothing)."""
    if target is LifecycleStage.DISQUALIFIED:
        raise ValueError("disqualified is set explicitly (PATCH lifecycle), never reached by a signal")
    if target is None or current is LifecycleStage.DISQUALIFIED:
        return current
    return target if _RANK[target] > _RANK[current] else current


def email_verified(enrichment: Mapping[str, FieldValue]) -> bool:
    """The enrichment says the mailbox exists: ``email_status`` ``valid`` with enough confidence."""
    status = enrichment.get("email_status")
    return status is not None and status.value == "valid" and status.confidence >= VERIFIED_CONFIDENCE


def lifecycle_after_enrichment(current: LifecycleStage, enrichment: Mapping[str, FieldValue]) -> LifecycleStage:
    target = LifecycleStage.VERIFIED if email_verified(enrichment) else LifecycleStage.ENRICHED
    return advance(current, target)


def lifecycle_after_engagement(current: LifecycleStage, kind: EngagementType) -> LifecycleStage:
    return advance(current, ENGAGEMENT_STAGE[kind])


# ---------------------------------------------------------------------------------------------------- requests

_DETAIL_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_ENGAGEMENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")

DetailValue = Annotated[StrictStr, Field(max_length=MAX_DETAIL_STRING)] | StrictBool | int | float


class EngagementRequest(BaseModel):
    """The body of POST /contacts/{email}/engagements."""

    model_config = ConfigDict(extra="forbid")

    type: EngagementType = Field(description="what happened")
    at: datetime | None = Field(
        None, description="when it happened (ISO-8601 with a time zone; default now; at most 5 minutes ahead)"
    )
    id: StrictStr | None = Field(
        None,
        description="your id of this event (e.g. the email tool's event id): a repeat with the same id is "
        "recorded once. Letters, digits and _ . : -, at most 100 characters",
    )
    details: dict[str, DetailValue] = Field(
        default_factory=dict,
        description=f"a small flat map: at most {MAX_DETAIL_KEYS} keys (letters, digits, _ . : -; up to 64), "
        f"strings up to {MAX_DETAIL_STRING} characters, {MAX_DETAILS_BYTES} bytes in all as JSON",
    )

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("give a time zone (e.g. 2026-05-01T09:30:00Z)")
        value = value.astimezone(UTC)
        if value < OLDEST:
            raise ValueError(f"{value.isoformat()} is before {OLDEST.year}")
        return value

    @field_validator("id")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        if value is not None and not _ENGAGEMENT_ID.match(value):
            raise ValueError("use 1 to 100 letters, digits and _ . : -")
        return value

    @field_validator("details")
    @classmethod
    def _details(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > MAX_DETAIL_KEYS:
            raise ValueError(f"{len(value)} keys (at most {MAX_DETAIL_KEYS})")
        for key, item in value.items():
            if not _DETAIL_KEY.match(key):
                raise ValueError(f"key {key[:70]!r} is not valid: use 1 to 64 letters, digits and _ . : -")
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f"{key}: not a finite number")
            if isinstance(item, int) and not isinstance(item, bool) and abs(item) > MAX_DETAIL_INT:
                raise ValueError(f"{key}: integers are limited to +/-{MAX_DETAIL_INT}")
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
        if size > MAX_DETAILS_BYTES:
            raise ValueError(f"{size} bytes as JSON (at most {MAX_DETAILS_BYTES})")
        return value


# ---------------------------------------------------------------------------------------------------- recording


def engagement_of(request: EngagementRequest, now: datetime) -> Engagement:
    """The engagement a request records; refuses a time in the future (beyond the clock skew allowed)."""
    at = request.at or now
    if at > now + FUTURE_SKEW:
        raise BadRequest(
            f"'at' is {at.isoformat()}, in the future (now is {now.isoformat()})",
            code="invalid_engagement",
            details=[{"location": "body.at", "message": "not more than 5 minutes in the future"}],
        )
    return Engagement(
        id=request.id or new_id("eng"),
        type=request.type,
        at=at,
        recorded_at=now,
        details=dict(request.details),
    )


def record(contact: Contact, engagement: Engagement) -> Contact | Unchanged:
    """The contact with ``engagement`` recorded: history (newest ``MAX_HISTORY`` by time), counts, last time, and
    lifecycle. ``UNCHANGED`` when an engagement with the same id is already in the history. Pure."""
    if any(e.id == engagement.id for e in contact.engagements):
        return UNCHANGED
    after = contact.model_copy(deep=True)
    history = [*after.engagements, engagement]
    history.sort(key=lambda e: (e.at, e.recorded_at, e.id), reverse=True)
    after.engagements = history[:MAX_HISTORY]
    after.engagement_counts[engagement.type.value] = after.engagement_counts.get(engagement.type.value, 0) + 1
    if after.last_engaged_at is None or engagement.at > after.last_engaged_at:
        after.last_engaged_at = engagement.at
    after.lifecycle = lifecycle_after_engagement(after.lifecycle, engagement.type)
    after.updated_at = max(after.updated_at, engagement.recorded_at)
    return after


@dataclass(slots=True)
class Recorded:
    engagement: Engagement  # the one recorded, or the stored one with the same id (a repeat)
    contact: Contact
    previous_lifecycle: LifecycleStage
    duplicate: bool


def add_engagement(
    contacts: ContactRepository, workspace: str, email: str, request: EngagementRequest, now: datetime
) -> Recorded:
    """Record an engagement on a stored contact (optimistic read-modify-write; a concurrent change is retried)."""
    engagement = engagement_of(request, now)
    seen: dict[str, Any] = {}

    def mutate(_: str, stored: Contact | None) -> Contact | Unchanged:
        if stored is None:
            return UNCHANGED
        after = record(stored, engagement)
        seen.update(lifecycle=stored.lifecycle, duplicate=isinstance(after, Unchanged))  # the last round counts
        return after

    stored = contacts.upsert(workspace, [email], mutate).get(email)
    if stored is None:
        raise NotFound(f"no contact {email}", code="contact_not_found")
    if seen["duplicate"]:
        earlier = next(e for e in stored.engagements if e.id == engagement.id)
        return Recorded(engagement=earlier, contact=stored, previous_lifecycle=stored.lifecycle, duplicate=True)
    return Recorded(engagement=engagement, contact=stored, previous_lifecycle=seen["lifecycle"], duplicate=False)
