"""Dead-letter queues: what failed, per workspace, and moving it back (``GET /dlq``, ``POST /dlq/{queue}/redrive``).

Each of the pipeline's queues (import, enrich, sync, change, deal, activity) has a DLQ that receives a message after its
``maxReceiveCount`` failed deliveries. The DLQs are shared by every workspace, and a caller belongs to one, so each
message is attributed to a workspace from its body (``origin_of``):

- leadpipe's own messages (``import.run``, ``enrich.request``, ``enrich.poll``, ``sync.request``, ``change.batch``,
  ``deals.run``) name their ``workspace``;
- EventBridge events delivered by the bus's rules (``contacts.imported``, ``contacts.enriched``) carry it in
  ``detail.workspace``;
- S3 notifications (files dropped under ``incoming/``) belong to the workspace in the key for presigned uploads
  (``incoming/uploads/{workspace}/{job}/{file}``) and to the deployment's default workspace for any other key, as the
  importer decides.

A message that names no valid workspace (not JSON, another shape, records of several workspaces) is *unattributed*:
counted for every caller, listed only to the deployment's default workspace (without its content), and never moved
by the API. An operator moves or deletes those with SQS's own tools (the console's "Start DLQ redrive").

Inspecting peeks: ``ReceiveMessage`` with a short visibility timeout, then ``ChangeMessageVisibilityBatch`` back to 0,
so the messages are visible again at once. A peek counts as a receive (``receive_count`` includes earlier looks).

A redrive moves the caller's messages back to their source queue: ``SendMessageBatch`` to the source, and
``DeleteMessageBatch`` from the DLQ only for the messages the source accepted. Messages of other workspaces are kept
invisible while the call scans (so it does not receive them twice) and released with visibility 0 at its end. Work
per call is bounded (``max`` messages moved, a scan limit and a time budget), and a call moves a message (a body) at
most once: one that fails again at once and comes back meanwhile is left for a later call. The answer says how many
of the caller's messages the call saw but left (``remaining``) and whether it saw the whole DLQ (``complete``): call
again until ``remaining`` is 0 and ``complete`` is true, or until a call moves nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from leadpipe.errors import ConfigurationError, NotFound, TransientError
from leadpipe.importer import UPLOADS_PREFIX
from leadpipe.observability import count, logger
from leadpipe.settings import WORKSPACE_PATTERN, Settings

QUEUES = ("import", "enrich", "sync", "change", "deal", "activity")
PEEK_VISIBILITY = 20  # seconds a peeked message stays hidden if releasing it fails
PEEK_SCAN = 100  # messages looked at per queue by GET /dlq
REDRIVE_VISIBILITY = 90  # seconds the messages a redrive holds stay hidden if the call dies (> its time budget)
REDRIVE_SCAN = 1000  # messages looked at per redrive call
REDRIVE_SECONDS = 15.0  # time budget of one redrive call (the API function has 29 s)
SEND_BATCH_BYTES = 250_000  # SendMessageBatch: the bodies of one call stay under SQS's 256 KiB payload limit
SUMMARY_REF_CHARS = 200
_WORKSPACE = re.compile(WORKSPACE_PATTERN)


@dataclass(frozen=True, slots=True)
class DeadLetterQueue:
    name: str  # import | enrich | sync | change | deal | activity
    source_url: str
    dlq_url: str


def dead_letter_queues(settings: Settings) -> dict[str, DeadLetterQueue]:
    """Every queue with its DLQ, from the environment (``*_QUEUE_URL``, ``*_DLQ_URL``); all must be set."""
    pairs = {
        "import": (settings.import_queue_url, settings.import_dlq_url, "IMPORT"),
        "enrich": (settings.enrich_queue_url, settings.enrich_dlq_url, "ENRICH"),
        "sync": (settings.sync_queue_url, settings.sync_dlq_url, "SYNC"),
        "change": (settings.change_queue_url, settings.change_dlq_url, "CHANGE"),
        "deal": (settings.deal_queue_url, settings.deal_dlq_url, "DEAL"),
        "activity": (settings.activity_queue_url, settings.activity_dlq_url, "ACTIVITY"),
    }
    missing = [
        f"{prefix}_{kind}_URL"
        for source, dlq, prefix in pairs.values()
        for kind, url in (("QUEUE", source), ("DLQ", dlq))
        if not url
    ]
    if missing:
        raise ConfigurationError(f"missing environment variable(s): {', '.join(missing)}")
    return {name: DeadLetterQueue(name, source, dlq) for name, (source, dlq, _) in pairs.items()}


# ------------------------------------------------------------------------------------------------ attribution


@dataclass(frozen=True, slots=True)
class Origin:
    """Who a message belongs to and a short summary of it (never its whole body)."""

    workspace: str | None
    type: str | None = None
    emails: int | None = None  # contacts named (requests and events)
    changes: int | None = None  # HubSpot changes carried (change batches)
    ref: str | None = None  # request, job or run id, or the S3 key
    problem: str | None = None  # why no workspace could be determined


def _valid_workspace(value: object) -> str | None:
    return value if isinstance(value, str) and _WORKSPACE.fullmatch(value) else None


def _count(value: object) -> int | None:
    return len(value) if isinstance(value, list) else None


def _short(value: object) -> str | None:
    return str(value)[:SUMMARY_REF_CHARS] if isinstance(value, str | int) and str(value) else None


def _s3_keys(records: list[Any]) -> list[str]:
    """The object keys of S3 notification records (URL-encoded there, decoded here)."""
    keys = []
    for record in records:
        s3 = record.get("s3") if isinstance(record, dict) else None
        obj = s3.get("object") if isinstance(s3, dict) else None
        if isinstance(obj, dict) and isinstance(obj.get("key"), str):
            keys.append(unquote_plus(obj["key"]))
    return keys


def workspace_of_key(key: str, default_workspace: str) -> str:
    """The workspace an uploaded S3 object belongs to, as the importer decides: a presigned upload's (in its key),
    else the deployment's default workspace."""
    if key.startswith(UPLOADS_PREFIX):
        parts = key[len(UPLOADS_PREFIX) :].split("/")
        if len(parts) >= 3 and _valid_workspace(parts[0]):
            return parts[0]
    return default_workspace


