"""/status: configuration and contact counts by pipeline status (counters, not a scan)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from api_routes import deps
from api_routes.schemas import StatusView
from leadpipe.enrichment.registry import describe

router = APIGatewayHttpRouter()


@router.get("/status", summary="Configuration and counts by pipeline status", tags=["operations"])
def get_status() -> StatusView:
    settings = deps.settings()
    workspace = router.context["workspace"]
    counts = deps.contacts().counts(workspace)
    return StatusView(
        workspace=workspace,
        stage=settings.stage,
        config={
            "auto_enrich_on_import": settings.auto_enrich_on_import,
            "auto_sync_after_enrich": settings.auto_sync_after_enrich,
            "cache_days": settings.cache_days,
            "cache_miss_days": settings.cache_miss_days,
            "min_quality": settings.min_quality,
            "field_threshold": settings.enrich_field_threshold,
            "enrich_concurrency": settings.enrich_concurrency,
        },
        providers=describe(settings.provider_order, deps.provider_keys(), workspace),
        counts=counts,
        total=sum(counts.values()),
    )
