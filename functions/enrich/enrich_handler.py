"""Enrich function: consumes EnrichQueue (contacts.imported events, enrich requests, async provider polls) and, on
its schedule, re-queues contacts whose failed enrichment is due."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadpipe.aws import AwsClients
from leadpipe.contacts import ContactRepository
from leadpipe.enrichment.cache import EnrichmentCache
from leadpipe.enrichment.http import Budget, set_container_share
from leadpipe.enrichment.keys import ProviderKeys
from leadpipe.enrichment.service import EnrichService
from leadpipe.events import EventPublisher
from leadpipe.observability import logger, metrics
from leadpipe.settings import get_settings
from leadpipe.suppression import SuppressionList, secret_salt
from leadpipe.workspaces import WorkspaceRepository, workspace_repository

clients = AwsClients()
processor = BatchProcessor(event_type=EventType.SQS)


@cache
def workspaces() -> WorkspaceRepository:
    return workspace_repository(clients.dynamodb, get_settings())


@cache
def service() -> EnrichService:
    settings = get_settings().require(
        "contacts_table",
        "enrich_cache_table",
        "state_table",
        "event_bus_name",
        "enrich_queue_url",
        "suppression_salt_secret",
    )
    set_container_share(settings.enrich_concurrency)

    def intelligence(budget: Budget) -> Any:
        from leadpipe.enrichment.intelligence import Intelligence

        return Intelligence.from_env(budget)

    return EnrichService(
        contacts=ContactRepository(clients.dynamodb, settings.contacts_table),
        cache=EnrichmentCache(
            clients.dynamodb,
            settings.enrich_cache_table,
            ttl_days=settings.cache_days,
            miss_ttl_days=settings.cache_miss_days,
        ),
        publisher=EventPublisher(clients.events, settings.event_bus_name),
        sqs=clients.sqs,
        settings=settings,
        keys=ProviderKeys(settings.provider_keys_path, ssm_client=clients.get("ssm")),
        suppression=SuppressionList(
            clients.dynamodb,
            settings.state_table,
            secret_salt(settings.suppression_salt_secret, clients.get("secretsmanager")),
        ),
        intelligence=intelligence,
        workspaces=workspace_repository(clients.dynamodb, settings),
    )


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    margin = service().settings.enrich_time_margin_ms / 1000
    budget = Budget.from_lambda(lambda_context.get_remaining_time_in_millis, margin=margin)
    service().handle_message(record.body, budget=budget)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    if event.get("detail-type") == "Scheduled Event":
        # every workspace's due retries (the registry lists those that ever had a key or an import)
        requeued = {ws: service().requeue_due(ws) for ws in workspaces().known()}
        return {"requeued": sum(q.queued for q in requeued.values() if q), "workspaces": len(requeued)}
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
