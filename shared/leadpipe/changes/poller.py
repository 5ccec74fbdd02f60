"""The poller: for workspaces whose portal webhooks cannot reach, the contacts HubSpot shows modified since the last
poll, put on ChangeQueue. The search itself (cursor, lookback, the 10,000-result cap, ties) is ``polling.ChangePager``;
this module keeps the cursor per workspace and stores it only after the changes it covers are on the queue.

State: ``pk = POLL#{ws}, sk = cursor`` holds ``cursor_ms``. The first poll of a workspace only sets it to now: the
portal's existing contacts are brought in by a HubSpot import, not by the change feed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from leadpipe.changes.polling import SEARCH_CAP, changed_since
from leadpipe.changes.reimport import EVENTS_PER_MESSAGE
from leadpipe.dynamo import from_item, to_item
from leadpipe.enrichment.http import Budget
from leadpipe.enrichment.keys import ProviderKeys
from leadpipe.hubspot.client import HubSpotClient
from leadpipe.models import ChangeMessage, ObjectChange
from leadpipe.observability import count, logger
from leadpipe.queueing import send_batch
from leadpipe.settings import Settings
from leadpipe.workspaces import WorkspaceRepository

STOP_MARGIN_SECONDS = 30.0  # stop searching with this much of the invocation left; the next poll goes on


@dataclass
class PollResult:
    workspace: str
    first: bool = False  # the cursor was only set
    changes: int = 0
    messages: int = 0
    cursor_ms: int | None = None
    complete: bool = True  # False: stopped early (time), the next poll continues from the stored cursor
    error: str | None = None
    stats: dict[str, int] = field(default_factory=dict)


class PollService:
    def __init__(
        self,
        *,
        dynamodb: Any,
        state_table: str,
        sqs: Any,
        settings: Settings,
        keys: ProviderKeys,
        workspaces: WorkspaceRepository,
        hubspot: Callable[[str, int, Budget], HubSpotClient] | None = None,
        cap: int = SEARCH_CAP,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.dynamodb = dynamodb
        self.state_table = state_table
        self.sqs = sqs
        self.settings = settings
        self.keys = keys
        self.workspaces = workspaces
        self.hubspot = hubspot or (
            lambda token, burst, budget: HubSpotClient(
                token, base_url=settings.hubspot_base_url, burst_limit=burst, budget=budget
            )
        )
        self.cap = cap
        self.now_ms = now_ms

    def run(self, budget: Budget) -> list[PollResult]:
        return [self.poll(ws, budget) for ws in self.workspaces.polling_workspaces()]

    def poll(self, ws: str, budget: Budget) -> PollResult:
        result = PollResult(ws)
        now = self.now_ms()
        cursor = self.cursor(ws)
        if cursor is None:
            self._store(ws, now)
            result.first, result.cursor_ms = True, now
            logger.info("polling starts now", extra={"workspace": ws, "cursor_ms": now})
            return result
        token = self.keys.secret(ws, "hubspot/token", "HUBSPOT_TOKEN")
        if not token:
            result.error = "no HubSpot access token"
            logger.error("cannot poll HubSpot", extra={"workspace": ws, "reason": result.error})
            return result
        burst = self.workspaces.get(ws).sync.burst_limit
        lookback = self.settings.poll_lookback_minutes * 60_000
        with self.hubspot(token, burst, budget) as client:
            pager = changed_since(
                client, since_ms=cursor, lookback_ms=lookback, properties=(), cap=self.cap, until_ms=now
            )
            for page in pager:
                if page:
                    changes = [ObjectChange(object_id=c.id, occurred_at=c.modified_at_ms) for c in page]
                    bodies = [
                        ChangeMessage(
                            workspace=ws, origin="poll", changes=changes[i : i + EVENTS_PER_MESSAGE]
                        ).model_dump_json()
                        for i in range(0, len(changes), EVENTS_PER_MESSAGE)
                    ]
                    send_batch(self.sqs, self.settings.change_queue_url, bodies)  # first on the queue...
                    result.changes += len(changes)
                    result.messages += len(bodies)
                self._store(ws, pager.high_water_ms)  # ...then the cursor
                if budget.left() < STOP_MARGIN_SECONDS:
                    result.complete = False
                    break
            else:
                # Every change up to ``now`` the search could see is queued; the lookback covers its lag.
                self._store(ws, max(pager.high_water_ms, now))
            result.cursor_ms = self.cursor(ws)
            result.stats = {
                "requests": pager.requests,
                "queries": pager.queries,
                "restarts": pager.restarts,
                "tie_queries": pager.tie_queries,
                "duplicates": pager.duplicates,
            }
        count("HubSpotChangesPolled", result.changes)
        logger.info("poll finished", extra={"workspace": ws, "result": result.__dict__})
        return result

    def cursor(self, ws: str) -> int | None:
        item = self.dynamodb.get_item(
            TableName=self.state_table, Key={"pk": {"S": f"POLL#{ws}"}, "sk": {"S": "cursor"}}, ConsistentRead=True
        ).get("Item")
        return int(from_item(item)["cursor_ms"]) if item else None

    def _store(self, ws: str, cursor_ms: int) -> None:
        """Move the cursor forward only (a conditional write: never back, whatever the order of writes)."""
        try:
            self.dynamodb.put_item(
                TableName=self.state_table,
                Item=to_item({"pk": f"POLL#{ws}", "sk": "cursor", "cursor_ms": cursor_ms}),
                ConditionExpression="attribute_not_exists(pk) OR cursor_ms <= :c",
                ExpressionAttributeValues={":c": {"N": str(cursor_ms)}},
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            logger.info("poll cursor already further on", extra={"workspace": ws, "cursor_ms": cursor_ms})
