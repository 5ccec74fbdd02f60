"""HTTP API function: routes in ``api_routes``, errors mapped to JSON once, here at the edge."""

from __future__ import annotations

import json
from typing import Any

from api_routes import contacts, deals, enrich, imports, keys, status, sync
from api_routes.deps import key_resolver
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadpipe import __version__
from leadpipe.errors import LeadpipeError, Unauthorized
from leadpipe.observability import logger, metrics

app = APIGatewayHttpResolver(enable_validation=True)


PUBLIC_PATHS = frozenset({"/openapi.json"})


def workspace_of_request(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """Authentication, in this one place: every route but the public ones needs an API key
    (``Authorization: Bearer <key>`` or ``x-api-key``), which binds the request to the key's workspace. Routes read
    the workspace from ``router.context["workspace"]`` and never from the request."""
    if app.current_event.path in PUBLIC_PATHS:
        return next_middleware(app)
    try:
        workspace = key_resolver().workspace(dict(app.current_event.headers or {}))
    except Unauthorized as exc:
        response = _error(exc.http_status, exc.code, exc.message)
        response.headers["WWW-Authenticate"] = 'Bearer realm="leadpipe"'
        return response
    app.append_context(workspace=workspace)
    logger.append_keys(workspace=workspace)
    return next_middleware(app)


app.use(middlewares=[workspace_of_request])
app.include_router(imports.router)
app.include_router(contacts.router)
app.include_router(status.router)
app.include_router(enrich.router)
app.include_router(sync.router)
app.include_router(deals.router)
app.include_router(keys.router)


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


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
