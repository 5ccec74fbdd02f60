"""The webhook intake against moto: signed deliveries routed by portal onto ChangeQueue; every refusal answered."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from leadpipe.changes.intake import WebhookIntake, called_url
from leadpipe.changes.webhook import WebhookRejected
from leadpipe.enrichment.keys import ProviderKeys
from leadpipe.errors import Conflict
from leadpipe.settings import Settings
from leadpipe.workspaces import HubSpotSettings, WorkspaceRepository, WorkspaceSettings
from leadpipe_local.fakes.hubspot import signature_v3
from tests.conftest import Stack

PORTAL = 62515
SECRET = "app-secret-for-tests"
URL = "https://abc123.execute-api.us-east-1.amazonaws.com/webhooks/hubspot"


def event(i: int, *, portal: int = PORTAL, kind: str = "contact.propertyChange", **extra: Any) -> dict[str, Any]:
    body = {
        "eventId": 1000 + i,
        "subscriptionId": 3100001,
        "portalId": portal,
        "appId": 9001,
        "occurredAt": 1_764_000_000_000 + i,
        "subscriptionType": kind,
        "attemptNumber": 0,
        "objectId": 500 + i,
        "changeSource": "CRM_UI",
        "sourceId": "userId:7",
    }
    if kind == "contact.propertyChange":
        body.update(propertyName="jobtitle", propertyValue=f"Title {i}")
    body.update(extra)
    return body


class Intake:
    def __init__(
        self,
        stack: Stack,
        secrets: dict[str, str] | None = None,
        versions: str = "v3",
        stored: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self.stack = stack
        ddb = stack.client("dynamodb")
        self.workspaces = WorkspaceRepository(
            ddb, stack.state_table, default_hubspot=HubSpotSettings(portal_id=PORTAL, app_id=9001)
        )
        self.now_ms = int(time.time() * 1000)
        self.intake = WebhookIntake(
            sqs=stack.client("sqs"),
            settings=Settings(
                state_table=stack.state_table,
                change_queue_url=stack.ref("ChangeQueue"),
                webhook_signature_versions=versions,
            ),
            workspaces=self.workspaces,
            keys=ProviderKeys(
                "/leadpipe/test/workspaces",
                env={"HUBSPOT_CLIENT_SECRET": SECRET, **(secrets or {})},
                fetch=lambda path: (stored or {}).get(path, {}),
            ),
            now_ms=lambda: self.now_ms,
        )

    def deliver(
        self, events: Any, *, secret: str = SECRET, age_ms: int = 0, raw: bytes | None = None, url: str = URL
    ) -> Any:
        body = raw if raw is not None else json.dumps(events).encode()
        timestamp = str(self.now_ms - age_ms)
        headers = {
            "X-HubSpot-Signature-v3": signature_v3(secret, "POST", url, body.decode("utf-8", "replace"), timestamp),
            "X-HubSpot-Request-Timestamp": timestamp,
            "Content-Type": "application/json",
        }
        return self.intake.receive(method="POST", url=url, headers=headers, body=body)

    def queued(self) -> list[dict[str, Any]]:
        sqs = self.stack.client("sqs")
        got = sqs.receive_message(QueueUrl=self.stack.ref("ChangeQueue"), MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in got.get("Messages", [])]


def rejected(call: Any) -> WebhookRejected:
    with pytest.raises(WebhookRejected) as caught:
        call()
    return caught.value


def test_a_signed_delivery_is_queued_for_the_portals_workspace(stack: Stack) -> None:
    intake = Intake(stack)
    events = [
        event(1),
        event(2, kind="contact.deletion"),
        event(3, kind="contact.privacyDeletion"),
        event(4, kind="deal.creation"),  # not subscribed to by leadpipe: accepted, dropped
        event(5, kind="contact.creation", changeSource="INTEGRATION", sourceId="9001"),
    ]
    events.append(event(6, changeSource="INTEGRATION", sourceId="4242"))  # another integration: a real change
    result = intake.deliver(events)
    assert result.body() == {"accepted": 6, "queued": 4, "ignored": 1, "echoes": 1}  # 505 is leadpipe's own write
    [message] = intake.queued()
    assert (message["type"], message["workspace"], message["origin"]) == ("change.batch", "default", "webhook")
    changes = message["changes"]
    assert [(c["object_id"], c["kind"]) for c in changes] == [
        ("501", "change"),
        ("502", "deletion"),
        ("503", "deletion"),
        ("506", "change"),
    ]
    assert changes[0]["property"] == "jobtitle" and changes[0]["value"] == "Title 1"
    assert changes[0]["dedupe_key"] == f"1001:3100001:{1_764_000_000_001}"
    assert (changes[3]["change_source"], changes[3]["source_id"]) == ("INTEGRATION", "4242")


def test_a_portal_claimed_by_a_workspace_routes_there_with_its_own_secret(stack: Stack) -> None:
    intake = Intake(stack, secrets={})
    intake.workspaces.put(WorkspaceSettings(workspace="acme", hubspot=HubSpotSettings(portal_id=777, app_id=1)))
    # the deployment's secret (environment) is the default workspace's only: acme without its own is refused
    with pytest.raises(WebhookRejected) as refused:
        intake.deliver([event(1, portal=777)])
    assert refused.value.http_status == 401 and refused.value.code == "no_client_secret" and intake.queued() == []
    intake = Intake(stack, secrets={}, stored={"/leadpipe/test/workspaces/acme/hubspot": {"client_secret": "acme-s"}})
    with pytest.raises(WebhookRejected) as wrong:
        intake.deliver([event(1, portal=777)])  # signed with the deployment's secret, not acme's
    assert wrong.value.http_status == 401
    result = intake.deliver([event(1, portal=777)], secret="acme-s")
    assert result.workspaces == ["acme"]
    assert intake.queued()[0]["workspace"] == "acme"
    with pytest.raises(Conflict, match="belongs to another workspace"):
        intake.workspaces.put(WorkspaceSettings(workspace="other", hubspot=HubSpotSettings(portal_id=777)))


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("unknown portal", 403, "unknown_portal"),
        ("wrong secret", 401, None),
        ("stale timestamp", 401, None),
        ("future timestamp", 401, None),
        ("tampered body", 401, None),
        ("tampered url", 401, None),
        ("malformed json", 400, None),
        ("not an array", 400, None),
        ("missing eventId", 400, None),
        ("too many events", 413, None),
    ],
)
def test_every_bad_delivery_gets_its_own_answer_and_nothing_is_queued(
    stack: Stack, name: str, status: int, code: str | None
) -> None:
    intake = Intake(stack)
    one = [event(1)]
    body = json.dumps(one).encode()
    ts = str(intake.now_ms)
    calls = {
        "unknown portal": lambda: intake.deliver([event(1, portal=999)]),
        "wrong secret": lambda: intake.deliver(one, secret="not-the-secret"),
        "stale timestamp": lambda: intake.deliver(one, age_ms=5 * 60_000 + 1),
        "future timestamp": lambda: intake.deliver(one, age_ms=-(5 * 60_000 + 1)),
        "tampered body": lambda: intake.intake.receive(
            method="POST",
            url=URL,
            headers={
                "x-hubspot-signature-v3": signature_v3(SECRET, "POST", URL, body.decode(), ts),
                "x-hubspot-request-timestamp": ts,
            },
            body=body.replace(b"Title 1", b"Title X"),
        ),
        "tampered url": lambda: intake.intake.receive(
            method="POST",
            url=URL + "?extra=1",
            headers={
                "x-hubspot-signature-v3": signature_v3(SECRET, "POST", URL, body.decode(), ts),
                "x-hubspot-request-timestamp": ts,
            },
            body=body,
        ),
        "malformed json": lambda: intake.deliver(None, raw=b'[{"eventId": 1,'),
        "not an array": lambda: intake.deliver({"eventId": 1}),
        "missing eventId": lambda: intake.deliver([{k: v for k, v in event(1).items() if k != "eventId"}]),
        "too many events": lambda: intake.deliver([event(i) for i in range(101)]),
    }
    refusal = rejected(calls[name])
    assert refusal.status == status, refusal
    if code:
        assert refusal.code == code
    assert intake.queued() == []


def test_no_signature_is_refused_before_anything_is_read(stack: Stack) -> None:
    intake = Intake(stack)
    refusal = rejected(lambda: intake.intake.receive(method="POST", url=URL, headers={}, body=b"not even json"))
    assert (refusal.status, refusal.code) == (401, "missing_signature")


def test_a_workspace_that_does_not_take_webhooks_refuses_them(stack: Stack) -> None:
    intake = Intake(stack)
    intake.workspaces.put(
        WorkspaceSettings(workspace="default", hubspot=HubSpotSettings(portal_id=PORTAL, webhooks=False, polling=True))
    )
    refusal = rejected(lambda: intake.deliver([event(1)]))
    assert (refusal.status, refusal.code) == (403, "webhooks_off")


def test_the_called_url_is_rebuilt_as_hubspot_signed_it() -> None:
    headers = {"host": "abc123.execute-api.us-east-1.amazonaws.com", "x-forwarded-proto": "https"}
    assert called_url(headers, "/webhooks/hubspot", "a=1&b=%40") == URL + "?a=1&b=%40"
    assert called_url({"host": "127.0.0.1:3000", "x-forwarded-proto": "http"}, "/webhooks/hubspot", "") == (
        "http://127.0.0.1:3000/webhooks/hubspot"
    )


def test_a_privacy_deletion_is_queued_as_one(stack: Stack) -> None:
    intake = Intake(stack)
    intake.deliver([event(1, kind="contact.privacyDeletion"), event(2, kind="contact.deletion")])
    changes = {c["object_id"]: c for c in intake.queued()[0]["changes"]}
    assert changes["501"]["kind"] == changes["502"]["kind"] == "deletion"
    assert changes["501"]["privacy"] is True and changes["502"]["privacy"] is False
