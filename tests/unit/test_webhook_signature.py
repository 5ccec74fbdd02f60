"""Unit tests of leadpipe.changes.webhook: HubSpot's request signatures (v3, and v1/v2 when enabled) and the parsing
of webhook event batches.

Test vectors:
- HUBSPOT_DOCS_*: the worked examples of HubSpot's "Validating requests" docs (v1 with a webhook body, v2 for a GET).
- HUBSPOT_CLIENT_*: the vectors of HubSpot's official Python client (hubspot-api-python,
  tests/spec/utils/test_signature.py), including the only published v3 value we found.
- Everything else is built from the documented algorithm, with the signing done here independently of the module.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from leadpipe.changes.webhook import (
    MAX_AGE_MS,
    WebhookEvent,
    WebhookRejected,
    events_by_portal,
    expected_signature,
    parse_events,
    signed_uri,
    verify_signature,
)
from leadpipe.errors import LeadpipeError
from leadpipe_local.fakes.hubspot import FakeHubSpot
from leadpipe_local.fakes.hubspot import signature_v3 as fake_signature_v3
from leadpipe_local.fakes.hubspot import signed_uri as fake_signed_uri

SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
EXAMPLE_URL = "https://www.example.com/webhook_uri"

# https://developers.hubspot.com/docs/faq/v1-request-validation (and the validating-requests page)
HUBSPOT_DOCS_V1_BODY = (
    b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
    b'"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM",'
    b'"changeFlag":"NEW","appId":54321}]'
)
HUBSPOT_DOCS_V1_SIGNATURE = "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
# https://developers.hubspot.com/docs/faq/v2-request-validation: GET, no body
HUBSPOT_DOCS_V2_GET_SIGNATURE = "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"

# HubSpot/hubspot-api-python tests/spec/utils/test_signature.py
HUBSPOT_CLIENT_BODY = b"{'example_field':'example_value'}"
HUBSPOT_CLIENT_TIMESTAMP = "15000000"
HUBSPOT_CLIENT_V1 = "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750"
HUBSPOT_CLIENT_V2 = "4fe4e3a7d3cf09db53be39d0a58130e2aaba074ec123a9e355b876a689a1c383"
HUBSPOT_CLIENT_V3 = "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw="

NOW_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
URL = "https://hooks.example.com/webhooks/hubspot"
BODY = (
    b'[{"eventId":100,"subscriptionId":3100001,"portalId":62515,"appId":9001,"occurredAt":1767225590000,'
    b'"subscriptionType":"contact.propertyChange","attemptNumber":0,"objectId":501,"propertyName":"email",'
    b'"propertyValue":"ada@example.com","changeSource":"CRM_UI","sourceId":"userId:76023669"}]'
)


def hmac_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """v3 as HubSpot's docs describe it, written out here so the module is not checked against itself."""
    source = method.encode() + uri.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()


def v3_headers(
    *, secret: str = SECRET, method: str = "POST", uri: str = URL, body: bytes = BODY, timestamp: int = NOW_MS
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-HubSpot-Signature-v3": hmac_v3(secret, method, uri, body, str(timestamp)),
        "X-HubSpot-Request-Timestamp": str(timestamp),
        "X-HubSpot-Signature-Version": "v3",
    }


def verify(
    headers: Mapping[str, str],
    *,
    uri: str = URL,
    body: bytes = BODY,
    method: str = "POST",
    secret: str = SECRET,
    now_ms: int = NOW_MS,
    allow: frozenset[str] = frozenset({"v3"}),
) -> str:
    return verify_signature(
        method=method,
        uri=uri,
        body=body,
        headers=headers,
        client_secret=secret,
        now_ms=now_ms,
        allow_versions=allow,
    )


def rejected(excinfo: pytest.ExceptionInfo[WebhookRejected]) -> tuple[int, str]:
    return excinfo.value.status, excinfo.value.code


# ------------------------------------------------------------------------------------------- published vectors


