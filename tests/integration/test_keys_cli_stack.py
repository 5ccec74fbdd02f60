"""`leadpipe keys create|list|revoke --stack NAME` against a deployed stack: the table is found from the stack's
StateTableName output and written with the caller's AWS credentials (moto plays the account)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from leadpipe.apikeys import ApiKeyStore
from leadpipe_local.cli import main

TEMPLATE = {
    "Resources": {
        "StateTable": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            },
        }
    },
    "Outputs": {"StateTableName": {"Value": {"Ref": "StateTable"}}},
}


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        cfn = boto3.client("cloudformation", region_name="eu-west-1")
        cfn.create_stack(StackName="leadpipe-prod", TemplateBody=json.dumps(TEMPLATE))
        outputs = cfn.describe_stacks(StackName="leadpipe-prod")["Stacks"][0]["Outputs"]
        yield next(o["OutputValue"] for o in outputs if o["OutputKey"] == "StateTableName")


def test_keys_against_a_deployed_stack(deployed: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "create", "--workspace", "acme", "--name", "ops", "--stack", "leadpipe-prod"]) == 0
    key = capsys.readouterr().out.strip()
    store = ApiKeyStore(boto3.client("dynamodb", region_name="eu-west-1"), deployed)
    record = store.lookup(key)
    assert record is not None and record.workspace == "acme" and record.name == "ops"

    assert main(["keys", "list", "--workspace", "acme", "--stack", "leadpipe-prod", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [k["key_id"] for k in listed] == [record.key_id] and key not in json.dumps(listed)

    assert main(["keys", "revoke", "--workspace", "acme", record.key_id, "--stack", "leadpipe-prod"]) == 0
    assert "revoked" in capsys.readouterr().out
    assert store.lookup(key).revoked_at is not None  # type: ignore[union-attr]
    assert main(["keys", "revoke", "--workspace", "globex", record.key_id, "--stack", "leadpipe-prod"]) == 1
    assert "no API key" in capsys.readouterr().err


def test_a_stack_that_is_not_there_is_a_clear_error(deployed: str) -> None:
    with pytest.raises(SystemExit, match="cannot read stack nope"):
        main(["keys", "create", "--workspace", "acme", "--stack", "nope"])


def test_without_a_local_stack_the_command_says_what_to_do(tmp_path: object) -> None:
    with pytest.raises(SystemExit, match="leadpipe up"):
        main(["keys", "create", "--workspace", "acme", "--state-dir", str(tmp_path)])
