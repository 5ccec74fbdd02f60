"""Deals function: consumes DealQueue (closed-deal runs asked through the API) and, on its monthly schedule, enriches
the deals closed in the last month; each run ends with the ICP profile recomputed and every contact scored."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadpipe.aws import AwsClients
from leadpipe.contacts import ContactRepository
from leadpipe.deals.service import SCHEDULED_LOOKBACK_MONTHS, DealService, WaterfallEnricher, serper_signals
from leadpipe.deals.store import DealRepository
from leadpipe.enrichment.cache import EnrichmentCache
from leadpipe.enrichment.http import Budget, set_container_share
from leadpipe.enrichment.keys import ProviderKeys
from leadpipe.enrichment.service import EnrichService
from leadpipe.events import EventPublisher
from leadpipe.observability import logger, metrics
from leadpipe.settings import get_settings
from leadpipe.suppression import SuppressionList, secret_salt
from leadpipe.workspaces import workspace_repository

clients = AwsClients()
processor = BatchProcessor(event_type=EventType.SQS)


@cache
def service() -> DealService:
    settings = get_settings().require(
        "contacts_table", "state_table", "enrich_cache_table", "event_bus_name", "deal_queue_url", "enrich_queue_url"
    )
    set_container_share(2, settings.hubspot_limit_share)
    keys = ProviderKeys(settings.provider_keys_path, ssm_client=clients.get("ssm"))
    contacts = ContactRepository(clients.dynamodb, settings.contacts_table)
    cache_table = EnrichmentCache(
        clients.dynamodb,
        settings.enrich_cache_table,
        ttl_days=settings.cache_days,
        miss_ttl_days=settings.cache_miss_days,
    )
    enrich = EnrichService(
        contacts=contacts,
        cache=cache_table,
        publisher=EventPublisher(clients.events, settings.event_bus_name),
        sqs=clients.sqs,
        settings=settings,
        keys=keys,
        suppression=SuppressionList(
            clients.dynamodb,
            settings.state_table,
            secret_salt(settings.suppression_salt_secret, clients.get("secretsmanager")),
        ),
    )
    return DealService(
        store=DealRepository(clients.dynamodb, settings.state_table),
        contacts=contacts,
        sqs=clients.sqs,
        settings=settings,
        keys=keys,
        workspaces=workspace_repository(clients.dynamodb, settings),
        enricher=WaterfallEnricher(enrich),
        signals=serper_signals(settings, keys, cache_table),
        suppression=enrich.suppression,
    )


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    budget = Budget.from_lambda(lambda_context.get_remaining_time_in_millis, margin=30.0)
    service().handle_message(record.body, budget=budget)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    if event.get("detail-type") == "Scheduled Event":
        # the monthly run: last month's deals, for the default workspace; queued like an API run
        run = service().start(
            service().settings.default_workspace, lookback_months=SCHEDULED_LOOKBACK_MONTHS, trigger="schedule"
        )
        return {"run_id": run.run_id}
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
