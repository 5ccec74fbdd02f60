"""End-to-end fixtures: the local runtime (moto server + worker processes) over real HTTP on 127.0.0.1."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from leadpipe_local.client import ApiClient
from leadpipe_local.fakes.apollo import FakeApollo
from leadpipe_local.runtime import LocalRuntime
from tests.conftest import TEMPLATE

# The import function checkpoints every IMPORT_CHUNK_ROWS rows (500 by default): a file of a few hundred rows spans
# several checkpoints (test_reliability_loop.py interrupts one between them); the other tests' files fit in one chunk.
IMPORT_CHUNK_ROWS = 60


@pytest.fixture(scope="session")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    rt = LocalRuntime(
        TEMPLATE,
        api_port=0,
        state_dir=tmp_path_factory.mktemp("leadpipe"),
        retry_delay=0,
        env_overrides={
            "ImportFunction": {"IMPORT_CHUNK_ROWS": str(IMPORT_CHUNK_ROWS)},
            # messages come back at once here (retry_delay=0; on AWS after the visibility timeout), and a duplicate
            # is delivered after the first copy finished, never beside it: a sync that died after making notes has
            # them read back at once, rather than waiting for its retry to settle
            "SyncFunction": {"HUBSPOT_NOTE_SETTLE_SECONDS": "0", "SYNC_INFLIGHT_SECONDS": "0"},
        },
    )
    rt.start()
    yield rt
    rt.stop()


@pytest.fixture
def api(runtime: LocalRuntime) -> Iterator[ApiClient]:
    with runtime.api_client() as client:
        yield client


@pytest.fixture
def cli_key(runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch) -> str:
    """The ``leadpipe`` commands run in-process authenticate with the session stack's default key."""
    key = runtime.api_key()
    monkeypatch.setenv("LEADPIPE_API_KEY", key)
    return key


@pytest.fixture
def domain() -> str:
    """A company domain no other test uses (the session's runtime is shared)."""
    return f"{uuid.uuid4().hex[:10]}.example.com"


def wait_until(fetch: Any, predicate: Any, timeout: float = 60, what: str = "condition") -> Any:
    """Poll ``fetch`` until ``predicate`` holds of its value; fail with the last value after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if predicate(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last value: {value!r:.800}")
        time.sleep(0.2)


def csv_for(domain: str, n: int, header: str = "Email,First Name,Company,Job Title,Tags\n") -> bytes:
    rows = "".join(f"p{i}@{domain},Person {i},Co {domain},Title {i},t{i % 2}\n" for i in range(n))
    return (header + rows).encode()


@pytest.fixture
def apollo() -> Iterator[FakeApollo]:
    """An Apollo fake of its own (for a runtime of the test's own, pointed at it by APOLLO_BASE_URL)."""
    fake = FakeApollo("apollo-test-key")
    fake.start()
    yield fake
    fake.stop()


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path
