"""/activity: the automation events -- enrichment and sync runs started, completed or failed with their counts, and
contacts imported -- newest first, as the activity function recorded them from the bus (``leadpipe.activity``)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, Field

from api_routes import deps
from leadpipe.activity import ACTIVITY_DAYS, MAX_PAGE, ActivityEntry, ActivityLog

router = APIGatewayHttpRouter()


class ActivityList(BaseModel):
    items: list[ActivityEntry]
    next_cursor: str | None = Field(None, description="pass as ?cursor= to get older events")


@cache
def activity_log() -> ActivityLog:
    return ActivityLog(deps.clients.dynamodb, deps.settings().state_table)


@router.get(
    "/activity",
    summary="The automation events (enrichment and sync runs, imports), newest first",
    description=(
        f"Kept {ACTIVITY_DAYS} days. Each run of the enrich or sync function (one queue message of contacts) shows "
        "as *.started, then *.completed with its counts or *.failed with the error (its message is retried). "
        "An event reaches the feed through the bus, a moment after it happened."
    ),
    tags=["operations"],
)
def get_activity(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    since: Annotated[
        datetime | None, Query(description="only events at or after this time (ISO 8601; UTC if no offset)")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> ActivityList:
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    page = activity_log().list(router.context["workspace"], limit=limit, since=since, cursor=cursor)
    return ActivityList(items=page.items, next_cursor=page.next_cursor)