def test_hubspot_docs_v1_example_verifies_when_v1_is_enabled() -> None:
    headers = {"X-HubSpot-Signature": HUBSPOT_DOCS_V1_SIGNATURE, "X-HubSpot-Signature-Version": "v1"}

    assert expected_signature(
        "v1", method="POST", uri=EXAMPLE_URL, body=HUBSPOT_DOCS_V1_BODY, client_secret=SECRET
    ) == (HUBSPOT_DOCS_V1_SIGNATURE)
    assert verify(headers, uri=EXAMPLE_URL, body=HUBSPOT_DOCS_V1_BODY, allow=frozenset({"v1", "v3"})) == "v1"


def test_hubspot_docs_v2_get_example_verifies_when_v2_is_enabled() -> None:
    headers = {"X-HubSpot-Signature": HUBSPOT_DOCS_V2_GET_SIGNATURE, "X-HubSpot-Signature-Version": "v2"}

    assert expected_signature("v2", method="GET", uri=EXAMPLE_URL, body=b"", client_secret=SECRET) == (
        HUBSPOT_DOCS_V2_GET_SIGNATURE
    )
    assert verify(headers, method="GET", uri=EXAMPLE_URL, body=b"", allow=frozenset({"v2"})) == "v2"


@pytest.mark.parametrize(
    ("version", "signature", "timestamp"),
    [("v1", HUBSPOT_CLIENT_V1, ""), ("v2", HUBSPOT_CLIENT_V2, ""), ("v3", HUBSPOT_CLIENT_V3, HUBSPOT_CLIENT_TIMESTAMP)],
)
def test_hubspot_client_vectors(version: str, signature: str, timestamp: str) -> None:
    kwargs: dict[str, Any] = {
        "method": "POST",
        "uri": EXAMPLE_URL,
        "body": HUBSPOT_CLIENT_BODY,
        "client_secret": SECRET,
    }

    assert expected_signature(version, timestamp=timestamp, **kwargs) == signature


def test_hubspot_client_v3_vector_verifies() -> None:
    headers = {"X-HubSpot-Signature-v3": HUBSPOT_CLIENT_V3, "X-HubSpot-Request-Timestamp": HUBSPOT_CLIENT_TIMESTAMP}

    assert verify(headers, uri=EXAMPLE_URL, body=HUBSPOT_CLIENT_BODY, now_ms=15_000_000 + 299_999) == "v3"


# ---------------------------------------------------------------------------------------------------------- v3


def test_v3_signature_verifies() -> None:
    assert verify(v3_headers()) == "v3"


def test_headers_are_case_insensitive() -> None:
    headers = {k.upper(): v for k, v in v3_headers().items()}

    assert verify(headers) == "v3"


def test_signature_whose_plus_became_a_space_still_verifies() -> None:
    headers = v3_headers()
    signature = headers["X-HubSpot-Signature-v3"]
    # find a timestamp whose signature has a '+', so the repair is really exercised
    stamp = NOW_MS
    while "+" not in signature:
        stamp -= 1
        headers = v3_headers(timestamp=stamp)
        signature = headers["X-HubSpot-Signature-v3"]
    headers["X-HubSpot-Signature-v3"] = signature.replace("+", " ")

    assert verify(headers) == "v3"


def test_signed_uri_decodes_exactly_hubspots_list() -> None:
    raw = (
        "https://hooks.example.com/webhooks/hubspot?next=%2Fa%3Fb%3Ac%40d%21e%24f%27g%28h%29i%2Aj%2Ck%3Bl"
        "&lower=%3a%2f&keep=%20%25%2B%26%3D%23%5B%22"
    )

    assert signed_uri(raw) == (
        "https://hooks.example.com/webhooks/hubspot?next=/a?b:c@d!e$f'g(h)i*j,k;l&lower=:/&keep=%20%25%2B%26%3D%23%5B%22"
    )
    # one pass: a decoded '%' never forms a new escape
    assert signed_uri("https://h.example/x?q=%253A") == "https://h.example/x?q=%253A"
    # the fake HubSpot agrees
    assert fake_signed_uri(raw) == signed_uri(raw)


