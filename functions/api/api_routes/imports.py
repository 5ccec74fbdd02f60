"""/imports: CSV in the request body, presigned uploads, job progress."""

from __future__ import annotations

import base64
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import ValidationError

from api_routes import deps
from api_routes.schemas import JobList, JobView, RemoteImportRequest, UploadRequest, UploadResponse, UploadTarget
from leadpipe.errors import BadRequest, UnsupportedMediaType
from leadpipe.models import ImportSource
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


@router.get("/imports/<job_id>", summary="Progress of an import job, with its row errors", tags=["imports"])
def get_import(job_id: Annotated[str, Path(max_length=40)]) -> JobView:
    return JobView.of(deps.jobs().require(router.context["workspace"], job_id))
