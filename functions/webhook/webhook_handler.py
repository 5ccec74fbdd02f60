"""Webhook function: ``POST /webhooks/hubspot``. Verifies HubSpot's signature, puts the events on ChangeQueue and
answers at once; the changed contacts are read and compared later, by the import function."""

from __future__ import annotations

import base64
import json
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from leadpipe.aws import AwsClients
from leadpipe.changes.intake import WebhookIntake, called_url
from leadpipe.changes.webhook import WebhookRejected
from leadpipe.enrichment.keys import ProviderKeys
from leadpipe.observability import logger, metrics
from leadpipe.settings import get_settings
from leadpipe.workspaces import workspace_repository

clients = AwsClients()


@cache
def intake() -> WebhookIntake:
    settings = get_settings().require("state_table", "change_queue_url")
    return WebhookIntake(
        sqs=clients.sqs,
        settings=settings,
        workspaces=workspace_repository(clients.dynamodb, settings),
        keys=ProviderKeys(settings.provider_keys_path, ssm_client=clients.get("ssm")),
    )


def _reply(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8")
    http = (event.get("requestContext") or {}).get("http") or {}
    url = called_url(
        headers,
        event.get("rawPath") or http.get("path", ""),
        event.get("rawQueryString") or "",
        (event.get("requestContext") or {}).get("domainName", ""),
    )
    try:
        result = intake().receive(method=http.get("method", "POST"), url=url, headers=headers, body=body)
    except WebhookRejected as exc:
        logger.warning("webhook refused", extra={"status": exc.status, "code": exc.code, "reason": exc.message})
        return _reply(exc.status, {"error": {"code": exc.code, "message": exc.message}})
    return _reply(200, result.body())
