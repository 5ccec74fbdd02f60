"""The suppression list: emails that must never be enriched or imported again (erased, or opted out).

Only a salted hash is kept (HMAC-SHA256 of workspace and email with a per-deployment secret salt), so the list
itself holds no personal data. Items live in the state table: ``pk = S#{workspace}``, ``sk = {digest}``, with the
reason, when it was first added, and (erasure) the ids of import jobs whose source file still held the email because
they were running, so that repeating the erasure deletes the file once they have finished.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from leadpipe.dynamo import batch_get, from_item
from leadpipe.models import iso, utcnow


class SuppressionList:
    def __init__(self, client: Any, table: str, salt: str | Callable[[], str]) -> None:
        self.client = client
        self.table = table
        self._salt = salt

    @property
    def salt(self) -> bytes:
        value = self._salt() if callable(self._salt) else self._salt
        if not value:
            raise ValueError("the suppression salt is empty")
        return value.encode()

    def digest(self, workspace: str, email: str) -> str:
        return hmac.new(self.salt, f"{workspace}\n{email}".encode(), hashlib.sha256).hexdigest()

    def key(self, workspace: str, email: str) -> dict[str, Any]:
        return {"pk": {"S": f"S#{workspace}"}, "sk": {"S": self.digest(workspace, email)}}

    def add(self, workspace: str, email: str, reason: str) -> None:
        """Put the email on the list (idempotent: ``at`` stays the first time it was added)."""
        self.client.update_item(
            TableName=self.table,
            Key=self.key(workspace, email),
            UpdateExpression="SET #reason = :reason, #at = if_not_exists(#at, :at)",
            ExpressionAttributeNames={"#reason": "reason", "#at": "at"},
            ExpressionAttributeValues={":reason": {"S": reason}, ":at": {"S": iso(utcnow())}},
        )

    def pending_jobs(self, workspace: str, email: str) -> list[str]:
        """Import jobs an erasure of this email left a source file in (they were still running)."""
        item = self.client.get_item(
            TableName=self.table,
            Key=self.key(workspace, email),
            ConsistentRead=True,
            ProjectionExpression="#p",
            ExpressionAttributeNames={"#p": "pending_jobs"},
        ).get("Item")
        return [str(v) for v in from_item(item).get("pending_jobs", [])] if item else []

    def set_pending_jobs(self, workspace: str, email: str, job_ids: Sequence[str]) -> None:
        update = "SET #p = :p" if job_ids else "REMOVE #p"
        values = {":p": {"L": [{"S": j} for j in job_ids]}} if job_ids else {}
        self.client.update_item(
            TableName=self.table,
            Key=self.key(workspace, email),
            UpdateExpression=update,
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#p": "pending_jobs"},
            **({"ExpressionAttributeValues": values} if values else {}),
        )

    def suppressed(self, workspace: str, emails: Iterable[str]) -> dict[str, str]:
        """The emails on the list, with the reason they were added (one BatchGetItem per 100)."""
        by_digest = {self.digest(workspace, e): e for e in dict.fromkeys(emails)}
        if not by_digest:
            return {}
        keys = [{"pk": {"S": f"S#{workspace}"}, "sk": {"S": d}} for d in by_digest]
        found = {}
        for item in batch_get(self.client, self.table, keys):
            data = from_item(item)
            found[by_digest[data["sk"]]] = str(data.get("reason", "suppressed"))
        return found


def secret_salt(secret_id: str, client: Any = None) -> Callable[[], str]:
    """The salt from Secrets Manager, read on first use and cached by Powertools."""

    def read() -> str:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        provider = SecretsProvider(boto3_client=client) if client else SecretsProvider()
        return str(provider.get(secret_id, max_age=3600))

    return read
