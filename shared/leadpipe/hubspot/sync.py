"""The sync service: what the sync function does with each SyncQueue message (at most 500 contacts, sent to HubSpot
in batches of 100). A ``contacts.enriched`` event (the AutoSync rule's) is dropped for a workspace whose auto-sync
switch is off (its own, else the deployment's); a sync request (POST /sync, retries) always runs.

1. Contacts already synced by this request are left alone (at-least-once delivery); suppressed/skipped ones are
   never sent. The others move to ``syncing``.
2. On the first sync of a portal (then every 10 minutes per container), the ``leadpipe`` property group and the
   ``leadpipe_*`` properties are created if missing, and the mapping is checked: a mapping to a property HubSpot
   does not have is reported in the sync log and left out, instead of failing every batch with a 400.
3. Contacts whose mapped values hash to what leadpipe wrote last are done without a HubSpot call. The others are
   read in one ``batch/read`` by email, the overwrite policy of each property decides what may be written, and one
   ``batch/upsert`` by email writes them; a 207 answer fails only the records it names.
4. Companies: a stored domain -> company id map first, then one search per 100 unknown domains, then
   ``batch/create`` for the rest, each new domain claimed first with a conditional write so that two syncs in
   flight never create the same company twice; new contact -> company pairs get v4 ``batch/associate/default``.
5. One timeline note per enrichment (not per sync), created in batches with their association.
6. ``synced`` with the HubSpot ids and ``synced_at``, or ``failed`` with the error, the attempt count and
   ``next_retry_at`` 15 minutes later; ``contacts.synced`` is published; a sync log entry records the batch.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from leadpipe.contacts import UNCHANGED, ContactRepository, Unchanged
from leadpipe.dynamo import (
    TRANSACT_MAX_ITEMS,
    TransactionCancelled,
    backoff,
    batch_get,
    batch_write,
    from_item,
    to_item,
    transact_write,
)
from leadpipe.enrichment.http import Budget
from leadpipe.enrichment.keys import ProviderKeys
from leadpipe.enrichment.providers.base import ProviderError
from leadpipe.errors import BadRequest, LeadpipeError, TransientError
from leadpipe.events import EventPublisher
from leadpipe.hubspot.client import BatchOutcome, HubSpotClient, token_fingerprint
from leadpipe.hubspot.mapping import (
    COMPANY_KEY,
    COMPANY_KEY_PROPERTY,
    GROUP,
    GROUP_LABEL,
    LEADPIPE_PROPERTIES,
    PropertyMapping,
    decide,
    value_of,
)
from leadpipe.models import (
    DETAIL_CONTACTS_ENRICHED,
    DETAIL_CONTACTS_SYNCED,
    EVENT_SOURCE,
    Contact,
    ContactsEnriched,
    ContactsSynced,
    Failure,
    HubSpotRef,
    PipelineStatus,
    SyncMessage,
    SyncOptions,
    iso,
    utcnow,
)
from leadpipe.observability import count, logger
from leadpipe.queueing import due_for_retry, send_batch
from leadpipe.settings import Settings
from leadpipe.stats import RunRecorder, StatsRepository
from leadpipe.workspaces import EffectiveSettings, WorkspaceRepository

MAX_RETRIES = 5
RETRY_DELAY = timedelta(minutes=15)
MESSAGE_EMAILS = 500  # contacts per SyncQueue message: HubSpot batches of 100, companies resolved for all 500
CLAIM_STALE_SECONDS = 300  # a claim to create a domain's company older than this was abandoned (a crashed sync)
CLAIM_WAIT_SECONDS = 30.0  # how long a sync waits for a company another sync is creating
CLAIM_POLL_SECONDS = 0.5
MAX_CLAIM_CONFLICTS = 8
PROPERTIES_TTL = 600.0
LOG_DAYS = 30
_PROPERTIES: dict[str, tuple[float, set[str]]] = {}  # token fingerprint -> (checked at, contact property names)
_COMPANY_KEY: dict[str, tuple[float, bool]] = {}  # token fingerprint -> (checked at, the company key is usable)


@dataclass
class SyncReport:
    request_id: str
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    deferred: set[str] = field(default_factory=set)  # failed for a wait that uses up no attempt
    skipped: dict[str, str] = field(default_factory=dict)
    already_done: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    companies_created: int = 0
    associations: int = 0
    notes: int = 0
    mapping_problems: list[str] = field(default_factory=list)
    company_errors: list[str] = field(default_factory=list)
    hubspot_calls: int = 0
    throttled: int = 0
    contacts: int = 0  # in the request

    @property
    def synced(self) -> list[str]:
        return [*self.created, *self.updated, *self.unchanged]

    def counts(self) -> dict[str, int]:
        """What the run's events and the workspace's stats record (``leadpipe.stats``)."""
        return {
            "contacts": self.contacts,
            "synced": len(self.synced),
            "created": len(self.created),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "failed": len(self.failed),
            "skipped": len(self.skipped),
            "already_done": len(self.already_done),
            "missing": len(self.missing),
            "companies_created": self.companies_created,
            "notes": self.notes,
            "hubspot_calls": self.hubspot_calls,
            "hubspot_429s": self.throttled,
        }

    def defer(self, email: str, error: str) -> None:
        """Like ``fail``, for a wait that is not the contact's fault: it does not use up one of its attempts."""
        self.fail(email, error)
        self.deferred.add(email)

    def fail(self, email: str, error: str) -> None:
        """A contact fails after its write went through (e.g. its company could not be settled): not synced."""
        for done in (self.created, self.updated, self.unchanged):
            if email in done:
                done.remove(email)
        self.failed[email] = error


