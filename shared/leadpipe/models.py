"""Domain models (pydantic v2): contacts, import jobs, queue messages and bus events.

Times are timezone-aware UTC datetimes; stored and sorted as ISO-8601 strings with millisecond precision.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from leadpipe.settings import WORKSPACE_PATTERN

Workspace = Annotated[str, Field(pattern=WORKSPACE_PATTERN)]


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime) -> str:
    """Fixed-width ISO-8601 UTC with milliseconds: sorts lexicographically in time order."""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


class PipelineStatus(StrEnum):
    """Where a contact is in leadpipe's own pipeline (separate from the business lifecycle)."""

    IMPORTED = "imported"
    ENRICHING = "enriching"
    ENRICHED = "enriched"
    SYNCING = "syncing"
    SYNCED = "synced"
    FAILED = "failed"
    SKIPPED = "skipped"


class LifecycleStage(StrEnum):
    """The business lifecycle, advanced by enrichment and engagements."""

    NEW = "new"
    ENRICHED = "enriched"
    VERIFIED = "verified"
    ENGAGED = "engaged"
    CONVERTED = "converted"
    DISQUALIFIED = "disqualified"


class Failure(BaseModel):
    stage: str
    error: str
    attempts: int = 0
    next_retry_at: datetime | None = None


class Conflict(BaseModel):
    value: str | int | float | bool | None
    provider: str


class FieldValue(BaseModel):
    """One enriched value with its provenance: the provider whose answer won, the others that agreed, and the
    values that lost (a disagreement lowers the confidence)."""

    value: str | int | float | bool | None
    provider: str
    confidence: float = Field(ge=0.0, le=1.0)
    fetched_at: datetime
    agreed_by: list[str] = Field(default_factory=list)
    conflicts: list[Conflict] = Field(default_factory=list)


class ProviderGap(BaseModel):
    """A provider that could not answer for this contact (timeout, 5xx, 429 past retries, bad key, ...)."""

    provider: str
    reason: str
    message: str


class EnrichmentMeta(BaseModel):
    request_id: str
    enriched_at: datetime
    sources_asked: list[str] = Field(default_factory=list)  # providers asked, in order (cache hits included)
    cache_hits: int = 0
    provider_calls: int = 0
    gaps: list[ProviderGap] = Field(default_factory=list)
    skipped: dict[str, str] = Field(default_factory=dict)  # provider -> why it was not asked ("no key", ...)
    pending: list[str] = Field(default_factory=list)  # asynchronous providers still working
    min_quality: float = 0.7
    below_threshold: bool = False
    gap_retries: int = 0  # enrichments in a row that left a retryable gap (enrichment/gaps.py)


class HubSpotRef(BaseModel):
    """Where the contact lives in HubSpot, and what leadpipe wrote there last (to skip no-op writes, to leave a
    person's later edits alone, and to recognise its own writes coming back through webhooks)."""

    contact_id: str | None = None
    company_id: str | None = None
    synced_at: datetime | None = None
    written: dict[str, str] = Field(default_factory=dict)
    written_hash: str | None = None
    note_for: str | None = None  # the enrichment request the last timeline note summarised
    request_id: str | None = None  # the last sync request that handled the contact
    # HubSpot's values leadpipe has already seen and taken into account (a person's edits): the same value seen
    # again (a later poll, a repeated webhook) is not a new change, so the loop settles.
    observed: dict[str, str] = Field(default_factory=dict)


class Insight(BaseModel):
    """Optional LLM-generated notes for outreach."""

    pain_points: list[str] = Field(default_factory=list)
    hooks: list[str] = Field(default_factory=list)
    model: str
    generated_at: datetime


class IcpFit(BaseModel):
    """How closely the contact matches the won deals' profile (``deals/icp.py``), and why."""

    score: float = Field(ge=0.0, le=1.0)
    explanation: str
    role: str | None = None  # the buying role the score assumed
    profile_at: datetime  # when the profile it was scored against was computed


class EngagementType(StrEnum):
    """What a contact did (or was sent): recorded by POST /contacts/{email}/engagements (rules: engagements.py)."""

    EMAIL_SENT = "email_sent"
    EMAIL_OPENED = "email_opened"
    LINK_CLICKED = "link_clicked"
    REPLY_RECEIVED = "reply_received"
    MEETING_BOOKED = "meeting_booked"
    WEBSITE_VISIT = "website_visit"


class Engagement(BaseModel):
    """One engagement; ``details`` is a small flat map (limits in engagements.py)."""

    id: str
    type: EngagementType
    at: datetime
    recorded_at: datetime
    details: dict[str, str | int | float | bool] = Field(default_factory=dict)


class SourceRef(BaseModel):
    """Where a contact's data came from. ``(job_id, row)`` identifies the row, so re-applying it is a no-op."""

    source: str
    job_id: str | None = None
    row: int | None = None
    ref: str | None = None
    at: datetime
    effect: Literal["created", "updated", "unchanged"] = "created"


