"""A function's "container": a separate Python process that imports the handler once and serves invocations.

Running each function in its own process gives it what Lambda gives it: its own environment variables, its own
module-level state (clients created once per container), a real cold start, and a crash that does not take the
runtime down. The dispatcher talks to it over a pipe.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any


@dataclass
class FunctionSpec:
    logical_id: str
    code_dir: str
    handler: str
    timeout: int
    memory: int
    environment: dict[str, str]
    layer_dirs: list[str] = field(default_factory=list)
    function_name: str = ""
    arn: str = ""
    log_path: str | None = None


class LambdaContext:
    """The context object Lambda passes to a handler (the attributes handlers and Powertools use)."""

    def __init__(self, spec: FunctionSpec, request_id: str, deadline: float) -> None:
        self.function_name = spec.function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = spec.arn
        self.memory_limit_in_mb = spec.memory
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{spec.function_name}"
        self.log_stream_name = f"local/{os.getpid()}"
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def _redirect_output(path: str | None) -> None:
    if not path:
        return
    stream = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    os.dup2(stream.fileno(), 1)
    os.dup2(stream.fileno(), 2)
    sys.stdout = stream
    sys.stderr = stream


def serve(conn: Connection, spec: FunctionSpec) -> None:
    """Entry point of the worker process."""
    _redirect_output(spec.log_path)
    os.environ.update(spec.environment)
    for path in reversed([spec.code_dir, *spec.layer_dirs]):
        if path not in sys.path:
            sys.path.insert(0, path)
    started = time.perf_counter()
    try:
        module_name, function_name = spec.handler.rsplit(".", 1)
        module = importlib.import_module(module_name)
        handler = getattr(module, function_name)
    except BaseException as exc:
        conn.send(("init_error", _error(exc)))
        return
    conn.send(("ready", round((time.perf_counter() - started) * 1000, 1)))
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        event, request_id, deadline, crash = message
        _CRASH.arm(crash)
        context = LambdaContext(spec, request_id or str(uuid.uuid4()), deadline)
        print(f"START RequestId: {context.aws_request_id}", flush=True)
        t0 = time.perf_counter()
        try:
            result = handler(event, context)
            reply: tuple[str, Any] = ("ok", result)
        except BaseException as exc:
            traceback.print_exc()
            reply = ("error", _error(exc))
        _CRASH.arm(None)  # the handler finished before the crash point: no crash
        duration = (time.perf_counter() - t0) * 1000
        print(f"END RequestId: {context.aws_request_id} Duration: {duration:.1f} ms", flush=True)
        conn.send(reply)


class _CrashPoint:
    """Kills this process after the N-th outbound call matching a pattern has completed (a dispatcher fault, see
    leadpipe_local.faults). The hooks on botocore and httpx are installed only when a crash is first asked for."""

    def __init__(self) -> None:
        self.pattern: re.Pattern[str] | None = None
        self.left = 0
        self.installed = False

    def arm(self, crash: dict[str, Any] | None) -> None:
        if not crash:
            self.pattern = None
            return
        self.install()
        self.pattern, self.left = re.compile(crash["match"]), int(crash["after"])
        if self.left <= 0:
            self.die("before its first call")

    def seen(self, description: str) -> None:
        if self.pattern is None or not self.pattern.search(description):
            return
        self.left -= 1
        if self.left <= 0:
            self.die(f"after {description}")

    @staticmethod
    def die(where: str) -> None:
        print(f"CRASH injected by the local dispatcher {where}", flush=True)
        os._exit(137)  # like a container killed mid-invocation: no reply, no cleanup

    def install(self) -> None:
        if self.installed:
            return
        self.installed = True
        import botocore.endpoint
        import httpx

        send_aws = botocore.endpoint.Endpoint._send
        send_http = httpx.HTTPTransport.handle_request

        def aws(endpoint: Any, request: Any) -> Any:
            response = send_aws(endpoint, request)
            target = request.headers.get("X-Amz-Target") or ""
            if isinstance(target, bytes):
                target = target.decode()
            self.seen(f"{request.method} {request.url} {target}".rstrip())
            return response

        def http(transport: Any, request: Any) -> Any:
            response = send_http(transport, request)
            self.seen(f"{request.method} {request.url}")
            return response

        botocore.endpoint.Endpoint._send = aws  # type: ignore[method-assign]
        httpx.HTTPTransport.handle_request = http  # type: ignore[method-assign]


_CRASH = _CrashPoint()


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc),
    }
