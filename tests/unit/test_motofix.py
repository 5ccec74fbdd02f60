"""The local-only moto adjustments answer exactly what moto itself (and so DynamoDB's wire format) would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.responses import DynamoResult

from leadpipe_local import motofix

ITEM: dict[str, Any] = {
    "pk": {"S": "W#default"},
    "sk": {"S": "C#ada@example.com"},
    "n": {"N": "12.5"},
    "b": {"B": b"\x00\x01binary\xff"},
    "flag": {"BOOL": True},
    "nothing": {"NULL": True},
    "list": {"L": [{"S": "a"}, {"N": "1"}, {"M": {"inner": {"B": b"x"}}}]},
    "map": {"M": {"k": {"S": "v"}, "deep": {"L": [{"BOOL": False}]}}},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2.5"]},
    "bs": {"BS": [b"one", b"two"]},
    "text": {"S": 'unicode ✓ "quoted" \n newline'},
}


@pytest.fixture
def table() -> Iterator[Any]:
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.put_item(TableName="t", Item=ITEM)
        ddb.put_item(TableName="t", Item={"pk": {"S": "W#default"}, "sk": {"S": "C#bob@example.com"}})
        yield ddb


def _both_ways(monkeypatch: pytest.MonkeyPatch, call: Any) -> tuple[Any, Any]:
    fast = call()
    with monkeypatch.context() as m:  # moto's own serializer for the same request
        m.setattr(DynamoResult, "execute_result", motofix._GENERIC["execute_result"])
        generic = call()
    for answer in (fast, generic):
        answer.pop("ResponseMetadata", None)
    return fast, generic


@pytest.mark.parametrize(
    "operation",
    ["get_item", "batch_get_item", "query", "scan", "query_page", "transact_get_items", "consumed_capacity"],
)
def test_fast_reads_answer_what_moto_serializer_answers(
    table: Any, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    key = {"pk": ITEM["pk"], "sk": ITEM["sk"]}
    calls = {
        "get_item": lambda: table.get_item(TableName="t", Key=key),
        "batch_get_item": lambda: table.batch_get_item(
            RequestItems={"t": {"Keys": [key, {"pk": ITEM["pk"], "sk": {"S": "C#nobody"}}]}}
        ),
        "query": lambda: table.query(
            TableName="t", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": ITEM["pk"]}
        ),
        "scan": lambda: table.scan(TableName="t"),
        "query_page": lambda: table.query(
            TableName="t", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": ITEM["pk"]}, Limit=1
        ),
        "transact_get_items": lambda: table.transact_get_items(TransactItems=[{"Get": {"TableName": "t", "Key": key}}]),
        "consumed_capacity": lambda: table.query(
            TableName="t",
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": ITEM["pk"]},
            ReturnConsumedCapacity="TOTAL",
            ProjectionExpression="sk, b",
        ),
    }
    fast, generic = _both_ways(monkeypatch, calls[operation])
    assert fast == generic
    assert b"\x00\x01binary\xff" in _binaries(fast)  # the item itself came back, bytes intact


def _binaries(value: Any) -> list[bytes]:
    if isinstance(value, bytes):
        return [value]
    if isinstance(value, dict):
        return [b for v in value.values() for b in _binaries(v)]
    if isinstance(value, list):
        return [b for v in value for b in _binaries(v)]
    return []


def test_the_fast_path_is_what_answers(table: Any) -> None:
    assert DynamoResult.execute_result is not motofix._GENERIC["execute_result"]
    body = motofix.plain_json({"Item": {"b": {"B": b"\xff"}}, "LastEvaluatedKey": None})
    assert json.dumps(body) == '{"Item": {"b": {"B": "/w=="}}}'


def test_an_item_over_the_size_limit_is_still_refused(table: Any) -> None:
    from botocore.exceptions import ClientError

    big = {"pk": {"S": "W#default"}, "sk": {"S": "C#big@example.com"}, "blob": {"S": "x" * 406_000}}
    with pytest.raises(ClientError) as refused:
        table.put_item(TableName="t", Item=big)
    assert "Item size has exceeded the maximum allowed size" in str(refused.value)
    fits = {"pk": {"S": "W#default"}, "sk": {"S": "C#fits@example.com"}, "blob": {"S": "x" * 300_000}}
    table.put_item(TableName="t", Item=fits)
    stored = table.get_item(TableName="t", Key={"pk": fits["pk"], "sk": fits["sk"]})["Item"]
    assert stored == fits


def test_a_transaction_failing_half_way_leaves_every_item_as_it_was(table: Any) -> None:
    """Conditions pass, then the third operation fails while being applied: the Put, Delete and Update before it
    are undone, as DynamoDB's all-or-nothing promises."""
    from botocore.exceptions import ClientError

    ann = {"pk": ITEM["pk"], "sk": ITEM["sk"]}
    cy = {"pk": ITEM["pk"], "sk": {"S": "C#cy@example.com"}}
    table.put_item(TableName="t", Item={**cy, "text": {"S": "a string"}})
    bob = {"pk": {"S": "W#default"}, "sk": {"S": "C#bob@example.com"}}
    before = {
        "ann": table.get_item(TableName="t", Key=ann)["Item"],
        "bob": table.get_item(TableName="t", Key=bob)["Item"],
    }
    with pytest.raises(ClientError):
        table.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": "t",
                        "Key": ann,
                        "UpdateExpression": "SET n = :v",
                        "ExpressionAttributeValues": {":v": {"N": "99"}},
                    }
                },
                {"Delete": {"TableName": "t", "Key": bob}},
                {"Put": {"TableName": "t", "Item": {"pk": ITEM["pk"], "sk": {"S": "C#new@example.com"}}}},
                # ADD to a string attribute: accepted by the conditions phase, refused when applied
                {
                    "Update": {
                        "TableName": "t",
                        "Key": cy,
                        "UpdateExpression": "ADD text :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
            ]
        )
    assert table.get_item(TableName="t", Key=ann)["Item"] == before["ann"]
    assert table.get_item(TableName="t", Key=bob)["Item"] == before["bob"]
    assert "Item" not in table.get_item(TableName="t", Key={"pk": ITEM["pk"], "sk": {"S": "C#new@example.com"}})
