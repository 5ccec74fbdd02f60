"""Local-only adjustments to moto, installed wherever moto plays AWS (local runtime, tests, benchmarks).

``TransactWriteItems``: moto deep-copies every table a transaction touches before applying it (to roll back on
failure), so each call costs O(table size) and an import of a few thousand contacts takes minutes. DynamoDB's own
cost is O(items in the transaction). This replacement keeps DynamoDB's semantics -- at most 100 items, one operation
per item, every condition evaluated against the state before the transaction, per-item cancellation reasons, all or
nothing -- and snapshots only the items it touches.

Reads (``GetItem``, ``BatchGetItem``, ``Query``, ``Scan``, ``TransactGetItems``): moto 5.2 serializes every response
by walking botocore's output shape member by member, about 10 s for three 500-contact batch reads. Their results are
already DynamoDB JSON, so they are written out directly (bytes as base64, nulls left out, as the JSON protocol
does); ``tests/unit/test_motofix.py`` checks the two agree on every attribute type. Every other operation keeps
moto's serializer.

Item size: moto checks the 400 KB item limit by re-measuring the whole item for every attribute it sets, quadratic in
an item's attributes (a third of a sync's time). A new item is measured once, against the same limit.
"""

from __future__ import annotations

import base64
import copy
import json
from datetime import datetime
from typing import Any

_state = {"installed": False}


def install() -> None:
    if _state["installed"]:
        return
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )
    from moto.dynamodb.models import DynamoDBBackend

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        if len(transact_items) > 100:
            raise TooManyTransactionsException()
        seen: set[tuple[str, str]] = set()
        plan: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = []
        errors: list[tuple[Any, Any, Any]] = []
        for entry in transact_items:
            if len(entry) > 1:
                raise TransactWriteSingleOpException
            op_type, op = next(iter(entry.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            table = self.get_table(table_name)
            if op_type == "Put":
                attrs = op["Item"]
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            marker = (str(table_name), str(dict(sorted(key.items()))))
            if marker in seen:
                raise MultipleTransactionsException()
            seen.add(marker)
            plan.append((op_type, op, table_name, key))
            # Phase 1: every condition against the state before the transaction.
            current = self.get_item(table_name, key)
            condition = op.get("ConditionExpression")
            if condition is None:
                errors.append((None, None, None))
                continue
            check = get_filter_expression(
                condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            )
            if check.expr(current):
                errors.append((None, None, None))
            else:
                old = None
                if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                    old = current.to_json()["Attributes"]
                errors.append(("ConditionalCheckFailed", "The conditional request failed", old))
        if any(code is not None for code, _, _ in errors):
            raise TransactionCanceledException(errors)

        # Phase 2: apply, keeping a copy of each touched item to undo a failure half-way (as moto does).
        undo: list[tuple[str, dict[str, Any], Any]] = []
        try:
            for op_type, op, table_name, key in plan:
                if op_type == "ConditionCheck":
                    continue
                before = self.get_item(table_name, key)
                # Put and Delete replace the stored Item object, leaving the old one as it was; Update changes it
                # in place, so only an Update needs a copy.
                undo.append((table_name, key, copy.deepcopy(before) if before and op_type == "Update" else before))
                if op_type == "Put":
                    self.put_item(table_name, op["Item"])
                elif op_type == "Delete":
                    self.delete_item(table_name, key)
                else:
                    self.update_item(
                        table_name,
                        key,
                        update_expression=op["UpdateExpression"],
                        expression_attribute_names=op.get("ExpressionAttributeNames"),
                        expression_attribute_values=op.get("ExpressionAttributeValues"),
                    )
        except Exception:
            for table_name, key, item in reversed(undo):
                if item is None:
                    self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, item.to_json()["Attributes"])
            raise

    DynamoDBBackend.transact_write_items = transact_write_items
    _install_fast_reads()
    _install_linear_item_size()
    _state["installed"] = True


ITEM_SIZE_LIMIT = 405000  # moto's own figure: DynamoDB's 400 KB, measured between 409 and 410 KB


def _install_linear_item_size() -> None:
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize

    def item_init(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
        self.hash_key = hash_key
        self.range_key = range_key
        values = {key: DynamoType(value) for key, value in attrs.items()}
        if sum(bytesize(key) + value.size() for key, value in values.items()) > ITEM_SIZE_LIMIT:
            raise ItemSizeTooLarge
        self.attrs = LimitedSizeDict()
        dict.update(self.attrs, values)  # measured above; later updates still go through moto's check

    Item.__init__ = item_init


_GENERIC: dict[str, Any] = {}  # moto's own methods, kept for the tests that compare the two
FAST_READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})


class _NotPlain(Exception):
    """A value the direct encoding does not cover (a timestamp): moto's serializer handles the response."""


def plain_json(value: Any) -> Any:
    """A read's result as the JSON protocol puts it on the wire: bytes in base64, None members left out."""
    if isinstance(value, dict):
        return {k: plain_json(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple | set):
        return [plain_json(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        raise _NotPlain
    return value


def _install_fast_reads() -> None:
    from moto.core.serialize import JSONSerializer
    from moto.dynamodb.responses import DynamoResult

    generic = DynamoResult.execute_result
    _GENERIC["execute_result"] = generic

    def execute_result(self: Any, context: Any) -> Any:
        if context.operation_model.name in FAST_READS and context.serializer_class is JSONSerializer:
            try:
                body = json.dumps(plain_json(self.result), separators=(",", ":"))
            except _NotPlain:
                return generic(self, context)
            version = context.service_model.metadata.get("jsonVersion", "1.0")
            return 200, {"Content-Type": f"application/x-amz-json-{version}"}, body
        return generic(self, context)

    DynamoResult.execute_result = execute_result
