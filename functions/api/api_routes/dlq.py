"""/dlq: the dead-letter queues as the caller's workspace sees them, and moving its messages back (leadpipe.dlq)."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, ConfigDict, Field

from api_routes import deps
from leadpipe.dlq import QUEUES, DeadLetter, DeadLetters, QueueReport, dead_letter_queues

router = APIGatewayHttpRouter()


@cache
def dead_letters() -> DeadLetters:
    settings = deps.settings()
    return DeadLetters(deps.clients.sqs, dead_letter_queues(settings), default_workspace=settings.default_workspace)


class DeadLetterView(BaseModel):
    message_id: str
    sent_at: datetime | None = Field(description="when the message was first sent (to its source queue)")
    receive_count: int | None = Field(description="deliveries so far, earlier looks at the DLQ included")
    workspace: str | None = Field(description="null: no workspace could be determined (shown to the default one)")
    type: str | None = Field(description="import.run, enrich.request, contacts.imported, s3:ObjectCreated:Put, ...")
    emails: int | None = Field(description="contacts the message names")
    changes: int | None = Field(description="HubSpot changes a change batch carries")
    ref: str | None = Field(description="its request, job or run id, or the uploaded file's key")
    problem: str | None = Field(description="why no workspace could be determined")

    @classmethod
    def of(cls, letter: DeadLetter) -> DeadLetterView:
        o = letter.origin
        return cls(
            message_id=letter.message_id,
            sent_at=letter.sent_at,
            receive_count=letter.receive_count,
            workspace=o.workspace,
            type=o.type,
            emails=o.emails,
            changes=o.changes,
            ref=o.ref,
            problem=o.problem,
        )


class DeadLetterQueueView(BaseModel):
    queue: str = Field(description="import | enrich | sync | change | deal | activity")
    dlq: str = Field(description="the DLQ's name")
    approximate_depth: int = Field(description="messages in the DLQ, every workspace's (SQS's approximate count)")
    messages: list[DeadLetterView] = Field(description="a sample of your workspace's messages, oldest first")
    yours: int = Field(description="your workspace's messages among those scanned")
    others: int = Field(description="other workspaces' messages among those scanned (never shown)")
    unattributed: int = Field(description="messages no workspace could be determined for (never moved by the API)")
    scanned: int
    complete: bool = Field(description="the scan saw every visible message (otherwise the counts are partial)")

    @classmethod
    def of(cls, report: QueueReport) -> DeadLetterQueueView:
        return cls(
            queue=report.queue,
            dlq=report.dlq,
            approximate_depth=report.approximate_depth,
            messages=[DeadLetterView.of(m) for m in report.messages],
            yours=report.yours,
            others=report.others,
            unattributed=report.unattributed,
            scanned=report.scanned,
            complete=report.complete,
        )


class DeadLetterList(BaseModel):
    workspace: str
    queues: list[DeadLetterQueueView]


class RedriveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max: int = Field(100, ge=1, le=1000, description="move at most this many messages in this call")


class RedriveFailureView(BaseModel):
    message_id: str
    stage: str = Field(description="send: the queue refused it, it stays in the DLQ; delete: sent, but still there")
    code: str
    message: str


class RedriveResult(BaseModel):
    queue: str
    moved: int = Field(description="your messages sent back to the queue and removed from its DLQ")
    remaining: int = Field(description="your messages this call saw but left in the DLQ (over max, or refused)")
    complete: bool = Field(description="the call saw the whole DLQ; call again while remaining > 0 or this is false")
    scanned: int
    others: int = Field(description="other workspaces' messages seen and left in place")
    unattributed: int = Field(description="messages of no known workspace, left in place")
    failures: list[RedriveFailureView]


@router.get(
    "/dlq",
    summary="The dead-letter queues: depth, and a sample of your workspace's failed messages",
    description=(
        "Per queue (import, enrich, sync, change, deal, activity): the DLQ's approximate depth (all workspaces) and "
        "a sample of your workspace's messages (id, sent time, receive count, a summary of the body), peeked and "
        "left in place."
    ),
    tags=["operations"],
)
def list_dead_letters(
    queue: Annotated[str | None, Query(description=f"only this queue: {', '.join(QUEUES)}")] = None,
    limit: Annotated[int, Query(ge=1, le=50, description="messages shown per queue")] = 10,
) -> DeadLetterList:
    workspace = router.context["workspace"]
    reports = dead_letters().inspect(workspace, [queue] if queue else None, limit=limit)
    return DeadLetterList(workspace=workspace, queues=[DeadLetterQueueView.of(r) for r in reports])


@router.post(
    "/dlq/<queue>/redrive",
    summary="Move your workspace's messages from a queue's DLQ back to the queue",
    description=(
        "Sends your workspace's messages back to their queue and removes them from the DLQ once the queue has "
        "accepted them; other workspaces' messages stay where they are. At most `max` messages per call: call "
        "again while `remaining` > 0 or `complete` is false. Fix what made them fail first, or they come back."
    ),
    tags=["operations"],
)
def redrive_dead_letters(queue: str, request: Annotated[RedriveRequest | None, Body()] = None) -> RedriveResult:
    limit = request.max if request else RedriveRequest().max
    report = dead_letters().redrive(router.context["workspace"], queue, max_messages=limit)
    return RedriveResult(
        queue=report.queue,
        moved=report.moved,
        remaining=report.remaining,
        complete=report.complete,
        scanned=report.scanned,
        others=report.others,
        unattributed=report.unattributed,
        failures=[
            RedriveFailureView(message_id=f.message_id, stage=f.stage, code=f.code, message=f.message)
            for f in report.failures
        ],
    )
