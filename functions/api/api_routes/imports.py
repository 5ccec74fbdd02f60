"""/imports: CSV in the request body, presigned uploads, job progress."""

from __future__ import annotations

import base64
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, Field, ValidationError

from api_routes import deps
from api_routes.schemas import JobList, JobView, RemoteImportRequest, UploadRequest, UploadResponse, UploadTarget
from leadpipe.errors import BadRequest, UnsupportedMediaType
from leadpipe.models import ImportSource, Job, PipelineStatus
from leadpipe.remote_import import credential

router = APIGatewayHttpRouter()

CSV_TYPES = {
    "text/csv",
    "application/csv",
    "text/plain",
    "text/tab-separated-values",
    "application/octet-stream",
    "application/vnd.ms-excel",  # what Windows browsers send for .csv files
}


def _start_remote(body: bytes) -> Response[JobView]:
    """``{"source": "hubspot"}`` or ``{"source": "lemlist", "campaign_id": ...}``: an import from an API."""
    try:
        request = RemoteImportRequest.model_validate_json(body or b"{}")
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(x) for x in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())
        raise BadRequest(f"invalid import request: {problems}", code="invalid_request") from exc
    workspace = router.context["workspace"]
    source = ImportSource(request.source)
    if not credential(deps.provider_keys(), workspace, source):
        where = "hubspot/token" if source is ImportSource.HUBSPOT else "lemlist"
        raise BadRequest(
            f"workspace {workspace} has no {source} key: store it in SSM at {where} under the workspace's path",
            code="no_key",
        )
    job = deps.importer().start_remote(workspace, source, request.campaign_id)
    return Response(status_code=202, content_type="application/json", body=JobView.of(job))


def _body_bytes() -> bytes:
    event = router.current_event
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(raw, validate=True)
        except ValueError as exc:
            raise BadRequest("the body is marked base64 but is not valid base64", code="bad_body") from exc
    return raw.encode("utf-8")


@router.post(
    "/imports",
    summary="Import contacts from a CSV in the request body",
    description=(
        "Send the CSV itself as the body (Content-Type text/csv; up to 5 MB). The file is checked at once (empty, "
        "binary, no email column → 400), then imported asynchronously: poll GET /imports/{job_id}. "
        "For larger files use POST /imports/uploads."
    ),
    openapi_extensions={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    responses={
        202: {"description": "Import queued", "content": {"application/json": {"model": JobView}}},
        400: {"description": "The file cannot be imported (empty, binary, no email column, ...)"},
        413: {"description": "The body is too large: use an upload"},
        415: {"description": "Not a CSV body"},
    },
    tags=["imports"],
)
def create_import(
    filename: Annotated[str | None, Query(max_length=255, description="the original file name")] = None,
) -> Response[JobView]:
    headers = {k.lower(): v for k, v in (router.current_event.get("headers") or {}).items()}
    content_type = headers.get("content-type", "text/csv").split(";")[0].strip().lower()
    if content_type == "application/json":
        return _start_remote(_body_bytes())
    if content_type not in CSV_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type {content_type!r} is not accepted: send the CSV file itself as text/csv",
            details={"accepted": sorted(CSV_TYPES)},
        )
    body = _body_bytes()
    job = deps.importer().start_from_body(router.context["workspace"], body, filename)
    return Response(status_code=202, content_type="application/json", body=JobView.of(job))


@router.post(
    "/imports/uploads",
    summary="Get a presigned URL to upload a large CSV",
    description=(
        "Returns a job waiting for its file and a URL to PUT the file to (into the uploads bucket's incoming/ "
        "prefix). The import starts by itself when the upload completes; poll GET /imports/{job_id}."
    ),
    responses={201: {"description": "Upload URL created", "content": {"application/json": {"model": UploadResponse}}}},
    tags=["imports"],
)
def create_upload(request: UploadRequest) -> Response[UploadResponse]:
    job, target = deps.importer().create_upload(router.context["workspace"], request.filename, request.content_type)
    body = UploadResponse(job=JobView.of(job), upload=UploadTarget(**target))
    return Response(status_code=201, content_type="application/json", body=body)


