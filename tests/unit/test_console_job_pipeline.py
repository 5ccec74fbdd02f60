"""GET /imports/{job_id}?pipeline=true: where a job's contacts are now, read from the by-status listings newest
change first, down to the job's creation only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest

from leadpipe.contacts import ContactPage
from leadpipe.models import Contact, ImportSource, Job, PipelineStatus, SourceRef
from tests.conftest import ROOT

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
JOB = "imp_01jobjobjobjobjobjobjobjob"


def contact(email: str, status: PipelineStatus, minutes: float, *jobs: str) -> Contact:
    at = T0 + timedelta(minutes=minutes)
    return Contact(
        workspace="acme",
        email=email,
        email_domain=email.split("@")[1],
        status=status,
        updated_at=at,
        created_at=at,
        sources=[SourceRef(source="upload", job_id=j, row=2, at=at) for j in jobs],
    )


class Listing:
    """ContactRepository.find over fixed contacts: each status newest change first, paged by a numeric cursor."""

    def __init__(self, contacts: list[Contact]) -> None:
        self.contacts = contacts
        self.read = 0

    def find(self, workspace: str, *, status: PipelineStatus, limit: int, cursor: str | None) -> ContactPage:
        assert workspace == "acme"
        matching = sorted((c for c in self.contacts if c.status is status), key=lambda c: c.updated_at, reverse=True)
        start = int(cursor or 0)
        page = matching[start : start + limit]
        self.read += len(page)
        more = start + limit < len(matching)
        return ContactPage(items=page, next_cursor=str(start + limit) if more else None)


@pytest.fixture
def imports(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT / "functions" / "api"))
    import api_routes.imports as module

    return module


def pipeline(imports: ModuleType, monkeypatch: pytest.MonkeyPatch, contacts: list[Contact]) -> tuple[Any, Listing]:
    listing = Listing(contacts)
    monkeypatch.setattr(imports.deps, "contacts", lambda: listing)
    job = Job(workspace="acme", job_id=JOB, source=ImportSource.UPLOAD, created_at=T0)
    return imports.job_pipeline(job), listing


def test_counts_the_jobs_contacts_by_status_now(imports: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    contacts = [
        contact("a@x.io", PipelineStatus.SYNCED, 3, JOB),
        contact("b@x.io", PipelineStatus.SYNCED, 2, "imp_other", JOB),  # merged: an earlier import's too
        contact("c@x.io", PipelineStatus.ENRICHED, 2, JOB),
        contact("d@x.io", PipelineStatus.ENRICHING, 1, JOB),
        contact("e@x.io", PipelineStatus.FAILED, 4, JOB),
        contact("f@x.io", PipelineStatus.SYNCED, 5, "imp_other"),  # another job's, changed since: not counted
        contact("g@x.io", PipelineStatus.SYNCED, -5, JOB),  # impossible (before the job), and never read
    ]
    result, _ = pipeline(imports, monkeypatch, contacts)
    assert result.contacts == 5
    assert result.by_status == {
        "imported": 0,
        "enriching": 1,
        "enriched": 1,
        "syncing": 0,
        "synced": 2,
        "failed": 1,
        "skipped": 0,
    }
    assert (result.enriched, result.synced, result.failed, result.complete) == (3, 2, 1, True)


def test_stops_at_the_jobs_creation(imports: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    old = [contact(f"old{i}@x.io", PipelineStatus.ENRICHED, -1 - i, JOB) for i in range(500)]
    new = [contact(f"new{i}@x.io", PipelineStatus.ENRICHED, 1 + i / 100, JOB) for i in range(3)]
    result, listing = pipeline(imports, monkeypatch, old + new)
    assert result.contacts == 3 and result.complete
    assert listing.read <= 25  # the first small page showed a change older than the job: no more reading


def test_a_busy_workspace_gives_a_lower_bound(imports: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports, "PIPELINE_SCAN_MAX", 120)
    others = [contact(f"o{i}@x.io", PipelineStatus.IMPORTED, 10 + i / 1000, "imp_busy") for i in range(400)]
    mine = [contact("m@x.io", PipelineStatus.SYNCED, 1, JOB)]
    result, listing = pipeline(imports, monkeypatch, others + mine)
    assert not result.complete
    assert listing.read < 400 and result.synced == 0  # it stopped reading before the synced listing
