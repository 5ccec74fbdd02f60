"""Gap retries: a contact enriched while one of its providers was down is enriched again once the gap is due.

When a provider fails for a contact for a reason that passes (5xx, 429 past its retries, a timeout, a network
error, a malformed answer, no time left), the contact still ends ``enriched`` from the other providers, with the gap
in ``enrichment_meta.gaps``. It is also listed here, in the state table: ``pk=GAPRETRY#{ws}``,
``sk={due time}#{email}``, with ``expires_at`` a week after it is due (DynamoDB's TTL drops what nobody collected).
The enrich function's retry schedule collects the due entries with one query per page and queues those contacts
for enrichment again (the cache still answers for the providers that did answer; the one that failed is asked
again). A gap for a reason that does not pass (a bad key, no quota, a refused request) waits for a person to act
and is not retried. After ``MAX_GAP_RETRIES`` enrichments in a row with retryable gaps, the contact is left alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from leadpipe.dynamo import batch_write
from leadpipe.models import ProviderGap, iso

PERMANENT_REASONS = frozenset({"auth", "quota", "bad_request"})
MAX_GAP_RETRIES = 3
KEEP_AFTER_DUE = timedelta(days=7)


def retryable(gaps: Iterable[ProviderGap]) -> list[ProviderGap]:
    return [g for g in gaps if g.reason not in PERMANENT_REASONS]


def partition(workspace: str) -> str:
    return f"GAPRETRY#{workspace}"


class GapRetries:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self.dynamodb = dynamodb
        self.table = table

    def schedule(self, workspace: str, emails: Sequence[str], due: datetime) -> None:
        """List these contacts for another enrichment at ``due`` (one BatchWriteItem per 25)."""
        expires = int((due + KEEP_AFTER_DUE).timestamp())
        requests = [
            {
                "PutRequest": {
                    "Item": {
                        "pk": {"S": partition(workspace)},
                        "sk": {"S": f"{iso(due)}#{email}"},
                        "email": {"S": email},
                        "expires_at": {"N": str(expires)},
                    }
                }
            }
            for email in dict.fromkeys(emails)
        ]
        if requests:
            batch_write(self.dynamodb, self.table, requests)

    def due(self, workspace: str, now: datetime, limit: int = 10_000) -> list[tuple[str, str]]:
        """(sort key, email) of the entries due by ``now``, oldest first."""
        return self._entries(workspace, f"{iso(now)}#~", limit)

    def _entries(self, workspace: str, upto: str, limit: int) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        query: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND sk <= :upto",
            "ExpressionAttributeValues": {":pk": {"S": partition(workspace)}, ":upto": {"S": upto}},
            "ProjectionExpression": "sk, email",
        }
        while len(found) < limit:
            page = self.dynamodb.query(**query)
            found.extend((item["sk"]["S"], item["email"]["S"]) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return found[:limit]

    def collected(self, workspace: str, keys: Sequence[str]) -> None:
        """Drop entries whose contacts were queued again."""
        requests = [
            {"DeleteRequest": {"Key": {"pk": {"S": partition(workspace)}, "sk": {"S": key}}}}
            for key in dict.fromkeys(keys)
        ]
        if requests:
            batch_write(self.dynamodb, self.table, requests)

    def forget(self, workspace: str, email: str) -> int:
        """Erasure: drop every entry of this email (a query of the workspace's entries, which are few)."""
        keys = [key for key, listed in self._entries(workspace, "~", 1_000_000) if listed == email]
        self.collected(workspace, keys)
        return len(keys)
