"""Local-only adjustments to moto, installed wherever moto plays AWS (local runtime, tests, benchmarks).

``TransactWriteItems``: moto deep-copies every table a transaction touches before applying it (to roll back on
failure), so each call costs O(table size) and an import of a few thousand contacts takes minutes. DynamoDB's own
cost is O(items in the transaction). This replacement keeps DynamoDB's semantics -- at most 100 items, one operation
per item, every condition evaluated against the state before the transaction, per-item cancellation reasons, all or
nothing -- and snapshots only the items it touches.
"""

from __future__ import annotations

import copy
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
                undo.append((table_name, key, copy.deepcopy(before.to_json()["Attributes"]) if before else None))
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
            for table_name, key, attrs in reversed(undo):
                if attrs is None:
                    self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, attrs)
            raise

    DynamoDBBackend.transact_write_items = transact_write_items
    _state["installed"] = True
