"""Retention function: every day, removes enrichment data older than RETENTION_DAYS (leadpipe.retention).

The schedule's event purges with the configured retention (0: off). A manual invocation may send
``{"retention_days": N}`` or ``{"cutoff": "<ISO time>"}``, optionally with ``"workspace": "<ws>"``."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from leadpipe.aws import AwsClients
from leadpipe.contacts import ContactRepository
from leadpipe.enrichment.http import Budget
from leadpipe.observability import logger, metrics
from leadpipe.retention import RetentionService
from leadpipe.settings import get_settings

clients = AwsClients()


@cache
def service() -> RetentionService:
    settings = get_settings().require("contacts_table", "enrich_cache_table")
    return RetentionService(
        ContactRepository(clients.dynamodb, settings.contacts_table), cache_table=settings.enrich_cache_table
    )


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    budget = Budget.from_lambda(context.get_remaining_time_in_millis, margin=30.0)
    report = service().run(event, retention_days=get_settings().retention_days, budget=budget)
    return report.as_dict()
