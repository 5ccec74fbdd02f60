"""/summary: top industries, company sizes, countries, coverage by provider and the quality distribution, from the
facet counters kept with the status counters (one Query of the counter shards; no contact is read)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from api_routes import deps
from leadpipe.stats import Summary, summarise

router = APIGatewayHttpRouter()


class SummaryView(Summary):
    workspace: str


@router.get(
    "/summary",
    summary="Top industries, company sizes, countries, coverage by provider, quality distribution",
    description=(
        "Counted as contacts are written (no scan). Values are grouped in lower case. Contacts written before "
        "leadpipe kept these counts are not in them until they are written again."
    ),
    tags=["operations"],
)
def get_summary(
    top: Annotated[int, Query(ge=1, le=100, description="industries and countries listed")] = 10,
) -> SummaryView:
    workspace = router.context["workspace"]
    summary = summarise(deps.contacts().counter_totals(workspace), top=top)
    return SummaryView(workspace=workspace, **summary.model_dump())
