"""/deals/enrichment: closed-deal runs (won and lost deals from HubSpot), their status and summary."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, ConfigDict, Field

from api_routes import deps
from leadpipe.deals.service import MAX_LIMIT, MAX_LOOKBACK_MONTHS
from leadpipe.deals.store import DealRun

router = APIGatewayHttpRouter()


class DealEnrichmentRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    lookback_months: int = Field(
        6, ge=1, le=MAX_LOOKBACK_MONTHS, alias="lookbackMonths", description="deals closed in the last N months"
    )
    limit: int | None = Field(None, ge=1, le=MAX_LIMIT, description="at most this many deals, newest first")


@router.post(
    "/deals/enrichment",
    summary="Enrich the won and lost deals closed in the lookback window, then recompute the ICP profile",
    responses={202: {"description": "Run queued", "content": {"application/json": {"model": DealRun}}}},
    tags=["deals"],
)
def start_deal_enrichment(request: DealEnrichmentRequest) -> Response[DealRun]:
    run = deps.deals().start(
        router.context["workspace"], lookback_months=request.lookback_months, limit=request.limit, trigger="api"
    )
    return Response(status_code=202, content_type="application/json", body=run)


@router.get(
    "/deals/enrichment/status",
    summary="Configuration and statistics of closed-deal enrichment, and the last run",
    tags=["deals"],
)
def deal_enrichment_status() -> dict[str, Any]:
    return deps.deals().status(router.context["workspace"])


@router.get(
    "/deals/enrichment/summary",
    summary="Per-deal breakdown, the last run, won versus lost (industries, sizes, roles, titles), the ICP profile",
    tags=["deals"],
)
def deal_enrichment_summary() -> dict[str, Any]:
    return deps.deals().summary(router.context["workspace"])