@router.get("/imports", summary="List import jobs, newest first", tags=["imports"])
def list_imports(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    before: Annotated[str | None, Query(max_length=40, description="a job id from a previous page")] = None,
) -> JobList:
    found = deps.jobs().recent(router.context["workspace"], limit=limit, before=before)
    next_before = found[-1].job_id if len(found) == limit else None
    return JobList(items=[JobView.of(j) for j in found], next_before=next_before)


PIPELINE_SCAN_MAX = 5_000  # contacts changed since a job was created, looked through by one request
BEYOND_ENRICHED = (PipelineStatus.ENRICHED, PipelineStatus.SYNCING, PipelineStatus.SYNCED)


class JobPipeline(BaseModel):
    contacts: int = Field(description="contacts the job created or updated (its rows' sources name the job)")
    by_status: dict[str, int] = Field(description="those contacts per pipeline status now")
    enriched: int = Field(description="enriched or further along (enriched, syncing, synced)")
    synced: int
    failed: int
    complete: bool = Field(
        description=f"false: more than {PIPELINE_SCAN_MAX} contacts changed since the job was created, and only "
        "the newest of each status were looked through: the counts are a lower bound"
    )


class JobProgress(JobView):
    pipeline: JobPipeline | None = Field(
        None, description="with ?pipeline=true: where the job's contacts are now (enrichment, sync)"
    )


def job_pipeline(job: Job) -> JobPipeline:
    """Where the contacts a job wrote are now. A contact's listing by status is ordered by its last change, and the
    job wrote each of its contacts after it was created: so each status is read newest change first, down to the
    job's creation, keeping the contacts whose sources name the job. The statuses are read in turn, a page of each
    (round-robin), so a status with many changes cannot use up PIPELINE_SCAN_MAX before the others are read; and the
    reading stops as soon as every contact the job wrote was found (counts.imported + counts.merged: the common,
    cheap case). The cost follows what changed in the workspace since the job was created (bounded by
    PIPELINE_SCAN_MAX), not the workspace's size."""
    repo = deps.contacts()
    # Every row written counts: a file naming one email twice never reaches it, and each status is read to the end.
    wrote = job.counts.imported + job.counts.merged
    seen: dict[str, PipelineStatus] = {}
    scanned = 0
    complete = True
    # per status still to read: its next cursor and page size (most statuses hold few contacts changed since a
    # recent job: a small first page)
    reading: dict[PipelineStatus, tuple[str | None, int]] = dict.fromkeys(PipelineStatus, (None, 25))
    while reading and len(seen) < wrote:
        for status, (cursor, limit) in list(reading.items()):
            page = repo.find(job.workspace, status=status, limit=limit, cursor=cursor)
            older = False
            for contact in page.items:
                if contact.updated_at < job.created_at:
                    older = True
                    break
                scanned += 1
                if any(source.job_id == job.job_id for source in contact.sources):
                    seen[contact.email] = status  # a contact moving on while we read is counted where seen last
            if older or page.next_cursor is None:
                del reading[status]
            else:
                reading[status] = (page.next_cursor, 100)
            if len(seen) >= wrote:
                break
            if scanned >= PIPELINE_SCAN_MAX:
                complete = not reading
                reading.clear()
                break
    by_status = {s.value: 0 for s in PipelineStatus}
    for status in seen.values():
        by_status[status.value] += 1
    return JobPipeline(
        contacts=len(seen),
        by_status=by_status,
        enriched=sum(by_status[s.value] for s in BEYOND_ENRICHED),
        synced=by_status[PipelineStatus.SYNCED.value],
        failed=by_status[PipelineStatus.FAILED.value],
        complete=complete,
    )


@router.get(
    "/imports/<job_id>",
    summary="Progress of an import job, with its row errors",
    description=(
        "pipeline=true adds where the job's contacts are now (imported, enriching, enriched, syncing, synced, "
        "failed, skipped): the console's live progress. It reads the contacts changed since the job was created, "
        f"each status in turn, up to {PIPELINE_SCAN_MAX}, and stops once it found every contact the job wrote."
    ),
    tags=["imports"],
)
def get_import(
    job_id: Annotated[str, Path(max_length=40)],
    pipeline: Annotated[bool, Query(description="also count the job's contacts by pipeline status")] = False,
) -> JobProgress:
    job = deps.jobs().require(router.context["workspace"], job_id)
    view = JobProgress(**JobView.of(job).model_dump())
    if pipeline:
        view.pipeline = job_pipeline(job)
    return view