def origin_of(body: str, default_workspace: str) -> Origin:
    """The workspace of a queue message and a summary of it (see the module's docstring for the rules)."""
    try:
        data = json.loads(body)
    except ValueError:
        return Origin(None, problem="the body is not JSON")
    if not isinstance(data, dict):
        return Origin(None, problem="the body is not a JSON object")
    if isinstance(data.get("Records"), list):  # S3 event notifications
        keys = _s3_keys(data["Records"])
        first = data["Records"][0] if data["Records"] and isinstance(data["Records"][0], dict) else {}
        kind = f"s3:{first.get('eventName')}" if first.get("eventName") else "s3"
        owners = {workspace_of_key(k, default_workspace) for k in keys}
        if len(owners) != 1:
            problem = "an S3 notification without an object key" if not keys else "objects of several workspaces"
            return Origin(None, type=kind, problem=problem)
        return Origin(owners.pop(), type=kind, ref=_short(keys[0]))
    if isinstance(data.get("detail"), dict) and "detail-type" in data:  # EventBridge events, via a rule
        detail = data["detail"]
        workspace = _valid_workspace(detail.get("workspace"))
        return Origin(
            workspace,
            type=_short(data.get("detail-type")),
            emails=_count(detail.get("emails")),
            ref=_short(detail.get("request_id") or detail.get("job_id") or data.get("id")),
            problem=None if workspace else "the event names no valid workspace",
        )
    workspace = _valid_workspace(data.get("workspace"))
    return Origin(
        workspace,
        type=_short(data.get("type")),
        emails=_count(data.get("emails")),
        changes=_count(data.get("changes")),
        ref=_short(data.get("request_id") or data.get("job_id") or data.get("run_id")),
        problem=None if workspace else "the message names no valid workspace",
    )


