"""A small threaded HTTP server for fakes of third-party APIs: JSON routes, a request log, fault injection.

Subclasses register routes with ``@route("POST", "/api/v1/people/bulk_match")`` (``{name}`` segments become
path parameters) and return ``Reply`` objects in the real API's shapes. Faults make the fake misbehave the way
real services do: error statuses, 429 storms with Retry-After, latency, timeouts (answering after the client gave
up), malformed JSON; before the request is carried out, or after it (``apply``: the work was done, a gateway answered
502/504); for the next N calls, for a fraction of calls, or for a period. In the test's process with
``inject(Fault(...))``, or over HTTP from anywhere: ``POST /_fake/faults`` (the ``Fault`` fields, ``seconds`` for a
period), ``GET /_fake/faults``, ``DELETE /_fake/faults``; the ``/_fake/`` controls themselves never misbehave. The
request log (``requests``, ``calls()``) keeps when each call came in and the status it was answered with.
"""

from __future__ import annotations

import json
import random
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]  # path parameters
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float = field(default_factory=time.time)  # when it came in (epoch seconds)
    status: int | None = None  # the status it was answered with (None while it is being served)
    faulted: bool = False  # a fault answered it (or misbehaved on it)

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-serialisable, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    """How to misbehave. ``times``: for the next N matching calls; ``fraction``: that share of calls (one or the
    other, or neither: every call); ``until``: an epoch time. ``path`` (regex) limits it to some routes,
    ``body_match`` (regex over the request's body) to some requests of them.

    ``latency`` delays the answer (it still succeeds unless something else is set), ``timeout`` too, for longer than
    the client waits. ``status`` (with ``body`` and ``headers``) or ``malformed`` answer instead of the fake: before
    the request is carried out, or with ``apply`` after it was (the change was made, the answer says otherwise)."""

    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    latency: float = 0.0
    timeout: float = 0.0  # sleep this long before answering (longer than the client's timeout)
    malformed: bool = False
    apply: bool = False  # carry the request out, then answer with ``status`` / ``malformed``
    times: int | None = None
    fraction: float | None = None
    until: float | None = None
    path: str | None = None
    body_match: str | None = None

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Refuse a fault that would not do what it says (``ValueError`` with the reason)."""
        if self.times is not None and self.fraction is not None:
            raise ValueError("give times or fraction, not both (a fraction of the next N calls is not a fault here)")
        if self.times is not None and self.times < 0:
            raise ValueError("times must be a count (an integer >= 0)")
        if self.fraction is not None and not 0.0 < self.fraction <= 1.0:
            raise ValueError("fraction must be a number in (0, 1]")
        if self.latency < 0 or self.timeout < 0:
            raise ValueError("latency and timeout must be seconds (>= 0)")
        if self.apply and self.status is None and not self.malformed:
            raise ValueError("apply needs a status (or malformed) to answer with once the request is carried out")
        for name in ("path", "body_match"):
            pattern = getattr(self, name)
            if pattern is not None:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"{name} is not a regular expression: {exc}") from exc

    def applies(self, request: Request, rng: random.Random) -> bool:
        if self.path and not re.search(self.path, request.path):
            return False
        if self.body_match and not re.search(self.body_match, request.body.decode("utf-8", "replace")):
            return False
        if self.until is not None and time.time() > self.until:
            return False
        if self.times is not None:
            if self.times <= 0:
                return False
            self.times -= 1
            return True
        if self.fraction is not None:
            return rng.random() < self.fraction
        return True

    @property
    def spent(self) -> bool:
        return (self.times is not None and self.times <= 0) or (self.until is not None and time.time() > self.until)


Handler = Callable[[Any, Request], Reply]
ADMIN_PREFIX = "/_fake/"
FAULT_FIELDS = frozenset(f.name for f in fields(Fault))
FAULT_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "status": ((int,), "an HTTP status (integer)"),
    "headers": ((dict,), "an object of header names to values"),
    "latency": ((int, float), "seconds (a number)"),
    "timeout": ((int, float), "seconds (a number)"),
    "malformed": ((bool,), "true or false"),
    "apply": ((bool,), "true or false"),
    "times": ((int,), "a count (integer)"),
    "fraction": ((int, float), "a number between 0 and 1"),
    "until": ((int, float), "an epoch time (a number)"),
    "seconds": ((int, float), "seconds (a number)"),
    "path": ((str,), "a regular expression (string)"),
    "body_match": ((str,), "a regular expression (string)"),
}


def _fault_view(fault: Fault) -> dict[str, Any]:
    return {k: v for k, v in asdict(fault).items() if v not in (None, {}, 0.0, False)}


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    def mark(fn: Handler) -> Handler:
        fn._route = (method.upper(), pattern)  # type: ignore[attr-defined]
        return fn

    return mark


class FakeServer:
    """Base class of the fakes. ``start()`` serves on 127.0.0.1 (port 0 picks a free one) in a thread."""

    name = "fake"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, seed: int = 7) -> None:
        self.host = host
        self.port = port
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.latency = 0.0  # added to every call
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        routes: list[tuple[tuple[bool, ...], str, re.Pattern[str], Handler]] = []
        for attr in dir(type(self)):
            fn = getattr(type(self), attr)
            spec = getattr(fn, "_route", None)
            if spec:
                method, pattern = spec
                regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "/?$"
                specificity = tuple(part.startswith("{") for part in pattern.strip("/").split("/"))
                routes.append((specificity, method, re.compile(regex), fn))
        # literal segments win over parameters (".../groups" is not the property named "groups"), whatever the order
        # the methods happen to be defined or named in
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            (m, regex, fn) for _, m, regex, fn in sorted(routes, key=lambda r: r[0])
        ]
        self._server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------------------------------------- control

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FakeServer:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in separate writes; without this, Nagle's algorithm and the client's
                # delayed ACK add ~40 ms to every keep-alive request.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                reply = fake.handle(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                payload = (
                    reply.body
                    if isinstance(reply.body, bytes)
                    else (b"" if reply.body is None else json.dumps(reply.body).encode())
                )
                try:
                    self.send_response(reply.status)
                    headers = {"content-type": "application/json", **{k.lower(): v for k, v in reply.headers.items()}}
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout fault)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((self.host, self.port), _Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name=f"fake-{self.name}"
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def inject(self, fault: Fault) -> Fault:
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    # -------------------------------------------------------------------------------------- fault injection over HTTP

    @route("POST", "/_fake/faults")
    def _add_fault(self, request: Request) -> Reply:
        """Inject a fault from outside the process (the local runtime's fakes run in the test's process, but a
        person driving ``leadpipe up`` or a soak run does not). Body: the fields of ``Fault`` -- ``status``,
        ``body``, ``headers``, ``latency``, ``timeout``, ``malformed``, ``apply``, ``times`` or ``fraction``,
        ``path``, ``body_match`` -- and ``seconds`` (for that long from now) instead of ``until``."""
        try:
            spec = json.loads(request.body or b"{}")
        except ValueError:
            return Reply(400, {"error": "the body is not JSON"})
        if not isinstance(spec, dict):
            return Reply(400, {"error": "the body must be a JSON object of Fault fields"})
        unknown = sorted(set(spec) - FAULT_FIELDS - {"seconds"})
        if unknown:
            return Reply(400, {"error": f"unknown field(s) {unknown}; known: {sorted(FAULT_FIELDS | {'seconds'})}"})
        problems = [
            f"{name} must be {what}"
            for name, (kinds, what) in FAULT_TYPES.items()
            if spec.get(name) is not None and (type(spec[name]) not in kinds)
        ]
        if problems:
            return Reply(400, {"error": "; ".join(problems)})
        seconds = spec.pop("seconds", None)
        if seconds is not None:
            if seconds <= 0:
                return Reply(400, {"error": "seconds must be a period (> 0)"})
            if spec.get("until") is not None:
                return Reply(400, {"error": "give seconds or until, not both"})
            spec["until"] = time.time() + seconds
        try:
            fault = Fault(**spec)
        except ValueError as exc:
            return Reply(400, {"error": str(exc)})
        self.inject(fault)
        return Reply(201, {"fault": _fault_view(fault), "active": len(self.faults)})

    @route("GET", "/_fake/faults")
    def _list_faults(self, request: Request) -> Reply:
        with self.lock:
            return Reply(200, {"faults": [_fault_view(f) for f in self.faults if not f.spent]})

    @route("DELETE", "/_fake/faults")
    def _clear_faults(self, request: Request) -> Reply:
        with self.lock:
            cleared = len(self.faults)
            self.faults.clear()
        return Reply(200, {"cleared": cleared})

    def calls(self, path_regex: str = "", method: str | None = None) -> list[Request]:
        with self.lock:
            return [
                r
                for r in self.requests
                if re.search(path_regex, r.path) and (method is None or r.method == method.upper())
            ]

    # ------------------------------------------------------------------------------------------------- serving

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        parts = urlsplit(target)
        handler: Handler | None = None
        params: dict[str, str] = {}
        for route_method, regex, fn in self._routes:
            match = regex.match(parts.path)
            if match and route_method == method:
                handler, params = fn, {k: unquote(v) for k, v in match.groupdict().items()}
                break
        request = Request(method, parts.path, params, parse_qs(parts.query), headers, body)
        if handler is None:
            request.status = 404
            with self.lock:
                self.requests.append(request)
            return Reply(404, {"error": f"no route {method} {parts.path}"})
        admin = parts.path.startswith(ADMIN_PREFIX)  # the fake's own controls never misbehave
        with self.lock:
            self.requests.append(request)
            fault = None if admin else next((f for f in self.faults if f.applies(request, self.rng)), None)
            self.faults = [f for f in self.faults if not f.spent]
        reply = self._fault_or_answer(handler, request, fault)
        request.status, request.faulted = reply.status, fault is not None
        return reply

    def _fault_or_answer(self, handler: Handler, request: Request, fault: Fault | None) -> Reply:
        if self.latency:
            time.sleep(self.latency)
        done: Reply | None = None
        if fault is not None and fault.apply:
            done = self._run_handler(handler, request)  # carried out; the answer below says otherwise
        if fault is not None:
            if fault.latency:
                time.sleep(fault.latency)
            if fault.timeout:
                time.sleep(fault.timeout)
            if fault.malformed:
                return Reply(200, b'{"truncated": ', {"content-type": "application/json"})
            if fault.status is not None:
                return Reply(fault.status, fault.body, dict(fault.headers))
        return done if done is not None else self._run_handler(handler, request)

    def _run_handler(self, handler: Handler, request: Request) -> Reply:
        try:
            return handler(self, request)
        except Exception as exc:  # a bug in the fake shows as a 500 with the reason, like a broken upstream
            return Reply(500, {"error": f"fake {self.name} failed: {type(exc).__name__}: {exc}"})
