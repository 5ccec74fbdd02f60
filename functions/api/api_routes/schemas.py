"""Response and request shapes of the HTTP API (they are also its OpenAPI schemas)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from leadpipe.models import (
    Contact,
    EnrichmentMeta,
    Failure,
    FieldValue,
    HubSpotRef,
    IcpFit,
    Insight,
    Job,
    JobCounts,
    JobError,
    JobStatus,
    LifecycleStage,
    PipelineStatus,
    RowError,
    SourceRef,
)
from leadpipe.stats import StatusStats


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class Progress(BaseModel):
    bytes_done: int
    bytes_total: int | None
    percent: float | None


class ColumnMapping(BaseModel):
    column: str
    field: str


class RemoteImportRequest(BaseModel):
    """POST /imports with a JSON body: import from an API instead of a file."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["hubspot", "lemlist"] = Field(description="hubspot: every contact of the workspace's portal")
    campaign_id: str | None = Field(
        None, min_length=1, max_length=100, description="lemlist: the campaign whose leads are imported"
    )

    @model_validator(mode="after")
    def _campaign(self) -> RemoteImportRequest:
        if self.source == "lemlist" and not self.campaign_id:
            raise ValueError("a Lemlist import needs campaign_id")
        if self.source == "hubspot" and self.campaign_id:
            raise ValueError("campaign_id is for Lemlist imports")
        return self


class JobView(BaseModel):
    job_id: str
    workspace: str
    source: str
    filename: str | None
    campaign_id: str | None = Field(None, description="a Lemlist import's campaign")
    status: JobStatus
    counts: JobCounts
    progress: Progress
    errors: list[RowError]
    errors_omitted: int = Field(description="row errors beyond the first 100 that were counted but not kept")
    error: JobError | None
    warnings: list[str]
    columns: list[ColumnMapping] | None = None
    delimiter: str | None = None
    encoding: str | None = None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime

    @classmethod
    def of(cls, job: Job) -> JobView:
        total = job.size_bytes
        done = job.bytes_done
        if job.status.terminal and job.status.value != "failed" and total:
            done = total
        percent = round(100.0 * done / total, 1) if total else None
        layout = job.layout
        columns = (
            [ColumnMapping(column=layout.header[i], field=f) for i, f in layout.columns.items()] if layout else None
        )
        kept_rows = {e.row for e in job.errors}
        return cls(
            job_id=job.job_id,
            workspace=job.workspace,
            source=job.source.value,
            campaign_id=job.campaign_id,
            filename=job.filename,
            status=job.status,
            counts=job.counts,
            progress=Progress(bytes_done=done, bytes_total=total, percent=percent),
            errors=job.errors,
            errors_omitted=max(0, job.counts.invalid - len(kept_rows)),
            error=job.error,
            warnings=job.warnings,
            columns=columns,
            delimiter=layout.delimiter if layout else None,
            encoding=layout.encoding if layout else None,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            updated_at=job.updated_at,
        )


class JobList(BaseModel):
    items: list[JobView]
    next_before: str | None = Field(None, description="pass as ?before= to get older jobs")


class UploadRequest(BaseModel):
    filename: str = Field(min_length=1, max_length=255, description="the name of the file being uploaded")
    content_type: str | None = Field(
        None, max_length=100, description="if set, the PUT must send this Content-Type header"
    )


class UploadTarget(BaseModel):
    url: str
    method: str
    headers: dict[str, str]
    key: str
    expires_at: int = Field(description="epoch seconds after which the URL no longer works")


class UploadResponse(BaseModel):
    job: JobView
    upload: UploadTarget


class ContactView(BaseModel):
    email: str
    workspace: str
    domain: str | None
    email_domain: str
    first_name: str | None
    last_name: str | None
    full_name: str | None
    company: str | None
    title: str | None
    phone: str | None
    linkedin: str | None
    website: str | None
    country: str | None
    city: str | None
    tags: list[str]
    custom: dict[str, str]
    status: PipelineStatus
    status_reason: str | None
    lifecycle: LifecycleStage
    quality: float | None = Field(description="0-1, see docs/enrichment.md")
    enrichment: dict[str, FieldValue] = Field(description="each enriched field: value, provider, confidence, time")
    enrichment_meta: EnrichmentMeta | None = Field(description="sources asked, gaps, below_threshold")
    intelligence: Insight | None
    failure: Failure | None
    do_not_enrich: bool
    hubspot: HubSpotRef | None = Field(
        description="HubSpot contact and company ids, when it was synced, and what leadpipe wrote there last"
    )
    icp: IcpFit | None = Field(
        None, description="fit with the ideal-customer profile learned from won and lost deals (0-1) and why"
    )
    engagement_counts: dict[str, int] = Field(
        default_factory=dict, description="engagements recorded, by type (GET /contacts/{email}/engagements)"
    )
    last_engaged_at: datetime | None = None
    sources: list[SourceRef]
    created_at: datetime
    updated_at: datetime
    version: int

    @classmethod
    def of(cls, contact: Contact) -> ContactView:
        data = contact.model_dump(exclude={"tags", "engagements"})
        return cls(**data, tags=sorted(contact.tags))


class ContactList(BaseModel):
    items: list[ContactView]
    next_cursor: str | None = Field(None, description="pass as ?cursor= to get the next page")


class StatusView(BaseModel):
    workspace: str
    stage: str
    config: dict[str, Any] = Field(
        description="providers configured and without a key, automation switches, cache days and thresholds in force "
        "for the workspace (its own settings, else the deployment's)"
    )
    providers: list[dict[str, Any]] = Field(description="the enrichment waterfall, in order, and who is skipped")
    counts: dict[str, int] = Field(description="contacts per pipeline status (the same as stats.by_status)")
    total: int
    stats: StatusStats
