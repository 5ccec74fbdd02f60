"""Sending to SQS in batches, and finding contacts due for another attempt: shared by the pipeline's stages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from leadpipe.contacts import ContactRepository
from leadpipe.models import PipelineStatus


def send_batch(sqs: Any, queue_url: str, bodies: Sequence[str], delay: int = 0) -> int:
    """SendMessageBatch in tens; a message the queue refuses is an error (the caller's request is retried)."""
    sent = 0
    for start in range(0, len(bodies), 10):
        entries = [
            {"Id": str(i), "MessageBody": b, **({"DelaySeconds": delay} if delay else {})}
            for i, b in enumerate(bodies[start : start + 10])
        ]
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        if response.get("Failed"):
            reasons = {f.get("Code") for f in response["Failed"]}
            raise RuntimeError(f"the queue refused {len(response['Failed'])} message(s): {reasons}")
        sent += len(entries)
    return sent


def due_for_retry(
    contacts: ContactRepository,
    workspace: str,
    *,
    stage: str,
    in_progress: PipelineStatus,
    now: datetime,
    stale_after: timedelta,
) -> list[str]:
    """Contacts whose failure at ``stage`` is due for another attempt, and those left ``in_progress`` longer than
    ``stale_after`` (an invocation that died without a word)."""
    due: list[str] = []
    for status in (PipelineStatus.FAILED, in_progress):
        cursor = None
        while True:
            page = contacts.find(workspace, status=status, limit=100, cursor=cursor)
            for contact in page.items:
                failure = contact.failure
                if status is in_progress:
                    if contact.updated_at <= now - stale_after:
                        due.append(contact.email)
                elif failure and failure.stage == stage and failure.next_retry_at and failure.next_retry_at <= now:
                    due.append(contact.email)
            cursor = page.next_cursor
            if not cursor:
                break
    return due
