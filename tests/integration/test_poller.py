"""The poller against moto and the HubSpot fake (its search cap lowered): changes queued, the cursor stored only
after them, a crash in between losing nothing."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from leadpipe.changes import poller as poller_module
from leadpipe.changes.poller import PollService
from leadpipe.enrichment.http import Budget
from leadpipe.enrichment.keys import ProviderKeys
from leadpipe.hubspot.client import HubSpotClient
from leadpipe.settings import Settings
from leadpipe.workspaces import HubSpotSettings, WorkspaceRepository, WorkspaceSettings
from leadpipe_local.fakes.hubspot import FakeHubSpot
from tests.conftest import Stack

BUDGET = Budget()


def make_poller(stack: Stack, fake: FakeHubSpot, cap: int = 10_000) -> PollService:
    ddb = stack.client("dynamodb")
    settings = Settings(
        state_table=stack.state_table, change_queue_url=stack.ref("ChangeQueue"), poll_lookback_minutes=1
    )
    workspaces = WorkspaceRepository(ddb, stack.state_table)
    workspaces.put(WorkspaceSettings(workspace="acme", hubspot=HubSpotSettings(portal_id=fake.portal_id, polling=True)))
    return PollService(
        dynamodb=ddb,
        state_table=stack.state_table,
        sqs=stack.client("sqs"),
        settings=settings,
        # acme's own token (the deployment's HUBSPOT_TOKEN is the default workspace's only)
        keys=ProviderKeys(
            "/leadpipe/test/workspaces",
            env={"HUBSPOT_TOKEN": "pat-of-the-default-workspace"},
            fetch=lambda path: {"token": fake.token} if path == "/leadpipe/test/workspaces/acme/hubspot" else {},
        ),
        workspaces=workspaces,
        hubspot=lambda tok, burst, budget: HubSpotClient(tok, base_url=fake.url, burst_limit=burst, budget=budget),
        cap=cap,
    )


def create(fake: FakeHubSpot, n: int, prefix: str) -> list[str]:
    headers = {"Authorization": f"Bearer {fake.token}"}
    ids: list[str] = []
    for start in range(0, n, 100):
        inputs = [{"properties": {"email": f"{prefix}{i}@acme.example"}} for i in range(start, min(n, start + 100))]
        answer = httpx.post(
            f"{fake.url}/crm/v3/objects/contacts/batch/create", json={"inputs": inputs}, headers=headers, timeout=30
        )
        answer.raise_for_status()
        ids.extend(str(r["id"]) for r in answer.json()["results"])
    return ids


def drain(stack: Stack) -> list[dict[str, Any]]:
    sqs, url = stack.client("sqs"), stack.ref("ChangeQueue")
    out = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return out
        for m in got:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def polled_ids(messages: list[dict[str, Any]]) -> list[str]:
    return [c["object_id"] for m in messages for c in m["changes"]]


def test_the_first_poll_sets_the_cursor_then_every_change_is_queued_past_the_cap(
    stack: Stack, hubspot: FakeHubSpot
) -> None:
    hubspot.search_cap = 50  # HubSpot's is 10,000
    poller = make_poller(stack, hubspot, cap=50)
    create(hubspot, 5, "before")  # existing contacts: a HubSpot import's job, not the change feed's
    time.sleep(0.01)
    [first] = poller.run(BUDGET)
    assert first.first and first.workspace == "acme" and drain(stack) == []
    cursor = poller.cursor("acme")
    assert cursor is not None

    time.sleep(0.01)
    ids = create(hubspot, 130, "new")
    [result] = poller.run(BUDGET)
    messages = drain(stack)
    assert all(m["origin"] == "poll" and m["workspace"] == "acme" for m in messages)
    found = polled_ids(messages)
    # the lookback finds the earlier five again too: harmless, the re-import is idempotent
    assert set(ids) <= set(found) and len(found) == len(set(found))
    assert result.complete and result.changes == len(found) and result.stats["restarts"] >= 2
    stored = poller.cursor("acme")
    assert stored is not None and stored >= max(c["occurred_at"] for m in messages for c in m["changes"])


def test_the_cursor_is_stored_only_after_the_changes_are_queued(
    stack: Stack, hubspot: FakeHubSpot, monkeypatch: pytest.MonkeyPatch
) -> None:
    poller = make_poller(stack, hubspot)
    poller.run(BUDGET)  # sets the cursor
    cursor = poller.cursor("acme")
    time.sleep(0.01)
    ids = create(hubspot, 20, "lost")

    def queue_down(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("SQS unavailable")

    monkeypatch.setattr(poller_module, "send_batch", queue_down)
    with pytest.raises(RuntimeError):
        poller.run(BUDGET)
    assert poller.cursor("acme") == cursor  # not moved: nothing was queued
    monkeypatch.undo()
    poller.run(BUDGET)
    assert set(ids) <= set(polled_ids(drain(stack)))  # found again, nothing lost


def test_a_workspace_without_polling_is_not_polled(stack: Stack, hubspot: FakeHubSpot) -> None:
    poller = make_poller(stack, hubspot)
    poller.workspaces.put(WorkspaceSettings(workspace="acme", hubspot=HubSpotSettings(polling=False)))
    assert poller.run(BUDGET) == []
