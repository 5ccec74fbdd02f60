"""API Gateway HTTP API emulation: route selection, payload format 2.0 events, and response translation."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway HTTP API payload limit
MAX_EVENT_BYTES = 6 * 1024 * 1024  # Lambda's synchronous invocation payload limit
_TEXT_TYPES = (
    "text/",
    "application/json",
    "application/xml",
    "application/javascript",
    "application/x-www-form-urlencoded",
    "application/csv",
)


@dataclass(frozen=True)
class Route:
    method: str  # GET, POST, ... or ANY
    path: str  # /contacts/{email}, /files/{proxy+}, or $default
    function: str  # logical id of the function
    event_name: str

    @property
    def route_key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in ("ANY", method):
            return None
        if self.path == "$default":
            return {}
        pattern = "^"
        for segment in self.path.strip("/").split("/"):
            greedy = re.fullmatch(r"\{(\w+)\+\}", segment)
            param = re.fullmatch(r"\{(\w+)\}", segment)
            if greedy:
                pattern += rf"/(?P<{greedy.group(1)}>.+)"
            elif param:
                pattern += rf"/(?P<{param.group(1)}>[^/]+)"
            else:
                pattern += "/" + re.escape(segment)
        match = re.match(pattern + "/?$", path if path != "" else "/")
        return match.groupdict() if match else None

    @property
    def specificity(self) -> tuple[int, int, int]:
        """Higher is more specific: API Gateway prefers exact paths, then parameters, then greedy and $default."""
        if self.path == "$default":
            return (-1, 0, 0)  # below every route, ANY /{proxy+} included
        segments = self.path.strip("/").split("/")
        literal = sum(1 for s in segments if not s.startswith("{"))
        greedy = any(s.endswith("+}") for s in segments)
        return (0 if greedy else 1, literal, 1 if self.method != "ANY" else 0)


def select_route(routes: list[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    candidates = []
    for route in routes:
        params = route.match(method, path)
        if params is not None:
            candidates.append((route.specificity, route, params))
    if not candidates:
        return None
    candidates.sort(key=lambda c: c[0], reverse=True)
    return candidates[0][1], candidates[0][2]


def build_event(
    route: Route,
    params: dict[str, str],
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
    account: str,
    api_id: str = "localapi",
    domain: str = "127.0.0.1",
) -> dict[str, Any]:
    """A payload format 2.0 event, as API Gateway sends to a Lambda integration."""
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    # API Gateway adds these; the protocol is the one the client used (plain HTTP here), which a signature over the
    # called URL (HubSpot's webhooks) depends on.
    merged.setdefault("x-forwarded-proto", "http")
    merged.setdefault("x-forwarded-for", source_ip)
    query: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    content_type = merged.get("content-type", "")
    is_text = content_type.startswith(_TEXT_TYPES) or not content_type
    text_body: str | None = None
    if body:
        if is_text:
            try:
                text_body = body.decode("utf-8")
            except UnicodeDecodeError:
                is_text = False
        if not is_text:
            text_body = base64.b64encode(body).decode("ascii")
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": merged,
        "requestContext": {
            "accountId": account,
            "apiId": api_id,
            "domainName": domain,
            "domainPrefix": domain.split(".", maxsplit=1)[0],
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route.route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": bool(body) and not is_text,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if params:
        event["pathParameters"] = params
    if text_body is not None:
        event["body"] = text_body
    return event


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def translate_response(result: Any) -> HttpResponse:
    """A Lambda result -> an HTTP response, per payload format 2.0 (including its inference rules)."""
    if not (isinstance(result, dict) and "statusCode" in result):
        body = json.dumps(result).encode()
        return HttpResponse(200, [("content-type", "application/json")], body)
    headers: list[tuple[str, str]] = []
    for name, value in (result.get("headers") or {}).items():
        headers.append((name, str(value)))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((name, str(v)) for v in values)
    for cookie in result.get("cookies") or []:
        headers.append(("set-cookie", cookie))
    raw = result.get("body")
    if raw is None:
        body = b""
    elif result.get("isBase64Encoded"):
        body = base64.b64decode(raw)
    else:
        body = str(raw).encode("utf-8")
    if not any(h[0].lower() == "content-type" for h in headers) and body:
        headers.append(("content-type", "application/json"))
    return HttpResponse(int(result["statusCode"]), headers, body)


def gateway_error(status: int, message: str) -> HttpResponse:
    """The bare JSON API Gateway itself answers with (no route, integration failure, too large)."""
    return HttpResponse(status, [("content-type", "application/json")], json.dumps({"message": message}).encode())
