"""/status: the workspace's configuration and its stats -- contacts by pipeline status (the counters, not a scan) and
what the enrichment and sync runs did (the stats item, ``leadpipe.stats``)."""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from api_routes import deps
from api_routes.schemas import StatusView
from leadpipe.enrichment.registry import describe
from leadpipe.stats import StatsRepository, status_stats
from leadpipe.workspaces import EffectiveSettings

router = APIGatewayHttpRouter()


@cache
def stats() -> StatsRepository:
    return StatsRepository(deps.clients.dynamodb, deps.settings().state_table)


@router.get(
    "/status",
    summary="Configuration and stats: contacts by pipeline status, runs, cache hit rate, provider calls, last runs",
    tags=["operations"],
)
def get_status() -> StatusView:
    settings = deps.settings()
    workspace = router.context["workspace"]
    counts = deps.contacts().counts(workspace)
    effective = EffectiveSettings.of(deps.workspaces().get(workspace), settings)
    providers = describe(settings.provider_order, deps.provider_keys(), workspace)
    return StatusView(
        workspace=workspace,
        stage=settings.stage,
        config={
            "providers_configured": [p["name"] for p in providers if p["enabled"]],
            "providers_without_key": [p["name"] for p in providers if not p["enabled"]],
            "auto_enrich_on_import": effective.auto_enrich_on_import,
            "auto_sync_after_enrich": effective.auto_sync_after_enrich,
            "cache_days": settings.cache_days,
            "cache_miss_days": settings.cache_miss_days,
            "min_quality": effective.min_quality,
            "field_threshold": effective.field_threshold,
            "enrich_concurrency": settings.enrich_concurrency,
        },
        providers=providers,
        counts=counts,
        total=sum(counts.values()),
        stats=status_stats(stats().get(workspace), counts),
    )
