"""CSV import: from an API body, a presigned upload or any object dropped under ``incoming/``, into contacts.

Every import is a job. The file is always read from S3 as a stream (a range request from the job's checkpoint),
split into records with exact byte offsets, validated row by row and written in chunks. After each chunk the job's
checkpoint (byte offset + row number) and counters advance in one conditional update. When the invocation's time is
nearly up, the job continues in a follow-up ImportQueue message from that checkpoint. A crash between two
checkpoints replays at most one chunk, and replaying a row is recognised by its (job, row) source record.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from leadpipe.contacts import UNCHANGED, ContactRepository, Unchanged
from leadpipe.csvfile import HEAD_BYTES, ContactDraft, ParsedRow, RawRecord, RowParser, iter_records, sniff
from leadpipe.dynamo import error_code
from leadpipe.enrichment.http import Budget
from leadpipe.enrichment.providers.base import ProviderError
from leadpipe.errors import BadRequest, ImportFileError, PayloadTooLarge
from leadpipe.events import EventPublisher
from leadpipe.ids import is_id, new_id
from leadpipe.jobs import JobRepository, StaleJob
from leadpipe.merge import ImportOrigin, RowOutcome, apply_rows
from leadpipe.models import (
    REMOTE_SOURCES,
    Checkpoint,
    Contact,
    ImportMessage,
    ImportSource,
    Job,
    JobCounts,
    JobError,
    JobStatus,
    RowError,
    utcnow,
)
from leadpipe.observability import count, logger
from leadpipe.remote_import import RemoteReader, parser_fields
from leadpipe.settings import WORKSPACE_PATTERN, Settings
from leadpipe.suppression import SuppressionList

INCOMING_PREFIX = "incoming/"
UPLOADS_PREFIX = "incoming/uploads/"
WORKSPACE_DROPS_PREFIX = "incoming/workspaces/"  # incoming/workspaces/{ws}/file.csv imports into workspace ws
API_PREFIX = "imports/"
STREAM_CHUNK_BYTES = 256 * 1024
RETRIES_EXHAUSTED = "retries_exhausted"
SUPPRESSED = "suppressed"


def suppressed_message(reason: str) -> str:
    """The row error of a row whose email is on the suppression list (it never carries the email itself)."""
    if reason == "erased":
        return "this email was erased at the person's request (GDPR) and may not be imported again"
    return f"this email is on the suppression list ({reason}) and may not be imported again"


def drop_workspace(key: str, default: str) -> str:
    """The workspace an S3 drop belongs to: ``incoming/workspaces/{ws}/…`` names it, anything else is the default
    workspace's."""
    if key.startswith(WORKSPACE_DROPS_PREFIX):
        first = key[len(WORKSPACE_DROPS_PREFIX) :].split("/", 1)[0]
        if re.match(WORKSPACE_PATTERN, first):
            return first
    return default


def unsafe_key_problem(key: str) -> str | None:
    """Why an S3 drop's key is refused, or None. S3 keys are not paths, but a key with ``..`` segments or control
    characters reads as one that tries to escape its folder (or to name another workspace's), so it is refused
    visibly, as a failed job, instead of being imported somewhere the sender did not mean."""
    parts = key.split("/")
    if any(p in {"..", "."} for p in parts):
        return f"the object key {key[:200]!r} contains a '..' or '.' segment; drop files under incoming/ by plain names"
    if re.search(r"[\x00-\x1f\x7f]", key):
        return "the object key contains control characters"
    if key.startswith(WORKSPACE_DROPS_PREFIX) and len(parts) >= 3 and not re.match(WORKSPACE_PATTERN, parts[2]):
        return (
            f"{parts[2][:80]!r} is not a workspace name (lowercase letters, digits, '-' and '_'): drop files "
            "under incoming/workspaces/<workspace>/"
        )
    return None


