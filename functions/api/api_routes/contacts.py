"""/contacts: list with filters and cursor pagination, get one, edit tags, custom fields and flags, engagements,
CSV export.

Static paths (/contacts/export, /contacts/tags) are matched before /contacts/{email}, both here (the resolver tries
static routes first) and in API Gateway (a literal path beats a parameter), so they are never read as an email.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, quote, unquote

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, Field

from api_routes import deps
from api_routes.schemas import ContactList, ContactView
from leadpipe.contact_edits import (
    MAX_CUSTOM_FILTERS,
    BulkTagRequest,
    BulkTagResult,
    ContactPatch,
    bulk_tags,
    parse_custom_filter,
    update_contact,
)
from leadpipe.engagements import MAX_HISTORY, EngagementRequest, add_engagement
from leadpipe.errors import BadRequest, NotFound
from leadpipe.export import EXPORT_URL_TTL, INLINE_MAX_BYTES, MAX_ROWS, ContactExporter, ExportFilter
from leadpipe.models import Engagement, EngagementType, LifecycleStage, PipelineStatus, utcnow
from leadpipe.normalize import FieldProblem, normalize_domain, normalize_email

router = APIGatewayHttpRouter()

CUSTOM_FILTER_DOC = (
    "custom field filter key:value (exact value, as the contact shows it; key as the import names a column, e.g. "
    f"lead_source:webinar). Repeat the parameter to require several (at most {MAX_CUSTOM_FILTERS})"
)
EXPORT_TIME_MARGIN_MS = 12_000  # left for writing the CSV and uploading it once reading stops


# ------------------------------------------------------------------------------------------------ helpers


def _email(raw: str) -> str:
    try:
        return normalize_email(unquote(raw))
    except FieldProblem as exc:
        raise BadRequest(f"not a valid email: {exc.message}", code="invalid_email") from exc


def _custom_filters() -> dict[str, str]:
    """Every ``custom`` query parameter, read from the raw query string: a value may contain a comma, which the
    event's ``queryStringParameters`` also uses to join repeated parameters (so the parsed ``custom`` argument,
    split on commas, only documents the parameter)."""
    raw = router.current_event.raw_query_string or ""
    values = [v for k, v in parse_qsl(raw, keep_blank_values=True) if k == "custom"]
    if len(values) > MAX_CUSTOM_FILTERS:
        raise BadRequest(
            f"{len(values)} custom filters (at most {MAX_CUSTOM_FILTERS})",
            code="invalid_custom_filter",
            details=[{"location": "query.custom", "message": f"at most {MAX_CUSTOM_FILTERS}"}],
        )
    filters: dict[str, str] = {}
    for value in values:
        try:
            key, wanted = parse_custom_filter(value)
        except FieldProblem as exc:
            raise BadRequest(
                f"custom filter {value[:80]!r}: {exc.message}",
                code=exc.code,
                details=[{"location": "query.custom", "message": exc.message}],
            ) from exc
        if key in filters and filters[key] != wanted:
            raise BadRequest(f"custom field {key} is asked for two different values", code="invalid_custom_filter")
        filters[key] = wanted
    return filters


def _selector(status: PipelineStatus | None, domain: str | None, tag: str | None) -> ExportFilter:
    if domain:
        try:
            domain = normalize_domain(domain)
        except FieldProblem as exc:
            raise BadRequest(exc.message, code="invalid_domain") from exc
    return ExportFilter(
        status=status, domain=domain, tag=tag.strip().lower() if tag else None, custom=_custom_filters()
    )


# ------------------------------------------------------------------------------------------------ listing


@router.get("/contacts", summary="List contacts, newest first", tags=["contacts"])
def list_contacts(
    status: Annotated[PipelineStatus | None, Query(description="pipeline status")] = None,
    domain: Annotated[str | None, Query(max_length=253, description="company domain")] = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    custom: Annotated[list[str] | None, Query(description=CUSTOM_FILTER_DOC)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=4096, description="next_cursor of the previous page")] = None,
    min_quality: Annotated[
        float | None, Query(ge=0, le=1, description="scored contacts whose quality is at least this")
    ] = None,
    max_quality: Annotated[
        float | None, Query(ge=0, le=1, description="scored contacts whose quality is below this")
    ] = None,
) -> ContactList:
    selector = _selector(status, domain, tag)
    page = deps.contacts().find(
        router.context["workspace"],
        status=selector.status,
        domain=selector.domain,
        tag=selector.tag,
        custom=selector.custom or None,
        limit=limit,
        cursor=cursor,
        min_quality=min_quality,
        max_quality=max_quality,
    )
    return ContactList(items=[ContactView.of(c) for c in page.items], next_cursor=page.next_cursor)


# ------------------------------------------------------------------------------------------------ export


class ExportLink(BaseModel):
    url: str = Field(description=f"presigned GET URL of the CSV, valid {EXPORT_URL_TTL} seconds")
    expires_at: int = Field(description="epoch seconds after which the URL no longer works")
    key: str = Field(description="the file in the uploads bucket (exports/ is deleted after a day)")
    filename: str
    rows: int
    size_bytes: int
    next_cursor: str | None = Field(None, description="more contacts match: pass as ?cursor= for the next part")


@router.get(
    "/contacts/export",
    summary="Export contacts as CSV",
    description=(
        "The contacts the filters select (the same filters as GET /contacts), newest first, as CSV: the contact's "
        "fields, tags, status, lifecycle, quality, engagement count, HubSpot ids, custom.<key> columns, and for "
        "each enriched field enriched.<field>, _source, _confidence and _fetched_at. Cells a spreadsheet would run "
        "as a formula (starting with = + - @, a tab or carriage return, or their full-width forms; plain numbers "
        "excepted) start with a '. "
        f"Up to about {INLINE_MAX_BYTES // 1_000_000} MB the CSV is the response (200, text/csv, attachment); a "
        "larger one, or any with delivery=link, is put in the uploads bucket and the answer is 303 See Other with "
        f"Location: a presigned URL valid {EXPORT_URL_TTL} s (the JSON body repeats it). At most `limit` contacts "
        "per request (and fewer if the function's time runs short): the header X-Leadpipe-Next-Cursor (and "
        "next_cursor in the 303 body) then gives ?cursor= for the next part, whose columns may differ."
    ),
    responses={
        200: {
            "description": "The CSV (headers X-Leadpipe-Rows, and X-Leadpipe-Next-Cursor when more match)",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        303: {
            "description": "Too large for a response: download it from Location",
            "content": {"application/json": {"model": ExportLink}},
        },
    },
    tags=["contacts"],
)
def export_contacts(
    status: Annotated[PipelineStatus | None, Query(description="pipeline status")] = None,
    domain: Annotated[str | None, Query(max_length=253, description="company domain")] = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    custom: Annotated[list[str] | None, Query(description=CUSTOM_FILTER_DOC)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ROWS, description="most contacts in this part")] = MAX_ROWS,
    cursor: Annotated[str | None, Query(max_length=4096, description="X-Leadpipe-Next-Cursor of a part")] = None,
    delivery: Annotated[
        Literal["auto", "link"], Query(description="auto: in the response when small enough; link: always a URL")
    ] = "auto",
    bom: Annotated[bool, Query(description="start with a UTF-8 byte-order mark (for Excel)")] = False,
) -> Response[Any]:
    selector = _selector(status, domain, tag)
    context = router.lambda_context

    def time_left() -> float:
        return (context.get_remaining_time_in_millis() - EXPORT_TIME_MARGIN_MS) / 1000

    exporter = ContactExporter(deps.contacts(), deps.clients.s3, deps.settings().uploads_bucket)
    result = exporter.export(
        router.context["workspace"],
        selector,
        limit=limit,
        cursor=cursor,
        delivery=delivery,
        bom=bom,
        time_left=time_left if context is not None else None,
    )
    headers: dict[str, str] = {"X-Leadpipe-Rows": str(result.rows), "Cache-Control": "no-store"}
    if result.next_cursor:
        headers["X-Leadpipe-Next-Cursor"] = result.next_cursor
    if result.body is not None:
        headers["Content-Disposition"] = f'attachment; filename="{result.filename}"'
        return Response(status_code=200, content_type="text/csv; charset=utf-8", body=result.body, headers=headers)
    assert result.url is not None and result.key is not None and result.expires_at is not None
    headers["Location"] = result.url
    link = ExportLink(
        url=result.url,
        expires_at=result.expires_at,
        key=result.key,
        filename=result.filename,
        rows=result.rows,
        size_bytes=result.size_bytes,
        next_cursor=result.next_cursor,
    )
    return Response(status_code=303, content_type="application/json", body=link.model_dump_json(), headers=headers)


# ------------------------------------------------------------------------------------------------ tags in bulk


@router.post(
    "/contacts/tags",
    summary="Add and remove tags on up to 100 contacts",
    description=(
        "The same tag changes on every listed contact, in one batch read and transactional writes. Tags follow "
        "the import's rules (trimmed, lower case, at most 64 characters, no , ; |, at most 50 per contact). "
        "Emails that are invalid or not found are listed; a contact the change would take past 50 tags is left "
        "as it was and listed in rejected."
    ),
    tags=["contacts"],
)
def tag_contacts(request: BulkTagRequest) -> BulkTagResult:
    return bulk_tags(deps.contacts(), router.context["workspace"], request, utcnow())


# ------------------------------------------------------------------------------------------------ one contact


@router.get("/contacts/<email>", summary="One contact, with its sources", tags=["contacts"])
def get_contact(
    email: Annotated[str, Path(max_length=400, description="the email, URL-encoded")],
) -> ContactView:
    normalized = _email(email)
    contact = deps.contacts().get(router.context["workspace"], normalized)
    if contact is None:
        raise NotFound(f"no contact {normalized}", code="contact_not_found")
    return ContactView.of(contact)


@router.patch(
    "/contacts/<email>",
    summary="Change a contact's tags, custom fields, do-not-enrich flag or lifecycle stage",
    description=(
        'Body: {"tags": {"add": [...], "remove": [...]}, "custom": {"set": {"key": "value"}, "remove": ["key"]}, '
        '"do_not_enrich": true|false, "lifecycle": "disqualified"}; only what is given changes. Tags and custom '
        "fields follow the import's rules: tags trimmed and lower-cased (at most 64 characters, no , ; |, 50 per "
        "contact); custom keys as the import names a column (lower-case letters, digits, _; at most 64; 50 per "
        "contact), values up to 2000 characters. lifecycle is set exactly as given (a person's decision: the only "
        "way into or out of disqualified). Answers the contact."
    ),
    tags=["contacts"],
)
def patch_contact(
    email: Annotated[str, Path(max_length=400, description="the email, URL-encoded")],
    patch: ContactPatch,
) -> ContactView:
    contact = update_contact(deps.contacts(), router.context["workspace"], _email(email), patch, utcnow())
    return ContactView.of(contact)


# ------------------------------------------------------------------------------------------------ engagements


class EngagementRecorded(BaseModel):
    email: str
    engagement: Engagement
    duplicate: bool = Field(description="an engagement with this id was already recorded: nothing changed")
    lifecycle: LifecycleStage
    previous_lifecycle: LifecycleStage
    engagement_counts: dict[str, int]
    last_engaged_at: datetime | None


class EngagementList(BaseModel):
    email: str
    lifecycle: LifecycleStage
    engagement_counts: dict[str, int] = Field(description="every engagement ever recorded, by type")
    total: int = Field(description="every engagement ever recorded")
    items: list[Engagement] = Field(description=f"newest first; the contact keeps the newest {MAX_HISTORY}")


@router.post(
    "/contacts/<email>/engagements",
    summary="Record an engagement (advances the lifecycle stage)",
    description=(
        "type: email_sent, email_opened, link_clicked, reply_received, meeting_booked or website_visit; at: when "
        "(default now, at most 5 minutes ahead); details: a small flat map; id: your event id, so that a retry is "
        "recorded once. The lifecycle moves forward only: opened, clicked, visit and reply -> engaged, "
        "meeting_booked -> converted, email_sent -> no change; a disqualified contact stays disqualified. "
        "201 when recorded, 200 when the id was already recorded."
    ),
    responses={
        201: {"description": "Recorded", "content": {"application/json": {"model": EngagementRecorded}}},
        200: {
            "description": "Already recorded (same id)",
            "content": {"application/json": {"model": EngagementRecorded}},
        },
    },
    tags=["contacts"],
)
def record_engagement(
    email: Annotated[str, Path(max_length=400, description="the email, URL-encoded")],
    request: EngagementRequest,
) -> Response[EngagementRecorded]:
    recorded = add_engagement(deps.contacts(), router.context["workspace"], _email(email), request, utcnow())
    contact = recorded.contact
    body = EngagementRecorded(
        email=contact.email,
        engagement=recorded.engagement,
        duplicate=recorded.duplicate,
        lifecycle=contact.lifecycle,
        previous_lifecycle=recorded.previous_lifecycle,
        engagement_counts=contact.engagement_counts,
        last_engaged_at=contact.last_engaged_at,
    )
    headers = {"Location": f"/contacts/{quote(contact.email, safe='')}/engagements"}
    status = 200 if recorded.duplicate else 201
    return Response(status_code=status, content_type="application/json", body=body, headers=headers)


@router.get(
    "/contacts/<email>/engagements",
    summary="A contact's engagements, newest first",
    tags=["contacts"],
)
def list_engagements(
    email: Annotated[str, Path(max_length=400, description="the email, URL-encoded")],
    type: Annotated[EngagementType | None, Query(description="only this type")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_HISTORY)] = MAX_HISTORY,
) -> EngagementList:
    normalized = _email(email)
    contact = deps.contacts().get(router.context["workspace"], normalized)
    if contact is None:
        raise NotFound(f"no contact {normalized}", code="contact_not_found")
    items = [e for e in contact.engagements if type is None or e.type == type]
    return EngagementList(
        email=contact.email,
        lifecycle=contact.lifecycle,
        engagement_counts=contact.engagement_counts,
        total=sum(contact.engagement_counts.values()),
        items=items[:limit],
    )
