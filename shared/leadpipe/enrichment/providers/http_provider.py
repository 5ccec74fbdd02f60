"""The common part of the providers reached over HTTP with an API key."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import ClassVar

import httpx

from leadpipe.enrichment.http import Budget, ProviderHttp, retry_after_seconds
from leadpipe.enrichment.providers.base import Provider


class HttpProvider(Provider):
    """One ``ProviderHttp`` per instance, with the provider's authentication, limits, retry hint and budget."""

    default_base_url: ClassVar[str]

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        budget: Budget | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 10.0,
    ) -> None:
        if not api_key:
            raise ValueError(f"{self.info.name} needs an API key")
        self.budget = budget or Budget()
        self.sleep = sleep
        self.http = ProviderHttp(
            self.info.name,
            base_url or self.default_base_url,
            rate_limit=self.info.rate_limit,
            headers=self.auth_headers(api_key),
            timeout=timeout,
            budget=self.budget,
            transport=transport,
            sleep=sleep,
            retry_hint=self.retry_hint,
        )

    def auth_headers(self, api_key: str) -> dict[str, str]:
        raise NotImplementedError

    def retry_hint(self, response: httpx.Response) -> float | None:
        """How long to wait before retrying a 429 or 5xx answer (Retry-After unless the provider says otherwise)."""
        return retry_after_seconds(response)

    def close(self) -> None:
        self.http.close()