def safe_filename(name: str | None) -> str:
    """A file name safe to use as the last part of an S3 key (no path, no control characters)."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = re.sub(r"[\x00-\x1f\x7f]", "", base).strip().strip(".")
    return base[:120] or "contacts.csv"


@dataclass(slots=True)
class RunResult:
    job: Job | None
    outcome: str  # completed | continued | failed | stale | skipped | missing


@dataclass(slots=True)
class ChunkResult:
    counts: JobCounts = field(default_factory=JobCounts)
    errors: list[RowError] = field(default_factory=list)
    published: int = 0


def _lookahead[T](items: Iterable[T], size: int) -> Iterator[tuple[list[T], bool]]:
    """Batches of ``size`` with a flag telling whether the batch is the last one."""
    iterator = iter(items)
    batch: list[T] = []
    for item in iterator:
        batch.append(item)
        if len(batch) == size:
            break
    while batch:
        following: list[T] = []
        for item in iterator:
            following.append(item)
            if len(following) == size:
                break
        yield batch, not following
        batch = following


class ImportService:
    def __init__(
        self,
        *,
        s3: Any,
        sqs: Any,
        contacts: ContactRepository,
        jobs: JobRepository,
        publisher: EventPublisher,
        settings: Settings,
        readers: Callable[[Job, Budget], RemoteReader] | None = None,
        suppression: SuppressionList | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.s3 = s3
        self.sqs = sqs
        self.contacts = contacts
        self.jobs = jobs
        self.publisher = publisher
        self.settings = settings
        self.readers = readers  # API sources (HubSpot, Lemlist): a reader for a job
        self.suppression = suppression  # erased emails: their rows become row errors (None: no list to check)
        self.clock = clock

    # ------------------------------------------------------------------------------------------ creating jobs

    def start_from_body(self, workspace: str, body: bytes, filename: str | None) -> Job:
        """Store a CSV sent in a request body and queue its import. Obvious problems fail here, before a job."""
        if len(body) > self.settings.max_body_bytes:
            raise PayloadTooLarge(
                f"the body is {len(body)} bytes; bodies up to {self.settings.max_body_bytes} bytes are accepted. "
                "Use POST /imports/uploads for larger files",
                code="body_too_large",
            )
        sniff(body[:HEAD_BYTES], at_eof=len(body) <= HEAD_BYTES, max_record_bytes=self.settings.max_row_bytes)
        job_id = new_id("imp")
        name = safe_filename(filename)
        key = f"{API_PREFIX}{workspace}/{job_id}/{name}"
        self.s3.put_object(Bucket=self.settings.uploads_bucket, Key=key, Body=body, ContentType="text/csv")
        job = Job(
            workspace=workspace,
            job_id=job_id,
            source=ImportSource.API,
            bucket=self.settings.uploads_bucket,
            key=key,
            filename=name,
            size_bytes=len(body),
        )
        job, _ = self.jobs.create(job)
        try:
            self._enqueue(job)
        except Exception as exc:
            # Without its message nothing would ever run this job: say so on the job, then fail the request.
            self.jobs.update(
                job,
                expect_checkpoint=False,
                status=JobStatus.FAILED,
                error=JobError(code="not_queued", message=f"the import could not be queued ({exc}); send it again"),
            )
            raise
        return job

    def start_remote(
        self, workspace: str, source: ImportSource, campaign_id: str | None = None, campaign_name: str | None = None
    ) -> Job:
        """Queue an import from an API source: every contact of the workspace's HubSpot portal, or the leads of one
        Lemlist campaign. The source is read page by page by the import function."""
        if source not in REMOTE_SOURCES:
            raise BadRequest(f"{source} is not an API import source", code="unsupported_source")
        if source is ImportSource.LEMLIST and not campaign_id:
            raise BadRequest("a Lemlist import needs the campaign_id of the campaign to import", code="no_campaign")
        job = Job(
            workspace=workspace,
            job_id=new_id("imp"),
            source=source,
            campaign_id=campaign_id,
            campaign_name=campaign_name,
            checkpoint=Checkpoint(offset=0, row=1),
        )
        job, _ = self.jobs.create(job)
        try:
            self._enqueue(job)
        except Exception as exc:
            self.jobs.update(
                job,
                expect_checkpoint=False,
                status=JobStatus.FAILED,
                error=JobError(code="not_queued", message=f"the import could not be queued ({exc}); send it again"),
            )
            raise
        return job

    def create_upload(
        self, workspace: str, filename: str | None, content_type: str | None
    ) -> tuple[Job, dict[str, Any]]:
        """A job waiting for its file, and a presigned PUT URL into ``incoming/`` that starts it when used."""
        job_id = new_id("imp")
        name = safe_filename(filename)
        key = f"{UPLOADS_PREFIX}{workspace}/{job_id}/{name}"
        params: dict[str, Any] = {"Bucket": self.settings.uploads_bucket, "Key": key}
        headers: dict[str, str] = {}
        if content_type:
            params["ContentType"] = content_type
            headers["Content-Type"] = content_type
        ttl = self.settings.upload_url_ttl_seconds
        url = self.s3.generate_presigned_url("put_object", Params=params, ExpiresIn=ttl)
        job = Job(
            workspace=workspace,
            job_id=job_id,
            source=ImportSource.UPLOAD,
            bucket=self.settings.uploads_bucket,
            key=key,
            filename=name,
            status=JobStatus.AWAITING_UPLOAD,
        )
        job, _ = self.jobs.create(job)
        expires = int(self.clock().timestamp()) + ttl
        return job, {"url": url, "method": "PUT", "headers": headers, "key": key, "expires_at": expires}

    def job_for_object(self, bucket: str, key: str, size: int, etag: str, event_time: str) -> Job | None:
        """The job an ``ObjectCreated`` event belongs to: a waiting upload's, or a new one (idempotent)."""
        if key.endswith("/"):
            return None  # a "folder" placeholder
        if key.startswith(UPLOADS_PREFIX):
            parts = key[len(UPLOADS_PREFIX) :].split("/")
            if len(parts) >= 3 and re.match(WORKSPACE_PATTERN, parts[0]) and is_id(parts[1], "imp"):
                job = self.jobs.get(parts[0], parts[1])
                if job is not None and job.key == key:
                    if job.status is JobStatus.AWAITING_UPLOAD:
                        job = self.jobs.update(
                            job, expect_checkpoint=False, status=JobStatus.QUEUED, extra={"size_bytes": size}
                        )
                    return job
        at = _parse_event_time(event_time) or self.clock()
        seed = f"{bucket}\n{key}\n{etag}\n{event_time}".encode()
        job = Job(
            workspace=drop_workspace(key, self.settings.default_workspace),
            job_id=new_id("imp", at_ms=int(at.timestamp() * 1000), seed=seed),
            source=ImportSource.S3,
            bucket=bucket,
            key=key,
            filename=key.rsplit("/", 1)[-1] or key,
            size_bytes=size,
        )
        job, _ = self.jobs.create(job)
        return job

    def _enqueue(self, job: Job) -> None:
        message = ImportMessage(workspace=job.workspace, job_id=job.job_id)
        self.sqs.send_message(QueueUrl=self.settings.import_queue_url, MessageBody=message.model_dump_json())

    # ------------------------------------------------------------------------------------------ messages

    def handle_message(self, body: str, *, remaining_ms: Callable[[], int], receive_count: int = 1) -> list[RunResult]:
        """Process one ImportQueue message: an S3 notification or an ``import.run`` request."""
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise BadRequest(f"ImportQueue message is not JSON: {body[:200]!r}", code="bad_message") from exc
        if isinstance(data, dict) and data.get("Event") == "s3:TestEvent":
            return []
        if isinstance(data, dict) and data.get("type") == "import.run":
            message = ImportMessage.model_validate(data)
            return [self.run(message.workspace, message.job_id, remaining_ms, receive_count)]
        if isinstance(data, dict) and isinstance(data.get("Records"), list):
            results = []
            for record in data["Records"]:
                if record.get("eventSource") != "aws:s3" or not str(record.get("eventName", "")).startswith(
                    "ObjectCreated"
                ):
                    continue
                obj = record["s3"]["object"]
                job = self.job_for_object(
                    record["s3"]["bucket"]["name"],
                    unquote_plus(obj["key"]),  # S3 URL-encodes keys in notifications
                    int(obj.get("size", 0)),
                    str(obj.get("eTag", "")),
                    str(record.get("eventTime", "")),
                )
                if job is not None:
                    results.append(self.run(job.workspace, job.job_id, remaining_ms, receive_count))
            return results
        raise BadRequest(f"unrecognised ImportQueue message: {body[:200]!r}", code="bad_message")

    # ------------------------------------------------------------------------------------------ running a job

    def run(self, workspace: str, job_id: str, remaining_ms: Callable[[], int], receive_count: int = 1) -> RunResult:
        job = self.jobs.get(workspace, job_id)
        if job is None:
            logger.warning("import job not found; message dropped", extra={"job_id": job_id})
            return RunResult(None, "missing")
        resumable = job.error is not None and job.error.code == RETRIES_EXHAUSTED
        if (job.status.terminal and not resumable) or job.status is JobStatus.AWAITING_UPLOAD:
            return RunResult(job, "skipped")
        try:
            job = self.jobs.update(
                job, expect_checkpoint=False, status=JobStatus.RUNNING, invocation=True, clear_error=resumable
            )
            if job.source in REMOTE_SOURCES:
                return self._process_remote(job, remaining_ms)
            if job.source is ImportSource.S3 and job.key and (problem := unsafe_key_problem(job.key)):
                raise ImportFileError(problem, code="unsafe_key")
            if job.layout is None:
                job = self._sniff(job)
            return self._process(job, remaining_ms)
        except ImportFileError as exc:
            job = self.jobs.update(
                job,
                expect_checkpoint=False,
                status=JobStatus.FAILED,
                error=JobError(code=exc.code, message=exc.message),
            )
            count("ImportJobsFailed")
            logger.info("import job failed", extra={"job_id": job_id, "code": exc.code, "reason": exc.message})
            return RunResult(job, "failed")
        except StaleJob:
            logger.info("import job advanced elsewhere; this copy stops", extra={"job_id": job_id})
            return RunResult(job, "stale")
        except Exception as exc:
            if receive_count >= self.settings.import_max_receives:
                # Last delivery before the DLQ: say so on the job. A redrive resumes from the checkpoint.
                self.jobs.update(
                    job,
                    expect_checkpoint=False,
                    status=JobStatus.FAILED,
                    error=JobError(
                        code=RETRIES_EXHAUSTED,
                        message=f"gave up after {receive_count} attempts ({type(exc).__name__}: {exc}); "
                        "the message is in the import DLQ and resumes from the last checkpoint when redriven",
                    ),
                )
            raise

    def _object(self, job: Job, **kwargs: Any) -> Any:
        assert job.bucket and job.key
        try:
            return self.s3.get_object(Bucket=job.bucket, Key=job.key, **kwargs)
        except ClientError as exc:
            code = error_code(exc)
            if code in {"NoSuchKey", "404"}:
                raise ImportFileError("the file no longer exists in S3", code="file_missing") from exc
            if code in {"PreconditionFailed", "412"}:
                raise ImportFileError(
                    "the file was replaced while it was being imported; upload it again", code="file_changed"
                ) from exc
            raise

    def _sniff(self, job: Job) -> Job:
        assert job.bucket and job.key
        try:
            head = self.s3.head_object(Bucket=job.bucket, Key=job.key)
        except ClientError as exc:
            if error_code(exc) in {"NoSuchKey", "404", "NotFound"}:
                raise ImportFileError("the file no longer exists in S3", code="file_missing") from exc
            raise
        size = int(head["ContentLength"])
        etag = str(head.get("ETag", ""))
        if size == 0:
            raise ImportFileError("the file is empty", code="empty_file")
        data = self._object(job, Range=f"bytes=0-{HEAD_BYTES - 1}", IfMatch=etag)["Body"].read()
        layout, warnings = sniff(data, at_eof=len(data) >= size, max_record_bytes=self.settings.max_row_bytes)
        return self.jobs.update(
            job,
            checkpoint=Checkpoint(offset=layout.data_offset, row=layout.header_row + 1),
            layout=layout,
            warnings=warnings,
            extra={"size_bytes": size, "etag": etag},
        )

    def _process(self, job: Job, remaining_ms: Callable[[], int]) -> RunResult:
        assert job.layout is not None and job.checkpoint is not None
        layout, start = job.layout, job.checkpoint
        if job.size_bytes is not None and start.offset < job.size_bytes:
            parser = RowParser(layout, max_row_bytes=self.settings.max_row_bytes)
            match = {"IfMatch": job.etag} if job.etag else {}
            body = self._object(job, Range=f"bytes={start.offset}-", **match)["Body"]
            try:
                records = iter_records(
                    body.iter_chunks(STREAM_CHUNK_BYTES),
                    start_offset=start.offset,
                    start_row=start.row,
                    delimiter=layout.delimiter,
                    newline=layout.newline,
                    max_record_bytes=self.settings.max_row_bytes,
                )
                # Stop while one more chunk as slow as the slowest so far (reading included) still leaves the margin:
                # a chunk slower than the margin alone would be killed by the timeout mid-way, and a message
                # timing out maxReceiveCount times takes the rest of the file to the DLQ.
                previous, slowest = remaining_ms(), 0
                for chunk, last in _lookahead(records, self.settings.import_chunk_rows):
                    job = self._apply_chunk(job, parser, chunk)
                    left = remaining_ms()
                    previous, slowest = left, max(slowest, previous - left)
                    if not last and left < self.settings.import_time_margin_ms + slowest:
                        self._enqueue(job)
                        logger.info(
                            "import continues in a follow-up message",
                            extra={"job_id": job.job_id, "checkpoint": job.checkpoint},
                        )
                        return RunResult(job, "continued")
            finally:
                body.close()
        return self._finish(job)

    def _process_remote(self, job: Job, remaining_ms: Callable[[], int]) -> RunResult:
        """Page through an API source from the job's cursor; each page is applied like a chunk of rows and moves
        the checkpoint on, so a follow-up message or a redelivery resumes at the next page."""
        if self.readers is None:
            raise ImportFileError(f"this deployment cannot read {job.source} imports", code="unsupported_source")
        checkpoint = job.checkpoint or Checkpoint(offset=0, row=1)
        budget = Budget.from_lambda(remaining_ms, margin=self.settings.import_time_margin_ms / 1000)
        reader = self.readers(job, budget)
        try:
            while not checkpoint.done:
                page = reader.page(checkpoint.cursor)
                fields = parser_fields(page.records)
                parser = RowParser.for_fields(fields)
                parsed = []
                for i, record in enumerate(page.records):
                    row = parser.parse_values(checkpoint.row + i, record.row_values(fields))
                    if row.draft is not None and record.hubspot_id:
                        row.draft.hubspot_id = record.hubspot_id
                    parsed.append(row)
                checkpoint = Checkpoint(
                    offset=checkpoint.offset + len(page.records),
                    row=checkpoint.row + len(page.records),
                    cursor=page.next_cursor,
                    done=page.next_cursor is None,
                )
                job = self._apply_parsed(job, parsed, checkpoint, ref=reader.label)
                if not checkpoint.done and remaining_ms() < self.settings.import_time_margin_ms:
                    self._enqueue(job)
                    logger.info("import continues in a follow-up message", extra={"job_id": job.job_id})
                    return RunResult(job, "continued")
        except ProviderError as exc:
            if exc.retryable:
                raise  # the message comes back; the job resumes from its checkpoint
            raise ImportFileError(f"{job.source} refused the import: {exc.message}", code=exc.reason) from exc
        finally:
            reader.close()
        return self._finish(job)

    def _apply_chunk(self, job: Job, parser: RowParser, chunk: list[RawRecord]) -> Job:
        checkpoint = Checkpoint(offset=chunk[-1].end, row=chunk[-1].row + 1)
        return self._apply_parsed(job, parser.parse(chunk), checkpoint, ref=job.filename)

    def _apply_parsed(
        self, job: Job, parsed_rows: Iterable[ParsedRow], checkpoint: Checkpoint, *, ref: str | None
    ) -> Job:
        result = ChunkResult()
        counts = result.counts
        drafts: dict[str, list[ContactDraft]] = {}
        fallback = False
        parsed_rows = list(parsed_rows)
        candidates = [p.draft.email for p in parsed_rows if p.draft is not None and not p.errors and not p.blank]
        # One batch lookup per chunk (BatchGetItem, 100 a call): an erased email is never imported again.
        barred = self.suppression.suppressed(job.workspace, candidates) if self.suppression and candidates else {}
        for parsed in parsed_rows:
            if parsed.blank:
                counts.blank += 1
                continue
            counts.rows_read += 1
            if parsed.draft is not None and not parsed.errors and parsed.draft.email in barred:
                reason = barred[parsed.draft.email]
                parsed.errors.append(
                    RowError(row=parsed.row, field="email", code=SUPPRESSED, message=suppressed_message(reason))
                )
            if parsed.errors or parsed.draft is None:
                counts.invalid += 1
                result.errors.extend(parsed.errors)
                continue
            counts.valid += 1
            fallback = fallback or parsed.fallback_decoded
            drafts.setdefault(parsed.draft.email, []).append(parsed.draft)

        origin = ImportOrigin(job.workspace, job.source.value, job.job_id, ref)
        now = self.clock()
        outcomes: dict[str, list[RowOutcome]] = {}

        def mutate(email: str, before: Contact | None) -> Contact | Unchanged:
            after, rows = apply_rows(before, drafts[email], origin, now)
            outcomes[email] = rows
            return UNCHANGED if all(r.replayed for r in rows) else after

        if drafts:
            self.contacts.upsert(job.workspace, drafts, mutate)
        changed: list[str] = []
        for email, rows in outcomes.items():
            for row in rows:
                if row.effect == "created":
                    counts.imported += 1
                else:
                    counts.merged += 1
            if any(r.effect != "unchanged" for r in rows):
                changed.append(email)
        if changed:  # the batch is the chunk's first row: a replay of the chunk publishes the same batches
            first = f"r{parsed_rows[0].row}" if parsed_rows else None
            changed.sort()  # the same emails in the same events, however the writes were ordered
            self.publisher.contacts_imported(job.workspace, job.source.value, job.job_id, changed, batch=first)
        warnings = []
        if fallback:
            warnings.append("some rows were not valid UTF-8 and were read as Windows-1252")
        job = self.jobs.update(
            job,
            checkpoint=checkpoint,
            counts=counts,
            errors=result.errors,
            warnings=warnings,
        )
        count("ImportRowsRead", counts.rows_read)
        count("ImportRowsInvalid", counts.invalid)
        count("ContactsImported", counts.imported)
        count("ContactsMerged", counts.merged)
        return job

    def _finish(self, job: Job) -> RunResult:
        c = job.counts
        error: JobError | None = None
        warnings: list[str] = []
        if c.rows_read == 0 and job.source in REMOTE_SOURCES:
            status = JobStatus.COMPLETED  # an empty portal or campaign: nothing to import is not an error
            warnings.append(f"the {job.source} source had no records to import")
        elif c.rows_read == 0:
            status = JobStatus.FAILED
            error = JobError(code="no_data_rows", message="the file has a header row but no data rows")
        elif c.valid == 0:
            status = JobStatus.FAILED
            error = JobError(
                code="all_rows_invalid",
                message=f"all {c.invalid} rows are invalid; nothing was imported (see the row errors)",
            )
        elif c.invalid:
            status = JobStatus.COMPLETED_WITH_ERRORS
        else:
            status = JobStatus.COMPLETED
        job = self.jobs.update(job, checkpoint=job.checkpoint, status=status, error=error, warnings=warnings)
        count("ImportJobsFailed" if status is JobStatus.FAILED else "ImportJobsCompleted")
        logger.info(
            "import job finished",
            extra={"job_id": job.job_id, "status": status.value, "counts": c.model_dump()},
        )
        return RunResult(job, "failed" if status is JobStatus.FAILED else "completed")


def _parse_event_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
