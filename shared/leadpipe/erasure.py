"""Erasure of one person (GDPR art. 17): ``DELETE /contacts/{email}``, everywhere leadpipe keeps data on them in
the caller's workspace. What is left is one suppression entry: a salted hash of the email that import, re-import
and enrichment check first, so the person never comes back.

In this order (each step idempotent, so repeating the request is harmless and finishes an interrupted one):

1. **Suppression entry** (``leadpipe.suppression``), first: an import, a HubSpot re-import or an enrichment running
   while the rest is erased already refuses the email. Added even when leadpipe never had the email.
2. **The contact**, through ``ContactRepository`` (a ``ContactChange(before, None)`` in one transaction with its tag
   member items and the status counters, conditioned on the version read).
3. **Person-level enrichment cache entries**: every known provider's answer keyed by this email (found or "not
   found"). Company entries (keyed by domain) are not personal data and stay. The cache is shared by the
   deployment's workspaces, so it is erased only when the contact existed in the caller's workspace (whose
   enrichment wrote or used those answers); another workspace that has the person too simply asks the provider
   again. A workspace that never had the email neither deletes nor learns anything about what others cached.
4. **Import jobs**: row errors that carry the email (in their value or message), and errors at rows the contact
   came from (its ``sources`` name job and row), get a neutral message and lose their value; their row number,
   field and code stay, so every job's counts still add up. The jobs searched are those the contact's sources name
   plus the workspace's newest ``max_jobs``.
5. **Source files**: the uploaded CSV of every *finished* job the contact came from (or whose row errors carried
   the email) is deleted from the uploads bucket. The file holds the email and the rest of the person's row, and a
   finished job never reads its file again (progress, counts and row errors live in the job), so deleting it loses
   only the original upload, whose other rows are already imported. Rewriting the file without the row instead
   would mean streaming a copy of a possibly very large file inside a 29-second request and would invalidate the
   byte offsets the job recorded. Files of jobs still running are kept (deleting them would fail the import for
   everyone else in the file): their import refuses the erased row, the bucket's lifecycle rule deletes every file
   after ``UploadRetentionDays``, and the report says ``complete: false`` with the job ids. Their ids are kept on the
   suppression entry (job ids are not personal data), so repeating the request once they have finished deletes the
   files even though the contact, whose sources named the jobs, is gone by then.
6. **Sync log** errors naming the email and **closed-deal** contacts with the email (state table) are redacted.
7. **Dead-letter queues**: messages of this workspace that mention the email are removed. A message naming other
   contacts too (an enrich or sync request, a batch of HubSpot changes) is sent back to its DLQ without this
   contact, then the original deleted; others are left as they were. Messages are received with a short visibility
   timeout, held invisible while the queue is read, and made visible again at the end (visibility 0). The work is
   bounded (``max_dlq_messages`` per queue, ``dlq_seconds`` in all): when a bound is hit, ``complete`` is false.
   Messages in the live queues are made harmless by their consumers instead: import and HubSpot re-import refuse a
   suppressed email, enrichment skips a suppressed contact and leaves a missing one alone, sync skips a missing
   contact.
8. **HubSpot**, only when asked (``hubspot=true``): ``gdpr-delete`` by email, last, so a HubSpot failure leaves the
   local erasure done and the request can simply be repeated.

The report says what was erased; it never logs the email.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from botocore.exceptions import ClientError

from leadpipe.contacts import ContactRepository
from leadpipe.dynamo import batch_write, error_code, from_item, to_attr, to_item
from leadpipe.enrichment.cache import EnrichmentCache
from leadpipe.enrichment.fields import Kind
from leadpipe.enrichment.gaps import GapRetries
from leadpipe.enrichment.providers.base import ProviderError
from leadpipe.hubspot.client import HubSpotClient
from leadpipe.jobs import JobRepository, job_key
from leadpipe.models import Contact, ImportSource, JobStatus
from leadpipe.observability import count, logger
from leadpipe.suppression import SuppressionList

ERASED = "erased"  # the suppression reason
REDACTED = "redacted: this row's data was erased at the person's request"
REDACTED_SYNC_ERROR = {"email": "(erased)", "error": "erased at the person's request"}
FILE_SOURCES = frozenset({ImportSource.API, ImportSource.UPLOAD, ImportSource.S3})
DLQ_VISIBILITY_SECONDS = 30  # longer than the API function's 29 s: held messages stay hidden for the whole pass
STATE_PAGES = 20  # pages (≤1 MB each) read from a state-table partition (sync log, deals) per request

HubSpotStatus = Literal["deleted", "not_found", "skipped", "failed"]
HubSpotFactory = Callable[[str], HubSpotClient | None]  # workspace -> a client, or None without a token


@dataclass
class HubSpotOutcome:
    status: HubSpotStatus
    message: str | None = None


@dataclass
class ErasureReport:
    workspace: str
    email: str
    contact: bool = False  # the contact existed and was deleted
    cache_entries: int = 0
    job_row_errors: int = 0
    source_files: int = 0
    sync_log_errors: int = 0
    deal_contacts: int = 0
    dlq_messages: int = 0
    hubspot: HubSpotOutcome = field(
        default_factory=lambda: HubSpotOutcome("skipped", "not asked (hubspot=true asks HubSpot to gdpr-delete it)")
    )
    suppressed: bool = False
    complete: bool = True  # false: something could not be erased in this request (see notes); repeat it later
    notes: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        if self.contact:
            return f"{self.email} was erased and is now suppressed: it will not be imported or enriched again"
        return f"no contact {self.email} in this workspace; the email is now suppressed all the same"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "message": self.message}

    def counts(self) -> dict[str, Any]:
        """What may be logged: counts only, never the email."""
        data = self.as_dict()
        for key in ("email", "message", "notes"):
            data.pop(key)
        data["hubspot"] = self.hubspot.status
        return data


def needles(email: str) -> tuple[str, ...]:
    """The forms of a normalised email that may appear in stored text: as is, and with its domain in Unicode when
    it is an IDNA (``xn--``) domain (a row error keeps the value as the file had it)."""
    forms = [email]
    local, _, domain = email.rpartition("@")
    if "xn--" in domain:
        with contextlib.suppress(UnicodeError):
            forms.append(f"{local}@{domain.encode('ascii').decode('idna')}")
    return tuple(dict.fromkeys(f.lower() for f in forms))


def pattern(email: str) -> re.Pattern[str]:
    """The email as a whole word of any text, case-insensitively: ``ann@acme.com`` is found in ``<ann@acme.com>``
    or ``ann@acme.com;x``, not in ``joann@acme.com`` or ``ann@acme.com.evil.io`` (someone else's address)."""
    forms = "|".join(re.escape(f) for f in needles(email))
    return re.compile(rf"(?<![\w.!#$%&'*+/=?^`{{|}}~-])(?:{forms})(?![\w-]|\.[\w-])", re.IGNORECASE)


def mentions(value: Any, forms: re.Pattern[str]) -> bool:
    """Whether a JSON-like value names the email anywhere (in a string, as a whole address; see ``pattern``)."""
    if isinstance(value, str):
        return forms.search(value) is not None
    if isinstance(value, dict):
        return any(mentions(k, forms) or mentions(v, forms) for k, v in value.items())
    if isinstance(value, list):
        return any(mentions(v, forms) for v in value)
    return False


def _strip(value: Any, forms: re.Pattern[str]) -> tuple[Any, bool, bool]:
    """``value`` without the list elements that name the email; whether a list was emptied by that; whether the
    email is also named outside any list (then the message as a whole is about it)."""
    if isinstance(value, list):
        kept = [v for v in value if not mentions(v, forms)]
        return kept, bool(value) and not kept, False
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        emptied = outside = False
        for key, item in value.items():
            outside |= mentions(key, forms)
            if isinstance(item, list | dict):
                out[key], was_emptied, was_outside = _strip(item, forms)
                emptied |= was_emptied
                outside |= was_outside
            else:
                outside |= mentions(item, forms)
                out[key] = item
        return out, emptied, outside
    return value, False, mentions(value, forms)


class Verdict:
    """What to do with one queued message."""

    KEEP = "keep"
    DELETE = "delete"


def scrub_message(body: str, workspace: str, email: str, default_workspace: str) -> str:
    """``Verdict.KEEP`` (not this workspace's, or it does not name the email), ``Verdict.DELETE`` (it is about the
    email alone, or cannot be told apart), or the message's new body without the email (it names others too).

    A message's workspace is its ``workspace`` (leadpipe's messages) or ``detail.workspace`` (EventBridge events);
    one without (an S3 notification, a body that is not JSON) belongs to the deployment's default workspace."""
    forms = pattern(email)
    try:
        data: Any = json.loads(body)
    except ValueError:
        if not mentions(body, forms):
            return Verdict.KEEP
        return Verdict.DELETE if workspace == default_workspace else Verdict.KEEP
    owner: Any = None
    if isinstance(data, dict):
        owner = data.get("workspace")
        detail = data.get("detail")
        if owner is None and isinstance(detail, dict):
            owner = detail.get("workspace")
    if (owner if isinstance(owner, str) else default_workspace) != workspace or not mentions(data, forms):
        return Verdict.KEEP
    cleaned, emptied, outside = _strip(data, forms)
    if emptied or outside:
        return Verdict.DELETE
    return json.dumps(cleaned, separators=(",", ":"), ensure_ascii=False)


class ErasureService:
    def __init__(
        self,
        *,
        contacts: ContactRepository,
        jobs: JobRepository,
        dynamodb: Any,
        state_table: str,
        cache: EnrichmentCache,
        suppression: SuppressionList,
        providers: Iterable[str],
        s3: Any,
        uploads_bucket: str,
        sqs: Any,
        dlqs: Mapping[str, str],
        default_workspace: str = "default",
        hubspot: HubSpotFactory | None = None,
        max_jobs: int = 1000,
        max_dlq_messages: int = 500,
        dlq_seconds: float = 8.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.contacts = contacts
        self.jobs = jobs
        self.dynamodb = dynamodb
        self.state_table = state_table
        self.cache = cache
        self.suppression = suppression
        self.providers = list(dict.fromkeys(providers))
        self.s3 = s3
        self.uploads_bucket = uploads_bucket
        self.sqs = sqs
        self.dlqs = dict(dlqs)
        self.default_workspace = default_workspace
        self.hubspot = hubspot
        self.max_jobs = max_jobs
        self.max_dlq_messages = max_dlq_messages
        self.dlq_seconds = dlq_seconds
        self.clock = clock

    def erase(self, workspace: str, email: str, *, hubspot: bool = False) -> ErasureReport:
        """Erase a normalised email from ``workspace`` (see the module's docstring for what and in which order)."""
        report = ErasureReport(workspace=workspace, email=email)
        self.suppression.add(workspace, email, ERASED)
        report.suppressed = True
        before = self._contact(workspace, email, report)
        if before is not None:  # the cache is shared: see the module's docstring
            report.cache_entries = self.cache.erase(self.providers, Kind.PERSON, [email])
        self._jobs(workspace, email, before, report)
        self._sync_log(workspace, email, report)
        self._deals(workspace, email, report)
        if self.state_table:
            GapRetries(self.dynamodb, self.state_table).forget(workspace, email)
        self._dlqs(workspace, email, report)
        if hubspot:
            report.hubspot = self._hubspot(workspace, email)
        count("ContactsErased", 1 if report.contact else 0)
        logger.info("erasure done", extra={"erasure": report.counts()})
        return report

    # ------------------------------------------------------------------------------------------ steps

    def _contact(self, workspace: str, email: str, report: ErasureReport) -> Contact | None:
        seen: dict[str, Contact] = {}

        def delete(key: str, stored: Contact | None) -> None:
            if stored is None:
                seen.pop(key, None)
            else:
                seen[key] = stored

        self.contacts.upsert(workspace, [email], delete)
        before = seen.get(email)
        report.contact = before is not None
        return before

    def _jobs(self, workspace: str, email: str, before: Contact | None, report: ErasureReport) -> None:
        forms = pattern(email)
        rows: dict[str, set[int]] = {}  # job id -> rows the contact came from
        for source in before.sources if before else []:
            if source.job_id:
                rows.setdefault(source.job_id, set()).update([source.row] if source.row else [])
        pending = self.suppression.pending_jobs(workspace, email)  # still running at an earlier erasure
        for job_id in pending:
            rows.setdefault(job_id, set())
        jobs: dict[str, dict[str, Any]] = {}
        for named in self.jobs.get_many(workspace, rows).values():
            jobs[named.job_id] = named.model_dump(mode="json")
        scanned, start = 0, None
        while scanned < self.max_jobs:
            request: dict[str, Any] = {
                "TableName": self.state_table,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": job_key(workspace, "")["pk"]},
                "ProjectionExpression": "sk, #errors, #status, #source, #bucket, #key",
                "ExpressionAttributeNames": {
                    "#errors": "errors",
                    "#status": "status",
                    "#source": "source",
                    "#bucket": "bucket",
                    "#key": "key",
                },
                "ScanIndexForward": False,
                "Limit": min(100, self.max_jobs - scanned),
            }
            if start:
                request["ExclusiveStartKey"] = start
            response = self.dynamodb.query(**request)
            for item in response.get("Items", []):
                data = from_item(item)
                jobs.setdefault(str(data.pop("sk")), data)
            scanned += len(response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if not start:
                break
        else:
            report.complete = False
            report.notes.append(
                f"only the newest {self.max_jobs} import jobs (and those the contact came from) were searched for "
                "row errors naming the email"
            )

        files: list[tuple[str, str]] = []  # (job id, key)
        running: list[str] = []
        for job_id, job in jobs.items():
            named_rows = rows.get(job_id, set())
            positions = [
                i
                for i, error in enumerate(job.get("errors") or [])
                if error.get("message") != REDACTED
                and (error.get("row") in named_rows or mentions([error.get("value"), error.get("message")], forms))
            ]
            if positions:
                try:
                    self.jobs.redact_errors(workspace, job_id, positions, REDACTED)
                except ClientError as exc:
                    if error_code(exc) != "ConditionalCheckFailedException":
                        raise
                    continue  # the job was deleted meanwhile
                report.job_row_errors += len(positions)
            holds_email = job_id in rows or bool(positions)
            if not holds_email or job.get("source") not in FILE_SOURCES:
                continue
            if job.get("bucket") != self.uploads_bucket or not job.get("key"):
                continue
            if JobStatus(job.get("status", JobStatus.QUEUED)).terminal:
                files.append((job_id, str(job["key"])))
            else:
                running.append(job_id)
        if files:
            report.source_files += self._delete_files([key for _, key in files], report)
        if running:
            report.complete = False
            report.notes.append(
                "the source files of import jobs still running were kept (the import refuses the erased row; "
                f"repeat the request once they have finished): {', '.join(sorted(running))}"
            )
        if running or pending:
            self.suppression.set_pending_jobs(workspace, email, sorted(running))

    def _delete_files(self, keys: list[str], report: ErasureReport) -> int:
        deleted = 0
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            response = self.s3.delete_objects(
                Bucket=self.uploads_bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": False}
            )
            deleted += len(response.get("Deleted", []))
            for error in response.get("Errors", []):
                report.complete = False
                report.notes.append(f"a source file could not be deleted: {error.get('Code')} {error.get('Message')}")
        return deleted

    def _partition(self, pk: str, attributes: Sequence[str], report: ErasureReport, what: str) -> list[dict[str, Any]]:
        """A state-table partition's items (only ``attributes``), at most ``STATE_PAGES`` pages."""
        names = {f"#a{i}": name for i, name in enumerate(("sk", *attributes))}
        items: list[dict[str, Any]] = []
        start = None
        for _ in range(STATE_PAGES):
            request: dict[str, Any] = {
                "TableName": self.state_table,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": {"S": pk}},
                "ProjectionExpression": ", ".join(names),
                "ExpressionAttributeNames": names,
            }
            if start:
                request["ExclusiveStartKey"] = start
            response = self.dynamodb.query(**request)
            items.extend(from_item(i) for i in response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if not start:
                return items
        report.complete = False
        report.notes.append(f"the {what} is longer than one request reads; repeat the request to search the rest")
        return items

    def _sync_log(self, workspace: str, email: str, report: ErasureReport) -> None:
        forms = pattern(email)
        pk = f"SL#{workspace}"
        for entry in self._partition(pk, ("errors",), report, "sync log"):
            errors = entry.get("errors") or []
            if not mentions(errors, forms):
                continue
            redacted = [REDACTED_SYNC_ERROR if mentions(e, forms) else e for e in errors]
            self.dynamodb.update_item(
                TableName=self.state_table,
                Key={"pk": {"S": pk}, "sk": {"S": str(entry["sk"])}},
                UpdateExpression="SET #e = :e",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#e": "errors"},
                ExpressionAttributeValues={":e": to_attr(redacted)},
            )
            report.sync_log_errors += sum(1 for e in errors if mentions(e, forms))

    def _deals(self, workspace: str, email: str, report: ErasureReport) -> None:
        """Closed deals keep their contacts (name, title, email, role): the person is taken out of them."""
        forms = needles(email)  # the stored email of a deal's contact is normalised: compared whole
        pk = f"DEAL#{workspace}"
        puts: list[dict[str, Any]] = []
        for item in self._partition(pk, ("deal",), report, "closed-deal history"):
            deal = item.get("deal") or {}
            people = deal.get("contacts") or []
            kept = [p for p in people if str(p.get("email") or "").lower() not in forms]
            if len(kept) == len(people):
                continue
            report.deal_contacts += len(people) - len(kept)
            puts.append(
                {"PutRequest": {"Item": to_item({"pk": pk, "sk": item["sk"], "deal": {**deal, "contacts": kept}})}}
            )
        if puts:
            batch_write(self.dynamodb, self.state_table, puts)

    def _dlqs(self, workspace: str, email: str, report: ErasureReport) -> None:
        deadline = self.clock() + self.dlq_seconds
        for name, url in self.dlqs.items():
            removed, complete = self._scrub_queue(url, workspace, email, deadline)
            report.dlq_messages += removed
            if not complete:
                report.complete = False
                report.notes.append(
                    f"the {name} DLQ holds more messages than one request reads; repeat the request to search the rest"
                )

    def _scrub_queue(self, url: str, workspace: str, email: str, deadline: float) -> tuple[int, bool]:
        attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        depth = int((attributes.get("Attributes") or {}).get("ApproximateNumberOfMessages", 0))
        if depth == 0:
            return 0, True
        held: list[str] = []
        removed = seen = 0
        complete = True
        try:
            while True:
                if seen >= self.max_dlq_messages or self.clock() >= deadline:
                    complete = False
                    break
                got = self.sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=10,
                    VisibilityTimeout=DLQ_VISIBILITY_SECONDS,
                    WaitTimeSeconds=0 if seen >= depth else 1,
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
                if not got:
                    break
                seen += len(got)
                drop: list[dict[str, Any]] = []
                resend: list[dict[str, Any]] = []
                for message in got:
                    verdict = scrub_message(message["Body"], workspace, email, self.default_workspace)
                    if verdict == Verdict.KEEP:
                        held.append(message["ReceiptHandle"])
                        continue
                    drop.append(message)
                    if verdict != Verdict.DELETE:
                        entry: dict[str, Any] = {"Id": str(len(resend)), "MessageBody": verdict}
                        if message.get("MessageAttributes"):
                            entry["MessageAttributes"] = message["MessageAttributes"]
                        resend.append(entry)
                if resend:  # the others' part goes back first: a crash in between leaves a duplicate, never a loss
                    answer = self.sqs.send_message_batch(QueueUrl=url, Entries=resend)
                    if answer.get("Failed"):
                        raise RuntimeError(f"the DLQ refused {len(answer['Failed'])} rewritten message(s)")
                if drop:
                    answer = self.sqs.delete_message_batch(
                        QueueUrl=url,
                        Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(drop)],
                    )
                    removed += len(answer.get("Successful", []))
                    if answer.get("Failed"):
                        complete = False
        finally:
            for start in range(0, len(held), 10):
                self.sqs.change_message_visibility_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                        for i, handle in enumerate(held[start : start + 10])
                    ],
                )
        return removed, complete

    def _hubspot(self, workspace: str, email: str) -> HubSpotOutcome:
        client = self.hubspot(workspace) if self.hubspot is not None else None
        if client is None:
            return HubSpotOutcome(
                "failed",
                f"workspace {workspace} has no HubSpot access token (hubspot/token): HubSpot was not asked; "
                "store one and repeat the request",
            )
        try:
            with client:
                existed = client.gdpr_delete(email)
        except ProviderError as exc:
            return HubSpotOutcome(
                "failed", f"HubSpot's gdpr-delete failed ({exc.reason}): {exc.message}; repeat the request"
            )
        if existed:
            return HubSpotOutcome("deleted", "HubSpot deleted the contact permanently (gdpr-delete)")
        return HubSpotOutcome(
            "not_found", "HubSpot had no contact with this email; its gdpr-delete blocks the email there from now on"
        )
