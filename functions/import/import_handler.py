"""Import function: consumes ImportQueue (S3 ObjectCreated notifications and ``import.run`` messages) and
ChangeQueue (HubSpot contact changes from the webhook intake and the poller, ``change.batch`` messages)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadpipe.aws import AwsClients
from leadpipe.changes.reimport import ChangeService
from leadpipe.contacts import ContactRepository
from leadpipe.enrichment.cache import EnrichmentCache
from leadpipe.enrichment.http import Budget, set_container_share
from leadpipe.enrichment.keys import ProviderKeys
from leadpipe.events import EventPublisher
from leadpipe.importer import ImportService
from leadpipe.jobs import JobRepository
from leadpipe.observability import logger, metrics
from leadpipe.remote_import import make_reader
from leadpipe.settings import get_settings
from leadpipe.suppression import SuppressionList, secret_salt
from leadpipe.workspaces import workspace_repository

clients = AwsClients()
processor = BatchProcessor(event_type=EventType.SQS)
CHANGE_TYPE = "change.batch"


@cache
def service() -> ImportService:
    settings = get_settings().require(
        "contacts_table", "state_table", "event_bus_name", "import_queue_url", "suppression_salt_secret"
    )
    set_container_share(settings.hubspot_containers, settings.hubspot_limit_share)
    return ImportService(
        s3=clients.s3,
        sqs=clients.sqs,
        contacts=ContactRepository(clients.dynamodb, settings.contacts_table),
        jobs=JobRepository(clients.dynamodb, settings.state_table),
        publisher=EventPublisher(clients.events, settings.event_bus_name),
        settings=settings,
        readers=lambda job, budget: make_reader(
            job, budget, settings=settings, keys=keys(), workspaces=workspace_repository(clients.dynamodb, settings)
        ),
        suppression=suppression(),
    )


@cache
def suppression() -> SuppressionList:
    """Erased emails (salted hashes): import and re-import refuse them. The salt is read on first use."""
    settings = get_settings().require("state_table", "suppression_salt_secret")
    return SuppressionList(
        clients.dynamodb,
        settings.state_table,
        secret_salt(settings.suppression_salt_secret, clients.get("secretsmanager")),
    )


@cache
def keys() -> ProviderKeys:
    return ProviderKeys(get_settings().provider_keys_path, ssm_client=clients.get("ssm"))


@cache
def changes() -> ChangeService:
    settings = get_settings().require(
        "contacts_table", "state_table", "event_bus_name", "change_queue_url", "suppression_salt_secret"
    )
    set_container_share(settings.hubspot_containers, settings.hubspot_limit_share)
    return ChangeService(
        contacts=ContactRepository(clients.dynamodb, settings.contacts_table),
        dynamodb=clients.dynamodb,
        state_table=settings.state_table,
        publisher=EventPublisher(clients.events, settings.event_bus_name),
        sqs=clients.sqs,
        settings=settings,
        keys=keys(),
        workspaces=workspace_repository(clients.dynamodb, settings),
        cache=EnrichmentCache(clients.dynamodb, settings.enrich_cache_table) if settings.enrich_cache_table else None,
        suppression=suppression(),
    )


def is_change(body: str) -> bool:
    """A ChangeQueue message (``change.batch``); anything else is ImportQueue's."""
    try:
        data = json.loads(body)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("type") == CHANGE_TYPE


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    if is_change(record.body):
        budget = Budget.from_lambda(lambda_context.get_remaining_time_in_millis, margin=20.0)
        changes().handle_message(record.body, budget=budget)
        return
    service().handle_message(
        record.body,
        remaining_ms=lambda_context.get_remaining_time_in_millis,
        receive_count=int(record.attributes.approximate_receive_count or 1),
    )


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
