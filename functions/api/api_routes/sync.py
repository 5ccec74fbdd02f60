"""/sync: queue a HubSpot sync for emails or a filter; the sync log; the workspace's sync settings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, Field, model_validator

from api_routes import deps
from api_routes.enrich import EnrichFilter, InvalidEmail, select_emails
from leadpipe.hubspot.sync import queue_sync, recent_sync_log
from leadpipe.models import SyncOptions
from leadpipe.workspaces import SyncSettings

router = APIGatewayHttpRouter()


class SyncRequest(BaseModel):
    emails: list[str] | None = Field(None, min_length=1, max_length=1000, description="contacts to sync")
    filter: EnrichFilter | None = Field(None, description="or: every contact matching this filter (up to limit)")
    limit: int = Field(1000, ge=1, le=10_000, description="most contacts a filter may select")
    options: SyncOptions | None = Field(None, description="the workspace's sync options when omitted")

    @model_validator(mode="after")
    def _one_selector(self) -> SyncRequest:
        if (self.emails is None) == (self.filter is None):
            raise ValueError("give either emails or filter")
        return self


class SyncAccepted(BaseModel):
    request_id: str | None
    queued: int
    messages: int
    not_found: list[str]
    invalid: list[InvalidEmail]
    options: SyncOptions


class SyncLogError(BaseModel):
    email: str
    error: str


class SyncLogEntry(BaseModel):
    request_id: str
    at: datetime
    created: int
    updated: int
    unchanged: int = Field(description="nothing new to write: no HubSpot call was made for them")
    failed: int
    skipped: int = Field(description="left out by the options (createIfNew/updateIfExists off) or the contact")
    already_done: int = Field(description="a redelivered message: these were already synced by this request")
    companies_created: int
    associations: int
    notes: int
    hubspot_calls: int
    throttled: int = Field(description="429 answers HubSpot gave (each one waited out and retried)")
    mapping_problems: list[str] = Field(description="mapped properties HubSpot does not have: not synced")
    company_errors: list[str] = Field(
        default_factory=list, description="companies HubSpot refused to create (their contacts are not associated)"
    )
    errors: list[SyncLogError] = Field(description="the first 20 records HubSpot refused, with its reason")


class SyncLog(BaseModel):
    items: list[SyncLogEntry]


@router.post(
    "/sync",
    summary="Sync contacts to HubSpot now (a list of emails, or a filter such as status or tag)",
    description=(
        "Queues the contacts on the queue the automatic path uses. Options (the workspace's by default): "
        "deduplicate, createIfNew, updateIfExists, associateCompany, logActivity. Follow the contacts' status "
        "(syncing -> synced) and GET /sync/log."
    ),
    responses={202: {"description": "Queued", "content": {"application/json": {"model": SyncAccepted}}}},
    tags=["sync"],
)
def request_sync(request: SyncRequest) -> Response[SyncAccepted]:
    workspace = router.context["workspace"]
    emails, not_found, invalid = select_emails(workspace, request.emails, request.filter, request.limit)
    queued = (
        queue_sync(deps.clients.sqs, deps.settings().sync_queue_url, workspace, emails, request.options)
        if emails
        else None
    )
    options = request.options or deps.workspaces().get(workspace).sync.options
    body = SyncAccepted(
        request_id=queued.request_id if queued else None,
        queued=queued.queued if queued else 0,
        messages=queued.messages if queued else 0,
        not_found=not_found,
        invalid=invalid,
        options=options,
    )
    return Response(status_code=202, content_type="application/json", body=body)


@router.get("/sync/log", summary="The latest sync batches, newest first", tags=["sync"])
def sync_log(limit: Annotated[int, Query(ge=1, le=100)] = 20) -> SyncLog:
    settings = deps.settings()
    entries = recent_sync_log(deps.clients.dynamodb, settings.state_table, router.context["workspace"], limit)
    return SyncLog(items=[SyncLogEntry.model_validate(e) for e in entries])


@router.get("/settings/sync", summary="The workspace's sync options, property mapping and burst limit", tags=["sync"])
def get_sync_settings() -> SyncSettings:
    return deps.workspaces().get(router.context["workspace"]).sync


@router.put(
    "/settings/sync",
    summary="Replace the workspace's sync options, property mapping (with overwrite policies) and burst limit",
    tags=["sync"],
)
def put_sync_settings(settings: SyncSettings) -> SyncSettings:
    current = deps.workspaces().get(router.context["workspace"])  # the rest of the settings (HubSpot's) are kept
    stored = deps.workspaces().put(current.model_copy(update={"sync": settings}))
    return stored.sync
