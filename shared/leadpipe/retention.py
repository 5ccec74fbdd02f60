"""The retention purge: enrichment data older than ``RETENTION_DAYS`` is removed, oldest first, every day.

What counts, and how old it is (``contacts.provider_time``, ``contacts.enrichment_since``):

- a provider's value (``contact.enrichment[field]``): its ``fetched_at``, when the provider supplied it. A cache hit
  keeps the provider's time, so re-enriching from the cache does not make old data young again; only a provider's
  new answer (a new lawful enrichment) does;
- a value of the contact's own (provider ``import``) that providers agreed or disagreed with: the time of that
  enrichment;
- the insight (LLM pain points and hooks): its ``generated_at``.

A contact with anything older than the cutoff loses it. Where the contact has its own value for a purged field (its
imported first name, title, company, ...: kept as long as the contact), that value stays as an enrichment without
providers would merge it (provider ``import``, no agreement or conflicts, the imported value's confidence). What
depends on the purged data is recomputed: the quality score
(``merge.quality`` over what is left) and, for an ``enriched`` contact, the below-threshold flag and reason. The
pipeline status and the lifecycle stage stay as they are (they record what happened; a new enrichment brings fresh
data), and so does ``enrichment_meta`` (providers asked, gaps: no provider data).

The enrichment cache: for each purged contact, its providers' cached answers (person: the email; company: the domain)
written before the cutoff are deleted. Every other entry expires by itself within the retention period, because
``CACHE_DAYS`` and ``CACHE_MISS_DAYS`` are at most ``RETENTION_DAYS`` (``Settings``) and readers ignore expired entries
(DynamoDB's TTL deletes them within about two days).

Finding the work without a scan: the sparse ``by_enrichment_age`` index (``gsi5pk = P#{shard}``, ``gsi5sk = {oldest
time}#{ws}#{email}``, keys only), queried per shard for ``gsi5sk < cutoff``, 100 keys a page. Each page is one batch
read and conditional transactional writes (``ContactRepository.upsert``: a contact changed meanwhile is read and
purged again). A purged contact leaves the index or moves past the cutoff, so the work list only shrinks.

A run stops when its time budget is nearly spent and says so (``more``): the next daily run resumes, oldest first
(an operator may invoke the function again at once). A manual invocation can name a cutoff or a number of days, and
a workspace (``PurgeRequest``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from leadpipe.contacts import (
    RETENTION_INDEX,
    RETENTION_SHARDS,
    UNCHANGED,
    ContactRepository,
    Unchanged,
    provider_time,
)
from leadpipe.dynamo import batch_get, batch_write
from leadpipe.enrichment.cache import cache_key
from leadpipe.enrichment.fields import Kind
from leadpipe.enrichment.http import Budget
from leadpipe.enrichment.merge import IMPORT_RELIABILITY, IMPORT_SOURCE, Observation, merge_field, quality
from leadpipe.enrichment.waterfall import IMPORTED_FIELDS
from leadpipe.errors import BadRequest
from leadpipe.models import Contact, FieldValue, PipelineStatus, Workspace, iso, utcnow
from leadpipe.observability import count, logger

PAGE = 100
BELOW_THRESHOLD = "below_threshold"
OWN_FIELDS = {name: attr for attr, name in IMPORTED_FIELDS.items()}  # enrichment field -> the contact's attribute


class PurgeRequest(BaseModel):
    """A manual invocation's event (the daily schedule's event asks for the configured ``RETENTION_DAYS``)."""

    model_config = ConfigDict(extra="forbid")

    retention_days: int | None = Field(None, ge=1, le=3650, description="purge what is older than this many days")
    cutoff: datetime | None = Field(
        None, description="or: purge what was fetched before this time (not later than now)"
    )
    workspace: Workspace | None = Field(None, description="only this workspace's contacts (the cache is shared)")

    @model_validator(mode="after")
    def _one_cutoff(self) -> PurgeRequest:
        if self.retention_days is not None and self.cutoff is not None:
            raise ValueError("give retention_days or cutoff, not both")
        if self.cutoff is not None and self.cutoff.tzinfo is None:
            raise ValueError("cutoff needs a time zone (e.g. 2026-01-31T00:00:00Z)")
        return self


def purge_request(event: object) -> PurgeRequest:
    """The request an invocation's event makes: the schedule's (configured retention), or a manual one."""
    if isinstance(event, Mapping) and event.get("detail-type") == "Scheduled Event":
        return PurgeRequest()
    if not isinstance(event, Mapping):
        raise BadRequest("the retention function's event must be a JSON object", code="invalid_event")
    try:
        return PurgeRequest.model_validate(dict(event))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'event'}: {e['msg']}" for e in exc.errors())
        raise BadRequest(f"invalid retention request: {problems}", code="invalid_event") from exc


@dataclass(slots=True)
class Purged:
    """One contact after the purge, and what went."""

    contact: Contact
    values: int = 0  # fields whose provider data was removed
    own: int = 0  # of those, fields where the contact's own value stays
    insight: bool = False
    providers: set[str] = field(default_factory=set)  # whose cache entries for this contact to check


def own_value(contact: Contact, name: str) -> FieldValue | None:
    """The contact's own value of an enrichment field, as the waterfall merges it when no provider answers (None:
    the contact has none)."""
    attr = OWN_FIELDS.get(name)
    value = getattr(contact, attr) if attr else None
    if value in (None, ""):
        return None
    return merge_field([Observation(name, value, IMPORT_SOURCE, IMPORT_RELIABILITY, contact.created_at, 0)])


def purge_contact(contact: Contact, cutoff: datetime, now: datetime) -> Purged | None:
    """The contact without its enrichment data older than ``cutoff``, or None when it has none."""
    enriched_at = contact.enrichment_meta.enriched_at if contact.enrichment_meta else None
    kept: dict[str, FieldValue] = {}
    purged = Purged(contact)
    for name, value in contact.enrichment.items():
        at = provider_time(value, enriched_at)
        if at is None or at >= cutoff:
            kept[name] = value
            continue
        purged.providers.update([value.provider, *value.agreed_by, *(c.provider for c in value.conflicts)])
        purged.values += 1
        own = own_value(contact, name)
        if own is not None:
            kept[name] = own
            purged.own += 1
    purged.insight = contact.intelligence is not None and contact.intelligence.generated_at < cutoff
    if not (purged.values or purged.insight):
        return None
    after = contact.model_copy(deep=True)
    after.enrichment = kept
    if purged.insight:
        after.intelligence = None
    if after.quality is not None or kept:
        after.quality = quality(kept)
    meta = after.enrichment_meta
    if meta is not None:
        purged.providers.update(meta.sources_asked)
        meta.below_threshold = (after.quality or 0.0) < meta.min_quality
        if after.status is PipelineStatus.ENRICHED:
            if meta.below_threshold:
                after.status_reason = BELOW_THRESHOLD
            elif after.status_reason == BELOW_THRESHOLD:
                after.status_reason = None
    purged.providers.discard(IMPORT_SOURCE)
    after.updated_at = now
    purged.contact = after
    return purged


@dataclass(slots=True)
class RetentionReport:
    cutoff: datetime | None
    workspace: str | None = None
    disabled: bool = False  # RETENTION_DAYS is 0 and the event named no cutoff
    contacts_checked: int = 0  # found in the index before the cutoff
    contacts_purged: int = 0
    values_purged: int = 0  # fields whose provider data was removed
    own_values_kept: int = 0  # of those, fields where the contact's own (imported) value stays
    insights_purged: int = 0
    cache_entries_purged: int = 0
    more: bool = False  # the time budget ran out first: the next run continues

    def as_dict(self) -> dict[str, Any]:
        return {
            "cutoff": iso(self.cutoff) if self.cutoff else None,
            "workspace": self.workspace,
            "disabled": self.disabled,
            "contacts_checked": self.contacts_checked,
            "contacts_purged": self.contacts_purged,
            "values_purged": self.values_purged,
            "own_values_kept": self.own_values_kept,
            "insights_purged": self.insights_purged,
            "cache_entries_purged": self.cache_entries_purged,
            "more": self.more,
        }


class RetentionService:
    def __init__(
        self,
        contacts: ContactRepository,
        *,
        cache_table: str,
        cache_client: Any | None = None,
        clock: Callable[[], datetime] = utcnow,
        page_size: int = PAGE,
    ) -> None:
        self.contacts = contacts
        self.client = contacts.client
        self.table = contacts.table
        self.cache_client = cache_client or contacts.client
        self.cache_table = cache_table
        self.clock = clock
        self.page_size = page_size
        self.calls: Counter[str] = Counter()

    def run(self, event: object, *, retention_days: int, budget: Budget | None = None) -> RetentionReport:
        """One invocation: the schedule's (``retention_days``; 0 = off) or a manual ``PurgeRequest``."""
        request = purge_request(event)
        now = self.clock()
        if request.cutoff is not None:
            if request.cutoff > now:
                raise BadRequest("cutoff is in the future: nothing fetched later can be purged", code="invalid_event")
            cutoff = request.cutoff
        elif request.retention_days is not None:
            cutoff = now - timedelta(days=request.retention_days)
        elif retention_days > 0:
            cutoff = now - timedelta(days=retention_days)
        else:
            logger.info("retention purge is off (RETENTION_DAYS=0)")
            return RetentionReport(cutoff=None, workspace=request.workspace, disabled=True)
        return self.purge(cutoff, workspace=request.workspace, budget=budget or Budget())

    def purge(self, cutoff: datetime, *, workspace: str | None = None, budget: Budget | None = None) -> RetentionReport:
        """Purge every contact's enrichment data older than ``cutoff`` (one workspace's, if given)."""
        budget = budget or Budget()
        report = RetentionReport(cutoff=cutoff, workspace=workspace)
        for keys in self._pages(cutoff, report, budget):
            by_workspace: dict[str, list[str]] = {}
            for ws, email in keys:
                if workspace is None or ws == workspace:
                    by_workspace.setdefault(ws, []).append(email)
            for ws, emails in by_workspace.items():
                report.contacts_checked += len(emails)
                self._purge_page(ws, emails, cutoff, report)
        count("RetentionContactsPurged", report.contacts_purged)
        count("RetentionValuesPurged", report.values_purged)
        count("RetentionInsightsPurged", report.insights_purged)
        count("RetentionCacheEntriesPurged", report.cache_entries_purged)
        logger.info("retention purge finished", extra=report.as_dict())
        return report

    def _pages(self, cutoff: datetime, report: RetentionReport, budget: Budget) -> Iterator[list[tuple[str, str]]]:
        """(workspace, email) of the contacts whose oldest enrichment data is older than ``cutoff``, a page at a
        time, shard after shard; stops (``report.more``) when the budget is spent."""
        for shard in range(RETENTION_SHARDS):
            start: dict[str, Any] | None = None
            while True:
                if budget.left() <= 0:
                    report.more = True
                    return
                request: dict[str, Any] = {
                    "TableName": self.table,
                    "IndexName": RETENTION_INDEX,
                    "KeyConditionExpression": "gsi5pk = :p AND gsi5sk < :c",
                    "ExpressionAttributeValues": {":p": {"S": f"P#{shard}"}, ":c": {"S": iso(cutoff)}},
                    "Limit": self.page_size,
                }
                if start:
                    request["ExclusiveStartKey"] = start
                self.calls["Query"] += 1
                response = self.client.query(**request)
                keys = []
                for item in response.get("Items", []):
                    kind, ws, email = str(item["pk"]["S"]).split("#", 2)
                    if kind == "C":
                        keys.append((ws, email))
                if keys:
                    yield keys
                start = response.get("LastEvaluatedKey")
                if not start:
                    break

    def _purge_page(self, workspace: str, emails: list[str], cutoff: datetime, report: RetentionReport) -> None:
        now = self.clock()
        outcomes: dict[str, Purged] = {}

        def mutate(email: str, contact: Contact | None) -> Contact | Unchanged:
            # may run again for a contact changed meanwhile: the last run's outcome is the one written
            outcomes.pop(email, None)
            purged = purge_contact(contact, cutoff, now) if contact is not None else None
            if purged is None:
                return UNCHANGED
            outcomes[email] = purged
            return purged.contact

        self.contacts.upsert(workspace, emails, mutate)
        for purged in outcomes.values():
            report.contacts_purged += 1
            report.values_purged += purged.values
            report.own_values_kept += purged.own
            report.insights_purged += int(purged.insight)
        report.cache_entries_purged += self._purge_cache(list(outcomes.values()), cutoff)

    def _purge_cache(self, purged: list[Purged], cutoff: datetime) -> int:
        """Delete the purged contacts' providers' cache entries written before ``cutoff``: one BatchGetItem per 100
        candidate keys, then BatchWriteItem deletes."""
        keys: dict[str, None] = {}
        for p in purged:
            for provider in sorted(p.providers):
                keys[cache_key(provider, Kind.PERSON, p.contact.email)] = None
                if p.contact.domain:
                    keys[cache_key(provider, Kind.COMPANY, p.contact.domain)] = None
        if not keys:
            return 0
        found = batch_get(
            self.cache_client,
            self.cache_table,
            [{"pk": {"S": k}} for k in keys],
            consistent=False,
            projection=("pk", "fetched_at"),
            calls=self.calls,
        )
        limit = iso(cutoff)
        old = [item["pk"] for item in found if item.get("fetched_at", {}).get("S", "") < limit]
        batch_write(self.cache_client, self.cache_table, [{"DeleteRequest": {"Key": {"pk": pk}}} for pk in old])
        return len(old)
