"""AWS clients, created lazily once per container and injectable in tests.

Handlers build one ``AwsClients`` at module level (cheap: no client is created until first used), so a cold start
pays only for the clients an invocation actually needs. ``AWS_ENDPOINT_URL`` (honoured by boto3 itself) points
every client at the local runtime's moto server.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=3,
    read_timeout=20,
    tcp_keepalive=True,
)


class AwsClients:
    """A lazy, thread-safe cache of boto3 clients. Pass ``overrides`` to inject stubs or fakes."""

    def __init__(self, session: Any | None = None, overrides: dict[str, Any] | None = None) -> None:
        self._session = session
        self._clients: dict[str, Any] = dict(overrides or {})
        self._lock = threading.Lock()

    def get(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is None:
            with self._lock:
                client = self._clients.get(service)
                if client is None:
                    session = self._session or boto3.session.Session()
                    client = session.client(service, config=_CONFIG)  # type: ignore[call-overload]
                    self._clients[service] = client
        return client

    @property
    def dynamodb(self) -> Any:
        return self.get("dynamodb")

    @property
    def sqs(self) -> Any:
        return self.get("sqs")

    @property
    def s3(self) -> Any:
        return self.get("s3")

    @property
    def events(self) -> Any:
        return self.get("events")
