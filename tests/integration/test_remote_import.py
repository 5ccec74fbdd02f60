"""Imports from an API (a HubSpot portal) as jobs: paged, resumable, counted once, against moto and the fake."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from leadpipe.contacts import ContactRepository
from leadpipe.enrichment.keys import ProviderKeys
from leadpipe.events import EventPublisher
from leadpipe.importer import ImportService
from leadpipe.jobs import JobRepository
from leadpipe.models import ImportSource, JobStatus, PipelineStatus
from leadpipe.remote_import import make_reader
from leadpipe.settings import Settings
from leadpipe.workspaces import HubSpotSettings, WorkspaceRepository
from leadpipe_local.fakes.hubspot import FakeHubSpot
from tests.conftest import Stack
from tests.integration.test_importer import queued


def make_service(
    stack: Stack, fake: FakeHubSpot, token: str | None, *, env: dict[str, str] | None = None, **overrides: Any
) -> ImportService:
    """The import service with API readers: HubSpot at the fake (with ``token``), other keys from ``env``."""
    settings = Settings(
        contacts_table=stack.contacts_table,
        state_table=stack.state_table,
        uploads_bucket=stack.bucket,
        import_queue_url=stack.import_queue_url,
        event_bus_name=stack.bus,
        hubspot_base_url=fake.url,
        **overrides,
    )
    ddb = stack.client("dynamodb")
    queued(stack)
    keys = ProviderKeys(None, env={**({"HUBSPOT_TOKEN": token} if token else {}), **(env or {})})
    workspaces = WorkspaceRepository(ddb, stack.state_table, default_hubspot=HubSpotSettings(portal_id=fake.portal_id))
    return ImportService(
        s3=stack.client("s3"),
        sqs=stack.client("sqs"),
        contacts=ContactRepository(ddb, stack.contacts_table),
        jobs=JobRepository(ddb, stack.state_table),
        publisher=EventPublisher(stack.client("events"), stack.bus),
        settings=settings,
        readers=lambda job, budget: make_reader(job, budget, settings=settings, keys=keys, workspaces=workspaces),
    )


def seed(fake: FakeHubSpot, n: int) -> list[str]:
    """n contacts created in HubSpot by people, plus one whose email HubSpot holds but is not valid for leadpipe."""
    headers = {"Authorization": f"Bearer {fake.token}"}
    ids = []
    for start in range(0, n, 100):
        inputs = [
            {
                "properties": {
                    "email": f"Person{i}@Company{i % 7}.example",
                    "firstname": f"First{i}",
                    "lastname": f"Last{i}",
                    "jobtitle": "Head of Ops" if i % 2 else "",
                    "company": f"Company {i % 7}",
                    "website": f"https://company{i % 7}.example",
                }
            }
            for i in range(start, min(n, start + 100))
        ]
        answer = httpx.post(
            f"{fake.url}/crm/v3/objects/contacts/batch/create", json={"inputs": inputs}, headers=headers, timeout=30
        )
        answer.raise_for_status()
        ids.extend(str(r["id"]) for r in answer.json()["results"])
    return ids


def test_a_hubspot_import_pages_through_the_portal_resumes_and_counts_once(stack: Stack, hubspot: FakeHubSpot) -> None:
    ids = seed(hubspot, 250)
    svc = make_service(stack, hubspot, hubspot.token)
    job = svc.start_remote("default", ImportSource.HUBSPOT)
    [message] = [m for m in queued(stack) if m.get("type") == "import.run"]
    assert message == {"type": "import.run", "workspace": "default", "job_id": job.job_id}

    # Little time left after the first page: the job continues in a follow-up message.
    def pages_read() -> int:
        return len([r for r in hubspot.requests if r.method == "GET" and r.path == "/crm/v3/objects/contacts"])

    first = svc.run("default", job.job_id, remaining_ms=lambda: 10**9 if pages_read() < 1 else 0)
    assert first.outcome == "continued"
    assert first.job is not None and first.job.counts.imported == 100
    assert first.job.checkpoint is not None and first.job.checkpoint.cursor and first.job.checkpoint.row == 101
    [follow_up] = [m for m in queued(stack) if m.get("type") == "import.run"]
    assert follow_up["job_id"] == job.job_id

    # The follow-up message finishes the job from the stored cursor.
    replayed = svc.run("default", job.job_id, remaining_ms=lambda: 10**9)
    assert replayed.outcome == "completed"
    done = replayed.job
    assert done is not None and done.status is JobStatus.COMPLETED
    assert (done.counts.rows_read, done.counts.valid, done.counts.imported, done.counts.merged) == (250, 250, 250, 0)

    contacts = ContactRepository(stack.client("dynamodb"), stack.contacts_table)
    ann = contacts.get("default", "person7@company0.example")
    assert ann is not None and (ann.first_name, ann.title, ann.domain) == ("First7", "Head of Ops", "company0.example")
    assert ann.hubspot is not None and ann.hubspot.contact_id == ids[7]
    assert ann.status is PipelineStatus.IMPORTED
    assert ann.sources[0].source == "hubspot" and ann.sources[0].ref == f"hubspot portal {hubspot.portal_id}"
    assert ann.sources[0].row == 8

    # Run again: nothing new, nothing counted twice.
    again = svc.start_remote("default", ImportSource.HUBSPOT)
    result = svc.run("default", again.job_id, remaining_ms=lambda: 10**9)
    assert result.job is not None and (result.job.counts.imported, result.job.counts.merged) == (0, 250)


def test_a_hubspot_import_without_a_token_fails_the_job_clearly(stack: Stack, hubspot: FakeHubSpot) -> None:
    svc = make_service(stack, hubspot, token=None)
    job = svc.start_remote("default", ImportSource.HUBSPOT)
    result = svc.run("default", job.job_id, remaining_ms=lambda: 10**9)
    assert result.outcome == "failed" and result.job is not None and result.job.error is not None
    assert result.job.error.code == "no_key" and "HUBSPOT_TOKEN" in result.job.error.message


def test_a_rejected_token_fails_the_job_and_a_hubspot_outage_retries_it(stack: Stack, hubspot: FakeHubSpot) -> None:
    seed(hubspot, 5)
    svc = make_service(stack, hubspot, token="not-the-token")
    job = svc.start_remote("default", ImportSource.HUBSPOT)
    result = svc.run("default", job.job_id, remaining_ms=lambda: 10**9)
    assert result.outcome == "failed" and result.job is not None and result.job.error is not None
    assert "hubspot refused the import" in result.job.error.message


def test_a_lemlist_import_needs_a_campaign(stack: Stack, hubspot: FakeHubSpot) -> None:
    from leadpipe.errors import BadRequest

    svc = make_service(stack, hubspot, hubspot.token)
    with pytest.raises(BadRequest, match="campaign_id"):
        svc.start_remote("default", ImportSource.LEMLIST)


def test_a_crash_between_a_page_and_its_checkpoint_replays_the_page_without_counting_it_twice(
    stack: Stack, hubspot: FakeHubSpot, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(hubspot, 150)
    svc = make_service(stack, hubspot, hubspot.token)
    job = svc.start_remote("default", ImportSource.HUBSPOT)
    real_update = svc.jobs.update
    crashes = {"left": 1}

    def crashing_update(*args: Any, **kwargs: Any) -> Any:
        checkpoint = kwargs.get("checkpoint")
        if checkpoint is not None and checkpoint.row == 101 and crashes["left"]:
            crashes["left"] -= 1
            raise RuntimeError("the container died after writing the contacts")
        return real_update(*args, **kwargs)

    monkeypatch.setattr(svc.jobs, "update", crashing_update)
    with pytest.raises(RuntimeError):
        svc.run("default", job.job_id, remaining_ms=lambda: 10**9)
    result = svc.run("default", job.job_id, remaining_ms=lambda: 10**9, receive_count=2)  # the redelivery
    assert result.job is not None and result.job.status is JobStatus.COMPLETED
    counts = result.job.counts
    assert (counts.rows_read, counts.imported, counts.merged) == (150, 150, 0)
    contacts = ContactRepository(stack.client("dynamodb"), stack.contacts_table)
    first = contacts.get("default", "person0@company0.example")
    assert first is not None and [(s.job_id, s.row) for s in first.sources] == [(job.job_id, 1)]


def test_a_lemlist_import_brings_a_campaigns_leads_tagged_with_the_campaign(stack: Stack, hubspot: FakeHubSpot) -> None:
    from leadpipe_local.fakes.lemlist import FakeLemlist

    lemlist = FakeLemlist().start()
    try:
        campaign = lemlist.add_campaign("Q4 Outbound, EMEA")
        leads = [
            {
                "email": f"Lead{i}@Target{i % 3}.example",
                "firstName": f"L{i}",
                "companyName": f"Target {i % 3}",
                "companyDomain": f"target{i % 3}.example",
                "jobTitle": "CFO",
                "icebreaker": f"Saw your talk #{i}",
            }
            for i in range(620)
        ]
        leads.insert(10, {"firstName": "No", "lastName": "Email"})  # reported as a row error, never dropped
        lemlist.add_leads(campaign, leads)
        svc = make_service(
            stack, hubspot, None, env={"LEMLIST_API_KEY": lemlist.api_key}, lemlist_base_url=lemlist.api_url
        )
        ddb = stack.client("dynamodb")
        job = svc.start_remote("default", ImportSource.LEMLIST, campaign)
        result = svc.run("default", job.job_id, remaining_ms=lambda: 10**9)
        done = result.job
        assert done is not None and done.status is JobStatus.COMPLETED_WITH_ERRORS
        assert (done.counts.rows_read, done.counts.valid, done.counts.invalid) == (621, 620, 1)
        [error] = done.errors
        assert (error.row, error.field) == (11, "email")
        lead = ContactRepository(ddb, stack.contacts_table).get("default", "lead7@target1.example")
        assert lead is not None and (lead.first_name, lead.company, lead.title) == ("L7", "Target 1", "CFO")
        assert list(lead.tags) == ["lemlist:q4 outbound emea"] and lead.custom == {"icebreaker": "Saw your talk #7"}
        assert lead.sources[0].source == "lemlist" and lead.sources[0].ref == "lemlist campaign Q4 Outbound, EMEA"
    finally:
        lemlist.stop()


def test_an_empty_portal_completes_with_a_warning(stack: Stack, hubspot: FakeHubSpot) -> None:
    svc = make_service(stack, hubspot, hubspot.token)
    job = svc.start_remote("default", ImportSource.HUBSPOT)
    result = svc.run("default", job.job_id, remaining_ms=lambda: 10**9)
    assert result.job is not None and result.job.status is JobStatus.COMPLETED
    assert result.job.warnings == ["the hubspot source had no records to import"]