# ------------------------------------------------------------------------------------------------ reports


@dataclass(slots=True)
class DeadLetter:
    message_id: str
    sent_at: datetime | None
    receive_count: int | None
    origin: Origin


@dataclass(slots=True)
class QueueReport:
    queue: str
    dlq: str  # the DLQ's name
    approximate_depth: int  # every workspace's messages, visible or in flight (SQS's approximate counts)
    messages: list[DeadLetter] = field(default_factory=list)  # a sample: the caller's (and, for the default
    # workspace, the unattributed ones)
    yours: int = 0  # the caller's messages among those scanned
    others: int = 0  # other workspaces' messages among those scanned (never shown)
    unattributed: int = 0  # messages no workspace could be determined for
    scanned: int = 0
    complete: bool = True  # the scan saw every visible message


@dataclass(slots=True)
class RedriveFailure:
    message_id: str
    stage: str  # send: the source refused it (it stays in the DLQ) | delete: sent, but still in the DLQ
    code: str
    message: str


@dataclass(slots=True)
class RedriveReport:
    queue: str
    moved: int = 0
    remaining: int = 0  # the caller's messages seen but left in the DLQ (over max, or refused by the source)
    others: int = 0
    unattributed: int = 0
    scanned: int = 0
    complete: bool = False  # the call saw the whole DLQ: when remaining is 0 too, nothing of the caller's is left
    failures: list[RedriveFailure] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------ the service


def _dlq_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def _sent_at(attributes: Mapping[str, str]) -> datetime | None:
    raw = attributes.get("SentTimestamp")
    return datetime.fromtimestamp(int(raw) / 1000, UTC) if raw and raw.isdigit() else None


def _receive_count(attributes: Mapping[str, str]) -> int | None:
    raw = attributes.get("ApproximateReceiveCount")
    return int(raw) if raw and raw.isdigit() else None


def _copy_attributes(message: Mapping[str, Any]) -> dict[str, Any]:
    """The message attributes to send again (SendMessage takes only these keys)."""
    out: dict[str, Any] = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        kept = {k: value[k] for k in ("DataType", "StringValue", "BinaryValue") if k in value}
        if "DataType" in kept:
            out[name] = kept
    return out


def _sqs_error(exc: ClientError, what: str) -> TransientError:
    error = exc.response.get("Error", {})
    return TransientError(f"{what}: {error.get('Code', 'error')}: {error.get('Message', '')}".strip())