@dataclass
class QueuedSync:
    request_id: str
    queued: int
    messages: int


def queue_sync(
    sqs: Any,
    queue_url: str,
    workspace: str,
    emails: Sequence[str],
    options: SyncOptions | None,
    request_id: str | None = None,
) -> QueuedSync:
    """Put a sync request for these contacts on SyncQueue, 500 contacts per message, grouped by email domain: a
    company's people mostly travel together, so its company is looked up, created and stored once."""
    request_id = request_id or f"sync-{uuid.uuid4().hex[:16]}"
    unique = sorted(dict.fromkeys(emails), key=lambda e: (e.rpartition("@")[2], e))
    bodies = [
        SyncMessage(
            workspace=workspace, request_id=request_id, emails=unique[i : i + MESSAGE_EMAILS], options=options
        ).model_dump_json()
        for i in range(0, len(unique), MESSAGE_EMAILS)
    ]
    return QueuedSync(request_id=request_id, queued=len(unique), messages=send_batch(sqs, queue_url, bodies))


def desired_hash(contact: Contact, mapping: Sequence[PropertyMapping]) -> str:
    values = {m.property: value_of(contact, m.source) for m in mapping}
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:24]


def _may_have_written(contact: Contact) -> bool:
    """A sync of this contact started and did not finish (``syncing``: the invocation died) or failed after it may
    have written to HubSpot."""
    if contact.status is PipelineStatus.SYNCING:
        return True
    return contact.status is PipelineStatus.FAILED and contact.failure is not None and contact.failure.stage == "sync"


def note_marker(request_id: str) -> str:
    """The note's last line: which enrichment it summarises (how a repeated sync recognises a note it made)."""
    return f"leadpipe enrichment {request_id}"


def note_body(contact: Contact) -> str:
    meta = contact.enrichment_meta
    fields = contact.enrichment
    lines = [f"leadpipe enriched this contact: quality {contact.quality or 0:.2f}"]
    if meta:
        lines.append(f"Sources asked: {', '.join(meta.sources_asked) or 'none'}")
        if meta.gaps:
            lines.append("Gaps: " + "; ".join(f"{g.provider} ({g.reason})" for g in meta.gaps))
    for name in sorted(fields):
        value = fields[name]
        lines.append(f"- {name}: {value.value} ({value.provider}, confidence {value.confidence:.2f})")
    if meta:
        lines.append(note_marker(meta.request_id))
    return "\n".join(lines)


