"""Publishing to the EventBridge bus: chunked, size-aware, with failed entries retried.

PutEvents takes at most 10 entries and 256 KB per call, and may accept a call while rejecting some of its entries
(``FailedEntryCount``): those entries, and only those, are sent again with backoff; if they still fail the caller
gets an error (so its SQS message is retried) rather than a silent loss.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel

from leadpipe.dynamo import backoff
from leadpipe.errors import TransientError
from leadpipe.models import DETAIL_CONTACTS_IMPORTED, EVENT_SOURCE, ContactsImported

MAX_ENTRIES_PER_CALL = 10
MAX_CALL_BYTES = 250_000  # service limit 256 KB (262,144 bytes) for the whole request
MAX_EMAILS_PER_EVENT = 100


def entry_size(entry: dict[str, Any]) -> int:
    """Size as EventBridge counts it: source, detail type, detail, resources, plus 14 bytes for the time."""
    size = 14
    for key in ("Source", "DetailType", "Detail"):
        size += len(str(entry.get(key, "")).encode())
    size += sum(len(r.encode()) for r in entry.get("Resources", []))
    return size


class PublishError(TransientError):
    code = "publish_failed"


class EventPublisher:
    def __init__(self, client: Any, bus_name: str, *, source: str = EVENT_SOURCE, max_attempts: int = 6) -> None:
        self.client = client
        self.bus_name = bus_name
        self.source = source
        self.max_attempts = max_attempts
        self.calls = 0

    def _entry(self, detail_type: str, detail: BaseModel | dict[str, Any]) -> dict[str, Any]:
        body = detail.model_dump(mode="json") if isinstance(detail, BaseModel) else detail
        entry: dict[str, Any] = {
            "Source": self.source,
            "DetailType": detail_type,
            "Detail": json.dumps(body, separators=(",", ":")),
            "EventBusName": self.bus_name,
        }
        trace = os.environ.get("_X_AMZN_TRACE_ID")
        if trace:
            entry["TraceHeader"] = trace
        return entry

    def _calls(self, entries: Sequence[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
        batch: list[dict[str, Any]] = []
        size = 0
        for entry in entries:
            n = entry_size(entry)
            if n > MAX_CALL_BYTES:
                raise ValueError(f"event of {n} bytes is larger than EventBridge accepts")
            if batch and (len(batch) == MAX_ENTRIES_PER_CALL or size + n > MAX_CALL_BYTES):
                yield batch
                batch, size = [], 0
            batch.append(entry)
            size += n
        if batch:
            yield batch

    def publish(self, detail_type: str, details: Iterable[BaseModel | dict[str, Any]]) -> int:
        entries = [self._entry(detail_type, d) for d in details]
        for batch in self._calls(entries):
            self._put(batch)
        return len(entries)

    def _put(self, batch: list[dict[str, Any]]) -> None:
        pending = batch
        codes: list[str] = []
        for attempt in range(self.max_attempts):
            self.calls += 1
            response = self.client.put_events(Entries=pending)
            if not response.get("FailedEntryCount"):
                return
            results = response.get("Entries", [])
            failed = [e for e, r in zip(pending, results, strict=False) if r.get("ErrorCode")]
            codes = sorted({str(r.get("ErrorCode")) for r in results if r.get("ErrorCode")})
            pending = failed or pending
            backoff(attempt, base=0.1)
        raise PublishError(
            f"{len(pending)} event(s) still rejected by EventBridge after {self.max_attempts} attempts: "
            + ", ".join(codes)
        )

    def contacts_imported(
        self, workspace: str, source: str, job_id: str | None, emails: Sequence[str], batch: str | None = None
    ) -> int:
        """Publish ``contacts.imported`` for these emails, at most 100 per event (each event's ``batch`` is
        ``batch`` and its position). Returns the number of events."""
        details = [
            ContactsImported(
                workspace=workspace,
                source=source,
                job_id=job_id,
                emails=list(emails[i : i + MAX_EMAILS_PER_EVENT]),
                batch=f"{batch}.{i // MAX_EMAILS_PER_EVENT}" if batch else None,
            )
            for i in range(0, len(emails), MAX_EMAILS_PER_EVENT)
        ]
        return self.publish(DETAIL_CONTACTS_IMPORTED, details)
