"""The enrich service: what the enrich function does with each EnrichQueue message.

Messages are ``contacts.imported`` events (delivered by the AutoEnrich rule; dropped for a workspace whose
auto-enrich switch is off, its own or else the deployment's), ``enrich.request`` (POST /enrich and retries: never
dropped) or ``enrich.poll`` (collect an asynchronous provider's batch). The workspace's ``min_quality`` and field
threshold apply when it set them, else the deployment's. For each request:

- contacts already enriched by this request are left alone (SQS and EventBridge deliver at least once);
- suppressed and do-not-enrich contacts are marked ``skipped`` and never reach a provider;
- the others move ``imported -> enriching``, go through the waterfall, and end ``enriched`` (with every field's
  provenance, the quality score, the sources asked and the gaps), or ``failed`` with the error, the attempt count
  and ``next_retry_at`` when every provider failed for them; a schedule re-queues failed contacts when due;
- ``contacts.enriched`` is published for the contacts whose quality reaches ``min_quality``; the others stay
  ``enriched`` with the reason ``below_threshold``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from leadpipe.contacts import UNCHANGED, ContactRepository, Unchanged
from leadpipe.engagements import lifecycle_after_enrichment
from leadpipe.enrichment.cache import EnrichmentCache
from leadpipe.enrichment.gaps import MAX_GAP_RETRIES, GapRetries, retryable
from leadpipe.enrichment.http import Budget
from leadpipe.enrichment.keys import ProviderKeys
from leadpipe.enrichment.providers.base import AsyncProvider, PersonQuery, ProviderError
from leadpipe.enrichment.providers.http_provider import HttpProvider
from leadpipe.enrichment.registry import ProviderSet, build_providers
from leadpipe.enrichment.waterfall import ContactOutcome, Waterfall, person_query
from leadpipe.errors import BadRequest
from leadpipe.events import EventPublisher
from leadpipe.models import (
    DETAIL_CONTACTS_ENRICHED,
    DETAIL_CONTACTS_IMPORTED,
    EVENT_SOURCE,
    Contact,
    ContactsEnriched,
    ContactsImported,
    EnrichmentMeta,
    EnrichMessage,
    EnrichOptions,
    EnrichPollMessage,
    Failure,
    Insight,
    PipelineStatus,
    ProviderGap,
    utcnow,
)
from leadpipe.observability import count, logger
from leadpipe.queueing import due_for_retry, send_batch
from leadpipe.settings import Settings
from leadpipe.stats import RunRecorder, StatsRepository
from leadpipe.suppression import SuppressionList
from leadpipe.workspaces import EffectiveSettings, WorkspaceRepository

MAX_RETRIES = 5
MESSAGE_EMAILS = 100


@dataclass
class EnrichReport:
    request_id: str
    enriched: list[str] = field(default_factory=list)
    published: list[str] = field(default_factory=list)
    below_threshold: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    already_done: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    contacts: int = 0  # in the request
    cache_hits: int = 0
    cache_lookups: int = 0
    provider_calls: int = 0
    gaps_retried: int = 0  # contacts listed for another enrichment after a provider failed for them

    def counts(self) -> dict[str, int]:
        """What the run's events and the workspace's stats record (``leadpipe.stats``)."""
        return {
            "contacts": self.contacts,
            "enriched": len(self.enriched),
            "published": len(self.published),
            "below_threshold": len(self.below_threshold),
            "failed": len(self.failed),
            "skipped": len(self.skipped),
            "already_done": len(self.already_done),
            "missing": len(self.missing),
            "pending": len(self.pending),
            "cache_hits": self.cache_hits,
            "cache_lookups": self.cache_lookups,
            "provider_calls": self.provider_calls,
        }


@dataclass
class QueuedRequest:
    request_id: str
    queued: int
    messages: int


def queue_enrichment(
    sqs: Any,
    queue_url: str,
    workspace: str,
    emails: Sequence[str],
    options: EnrichOptions,
    request_id: str | None = None,
) -> QueuedRequest:
    """Put an enrichment request for these contacts on EnrichQueue, 100 contacts per message."""
    request_id = request_id or f"req-{uuid.uuid4().hex[:16]}"
    unique = list(dict.fromkeys(emails))
    bodies = [
        EnrichMessage(
            workspace=workspace, request_id=request_id, emails=unique[i : i + MESSAGE_EMAILS], options=options
        ).model_dump_json()
        for i in range(0, len(unique), MESSAGE_EMAILS)
    ]
    return QueuedRequest(request_id=request_id, queued=len(unique), messages=send_batch(sqs, queue_url, bodies))


def _done_by(contact: Contact, request_id: str) -> bool:
    """This enrichment request already enriched the contact (or skipped it), and it may have moved on since."""
    meta = contact.enrichment_meta
    return (
        meta is not None
        and meta.request_id == request_id
        and contact.status
        in (PipelineStatus.ENRICHED, PipelineStatus.SKIPPED, PipelineStatus.SYNCING, PipelineStatus.SYNCED)
    )


class EnrichService:
    def __init__(
        self,
        *,
        contacts: ContactRepository,
        cache: EnrichmentCache,
        publisher: EventPublisher,
        sqs: Any,
        settings: Settings,
        keys: ProviderKeys,
        suppression: SuppressionList,
        providers: Callable[[str, Budget], ProviderSet] | None = None,
        intelligence: Callable[[Budget], Any] | None = None,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
        workspaces: WorkspaceRepository | None = None,
        runs: RunRecorder | None = None,
    ) -> None:
        self.workspaces = workspaces  # each workspace's thresholds and switches (else the deployment's)
        self.contacts = contacts
        self.cache = cache
        self.publisher = publisher
        self.sqs = sqs
        self.settings = settings
        self.keys = keys
        self.suppression = suppression
        self.providers = providers or (
            lambda ws, budget: build_providers(settings.provider_order, keys, ws, budget=budget)
        )
        self.intelligence = intelligence
        self.clock = clock
        self.sleep = sleep
        # each run announced on the bus (the activity feed) and added to the workspace's stats (GET /status)
        stats = StatsRepository(contacts.client, settings.state_table) if settings.state_table else None
        self.runs = runs or RunRecorder("enrichment", publisher=publisher, stats=stats, clock=clock)
        # contacts enriched while a provider was down, to enrich again when due
        self.gaps = GapRetries(contacts.client, settings.state_table) if settings.state_table else None

    # ------------------------------------------------------------------------------------------ messages

    def handle_message(self, body: str, *, budget: Budget) -> EnrichReport | None:
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise BadRequest(f"EnrichQueue message is not JSON: {body[:200]!r}", code="bad_message") from exc
        if not isinstance(data, dict):
            raise BadRequest(f"unrecognised EnrichQueue message: {body[:200]!r}", code="bad_message")
        if data.get("detail-type") == DETAIL_CONTACTS_IMPORTED and data.get("source") == EVENT_SOURCE:
            detail = ContactsImported.model_validate(data["detail"])
            if not self.effective(detail.workspace).auto_enrich_on_import:  # the automatic path only
                logger.info("auto-enrich is off for the workspace", extra={"workspace": detail.workspace})
                count("AutomaticEnrichmentsDropped", len(detail.emails))
                return None
            # an import chunk's batch names the request, so the events of a chunk replayed after a crash (or
            # delivered twice) are recognised as done; else the event's own id
            request_id = (
                f"imp-{detail.job_id}-{detail.batch}" if detail.job_id and detail.batch else f"evt-{data['id']}"
            )
            message = EnrichMessage(workspace=detail.workspace, request_id=request_id, emails=detail.emails)
            return self.enrich(message, budget)
        if data.get("type") == "enrich.request":
            return self.enrich(EnrichMessage.model_validate(data), budget)
        if data.get("type") == "enrich.poll":
            return self.collect(EnrichPollMessage.model_validate(data), budget)
        raise BadRequest(f"unrecognised EnrichQueue message: {body[:200]!r}", code="bad_message")

    def effective(self, workspace: str) -> EffectiveSettings:
        """The workspace's thresholds and automation switches, else the deployment's."""
        return EffectiveSettings.of(self.workspaces.get(workspace) if self.workspaces else None, self.settings)

    def _send(self, bodies: Sequence[str], delay: int = 0) -> int:
        return send_batch(self.sqs, self.settings.enrich_queue_url, bodies, delay)

    def queue(
        self, workspace: str, emails: Sequence[str], options: EnrichOptions, request_id: str | None = None
    ) -> QueuedRequest:
        return queue_enrichment(self.sqs, self.settings.enrich_queue_url, workspace, emails, options, request_id)

    # ------------------------------------------------------------------------------------------ enriching

    def enrich(self, message: EnrichMessage, budget: Budget) -> EnrichReport:
        """One run: the message's contacts, announced on the bus and added to the workspace's stats."""
        report = EnrichReport(message.request_id, contacts=len(set(message.emails)))
        with self.runs.run(message.workspace, message.request_id, report):
            self._enrich(message, budget, report)
        return report

    def _enrich(self, message: EnrichMessage, budget: Budget, report: EnrichReport) -> EnrichReport:
        ws, request_id, options = message.workspace, message.request_id, message.options
        now = self.clock()
        effective = self.effective(ws)
        min_quality = options.min_quality if options.min_quality is not None else effective.min_quality
        emails = list(dict.fromkeys(message.emails))
        stored = self.contacts.batch_get(ws, emails)
        report.missing = [e for e in emails if e not in stored]
        suppressed = self.suppression.suppressed(ws, list(stored))
        todo: list[str] = []
        for email, contact in stored.items():
            if _done_by(contact, request_id):
                report.already_done.append(email)
            elif email in suppressed:
                report.skipped[email] = f"suppressed: {suppressed[email]}"
            elif contact.do_not_enrich:
                report.skipped[email] = "do_not_enrich"
            else:
                todo.append(email)
        if report.skipped:
            self.contacts.upsert(
                ws, report.skipped, lambda e, c: self._skip(c, report.skipped[e], request_id, now), known=stored
            )
        if not todo:
            count("ContactsSkipped", len(report.skipped))
            return report

        # Another delivery of this request (a duplicate, or a replayed import chunk's event, running beside this one)
        # may finish a contact first: one done by the time this run takes it, or before this run writes it, is left
        # as that delivery wrote it and counted once, there (``already_done`` here).
        elsewhere: set[str] = set()

        def start(email: str, contact: Contact | None) -> Contact | Unchanged:
            if contact is not None and _done_by(contact, request_id):
                elsewhere.add(email)
                return UNCHANGED
            elsewhere.discard(email)
            return self._start(contact, now)

        marked = self.contacts.upsert(ws, todo, start, known=stored)
        eligible = [
            c
            for e, c in marked.items()
            if c is not None and c.status is PipelineStatus.ENRICHING and e not in elsewhere
        ]
        started = {c.email: c for c in eligible}
        provider_set = self.providers(ws, budget)
        try:
            waterfall = Waterfall(
                provider_set.providers,
                cache=self.cache,
                threshold=effective.field_threshold,
                budget=budget,
                clock=self.clock,
                sleep=self.sleep,
            )
            result = waterfall.enrich(eligible, include_company=options.include_company, use_cache=options.cache)
            insights = self._insights(eligible, result.contacts, budget) if options.include_intelligence else {}
            # HTTP requests actually sent (retries included), per provider; a method call may make several.
            requests = {
                p.info.name: p.http.calls
                for p in provider_set.providers
                if isinstance(p, HttpProvider) and p.http.calls
            }
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            self.contacts.upsert(
                ws,
                list(started),
                lambda e, c: UNCHANGED if c is not None and _done_by(c, request_id) else self._fail(c, error, now),
                known=started,
            )
            report.failed = list(started)
            count("EnrichmentsFailed", len(eligible))
            raise
        finally:
            provider_set.close()

        def finish(email: str, before: Contact | None) -> Contact | Unchanged:
            outcome = result.contacts.get(email)
            if before is None or outcome is None:
                return UNCHANGED
            if _done_by(before, request_id):  # the other delivery finished it while this one asked the providers
                elsewhere.add(email)
                return UNCHANGED
            elsewhere.discard(email)
            if outcome.failed:
                summary = "; ".join(f"{g.provider}: {g.reason}" for g in outcome.gaps)
                return self._fail(before, f"every provider failed ({summary})", now)
            return self._enriched(
                before, outcome, request_id, provider_set.skipped, min_quality, insights.get(email), now
            )

        written = self.contacts.upsert(ws, list(started), finish, known=started)
        gapped = [
            email
            for email, done in written.items()
            if done is not None
            and email not in elsewhere
            and done.status is PipelineStatus.ENRICHED
            and done.enrichment_meta is not None
            and 0 < done.enrichment_meta.gap_retries <= MAX_GAP_RETRIES
        ]
        if gapped and self.gaps is not None:
            self.gaps.schedule(ws, gapped, now + timedelta(minutes=self.settings.enrich_gap_retry_minutes))
            report.gaps_retried = len(gapped)
        report.already_done.extend(e for e in todo if e in elsewhere)
        for email, done in written.items():
            if done is None or email in elsewhere:
                continue
            if done.status is PipelineStatus.FAILED:
                report.failed.append(email)
            elif done.status is PipelineStatus.ENRICHED:
                report.enriched.append(email)
                if (done.quality or 0.0) >= min_quality:
                    report.published.append(email)
                else:
                    report.below_threshold.append(email)
        for batch in result.pending:
            poll = EnrichPollMessage(
                workspace=ws,
                request_id=request_id,
                provider=batch.provider,
                provider_request_id=batch.provider_request_id,
                emails=batch.emails,
            )
            self._send([poll.model_dump_json()], delay=self._poll_delay(batch.provider, provider_set))
            report.pending.extend(batch.emails)
        self._publish(ws, request_id, report.published)
        count("ContactsEnriched", len(report.enriched))
        count("ContactsBelowThreshold", len(report.below_threshold))
        count("EnrichmentsFailed", len(report.failed))
        count("ContactsSkipped", len(report.skipped))
        report.cache_hits = sum(result.cache_hits.values())
        report.cache_lookups = sum(result.cache_lookups.values())
        report.provider_calls = sum(result.provider_calls.values())
        count("EnrichCacheHits", report.cache_hits)
        count("EnrichCacheLookups", report.cache_lookups)
        count("ProviderCalls", report.provider_calls)
        count("ProviderRequests", sum(requests.values()))
        logger.info(
            "enrichment finished",
            extra={
                "request_id": request_id,
                "enriched": len(report.enriched),
                "published": len(report.published),
                "below_threshold": len(report.below_threshold),
                "failed": len(report.failed),
                "skipped": len(report.skipped),
                "provider_calls": dict(result.provider_calls),
                "provider_requests": requests,
                "cache_hits": dict(result.cache_hits),
                "providers_skipped": provider_set.skipped,
            },
        )
        return report

    def _publish(self, workspace: str, request_id: str, emails: list[str]) -> None:
        details = [
            ContactsEnriched(workspace=workspace, request_id=request_id, emails=emails[i : i + MESSAGE_EMAILS])
            for i in range(0, len(emails), MESSAGE_EMAILS)
        ]
        if details:
            self.publisher.publish(DETAIL_CONTACTS_ENRICHED, details)

    @staticmethod
    def _poll_delay(provider: str, provider_set: ProviderSet) -> int:
        for p in provider_set.providers:
            if p.info.name == provider and isinstance(p, AsyncProvider):
                return max(1, min(900, int(p.poll_interval_seconds)))
        return 30

    # ------------------------------------------------------------------------------------------ transitions

    def _start(self, contact: Contact | None, now: datetime) -> Contact | Unchanged:
        if contact is None:
            return UNCHANGED
        after = contact.model_copy(deep=True)
        after.status = PipelineStatus.ENRICHING
        after.status_reason = None
        after.updated_at = now
        return after

    def _skip(self, contact: Contact | None, reason: str, request_id: str, now: datetime) -> Contact | Unchanged:
        if contact is None:
            return UNCHANGED
        after = contact.model_copy(deep=True)
        after.status = PipelineStatus.SKIPPED
        after.status_reason = reason
        after.enrichment_meta = EnrichmentMeta(request_id=request_id, enriched_at=now)
        after.updated_at = now
        return after

    def _fail(self, contact: Contact | None, error: str, now: datetime) -> Contact | Unchanged:
        if contact is None:
            return UNCHANGED
        after = contact.model_copy(deep=True)
        previous = contact.failure.attempts if contact.failure and contact.failure.stage == "enrich" else 0
        attempts = previous + 1
        retry = now + timedelta(minutes=self.settings.enrich_retry_minutes) if attempts < MAX_RETRIES else None
        after.status = PipelineStatus.FAILED
        after.status_reason = "enrichment failed" + ("" if retry else f" {attempts} times; not retried")
        after.failure = Failure(stage="enrich", error=error[:1000], attempts=attempts, next_retry_at=retry)
        after.updated_at = now
        return after

    def _enriched(
        self,
        contact: Contact,
        outcome: ContactOutcome,
        request_id: str,
        skipped: dict[str, str],
        min_quality: float,
        insight: Insight | None,
        now: datetime,
    ) -> Contact:
        after = contact.model_copy(deep=True)
        below = outcome.quality < min_quality
        after.enrichment = outcome.fields
        after.quality = outcome.quality
        after.enrichment_meta = EnrichmentMeta(
            request_id=request_id,
            enriched_at=now,
            sources_asked=outcome.sources_asked,
            cache_hits=outcome.cache_hits,
            gaps=outcome.gaps,
            skipped=dict(skipped),
            pending=outcome.pending,
            min_quality=min_quality,
            below_threshold=below,
            gap_retries=self._gap_retries(contact, outcome),
        )
        after.status = PipelineStatus.ENRICHED
        after.status_reason = "below_threshold" if below else None
        after.failure = None
        after.lifecycle = lifecycle_after_enrichment(after.lifecycle, outcome.fields)  # rules: engagements.py
        if insight is not None:
            after.intelligence = insight
        after.updated_at = now
        return after

    @staticmethod
    def _gap_retries(contact: Contact, outcome: ContactOutcome) -> int:
        """Enrichments in a row (this one included) that left a gap worth trying again; 0 when this one did not."""
        if not retryable(outcome.gaps):
            return 0
        before = contact.enrichment_meta
        return (before.gap_retries if before and retryable(before.gaps) else 0) + 1

    # ------------------------------------------------------------------------------------------ intelligence

    def _insights(
        self, contacts: Sequence[Contact], outcomes: dict[str, ContactOutcome], budget: Budget
    ) -> dict[str, Insight]:
        """Pain points and hooks from the LLM, when a key is configured; a failure costs only the insights."""
        if self.intelligence is None:
            return {}
        engine = self.intelligence(budget)
        if engine is None:
            return {}
        from leadpipe.enrichment.intelligence import ContactProfile

        profiles = [
            ContactProfile.from_contact(c.model_copy(update={"enrichment": outcomes[c.email].fields}))
            for c in contacts
            if c.email in outcomes and not outcomes[c.email].failed
        ]
        with engine:
            try:
                generated = engine.generate(profiles)
            except ProviderError as exc:
                logger.warning("intelligence unavailable", extra={"reason": exc.reason, "error": exc.message})
                return {}
            for failure in engine.failures:
                logger.warning(
                    "intelligence missing for some contacts",
                    extra={"contacts": len(failure.emails), "reason": failure.error.reason},
                )
        return {
            email: Insight(
                pain_points=list(i.pain_points), hooks=list(i.hooks), model=i.model, generated_at=i.generated_at
            )
            for email, i in generated.items()
        }

    # ------------------------------------------------------------------------------------------ async + retries

    def collect(self, message: EnrichPollMessage, budget: Budget) -> EnrichReport | None:
        """Collect an asynchronous provider's batch; when it is done, finish those contacts from the cache."""
        ws = message.workspace
        provider_set = self.providers(ws, budget)
        try:
            provider = next((p for p in provider_set.providers if p.info.name == message.provider), None)
            stored = self.contacts.batch_get(ws, message.emails)
            emails = [e for e in message.emails if e in stored]
            if not isinstance(provider, AsyncProvider) or not emails:
                logger.warning("poll for an unavailable provider or vanished contacts", extra=message.model_dump())
                return None
            queries: list[PersonQuery] = [person_query(stored[e]) for e in emails]
            try:
                answers = provider.poll(message.provider_request_id, queries)
            except ProviderError as exc:
                answers = None
                if not exc.retryable:
                    self._give_up(message, emails, f"{exc.reason}: {exc.message}")
                    return None
            if answers is None:
                if message.attempt >= self.settings.enrich_max_polls:
                    self._give_up(message, emails, f"still pending after {message.attempt} polls")
                    return None
                again = message.model_copy(update={"attempt": message.attempt + 1})
                self._send([again.model_dump_json()], delay=self._poll_delay(provider.info.name, provider_set))
                return None
            got = {a.key: a for a in answers}
            self.cache.put_many(provider.info.name, [got[e] for e in emails if e in got])
        finally:
            provider_set.close()
        follow_up = EnrichMessage(
            workspace=ws, request_id=f"{message.request_id}+{message.provider}", emails=emails, options=EnrichOptions()
        )
        return self.enrich(follow_up, budget)

    def _give_up(self, message: EnrichPollMessage, emails: list[str], why: str) -> None:
        gap = ProviderGap(provider=message.provider, reason="async_gave_up", message=why)

        def drop_pending(email: str, contact: Contact | None) -> Contact | Unchanged:
            if (
                contact is None
                or contact.enrichment_meta is None
                or message.provider not in contact.enrichment_meta.pending
            ):
                return UNCHANGED
            after = contact.model_copy(deep=True)
            assert after.enrichment_meta is not None
            after.enrichment_meta.pending.remove(message.provider)
            after.enrichment_meta.gaps.append(gap)
            return after

        self.contacts.upsert(message.workspace, emails, drop_pending)
        logger.warning("gave up on an asynchronous provider batch", extra={"provider": message.provider, "why": why})

    def requeue_due(self, workspace: str) -> QueuedRequest | None:
        """Re-queue this workspace's contacts whose failed enrichment is due, those stuck ``enriching``, and those
        enriched while a provider was down whose gap retry is due."""
        now = self.clock()
        due = due_for_retry(
            self.contacts,
            workspace,
            stage="enrich",
            in_progress=PipelineStatus.ENRICHING,
            now=now,
            stale_after=timedelta(minutes=self.settings.enrich_retry_minutes),
        )
        gap_entries = self.gaps.due(workspace, now) if self.gaps is not None else []
        due = list(dict.fromkeys([*due, *(email for _, email in gap_entries)]))
        if not due:
            return None
        queued = self.queue(workspace, due, EnrichOptions(), request_id=f"retry-{now.strftime('%Y%m%dT%H%M%S')}")
        if gap_entries and self.gaps is not None:
            self.gaps.collected(workspace, [key for key, _ in gap_entries])
        count("EnrichRetriesQueued", queued.queued)
        count("EnrichGapRetriesQueued", len(gap_entries))
        return queued
