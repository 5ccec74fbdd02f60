"""The local runtime: moto as AWS, the template's resources, and the real handlers behind a local dispatcher.

``LocalRuntime`` reads ``template.yaml``, starts a moto server on 127.0.0.1, creates every resource in it, and
serves every function the way Lambda would:

- ``HttpApi`` events: an HTTP server that selects routes like API Gateway and sends payload 2.0 events;
- ``SQS`` events: one poller per event source, with the source's batch size, deleting what succeeded and
  honouring ``batchItemFailures`` (failed messages come back after ``retry_delay`` seconds and reach the DLQ
  through the queue's own redrive policy);
- ``Schedule``/``ScheduleV2`` events: fired on their rate/cron expression (and on demand);
- dispatcher faults (``runtime.faults``, or ``/_local/faults`` over HTTP): a handler crashing mid-batch, a batch
  delivered twice, batches out of order (see ``leadpipe_local.faults``).

Each function runs in its own worker process with the environment the template gives it. Nothing here is shipped
to Lambda.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

from leadpipe_local import apigw
from leadpipe_local.cfn import Resolver, TemplateError, load_template, merge_globals
from leadpipe_local.client import ApiClient
from leadpipe_local.faults import DispatchFault, DispatchFaults
from leadpipe_local.provision import Provisioned, Provisioner
from leadpipe_local.schedule import Schedule
from leadpipe_local.worker import FunctionSpec, serve

log = logging.getLogger("leadpipe.local")
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
SUPPORTED_EVENTS = {"HttpApi", "SQS", "Schedule", "ScheduleV2"}


class InvokeError(Exception):
    def __init__(self, kind: str, detail: dict[str, Any] | str) -> None:
        message = detail if isinstance(detail, str) else f"{detail.get('errorType')}: {detail.get('errorMessage')}"
        super().__init__(f"{kind}: {message}")
        self.kind = kind  # error | timeout | crash | init_error
        self.detail = detail


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------------------------ workers


class _Worker:
    def __init__(self, spec: FunctionSpec) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=serve, args=(child, spec), daemon=True, name=f"fn-{spec.logical_id}")
        self.process.start()
        child.close()
        self.init_ms: float | None = None

    def wait_ready(self, timeout: float) -> float:
        if not self.conn.poll(timeout):
            self.kill()
            raise InvokeError("init_error", f"the handler did not finish importing within {timeout:.0f}s")
        try:
            kind, payload = self.conn.recv()
        except EOFError as exc:
            raise InvokeError("init_error", "the worker process died while importing the handler") from exc
        if kind != "ready":
            self.kill()
            raise InvokeError("init_error", payload)
        self.init_ms = float(payload)
        return self.init_ms

    def invoke(self, event: Any, timeout: float, crash: dict[str, Any] | None = None) -> Any:
        request_id = str(uuid.uuid4())
        self.conn.send((event, request_id, time.time() + timeout, crash))
        if not self.conn.poll(timeout + 0.5):
            self.kill()
            raise InvokeError("timeout", f"Task timed out after {timeout:.2f} seconds")
        try:
            kind, payload = self.conn.recv()
        except EOFError as exc:
            self.kill()
            raise InvokeError("crash", "the function's process exited during the invocation") from exc
        if kind == "error":
            raise InvokeError("error", payload)
        return payload

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.process.join(timeout=2)
        self.kill()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=2)


class FunctionPool:
    """Up to ``size`` warm workers of one function; invocations queue when all are busy (like reserved
    concurrency)."""

    def __init__(self, spec: FunctionSpec, size: int = 1) -> None:
        self.spec = spec
        self.size = size
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._count = 0
        self._lock = threading.Lock()
        self.stats: Counter[str] = Counter()
        self.cold_starts_ms: list[float] = []
        self._stopped = False

    def _new_worker(self) -> _Worker:
        worker = _Worker(self.spec)
        try:
            self.cold_starts_ms.append(worker.wait_ready(60))
        except InvokeError:
            with self._lock:
                self._count -= 1
            raise
        self.stats["cold_starts"] += 1
        return worker

    def warm(self) -> None:
        with self._lock:
            if self._count >= self.size:
                return
            self._count += 1
        self._idle.put(self._new_worker())

    def _acquire(self) -> _Worker:
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                with self._lock:
                    grow = self._count < self.size
                    if grow:
                        self._count += 1
                if grow:
                    return self._new_worker()
                worker = self._idle.get()
            if worker.alive:
                return worker
            with self._lock:
                self._count -= 1

    def invoke(self, event: Any, timeout: float | None = None, crash: dict[str, Any] | None = None) -> Any:
        if self._stopped:
            raise InvokeError("crash", "the runtime is stopping")
        worker = self._acquire()
        self.stats["invocations"] += 1
        try:
            result = worker.invoke(event, timeout or self.spec.timeout, crash)
        except InvokeError as exc:
            self.stats[exc.kind] += 1
            if not worker.alive:
                with self._lock:
                    self._count -= 1
            else:
                self._idle.put(worker)
            raise
        self._idle.put(worker)
        return result

    def stop(self) -> None:
        self._stopped = True
        while True:
            try:
                self._idle.get_nowait().stop()
            except queue.Empty:
                break


# ------------------------------------------------------------------------------------------------ event sources


@dataclass
class SqsSource:
    function: str
    event_name: str
    queue_url: str
    queue_arn: str
    batch_size: int = 10
    window_seconds: float = 0.0
    report_failures: bool = False
    enabled: bool = True
    # ScalingConfig.MaximumConcurrency (capped by the runtime's max_pollers): batches delivered at once. Without it
    # Lambda scales out further; locally, one at a time.
    concurrency: int = 1
    stats: Counter[str] = field(default_factory=Counter)
    # batches held back by a reorder fault: (deliver-by time, the batch)
    held: list[tuple[float, list[dict[str, Any]]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


@dataclass
class ScheduleSource:
    function: str
    event_name: str
    expression: str
    payload: Any = None
    enabled: bool = True
    fired: int = 0


class LocalRuntime:
    def __init__(
        self,
        template_path: str | Path = "template.yaml",
        *,
        parameters: Mapping[str, Any] | None = None,
        host: str = "127.0.0.1",
        api_port: int = 3000,
        aws_port: int = 0,
        state_dir: str | Path = ".leadpipe",
        env_overrides: Mapping[str, Mapping[str, str]] | None = None,
        timeout_overrides: Mapping[str, int] | None = None,
        retry_delay: float | None = 2.0,
        workers: Mapping[str, int] | None = None,
        max_pollers: int = 4,
        region: str = "us-east-1",
        run_schedules: bool = True,
        hubspot_fake: bool = True,
        hubspot_port: int = 0,
        hubspot_webhooks: bool = True,
    ) -> None:
        self.template_path = Path(template_path).resolve()
        self.root = self.template_path.parent
        self.template = load_template(self.template_path)
        self.parameters = dict(parameters or {})
        self.host = host
        self.api_port = api_port
        self.aws_port = aws_port
        self.state_dir = Path(state_dir).resolve()
        self.env_overrides = {k: dict(v) for k, v in (env_overrides or {}).items()}
        self.timeout_overrides = dict(timeout_overrides or {})
        self.retry_delay = retry_delay
        self.workers = dict(workers or {})
        # batches of one queue in flight at once: the source's MaximumConcurrency, at most this many on a laptop
        self.max_pollers = max(1, max_pollers)
        self.region = region
        self.run_schedules = run_schedules
        self.hubspot_fake = hubspot_fake
        self.hubspot_port = hubspot_port
        self.hubspot: Any = None  # the local HubSpot fake (leadpipe_local.fakes.hubspot.FakeHubSpot), when started
        self.hubspot_webhooks = hubspot_webhooks  # the fake sends its signed webhooks to this stack's API

        self.resolver: Resolver | None = None
        self.provisioned: Provisioned | None = None
        self.pools: dict[str, FunctionPool] = {}
        self.routes: list[apigw.Route] = []
        self.sqs_sources: list[SqsSource] = []
        self.schedules: list[ScheduleSource] = []
        self._moto: Any = None
        self._http: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()
        self.errors: list[str] = []
        self.faults = DispatchFaults()  # crash / duplicate / reorder deliveries (leadpipe_local.faults)
        self._api_keys: dict[str, str] = {}

    # -------------------------------------------------------------------------------------------- lifecycle

    @property
    def aws_endpoint(self) -> str:
        return f"http://{self.host}:{self.aws_port}"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.aws_endpoint,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto's fake credentials
            config=Config(retries={"mode": "standard", "max_attempts": 3}),
        )

    def api_key(self, workspace: str = "default", name: str = "local development") -> str:
        """An API key for ``workspace`` on this stack, created on first use (as ``leadpipe keys create`` does)."""
        if workspace not in self._api_keys:
            from leadpipe.apikeys import ApiKeyStore

            if self.provisioned is None:
                raise RuntimeError("the local stack is not started")
            store = ApiKeyStore(self.client("dynamodb"), self.provisioned.ref("StateTable"))
            self._api_keys[workspace] = store.create(workspace, name)[0]
        return self._api_keys[workspace]

    def auth_headers(self, workspace: str = "default") -> dict[str, str]:
        """The header that authenticates a request as ``workspace`` (for raw HTTP calls)."""
        return {"Authorization": f"Bearer {self.api_key(workspace)}"}

    def api_client(self, workspace: str = "default", **kwargs: Any) -> ApiClient:
        """A client of this stack's HTTP API holding a key of ``workspace``."""
        return ApiClient(self.api_url, api_key=self.api_key(workspace), **kwargs)

    def start(self) -> LocalRuntime:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "logs").mkdir(exist_ok=True)
        self._start_moto()
        if self.hubspot_fake:
            from leadpipe_local.fakes.hubspot import FakeHubSpot

            self.hubspot = FakeHubSpot(host=self.host, port=self.hubspot_port).start()
            # the fake's portal is the default workspace's, and its app is leadpipe's (own writes recognised)
            declared = self.template.get("Parameters") or {}
            for name, value in (("HubSpotPortalId", self.hubspot.portal_id), ("HubSpotAppId", self.hubspot.app_id)):
                if name in declared:
                    self.parameters.setdefault(name, str(value))
        self.resolver = Resolver(self.template, parameters=self.parameters, region=self.region)
        self.provisioned = Provisioner(self.resolver, self.client).provision()
        self._build_functions()
        warmers = [threading.Thread(target=pool.warm, daemon=True) for pool in self.pools.values()]
        for t in warmers:
            t.start()
        for t in warmers:
            t.join()
        self._start_http()
        if self.hubspot is not None and self.hubspot_webhooks:
            self.hubspot.webhook_url = f"{self.api_url}/webhooks/hubspot"
        for source in self.sqs_sources:
            for n in range(source.concurrency):
                self._spawn(self._poll, source, name=f"sqs-{source.function}-{source.event_name}-{n}")
        if self.run_schedules and self.schedules:
            self._spawn(self._scheduler, name="scheduler")
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        for t in self._threads:
            t.join(timeout=5)
        for pool in self.pools.values():
            pool.stop()
        if self.hubspot is not None:
            self.hubspot.stop()
        if self._moto is not None:
            self._moto.terminate()
            try:
                self._moto.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._moto.kill()

    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, target: Any, *args: Any, name: str) -> None:
        t = threading.Thread(target=target, args=args, daemon=True, name=name)
        t.start()
        self._threads.append(t)

    def _start_moto(self) -> None:
        if not self.aws_port:
            self.aws_port = free_port(self.host)
        log_file = open(self.state_dir / "logs" / "moto.log", "ab")  # noqa: SIM115 - closed in stop()
        self._moto = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "leadpipe_local.motoserver",
                "--host",
                self.host,
                "--port",
                str(self.aws_port),
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        log_file.close()
        deadline = time.monotonic() + 30
        while True:
            if self._moto.poll() is not None:
                raise RuntimeError(
                    f"moto exited with {self._moto.returncode} (port {self.aws_port} in use?); "
                    f"see {self.state_dir / 'logs' / 'moto.log'}"
                )
            try:
                with socket.create_connection((self.host, self.aws_port), timeout=0.2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto did not start on {self.aws_endpoint} within 30s") from None
                time.sleep(0.05)

    # -------------------------------------------------------------------------------------------- functions

    def _local_env(self, spec_name: str, function_name: str, props: Mapping[str, Any]) -> dict[str, str]:
        return {
            **LOCAL_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.aws_endpoint,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_LAMBDA_FUNCTION_NAME": function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(props.get("MemorySize", 128)),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{props.get('Runtime', 'python3.13')}",
            "LEADPIPE_LOCAL": "1",
            **(
                {
                    "HUBSPOT_BASE_URL": self.hubspot.url,
                    "HUBSPOT_TOKEN": self.hubspot.token,
                    "HUBSPOT_CLIENT_SECRET": self.hubspot.client_secret,
                }
                if self.hubspot is not None
                else {}
            ),
        }

    def _build_functions(self) -> None:
        assert self.resolver is not None and self.provisioned is not None
        resources = self.template["Resources"]
        for logical_id, resource in resources.items():
            if resource["Type"] != "AWS::Serverless::Function" or not self.resolver.active(logical_id):
                continue
            raw = merge_globals(self.template, resource["Type"], resource.get("Properties", {}))
            events = raw.pop("Events", {}) or {}
            props = self.resolver.resolve(raw)
            if props.get("PackageType", "Zip") != "Zip" or "InlineCode" in props:
                raise TemplateError(f"{logical_id}: only Zip functions with a CodeUri run locally")
            code_dir = (self.root / str(props["CodeUri"])).resolve()
            layer_dirs = []
            for layer in props.get("Layers", []):
                layer_id = next((lid for lid, st in self.resolver.resources.items() if st.ref == layer), None)
                if layer_id is None:
                    raise TemplateError(f"{logical_id}: layer {layer} is not defined in the template")
                content = resources[layer_id]["Properties"]["ContentUri"]
                layer_dirs.append(str((self.root / content).resolve()))
            state = self.resolver.resources[logical_id]
            env = {k: str(v) for k, v in (props.get("Environment", {}).get("Variables", {}) or {}).items()}
            env.update(self._local_env(logical_id, state.ref, props))
            env.update(self.env_overrides.get(logical_id, {}))
            spec = FunctionSpec(
                logical_id=logical_id,
                code_dir=str(code_dir),
                handler=props["Handler"],
                timeout=int(self.timeout_overrides.get(logical_id, props.get("Timeout", 3))),
                memory=int(props.get("MemorySize", 128)),
                environment=env,
                layer_dirs=layer_dirs,
                function_name=str(state.ref),
                arn=str(state.attributes["Arn"]),
                log_path=str(self.state_dir / "logs" / f"{logical_id}.log"),
            )
            self.pools[logical_id] = FunctionPool(spec, self.workers.get(logical_id, 1))
            for event_name, event in events.items():
                self._add_event(logical_id, event_name, event)

    def _add_event(self, function: str, name: str, event: Mapping[str, Any]) -> None:
        assert self.resolver is not None
        kind = event.get("Type")
        props = self.resolver.resolve(event.get("Properties", {}) or {})
        if kind not in SUPPORTED_EVENTS:
            raise TemplateError(f"{function}.{name}: event type {kind} is not supported by the local runtime")
        if kind == "HttpApi":
            self.routes.append(
                apigw.Route(
                    str(props.get("Method", "ANY")).upper().replace("*", "ANY"),
                    props.get("Path", "$default"),
                    function,
                    name,
                )
            )
        elif kind == "SQS":
            arn = props["Queue"]
            queue_name = arn.rsplit(":", 1)[-1]
            url = self.client("sqs").get_queue_url(QueueName=queue_name)["QueueUrl"]
            self.sqs_sources.append(
                SqsSource(
                    function=function,
                    event_name=name,
                    queue_url=url,
                    queue_arn=arn,
                    batch_size=int(props.get("BatchSize", 10)),
                    window_seconds=float(props.get("MaximumBatchingWindowInSeconds", 0)),
                    report_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
                    enabled=str(props.get("Enabled", True)).lower() != "false",
                    concurrency=min(
                        self.max_pollers, int((props.get("ScalingConfig") or {}).get("MaximumConcurrency", 1))
                    ),
                )
            )
            pool = self.pools[function]  # room for every batch in flight, each in its own warm worker
            pool.size = max(pool.size, self.sqs_sources[-1].concurrency)
        else:
            expression = props["Schedule"] if kind == "Schedule" else props["ScheduleExpression"]
            Schedule(expression)  # validate now, not when it first fires
            enabled = props.get("Enabled", True) if kind == "Schedule" else props.get("State", "ENABLED")
            self.schedules.append(
                ScheduleSource(
                    function=function,
                    event_name=name,
                    expression=expression,
                    payload=json.loads(props["Input"]) if props.get("Input") else None,
                    enabled=str(enabled).lower() not in {"false", "disabled"},
                )
            )

    # -------------------------------------------------------------------------------------------- invoking

    def invoke(self, function: str, event: Any, timeout: float | None = None) -> Any:
        with self._in_flight_lock:
            self._in_flight += 1
        try:
            return self.pools[function].invoke(event, timeout)
        finally:
            with self._in_flight_lock:
                self._in_flight -= 1

    def _sqs_record(self, source: SqsSource, message: dict[str, Any]) -> dict[str, Any]:
        attributes = dict(message.get("Attributes", {}))
        record_attrs = {}
        for name, value in (message.get("MessageAttributes") or {}).items():
            record_attrs[name] = {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": value.get("StringListValues", []),
                "binaryListValues": value.get("BinaryListValues", []),
                "dataType": value.get("DataType"),
            }
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": attributes,
            "messageAttributes": record_attrs,
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": source.queue_arn,
            "awsRegion": self.region,
        }

    def _receive(self, sqs: Any, source: SqsSource) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        deadline = time.time() + source.window_seconds
        while len(messages) < source.batch_size and not self._stop.is_set():
            response = sqs.receive_message(
                QueueUrl=source.queue_url,
                MaxNumberOfMessages=min(10, source.batch_size - len(messages)),
                WaitTimeSeconds=1 if not messages else 0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            got = response.get("Messages", [])
            messages.extend(got)
            if not got and (not messages or time.time() >= deadline):
                break
            if messages and time.time() >= deadline:
                break
        return messages

    def _poll(self, source: SqsSource) -> None:
        sqs = self.client("sqs")
        while not self._stop.is_set():
            if not source.enabled:
                self._stop.wait(1)
                continue
            try:
                messages = self._receive(sqs, source)
            except Exception as exc:
                if self._stop.is_set():
                    return
                log.warning("receive from %s failed: %s", source.queue_url, exc)
                self._stop.wait(0.5)
                continue
            if messages and (fault := self.faults.take("reorder", source.function, source.event_name)):
                # out of order: this batch, reversed, waits until a later batch of the queue has been delivered
                with source.lock:
                    source.held.append((time.time() + fault.hold, messages[::-1]))
                self.faults.settle(fault)
                continue
            batches = [messages] if messages else []
            with source.lock:
                due = [h for h in source.held if messages or h[0] <= time.time()]
                source.held = [h for h in source.held if h not in due]
            if due:
                # a held batch delivered after a newer one is a reorder that happened; one whose hold ran out first
                # (nothing newer came) arrives late but in order
                source.stats["reordered" if messages else "held_expired"] += len(due)
            batches += [batch for _, batch in due]
            for batch in batches:
                with self._in_flight_lock:
                    self._in_flight += 1
                try:
                    self._deliver(sqs, source, batch)
                finally:
                    with self._in_flight_lock:
                        self._in_flight -= 1

    def _invoke_batch(
        self, source: SqsSource, event: dict[str, Any], ids: set[str], crash: dict[str, Any] | None = None
    ) -> tuple[set[str], bool]:
        """Invoke the function with one SQS batch: the ids of the messages that failed (all of them on an error), and
        whether it crashed as a crash fault asked."""
        try:
            result = self.pools[source.function].invoke(event, crash=crash)
        except InvokeError as exc:
            if crash is not None and exc.kind == "crash":
                source.stats["crashed"] += 1
                log.info("%s crashed mid-batch as asked (a dispatcher fault)", source.function)
                return set(ids), True
            self._report(f"{source.function} failed on a batch of {len(ids)} from {source.event_name}: {exc}")
            return set(ids), False
        if source.report_failures and isinstance(result, dict) and result.get("batchItemFailures"):
            reported = {str(f.get("itemIdentifier", "")) for f in result["batchItemFailures"]}
            # Lambda treats an unknown or empty identifier as a failure of the whole batch
            return (set(ids) if not reported <= ids else reported), False
        return set(), False

    def _deliver(self, sqs: Any, source: SqsSource, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [self._sqs_record(source, m) for m in messages]}
        ids = {m["MessageId"] for m in messages}
        source.stats["batches"] += 1
        source.stats["messages"] += len(messages)
        crash = self.faults.take("crash", source.function, source.event_name)
        failed, crashed = self._invoke_batch(
            source, event, ids, {"after": crash.after, "match": crash.match} if crash else None
        )
        if crash is not None:
            # spent only if the process died: a batch that ended before the crash point gives the fault back
            self.faults.settle(crash, happened=crashed)
        if duplicate := self.faults.take("duplicate", source.function, source.event_name):
            # at-least-once: the same messages delivered again before the first delivery deleted them; a message
            # is gone once either delivery succeeded
            self.faults.settle(duplicate)
            source.stats["duplicated"] += len(messages)
            failed &= self._invoke_batch(source, event, ids)[0]
        source.stats["failed"] += len(failed)
        done = [m for m in messages if m["MessageId"] not in failed]
        for i in range(0, len(done), 10):
            sqs.delete_message_batch(
                QueueUrl=source.queue_url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done[i : i + 10])],
            )
        retry = [m for m in messages if m["MessageId"] in failed]
        if self.retry_delay is not None and retry:
            for i in range(0, len(retry), 10):
                entries = [
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": int(self.retry_delay)}
                    for n, m in enumerate(retry[i : i + 10])
                ]
                try:  # if this fails, the messages come back after the queue's own visibility timeout
                    sqs.change_message_visibility_batch(QueueUrl=source.queue_url, Entries=entries)
                except Exception as exc:
                    log.debug("could not shorten visibility: %s", exc)

    def _report(self, message: str) -> None:
        self.errors.append(message)
        log.warning(message)

    # -------------------------------------------------------------------------------------------- schedules

    def schedule_event(self, source: ScheduleSource) -> Any:
        if source.payload is not None:
            return source.payload
        assert self.resolver is not None
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.resolver.account,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": [
                f"arn:aws:events:{self.region}:{self.resolver.account}:rule/{source.function}{source.event_name}"
            ],
            "detail": {},
        }

    def fire_schedule(self, function: str, event_name: str | None = None) -> Any:
        """Fire a function's schedule now (what the scheduler does when it is due)."""
        for source in self.schedules:
            if source.function == function and (event_name is None or source.event_name == event_name):
                source.fired += 1
                return self.invoke(function, self.schedule_event(source))
        raise KeyError(f"{function} has no schedule {event_name or ''}".strip())

    def _scheduler(self) -> None:
        due = {id(s): Schedule(s.expression).next_after(datetime.now(UTC)) for s in self.schedules}
        while not self._stop.is_set():
            now = datetime.now(UTC)
            for source in self.schedules:
                if source.enabled and due[id(source)] <= now:
                    due[id(source)] = Schedule(source.expression).next_after(now)
                    try:
                        self.fire_schedule(source.function, source.event_name)
                    except InvokeError as exc:
                        self._report(f"{source.function} schedule {source.event_name} failed: {exc}")
            self._stop.wait(1)

    # -------------------------------------------------------------------------------------------- waiting

    def queue_depth(self, url: str) -> int:
        attrs = self.client("sqs").get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return sum(int(v) for v in attrs.values())

    def wait_until_idle(self, timeout: float = 60, settle: float = 0.3) -> None:
        """Wait until every event-source queue is empty and nothing is being invoked."""
        deadline = time.time() + timeout
        quiet_since: float | None = None
        while time.time() < deadline:
            busy = self._in_flight > 0 or any(self.queue_depth(s.queue_url) for s in self.sqs_sources)
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.time()
            elif time.time() - quiet_since >= settle:
                return
            time.sleep(0.1)
        raise TimeoutError(f"the local runtime was still busy after {timeout}s")

    # -------------------------------------------------------------------------------------------- HTTP

    def describe(self) -> dict[str, Any]:
        return {
            "api_url": self.api_url,
            "aws_endpoint": self.aws_endpoint,
            "functions": {
                name: {
                    "handler": pool.spec.handler,
                    "invocations": pool.stats["invocations"],
                    "errors": pool.stats["error"] + pool.stats["timeout"] + pool.stats["crash"],
                    "cold_start_ms": pool.cold_starts_ms[-1] if pool.cold_starts_ms else None,
                }
                for name, pool in self.pools.items()
            },
            "routes": [r.route_key + " -> " + r.function for r in self.routes],
            "queues": [
                {"function": s.function, "event": s.event_name, "concurrency": s.concurrency, **s.stats}
                for s in self.sqs_sources
            ],
            "faults": {"active": [f.view() for f in self.faults.active()], "applied": dict(self.faults.applied)},
            "schedules": [
                {"function": s.function, "event": s.event_name, "expression": s.expression, "fired": s.fired}
                for s in self.schedules
            ],
        }

    def handle_http(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, client_ip: str
    ) -> apigw.HttpResponse:
        parts = urlsplit(target)
        raw_path = parts.path or "/"
        if raw_path == "/_local/health":
            return _json_response(200, self.describe())
        if raw_path == "/_local/faults":
            return self._faults_http(method, body)
        if len(body) > apigw.MAX_REQUEST_BYTES:
            return apigw.gateway_error(413, "Request Entity Too Large")
        selected = apigw.select_route(self.routes, method, raw_path)
        if selected is None:
            return apigw.gateway_error(404, "Not Found")
        route, params = selected
        assert self.resolver is not None
        event = apigw.build_event(
            route,
            params,
            method=method,
            raw_path=raw_path,
            raw_query=parts.query,
            headers=headers,
            body=body,
            source_ip=client_ip,
            account=self.resolver.account,
            domain=f"{self.host}:{self.api_port}",
        )
        if len(json.dumps(event)) > apigw.MAX_EVENT_BYTES:
            self._report(f"{route.route_key}: request of {len(body)} bytes exceeds Lambda's 6 MB payload limit")
            return apigw.gateway_error(413, "Request Entity Too Large")
        try:
            result = self.invoke(route.function, event)
        except InvokeError as exc:
            self._report(f"{route.function} failed on {route.route_key}: {exc}")
            return apigw.gateway_error(500, "Internal Server Error")
        return apigw.translate_response(result)

    def _faults_http(self, method: str, body: bytes) -> apigw.HttpResponse:
        """``POST`` a dispatcher fault, ``GET`` the active ones and what was applied, ``DELETE`` them all."""
        if method == "GET":
            return _json_response(
                200, {"faults": [f.view() for f in self.faults.active()], "applied": dict(self.faults.applied)}
            )
        if method == "DELETE":
            self.faults.clear()
            return _json_response(200, {"faults": []})
        if method != "POST":
            return _json_response(405, {"message": "use GET, POST or DELETE"})
        consumers = {s.function for s in self.sqs_sources}
        try:
            fault = DispatchFault.from_json(json.loads(body or b"null"), consumers)
        except (ValueError, TypeError) as exc:
            return _json_response(400, {"message": f"invalid fault: {exc}"})
        self.faults.add(fault)
        return _json_response(201, {"fault": fault.view()})

    def _start_http(self) -> None:
        runtime = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body are separate writes: without this, Nagle + delayed ACK add ~40 ms per request.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                response = runtime.handle_http(
                    self.command, self.path, list(self.headers.items()), body, self.client_address[0]
                )
                self.send_response(response.status)
                for name, value in response.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(response.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("%s - %s", self.client_address[0], format % args)

        if not self.api_port:
            self.api_port = free_port(self.host)
        self._http = ThreadingHTTPServer((self.host, self.api_port), Handler)
        self._http.daemon_threads = True
        self._spawn(lambda: self._http.serve_forever(poll_interval=0.05) if self._http else None, name="http-api")


def _json_response(status: int, body: Any) -> apigw.HttpResponse:
    return apigw.HttpResponse(status, [("content-type", "application/json")], json.dumps(body).encode())
