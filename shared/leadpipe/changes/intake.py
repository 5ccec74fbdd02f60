"""Webhook intake: HubSpot's signed deliveries in, ChangeQueue messages out, an answer within a second.

Order of the checks, so each failure gets its own answer: a body too large (413) -> a signature header present
(401) -> the body is an array of at most 100 well-formed events (400 / 413) -> every portal in it belongs to a
workspace that takes webhooks (403) -> the signature verifies with that workspace's app secret, its timestamp within
5 minutes (401). Only then are the events queued; unknown subscription types are accepted and dropped. Nothing else
happens here: no HubSpot call, no contact read -- the import function does that from ChangeQueue.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from leadpipe.changes.webhook import WebhookEvent, WebhookRejected, events_by_portal, parse_events, verify_signature
from leadpipe.enrichment.keys import ProviderKeys
from leadpipe.models import ChangeMessage, ObjectChange
from leadpipe.observability import count, logger
from leadpipe.queueing import send_batch
from leadpipe.settings import Settings
from leadpipe.workspaces import WorkspaceRepository

MAX_BODY_BYTES = 1024 * 1024
SIGNATURE_HEADERS = ("x-hubspot-signature-v3", "x-hubspot-signature")


@dataclass
class IntakeResult:
    accepted: int = 0
    queued: int = 0
    ignored: int = 0
    echoes: int = 0  # leadpipe's own writes coming back (INTEGRATION from its app): dropped here
    workspaces: list[str] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "queued": self.queued, "ignored": self.ignored, "echoes": self.echoes}


def called_url(headers: Mapping[str, str], raw_path: str, raw_query: str, domain: str = "") -> str:
    """The URL HubSpot called, as it signed it: scheme and host as the request arrived, the path and query raw."""
    proto = headers.get("x-forwarded-proto", "https").split(",")[0].strip() or "https"
    host = headers.get("host") or domain
    return f"{proto}://{host}{raw_path}" + (f"?{raw_query}" if raw_query else "")


def to_change(event: WebhookEvent) -> ObjectChange:
    return ObjectChange(
        object_id=str(event.object_id),
        kind="deletion" if event.kind == "contact_deletion" else "change",
        privacy=event.subscription_type == "contact.privacyDeletion",
        occurred_at=event.occurred_at,
        property=event.property_name,
        value=event.property_value,
        change_source=event.change_source,
        source_id=event.source_id,
        dedupe_key=event.dedupe_key,
    )


class WebhookIntake:
    def __init__(
        self,
        *,
        sqs: Any,
        settings: Settings,
        workspaces: WorkspaceRepository,
        keys: ProviderKeys,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.sqs = sqs
        self.settings = settings
        self.workspaces = workspaces
        self.keys = keys
        self.now_ms = now_ms
        self.versions = frozenset(v.strip() for v in settings.webhook_signature_versions.split(",") if v.strip())

    def receive(self, *, method: str, url: str, headers: Mapping[str, str], body: bytes) -> IntakeResult:
        lower = {k.lower(): v for k, v in headers.items()}
        if len(body) > MAX_BODY_BYTES:
            raise WebhookRejected(413, "body_too_large", f"a webhook body is at most {MAX_BODY_BYTES} bytes")
        if not any(lower.get(h) for h in SIGNATURE_HEADERS):
            raise WebhookRejected(401, "missing_signature", "no X-HubSpot-Signature-v3 header")
        events = parse_events(body, max_events=100, max_bytes=MAX_BODY_BYTES)
        routed: dict[str, list[WebhookEvent]] = {}
        secrets: dict[str, str] = {}
        for portal_id, portal_events in events_by_portal(events).items():
            ws = self.workspaces.workspace_for_portal(portal_id)
            if ws is None:
                raise WebhookRejected(403, "unknown_portal", f"HubSpot portal {portal_id} belongs to no workspace")
            if not self.workspaces.get(ws).hubspot.webhooks:
                raise WebhookRejected(403, "webhooks_off", f"workspace {ws} does not take webhooks")
            secret = self.keys.secret(ws, "hubspot/client_secret", "HUBSPOT_CLIENT_SECRET")
            if not secret:
                raise WebhookRejected(
                    401, "no_client_secret", f"workspace {ws} has no HubSpot app secret to verify with"
                )
            secrets[ws] = secret
            routed.setdefault(ws, []).extend(portal_events)
        for secret in dict.fromkeys(secrets.values()):
            verify_signature(
                method=method,
                uri=url,
                body=body,
                headers=lower,
                client_secret=secret,
                now_ms=self.now_ms(),
                allow_versions=self.versions | {"v3"},
            )
        result = IntakeResult(accepted=len(events))
        bodies: list[str] = []
        for ws, ws_events in routed.items():
            app = self.workspaces.get(ws).hubspot.app_id
            wanted = [e for e in ws_events if e.kind != "ignored"]
            result.ignored += len(ws_events) - len(wanted)
            # A sync of thousands of contacts comes back as many thousands of events from leadpipe's own app:
            # dropped before they cost a queue message (the consumer checks again, for polled changes too).
            changes = [
                to_change(e)
                for e in wanted
                if not (app and e.change_source == "INTEGRATION" and e.source_id == str(app))
            ]
            result.echoes += len(wanted) - len(changes)
            if changes:
                bodies.append(ChangeMessage(workspace=ws, origin="webhook", changes=changes).model_dump_json())
                result.queued += len(changes)
                result.workspaces.append(ws)
        if bodies:
            send_batch(self.sqs, self.settings.change_queue_url, bodies)
        count("WebhookEventsReceived", result.accepted)
        logger.info("webhook accepted", extra=result.body())
        return result
