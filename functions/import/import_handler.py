"""Import function: consumes ImportQueue (S3 ObjectCreated notifications and ``import.run`` messages)."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadpipe.aws import AwsClients
from leadpipe.contacts import ContactRepository
from leadpipe.events import EventPublisher
from leadpipe.importer import ImportService
from leadpipe.jobs import JobRepository
from leadpipe.observability import logger, metrics
from leadpipe.settings import get_settings

clients = AwsClients()
processor = BatchProcessor(event_type=EventType.SQS)


@cache
def service() -> ImportService:
    settings = get_settings().require("contacts_table", "state_table", "event_bus_name", "import_queue_url")
    return ImportService(
        s3=clients.s3,
        sqs=clients.sqs,
        contacts=ContactRepository(clients.dynamodb, settings.contacts_table),
        jobs=JobRepository(clients.dynamodb, settings.state_table),
        publisher=EventPublisher(clients.events, settings.event_bus_name),
        settings=settings,
    )


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    service().handle_message(
        record.body,
        remaining_ms=lambda_context.get_remaining_time_in_millis,
        receive_count=int(record.attributes.approximate_receive_count or 1),
    )


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
