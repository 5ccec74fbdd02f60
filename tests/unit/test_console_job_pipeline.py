"""GET /imports/{job_id}?pipeline=true: where a job's contacts are now, read from the by-status listings newest
change first, down to the job's creation only, a page of each status in turn, until every contact the job wrote
was found."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest

from leadpipe.contacts import ContactPage
from leadpipe.models import Contact, ImportSource, Job, JobCounts, PipelineStatus, SourceRef
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
        self.statuses: list[PipelineStatus] = []  # the status of each page read, in order

    def find(self, workspace: str, *, status: PipelineStatus, limit: int, cursor: str | None) -> ContactPage:
        assert workspace == "acme"
        matching = sorted((c for c in self.contacts if c.status is status), key=lambda c: c.updated_at, reverse=True)
        start = int(cursor or 0)
        page = matching[start : start + limit]
        self.read += len(page)
        self.statuses.append(status)
        more = start + limit < len(matching)
        return ContactPage(items=page, next_cursor=str(start + limit) if more else None)


@pytest.fixture
def imports(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT / "functions" / "api"))
    import api_routes.imports as module

    return module


def pipeline(
    imports: ModuleType, monkeypatch: pytest.MonkeyPatch, contacts: list[Contact], *, imported: int, merged: int = 0
) -> tuple[Any, Listing]:
    """The job's pipeline over these contacts, the job having written ``imported`` new contacts and ``merged`` rows
    into existing ones."""
    listing = Listing(contacts)
    monkeypatch.setattr(imports.deps, "contacts", lambda: listing)
    counts = JobCounts(rows_read=imported + merged, valid=imported + merged, imported=imported, merged=merged)
    job = Job(workspace="acme", job_id=JOB, source=ImportSource.UPLOAD, created_at=T0, counts=counts)
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
    result, _ = pipeline(imports, monkeypatch, contacts, imported=4, merged=1)
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
    result, listing = pipeline(imports, monkeypatch, old + new, imported=3)
    assert result.contacts == 3 and result.complete
    assert listing.read <= 25  # the first small page showed a change older than the job: no more reading


def test_every_status_is_read_in_turn_so_a_big_one_does_not_hide_the_others(
    imports: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """9,000 contacts of the job, 3,000 each imported, enriched and synced: more than PIPELINE_SCAN_MAX. Read status
    by status, the limit was spent on imported and enriched and the job answered synced 0."""
    contacts = [
        contact(f"{status.value}{i}@x.io", status, 1 + i / 1000, JOB)
        for status in (PipelineStatus.IMPORTED, PipelineStatus.ENRICHED, PipelineStatus.SYNCED)
        for i in range(3000)
    ]
    result, listing = pipeline(imports, monkeypatch, contacts, imported=9000)
    assert not result.complete  # a lower bound: not all 9,000 were read
    assert listing.read <= imports.PIPELINE_SCAN_MAX + 3 * 100
    shares = [result.by_status[s] for s in ("imported", "enriched", "synced")]
    assert min(shares) >= imports.PIPELINE_SCAN_MAX // 3 - 100, shares  # each status got its share of the reading
    assert result.synced == result.by_status["synced"] > 0 and result.enriched == shares[1] + shares[2]


def test_stops_once_every_contact_the_job_wrote_was_found(imports: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another import changed 2,000 contacts since this job started; this job's 10 are all synced already: one page
    of each status finds them, and the big listing is not read to its end."""
    others = [contact(f"o{i}@x.io", PipelineStatus.IMPORTED, 10 + i / 1000, "imp_busy") for i in range(2000)]
    mine = [contact(f"m{i}@x.io", PipelineStatus.SYNCED, 1 + i / 100, JOB) for i in range(10)]
    result, listing = pipeline(imports, monkeypatch, others + mine, imported=10)
    assert (result.contacts, result.synced, result.complete) == (10, 10, True)
    assert listing.read <= 25 + 10  # the first page of imported, then the synced listing's: done
    assert listing.statuses == list(PipelineStatus)[: list(PipelineStatus).index(PipelineStatus.SYNCED) + 1]


def test_a_job_that_wrote_nothing_reads_nothing(imports: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    others = [contact(f"o{i}@x.io", PipelineStatus.ENRICHED, 1, "imp_busy") for i in range(50)]
    result, listing = pipeline(imports, monkeypatch, others, imported=0)
    assert (result.contacts, result.complete, listing.read) == (0, True, 0)


def test_rows_merged_into_one_contact_read_every_status_to_the_jobs_start(
    imports: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two rows of the file for one email count 1 imported + 1 merged: the job's count is never reached, so every
    listing is read down to the job's creation, and the answer is still complete."""
    mine = [contact("a@x.io", PipelineStatus.ENRICHED, 1, JOB), contact("b@x.io", PipelineStatus.FAILED, 2, JOB)]
    old = [contact(f"old{i}@x.io", PipelineStatus.SYNCED, -1 - i, "imp_old") for i in range(300)]
    result, listing = pipeline(imports, monkeypatch, mine + old, imported=2, merged=1)
    assert (result.contacts, result.enriched, result.failed, result.complete) == (2, 1, 1, True)
    assert set(listing.statuses) == set(PipelineStatus) and listing.read <= 2 + 25


def test_a_busy_workspace_gives_a_lower_bound(imports: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports, "PIPELINE_SCAN_MAX", 120)
    others = [contact(f"o{i}@x.io", PipelineStatus.IMPORTED, 10 + i / 1000, "imp_busy") for i in range(400)]
    mine = [
        contact("m@x.io", PipelineStatus.SYNCED, 1, JOB),
        contact("n@x.io", PipelineStatus.IMPORTED, 1, JOB),  # under the 400 others: past the limit
    ]
    result, listing = pipeline(imports, monkeypatch, others + mine, imported=2)
    assert not result.complete
    assert listing.read < 400
    assert (result.contacts, result.synced) == (1, 1)  # the synced listing was read all the same
