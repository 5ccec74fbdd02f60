"""Activity function: consumes ActivityQueue (the ActivityRule's copy of the pipeline's run events and
contacts.imported) and stores the events as the activity feed (GET /activity), a whole batch in one BatchWriteItem.

A message that is not such an event fails alone (partial batch response) and reaches the DLQ after its retries; a
failed write fails the batch, whose messages come back (the items are keyed by event, so rewriting is harmless)."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadpipe.activity import ActivityEntry, ActivityLog, entry_from_body
from leadpipe.aws import AwsClients
from leadpipe.observability import count, logger, metrics
from leadpipe.settings import get_settings

clients = AwsClients()
processor = BatchProcessor(event_type=EventType.SQS)


@cache
def activity_log() -> ActivityLog:
    return ActivityLog(clients.dynamodb, get_settings().require("state_table").state_table)


def record_handler(record: SQSRecord) -> ActivityEntry:
    return entry_from_body(record.body)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    with processor(records=event["Records"], handler=record_handler):
        processed = processor.process()
    entries = [result for outcome, result, _ in processed if outcome == "success"]
    count("ActivityRecorded", activity_log().write(entries))
    return processor.response()
