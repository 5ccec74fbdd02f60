"""Re-import: HubSpot contact changes (ChangeQueue messages from the webhook intake and the poller) compared with the
stored contacts.

A message says *which* records changed, not their new values: the changed records are read back from HubSpot in
batches, so repeated and out-of-order deliveries converge on HubSpot's latest state. Then, per contact:

- a value equal to what leadpipe last wrote there is its own write coming back (an echo): ignored; so is a change
  whose webhook says ``changeSource: INTEGRATION`` from leadpipe's own app. Once a person's edit of a property has
  been taken in, HubSpot no longer holds leadpipe's value there, so that value seen again is the person undoing
  their edit, and is taken in like any other (the final state is HubSpot's latest, whatever came in between);
- a value already seen (``hubspot.observed``) is not new either: a later poll or a repeated event changes nothing;
- any other value a person put there is taken in: the contact's own field is updated (a custom field too), and the
  value is remembered as observed;
- a significant change (email, name, company, website/domain, title, or a field leadpipe enriches) restarts the
  loop: the contact goes back to ``imported`` and ``contacts.imported`` is published, so it is enriched and synced
  again; anything else (phone, city, ...) only updates the record;
- a record leadpipe does not know (created in HubSpot by a person) is imported as a new contact;
- ``contact.deletion`` / ``contact.privacyDeletion`` erase the contact and its cached enrichment answers; a
  ``privacyDeletion`` (HubSpot's GDPR delete) also puts the person on the suppression list;
- a record whose email is on the suppression list (erased at the person's request) is never taken in: neither
  created again nor merged into anything (``refused``).

Webhook events are deduplicated on eventId + subscriptionId + occurredAt, recorded once the message has been
handled (a crash before that replays it, harmlessly: the comparison is idempotent). A contact in the middle of a
sync is looked at again a minute later (the message is sent back with a delay), so leadpipe's own write in flight is
not mistaken for a person's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadpipe.contacts import UNCHANGED, ContactChange, ContactRepository, Unchanged
from leadpipe.dynamo import batch_get, batch_write, from_item, to_item
from leadpipe.enrichment.cache import EnrichmentCache
from leadpipe.enrichment.fields import Kind
from leadpipe.enrichment.http import Budget
from leadpipe.enrichment.keys import ProviderKeys
from leadpipe.errors import BadRequest, LeadpipeError, TransientError
from leadpipe.events import EventPublisher
from leadpipe.hubspot.client import HubSpotClient
from leadpipe.hubspot.mapping import CUSTOM_PREFIX, PropertyMapping
from leadpipe.models import (
    DETAIL_CONTACTS_IMPORTED,
    ChangeMessage,
    Contact,
    ContactsImported,
    HubSpotRef,
    ObjectChange,
    PipelineStatus,
    SourceRef,
    utcnow,
)
from leadpipe.normalize import FieldProblem, company_domain, domain_from_website, email_domain, normalize_email
from leadpipe.observability import count, logger
from leadpipe.queueing import send_batch
from leadpipe.settings import Settings
from leadpipe.suppression import SuppressionList
from leadpipe.workspaces import WorkspaceRepository

SOURCE = "hubspot"
DEDUPE_TTL_SECONDS = 7 * 24 * 3600  # HubSpot retries a delivery for up to 3 days
DEFER_SECONDS = 60  # a contact being synced is looked at again after this long
MAX_DEFERRALS = 5
EVENTS_PER_MESSAGE = 500

# The contact's own fields a person may edit in HubSpot, and which of them restart the loop.
OWN_FIELDS = ("first_name", "last_name", "company", "title", "phone", "website", "city", "country", "linkedin")
SIGNIFICANT_OWN = frozenset({"first_name", "last_name", "company", "title", "website"})
COMPUTED = frozenset({"quality", "confidence", "sources", "enriched_at", "icp_fit"})  # leadpipe's outputs, not data
ALWAYS_READ = ("email", "firstname", "lastname", "company", "jobtitle", "website", "lastmodifieddate", "hs_object_id")

HubSpotFactory = Callable[[str, int, Budget], HubSpotClient]


@dataclass
class ChangeReport:
    workspace: str
    received: int = 0
    duplicates: int = 0
    echoes: int = 0
    deleted: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)  # significant change: back through the loop
    updated: list[str] = field(default_factory=list)  # taken in, nothing significant
    unchanged: list[str] = field(default_factory=list)  # nothing new (echo or already observed)
    deferred: list[str] = field(default_factory=list)  # HubSpot ids looked at again later
    gone: list[str] = field(default_factory=list)  # HubSpot ids HubSpot no longer has
    refused: dict[str, str] = field(default_factory=dict)  # HubSpot id -> why its record could not be taken in

    def summary(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "duplicates": self.duplicates,
            "echoes": self.echoes,
            "deleted": len(self.deleted),
            "created": len(self.created),
            "restarted": len(self.restarted),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "deferred": len(self.deferred),
            "gone": len(self.gone),
            "refused": len(self.refused),
        }


@dataclass(frozen=True)
class Outcome:
    contact: Contact | Unchanged
    kind: str  # created | restarted | updated | unchanged


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def take_in(
    before: Contact,
    record: Mapping[str, Any],
    mapping: Sequence[PropertyMapping],
    now: datetime,
) -> Outcome:
    """Compare one stored contact with HubSpot's record of it; a pure function of both (re-run on a write conflict).

    A property counts as changed by a person when HubSpot's value is neither what leadpipe last wrote (and HubSpot
    still holds: a person's edit taken in since forgets it), nor a value already observed, nor what leadpipe would
    write now."""
    from leadpipe.hubspot.mapping import value_of  # a cycle at import time otherwise

    ref = before.hubspot or HubSpotRef()
    written, observed = ref.written, ref.observed
    after = before.model_copy(deep=True)
    after_ref = after.hubspot or HubSpotRef()
    changed, significant = False, False
    for entry in mapping:
        prop, source = entry.property, entry.source
        if prop not in record:
            continue
        value = _text(record.get(prop))
        if value is None:
            # An empty property is a person's deletion only where HubSpot held a value (one leadpipe wrote, or one
            # already seen there); otherwise HubSpot simply never had it, and leadpipe's data is kept.
            if (prop not in written and not observed.get(prop)) or observed.get(prop) == "":
                continue
            value_seen = ""
        else:
            value_seen = value
        if value is not None and (value == written.get(prop) or value == value_of(before, source)):
            continue
        if observed.get(prop) == value_seen:
            continue
        after_ref.observed[prop] = value_seen
        # HubSpot no longer holds what leadpipe wrote there last: that value seen there again is a person undoing
        # their edit, not leadpipe's own write coming back (a sync that writes the property records it again).
        after_ref.written.pop(prop, None)
        changed = True
        if source in COMPUTED:
            continue
        if source.startswith(CUSTOM_PREFIX):
            key = source.removeprefix(CUSTOM_PREFIX)
            if value is None:
                after.custom.pop(key, None)
            else:
                after.custom[key] = value
        elif source in OWN_FIELDS:
            setattr(after, source, value)
            if source == "website":
                website = domain_from_website(value) if value else None
                after.domain = company_domain(after.email, website) or after.domain
            significant |= source in SIGNIFICANT_OWN
        else:  # a field leadpipe enriches (industry, seniority, ...): the person's value is kept in HubSpot
            significant = True
    if not changed:
        return Outcome(UNCHANGED, "unchanged")
    after.hubspot = after_ref
    after.updated_at = now
    after.sources = [*after.sources, SourceRef(source=SOURCE, ref=after_ref.contact_id, at=now, effect="updated")][-20:]
    if significant:
        after.status = PipelineStatus.IMPORTED
        after.status_reason = "changed in HubSpot"
        after.failure = None
        return Outcome(after, "restarted")
    return Outcome(after, "updated")


def new_contact(
    workspace: str, email: str, record: Mapping[str, Any], contact_id: str, now: datetime, *, source: str = SOURCE
) -> Contact:
    """A contact made from a HubSpot record (one a person created there, a closed deal's contact), with what HubSpot
    has; the values are recorded as observed, so they are not taken for a person's edit later."""
    website = _text(record.get("website"))
    website_domain = domain_from_website(website) if website else None
    names = {
        "first_name": _text(record.get("firstname")),
        "last_name": _text(record.get("lastname")),
        "company": _text(record.get("company")),
        "title": _text(record.get("jobtitle")),
        "website": website,
    }
    seen = {p: str(v) for p, v in record.items() if v not in (None, "") and p not in ("lastmodifieddate", "createdate")}
    return Contact(
        workspace=workspace,
        email=email,
        email_domain=email_domain(email),
        domain=company_domain(email, website_domain),
        **{k: v for k, v in names.items() if v},
        hubspot=HubSpotRef(contact_id=contact_id, observed=seen),
        sources=[SourceRef(source=source, ref=contact_id, at=now, effect="created")],
        status=PipelineStatus.IMPORTED,
        created_at=now,
        updated_at=now,
    )


class ChangeService:
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
        cache: EnrichmentCache | None = None,
        hubspot: HubSpotFactory | None = None,
        suppression: SuppressionList | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.contacts = contacts
        self.suppression = suppression
        self.dynamodb = dynamodb
        self.state_table = state_table
        self.publisher = publisher
        self.sqs = sqs
        self.settings = settings
        self.keys = keys
        self.workspaces = workspaces
        self.cache = cache
        self.hubspot = hubspot or (
            lambda token, burst, budget: HubSpotClient(
                token, base_url=settings.hubspot_base_url, burst_limit=burst, budget=budget
            )
        )
        self.clock = clock

    def handle_message(self, body: str, *, budget: Budget) -> ChangeReport:
        try:
            message = ChangeMessage.model_validate_json(body)
        except ValueError as exc:
            raise BadRequest(f"unrecognised ChangeQueue message: {body[:200]!r}", code="bad_message") from exc
        return self.apply(message, budget)

    # ------------------------------------------------------------------------------------------ the message

    def apply(self, message: ChangeMessage, budget: Budget) -> ChangeReport:
        ws = message.workspace
        report = ChangeReport(ws, received=len(message.changes))
        hub = self.workspaces.get(ws).hubspot
        keys = [c.dedupe_key for c in message.changes if c.dedupe_key]
        seen = self._seen(ws, keys)
        fresh = [c for c in message.changes if not (c.dedupe_key and c.dedupe_key in seen)]
        report.duplicates = len(message.changes) - len(fresh)
        own_app = str(hub.app_id) if hub.app_id else None
        work: list[ObjectChange] = []
        for change in fresh:
            if change.kind == "change" and change.change_source == "INTEGRATION" and change.source_id == own_app:
                report.echoes += 1
            else:
                work.append(change)
        deletions = list(dict.fromkeys(c.object_id for c in work if c.kind == "deletion"))
        changed = [i for i in dict.fromkeys(c.object_id for c in work if c.kind == "change") if i not in deletions]
        if deletions:
            private = {c.object_id for c in work if c.kind == "deletion" and c.privacy}
            self._erase(ws, deletions, report, private)
        if changed:
            self._reimport(ws, changed, message, budget, report)
        self._remember(ws, [c.dedupe_key for c in fresh if c.dedupe_key])
        restart = report.created + report.restarted
        if restart:
            self.publisher.publish(
                DETAIL_CONTACTS_IMPORTED,
                [
                    ContactsImported(workspace=ws, source=SOURCE, emails=restart[i : i + 100])
                    for i in range(0, len(restart), 100)
                ],
            )
        count("HubSpotChangesReceived", report.received)
        count("HubSpotChangesRestarted", len(restart))
        logger.info("hubspot changes handled", extra={"workspace": ws, "summary": report.summary()})
        return report

    # ------------------------------------------------------------------------------------------ steps

    def _reimport(
        self, ws: str, object_ids: list[str], message: ChangeMessage, budget: Budget, report: ChangeReport
    ) -> None:
        token = self.keys.secret(ws, "hubspot/token", "HUBSPOT_TOKEN")
        if not token:
            raise LeadpipeError(
                f"workspace {ws}: no HubSpot access token to read the changed contacts with", code="no_hubspot_token"
            )
        settings = self.workspaces.get(ws)
        mapping = list(settings.sync.mapping)
        properties = list(dict.fromkeys([*ALWAYS_READ, *(m.property for m in mapping)]))
        with self.hubspot(token, settings.sync.burst_limit, budget) as client:
            outcome = client.read("contacts", object_ids, properties)  # ≤100 ids a call
        records: dict[str, dict[str, Any]] = {}
        for result in outcome.results:
            records[str(result["id"])] = dict(result.get("properties") or {})
        report.gone.extend(i for i in object_ids if i not in records)

        by_email: dict[str, str] = {}
        for object_id, record in records.items():
            try:
                email = normalize_email(str(record.get("email") or ""))
            except FieldProblem as exc:
                report.refused[object_id] = f"HubSpot record {object_id} has no usable email: {exc}"
                continue
            by_email[email] = object_id
        barred = self.suppression.suppressed(ws, list(by_email)) if self.suppression and by_email else {}
        for email, reason in barred.items():  # erased here: HubSpot's copy never brings it back
            report.refused[by_email.pop(email)] = f"the contact's email is suppressed ({reason}): not taken in again"
        stored = self.contacts.batch_get(ws, list(by_email))
        unknown = [i for e, i in by_email.items() if e not in stored]
        # not found by email: maybe known by its HubSpot id under an email a person has since changed there
        moved = self.contacts.emails_for_hubspot_ids(ws, unknown) if unknown else {}  # object id -> old email

        defer_ids = [
            object_id
            for email, object_id in by_email.items()
            if email in stored and stored[email].status is PipelineStatus.SYNCING
        ]
        if defer_ids and message.attempt < MAX_DEFERRALS:
            self._defer(message, defer_ids)
            report.deferred.extend(defer_ids)
            skip = set(defer_ids)
            by_email = {e: i for e, i in by_email.items() if i not in skip}

        now = self.clock()
        if moved:
            self._move(ws, moved, records, by_email, mapping, now, report)
        kinds: dict[str, str] = {}

        def mutate(email: str, before: Contact | None) -> Contact | Unchanged:
            object_id = by_email[email]
            if before is None:
                kinds[email] = "created"
                return new_contact(ws, email, records[object_id], object_id, now)
            result = take_in(before, records[object_id], mapping, now)
            kinds[email] = result.kind
            after = result.contact
            if isinstance(after, Contact) and after.hubspot is not None and not after.hubspot.contact_id:
                after.hubspot.contact_id = object_id
            return after

        targets = [e for e, i in by_email.items() if i not in moved]
        self.contacts.upsert(ws, targets, mutate, known={e: stored.get(e) for e in targets})
        for email in targets:
            getattr(report, kinds.get(email, "unchanged")).append(email)

    def _move(
        self,
        ws: str,
        moved: dict[str, str],
        records: dict[str, dict[str, Any]],
        by_email: dict[str, str],
        mapping: Sequence[PropertyMapping],
        now: datetime,
        report: ChangeReport,
    ) -> None:
        """Emails changed in HubSpot: the stored contact moves to its new email (a significant change)."""
        new_email = {object_id: email for email, object_id in by_email.items()}
        old = self.contacts.batch_get(ws, list(moved.values()))
        changes: list[ContactChange] = []
        for object_id, old_email in moved.items():
            before = old.get(old_email)
            if before is None or object_id not in new_email:
                continue
            email = new_email[object_id]
            moved_contact = before.model_copy(
                deep=True,
                update={"email": email, "email_domain": email_domain(email), "version": 0},
            )
            result = take_in(moved_contact, records[object_id], mapping, now)
            after = result.contact if isinstance(result.contact, Contact) else moved_contact
            after.status = PipelineStatus.IMPORTED
            after.status_reason = f"email changed in HubSpot (was {old_email})"
            after.updated_at = now
            changes.extend([ContactChange(before, None), ContactChange(None, after)])
            report.restarted.append(email)
        if changes:
            saved = self.contacts.save(changes)
            if saved.conflicts:
                raise TransientError("a contact whose email changed in HubSpot changed here too; retrying")

    def _erase(self, ws: str, object_ids: list[str], report: ChangeReport, private: set[str] | None = None) -> None:
        emails = self.contacts.emails_for_hubspot_ids(ws, object_ids)
        if self.suppression is not None:
            # a GDPR deletion in HubSpot is the person's request: leadpipe must not take them in again either
            for object_id, email in emails.items():
                if object_id in (private or set()):
                    self.suppression.add(ws, email, "erased")
        stored = self.contacts.batch_get(ws, list(emails.values()))
        changes = [ContactChange(c, None) for c in stored.values()]
        if changes:
            saved = self.contacts.save(changes)
            if saved.conflicts:
                raise TransientError("a contact deleted in HubSpot changed here meanwhile; retrying the erasure")
        if self.cache is not None and stored:
            self.cache.delete_keys(self.settings.provider_order, Kind.PERSON, list(stored))
        report.deleted.extend(stored)

    def _defer(self, message: ChangeMessage, object_ids: Iterable[str]) -> None:
        wanted = set(object_ids)
        changes = [c for c in message.changes if c.object_id in wanted]
        retry = message.model_copy(update={"changes": changes, "attempt": message.attempt + 1})
        send_batch(self.sqs, self.settings.change_queue_url, [retry.model_dump_json()], DEFER_SECONDS)

    def _seen(self, ws: str, keys: Sequence[str]) -> set[str]:
        if not keys:
            return set()
        items = batch_get(
            self.dynamodb,
            self.state_table,
            [{"pk": {"S": f"HOOK#{ws}"}, "sk": {"S": k}} for k in dict.fromkeys(keys)],
        )
        return {str(from_item(i)["sk"]) for i in items}

    def _remember(self, ws: str, keys: Sequence[str]) -> None:
        if not keys:
            return
        expires = int(time.time()) + DEDUPE_TTL_SECONDS
        batch_write(
            self.dynamodb,
            self.state_table,
            [
                {"PutRequest": {"Item": to_item({"pk": f"HOOK#{ws}", "sk": k, "expires_at": expires})}}
                for k in dict.fromkeys(keys)
            ],
        )
