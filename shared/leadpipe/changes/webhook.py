"""HubSpot webhook deliveries: is this request HubSpot's (signature), and which events does it carry (parsing).

Pure logic, no I/O: the webhook function passes in the request and a clock, and gets back the signature version that
verified, or the parsed events; anything it must refuse raises :class:`WebhookRejected` with the HTTP status to
answer.

Signatures (https://developers.hubspot.com/docs/apps/legacy-apps/authentication/validating-requests):

- v3: ``X-HubSpot-Signature-v3`` = base64(HMAC-SHA256(client secret, method + URI + body + timestamp)), the
  timestamp being ``X-HubSpot-Request-Timestamp`` (epoch milliseconds, as sent). The URI is the full URL HubSpot
  called with ``%3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B`` decoded (and nothing else). A timestamp older than
  five minutes is refused; so is one more than five minutes ahead of our clock.
- v2: ``X-HubSpot-Signature`` = hex(SHA-256(client secret + method + URI + body)), URI exactly as called;
  v1: hex(SHA-256(client secret + body)); ``X-HubSpot-Signature-Version`` says which. Neither is time-bound, so a
  captured request can be replayed forever: they are accepted only when the caller enables them.

When the v3 header is present and v3 is allowed, it alone decides: a request whose v3 check fails (a replayed one
with a stale timestamp, say) is not given a second chance through the v1/v2 signature HubSpot sends alongside.

Events: the body is a JSON array of at most 100 events. Each needs ``eventId``, ``subscriptionId``, ``portalId``,
``occurredAt``, ``subscriptionType`` and ``objectId`` (association changes carry ``fromObjectId``/``toObjectId``
instead of ``objectId``; ``fromObjectId`` stands in for it). ``eventId`` alone is not unique, hence
:attr:`WebhookEvent.dedupe_key`. Subscription types leadpipe does not handle are accepted and classified
``"ignored"``, never refused: a refusal makes HubSpot retry the whole batch.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from leadpipe.errors import LeadpipeError

SIGNATURE_VERSIONS: Final = frozenset({"v1", "v2", "v3"})
MAX_AGE_MS: Final = 5 * 60 * 1000
MAX_EVENTS: Final = 100
MAX_BODY_BYTES: Final = 1024 * 1024

HEADER_SIGNATURE_V3: Final = "x-hubspot-signature-v3"
HEADER_TIMESTAMP: Final = "x-hubspot-request-timestamp"
HEADER_SIGNATURE: Final = "x-hubspot-signature"
HEADER_SIGNATURE_VERSION: Final = "x-hubspot-signature-version"

# The percent-encodings HubSpot decodes in the URI before it signs it (v3 only), upper or lower case hex.
_SIGNED_URI_DECODED: Final = {
    "3A": ":",
    "2F": "/",
    "3F": "?",
    "40": "@",
    "21": "!",
    "24": "$",
    "27": "'",
    "28": "(",
    "29": ")",
    "2A": "*",
    "2C": ",",
    "3B": ";",
}
_SIGNED_URI_RE: Final = re.compile("%(" + "|".join(_SIGNED_URI_DECODED) + ")", re.IGNORECASE)
_TIMESTAMP_RE: Final = re.compile(r"[0-9]{1,16}")
_MAX_DETAILS: Final = 20

EventKind = Literal["contact_change", "contact_deletion", "ignored"]

CONTACT_CHANGE_TYPES: Final = frozenset(
    {
        "contact.creation",
        "contact.propertyChange",
        "contact.restore",
        "contact.merge",
        "contact.associationChange",
    }
)
CONTACT_DELETION_TYPES: Final = frozenset({"contact.deletion", "contact.privacyDeletion"})


class WebhookRejected(LeadpipeError):
    """A delivery leadpipe refuses: ``status`` is the HTTP status to answer (400, 401, 403, 413), ``code`` a stable
    machine code, ``message`` says why without revealing anything secret."""

    code = "webhook_rejected"
    http_status = 400

    def __init__(self, status: int, code: str, message: str, *, details: Any = None) -> None:
        super().__init__(message, code=code, details=details)
        self.status = status
        self.http_status = status

    def __repr__(self) -> str:
        return f"WebhookRejected({self.status}, {self.code!r}, {self.message!r})"


# ------------------------------------------------------------------------------------------------------ signatures


def signed_uri(uri: str) -> str:
    """The URI as HubSpot's v3 signature covers it: the listed percent-encodings decoded in one pass, the rest
    (``%20``, ``%25``, ``%2B``, ...) left as they are."""
    return _SIGNED_URI_RE.sub(lambda m: _SIGNED_URI_DECODED[m.group(1).upper()], uri)


def expected_signature(
    version: str, *, method: str, uri: str, body: bytes, client_secret: str, timestamp: str = ""
) -> str:
    """The signature HubSpot would send for this request (``uri`` as called; v3 decodes it itself)."""
    secret = client_secret.encode()
    if version == "v3":
        source = method.upper().encode() + signed_uri(uri).encode() + body + timestamp.encode()
        return base64.b64encode(hmac.new(secret, source, hashlib.sha256).digest()).decode("ascii")
    if version == "v2":
        return hashlib.sha256(secret + method.upper().encode() + uri.encode() + body).hexdigest()
    if version == "v1":
        return hashlib.sha256(secret + body).hexdigest()
    raise ValueError(f"unknown signature version {version!r}")


def verify_signature(
    *,
    method: str,
    uri: str,
    body: bytes,
    headers: Mapping[str, str],
    client_secret: str,
    now_ms: int,
    allow_versions: frozenset[str] = frozenset({"v3"}),
    max_age_ms: int = MAX_AGE_MS,
) -> str:
    """Checks that HubSpot signed this request with ``client_secret``; returns the version that verified.

    ``uri`` is the full URL as called (scheme, host, path, raw query), ``body`` the raw bytes, ``headers`` looked up
    case-insensitively, ``now_ms`` our clock in epoch milliseconds. Raises :class:`WebhookRejected` (401) when the
    signature is missing, of a version not allowed or unknown, its timestamp missing, malformed or more than
    ``max_age_ms`` away from ``now_ms``, or when it does not match.
    """
    unknown = allow_versions - SIGNATURE_VERSIONS
    if unknown:
        raise ValueError(f"unknown signature versions {sorted(unknown)}; known: {sorted(SIGNATURE_VERSIONS)}")
    if not client_secret:
        raise WebhookRejected(401, "no_client_secret", "no HubSpot client secret to verify the signature with")
    lower = {k.lower(): v for k, v in headers.items()}
    v3_signature = (lower.get(HEADER_SIGNATURE_V3) or "").strip()
    legacy_signature = (lower.get(HEADER_SIGNATURE) or "").strip()

    if v3_signature and "v3" in allow_versions:
        timestamp = _fresh_timestamp(lower.get(HEADER_TIMESTAMP), now_ms, max_age_ms)
        expected = expected_signature(
            "v3", method=method, uri=uri, body=body, client_secret=client_secret, timestamp=timestamp
        )
        # a base64 value never holds a space; some proxies turn its '+' into one
        _require_match(expected, v3_signature.replace(" ", "+"))
        return "v3"

    if legacy_signature:
        version = (lower.get(HEADER_SIGNATURE_VERSION) or "").strip().lower()
        if version not in {"v1", "v2"}:
            shown = f"{version!r}" if version else "missing"
            raise WebhookRejected(
                401, "unknown_signature_version", f"X-HubSpot-Signature-Version is {shown}; expected v1 or v2"
            )
        if version not in allow_versions:
            raise WebhookRejected(401, "signature_version_disabled", f"{version} signatures are not accepted")
        expected = expected_signature(version, method=method, uri=uri, body=body, client_secret=client_secret)
        _require_match(expected, legacy_signature.lower())
        return version

    if v3_signature:
        raise WebhookRejected(401, "signature_version_disabled", "v3 signatures are not accepted")
    raise WebhookRejected(401, "missing_signature", "no X-HubSpot-Signature-v3 header")


def _fresh_timestamp(raw: str | None, now_ms: int, max_age_ms: int) -> str:
    """The timestamp header as sent (it is part of the signed string), once it is known to be recent."""
    text = (raw or "").strip()
    if not text:
        raise WebhookRejected(401, "missing_timestamp", "no X-HubSpot-Request-Timestamp header")
    if not _TIMESTAMP_RE.fullmatch(text):
        raise WebhookRejected(
            401, "invalid_timestamp", "X-HubSpot-Request-Timestamp is not a time in epoch milliseconds"
        )
    age = now_ms - int(text)
    if age > max_age_ms:
        raise WebhookRejected(401, "stale_timestamp", f"the request was signed {age} ms ago (at most {max_age_ms})")
    if -age > max_age_ms:
        raise WebhookRejected(
            401, "future_timestamp", f"the request is dated {-age} ms ahead of our clock (at most {max_age_ms})"
        )
    return text


def _require_match(expected: str, given: str) -> None:
    # bytes, not str: compare_digest refuses non-ASCII str, and a header may hold anything
    if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogateescape")):
        raise WebhookRejected(401, "signature_mismatch", "the signature does not match the request")


# ---------------------------------------------------------------------------------------------------------- events


def _as_text(value: Any) -> Any:
    """HubSpot sends these as strings; a number or boolean is taken as its text rather than refused."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