# Fields a CSV row (or any import source) may fill on a contact, in display order.
PROFILE_FIELDS: tuple[str, ...] = (
    "first_name",
    "last_name",
    "full_name",
    "company",
    "title",
    "phone",
    "linkedin",
    "website",
    "country",
    "city",
)


class Contact(BaseModel):
    model_config = ConfigDict(validate_assignment=False)

    workspace: Workspace
    email: str
    email_domain: str
    domain: str | None = None  # company domain: from the website column, else the email's (not for free mail)

    first_name: str | None = None
    last_name: str | None = None
    full_name: str | None = None
    company: str | None = None
    title: str | None = None
    phone: str | None = None
    linkedin: str | None = None
    website: str | None = None
    country: str | None = None
    city: str | None = None

    tags: dict[str, datetime] = Field(default_factory=dict)  # tag -> when it was added
    custom: dict[str, str] = Field(default_factory=dict)

    status: PipelineStatus = PipelineStatus.IMPORTED
    status_reason: str | None = None
    failure: Failure | None = None
    lifecycle: LifecycleStage = LifecycleStage.NEW

    quality: float | None = Field(default=None, ge=0.0, le=1.0)
    enrichment: dict[str, FieldValue] = Field(default_factory=dict)
    enrichment_meta: EnrichmentMeta | None = None
    intelligence: Insight | None = None
    do_not_enrich: bool = False
    hubspot: HubSpotRef | None = None
    icp: IcpFit | None = None

    engagements: list[Engagement] = Field(default_factory=list)  # the newest ones, newest first (bounded)
    engagement_counts: dict[str, int] = Field(default_factory=dict)  # every engagement ever recorded, by type
    last_engaged_at: datetime | None = None

    sources: list[SourceRef] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    version: int = 0


class JobStatus(StrEnum):
    AWAITING_UPLOAD = "awaiting_upload"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in {JobStatus.COMPLETED, JobStatus.COMPLETED_WITH_ERRORS, JobStatus.FAILED}


class RowError(BaseModel):
    row: int  # 1-based record number in the file, the header being row 1 (as a spreadsheet shows it)
    field: str | None = None
    code: str
    message: str
    value: str | None = None  # the offending value, truncated


class JobCounts(BaseModel):
    rows_read: int = 0  # data rows seen (blank rows excluded)
    valid: int = 0
    invalid: int = 0
    imported: int = 0  # new contacts created
    merged: int = 0  # valid rows merged into an existing contact (earlier row or earlier import)
    blank: int = 0


class JobError(BaseModel):
    code: str
    message: str


class CsvLayout(BaseModel):
    """What sniffing the file's head decided; stored on the job so a continuation does not sniff again."""

    encoding: str
    delimiter: str
    newline: str = "\n"
    header: list[str]
    columns: dict[int, str]  # column index -> contact field ("email", "company", "custom:<key>", ...)
    data_offset: int  # byte offset of the first data record
    header_row: int = 1  # record number of the header (blank lines before it count, as in a spreadsheet)
    bom: bool = False


class Checkpoint(BaseModel):
    offset: int  # byte offset of the next record to read (a file); records read so far (an API)
    row: int  # record number of the next record
    cursor: str | None = None  # an API's paging cursor for the next page (None: from the start)
    done: bool = False  # an API source: the last page has been taken in


class ImportSource(StrEnum):
    API = "api"  # CSV in the body of POST /imports
    UPLOAD = "upload"  # presigned upload into incoming/
    S3 = "s3"  # any object dropped into incoming/
    HUBSPOT = "hubspot"  # every contact of the workspace's HubSpot portal
    LEMLIST = "lemlist"  # the leads of one Lemlist campaign


REMOTE_SOURCES = frozenset({ImportSource.HUBSPOT, ImportSource.LEMLIST})


class Job(BaseModel):
    workspace: Workspace
    job_id: str
    kind: Literal["import"] = "import"
    source: ImportSource
    bucket: str | None = None
    key: str | None = None
    filename: str | None = None
    size_bytes: int | None = None
    etag: str | None = None  # the object's ETag when the import started: a changed file is not mixed in
    campaign_id: str | None = None  # a Lemlist import's campaign
    campaign_name: str | None = None
    status: JobStatus = JobStatus.QUEUED
    counts: JobCounts = Field(default_factory=JobCounts)
    errors: list[RowError] = Field(default_factory=list)  # the first MAX_ROW_ERRORS
    error: JobError | None = None  # why the whole job failed
    warnings: list[str] = Field(default_factory=list)
    layout: CsvLayout | None = None
    checkpoint: Checkpoint | None = None
    invocations: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def bytes_done(self) -> int:
        return self.checkpoint.offset if self.checkpoint else 0


MAX_ROW_ERRORS = 100


class ImportMessage(BaseModel):
    """ImportQueue message asking the import function to run (or continue) a job from its checkpoint."""

    type: Literal["import.run"] = "import.run"
    workspace: Workspace
    job_id: str


