"""The local runtime serves every function and event source of a template, with Lambda's semantics."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadpipe_local.cfn import load_template
from leadpipe_local.fakes.hubspot import signature_v3
from leadpipe_local.runtime import LocalRuntime
from tests.conftest import TEMPLATE

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def wait_for(predicate: Any, timeout: float = 20, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path.replace("{proxy+}", "some/path"))


def test_every_function_and_event_source_in_template_yaml_is_served(runtime: LocalRuntime) -> None:
    resources = load_template(TEMPLATE)["Resources"]
    functions = {k: v for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function"}
    assert set(runtime.pools) == set(functions)
    served = 0
    for name, resource in functions.items():
        for event_name, event in (resource["Properties"].get("Events") or {}).items():
            before = runtime.pools[name].stats["invocations"]
            kind, props = event["Type"], event["Properties"]
            if kind == "HttpApi":
                method = "GET" if props["Method"].upper() == "ANY" else props["Method"].upper()
                response = httpx.request(method, runtime.api_url + concrete(props["Path"]), timeout=30)
                assert response.status_code != 404 or response.json() != {"message": "Not Found"}, (
                    f"{name}.{event_name} is not routed"
                )
            elif kind == "SQS":
                source = next(s for s in runtime.sqs_sources if s.function == name and s.event_name == event_name)
                message = {
                    "type": "import.run",
                    "workspace": "default",
                    "job_id": "imp_00000000000000000000000000",
                }
                runtime.client("sqs").send_message(QueueUrl=source.queue_url, MessageBody=json.dumps(message))
            elif kind in {"Schedule", "ScheduleV2"}:
                runtime.fire_schedule(name, event_name)
            else:
                raise AssertionError(f"{name}.{event_name}: event type {kind} has no local test")
            wait_for(
                lambda n=name, b=before: runtime.pools[n].stats["invocations"] > b,
                what=f"{name}.{event_name}",
            )
            served += 1
    assert served == sum(len(f["Properties"].get("Events") or {}) for f in functions.values())
    runtime.wait_until_idle(30)


def test_maximum_concurrency_sets_the_pollers_and_the_warm_workers(runtime: LocalRuntime) -> None:
    concurrency = {(s.function, s.event_name): s.concurrency for s in runtime.sqs_sources}
    # EnrichConcurrency and SyncConcurrency (2 by default); imports' 10, capped at 4 pollers on a laptop; changes 2
    assert concurrency == {
        ("ImportFunction", "ImportQueueMessages"): 4,
        ("ImportFunction", "ChangeQueueMessages"): 2,
        ("EnrichFunction", "EnrichQueueMessages"): 2,
        ("SyncFunction", "SyncQueueMessages"): 2,
        ("DealsFunction", "DealQueueMessages"): 2,
        ("ActivityFunction", "ActivityQueueMessages"): 2,
    }
    assert runtime.pools["SyncFunction"].size == 2 and runtime.pools["ImportFunction"].size == 4
    pollers = [t.name for t in runtime._threads if t.name.startswith("sqs-SyncFunction-") and t.is_alive()]
    assert sorted(pollers) == ["sqs-SyncFunction-SyncQueueMessages-0", "sqs-SyncFunction-SyncQueueMessages-1"]
    health = httpx.get(runtime.api_url + "/_local/health", timeout=10).json()
    assert {(q["function"], q["event"]): q["concurrency"] for q in health["queues"]} == concurrency


def test_resources_match_the_template(runtime: LocalRuntime) -> None:
    ddb = runtime.client("dynamodb")
    table = ddb.describe_table(TableName=runtime.provisioned.ref("ContactsTable"))["Table"]  # type: ignore[union-attr]
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {
        "by_status",
        "by_domain",
        "by_recent",
        "by_hubspot_id",
        "by_enrichment_age",
    }
    state = runtime.provisioned.ref("StateTable")  # type: ignore[union-attr]
    assert ddb.describe_time_to_live(TableName=state)["TimeToLiveDescription"]["AttributeName"] == "expires_at"
    sqs = runtime.client("sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=runtime.provisioned.ref("ImportQueue"), AttributeNames=["All"])  # type: ignore[union-attr]
    redrive = json.loads(attrs["Attributes"]["RedrivePolicy"])
    assert redrive["maxReceiveCount"] == 5 and redrive["deadLetterTargetArn"].endswith("ImportDLQ")
    assert attrs["Attributes"]["VisibilityTimeout"] == "1800"
    bucket = runtime.provisioned.ref("UploadsBucket")  # type: ignore[union-attr]
    s3 = runtime.client("s3")
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    [notification] = s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"]
    assert notification["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "incoming/"}]
    env = runtime.pools["ImportFunction"].spec.environment
    assert env["CONTACTS_TABLE"] == runtime.provisioned.ref("ContactsTable")  # type: ignore[union-attr]
    assert env["IMPORT_QUEUE_URL"] == runtime.provisioned.ref("ImportQueue")  # type: ignore[union-attr]
    assert env["EVENT_BUS_NAME"] == "leadpipe-dev" and env["AUTO_ENRICH_ON_IMPORT"] == "true"


# ------------------------------------------------------------------------------------------------ Lambda semantics


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    rt = LocalRuntime(
        FIXTURES / "echo_template.yaml",
        parameters={"Greeting": "bonjour"},
        api_port=0,
        state_dir=tmp_path_factory.mktemp("echo"),
        retry_delay=0,
        timeout_overrides={"EchoFunction": 2},
        run_schedules=False,
    )
    rt.start()
    yield rt
    rt.stop()


def records(rt: LocalRuntime, prefix: str) -> list[dict[str, Any]]:
    table = rt.provisioned.ref("EchoTable")  # type: ignore[union-attr]
    items = rt.client("dynamodb").scan(TableName=table)["Items"]
    return sorted((i for i in items if i["pk"]["S"].startswith(prefix)), key=lambda i: i["pk"]["S"])


def queue(rt: LocalRuntime, logical_id: str) -> str:
    return str(rt.provisioned.ref(logical_id))  # type: ignore[union-attr]


def dlq_bodies(rt: LocalRuntime) -> list[str]:
    sqs = rt.client("sqs")
    got = sqs.receive_message(QueueUrl=queue(rt, "WorkDLQ"), MaxNumberOfMessages=10)
    bodies = [m["Body"] for m in got.get("Messages", [])]
    for m in got.get("Messages", []):
        sqs.delete_message(QueueUrl=queue(rt, "WorkDLQ"), ReceiptHandle=m["ReceiptHandle"])
    return bodies


def test_partial_batch_failures_are_retried_alone_then_dead_lettered(echo: LocalRuntime) -> None:
    sqs = echo.client("sqs")
    entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(["a", "b", "fail-1", "c"])]
    sqs.send_message_batch(QueueUrl=queue(echo, "WorkQueue"), Entries=entries)
    echo.wait_until_idle(30)
    assert [i["pk"]["S"] for i in records(echo, "sqs#")] == ["sqs#a", "sqs#b", "sqs#c"]  # each processed once
    # the failed message alone came back, once per receive, until maxReceiveCount (2) sent it to the DLQ
    assert [i["pk"]["S"] for i in records(echo, "failed#fail-1")] == ["failed#fail-1#1", "failed#fail-1#2"]
    assert wait_for(lambda: dlq_bodies(echo), what="the DLQ") == ["fail-1"]


def test_a_crashed_or_timed_out_invocation_returns_its_messages(echo: LocalRuntime) -> None:
    sqs = echo.client("sqs")
    pool = echo.pools["EchoFunction"]
    crashes = pool.stats["crash"]
    timeouts = pool.stats["timeout"]
    sqs.send_message(QueueUrl=queue(echo, "WorkQueue"), MessageBody="crash")
    wait_for(lambda: dlq_bodies(echo), timeout=30, what="the crashing message in the DLQ")
    assert pool.stats["crash"] == crashes + 2
    sqs.send_message(QueueUrl=queue(echo, "WorkQueue"), MessageBody="sleep")
    wait_for(lambda: dlq_bodies(echo), timeout=30, what="the sleeping message in the DLQ")
    assert pool.stats["timeout"] == timeouts + 2
    # the function still works afterwards, in a fresh container
    sqs.send_message(QueueUrl=queue(echo, "WorkQueue"), MessageBody="after")
    echo.wait_until_idle(30)
    assert records(echo, "sqs#after")
    assert any("Task timed out after 2.00 seconds" in e for e in echo.errors)


def test_http_route_event_and_environment(echo: LocalRuntime) -> None:
    response = httpx.get(echo.api_url + "/echo/world%21", timeout=10)
    assert response.status_code == 200
    assert response.json() == {
        "route": "GET /echo/{name}",
        "name": "world%21",
        "env": "bonjour from us-east-1",
    }
    assert httpx.get(echo.api_url + "/nope", timeout=10).status_code == 404


def test_schedules_fire_with_a_scheduled_event(echo: LocalRuntime) -> None:
    [source] = echo.schedules
    assert (source.function, source.event_name, source.expression) == ("EchoFunction", "Tick", "rate(1 day)")
    echo.fire_schedule("EchoFunction", "Tick")
    echo.fire_schedule("EchoFunction")
    assert len(records(echo, "schedule#")) == 2


def test_health_endpoint_describes_what_is_served(echo: LocalRuntime) -> None:
    health = httpx.get(echo.api_url + "/_local/health", timeout=10).json()
    assert health["routes"] == ["GET /echo/{name} -> EchoFunction"]
    assert health["queues"][0]["function"] == "EchoFunction"
    assert health["functions"]["EchoFunction"]["handler"] == "echo_handler.handler"


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).resolve().parents[2] / "events").glob("*/*.json")), ids=lambda p: p.stem
)
def test_sample_events_are_accepted_by_their_function(runtime: LocalRuntime, path: Path) -> None:
    function = path.parent.name
    assert function in runtime.pools, f"events/{function}/ names no function of template.yaml"
    event = json.loads(path.read_text())
    if function == "WebhookFunction":  # HubSpot signs each delivery with the time: sign the sample now
        headers = event["headers"]
        headers["x-hubspot-request-timestamp"] = timestamp = str(int(time.time() * 1000))
        url = f"https://{headers['host']}{event['rawPath']}"
        headers["x-hubspot-signature-v3"] = signature_v3(
            runtime.hubspot.client_secret, "POST", url, event["body"], timestamp
        )
    if function == "ApiFunction":  # the samples carry no key (as `leadpipe invoke` gives them one): a caller's key
        event["headers"]["authorization"] = f"Bearer {runtime.api_key()}"
    result = runtime.invoke(function, event)
    if "Records" in event:
        assert result == {"batchItemFailures": []}
    elif function == "PollingFunction":
        assert result == {"workspaces": []}  # no workspace polls by default (HubSpotPolling=false)
    elif function == "DealsFunction":
        assert str(result["run_id"]).startswith("deal-")  # the monthly run, queued on DealQueue
    elif function == "RetentionFunction":
        assert result["disabled"] is False and result["more"] is False  # the daily purge (365 days: none that old)
    elif event.get("detail-type") == "Scheduled Event":
        assert result["requeued"] == 0 and result["workspaces"] >= 1  # every workspace's due retries
    else:
        assert result["statusCode"] in {200, 201, 202, 404}, result
        assert json.loads(result["body"])  # a JSON body, error or not
