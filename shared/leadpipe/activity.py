"""The activity feed (GET /activity): the pipeline's automation events, as the original system broadcast them live.

The enrich and sync functions publish their runs on the bus (``enrichment.started|completed|failed``,
``sync.started|completed|failed``: ``RunEvent``, see ``leadpipe.stats.RunRecorder``) and the import function
publishes ``contacts.imported``; the ActivityRule sends those events to ActivityQueue, and the activity function
writes them here with ``ActivityLog.write`` (BatchWriteItem).

Items in the state table: ``pk = A#{ws}``, ``sk = {at}#{phase}#{event id}`` (phase 0 for a start, 1 otherwise, so a
run's start sorts before its end in the same millisecond): a reverse Query lists a workspace's activity newest first,
and a redelivered event overwrites its own item. Kept ``ACTIVITY_DAYS`` by the table's TTL (``expires_at``); readers
skip expired items themselves, since TTL deletion lags by up to two days.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from leadpipe.dynamo import batch_write, from_item, to_item
from leadpipe.errors import BadRequest
from leadpipe.models import (
    DETAIL_CONTACTS_IMPORTED,
    EVENT_SOURCE,
    RUN_EVENTS,
    ContactsImported,
    RunEvent,
    iso,
    utcnow,
)

ACTIVITY_DAYS = 30
MAX_PAGE = 100
RECORDED = (DETAIL_CONTACTS_IMPORTED, *RUN_EVENTS)  # the ActivityRule's detail types (template.yaml)


class ActivityEntry(BaseModel):
    id: str = Field(description="the bus event's id")
    type: str = Field(
        description="enrichment.started|completed|failed, sync.started|completed|failed, contacts.imported"
    )
    workspace: str
    at: datetime
    request_id: str | None = Field(None, description="the enrichment or sync request the run belongs to")
    job_id: str | None = Field(None, description="the import job (contacts.imported)")
    source: str | None = Field(None, description="where imported contacts came from (contacts.imported)")
    counts: dict[str, int] = Field(default_factory=dict)
    error: str | None = None


@dataclass(slots=True)
class ActivityPage:
    items: list[ActivityEntry]
    next_cursor: str | None


def entry_from_event(event: Mapping[str, Any]) -> ActivityEntry:
    """An EventBridge event, as a rule delivers it to SQS, -> its activity entry (``BadRequest`` if it is none)."""
    kind = event.get("detail-type")
    if event.get("source") != EVENT_SOURCE or kind not in RECORDED or not isinstance(event.get("id"), str):
        raise BadRequest(
            f"not a leadpipe activity event (source {event.get('source')!r}, detail-type {kind!r})",
            code="bad_message",
        )
    try:
        if kind == DETAIL_CONTACTS_IMPORTED:
            imported = ContactsImported.model_validate(event.get("detail"))
            return ActivityEntry(
                id=event["id"],
                type=kind,
                workspace=imported.workspace,
                at=datetime.fromisoformat(str(event.get("time"))),
                job_id=imported.job_id,
                source=imported.source,
                counts={"contacts": len(imported.emails)},
            )
        run = RunEvent.model_validate(event.get("detail"))
    except (ValidationError, ValueError) as exc:
        raise BadRequest(f"{kind} event {event['id']} is not valid: {exc}", code="bad_message") from exc
    return ActivityEntry(
        id=event["id"],
        type=str(kind),
        workspace=run.workspace,
        at=run.at,
        request_id=run.request_id,
        counts=run.counts,
        error=run.error,
    )


def entry_from_body(body: str) -> ActivityEntry:
    """An ActivityQueue message body -> its entry."""
    try:
        event = json.loads(body)
    except ValueError as exc:
        raise BadRequest(f"ActivityQueue message is not JSON: {body[:200]!r}", code="bad_message") from exc
    if not isinstance(event, dict):
        raise BadRequest(f"ActivityQueue message is not an event: {body[:200]!r}", code="bad_message")
    return entry_from_event(event)


def _sk(entry: ActivityEntry) -> str:
    """Newest first; a run's start before its end when both fall in the same millisecond."""
    return f"{iso(entry.at)}#{0 if entry.type.endswith('.started') else 1}#{entry.id}"


class ActivityLog:
    def __init__(self, client: Any, table: str, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.client = client
        self.table = table
        self.clock = clock

    def write(self, entries: Sequence[ActivityEntry]) -> int:
        """Store entries (BatchWriteItem, 25 a call); the same event twice is stored once. Returns how many."""
        items: dict[tuple[str, str], dict[str, Any]] = {}
        for entry in entries:
            pk, sk = f"A#{entry.workspace}", _sk(entry)
            expires = int((entry.at + timedelta(days=ACTIVITY_DAYS)).timestamp())
            data = entry.model_dump(mode="json", exclude_none=True)
            items[(pk, sk)] = {"PutRequest": {"Item": to_item({**data, "pk": pk, "sk": sk, "expires_at": expires})}}
        batch_write(self.client, self.table, list(items.values()))
        return len(items)

    def list(
        self, workspace: str, *, limit: int = 50, since: datetime | None = None, cursor: str | None = None
    ) -> ActivityPage:
        """A workspace's activity newest first; ``since``: only entries at or after that time."""
        limit = max(1, min(limit, MAX_PAGE))
        condition = "pk = :pk"
        values: dict[str, Any] = {":pk": {"S": f"A#{workspace}"}, ":now": {"N": str(int(self.clock().timestamp()))}}
        if since is not None:
            condition += " AND sk >= :since"
            values[":since"] = {"S": iso(since)}
        start = _decode_cursor(cursor, workspace)
        entries: list[ActivityEntry] = []
        last: dict[str, Any] | None = None
        while len(entries) < limit:
            request: dict[str, Any] = {
                "TableName": self.table,
                "KeyConditionExpression": condition,
                "FilterExpression": "expires_at > :now",
                "ExpressionAttributeValues": values,
                "ScanIndexForward": False,
                "Limit": limit - len(entries),
            }
            if start:
                request["ExclusiveStartKey"] = start
            response = self.client.query(**request)
            for item in response.get("Items", []):
                data = from_item(item)
                for key in ("pk", "sk", "expires_at"):
                    data.pop(key, None)
                entries.append(ActivityEntry.model_validate(data))
            last = response.get("LastEvaluatedKey")
            if not last:
                break
            start = last
        return ActivityPage(items=entries, next_cursor=_encode_cursor(last) if last else None)


def _encode_cursor(key: Mapping[str, Any]) -> str:
    raw = json.dumps({"sk": key["sk"]["S"]}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str | None, workspace: str) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()))
        sk = data["sk"]
        if not isinstance(sk, str):
            raise TypeError(sk)
    except (ValueError, KeyError, TypeError) as exc:
        raise BadRequest("the cursor is not valid", code="invalid_cursor") from exc
    return {"pk": {"S": f"A#{workspace}"}, "sk": {"S": sk}}
