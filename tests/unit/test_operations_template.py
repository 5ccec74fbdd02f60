"""Operations in template.yaml: an error alarm on every function, a depth alarm on every DLQ, and the activity feed's
rule, queue and function."""

from __future__ import annotations

from typing import Any

import pytest

from leadpipe.activity import RECORDED
from leadpipe.models import RUN_EVENTS
from leadpipe_local.cfn import load_template
from tests.conftest import TEMPLATE

FN = "AWS::Serverless::Function"
ALARM = "AWS::CloudWatch::Alarm"


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return dict(load_template(TEMPLATE)["Resources"])


def alarms_on(resources: dict[str, Any], namespace: str, metric: str) -> dict[str, dict[str, Any]]:
    """Alarm properties by the Ref or GetAtt their dimension points at."""
    out = {}
    for resource in resources.values():
        props = resource.get("Properties", {})
        if resource["Type"] == ALARM and (props.get("Namespace"), props.get("MetricName")) == (namespace, metric):
            [dimension] = props["Dimensions"]
            value = dimension["Value"]
            target = value.get("Ref") or value["Fn::GetAtt"][0]
            out[target] = props
    return out


def test_every_function_has_an_errors_alarm_to_the_alarm_topic(resources: dict[str, Any]) -> None:
    functions = {name for name, r in resources.items() if r["Type"] == FN}
    alarms = alarms_on(resources, "AWS/Lambda", "Errors")
    assert functions - set(alarms) == set(), "functions without an Errors alarm"
    for name in functions:
        props = alarms[name]
        assert props["Dimensions"][0]["Name"] == "FunctionName"
        assert (props["Statistic"], props["Threshold"], props["ComparisonOperator"]) == (
            "Sum",
            0,
            "GreaterThanThreshold",
        )
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}] and props["TreatMissingData"] == "notBreaching"


def test_every_dead_letter_queue_has_a_depth_alarm(resources: dict[str, Any]) -> None:
    dlqs = {
        r["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for r in resources.values()
        if r["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in r.get("Properties", {})
    }
    assert "ActivityDLQ" in dlqs
    alarms = alarms_on(resources, "AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert dlqs - set(alarms) == set(), "dead-letter queues without a depth alarm"


def test_the_activity_rule_takes_the_run_events_and_imports_to_its_queue_and_function(
    resources: dict[str, Any],
) -> None:
    rule = resources["ActivityRule"]
    assert "Condition" not in rule  # the feed records whatever the automation switches say
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["leadpipe"] and sorted(pattern["detail-type"]) == sorted(RECORDED)
    assert set(RUN_EVENTS) < set(RECORDED)
    assert rule["Properties"]["Targets"] == [{"Id": "ActivityQueue", "Arn": {"Fn::GetAtt": ["ActivityQueue", "Arn"]}}]
    policy = resources["ActivityQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert policy["Principal"] == {"Service": "events.amazonaws.com"}
    assert policy["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["ActivityRule", "Arn"]}}}
    queue = resources["ActivityQueue"]["Properties"]
    function = resources["ActivityFunction"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]
    source = function["Events"]["ActivityQueueMessages"]["Properties"]
    assert source["Queue"] == {"Fn::GetAtt": ["ActivityQueue", "Arn"]}
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # least privilege: the feed's writes only
    [statement] = function["Policies"][0]["Statement"]
    assert statement["Action"] == "dynamodb:BatchWriteItem"
    assert statement["Resource"] == {"Fn::GetAtt": ["StateTable", "Arn"]}


def test_the_sync_in_flight_window_is_the_sync_functions_timeout(resources: dict[str, Any]) -> None:
    """A contact found ``syncing`` may belong to another delivery's attempt for as long as the function may run: the
    sync waits that long (then the settle) before reading its notes back, so the two must not drift apart."""
    sync = resources["SyncFunction"]["Properties"]
    assert int(sync["Environment"]["Variables"]["SYNC_INFLIGHT_SECONDS"]) == int(sync["Timeout"])
    visibility = int(resources["SyncQueue"]["Properties"]["VisibilityTimeout"])
    assert visibility >= 6 * int(sync["Timeout"])  # a redelivery comes after the attempt and its settle are over
