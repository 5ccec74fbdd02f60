"""Sync function: consumes SyncQueue (contacts.enriched events and sync requests) and, on its schedule,
re-queues contacts whose failed sync is due."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadpipe.aws import AwsClients
from leadpipe.contacts import ContactRepository
from leadpipe.enrichment.http import Budget, set_container_share
from leadpipe.enrichment.keys import ProviderKeys
from leadpipe.events import EventPublisher
from leadpipe.hubspot.sync import SyncService
from leadpipe.observability import logger, metrics
from leadpipe.settings import get_settings
from leadpipe.workspaces import WorkspaceRepository, workspace_repository

clients = AwsClients()
processor = BatchProcessor(event_type=EventType.SQS)


@cache
def workspaces() -> WorkspaceRepository:
    return workspace_repository(clients.dynamodb, get_settings())


@cache
def service() -> SyncService:
    settings = get_settings().require("contacts_table", "state_table", "event_bus_name", "sync_queue_url")
    set_container_share(settings.sync_concurrency, settings.hubspot_limit_share)
    return SyncService(
        contacts=ContactRepository(clients.dynamodb, settings.contacts_table),
        dynamodb=clients.dynamodb,
        state_table=settings.state_table,
        publisher=EventPublisher(clients.events, settings.event_bus_name),
        sqs=clients.sqs,
        settings=settings,
        keys=ProviderKeys(settings.provider_keys_path, ssm_client=clients.get("ssm")),
        workspaces=workspace_repository(clients.dynamodb, settings),
    )


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    budget = Budget.from_lambda(lambda_context.get_remaining_time_in_millis, margin=20.0)
    service().handle_message(record.body, budget=budget)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    if event.get("detail-type") == "Scheduled Event":
        # every workspace's due retries (the registry lists those that ever had a key or an import)
        requeued = {ws: service().requeue_due(ws) for ws in workspaces().known()}
        return {"requeued": sum(q.queued for q in requeued.values() if q), "workspaces": len(requeued)}
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
