"""Shared fixtures. AWS resources in tests are always created from template.yaml, never defined twice."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"

# Tests never talk to real AWS: fake credentials, and no profile or config file from the developer's machine.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_CONFIG_FILE=os.devnull,
    AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    POWERTOOLS_SERVICE_NAME="leadpipe-tests",
)
for _var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
    os.environ.pop(_var, None)

from leadpipe_local import motofix  # noqa: E402 - after the environment is safe

motofix.install()


@dataclass
class Stack:
    """Resources of template.yaml created in moto, with clients to reach them."""

    clients: dict[str, Any]
    contacts_table: str
    state_table: str
    bucket: str
    import_queue_url: str
    import_dlq_url: str
    bus: str
    provisioned: Any = None  # leadpipe_local.provision.Provisioned: every resource's Ref and attributes

    def ref(self, logical_id: str) -> Any:
        return self.provisioned.ref(logical_id)

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = boto3.client(service, region_name="us-east-1")
        return self.clients[service]


@pytest.fixture
def stack() -> Iterator[Stack]:
    from moto import mock_aws

    from leadpipe_local.cfn import Resolver, load_template
    from leadpipe_local.provision import Provisioner

    with mock_aws():
        clients: dict[str, Any] = {}

        def client(service: str) -> Any:
            if service not in clients:
                clients[service] = boto3.client(service, region_name="us-east-1")
            return clients[service]

        resolver = Resolver(load_template(TEMPLATE))
        done = Provisioner(resolver, client).provision()
        yield Stack(
            clients=clients,
            contacts_table=done.ref("ContactsTable"),
            state_table=done.ref("StateTable"),
            bucket=done.ref("UploadsBucket"),
            import_queue_url=done.ref("ImportQueue"),
            import_dlq_url=done.ref("ImportDLQ"),
            bus=done.ref("EventBus"),
            provisioned=done,
        )


@pytest.fixture
def bus_tap(stack: Stack) -> Any:
    """A queue receiving every event published on the bus, to assert on what was published."""
    sqs, events = stack.client("sqs"), stack.client("events")
    url = sqs.create_queue(QueueName="bus-tap")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="tap", EventBusName=stack.bus, EventPattern='{"source": ["leadpipe"]}')
    events.put_targets(Rule="tap", EventBusName=stack.bus, Targets=[{"Id": "tap", "Arn": arn}])

    class Tap:
        def drain(self) -> list[dict[str, Any]]:
            import json

            out = []
            while True:
                got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
                if not got:
                    return out
                for m in got:
                    out.append(json.loads(m["Body"]))
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    return Tap()
