"""HTTP API function: routes in ``api_routes``, errors mapped to JSON once, here at the edge."""

from __future__ import annotations

import base64
import json
from typing import Any

from api_routes import activity, console, contacts, deals, dlq, enrich, erasure, imports, keys, status, summary, sync
from api_routes import workspace as workspace_settings
from api_routes.deps import key_resolver
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadpipe import __version__
from leadpipe.errors import LeadpipeError, Unauthorized
from leadpipe.observability import logger, metrics

app = APIGatewayHttpResolver(enable_validation=True)


PUBLIC_PATHS = frozenset({"/openapi.json"})
CONSOLE_PREFIX = "/console/"  # the web console's files (GET / is its page): public, it asks for a key itself


def is_public(method: str, path: str) -> bool:
    """Routes anyone may call: the OpenAPI document, and reading the console's static files."""
    return path in PUBLIC_PATHS or (method == "GET" and (path == "/" or path.startswith(CONSOLE_PREFIX)))


# Routes whose request body is not JSON (POST /imports takes the CSV file itself, or JSON).
RAW_BODY_ROUTES = frozenset({("POST", "/imports")})


def gate(event: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    """What every request passes before routing and validation: (workspace, None), or (None, the refusal).

    Authentication happens here, in this one place: every route but the public ones needs an API key
    (``Authorization: Bearer <key>`` or ``x-api-key``), which binds the request to the key's workspace; routes read
    it from ``router.context["workspace"]`` and never from the request. Then a body sent to a JSON route must be JSON
    (415) and UTF-8 (400) — a form post or a CSV sent to /enrich is the caller's mistake, not a 500. This runs before
    the resolver because its validation middleware runs before any middleware of ours: a caller without a key
    learns nothing about a route's schema.
    """
    path = str(event.get("rawPath") or "/")
    http = (event.get("requestContext") or {}).get("http") or {}
    method = str(http.get("method") or "GET").upper()
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    workspace = None
    if not is_public(method, path):
        try:
            workspace = key_resolver().workspace(headers)
        except Unauthorized as exc:
            return None, _refusal(
                exc.http_status, exc.code, exc.message, {"WWW-Authenticate": 'Bearer realm="leadpipe"'}
            )
    body = event.get("body")
    if method in {"POST", "PUT", "PATCH"} and body and (method, path) not in RAW_BODY_ROUTES:
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type and content_type != "application/json" and not content_type.endswith("+json"):
            message = (
                f"Content-Type {content_type!r} is not accepted by {method} {path}: send JSON "
                "(Content-Type: application/json)"
            )
            return None, _refusal(415, "unsupported_media_type", message)
        if event.get("isBase64Encoded"):
            try:
                base64.b64decode(body, validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                return None, _refusal(400, "invalid_body", "the body is not UTF-8 text: send JSON")
    return workspace, None


def _refusal(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "body": json.dumps({"error": {"code": code, "message": message}}),
        "isBase64Encoded": False,
    }


app.include_router(imports.router)
app.include_router(contacts.router)
app.include_router(erasure.router)
app.include_router(status.router)
app.include_router(summary.router)
app.include_router(activity.router)
app.include_router(enrich.router)
app.include_router(sync.router)
app.include_router(deals.router)
app.include_router(keys.router)
app.include_router(workspace_settings.router)
app.include_router(dlq.router)
app.include_router(console.router)


def _error(status_code: int, code: str, message: str, details: Any = None) -> Response[Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return Response(status_code=status_code, content_type="application/json", body={"error": body})


@app.exception_handler(LeadpipeError)
def _leadpipe_error(exc: LeadpipeError) -> Response[Any]:
    if exc.http_status >= 500:
        logger.exception("request failed")
    return _error(exc.http_status, exc.code, exc.message, exc.details)


@app.exception_handler(RequestValidationError)
def _validation_error(exc: RequestValidationError) -> Response[Any]:
    details = [
        {
            "location": ".".join(str(p) for p in e.get("loc", ())),
            "message": e.get("msg"),
            "type": e.get("type"),
        }
        for e in exc.errors()
    ]
    return _error(400, "validation_error", "the request is not valid", details)


@app.exception_handler(RequestUnsupportedContentType)
def _unsupported_content_type(exc: RequestUnsupportedContentType) -> Response[Any]:
    return _error(415, "unsupported_media_type", "this route takes a JSON body (Content-Type: application/json)")


@app.not_found
def _not_found(exc: NotFoundError) -> Response[Any]:
    return _error(
        404,
        "route_not_found",
        f"no route {app.current_event.request_context.http.method} {app.current_event.path}",
    )


@app.exception_handler(Exception)
def _unexpected(exc: Exception) -> Response[Any]:
    logger.exception("unhandled error")
    request_id = app.current_event.request_context.request_id
    return _error(500, "internal_error", f"internal error (request {request_id})")


@app.get("/openapi.json", summary="This API's OpenAPI document", tags=["meta"])
def openapi() -> Response[str]:
    document = app.get_openapi_json_schema(
        title="leadpipe",
        version=__version__,
        description="Contact import, enrichment and HubSpot sync. Errors are {error: {code, message, details}}.",
    )
    spec = json.loads(document)
    spec.setdefault("paths", {})["/webhooks/hubspot"] = WEBHOOK_OPERATION  # served by the webhook function
    return Response(status_code=200, content_type="application/json", body=json.dumps(spec))


def _answer(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"type": "object"}}}}


WEBHOOK_OPERATION: dict[str, Any] = {
    "post": {
        "summary": "HubSpot webhook intake (signed by HubSpot, no API key)",
        "description": (
            "HubSpot's webhook deliveries: a JSON array of at most 100 events, signed with X-HubSpot-Signature-v3 "
            "and X-HubSpot-Request-Timestamp (at most 5 minutes old). Events are put on ChangeQueue and answered "
            "at once; the changed contacts are read back from HubSpot and compared by the import function."
        ),
        "tags": ["webhooks"],
        "operationId": "hubspot_webhook",
        "parameters": [
            {"name": "X-HubSpot-Signature-v3", "in": "header", "required": True, "schema": {"type": "string"}},
            {"name": "X-HubSpot-Request-Timestamp", "in": "header", "required": True, "schema": {"type": "string"}},
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "array", "maxItems": 100, "items": {"type": "object"}}}
            },
        },
        "responses": {
            "200": _answer("accepted: {accepted, queued, ignored}"),
            "400": _answer("malformed JSON, or not an array of events"),
            "401": _answer("missing or wrong signature, stale or future timestamp"),
            "403": _answer("a portal no workspace has claimed, or webhooks switched off for it"),
            "413": _answer("more than 100 events, or too large a body"),
        },
    }
}


# log_event=False whatever POWERTOOLS_LOGGER_LOG_EVENT says: request bodies carry secrets (PUT /settings/hubspot, ...)
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    workspace, refusal = gate(event)
    if refusal is not None:
        return refusal
    if workspace is not None:
        app.append_context(workspace=workspace)  # cleared by the resolver when the request is done
        logger.append_keys(workspace=workspace)
    else:
        logger.remove_keys(["workspace"])
    return app.resolve(event, context)