def test_v3_covers_the_decoded_uri_not_the_raw_one() -> None:
    raw = "https://hooks.example.com/webhooks/hubspot?workspace=acme%3Aeu&cb=%28x%29%2Cy&space=a%20b"
    decoded = "https://hooks.example.com/webhooks/hubspot?workspace=acme:eu&cb=(x),y&space=a%20b"
    as_hubspot_signs = v3_headers(uri=decoded)
    over_raw = v3_headers(uri=raw)

    assert verify(as_hubspot_signs, uri=raw) == "v3"
    with pytest.raises(WebhookRejected) as excinfo:
        verify(over_raw, uri=raw)
    assert rejected(excinfo) == (401, "signature_mismatch")


def test_signature_made_by_the_fake_hubspot_verifies() -> None:
    url = "http://127.0.0.1:3000/webhooks/hubspot?source=fake%3Alocal"
    timestamp = str(NOW_MS)
    headers = {
        "X-HubSpot-Signature-v3": fake_signature_v3(
            "fake-client-secret", "POST", fake_signed_uri(url), BODY.decode(), timestamp
        ),
        "X-HubSpot-Request-Timestamp": timestamp,
        "X-HubSpot-Signature-Version": "v3",
    }

    assert verify(headers, uri=url, secret="fake-client-secret") == "v3"


