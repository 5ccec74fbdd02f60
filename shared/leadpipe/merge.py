"""Merging imported rows into contacts: first non-empty value wins, tags are united, source history is kept.

Each applied row leaves a ``SourceRef`` with its job id and row number. Applying the same row again (an SQS
redelivery after a crash) is recognised and returns the outcome recorded the first time, so job counters and
``contacts.imported`` events come out the same however often a chunk is replayed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from leadpipe.csvfile import ContactDraft
from leadpipe.models import PROFILE_FIELDS, Contact, HubSpotRef, PipelineStatus, SourceRef
from leadpipe.normalize import company_domain, email_domain

MAX_SOURCES = 20

Effect = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True, slots=True)
class RowOutcome:
    row: int
    email: str
    effect: Effect
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class ImportOrigin:
    workspace: str
    source: str  # "api", "upload", "s3", ...
    job_id: str | None
    ref: str | None  # file name or S3 key


def _new_contact(draft: ContactDraft, origin: ImportOrigin, now: datetime) -> Contact:
    return Contact(
        workspace=origin.workspace,
        email=draft.email,
        email_domain=email_domain(draft.email),
        domain=company_domain(draft.email, draft.website_domain),
        **draft.fields,
        tags=dict.fromkeys(draft.tags, now),
        custom=dict(draft.custom),
        hubspot=HubSpotRef(contact_id=draft.hubspot_id) if draft.hubspot_id else None,
        status=PipelineStatus.IMPORTED,
        created_at=now,
        updated_at=now,
    )


def _fill(contact: Contact, draft: ContactDraft, now: datetime) -> bool:
    changed = False
    for name, value in draft.fields.items():
        if name in PROFILE_FIELDS and not getattr(contact, name):
            setattr(contact, name, value)
            changed = True
    if contact.domain is None:
        derived = company_domain(contact.email, draft.website_domain)
        if derived:
            contact.domain = derived
            changed = True
    for tag in draft.tags:
        if tag not in contact.tags:
            contact.tags[tag] = now
            changed = True
    for key, value in draft.custom.items():
        if not contact.custom.get(key):
            contact.custom[key] = value
            changed = True
    if draft.hubspot_id and not (contact.hubspot and contact.hubspot.contact_id):
        # where the contact lives in HubSpot: kept, but not new data about the person
        contact.hubspot = (contact.hubspot or HubSpotRef()).model_copy(update={"contact_id": draft.hubspot_id})
    return changed


def _trim_sources(sources: list[SourceRef]) -> list[SourceRef]:
    if len(sources) <= MAX_SOURCES:
        return sources
    return [sources[0], *sources[-(MAX_SOURCES - 1) :]]


def apply_rows(
    before: Contact | None, drafts: list[ContactDraft], origin: ImportOrigin, now: datetime
) -> tuple[Contact, list[RowOutcome]]:
    """Apply rows (all with the same email, in file order) to the stored contact (or none)."""
    contact = before.model_copy(deep=True) if before is not None else None
    outcomes: list[RowOutcome] = []
    touched = False
    data_changed = False
    for draft in drafts:
        if contact is not None and origin.job_id is not None:
            seen = next((s for s in contact.sources if s.job_id == origin.job_id and s.row == draft.row), None)
            if seen is not None:
                outcomes.append(RowOutcome(draft.row, draft.email, seen.effect, replayed=True))
                continue
        effect: Effect
        if contact is None:
            contact = _new_contact(draft, origin, now)
            effect = "created"
        else:
            changed = _fill(contact, draft, now)
            data_changed = data_changed or changed
            effect = "updated" if changed else "unchanged"
        contact.sources.append(
            SourceRef(
                source=origin.source,
                job_id=origin.job_id,
                row=draft.row,
                ref=origin.ref,
                at=now,
                effect=effect,
            )
        )
        touched = True
        outcomes.append(RowOutcome(draft.row, draft.email, effect))
    assert contact is not None  # drafts is never empty
    if touched:
        contact.sources = _trim_sources(contact.sources)
        contact.updated_at = now
    if before is not None and data_changed and before.status not in (PipelineStatus.IMPORTED,):
        # New data for a contact that already went further: it goes round the loop again.
        contact.status = PipelineStatus.IMPORTED
        contact.status_reason = "new data imported"
        contact.failure = None
    return contact, outcomes