class SyncService:
    def __init__(
        self,
        *,
        contacts: ContactRepository,
        dynamodb: Any,
        state_table: str,
        publisher: EventPublisher,
        sqs: Any,
        settings: Settings,
        keys: ProviderKeys,
        workspaces: WorkspaceRepository,
        hubspot: Callable[[str, int, Budget], HubSpotClient] | None = None,
        clock: Callable[[], datetime] = utcnow,
        runs: RunRecorder | None = None,
    ) -> None:
        self.contacts = contacts
        self.dynamodb = dynamodb
        self.state_table = state_table
        self.publisher = publisher
        self.sqs = sqs
        self.settings = settings
        self.keys = keys
        self.workspaces = workspaces
        self.hubspot = hubspot or (
            lambda token, burst, budget: HubSpotClient(
                token, base_url=settings.hubspot_base_url, burst_limit=burst, budget=budget
            )
        )
        self.clock = clock
        # each run announced on the bus (the activity feed) and added to the workspace's stats (GET /status)
        stats = StatsRepository(dynamodb, state_table) if state_table else None
        self.runs = runs or RunRecorder("sync", publisher=publisher, stats=stats, clock=clock)

    # ------------------------------------------------------------------------------------------ messages

    def handle_message(self, body: str, *, budget: Budget) -> SyncReport:
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise BadRequest(f"SyncQueue message is not JSON: {body[:200]!r}", code="bad_message") from exc
        if (
            isinstance(data, dict)
            and data.get("detail-type") == DETAIL_CONTACTS_ENRICHED
            and data.get("source") == EVENT_SOURCE
        ):
            detail = ContactsEnriched.model_validate(data["detail"])
            if not self.auto_sync(detail.workspace):  # the automatic path only: POST /sync always runs
                logger.info("auto-sync is off for the workspace", extra={"workspace": detail.workspace})
                count("AutomaticSyncsDropped", len(detail.emails))
                return SyncReport(f"evt-{data['id']}", skipped=dict.fromkeys(detail.emails, "auto-sync is off"))
            message = SyncMessage(workspace=detail.workspace, request_id=f"evt-{data['id']}", emails=detail.emails)
            return self.sync(message, budget)
        if isinstance(data, dict) and data.get("type") == "sync.request":
            return self.sync(SyncMessage.model_validate(data), budget)
        raise BadRequest(f"unrecognised SyncQueue message: {body[:200]!r}", code="bad_message")

    def auto_sync(self, workspace: str) -> bool:
        """The workspace's auto-sync switch, else the deployment's AUTO_SYNC_AFTER_ENRICH."""
        return EffectiveSettings.of(self.workspaces.get(workspace), self.settings).auto_sync_after_enrich

    def requeue_due(self, workspace: str) -> QueuedSync | None:
        """Re-queue this workspace's contacts whose failed sync is due, and those stuck ``syncing``."""
        now = self.clock()
        due = due_for_retry(
            self.contacts, workspace, stage="sync", in_progress=PipelineStatus.SYNCING, now=now, stale_after=RETRY_DELAY
        )
        if not due:
            return None
        queued = queue_sync(
            self.sqs, self.settings.sync_queue_url, workspace, due, None, f"retry-{now.strftime('%Y%m%dT%H%M%S')}"
        )
        count("SyncRetriesQueued", queued.queued)
        return queued

    # ------------------------------------------------------------------------------------------ syncing

    def sync(self, message: SyncMessage, budget: Budget) -> SyncReport:
        """One run: the message's contacts, announced on the bus and added to the workspace's stats."""
        report = SyncReport(message.request_id, contacts=len(set(message.emails)))
        with self.runs.run(message.workspace, message.request_id, report):
            self._sync(message, budget, report)
        return report

    def _sync(self, message: SyncMessage, budget: Budget, report: SyncReport) -> SyncReport:
        ws, request_id = message.workspace, message.request_id
        now = self.clock()
        workspace = self.workspaces.get(ws)
        options = message.options or workspace.sync.options
        emails = list(dict.fromkeys(message.emails))
        stored = self.contacts.batch_get(ws, emails)
        report.missing = [e for e in emails if e not in stored]
        todo = []
        for email, contact in stored.items():
            ref = contact.hubspot
            if ref and ref.request_id == request_id and contact.status is PipelineStatus.SYNCED:
                report.already_done.append(email)
            elif contact.status is PipelineStatus.SKIPPED:
                report.skipped[email] = f"not synced: {contact.status_reason or 'skipped'}"
            else:
                todo.append(email)
        if not todo:
            return report
        replaced: dict[str, Contact] = {}  # what each contact was when this attempt took it (not a stale first read)

        def start(email: str, contact: Contact | None) -> Contact | Unchanged:
            if contact is not None:
                replaced[email] = contact
            return self._start(contact, now)

        marked = self.contacts.upsert(ws, todo, start, known=stored)
        contacts = {e: c for e, c in marked.items() if c is not None and c.status is PipelineStatus.SYNCING}
        previous = {e: replaced[e].status for e in contacts}

        token = self.keys.secret(ws, "hubspot/token", "HUBSPOT_TOKEN")
        if not token:
            error = (
                "no HubSpot access token (store one at the workspace's hubspot/token parameter or set HUBSPOT_TOKEN)"
            )
            self._finish_failed(ws, contacts, error, report)
            return report
        client = self.hubspot(token, workspace.sync.burst_limit, budget)
        try:
            with client:
                mapping = self._usable_mapping(client, token, workspace.sync.mapping, report)
                written = self._write_contacts(client, contacts, mapping, options, report)
                companies = self._companies(client, ws, contacts, written, options, report, budget, token)
                unsure, unsettled = self._unsure(replaced, contacts, now)
                notes = self._notes(client, contacts, written, options, report, unsure, unsettled)
        except (ProviderError, LeadpipeError) as exc:  # HubSpot failed past its retries, or a step could not finish
            report.hubspot_calls, report.throttled = client.calls, client.throttled
            reason = f"{exc.reason}: {exc.message}" if isinstance(exc, ProviderError) else f"{exc.code}: {exc}"
            self._finish_failed(ws, contacts, reason, report)
            self._log(ws, report, now)
            raise
        report.hubspot_calls, report.throttled = client.calls, client.throttled
        ended = self.clock()  # a failure is stamped with when this attempt stopped writing (the settle starts then)

        def finish(email: str, before: Contact | None) -> Contact | Unchanged:
            if before is None:
                return UNCHANGED
            if email in report.failed:
                return self._fail(before, report.failed[email], ended, request_id, attempt=email not in report.deferred)
            if email in report.skipped:
                after = before.model_copy(deep=True)
                came_from = previous.get(email, PipelineStatus.ENRICHED)
                if came_from is PipelineStatus.SYNCING or _may_have_written(replaced[email]):
                    came_from, after.failure = PipelineStatus.ENRICHED, None  # not a sync left to finish or retry
                after.status = came_from
                after.status_reason = report.skipped[email]
                ref = (after.hubspot or HubSpotRef()).model_copy(update={"request_id": request_id})
                if email in written:
                    ref.contact_id = written[email][0]
                after.hubspot = ref
                after.updated_at = now
                return after
            contact_id, changes = written[email]
            after = before.model_copy(deep=True)
            ref = (after.hubspot or HubSpotRef()).model_copy(deep=True)
            ref.contact_id = contact_id
            ref.company_id = companies.get(email, ref.company_id)
            ref.synced_at = now
            ref.written.update(changes)
            ref.written_hash = desired_hash(before, mapping)
            ref.request_id = request_id
            if email in notes:
                ref.note_for = notes[email]
            after.hubspot = ref
            after.status = PipelineStatus.SYNCED
            after.status_reason = None
            after.failure = None
            after.updated_at = now
            return after

        self.contacts.upsert(ws, list(contacts), finish, known=contacts)
        if report.synced:
            self.publisher.publish(
                DETAIL_CONTACTS_SYNCED,
                [
                    ContactsSynced(workspace=ws, request_id=request_id, emails=report.synced[i : i + MESSAGE_EMAILS])
                    for i in range(0, len(report.synced), MESSAGE_EMAILS)
                ],
            )
        self._log(ws, report, now)
        count("ContactsSynced", len(report.synced))
        count("SyncFailed", len(report.failed))
        logger.info("sync finished", extra={"request_id": request_id, "summary": self._summary(report)})
        return report

    def _unsure(
        self, replaced: dict[str, Contact], contacts: dict[str, Contact], now: datetime
    ) -> tuple[set[str], set[str]]:
        """The contacts an earlier attempt may have written to HubSpot (``unsure``: their notes are read back before
        any is made), and among them those whose read-back would not be conclusive yet (``unsettled``).

        Judged from what this attempt replaced when it took them (``replaced``), not from a first read that a
        concurrent delivery may have overtaken. A ``failed`` contact's attempt is over: its writes have settled
        ``HUBSPOT_NOTE_SETTLE_SECONDS`` after it failed (a create that timed out may land later). A ``syncing``
        contact's attempt may still be running -- a duplicate delivery -- for up to the function's timeout
        (``SYNC_INFLIGHT_SECONDS``) after it started, then settle."""
        settle = timedelta(seconds=self.settings.hubspot_note_settle_seconds)
        inflight = timedelta(seconds=self.settings.sync_inflight_seconds)
        unsure: set[str] = set()
        unsettled: set[str] = set()
        for email in contacts:
            before = replaced.get(email)
            if before is None or not _may_have_written(before):
                continue
            unsure.add(email)
            window = settle + (inflight if before.status is PipelineStatus.SYNCING else timedelta(0))
            if before.updated_at > now - window:
                unsettled.add(email)
        return unsure, unsettled

    # ------------------------------------------------------------------------------------------ steps

    def _usable_mapping(
        self, client: HubSpotClient, token: str, mapping: Sequence[PropertyMapping], report: SyncReport
    ) -> list[PropertyMapping]:
        """Create leadpipe's group and properties if missing; leave out (and report) mappings to unknown ones."""
        key = token_fingerprint(token)
        checked = _PROPERTIES.get(key)
        if checked is None or time.monotonic() - checked[0] > PROPERTIES_TTL:
            names = set(client.properties("contacts"))
            missing = [p for p in LEADPIPE_PROPERTIES if p["name"] not in names]
            if missing:
                client.ensure_group("contacts", GROUP, GROUP_LABEL)
                names |= client.create_properties("contacts", [{**p, "groupName": GROUP} for p in missing])
            checked = (time.monotonic(), names)
            _PROPERTIES[key] = checked
        usable = []
        for entry in mapping:
            if entry.property in checked[1]:
                usable.append(entry)
            else:
                report.mapping_problems.append(
                    f"{entry.source} -> {entry.property!r}: HubSpot has no contact property with that name; "
                    "the field is not synced until the mapping or the portal is fixed"
                )
        return usable

    def _write_contacts(
        self,
        client: HubSpotClient,
        contacts: dict[str, Contact],
        mapping: Sequence[PropertyMapping],
        options: SyncOptions,
        report: SyncReport,
    ) -> dict[str, tuple[str, dict[str, str]]]:
        """Read, decide, upsert. Returns email -> (HubSpot id, properties written) for the contacts now in HubSpot."""
        written: dict[str, tuple[str, dict[str, str]]] = {}
        to_read = []
        for email, contact in contacts.items():
            ref = contact.hubspot
            if ref and ref.contact_id and ref.written_hash == desired_hash(contact, mapping):
                written[email] = (ref.contact_id, {})  # nothing new to write: no HubSpot call at all
                report.unchanged.append(email)
            else:
                to_read.append(email)
        if not to_read:
            return written
        properties = sorted({m.property for m in mapping} | {"email"})
        read = client.read_by("contacts", "email", to_read, properties)
        current = {str((r.get("properties") or {}).get("email", "")).lower(): r for r in read.results}
        upserts: list[tuple[str, dict[str, str]]] = []
        agreed_by: dict[str, dict[str, str]] = {}
        for email in to_read:
            contact = contacts[email]
            existing = current.get(email)
            if existing is None and not options.create_if_new:
                report.skipped[email] = "not in HubSpot, and createIfNew is off"
                continue
            if existing is not None and not options.update_if_exists:
                report.skipped[email] = "already in HubSpot, and updateIfExists is off"
                written[email] = (str(existing["id"]), {})
                continue
            last = contact.hubspot.written if contact.hubspot else {}
            theirs = (existing or {}).get("properties") or {}
            changes = decide(contact, mapping, theirs, last)
            # what HubSpot already holds exactly as leadpipe would write it counts as leadpipe's (for ``ours``)
            agreed = {}
            for entry in mapping:
                value = value_of(contact, entry.source)
                if value is not None and str(theirs.get(entry.property) or "") == value:
                    agreed[entry.property] = value
            if existing is not None and not changes:
                written[email] = (str(existing["id"]), agreed)
                report.unchanged.append(email)
                continue
            agreed_by[email] = agreed
            upserts.append((email, changes))
        if not upserts:
            return written
        outcome = client.upsert("contacts", "email", upserts)
        by_email = {str((r.get("properties") or {}).get("email", "")).lower(): r for r in outcome.results}
        sent = dict(upserts)
        for email, changes in sent.items():
            result = by_email.get(email)
            if result is None:
                continue
            written[email] = (str(result["id"]), {**agreed_by.get(email, {}), **changes})
            (report.created if result.get("new") else report.updated).append(email)
        for error in outcome.errors:
            blamed = self._emails_in(error, [e for e in sent if e not in by_email])
            for email in blamed:
                report.failed[email] = (
                    f"HubSpot refused the record: {error.get('category', '')} {error.get('message', '')}".strip()
                )
        for email in sent:
            if email not in by_email and email not in report.failed:
                report.failed[email] = "HubSpot did not return this record"
        return written

    @staticmethod
    def _emails_in(error: dict[str, Any], candidates: list[str]) -> list[str]:
        text = json.dumps(error).lower()
        named = [e for e in candidates if e in text]
        return named or candidates  # an error that names nobody fails every record it could be about

    def _companies(
        self,
        client: HubSpotClient,
        workspace: str,
        contacts: dict[str, Contact],
        written: dict[str, tuple[str, dict[str, str]]],
        options: SyncOptions,
        report: SyncReport,
        budget: Budget,
        token: str,
    ) -> dict[str, str]:
        """email -> company id for the contacts now in HubSpot, associating the new pairs."""
        if not options.associate_company:
            return {}
        wanted: dict[str, str] = {e: d for e in written if (d := contacts[e].domain)}
        if not wanted:
            return {}
        names: dict[str, str] = {}
        for email, domain in wanted.items():
            enriched = contacts[email].enrichment.get("company_name")
            names.setdefault(domain, str((enriched.value if enriched else None) or contacts[email].company or domain))
        known, waiting = self._resolve_companies(client, workspace, names, options, report, budget, token)
        pairs = []
        result: dict[str, str] = {}
        for email, domain in wanted.items():
            company_id = known.get(domain)
            if not company_id:
                if domain in waiting:
                    report.fail(
                        email,
                        f"the company for {domain} is still being created by another sync; "
                        "the association is retried with the contact",
                    )
                continue
            result[email] = company_id
            ref = contacts[email].hubspot
            if not ref or ref.company_id != company_id:
                pairs.append((written[email][0], company_id))
        if pairs:
            outcome = client.associate_default("contacts", "companies", pairs)
            report.associations += len(pairs) - len(outcome.errors)
        return result

    def _resolve_companies(
        self,
        client: HubSpotClient,
        workspace: str,
        names: dict[str, str],
        options: SyncOptions,
        report: SyncReport,
        budget: Budget,
        token: str,
    ) -> tuple[dict[str, str], list[str]]:
        """domain -> company id: the stored map, then HubSpot's search, then creation. Two syncs may meet the same new
        domain at once (two messages in flight): each claims the domains it is about to create with a conditional
        write, so exactly one creates a company and the other waits for its id. Returns the ids, and the domains
        still being created by another sync when this one could wait no longer."""
        domains = sorted(names)
        known = self._stored_companies(workspace, domains)
        unknown = [d for d in domains if d not in known]
        if not unknown:
            return known, []
        # deduplicate: look for companies people already created in HubSpot before creating one; without it only
        # the companies leadpipe created or found before are reused (no search calls: a first load)
        found = client.companies_by_domain(unknown) if options.deduplicate else {}
        self._store_companies(workspace, found)
        known.update(found)
        missing = [d for d in unknown if d not in found]
        if not missing:
            return known, []
        keyed = self._company_key(client, token)
        # With the unique key, creating is idempotent: a redelivery of this request may take over its own claim (left
        # by an invocation that died after creating) instead of waiting for it to go stale.
        claimed, taken = self._claim_domains(workspace, missing, owner=report.request_id if keyed else None)
        if claimed:
            if keyed:
                try:
                    created = client.upsert(
                        "companies",
                        COMPANY_KEY,
                        [(d, {"name": names[d], "domain": d, COMPANY_KEY: d}) for d in claimed],
                    )
                except ProviderError as exc:
                    if "non-unique" not in exc.message:
                        raise
                    _COMPANY_KEY.pop(token_fingerprint(token), None)  # the key was deleted in HubSpot: check again
                    self._release_claims(workspace, claimed)
                    raise TransientError("leadpipe's company key is gone from HubSpot; it is created again") from exc
            else:
                created = client.create("companies", [{"properties": {"name": names[d], "domain": d}} for d in claimed])
            made: dict[str, str] = {}
            for result in created.results:
                domain = str((result.get("properties") or {}).get("domain", "")).lower()
                if domain in names:
                    made[domain] = str(result["id"])
                    report.companies_created += 1 if result.get("new", True) else 0
            self._store_companies(workspace, made)
            known.update(made)
            refused = [d for d in claimed if d not in made]
            if refused:  # let a later sync try again at once, rather than after the claim goes stale
                self._release_claims(workspace, refused)
                for error in created.errors[:5]:
                    report.company_errors.append(
                        f"HubSpot refused a company: {error.get('category', '')} {error.get('message', '')}".strip()
                    )
        waiting = taken
        deadline = time.monotonic() + min(CLAIM_WAIT_SECONDS, max(0.0, budget.left() - 30.0))
        while waiting:
            ready = self._stored_companies(workspace, waiting)
            known.update(ready)
            waiting = [d for d in waiting if d not in ready]
            if not waiting or time.monotonic() + CLAIM_POLL_SECONDS > deadline:
                break
            time.sleep(CLAIM_POLL_SECONDS)
        return known, waiting

    def _company_key(self, client: HubSpotClient, token: str) -> bool:
        """Whether the portal has leadpipe's unique company key (created here if missing; checked every
        ``PROPERTIES_TTL`` per container). A portal that refuses it (e.g. no unique property left) gets plain
        creates."""
        key = token_fingerprint(token)
        checked = _COMPANY_KEY.get(key)
        if checked is None or time.monotonic() - checked[0] > PROPERTIES_TTL:
            existing = client.properties("companies").get(COMPANY_KEY)
            # a property of that name made by hand without "unique values" would refuse every upsert by it
            usable = bool(existing and existing.get("hasUniqueValue"))
            if existing and not usable:
                logger.warning(
                    "the portal's leadpipe_company_key property does not hold unique values: company creates are "
                    "not idempotent (delete it in HubSpot and leadpipe creates it as it should be)"
                )
            elif not usable:
                client.ensure_group("companies", GROUP, GROUP_LABEL)
                usable = COMPANY_KEY in client.create_properties(
                    "companies", [{**COMPANY_KEY_PROPERTY, "groupName": GROUP}]
                )
                if not usable:
                    logger.warning("HubSpot refused leadpipe's company key: company creates are not idempotent")
            checked = (time.monotonic(), usable)
            _COMPANY_KEY[key] = checked
        return checked[1]

    def _claim_domains(
        self, workspace: str, domains: Sequence[str], owner: str | None = None
    ) -> tuple[list[str], list[str]]:
        """Claim the right to create these domains' companies (a conditional write per domain, 100 per
        transaction; a claim older than ``CLAIM_STALE`` is abandoned and may be taken; a claim by ``owner``, when
        given, is this owner's to take again). Returns (claimed, taken)."""
        now = int(self.clock().timestamp())
        token = owner or uuid.uuid4().hex
        claimed: list[str] = []
        taken: list[str] = []
        pending = list(domains)
        conflicts = 0
        while pending:
            chunk, pending = pending[:TRANSACT_MAX_ITEMS], pending[TRANSACT_MAX_ITEMS:]
            while chunk:
                items = [
                    {
                        "Put": {
                            "TableName": self.state_table,
                            "Item": to_item({"pk": f"HC#{workspace}", "sk": d, "claim": token, "claimed_at": now}),
                            "ConditionExpression": (
                                "attribute_not_exists(pk) OR (attribute_not_exists(company_id) AND "
                                "(claimed_at < :stale OR claim = :mine))"
                            ),
                            "ExpressionAttributeValues": {
                                ":stale": {"N": str(now - CLAIM_STALE_SECONDS)},
                                ":mine": {"S": token},
                            },
                        }
                    }
                    for d in chunk
                ]
                try:
                    transact_write(self.dynamodb, items)
                except TransactionCancelled as exc:
                    reasons = zip(chunk, exc.reasons, strict=False)
                    lost = [d for d, reason in reasons if reason == "ConditionalCheckFailed"]
                    if not lost:  # a conflict with another transaction, not a claim: try again
                        conflicts += 1
                        if conflicts >= MAX_CLAIM_CONFLICTS:
                            raise TransientError("could not claim company domains: transaction conflicts") from exc
                        backoff(conflicts)
                        continue
                    taken.extend(lost)
                    chunk = [d for d in chunk if d not in lost]
                    continue
                claimed.extend(chunk)
                break
        return claimed, taken

    def _release_claims(self, workspace: str, domains: Sequence[str]) -> None:
        keys = [{"DeleteRequest": {"Key": {"pk": {"S": f"HC#{workspace}"}, "sk": {"S": d}}}} for d in domains]
        batch_write(self.dynamodb, self.state_table, keys)

    def _stored_companies(self, workspace: str, domains: Sequence[str]) -> dict[str, str]:
        """The stored domain -> company id map (claims without an id yet are left out)."""
        keys = [{"pk": {"S": f"HC#{workspace}"}, "sk": {"S": d}} for d in domains]
        found = {}
        for item in batch_get(self.dynamodb, self.state_table, keys, consistent=True):
            data = from_item(item)
            if data.get("company_id"):
                found[str(data["sk"])] = str(data["company_id"])
        return found

    def _store_companies(self, workspace: str, ids: dict[str, str]) -> None:
        requests = [
            {"PutRequest": {"Item": to_item({"pk": f"HC#{workspace}", "sk": d, "company_id": i})}}
            for d, i in ids.items()
        ]
        batch_write(self.dynamodb, self.state_table, requests)

    def _notes(
        self,
        client: HubSpotClient,
        contacts: dict[str, Contact],
        written: dict[str, tuple[str, dict[str, str]]],
        options: SyncOptions,
        report: SyncReport,
        unsure: set[str],
        unsettled: set[str],
    ) -> dict[str, str]:
        """One note per enrichment: email -> the enrichment request the new note summarises.

        A note is created once: a contact whose last sync may have created its note without recording it (``unsure``:
        that sync died or failed after writing) has its notes read back first (two batch reads), and a note
        carrying this enrichment's marker is taken as made. A read-back is only conclusive once the earlier attempt
        has settled (a create that timed out, or one a concurrent delivery of the same message is making, may
        still land): a contact whose earlier attempt is more recent than ``HUBSPOT_NOTE_SETTLE_SECONDS`` fails for
        the sync retry instead, its HubSpot record written, its note not yet."""
        if not options.log_activity:
            return {}
        notes: list[tuple[str, str, str]] = []
        wanted: dict[str, tuple[str, str]] = {}  # email -> (contact id, enrichment request)
        for email, (contact_id, _) in written.items():
            contact = contacts[email]
            meta = contact.enrichment_meta
            if meta is None or not contact.enrichment or email in report.skipped:
                continue
            if contact.hubspot and contact.hubspot.note_for == meta.request_id:
                continue  # this enrichment already has its note
            if email in unsettled:
                report.defer(
                    email, "an earlier attempt's timeline note may still be on its way: retried once it settled"
                )
                continue
            wanted[email] = (contact_id, meta.request_id)
            notes.append((contact_id, iso(meta.enriched_at), note_body(contact)))
        made = self._notes_made(client, {e: wanted[e] for e in wanted if e in unsure})
        notes = [
            (cid, at, body)
            for (email, _), (cid, at, body) in zip(wanted.items(), notes, strict=True)
            if email not in made
        ]
        summarised = {email: request_id for email, (_, request_id) in wanted.items()}
        sent = [email for email in wanted if email not in made]
        if notes:
            outcome = client.create_notes(notes)
            report.notes += len(outcome.results)
            for email, error in self._notes_refused(outcome, sent).items():
                report.fail(email, error)  # its record is written; its note is made by the sync retry
                del summarised[email]
        return summarised

    @staticmethod
    def _notes_refused(outcome: BatchOutcome, sent: list[str]) -> dict[str, str]:
        """email -> why, for the notes of a ``batch/create`` (inputs traced by position) that HubSpot did not make:
        its 207 errors name their inputs' ``objectWriteTraceId``; an error naming none, or an input neither made nor
        refused, fails every note not known to be made (a retry reads back which exist before making any)."""
        made = {str(r["objectWriteTraceId"]) for r in outcome.results if r.get("objectWriteTraceId") is not None}
        refused: dict[str, str] = {}
        vague: str | None = None
        for error in outcome.errors:
            why = f"HubSpot refused the note: {error.get('category', '')} {error.get('message', '')}".strip()
            traces = (error.get("context") or {}).get("objectWriteTraceId") or []
            for trace in traces:
                if str(trace).isdigit() and int(trace) < len(sent):
                    refused[sent[int(trace)]] = why
            if not traces:
                vague = vague or why
        if not made and len(outcome.results) + len(refused) == len(sent) and vague is None:
            return refused  # results without trace ids: every note not refused was made
        for index, email in enumerate(sent):
            if email not in refused and str(index) not in made:
                refused[email] = vague or "HubSpot did not return this note"
        return refused

    @staticmethod
    def _notes_made(client: HubSpotClient, wanted: dict[str, tuple[str, str]]) -> set[str]:
        """The emails among ``wanted`` (email -> (contact id, enrichment request)) whose note HubSpot already has."""
        if not wanted:
            return set()
        by_contact = client.associations("contacts", "notes", sorted({cid for cid, _ in wanted.values()}))
        note_ids = sorted({n for ids in by_contact.values() for n in ids})
        bodies = {
            str(r["id"]): str((r.get("properties") or {}).get("hs_note_body") or "")
            for r in (client.read("notes", note_ids, ["hs_note_body"]).results if note_ids else [])
        }
        made = set()
        for email, (contact_id, request_id) in wanted.items():
            marker = note_marker(request_id)
            if any(bodies.get(n, "").endswith(marker) for n in by_contact.get(contact_id, [])):
                made.add(email)
        if made:
            logger.info("notes found already made by an earlier attempt", extra={"contacts": len(made)})
        return made

    # ------------------------------------------------------------------------------------------ state

    def _start(self, contact: Contact | None, now: datetime) -> Contact | Unchanged:
        if contact is None:
            return UNCHANGED
        after = contact.model_copy(deep=True)
        after.status = PipelineStatus.SYNCING
        after.status_reason = None
        after.updated_at = now
        return after

    def _fail(self, contact: Contact, error: str, now: datetime, request_id: str, *, attempt: bool = True) -> Contact:
        after = contact.model_copy(deep=True)
        after.hubspot = (after.hubspot or HubSpotRef()).model_copy(update={"request_id": request_id})
        previous = contact.failure.attempts if contact.failure and contact.failure.stage == "sync" else 0
        attempts = previous + 1 if attempt else previous
        retry = now + RETRY_DELAY if attempts < MAX_RETRIES else None
        after.status = PipelineStatus.FAILED
        after.status_reason = "sync failed" + ("" if retry else f" {attempts} times; not retried")
        after.failure = Failure(stage="sync", error=error[:1000], attempts=attempts, next_retry_at=retry)
        after.updated_at = now
        return after

    def _finish_failed(self, ws: str, contacts: dict[str, Contact], error: str, report: SyncReport) -> None:
        """Every contact of the attempt fails (its writes may have gone through: they are no longer counted as
        synced), stamped with when it failed."""
        emails = list(contacts)
        for email in emails:
            report.fail(email, error)
        ended = self.clock()
        self.contacts.upsert(
            ws,
            emails,
            lambda e, c: self._fail(c, error, ended, report.request_id) if c is not None else UNCHANGED,
            known=contacts,
        )
        count("SyncFailed", len(emails))

    @staticmethod
    def _summary(report: SyncReport) -> dict[str, Any]:
        return {
            "created": len(report.created),
            "updated": len(report.updated),
            "unchanged": len(report.unchanged),
            "failed": len(report.failed),
            "skipped": len(report.skipped),
            "already_done": len(report.already_done),
            "companies_created": report.companies_created,
            "associations": report.associations,
            "notes": report.notes,
            "hubspot_calls": report.hubspot_calls,
            "throttled": report.throttled,
            "mapping_problems": report.mapping_problems,
            "company_errors": report.company_errors,
        }

    def _log(self, workspace: str, report: SyncReport, now: datetime) -> None:
        """The sync log: one entry per batch, kept 30 days."""
        entry = {
            "pk": f"SL#{workspace}",
            "sk": f"{iso(now)}#{report.request_id}#{uuid.uuid4().hex[:6]}",
            "request_id": report.request_id,
            "at": iso(now),
            **self._summary(report),
            "errors": [{"email": e, "error": m} for e, m in list(report.failed.items())[:20]],
            "expires_at": int(now.timestamp()) + LOG_DAYS * 86_400,
        }
        self.dynamodb.put_item(TableName=self.state_table, Item=to_item(entry))

    def recent_log(self, workspace: str, limit: int = 20) -> list[dict[str, Any]]:
        return recent_sync_log(self.dynamodb, self.state_table, workspace, limit)


def recent_sync_log(dynamodb: Any, state_table: str, workspace: str, limit: int = 20) -> list[dict[str, Any]]:
    """The latest sync log entries of a workspace, newest first."""
    response = dynamodb.query(
        TableName=state_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"SL#{workspace}"}},
        ScanIndexForward=False,
        Limit=limit,
    )
    out = []
    for item in response.get("Items", []):
        data = from_item(item)
        for key in ("pk", "sk", "expires_at"):
            data.pop(key, None)
        out.append(data)
    return out
