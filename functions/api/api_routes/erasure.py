"""DELETE /contacts/{email}: erasure (GDPR) of one person from the caller's workspace (see leadpipe.erasure)."""

from __future__ import annotations

import time
from functools import cache
from typing import Annotated, Literal
from urllib.parse import unquote

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, Field

from api_routes import deps
from leadpipe.enrichment.cache import EnrichmentCache
from leadpipe.enrichment.http import Budget
from leadpipe.enrichment.registry import PROVIDERS
from leadpipe.erasure import ErasureService
from leadpipe.errors import BadRequest
from leadpipe.hubspot.client import HubSpotClient
from leadpipe.normalize import FieldProblem, normalize_email
from leadpipe.suppression import SuppressionList, secret_salt

router = APIGatewayHttpRouter()

HUBSPOT_SECONDS = 10.0  # of the request's 29 s: HubSpot's retries and rate-limit waits stop there


class HubSpotErasure(BaseModel):
    status: Literal["deleted", "not_found", "skipped", "failed"]
    message: str | None = None


class ErasureAnswer(BaseModel):
    workspace: str
    email: str
    contact: bool = Field(description="the contact existed here and was deleted")
    cache_entries: int = Field(description="person-level enrichment cache entries deleted (every provider)")
    job_row_errors: int = Field(description="import row errors that named the email, redacted (row and code kept)")
    source_files: int = Field(description="uploaded CSV files of finished imports holding the email, deleted")
    sync_log_errors: int = Field(description="sync log errors naming the email, redacted")
    deal_contacts: int = Field(description="appearances in closed deals, removed")
    dlq_messages: int = Field(description="dead-letter messages naming the email, removed or rewritten without it")
    hubspot: HubSpotErasure
    suppressed: bool = Field(description="the salted hash of the email is on the suppression list")
    complete: bool = Field(description="false: something is left for a later request (see notes)")
    notes: list[str]
    message: str


@cache
def service() -> ErasureService:
    settings = deps.settings().require("enrich_cache_table", "suppression_salt_secret", "uploads_bucket")
    clients = deps.clients

    def hubspot(workspace: str) -> HubSpotClient | None:
        token = deps.provider_keys().secret(workspace, "hubspot/token", "HUBSPOT_TOKEN")
        if not token:
            return None
        started = time.monotonic()
        return HubSpotClient(
            token,
            base_url=settings.hubspot_base_url,
            burst_limit=deps.workspaces().get(workspace).sync.burst_limit,
            budget=Budget(lambda: HUBSPOT_SECONDS - (time.monotonic() - started), margin=0.0),
            timeout=5.0,
        )

    return ErasureService(
        contacts=deps.contacts(),
        jobs=deps.jobs(),
        dynamodb=clients.dynamodb,
        state_table=settings.state_table,
        cache=EnrichmentCache(clients.dynamodb, settings.enrich_cache_table),
        suppression=SuppressionList(
            clients.dynamodb,
            settings.state_table,
            secret_salt(settings.suppression_salt_secret, clients.get("secretsmanager")),
        ),
        providers=[*settings.provider_order, *PROVIDERS],  # configured now or ever known: every person answer
        s3=clients.s3,
        uploads_bucket=settings.uploads_bucket,
        sqs=clients.sqs,
        dlqs=settings.dlq_urls,
        default_workspace=settings.default_workspace,
        hubspot=hubspot,
    )


@router.delete(
    "/contacts/<email>",
    summary="Erase a person (GDPR): the contact, its cache, job rows, files, DLQ messages; optionally in HubSpot",
    description=(
        "Erases everything leadpipe keeps on this email in the caller's workspace and adds a salted hash of it to "
        "the suppression list, so it is never imported or enriched again (an import row with it becomes the row "
        "error `suppressed`). `hubspot=true` also asks HubSpot to gdpr-delete the contact. Repeating the request "
        "is harmless; an email leadpipe never had is suppressed all the same."
    ),
    tags=["contacts"],
)
def erase_contact(
    email: Annotated[str, Path(max_length=400, description="the email, URL-encoded")],
    hubspot: Annotated[bool, Query(description="also gdpr-delete the contact in HubSpot")] = False,
) -> ErasureAnswer:
    try:
        normalized = normalize_email(unquote(email))
    except FieldProblem as exc:
        raise BadRequest(f"not a valid email: {exc.message}", code="invalid_email") from exc
    report = service().erase(router.context["workspace"], normalized, hubspot=hubspot)
    return ErasureAnswer.model_validate(report.as_dict())
