"""Polling function: on its schedule, searches HubSpot for contacts changed since each polled workspace's cursor
and puts them on ChangeQueue (portals webhooks cannot reach)."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from leadpipe.aws import AwsClients
from leadpipe.changes.poller import PollService
from leadpipe.enrichment.http import Budget, set_container_share
from leadpipe.enrichment.keys import ProviderKeys
from leadpipe.observability import logger, metrics
from leadpipe.settings import get_settings
from leadpipe.workspaces import workspace_repository

clients = AwsClients()


@cache
def service() -> PollService:
    settings = get_settings().require("state_table", "change_queue_url")
    set_container_share(1, settings.hubspot_limit_share)
    return PollService(
        dynamodb=clients.dynamodb,
        state_table=settings.state_table,
        sqs=clients.sqs,
        settings=settings,
        keys=ProviderKeys(settings.provider_keys_path, ssm_client=clients.get("ssm")),
        workspaces=workspace_repository(clients.dynamodb, settings),
    )


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    budget = Budget.from_lambda(context.get_remaining_time_in_millis, margin=5.0)
    results = service().run(budget)
    return {
        "workspaces": [
            {"workspace": r.workspace, "changes": r.changes, "complete": r.complete, "error": r.error} for r in results
        ]
    }
