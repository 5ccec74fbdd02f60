"""Low-level DynamoDB helpers: (de)serialisation, batch reads with retry, transactional writes."""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, cast

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from leadpipe.errors import TransientError

_SER = TypeSerializer()
_DESER = TypeDeserializer()

BATCH_GET_MAX = 100
TRANSACT_MAX_ITEMS = 100
TRANSACT_MAX_BYTES = 3_500_000  # the service limit is 4 MB; keep a margin for keys and expressions


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    if isinstance(value, set):
        return sorted(_from_dynamo(v) for v in value)
    return value


def to_item(data: Mapping[str, Any]) -> dict[str, Any]:
    """Plain JSON-like dict -> DynamoDB attribute values (None dropped, floats as Decimal)."""
    return {k: _SER.serialize(_to_dynamo(v)) for k, v in data.items() if v is not None}


def to_attr(value: Any) -> dict[str, Any]:
    return cast(dict[str, Any], _SER.serialize(_to_dynamo(value)))


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _from_dynamo(_DESER.deserialize(v)) for k, v in item.items()}


def item_size(item: Mapping[str, Any]) -> int:
    """Rough size of an item in bytes (names plus JSON of the values): good enough to pack transactions."""
    return len(json.dumps(item, default=str))


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def backoff(attempt: int, base: float = 0.05, cap: float = 2.0) -> None:
    time.sleep(min(cap, base * (2.0**attempt)) * (0.5 + random.random() / 2))


def batch_get(
    client: Any,
    table: str,
    keys: Sequence[Mapping[str, Any]],
    *,
    consistent: bool = True,
    max_attempts: int = 8,
    calls: Counter[str] | None = None,
    projection: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """BatchGetItem in chunks of 100, retrying UnprocessedKeys with backoff. Returns raw items in any order.

    ``calls``, if given, counts every request made (retries included); ``projection`` names the only attributes
    to return."""
    out: list[dict[str, Any]] = []
    shape: dict[str, Any] = {"ConsistentRead": consistent}
    if projection:
        shape["ProjectionExpression"] = ", ".join(f"#a{i}" for i in range(len(projection)))
        shape["ExpressionAttributeNames"] = {f"#a{i}": name for i, name in enumerate(projection)}
    for start in range(0, len(keys), BATCH_GET_MAX):
        request: dict[str, Any] = {table: {"Keys": [dict(k) for k in keys[start : start + BATCH_GET_MAX]], **shape}}
        attempt = 0
        while request:
            if calls is not None:
                calls["BatchGetItem"] += 1
            response = client.batch_get_item(RequestItems=request)
            out.extend(response.get("Responses", {}).get(table, []))
            request = response.get("UnprocessedKeys") or {}
            if request:
                attempt += 1
                if attempt >= max_attempts:
                    raise TransientError(f"DynamoDB left keys unprocessed after {attempt} attempts")
                backoff(attempt)
    return out


BATCH_WRITE_MAX = 25


def batch_write(
    client: Any,
    table: str,
    requests: Sequence[Mapping[str, Any]],
    *,
    max_attempts: int = 8,
    calls: Counter[str] | None = None,
) -> None:
    """BatchWriteItem (PutRequest/DeleteRequest) in chunks of 25, retrying UnprocessedItems with backoff; raises
    ``TransientError`` when DynamoDB still leaves some unprocessed, so the caller's message is retried."""
    for start in range(0, len(requests), BATCH_WRITE_MAX):
        pending = [dict(r) for r in requests[start : start + BATCH_WRITE_MAX]]
        for attempt in range(max_attempts):
            if calls is not None:
                calls["BatchWriteItem"] += 1
            response = client.batch_write_item(RequestItems={table: pending})
            pending = response.get("UnprocessedItems", {}).get(table, [])
            if not pending:
                break
            backoff(attempt)
        else:
            raise TransientError(f"DynamoDB left {len(pending)} writes to {table} unprocessed")


def request_token(items: Iterable[Mapping[str, Any]]) -> str:
    """A ClientRequestToken derived from the transaction's content: a retried identical request is idempotent."""
    digest = hashlib.sha256(json.dumps(list(items), sort_keys=True, default=str).encode()).hexdigest()
    return digest[:36]


class TransactionCancelled(Exception):
    def __init__(self, reasons: list[str]) -> None:
        super().__init__(f"transaction cancelled: {reasons}")
        self.reasons = reasons


def transact_write(client: Any, items: list[dict[str, Any]]) -> None:
    """TransactWriteItems; raises ``TransactionCancelled`` with one reason code per item when cancelled."""
    try:
        client.transact_write_items(TransactItems=items, ClientRequestToken=request_token(items))
    except ClientError as exc:
        if error_code(exc) == "TransactionCanceledException":
            reasons = [str(r.get("Code", "None")) for r in exc.response.get("CancellationReasons", [])]
            if not reasons:  # some SDKs only put them in the message
                reasons = ["Unknown"] * len(items)
            raise TransactionCancelled(reasons) from exc
        if error_code(exc) in {
            "TransactionInProgressException",
            "ThrottlingException",
            "ProvisionedThroughputExceededException",
            "RequestLimitExceeded",
        }:
            raise TransactionCancelled(["TransactionConflict"] * len(items)) from exc
        raise