class _Capture(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.received.append(
            {
                "method": self.command,
                "url": f"http://{self.headers['Host']}{self.path}",
                "headers": dict(self.headers.items()),
                "body": self.rfile.read(length),
            }
        )
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def capture() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    handler = type("Capture", (_Capture,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_delivery_of_the_fake_hubspot_verifies_and_parses(capture: tuple[str, list[dict[str, Any]]]) -> None:
    base, received = capture
    url = f"{base}/webhooks/hubspot?workspace=acme%3Aeu&tag=%28test%29"
    fake = FakeHubSpot(portal_id=62515, app_id=9001, client_secret="fake-client-secret")
    event = {
        "eventId": 7,
        "subscriptionId": 3100001,
        "portalId": 62515,
        "appId": 9001,
        "occurredAt": NOW_MS - 2000,
        "subscriptionType": "contact.propertyChange",
        "objectId": 501,
        "propertyName": "jobtitle",
        "propertyValue": "CTO",
        "changeSource": "INTEGRATION",
        "sourceId": "9001",
    }

    record = fake._post(url, "fake-client-secret", [event], 0)

    assert record["ok"], record
    [request] = received
    assert request["url"] == url
    version = verify_signature(
        method=request["method"],
        uri=request["url"],
        body=request["body"],
        headers=request["headers"],
        client_secret="fake-client-secret",
        now_ms=int(request["headers"]["X-HubSpot-Request-Timestamp"]) + 1000,
    )
    assert version == "v3"
    [parsed] = parse_events(request["body"])
    assert (parsed.event_id, parsed.object_id, parsed.property_value, parsed.attempt_number) == (7, 501, "CTO", 0)
    assert parsed.dedupe_key == f"7:3100001:{NOW_MS - 2000}"


# --------------------------------------------------------------------------------------------------- rejections


def test_missing_signature() -> None:
    headers = v3_headers()
    del headers["X-HubSpot-Signature-v3"]

    with pytest.raises(WebhookRejected) as excinfo:
        verify(headers)
    assert rejected(excinfo) == (401, "missing_signature")


def test_empty_signature_counts_as_missing() -> None:
    headers = v3_headers()
    headers["X-HubSpot-Signature-v3"] = "  "

    with pytest.raises(WebhookRejected) as excinfo:
        verify(headers)
    assert rejected(excinfo) == (401, "missing_signature")


@pytest.mark.parametrize(
    ("case", "kwargs"),
    [
        ("wrong secret", {"secret": "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"}),
        ("tampered body", {"body": BODY.replace(b"ada@example.com", b"eve@example.com")}),
        ("tampered uri", {"uri": URL + "?x=1"}),
        ("other host", {"uri": URL.replace("hooks.example.com", "evil.example.com")}),
        ("other method", {"method": "PUT"}),
    ],
)
def test_mismatch(case: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(WebhookRejected) as excinfo:
        verify(v3_headers(), **kwargs)
    assert rejected(excinfo) == (401, "signature_mismatch"), case


def test_signature_of_another_timestamp_does_not_verify() -> None:
    headers = v3_headers()
    headers["X-HubSpot-Request-Timestamp"] = str(NOW_MS - 1)

    with pytest.raises(WebhookRejected) as excinfo:
        verify(headers)
    assert rejected(excinfo) == (401, "signature_mismatch")


def test_timestamp_exactly_five_minutes_old_is_accepted() -> None:
    assert MAX_AGE_MS == 300_000
    assert verify(v3_headers(timestamp=NOW_MS - 300_000)) == "v3"
    assert verify(v3_headers(timestamp=NOW_MS + 300_000)) == "v3"


def test_stale_timestamp() -> None:
    with pytest.raises(WebhookRejected) as excinfo:
        verify(v3_headers(timestamp=NOW_MS - 300_001))
    assert rejected(excinfo) == (401, "stale_timestamp")
    assert "300001 ms" in excinfo.value.message


def test_future_timestamp() -> None:
    with pytest.raises(WebhookRejected) as excinfo:
        verify(v3_headers(timestamp=NOW_MS + 300_001))
    assert rejected(excinfo) == (401, "future_timestamp")


def test_max_age_is_configurable() -> None:
    with pytest.raises(WebhookRejected) as excinfo:
        verify_signature(
            method="POST",
            uri=URL,
            body=BODY,
            headers=v3_headers(timestamp=NOW_MS - 1001),
            client_secret=SECRET,
            now_ms=NOW_MS,
            max_age_ms=1000,
        )
    assert rejected(excinfo) == (401, "stale_timestamp")


@pytest.mark.parametrize("value", ["abc", "1.767e12", "-1767225600000", "0x1A", "١٢٣", "1" * 17])
def test_garbage_timestamp(value: str) -> None:
    headers = v3_headers()
    headers["X-HubSpot-Request-Timestamp"] = value

    with pytest.raises(WebhookRejected) as excinfo:
        verify(headers)
    assert rejected(excinfo) == (401, "invalid_timestamp")


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_timestamp(value: str | None) -> None:
    headers = v3_headers()
    if value is None:
        del headers["X-HubSpot-Request-Timestamp"]
    else:
        headers["X-HubSpot-Request-Timestamp"] = value

    with pytest.raises(WebhookRejected) as excinfo:
        verify(headers)
    assert rejected(excinfo) == (401, "missing_timestamp")


def test_non_ascii_signature_is_a_mismatch_not_a_crash() -> None:
    headers = v3_headers()
    headers["X-HubSpot-Signature-v3"] = "é" * 44

    with pytest.raises(WebhookRejected) as excinfo:
        verify(headers)
    assert rejected(excinfo) == (401, "signature_mismatch")


def test_no_client_secret_is_refused() -> None:
    with pytest.raises(WebhookRejected) as excinfo:
        verify(v3_headers(secret=""), secret="")
    assert rejected(excinfo) == (401, "no_client_secret")


def test_unknown_allowed_version_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="v4"):
        verify(v3_headers(), allow=frozenset({"v3", "v4"}))


def test_rejection_is_a_leadpipe_error_with_its_status() -> None:
    error = WebhookRejected(401, "signature_mismatch", "no")

    assert isinstance(error, LeadpipeError)
    assert (error.status, error.http_status, error.to_dict()) == (
        401,
        401,
        {"code": "signature_mismatch", "message": "no"},
    )


# ------------------------------------------------------------------------------------------------------- v1/v2


def legacy_headers(version: str, *, method: str = "POST", uri: str = URL, body: bytes = BODY) -> dict[str, str]:
    if version == "v1":
        signature = hashlib.sha256(SECRET.encode() + body).hexdigest()
    else:
        signature = hashlib.sha256(SECRET.encode() + method.encode() + uri.encode() + body).hexdigest()
    return {"X-HubSpot-Signature": signature, "X-HubSpot-Signature-Version": version}


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_legacy_versions_are_refused_by_default(version: str) -> None:
    with pytest.raises(WebhookRejected) as excinfo:
        verify(legacy_headers(version))
    assert rejected(excinfo) == (401, "signature_version_disabled")


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_legacy_versions_are_accepted_when_enabled(version: str) -> None:
    assert verify(legacy_headers(version), allow=frozenset({"v3", version})) == version


def test_enabling_v1_does_not_enable_v2() -> None:
    with pytest.raises(WebhookRejected) as excinfo:
        verify(legacy_headers("v2"), allow=frozenset({"v1", "v3"}))
    assert rejected(excinfo) == (401, "signature_version_disabled")


def test_v2_covers_method_and_uri() -> None:
    with pytest.raises(WebhookRejected) as excinfo:
        verify(legacy_headers("v2"), uri=URL + "?x=1", allow=frozenset({"v2"}))
    assert rejected(excinfo) == (401, "signature_mismatch")


def test_v1_tampered_body() -> None:
    with pytest.raises(WebhookRejected) as excinfo:
        verify(legacy_headers("v1"), body=BODY + b" ", allow=frozenset({"v1"}))
    assert rejected(excinfo) == (401, "signature_mismatch")


@pytest.mark.parametrize("version", [None, "v9", "v3"])
def test_legacy_signature_of_unknown_version(version: str | None) -> None:
    headers = legacy_headers("v1")
    if version is None:
        del headers["X-HubSpot-Signature-Version"]
    else:
        headers["X-HubSpot-Signature-Version"] = version

    with pytest.raises(WebhookRejected) as excinfo:
        verify(headers, allow=frozenset({"v1", "v2", "v3"}))
    assert rejected(excinfo) == (401, "unknown_signature_version")


def test_a_failing_v3_signature_gets_no_second_chance_through_v1() -> None:
    # a replay: the stale v3 signature is refused even though the (timeless) v1 one is valid and v1 is enabled
    headers = v3_headers(timestamp=NOW_MS - 600_000) | legacy_headers("v1")

    with pytest.raises(WebhookRejected) as excinfo:
        verify(headers, allow=frozenset({"v1", "v3"}))
    assert rejected(excinfo) == (401, "stale_timestamp")


def test_v3_header_when_only_v1_is_allowed() -> None:
    with pytest.raises(WebhookRejected) as excinfo:
        verify(v3_headers(), allow=frozenset({"v1"}))
    assert rejected(excinfo) == (401, "signature_version_disabled")
    assert verify(v3_headers() | legacy_headers("v1"), allow=frozenset({"v1"})) == "v1"


# ------------------------------------------------------------------------------------------------------ parsing


def event(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "eventId": 100,
        "subscriptionId": 3100001,
        "portalId": 62515,
        "appId": 9001,
        "occurredAt": 1767225590000,
        "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0,
        "objectId": 501,
        "propertyName": "email",
        "propertyValue": "ada@example.com",
        "changeSource": "CRM_UI",
        "sourceId": "userId:76023669",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def body_of(*events: Any) -> bytes:
    return json.dumps(list(events)).encode()


def test_hubspot_docs_example_body_parses() -> None:
    [parsed] = parse_events(HUBSPOT_DOCS_V1_BODY)

    assert parsed == WebhookEvent.model_validate(
        {
            "eventId": 1,
            "subscriptionId": 12345,
            "portalId": 62515,
            "occurredAt": 1564113600000,
            "subscriptionType": "contact.creation",
            "attemptNumber": 0,
            "objectId": 123,
            "changeSource": "CRM",
            "changeFlag": "NEW",
            "appId": 54321,
        }
    )
    assert (parsed.event_id, parsed.object_id, parsed.change_flag, parsed.app_id) == (1, 123, "NEW", 54321)
    assert parsed.kind == "contact_change"
    assert parsed.dedupe_key == "1:12345:1564113600000"


def test_fields_are_snake_case_and_extras_ignored() -> None:
    [parsed] = parse_events(body_of(event(isSensitive=False, somethingNew={"a": 1})))

    assert parsed.model_dump(exclude_defaults=True) == {
        "event_id": 100,
        "subscription_id": 3100001,
        "portal_id": 62515,
        "app_id": 9001,
        "occurred_at": 1767225590000,
        "subscription_type": "contact.propertyChange",
        "attempt_number": 0,
        "object_id": 501,
        "property_name": "email",
        "property_value": "ada@example.com",
        "change_source": "CRM_UI",
        "source_id": "userId:76023669",
    }


def test_scalar_property_value_is_kept_as_text() -> None:
    parsed = parse_events(body_of(event(propertyValue=42), event(propertyValue=True, sourceId=9001)))

    assert [(p.property_value, p.source_id) for p in parsed] == [("42", "userId:76023669"), ("true", "9001")]


def test_dedupe_key_tells_subscriptions_apart() -> None:
    parsed = parse_events(body_of(event(), event(subscriptionId=3100002), event(occurredAt=1767225590001)))

    assert [p.dedupe_key for p in parsed] == [
        "100:3100001:1767225590000",
        "100:3100002:1767225590000",
        "100:3100001:1767225590001",
    ]


@pytest.mark.parametrize(
    ("subscription_type", "kind"),
    [
        ("contact.creation", "contact_change"),
        ("contact.propertyChange", "contact_change"),
        ("contact.restore", "contact_change"),
        ("contact.merge", "contact_change"),
        ("contact.associationChange", "contact_change"),
        ("contact.deletion", "contact_deletion"),
        ("contact.privacyDeletion", "contact_deletion"),
        ("company.propertyChange", "ignored"),
        ("company.deletion", "ignored"),
        ("deal.creation", "ignored"),
        ("object.propertyChange", "ignored"),
        ("contact.somethingHubSpotAddsLater", "ignored"),
        ("Contact.Deletion", "ignored"),
    ],
)
def test_kind(subscription_type: str, kind: str) -> None:
    [parsed] = parse_events(body_of(event(subscriptionType=subscription_type)))

    assert parsed.kind == kind


def test_unknown_subscription_type_is_accepted_and_ignored() -> None:
    parsed = parse_events(body_of(event(), event(eventId=101, subscriptionType="conversation.newMessage")))

    assert [(p.event_id, p.kind) for p in parsed] == [(100, "contact_change"), (101, "ignored")]


def test_merge_event() -> None:
    merge = event(
        subscriptionType="contact.merge",
        objectId=900,
        primaryObjectId=900,
        mergedObjectIds=[501, 502],
        newObjectId=900,
        numberOfPropertiesMoved=12,
        propertyName=None,
        propertyValue=None,
    )
    [parsed] = parse_events(body_of(merge))

    assert (parsed.kind, parsed.object_id, parsed.merged_object_ids, parsed.number_of_properties_moved) == (
        "contact_change",
        900,
        (501, 502),
        12,
    )


def test_association_change_without_object_id_uses_from_object_id() -> None:
    change = event(
        subscriptionType="contact.associationChange",
        objectId=None,
        propertyName=None,
        propertyValue=None,
        associationType="CONTACT_TO_COMPANY",
        fromObjectId=501,
        toObjectId=7001,
        associationRemoved=False,
        isPrimaryAssociation=True,
    )
    [parsed] = parse_events(body_of(change))

    assert (parsed.object_id, parsed.from_object_id, parsed.to_object_id, parsed.association_removed) == (
        501,
        501,
        7001,
        False,
    )


def test_events_by_portal() -> None:
    parsed = parse_events(
        body_of(event(eventId=1), event(eventId=2, portalId=77), event(eventId=3), event(eventId=4, portalId=77))
    )

    grouped = events_by_portal(parsed)

    assert list(grouped) == [62515, 77]
    assert {portal: [e.event_id for e in events] for portal, events in grouped.items()} == {62515: [1, 3], 77: [2, 4]}


@pytest.mark.parametrize("body", [b"", b"[", b"[{]", b'[{"eventId": 1,}]', b"\xff\xfe[]", b"[NaN]", b"[" * 50_000])
def test_malformed_json(body: bytes) -> None:
    with pytest.raises(WebhookRejected) as excinfo:
        parse_events(body)
    assert rejected(excinfo) == (400, "malformed_json")


@pytest.mark.parametrize(
    ("body", "shown"), [(b'{"eventId": 1}', "an object"), (b'"[]"', "a string"), (b"null", "null"), (b"5", "a number")]
)
def test_not_an_array(body: bytes, shown: str) -> None:
    with pytest.raises(WebhookRejected) as excinfo:
        parse_events(body)
    assert rejected(excinfo) == (400, "not_an_array")
    assert excinfo.value.message == f"the body must be a JSON array of events, got {shown}"


def test_empty_array() -> None:
    with pytest.raises(WebhookRejected) as excinfo:
        parse_events(b"[]")
    assert rejected(excinfo) == (400, "no_events")


def test_element_missing_event_id_names_index_and_field() -> None:
    with pytest.raises(WebhookRejected) as excinfo:
        parse_events(body_of(event(), event(eventId=None)))

    assert rejected(excinfo) == (400, "invalid_event")
    assert excinfo.value.message == "event 1, field eventId: missing"
    assert excinfo.value.details == [{"index": 1, "field": "eventId", "problem": "missing"}]


@pytest.mark.parametrize(
    "field", ["eventId", "subscriptionId", "portalId", "occurredAt", "subscriptionType", "objectId"]
)
def test_every_required_field(field: str) -> None:
    with pytest.raises(WebhookRejected) as excinfo:
        parse_events(body_of(event(**{field: None})))

    assert excinfo.value.message == f"event 0, field {field}: missing"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"portalId": "abc"}, "portalId"),
        ({"eventId": True}, "eventId"),
        ({"objectId": 1.5}, "objectId"),
        ({"occurredAt": -1}, "occurredAt"),
        ({"subscriptionType": ""}, "subscriptionType"),
        ({"subscriptionType": 5}, "subscriptionType"),
    ],
)
def test_field_of_the_wrong_type(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(WebhookRejected) as excinfo:
        parse_events(body_of(event(**overrides)))

    assert rejected(excinfo) == (400, "invalid_event")
    assert excinfo.value.message.startswith(f"event 0, field {field}: ")


def test_element_that_is_not_an_object() -> None:
    with pytest.raises(WebhookRejected) as excinfo:
        parse_events(body_of(event(), [1, 2], event(eventId=None)))

    assert rejected(excinfo) == (400, "invalid_event")
    assert excinfo.value.message == "event 1: not an object but an array (and 1 more problems)"
    assert excinfo.value.details == [
        {"index": 1, "field": None, "problem": "not an object but an array"},
        {"index": 2, "field": "eventId", "problem": "missing"},
    ]


def test_hundred_events_are_fine_and_a_hundred_and_one_too_many() -> None:
    hundred = [event(eventId=i) for i in range(100)]

    assert len(parse_events(body_of(*hundred))) == 100
    with pytest.raises(WebhookRejected) as excinfo:
        parse_events(body_of(*hundred, event(eventId=100)))
    assert rejected(excinfo) == (413, "too_many_events")
    assert excinfo.value.message == "at most 100 events a request, got 101"


def test_oversized_body() -> None:
    padded = body_of(event(propertyValue="x" * (1024 * 1024)))

    with pytest.raises(WebhookRejected) as excinfo:
        parse_events(padded)
    assert rejected(excinfo) == (413, "body_too_large")


def test_size_cap_is_exact_and_configurable() -> None:
    body = body_of(event())

    assert len(parse_events(body, max_bytes=len(body))) == 1
    with pytest.raises(WebhookRejected) as excinfo:
        parse_events(body, max_bytes=len(body) - 1)
    assert rejected(excinfo) == (413, "body_too_large")


def test_size_is_checked_before_parsing() -> None:
    with pytest.raises(WebhookRejected) as excinfo:
        parse_events(b"[" + b"x" * 2048, max_bytes=1024)
    assert rejected(excinfo) == (413, "body_too_large")