class DeadLetters:
    def __init__(
        self,
        sqs: Any,
        queues: Mapping[str, DeadLetterQueue],
        *,
        default_workspace: str,
        clock: Callable[[], float] = time.monotonic,
        wait_seconds: int = 1,
    ) -> None:
        self.sqs = sqs
        self.queues = dict(queues)
        self.default_workspace = default_workspace
        self.clock = clock
        # Long polling (>= 1 s) asks every SQS server, so a nearly empty DLQ is not reported empty by chance.
        self.wait_seconds = wait_seconds

    def queue(self, name: str) -> DeadLetterQueue:
        found = self.queues.get(name)
        if found is None:
            names = ", ".join(self.queues)
            raise NotFound(
                f"no queue {name[:50]!r}: the queues are {names}",
                code="queue_not_found",
                details={"queues": list(self.queues)},
            )
        return found

    def origin(self, body: str) -> Origin:
        return origin_of(body, self.default_workspace)

    # ---------------------------------------------------------------------------------------------- SQS calls

    def _receive(self, url: str, visibility: int) -> list[dict[str, Any]]:
        try:
            response = self.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=visibility,
                WaitTimeSeconds=self.wait_seconds,
                AttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
                MessageAttributeNames=["All"],
            )
        except ClientError as exc:
            raise _sqs_error(exc, f"could not read {_dlq_name(url)}") from exc
        return list(response.get("Messages", []))

    def _release(self, url: str, messages: Sequence[Mapping[str, Any]]) -> None:
        """Visible again at once; a message this fails for comes back when its visibility timeout ends."""
        for start in range(0, len(messages), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(messages[start : start + 10])
            ]
            try:
                response = self.sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
                failed = response.get("Failed", [])
            except ClientError as exc:
                failed = [{"Code": str(exc)}]
            if failed:
                logger.warning(
                    "could not make dead letters visible again; they will be after their visibility timeout",
                    extra={
                        "dlq": _dlq_name(url),
                        "failed": len(failed),
                        "codes": sorted({f.get("Code") for f in failed}),
                    },
                )

    def _depth(self, url: str) -> tuple[int, int]:
        """(visible, in flight) messages, SQS's approximate counts."""
        try:
            attrs = self.sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
        except ClientError as exc:
            raise _sqs_error(exc, f"could not read {_dlq_name(url)}'s attributes") from exc
        return int(attrs.get("ApproximateNumberOfMessages", 0)), int(
            attrs.get("ApproximateNumberOfMessagesNotVisible", 0)
        )

    # ---------------------------------------------------------------------------------------------- GET /dlq

    def inspect(self, workspace: str, names: Iterable[str] | None = None, *, limit: int = 10) -> list[QueueReport]:
        """Each queue's DLQ depth and a sample of ``workspace``'s messages in it (peeked, left in place)."""
        chosen = [self.queue(n) for n in (names if names is not None else self.queues)]
        with ThreadPoolExecutor(max_workers=max(1, len(chosen)), thread_name_prefix="dlq-peek") as pool:
            return list(pool.map(lambda q: self._inspect_one(q, workspace, limit), chosen))

    def _inspect_one(self, queue: DeadLetterQueue, workspace: str, limit: int) -> QueueReport:
        visible, in_flight = self._depth(queue.dlq_url)
        report = QueueReport(queue.name, _dlq_name(queue.dlq_url), approximate_depth=visible + in_flight)
        if visible == 0:
            return report
        held: list[dict[str, Any]] = []
        try:
            report.complete = False
            while len(held) < PEEK_SCAN:
                got = self._receive(queue.dlq_url, PEEK_VISIBILITY)
                if not got:
                    report.complete = True
                    break
                held.extend(got)
                if len(held) >= visible:
                    report.complete = True  # as many as SQS counted: no need to wait for an empty answer
                    break
        finally:
            self._release(queue.dlq_url, held)
        report.scanned = len(held)
        for message in held:
            origin = self.origin(str(message.get("Body", "")))
            if origin.workspace == workspace:
                report.yours += 1
            elif origin.workspace is None:
                report.unattributed += 1
                if workspace != self.default_workspace:
                    continue
            else:
                report.others += 1
                continue
            if len(report.messages) < limit:
                attributes = message.get("Attributes") or {}
                report.messages.append(
                    DeadLetter(str(message["MessageId"]), _sent_at(attributes), _receive_count(attributes), origin)
                )
        report.messages.sort(key=lambda m: m.sent_at or datetime.min.replace(tzinfo=UTC))
        return report

    # ---------------------------------------------------------------------------------------------- redrive

    def redrive(
        self, workspace: str, name: str, *, max_messages: int = 100, budget_seconds: float = REDRIVE_SECONDS
    ) -> RedriveReport:
        """Move up to ``max_messages`` of ``workspace``'s messages from the queue's DLQ back to the queue."""
        queue = self.queue(name)
        report = RedriveReport(queue.name)
        deadline = self.clock() + budget_seconds
        held: list[dict[str, Any]] = []  # received and not moved: made visible again at the end
        taken = 0  # the caller's messages this call has tried to move
        # A message that fails again at once comes back to the DLQ while this call still runs: it is not moved twice
        # (its body is known), but left for a later call, once its cause is fixed.
        bodies: set[str] = set()
        try:
            while report.scanned < REDRIVE_SCAN and self.clock() < deadline and taken < max_messages:
                got = self._receive(queue.dlq_url, REDRIVE_VISIBILITY)
                if not got:
                    report.complete = True
                    break
                report.scanned += len(got)
                mine: list[dict[str, Any]] = []
                for message in got:
                    origin = self.origin(str(message.get("Body", "")))
                    if origin.workspace is None:
                        report.unattributed += 1
                        held.append(message)
                    elif origin.workspace != workspace:
                        report.others += 1
                        held.append(message)
                    elif taken < max_messages and _digest(message) not in bodies:
                        mine.append(message)
                        bodies.add(_digest(message))
                        taken += 1
                    else:
                        report.remaining += 1
                        held.append(message)
                if mine:
                    held.extend(self._move(queue, mine, report))
        finally:
            self._release(queue.dlq_url, held)
        report.remaining += sum(1 for f in report.failures if f.stage == "send")
        count("DeadLettersRedriven", report.moved)
        logger.info(
            "dead letters redriven",
            extra={
                "queue": queue.name,
                "moved": report.moved,
                "remaining": report.remaining,
                "failures": len(report.failures),
                "scanned": report.scanned,
                "complete": report.complete,
            },
        )
        return report

    def _move(
        self, queue: DeadLetterQueue, messages: Sequence[dict[str, Any]], report: RedriveReport
    ) -> list[dict[str, Any]]:
        """Send to the source, then delete from the DLQ what was sent. Returns the messages left in the DLQ."""
        left: list[dict[str, Any]] = []
        batches = _send_batches(messages)
        for n, batch in enumerate(batches):
            entries = []
            for i, message in enumerate(batch):
                entry: dict[str, Any] = {"Id": str(i), "MessageBody": message["Body"]}
                attributes = _copy_attributes(message)
                if attributes:
                    entry["MessageAttributes"] = attributes
                entries.append(entry)
            try:
                response = self.sqs.send_message_batch(QueueUrl=queue.source_url, Entries=entries)
            except ClientError as exc:
                unsent = [m for b in batches[n:] for m in b]
                self._release(queue.dlq_url, [*left, *unsent])  # before raising: nothing stays hidden
                raise _sqs_error(exc, f"could not send to the {queue.name} queue") from exc
            sent = [batch[int(s["Id"])] for s in response.get("Successful", [])]
            for failed in response.get("Failed", []):
                message = batch[int(failed["Id"])]
                left.append(message)
                report.failures.append(
                    RedriveFailure(
                        str(message["MessageId"]), "send", str(failed.get("Code", "")), str(failed.get("Message", ""))
                    )
                )
            report.moved += len(sent)
            self._delete(queue, sent, report)
        return left

    def _delete(self, queue: DeadLetterQueue, messages: Sequence[dict[str, Any]], report: RedriveReport) -> None:
        if not messages:
            return
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        try:
            response = self.sqs.delete_message_batch(QueueUrl=queue.dlq_url, Entries=entries)
            failed = [
                (messages[int(f["Id"])], str(f.get("Code", "")), str(f.get("Message", "")))
                for f in response.get("Failed", [])
            ]
        except ClientError as exc:
            error = exc.response.get("Error", {})
            failed = [(m, str(error.get("Code", "")), str(error.get("Message", ""))) for m in messages]
        for message, code, text in failed:
            # Already back on its queue; this copy reappears in the DLQ after the visibility timeout, and a second
            # redrive delivers it again (every consumer is idempotent).
            report.failures.append(RedriveFailure(str(message["MessageId"]), "delete", code, text))


def _digest(message: Mapping[str, Any]) -> str:
    return hashlib.sha256(str(message.get("Body", "")).encode()).hexdigest()


def _send_batches(messages: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """At most 10 messages and ``SEND_BATCH_BYTES`` of bodies per SendMessageBatch."""
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 0
    for message in messages:
        length = len(str(message["Body"]).encode())
        if current and (len(current) == 10 or size + length > SEND_BATCH_BYTES):
            batches.append(current)
            current, size = [], 0
        current.append(message)
        size += length
    if current:
        batches.append(current)
    return batches
