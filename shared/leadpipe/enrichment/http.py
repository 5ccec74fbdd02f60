"""HTTP for provider adapters: one httpx client per provider, timeouts, retries with back-off honouring the
provider's retry hints, a per-container rate limiter, and the invocation's time budget.

Adapters call ``ProviderHttp.request`` and interpret the response (2xx, or a 4xx that means "not found" for that
API). Anything that means the provider cannot answer right now raises ``ProviderError``.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from leadpipe.enrichment.providers.base import ProviderError, RateLimit


class Budget:
    """The time an invocation has left. Waiting (back-off, rate limit, polling) never goes past it."""

    def __init__(self, remaining_seconds: Callable[[], float] | None = None, *, margin: float = 5.0) -> None:
        self._remaining = remaining_seconds or (lambda: 1e9)
        self.margin = margin

    def left(self) -> float:
        return self._remaining() - self.margin

    def can_wait(self, seconds: float) -> bool:
        return seconds < self.left()

    @classmethod
    def from_lambda(cls, remaining_ms: Callable[[], int], margin: float = 5.0) -> Budget:
        return cls(lambda: remaining_ms() / 1000.0, margin=margin)


class TokenBucket:
    """Keeps one container under a provider's rate limit: ``calls`` per ``per_seconds``, bursts up to ``calls``."""

    def __init__(self, limit: RateLimit, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(limit.calls)
        self.rate = limit.per_second
        self.tokens = self.capacity
        self.clock = clock
        self.updated = clock()
        self.lock = threading.Lock()
        self.waited = 0.0  # seconds spent waiting for tokens (reported in metrics and benchmarks)

    def reserve(self) -> float:
        """Take a token; returns how long the caller must wait before using it."""
        with self.lock:
            now = self.clock()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            self.tokens -= 1.0
            wait = 0.0 if self.tokens >= 0 else -self.tokens / self.rate
            self.waited += wait
            return wait


class SlidingWindow:
    """At most ``calls`` requests start in any ``per_seconds`` window: a rolling-window limit (HubSpot's ten-second
    one) kept exactly, which a token bucket is not (a full bucket plus its refill lets up to twice the limit through
    in the first window). Remembers when the last ``calls`` requests were allowed to start; ``margin`` seconds are
    added to the window for the network's jitter between our clock and the server's."""

    def __init__(self, limit: RateLimit, *, margin: float = 0.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = limit.calls
        self.window = limit.per_seconds + margin
        self.rate = limit.per_second
        self.clock = clock
        self.starts: deque[float] = deque(maxlen=limit.calls)
        self.lock = threading.Lock()
        self.waited = 0.0

    def reserve(self) -> float:
        """Take the next start slot; returns how long the caller must wait before using it."""
        with self.lock:
            now = self.clock()
            start = now
            if len(self.starts) == self.capacity:
                start = max(now, self.starts[0] + self.window)  # the call ``calls`` back must leave the window
            self.starts.append(start)  # maxlen drops the oldest
            wait = start - now
            self.waited += wait
            return wait


Limiter = TokenBucket | SlidingWindow

_BUCKETS: dict[str, Limiter] = {}
_BUCKETS_LOCK = threading.Lock()
_SHARE: dict[str, float] = {"containers": 1, "fraction": 1.0}


def reset_rate_limits() -> None:
    """Forget every token bucket and the container share (tests, and a fresh start)."""
    with _BUCKETS_LOCK:
        _BUCKETS.clear()
    _SHARE.update(containers=1, fraction=1.0)


def set_container_share(containers: int, fraction: float = 1.0) -> None:
    """How many containers of this function may call an API at once (its event source's MaximumConcurrency), and
    the fraction of the API's limits this function has (HubSpot's is shared by the sync function, 90 %, and the
    change consumer and poller, 10 %): each container keeps ``fraction / containers`` of every limit, so together
    they stay under it."""
    _SHARE.update(containers=max(1, containers), fraction=min(1.0, max(0.01, fraction)))


def bucket_for(name: str, limit: RateLimit, *, rolling: bool = False) -> Limiter:
    """One limiter per provider per container, shared by every client of it, sized to this container's share: a
    token bucket, or with ``rolling`` a ``SlidingWindow`` (for limits counted over a rolling window, where going over
    costs a 429 storm)."""
    allowed = limit.calls * _SHARE["fraction"] / _SHARE["containers"]  # this container's calls per window
    calls = max(1, int(allowed))
    own = RateLimit(calls, limit.per_seconds * calls / allowed)  # fewer than one a window: a longer window
    kind = SlidingWindow if rolling else TokenBucket
    with _BUCKETS_LOCK:
        bucket = _BUCKETS.get(name)
        if not isinstance(bucket, kind) or bucket.capacity != own.calls or abs(bucket.rate - own.per_second) > 1e-9:
            bucket = _BUCKETS[name] = (
                SlidingWindow(own, margin=min(0.5, own.per_seconds / 10)) if rolling else TokenBucket(own)
            )
        return bucket


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Retry-After as seconds or an HTTP date; None when absent or unreadable."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


# Failures after which a request that is not repeatable certainly was not carried out: it never reached the server
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Answers that refuse a request before doing any of it: 429 (rate limits), 423 Locked, 477 Migration in progress
REFUSED_UNDONE = frozenset({429, 423, 477})


class ProviderHttp:
    """An httpx client for one provider with retries, back-off, rate limiting and a time budget."""

    RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

    def __init__(
        self,
        provider: str,
        base_url: str,
        *,
        rate_limit: RateLimit,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        max_retries: int = 3,
        backoff_base: float = 0.5,
        backoff_cap: float = 20.0,
        budget: Budget | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        retry_hint: Callable[[httpx.Response], float | None] | None = None,
        bucket: Limiter | None = None,
        classify: Callable[[httpx.Response], ProviderError | None] | None = None,
    ) -> None:
        self.provider = provider
        self.client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=dict(headers or {}),
            timeout=httpx.Timeout(timeout, connect=min(5.0, timeout)),
            transport=transport,
        )
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.budget = budget or Budget()
        self.sleep = sleep
        self.retry_hint = retry_hint or retry_after_seconds
        self.bucket = bucket or bucket_for(provider, rate_limit)
        # Decides about a non-2xx answer before the generic rules: an error to raise (retryable or not), or None.
        self.classify = classify
        self.calls = 0  # HTTP requests sent, retries included
        self.throttled = 0  # 429 answers seen

    def close(self) -> None:
        self.client.close()

    def _wait(self, seconds: float, why: str) -> None:
        if seconds <= 0:
            return
        if not self.budget.can_wait(seconds):
            raise ProviderError(
                self.provider, "budget", f"would need to wait {seconds:.1f}s ({why}) past the invocation's time"
            )
        self.sleep(seconds)

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff_cap, self.backoff_base * (2.0**attempt)) * (0.5 + random.random() / 2)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        ok_statuses: frozenset[int] = frozenset(),
        repeatable: bool = True,
    ) -> httpx.Response:
        """Send a request; retry timeouts, 429 and 5xx. Returns 2xx responses and any status in ``ok_statuses``.

        ``repeatable=False`` for requests that are not idempotent (a create, submitting a paid batch): one is sent
        again only when it certainly was not carried out -- it never left (a connect error or timeout, no free
        connection) or the API refused it before doing anything (429, 423 Locked, 477 Migration in progress). After a
        read timeout, a dropped connection or a 5xx (a 502/504 is often a gateway giving up on work that goes on) it
        may have been carried out, so the error is raised for the caller to find out what exists."""
        last: ProviderError | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                delay = last.retry_after if last and last.retry_after is not None else self._backoff(attempt - 1)
                self._wait(delay, f"retry {attempt} after {last.reason if last else 'an error'}")
            self._wait(self.bucket.reserve(), "rate limit")
            self.calls += 1
            try:
                response = self.client.request(method, path, json=json, params=params)
            except httpx.TimeoutException as exc:
                last = ProviderError(self.provider, "timeout", f"no answer within the timeout ({exc})")
                if not repeatable and not isinstance(exc, NOT_SENT):
                    raise last from exc
                continue
            except httpx.TransportError as exc:
                last = ProviderError(self.provider, "network", str(exc))
                if not repeatable and not isinstance(exc, NOT_SENT):
                    raise last from exc
                continue
            status = response.status_code
            if 200 <= status < 300 or status in ok_statuses:
                return response
            decided = self.classify(response) if self.classify else None
            if decided is not None:
                if status == 429:
                    self.throttled += 1
                if not decided.retryable or (not repeatable and status not in REFUSED_UNDONE):
                    raise decided
                last = decided
                continue
            if status == 429:
                self.throttled += 1
                last = ProviderError(
                    self.provider, "rate_limited", _excerpt(response), status=429, retry_after=self.retry_hint(response)
                )
                continue
            if status in self.RETRY_STATUSES:
                last = ProviderError(
                    self.provider,
                    "server_error",
                    _excerpt(response),
                    status=status,
                    retry_after=self.retry_hint(response),
                )
                if not repeatable:
                    raise last
                continue
            if status in (401, 403):
                raise ProviderError(self.provider, "auth", _excerpt(response), status=status, retryable=False)
            if status == 402:
                raise ProviderError(self.provider, "quota", _excerpt(response), status=status, retryable=False)
            raise ProviderError(self.provider, "bad_request", _excerpt(response), status=status, retryable=False)
        assert last is not None
        raise last

    def json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise ProviderError(self.provider, "bad_response", f"not JSON: {response.text[:200]!r}") from exc


def _excerpt(response: httpx.Response) -> str:
    return f"HTTP {response.status_code}: {response.text[:300]}"
