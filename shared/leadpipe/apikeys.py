"""API keys: each maps to one workspace; only a hash is stored.

A key is ``lp_`` followed by 43 URL-safe characters (32 random bytes). It is shown once, when created; leadpipe keeps
its SHA-256 digest, which is enough for a secret of 256 random bits (a slow password hash protects guessable secrets,
not random ones) and lets the API look a key up with one GetItem.

Items in the state table:

- ``pk = KEY#{sha256 hex}``, ``sk = K``: the lookup item (workspace, key id, name, created/revoked times)
- ``pk = KEYS#{ws}``, ``sk = {key id}``: the workspace's listing, pointing at the digest (for list and revoke)

Both are written in one transaction. ``KeyResolver`` caches answers per container (a known key for
``POSITIVE_TTL`` seconds, an unknown one for ``NEGATIVE_TTL``), so a revoked key stops working within a minute
everywhere and a burst of requests with a bad key costs one read per container per few seconds.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leadpipe.dynamo import TransactionCancelled, from_item, to_item, transact_write
from leadpipe.errors import BadRequest, NotFound, Unauthorized
from leadpipe.models import iso, utcnow
from leadpipe.settings import WORKSPACE_PATTERN
from leadpipe.workspaces import registry_item

PREFIX = "lp_"
KEY_PATTERN = re.compile(r"^lp_[A-Za-z0-9_-]{43}$")
NAME_MAX = 80
POSITIVE_TTL = 60.0
NEGATIVE_TTL = 5.0
_CACHE_MAX = 10_000


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    key_id: str
    workspace: str
    name: str
    hint: str  # the first characters of the key, to tell keys apart in a listing
    created_at: datetime
    revoked_at: datetime | None = None
    digest: str = ""  # the stored hash (never shown; lets the API drop a revoked key from its cache at once)

    def view(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "workspace": self.workspace,
            "name": self.name,
            "hint": self.hint + "…",
            "created_at": iso(self.created_at),
            "revoked_at": iso(self.revoked_at) if self.revoked_at else None,
        }


def _record(data: dict[str, Any]) -> ApiKeyRecord:
    revoked = data.get("revoked_at")
    return ApiKeyRecord(
        key_id=str(data["key_id"]),
        workspace=str(data["workspace"]),
        name=str(data.get("name", "")),
        hint=str(data.get("hint", "")),
        created_at=datetime.fromisoformat(str(data["created_at"])),
        revoked_at=datetime.fromisoformat(str(revoked)) if revoked else None,
        digest=str(data.get("digest", "")),
    )


class ApiKeyStore:
    def __init__(self, client: Any, table: str, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.client = client
        self.table = table
        self.clock = clock

    def create(self, workspace: str, name: str = "") -> tuple[str, ApiKeyRecord]:
        """A new key for ``workspace``: returns the key itself (shown once) and its record."""
        if not re.match(WORKSPACE_PATTERN, workspace):
            raise BadRequest(
                f"invalid workspace {workspace!r}: lowercase letters, digits, '-' and '_', at most 63 characters",
                code="invalid_workspace",
            )
        name = name.strip()
        if len(name) > NAME_MAX:
            raise BadRequest(f"the key's name is longer than {NAME_MAX} characters", code="invalid_name")
        key = new_key()
        record = ApiKeyRecord(
            key_id=secrets.token_hex(6), workspace=workspace, name=name, hint=key[:7], created_at=self.clock()
        )
        fields = {
            "key_id": record.key_id,
            "workspace": workspace,
            "name": name,
            "hint": record.hint,
            "created_at": iso(record.created_at),
        }
        hashed = digest(key)
        transact_write(
            self.client,
            [
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": to_item({"pk": f"KEY#{hashed}", "sk": "K", **fields}),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": to_item({"pk": f"KEYS#{workspace}", "sk": record.key_id, "digest": hashed, **fields}),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {"Put": {"TableName": self.table, "Item": registry_item(workspace)}},  # schedules go through it
            ],
        )
        return key, record

    def lookup(self, key: str) -> ApiKeyRecord | None:
        """The key's record (revoked ones included), or None for a key never issued. One strongly consistent
        GetItem, made only when the resolver's cache has no answer."""
        if not KEY_PATTERN.match(key):
            return None
        item = self.client.get_item(
            TableName=self.table,
            Key={"pk": {"S": f"KEY#{digest(key)}"}, "sk": {"S": "K"}},
            ConsistentRead=True,  # a key created a moment ago works at once (and is not negatively cached)
        )
        found = item.get("Item")
        return _record(from_item(found)) if found else None

    def list(self, workspace: str) -> list[ApiKeyRecord]:
        records: list[ApiKeyRecord] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": f"KEYS#{workspace}"}},
        }
        while True:
            page = self.client.query(**kwargs)
            records.extend(_record(from_item(i)) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted(records, key=lambda r: r.created_at, reverse=True)

    def revoke(self, workspace: str, key_id: str) -> ApiKeyRecord:
        """Revoke one of the workspace's keys (both items marked, in one transaction). Revoking twice is harmless."""
        found = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": f"KEYS#{workspace}"}, "sk": {"S": key_id}}, ConsistentRead=True
        ).get("Item")
        if not found:
            raise NotFound(f"workspace {workspace} has no API key {key_id}", code="api_key_not_found")
        data = from_item(found)
        if data.get("revoked_at"):
            return _record(data)
        revoked_at = iso(self.clock())
        update = {
            "UpdateExpression": "SET revoked_at = :r",
            "ExpressionAttributeValues": {":r": {"S": revoked_at}},
            "ConditionExpression": "attribute_exists(pk)",
        }
        try:
            transact_write(
                self.client,
                [
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": {"pk": {"S": f"KEY#{data['digest']}"}, "sk": {"S": "K"}},
                            **update,
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": {"pk": {"S": f"KEYS#{workspace}"}, "sk": {"S": key_id}},
                            **update,
                        }
                    },
                ],
            )
        except TransactionCancelled as exc:
            raise NotFound(f"workspace {workspace} has no API key {key_id}", code="api_key_not_found") from exc
        return _record(data | {"revoked_at": revoked_at})


def key_from_headers(headers: dict[str, str]) -> str | None:
    """The key a request carries: ``Authorization: Bearer <key>`` or ``x-api-key: <key>`` (header names in any
    case). None when neither is present."""
    lowered = {k.lower(): v for k, v in headers.items()}
    auth = (lowered.get("authorization") or "").strip()
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    value = (lowered.get("x-api-key") or "").strip()
    return value or None


class KeyResolver:
    """Key → workspace for the API function, with a per-container cache of answers."""

    def __init__(self, store: ApiKeyStore, *, now: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.now = now
        self._cache: dict[str, tuple[float, str | None]] = {}

    def workspace(self, headers: dict[str, str]) -> str:
        key = key_from_headers(headers)
        if key is None:
            raise Unauthorized(
                "an API key is required: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'",
                code="missing_api_key",
            )
        hashed = digest(key)
        cached = self._cache.get(hashed)
        now = self.now()
        if cached is not None and now < cached[0]:
            workspace = cached[1]
        else:
            record = self.store.lookup(key)
            workspace = record.workspace if record is not None and record.revoked_at is None else None
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[hashed] = (now + (POSITIVE_TTL if workspace else NEGATIVE_TTL), workspace)
        if workspace is None:
            raise Unauthorized("the API key is not valid (unknown or revoked)", code="invalid_api_key")
        return workspace

    def forget(self, key_digest: str) -> None:
        """Drop a key's cached answer (this container stops accepting a key it has just revoked)."""
        self._cache.pop(key_digest, None)
