"""Fixtures of the provider adapter tests: a controllable clock, recorded sleeps, deterministic HTTP retries."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from leadpipe.enrichment.http import reset_rate_limits
from leadpipe_local.fakes.hubspot import FakeHubSpot

DAY_START = 86_400.0 * 20_000  # a clock reading on a second, minute, hour and day boundary


class Clock:
    """A clock the fakes read (rate-limit windows) and ``Sleeps`` moves on."""

    def __init__(self) -> None:
        self.now = DAY_START

    def __call__(self) -> float:
        return self.now


class Sleeps(list[float]):
    """Records the delays an adapter asks for instead of sleeping (and moves ``clock`` on by them, if given)."""

    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__()
        self.clock = clock

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        if self.clock is not None:
            self.clock.now += seconds


@pytest.fixture
def deterministic_http(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A full token bucket for every test, and back-off without jitter (0.5, 1.0, 2.0 s)."""
    reset_rate_limits()
    monkeypatch.setattr(random, "random", lambda: 1.0)
    yield
    reset_rate_limits()


@pytest.fixture(scope="module")
def hubspot_server() -> Iterator[FakeHubSpot]:
    fake = FakeHubSpot()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def hubspot(hubspot_server: FakeHubSpot) -> Iterator[FakeHubSpot]:
    """The HubSpot fake, reset: no records, no faults, and a portal leadpipe has not seen yet."""
    from leadpipe.hubspot import sync as sync_module

    hubspot_server.reset()
    reset_rate_limits()
    sync_module._PROPERTIES.clear()
    sync_module._COMPANY_KEY.clear()
    yield hubspot_server
    hubspot_server.clear_faults()