class EnrichOptions(BaseModel):
    """Options of an enrichment request (the original system's names are accepted as aliases)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    cache: bool = True
    include_company: bool = Field(default=True, alias="includeCompany")
    include_intelligence: bool = Field(default=False, alias="includeIntelligence")
    min_quality: float | None = Field(default=None, ge=0.0, le=1.0, alias="minQuality")


class EnrichMessage(BaseModel):
    """EnrichQueue message asking for these contacts to be enriched (from POST /enrich or a retry)."""

    type: Literal["enrich.request"] = "enrich.request"
    workspace: Workspace
    request_id: str
    emails: list[str] = Field(min_length=1, max_length=100)
    options: EnrichOptions = Field(default_factory=EnrichOptions)


class EnrichPollMessage(BaseModel):
    """EnrichQueue message (sent with a delay) to collect an asynchronous provider's pending batch."""

    type: Literal["enrich.poll"] = "enrich.poll"
    workspace: Workspace
    request_id: str
    provider: str
    provider_request_id: str
    emails: list[str] = Field(min_length=1, max_length=250)
    attempt: int = 1


class SyncOptions(BaseModel):
    """The original system's sync options (its names accepted as aliases); a request's options override the
    workspace's defaults."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    # Match existing HubSpot companies by domain (search) before creating one. Contacts are always matched by email
    # (HubSpot keeps emails unique, and refuses a batch naming one twice, so repeats in a request are sent once).
    deduplicate: bool = True
    create_if_new: bool = Field(default=True, alias="createIfNew")
    update_if_exists: bool = Field(default=True, alias="updateIfExists")
    associate_company: bool = Field(default=True, alias="associateCompany")
    log_activity: bool = Field(default=True, alias="logActivity")


class SyncMessage(BaseModel):
    """SyncQueue message asking for these contacts to be synced to HubSpot."""

    type: Literal["sync.request"] = "sync.request"
    workspace: Workspace
    request_id: str
    emails: list[str] = Field(min_length=1, max_length=500)
    options: SyncOptions | None = None  # None: the workspace's defaults


class ContactsSynced(BaseModel):
    workspace: Workspace
    request_id: str
    emails: list[str]


DETAIL_CONTACTS_SYNCED = "contacts.synced"


class ContactsEnriched(BaseModel):
    workspace: Workspace
    request_id: str
    emails: list[str]


DETAIL_CONTACTS_ENRICHED = "contacts.enriched"


class ContactsImported(BaseModel):
    """Detail of the ``contacts.imported`` event: keys only, never whole contacts."""

    workspace: Workspace
    source: str
    job_id: str | None = None
    emails: list[str]
    # which part of the job imported these contacts: the same when a chunk is replayed after a crash, so the
    # automatic enrichment of a replayed chunk is recognised as the one already done
    batch: str | None = None


DETAIL_CONTACTS_IMPORTED = "contacts.imported"


class RunEvent(BaseModel):
    """Detail of a run event: one enrichment or sync run (a queue message's contacts) started, completed or failed.
    The ActivityRule records them (and ``contacts.imported``) as the activity feed, GET /activity."""

    workspace: Workspace
    request_id: str
    at: datetime
    counts: dict[str, int] = Field(default_factory=dict)
    error: str | None = None


DETAIL_ENRICHMENT_STARTED = "enrichment.started"
DETAIL_ENRICHMENT_COMPLETED = "enrichment.completed"
DETAIL_ENRICHMENT_FAILED = "enrichment.failed"
DETAIL_SYNC_STARTED = "sync.started"
DETAIL_SYNC_COMPLETED = "sync.completed"
DETAIL_SYNC_FAILED = "sync.failed"
RUN_EVENTS = (
    DETAIL_ENRICHMENT_STARTED,
    DETAIL_ENRICHMENT_COMPLETED,
    DETAIL_ENRICHMENT_FAILED,
    DETAIL_SYNC_STARTED,
    DETAIL_SYNC_COMPLETED,
    DETAIL_SYNC_FAILED,
)


class ObjectChange(BaseModel):
    """One change HubSpot told us about (a webhook event) or we found (a polled record): what changed, not the new
    data -- the consumer reads the current record from HubSpot, so order and repeats do not matter."""

    object_id: str
    kind: Literal["change", "deletion"] = "change"
    privacy: bool = False  # a GDPR deletion in HubSpot (contact.privacyDeletion): the person is suppressed here too
    occurred_at: int = Field(ge=0, description="epoch milliseconds")
    property: str | None = None
    value: str | None = None
    change_source: str | None = None  # CRM_UI, INTEGRATION, IMPORT, ... (webhooks only)
    source_id: str | None = None  # e.g. the app id for INTEGRATION
    dedupe_key: str | None = None  # eventId:subscriptionId:occurredAt for webhook events


class ChangeMessage(BaseModel):
    """ChangeQueue message: HubSpot contact changes for one workspace, from the webhook intake or the poller."""

    type: Literal["change.batch"] = "change.batch"
    workspace: Workspace
    origin: Literal["webhook", "poll"]
    changes: list[ObjectChange] = Field(min_length=1, max_length=500)
    attempt: int = Field(default=1, ge=1)


EVENT_SOURCE = "leadpipe"
