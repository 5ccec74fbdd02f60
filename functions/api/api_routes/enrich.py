"""/enrich: queue enrichment for a list of emails or for the contacts matching a filter."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, Field, model_validator

from api_routes import deps
from leadpipe.contact_edits import MAX_CUSTOM_FILTERS, CustomKey, CustomValue
from leadpipe.enrichment.service import queue_enrichment
from leadpipe.errors import BadRequest
from leadpipe.models import EnrichOptions, PipelineStatus
from leadpipe.normalize import FieldProblem, normalize_domain, normalize_email

router = APIGatewayHttpRouter()


class EnrichFilter(BaseModel):
    status: PipelineStatus | None = None
    tag: str | None = Field(None, max_length=64)
    domain: str | None = Field(None, max_length=253)
    custom: dict[CustomKey, CustomValue] | None = Field(
        None,
        max_length=MAX_CUSTOM_FILTERS,
        description='custom fields that must have exactly these values, e.g. {"lead_source": "webinar"}',
    )


class EnrichRequest(BaseModel):
    emails: list[str] | None = Field(None, min_length=1, max_length=1000, description="contacts to enrich")
    filter: EnrichFilter | None = Field(None, description="or: every contact matching this filter (up to limit)")
    limit: int = Field(1000, ge=1, le=10_000, description="most contacts a filter may select")
    options: EnrichOptions = Field(default_factory=EnrichOptions)

    @model_validator(mode="after")
    def _one_selector(self) -> EnrichRequest:
        if (self.emails is None) == (self.filter is None):
            raise ValueError("give either emails or filter")
        return self


class InvalidEmail(BaseModel):
    value: str
    reason: str


class EnrichAccepted(BaseModel):
    request_id: str | None
    queued: int
    messages: int
    not_found: list[str]
    invalid: list[InvalidEmail]
    options: EnrichOptions


def select_emails(
    workspace: str, wanted_emails: list[str] | None, selector: EnrichFilter | None, limit: int
) -> tuple[list[str], list[str], list[InvalidEmail]]:
    """The stored contacts a request selects: (emails, emails not found, invalid values)."""
    invalid: list[InvalidEmail] = []
    not_found: list[str] = []
    emails: list[str] = []
    if wanted_emails is not None:
        wanted: list[str] = []
        for raw in wanted_emails:
            try:
                wanted.append(normalize_email(raw))
            except FieldProblem as exc:
                invalid.append(InvalidEmail(value=raw[:254], reason=exc.message))
        found = deps.contacts().batch_get(workspace, wanted)
        emails = [e for e in dict.fromkeys(wanted) if e in found]
        not_found = [e for e in dict.fromkeys(wanted) if e not in found]
        return emails, not_found, invalid
    assert selector is not None
    domain = None
    if selector.domain:
        try:
            domain = normalize_domain(selector.domain)
        except FieldProblem as exc:
            raise BadRequest(exc.message, code="invalid_domain") from exc
    emails = deps.contacts().emails_matching(
        workspace,
        status=selector.status,
        tag=selector.tag.strip().lower() if selector.tag else None,
        domain=domain,
        custom=selector.custom or None,
        limit=limit,
    )
    return emails, not_found, invalid


@router.post(
    "/enrich",
    summary="Enrich contacts now (a list of emails, or a filter such as status or tag)",
    description=(
        "Queues the contacts on the same queue the automatic path uses. Options: cache (default true), "
        "includeCompany (true), includeIntelligence (false; needs an LLM key), minQuality (the deployment's "
        "MinQuality). Follow progress on the contacts (status enriching -> enriched)."
    ),
    responses={202: {"description": "Queued", "content": {"application/json": {"model": EnrichAccepted}}}},
    tags=["enrichment"],
)
def request_enrichment(request: EnrichRequest) -> Response[EnrichAccepted]:
    workspace = router.context["workspace"]
    emails, not_found, invalid = select_emails(workspace, request.emails, request.filter, request.limit)
    queued = None
    if emails:
        queued = queue_enrichment(
            deps.clients.sqs, deps.settings().enrich_queue_url, workspace, emails, request.options
        )
    body = EnrichAccepted(
        request_id=queued.request_id if queued else None,
        queued=queued.queued if queued else 0,
        messages=queued.messages if queued else 0,
        not_found=not_found,
        invalid=invalid,
        options=request.options,
    )
    return Response(status_code=202, content_type="application/json", body=body)