_Id = Annotated[int, Field(strict=True, ge=0)]
_Text = Annotated[str | None, BeforeValidator(_as_text)]


class WebhookEvent(BaseModel):
    """One event of a delivery. HubSpot's camelCase names are the aliases; unknown fields are ignored."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    event_id: _Id = Field(alias="eventId")
    subscription_id: _Id = Field(alias="subscriptionId")
    portal_id: _Id = Field(alias="portalId")
    occurred_at: _Id = Field(alias="occurredAt", description="epoch milliseconds")
    subscription_type: Annotated[str, Field(strict=True, min_length=1)] = Field(alias="subscriptionType")
    object_id: _Id = Field(alias="objectId")
    app_id: int | None = Field(default=None, alias="appId")
    attempt_number: int | None = Field(default=None, alias="attemptNumber")
    object_type_id: _Text = Field(default=None, alias="objectTypeId")
    property_name: _Text = Field(default=None, alias="propertyName")
    property_value: _Text = Field(default=None, alias="propertyValue")
    change_source: _Text = Field(default=None, alias="changeSource")
    source_id: _Text = Field(default=None, alias="sourceId")
    change_flag: _Text = Field(default=None, alias="changeFlag")
    # merges
    primary_object_id: int | None = Field(default=None, alias="primaryObjectId")
    merged_object_ids: tuple[int, ...] = Field(default=(), alias="mergedObjectIds")
    new_object_id: int | None = Field(default=None, alias="newObjectId")
    number_of_properties_moved: int | None = Field(default=None, alias="numberOfPropertiesMoved")
    # association changes
    association_type: _Text = Field(default=None, alias="associationType")
    from_object_id: int | None = Field(default=None, alias="fromObjectId")
    to_object_id: int | None = Field(default=None, alias="toObjectId")
    association_removed: bool | None = Field(default=None, alias="associationRemoved")
    is_primary_association: bool | None = Field(default=None, alias="isPrimaryAssociation")

    @model_validator(mode="before")
    @classmethod
    def _association_object(cls, data: Any) -> Any:
        """Association changes name the object the event is about ``fromObjectId``, and have no ``objectId``."""
        if (
            isinstance(data, dict)
            and "objectId" not in data
            and "object_id" not in data
            and isinstance(data.get("subscriptionType"), str)
            and data["subscriptionType"].endswith(".associationChange")
            and "fromObjectId" in data
        ):
            return {**data, "objectId": data["fromObjectId"]}
        return data

    @property
    def dedupe_key(self) -> str:
        """HubSpot's eventId repeats across subscriptions; with the subscription and the time it does not."""
        return f"{self.event_id}:{self.subscription_id}:{self.occurred_at}"

    @property
    def kind(self) -> EventKind:
        if self.subscription_type in CONTACT_DELETION_TYPES:
            return "contact_deletion"
        if self.subscription_type in CONTACT_CHANGE_TYPES:
            return "contact_change"
        return "ignored"


