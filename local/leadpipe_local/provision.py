"""Create the resources of ``template.yaml`` in moto (or any AWS-compatible endpoint), in dependency order.

Every resource type in the template must be handled here: either created (tables, queues, buckets, buses, rules,
topics) or explicitly known as nothing to create locally (functions, layers and the HTTP API are served by the
dispatcher; IAM, logs and alarms have no local behaviour). An unknown type is an error, so adding a resource to the
template forces a decision about how it runs locally.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from typing import Any

from leadpipe_local.cfn import Resolver, ResourceState, TemplateError, merge_globals

SERVED_BY_DISPATCHER = {
    "AWS::Serverless::Function",
    "AWS::Serverless::LayerVersion",
    "AWS::Serverless::HttpApi",
}
NO_LOCAL_BEHAVIOUR = {
    "AWS::Logs::LogGroup",
    "AWS::CloudWatch::Alarm",
    "AWS::SNS::Subscription",
    "AWS::S3::BucketPolicy",  # moto does not evaluate bucket policies; TLS-only rules cannot apply to http
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
}


@dataclass
class Provisioned:
    """The result of provisioning: physical resources, and what the template needs to resolve references."""

    resolver: Resolver
    created: dict[str, str] = field(default_factory=dict)  # logical id -> resource type
    skipped: dict[str, str] = field(default_factory=dict)  # logical id -> why (condition false, ...)

    def ref(self, logical_id: str) -> Any:
        return self.resolver.resources[logical_id].ref

    def attr(self, logical_id: str, name: str) -> Any:
        return self.resolver.resources[logical_id].attributes[name]


class Provisioner:
    def __init__(self, resolver: Resolver, clients: Callable[[str], Any]) -> None:
        self.resolver = resolver
        self.client = clients
        self.template = resolver.template
        self.region = resolver.region
        self.account = resolver.account

    def _name(self, logical_id: str, max_len: int = 80) -> str:
        return f"{self.resolver.stack_name}-{logical_id}"[:max_len]

    def provision(self) -> Provisioned:
        resources = self.template["Resources"]
        graph: dict[str, set[str]] = {}
        for logical_id, resource in resources.items():
            deps = set(self.resolver.references(resource.get("Properties", {})))
            depends_on = resource.get("DependsOn", [])
            deps |= set([depends_on] if isinstance(depends_on, str) else depends_on)
            if resource.get("Type") == "AWS::Serverless::Function":
                # Globals may refer to resources too (environment variables, layers)
                deps |= self.resolver.references(self.template.get("Globals", {}).get("Function", {}))
            deps.discard(logical_id)
            graph[logical_id] = deps
        result = Provisioned(self.resolver)
        for logical_id in TopologicalSorter(graph).static_order():
            resource = resources[logical_id]
            kind = resource["Type"]
            if not self.resolver.active(logical_id):
                result.skipped[logical_id] = f"condition {resource['Condition']} is false"
                continue
            handler = self._HANDLERS.get(kind)
            if handler is None:
                if kind in SERVED_BY_DISPATCHER or kind in NO_LOCAL_BEHAVIOUR:
                    self.resolver.resources[logical_id] = self._placeholder(logical_id, kind)
                    continue
                raise TemplateError(
                    f"{logical_id}: resource type {kind} is not supported by the local runtime "
                    "(add it to leadpipe_local/provision.py)"
                )
            properties = self.resolver.resolve(merge_globals(self.template, kind, resource.get("Properties", {})))
            self.resolver.resources[logical_id] = handler(self, logical_id, properties)
            result.created[logical_id] = kind
        return result

    def _placeholder(self, logical_id: str, kind: str) -> ResourceState:
        name = self._name(logical_id, 64)
        arn_service = {
            "AWS::Serverless::Function": f"lambda:{self.region}:{self.account}:function:{name}",
            "AWS::Serverless::LayerVersion": f"lambda:{self.region}:{self.account}:layer:{name}:1",
            "AWS::Logs::LogGroup": f"logs:{self.region}:{self.account}:log-group:{name}",
            "AWS::IAM::Role": f"iam::{self.account}:role/{name}",
        }.get(kind, f"local:{self.region}:{self.account}:{name}")
        arn = f"arn:aws:{arn_service}"
        ref = {"AWS::Serverless::LayerVersion": arn, "AWS::Serverless::HttpApi": "localapi"}.get(kind, name)
        return ResourceState(ref=ref, attributes={"Arn": arn, "Name": name})

    # ---------------------------------------------------------------------------------------------- DynamoDB

    def _table(self, logical_id: str, props: dict[str, Any]) -> ResourceState:
        ddb = self.client("dynamodb")
        name = props.get("TableName") or self._name(logical_id)
        request: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if request["BillingMode"] == "PROVISIONED":
            request["ProvisionedThroughput"] = props.get(
                "ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
            )
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "StreamSpecification"):
            if key in props:
                request[key] = props[key]
        sse = props.get("SSESpecification")
        if sse:  # CloudFormation spells it SSEEnabled, the API Enabled
            request["SSESpecification"] = {"Enabled": str(sse.get("SSEEnabled")).lower() == "true"}
            for key in ("SSEType", "KMSMasterKeyId"):
                if key in sse:
                    request["SSESpecification"][key] = sse[key]
        for index in request.get("GlobalSecondaryIndexes", []):
            index.pop("ContributorInsightsSpecification", None)
        ddb.create_table(**request)
        ttl = props.get("TimeToLiveSpecification")
        if ttl and str(ttl.get("Enabled")).lower() == "true":
            ddb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
        arn = f"arn:aws:dynamodb:{self.region}:{self.account}:table/{name}"
        return ResourceState(ref=name, attributes={"Arn": arn, "StreamArn": f"{arn}/stream/local"})

    # ---------------------------------------------------------------------------------------------- SQS

    _QUEUE_ATTRIBUTES = {
        "VisibilityTimeout",
        "MessageRetentionPeriod",
        "DelaySeconds",
        "MaximumMessageSize",
        "ReceiveMessageWaitTimeSeconds",
        "FifoQueue",
        "ContentBasedDeduplication",
        "SqsManagedSseEnabled",
    }

    def _queue(self, logical_id: str, props: dict[str, Any]) -> ResourceState:
        sqs = self.client("sqs")
        fifo = str(props.get("FifoQueue", "false")).lower() == "true"
        name = props.get("QueueName") or self._name(logical_id, 75) + (".fifo" if fifo else "")
        attributes = {
            k: str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in props.items()
            if k in self._QUEUE_ATTRIBUTES
        }
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        if "RedriveAllowPolicy" in props:
            attributes["RedriveAllowPolicy"] = json.dumps(props["RedriveAllowPolicy"])
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = f"arn:aws:sqs:{self.region}:{self.account}:{name}"
        return ResourceState(ref=url, attributes={"Arn": arn, "QueueName": name, "QueueUrl": url})

    def _queue_policy(self, logical_id: str, props: dict[str, Any]) -> ResourceState:
        sqs = self.client("sqs")
        for url in props.get("Queues", []):
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])})
        return ResourceState(ref=self._name(logical_id))

    # ---------------------------------------------------------------------------------------------- S3

    def _bucket(self, logical_id: str, props: dict[str, Any]) -> ResourceState:
        s3 = self.client("s3")
        name = props.get("BucketName") or re.sub(r"[^a-z0-9-]", "-", self._name(logical_id, 63).lower())
        request: dict[str, Any] = {"Bucket": name}
        if self.region != "us-east-1":
            request["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        s3.create_bucket(**request)
        if "BucketEncryption" in props:  # CloudFormation and the API name these differently
            rules = []
            for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]:
                api_rule: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
                if "BucketKeyEnabled" in rule:
                    api_rule["BucketKeyEnabled"] = str(rule["BucketKeyEnabled"]).lower() == "true"
                rules.append(api_rule)
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        if "PublicAccessBlockConfiguration" in props:
            s3.put_public_access_block(
                Bucket=name,
                PublicAccessBlockConfiguration={
                    k: str(v).lower() == "true" for k, v in props["PublicAccessBlockConfiguration"].items()
                },
            )
        if "CorsConfiguration" in props:
            renames = {"ExposedHeaders": "ExposeHeaders", "Id": "ID", "MaxAge": "MaxAgeSeconds"}
            cors_rules = [{renames.get(k, k): v for k, v in r.items()} for r in props["CorsConfiguration"]["CorsRules"]]
            s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": cors_rules})
        notifications = props.get("NotificationConfiguration")
        if notifications:
            if notifications.get("LambdaConfigurations") or notifications.get("TopicConfigurations"):
                raise TemplateError(
                    f"{logical_id}: only S3 -> SQS notifications run locally (S3 events go through a queue)"
                )
            configs = []
            for q in notifications.get("QueueConfigurations", []):
                config: dict[str, Any] = {"QueueArn": q["Queue"], "Events": [q["Event"]]}
                rules = q.get("Filter", {}).get("S3Key", {}).get("Rules")
                if rules:
                    config["Filter"] = {"Key": {"FilterRules": rules}}
                configs.append(config)
            s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"QueueConfigurations": configs}
            )
        arn = f"arn:aws:s3:::{name}"
        return ResourceState(
            ref=name,
            attributes={
                "Arn": arn,
                "DomainName": f"{name}.s3.amazonaws.com",
                "RegionalDomainName": f"{name}.s3.{self.region}.amazonaws.com",
            },
        )

    # ---------------------------------------------------------------------------------------------- EventBridge

    def _bus(self, logical_id: str, props: dict[str, Any]) -> ResourceState:
        name = props["Name"]
        self.client("events").create_event_bus(Name=name)
        arn = f"arn:aws:events:{self.region}:{self.account}:event-bus/{name}"
        return ResourceState(ref=name, attributes={"Arn": arn, "Name": name})

    def _rule(self, logical_id: str, props: dict[str, Any]) -> ResourceState:
        events = self.client("events")
        name = props.get("Name") or self._name(logical_id, 64)
        bus = props.get("EventBusName", "default")
        if isinstance(bus, str) and bus.startswith("arn:"):
            bus = bus.rsplit("/", 1)[-1]
        request: dict[str, Any] = {"Name": name, "EventBusName": bus, "State": props.get("State", "ENABLED")}
        if "EventPattern" in props:
            request["EventPattern"] = json.dumps(props["EventPattern"])
        if "ScheduleExpression" in props:
            raise TemplateError(
                f"{logical_id}: schedule rules targeting resources are not run locally; use a function "
                "Schedule event instead"
            )
        events.put_rule(**request)
        if request["State"] == "ENABLED":  # moto delivers to DISABLED rules anyway: give them no targets
            targets = []
            for target in props.get("Targets", []):
                if ":sqs:" not in target["Arn"]:
                    raise TemplateError(f"{logical_id}: only SQS rule targets run locally (got {target['Arn']})")
                t = {"Id": target["Id"], "Arn": target["Arn"]}
                for key in ("Input", "InputPath", "InputTransformer", "SqsParameters"):
                    if key in target:
                        t[key] = target[key]
                targets.append(t)
            if targets:
                events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
        arn = f"arn:aws:events:{self.region}:{self.account}:rule/{bus}/{name}"
        return ResourceState(ref=name, attributes={"Arn": arn})

    # ---------------------------------------------------------------------------------------------- SNS

    def _topic(self, logical_id: str, props: dict[str, Any]) -> ResourceState:
        name = props.get("TopicName") or self._name(logical_id, 256)
        arn = self.client("sns").create_topic(Name=name)["TopicArn"]
        return ResourceState(ref=arn, attributes={"TopicArn": arn, "TopicName": name})

    # ---------------------------------------------------------------------------------------------- Secrets

    def _secret(self, logical_id: str, props: dict[str, Any]) -> ResourceState:
        name = props.get("Name") or self._name(logical_id, 256)
        value = props.get("SecretString")
        if value is None:
            value = _generated_secret(props.get("GenerateSecretString") or {})
        arn = self.client("secretsmanager").create_secret(
            Name=name, SecretString=value, Description=props.get("Description", "")
        )["ARN"]
        return ResourceState(ref=arn, attributes={"Id": arn})

    _HANDLERS: dict[str, Callable[[Provisioner, str, dict[str, Any]], ResourceState]] = {
        "AWS::DynamoDB::Table": _table,
        "AWS::SQS::Queue": _queue,
        "AWS::SQS::QueuePolicy": _queue_policy,
        "AWS::S3::Bucket": _bucket,
        "AWS::Events::EventBus": _bus,
        "AWS::Events::Rule": _rule,
        "AWS::SNS::Topic": _topic,
        "AWS::SecretsManager::Secret": _secret,
    }


def _generated_secret(spec: dict[str, Any]) -> str:
    """What ``GenerateSecretString`` produces: a random password, optionally inside a JSON template."""
    import secrets
    import string

    alphabet = string.ascii_letters + string.digits
    if str(spec.get("ExcludePunctuation", "false")).lower() != "true":
        alphabet += "!#$%&()*+,-.:;<=>?@[]^_{|}~"
    if str(spec.get("IncludeSpace", "false")).lower() == "true":
        alphabet += " "
    excluded = set(spec.get("ExcludeCharacters", ""))
    alphabet = "".join(c for c in alphabet if c not in excluded)
    password = "".join(secrets.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))
    template = spec.get("SecretStringTemplate")
    if template and spec.get("GenerateStringKey"):
        data = json.loads(template)
        data[spec["GenerateStringKey"]] = password
        return json.dumps(data)
    return password
