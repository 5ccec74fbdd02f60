"""DealService against moto and the HubSpot fake: a run without a HubSpot token fails with its reason on the run;
a redelivered finished run is not run again; runs are validated before anything is queued."""

from __future__ import annotations

import json
from typing import Any

import pytest

from leadpipe.contacts import ContactRepository
from leadpipe.deals.service import DealService
from leadpipe.deals.store import DealRepository
from leadpipe.enrichment.http import Budget
from leadpipe.enrichment.keys import ProviderKeys
from leadpipe.errors import BadRequest
from leadpipe.hubspot.client import HubSpotClient
from leadpipe.settings import Settings
from leadpipe.workspaces import WorkspaceRepository
from leadpipe_local.fakes.hubspot import FakeHubSpot
from tests.conftest import Stack


def make(stack: Stack, fake: FakeHubSpot, token: str | None) -> DealService:
    ddb = stack.client("dynamodb")
    settings = Settings(
        contacts_table=stack.contacts_table,
        state_table=stack.state_table,
        deal_queue_url=stack.ref("DealQueue"),
        sync_queue_url=stack.ref("SyncQueue"),
    )
    return DealService(
        store=DealRepository(ddb, stack.state_table),
        contacts=ContactRepository(ddb, stack.contacts_table),
        sqs=stack.client("sqs"),
        settings=settings,
        keys=ProviderKeys(None, env={"HUBSPOT_TOKEN": token} if token else {}),
        workspaces=WorkspaceRepository(ddb, stack.state_table),
        hubspot=lambda tok, burst, budget: HubSpotClient(tok, base_url=fake.url, burst_limit=burst, budget=budget),
    )


def queued(stack: Stack) -> list[dict[str, Any]]:
    got = stack.client("sqs").receive_message(QueueUrl=stack.ref("DealQueue"), MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in got.get("Messages", [])]


def test_a_run_is_validated_then_queued(stack: Stack, hubspot: FakeHubSpot) -> None:
    service = make(stack, hubspot, hubspot.token)
    for bad in ({"lookback_months": 0}, {"lookback_months": 25}, {"limit": 0}, {"limit": 101}):
        with pytest.raises(BadRequest):
            service.start("default", **bad)  # type: ignore[arg-type]
    assert queued(stack) == []
    run = service.start("default", lookback_months=3, limit=10)
    assert queued(stack) == [{"type": "deals.run", "workspace": "default", "run_id": run.run_id}]
    stored = service.store.run("default", run.run_id)
    assert stored is not None and (stored.status, stored.lookback_months, stored.limit) == ("queued", 3, 10)


def test_a_run_without_a_hubspot_token_fails_with_its_reason(stack: Stack, hubspot: FakeHubSpot) -> None:
    service = make(stack, hubspot, token=None)
    with pytest.raises(BadRequest, match="no HubSpot access token") as refused:
        service.start("default")  # asked for through the API: refused at once, nothing queued
    assert refused.value.code == "no_hubspot_token"
    run = service.start("default", trigger="schedule")  # the monthly schedule runs for every workspace it lists
    body = json.dumps({"type": "deals.run", "workspace": "default", "run_id": run.run_id})
    failed = service.handle_message(body, budget=Budget())  # failed with its reason, not retried into the DLQ
    assert failed.status == "failed" and "no HubSpot access token" in (failed.error or "")
    stored = service.store.run("default", run.run_id)
    assert stored is not None and stored.status == "failed"


def test_an_empty_portal_completes_and_a_redelivery_does_not_run_again(stack: Stack, hubspot: FakeHubSpot) -> None:
    service = make(stack, hubspot, hubspot.token)
    run = service.start("default")
    body = json.dumps({"type": "deals.run", "workspace": "default", "run_id": run.run_id})
    done = service.handle_message(body, budget=Budget())
    assert done.status == "completed" and done.counts.deals == 0
    calls = len(hubspot.requests)
    again = service.handle_message(body, budget=Budget())
    assert again.run_id == run.run_id and again.status == "completed" and len(hubspot.requests) == calls
    status = service.status("default")
    assert status["stats"]["total_closed_deals"] == 0 and status["last_run"]["run_id"] == run.run_id
    with pytest.raises(BadRequest, match="unrecognised DealQueue message"):
        service.handle_message("not json", budget=Budget())


def test_an_erased_person_is_not_recreated_from_a_deal(stack: Stack, hubspot: FakeHubSpot) -> None:
    from leadpipe.models import utcnow
    from leadpipe.suppression import SuppressionList

    service = make(stack, hubspot, hubspot.token)
    service.suppression = SuppressionList(stack.client("dynamodb"), stack.state_table, "test-salt")
    service.suppression.add("default", "gone@deal.example", "erased")
    people = {"101": {"email": "Gone@Deal.example"}, "102": {"email": "kept@deal.example"}}
    emails = service._import_contacts("default", people, [], utcnow())
    assert emails == {"102": "kept@deal.example"}
    assert service.contacts.get("default", "gone@deal.example") is None
    assert service.contacts.get("default", "kept@deal.example") is not None