def parse_events(body: bytes, *, max_events: int = MAX_EVENTS, max_bytes: int = MAX_BODY_BYTES) -> list[WebhookEvent]:
    """The events of a delivery body, in the order sent.

    Raises :class:`WebhookRejected`: 413 ``body_too_large`` beyond ``max_bytes``; 400 ``malformed_json``;
    400 ``not_an_array`` for anything but a JSON array; 400 ``no_events`` for an empty one; 413 ``too_many_events``
    beyond ``max_events``; 400 ``invalid_event`` when an element is not an object or lacks a required field or has
    one of the wrong type (the message names the first such element and field, ``details`` lists them).
    """
    if len(body) > max_bytes:
        raise WebhookRejected(413, "body_too_large", f"a webhook body is at most {max_bytes} bytes, got {len(body)}")
    try:
        data = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise WebhookRejected(400, "malformed_json", f"the body is not valid JSON: {_short(exc)}") from None
    if not isinstance(data, list):
        raise WebhookRejected(400, "not_an_array", f"the body must be a JSON array of events, got {_json_type(data)}")
    if not data:
        raise WebhookRejected(400, "no_events", "the body is an empty array")
    if len(data) > max_events:
        raise WebhookRejected(413, "too_many_events", f"at most {max_events} events a request, got {len(data)}")

    events: list[WebhookEvent] = []
    problems: list[dict[str, Any]] = []
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            problems.append({"index": index, "field": None, "problem": f"not an object but {_json_type(item)}"})
            continue
        try:
            events.append(WebhookEvent.model_validate(item))
        except ValidationError as exc:
            problems.extend(_problems(index, exc))
    if problems:
        first = problems[0]
        where = f"event {first['index']}" + (f", field {first['field']}" if first["field"] else "")
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise WebhookRejected(
            400, "invalid_event", f"{where}: {first['problem']}{more}", details=problems[:_MAX_DETAILS]
        )
    return events


def events_by_portal(events: Iterable[WebhookEvent]) -> dict[int, list[WebhookEvent]]:
    """The events grouped by HubSpot portal (account), portals and events in the order first seen."""
    grouped: dict[int, list[WebhookEvent]] = {}
    for event in events:
        grouped.setdefault(event.portal_id, []).append(event)
    return grouped


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _problems(index: int, exc: ValidationError) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in error["loc"]) or None
        problem = "missing" if error["type"] == "missing" else error["msg"]
        found.append({"index": index, "field": field, "problem": problem})
    return found


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
