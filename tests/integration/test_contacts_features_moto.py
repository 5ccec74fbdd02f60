"""Contact features against moto: custom-field filters on every listing, bulk tags (one batch read, transactional
writes, tag members kept right), edits, engagement storage bounds, the streamed listing and the CSV export
(inline, and to S3 with a presigned URL above the size limit)."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from leadpipe.contact_edits import BulkTagRequest, ContactPatch, bulk_tags, update_contact
from leadpipe.contacts import ContactRepository
from leadpipe.engagements import MAX_HISTORY, EngagementRequest, add_engagement
from leadpipe.errors import BadRequest, NotFound
from leadpipe.export import EXPORTS_PREFIX, ContactExporter, ExportFilter
from leadpipe.models import Contact, EngagementType, FieldValue, LifecycleStage, PipelineStatus
from tests.conftest import Stack
from tests.integration.test_contacts_repository import T0, contact, seed

NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def repo(stack: Stack) -> ContactRepository:
    return ContactRepository(stack.client("dynamodb"), stack.contacts_table)


def emails(page: Any) -> list[str]:
    return [c.email for c in page.items]


def all_pages(repo: ContactRepository, **filters: Any) -> list[str]:
    found: list[str] = []
    cursor = None
    while True:
        page = repo.find("default", limit=7, cursor=cursor, **filters)
        found += emails(page)
        cursor = page.next_cursor
        if not cursor:
            return found


# ---------------------------------------------------------------------------------------------------- filters


@pytest.fixture
def people(repo: ContactRepository) -> list[Contact]:
    plans = ["pro", "free", "pro, annual"]
    contacts = [
        contact(
            f"p{i}@{'acme.com' if i % 2 else 'globex.com'}",
            minutes=i,
            custom={"plan": plans[i % 3], **({"region": "emea"} if i % 4 == 0 else {})},
            tags={"vip": T0} if i % 5 == 0 else {},
            status=PipelineStatus.ENRICHED if i % 3 == 0 else PipelineStatus.IMPORTED,
        )
        for i in range(40)
    ]
    seed(repo, contacts)
    return contacts


def expected(people: list[Contact], **want: Any) -> list[str]:
    chosen = [
        c
        for c in people
        if all(c.custom.get(k) == v for k, v in want.get("custom", {}).items())
        and ("status" not in want or c.status == want["status"])
        and ("domain" not in want or c.domain == want["domain"])
        and ("tag" not in want or want["tag"] in c.tags)
    ]
    return [c.email for c in sorted(chosen, key=lambda c: c.created_at, reverse=True)]


@pytest.mark.parametrize(
    "filters",
    [
        {"custom": {"plan": "pro"}},
        {"custom": {"plan": "pro, annual"}},  # a comma in the value
        {"custom": {"plan": "pro", "region": "emea"}},
        {"custom": {"plan": "pro"}, "status": PipelineStatus.ENRICHED},
        {"custom": {"plan": "free"}, "domain": "acme.com"},
        {"custom": {"region": "emea"}, "tag": "vip"},  # tag members: the filter applies to the contacts read
        {"custom": {"plan": "pro"}, "tag": "vip", "status": PipelineStatus.ENRICHED},
        {"custom": {"plan": "pro"}, "tag": "vip", "domain": "globex.com"},
        {"custom": {"plan": "nobody"}},
    ],
)
def test_custom_field_filters_on_every_listing(
    repo: ContactRepository, people: list[Contact], filters: dict[str, Any]
) -> None:
    want = expected(people, **filters)
    assert all_pages(repo, **filters) == want
    assert sorted(repo.emails_matching("default", **filters)) == sorted(want)
    assert [c.email for c in repo.stream("default", **filters, page_size=3)] == want


@pytest.mark.parametrize(
    "filters",
    [{}, {"status": PipelineStatus.ENRICHED}, {"domain": "acme.com"}, {"tag": "vip"}, {"custom": {"plan": "pro"}}],
)
@pytest.mark.parametrize(("low", "high"), [(0.7, None), (None, 0.5), (0.3, 0.7)])
def test_a_quality_range_filters_every_listing(
    repo: ContactRepository, filters: dict[str, Any], low: float | None, high: float | None
) -> None:
    scored = [
        contact(
            f"q{i}@{'acme.com' if i % 2 else 'globex.com'}",
            minutes=i,
            custom={"plan": "pro" if i % 3 else "free"},
            tags={"vip": T0} if i % 4 == 0 else {},
            status=PipelineStatus.ENRICHED if i % 5 else PipelineStatus.IMPORTED,
            quality=None if i % 7 == 0 else round(i / 40, 3),  # never scored: left out by any range
        )
        for i in range(40)
    ]
    seed(repo, scored)
    chosen = [
        c
        for c in scored
        if c.quality is not None and (low is None or c.quality >= low) and (high is None or c.quality < high)
    ]
    want = [e for e in expected(scored, **filters) if e in {c.email for c in chosen}]
    assert want  # the case selects something
    found = all_pages(repo, **filters, min_quality=low, max_quality=high)
    if "tag" in filters:  # a tag's members are listed by when the tag was put on (all at once here), not created
        found, want = sorted(found), sorted(want)
    assert found == want
    page = repo.find("default", limit=2, min_quality=low, max_quality=high, **filters)
    with pytest.raises(BadRequest, match="different query"):  # a cursor belongs to its range
        repo.find("default", limit=2, cursor=page.next_cursor, min_quality=0.01, max_quality=0.02, **filters)


def test_a_cursor_belongs_to_its_custom_filter(repo: ContactRepository, people: list[Contact]) -> None:
    page = repo.find("default", custom={"plan": "pro"}, limit=2)
    assert page.next_cursor
    with pytest.raises(BadRequest, match="different query"):
        repo.find("default", custom={"plan": "free"}, limit=2, cursor=page.next_cursor)
    same = repo.find("default", custom={"plan": "pro"}, limit=2, cursor=page.next_cursor)
    assert set(emails(same)).isdisjoint(emails(page))


# ---------------------------------------------------------------------------------------------------- stream


def test_the_stream_is_newest_first_across_shards_and_resumes_without_loss(repo: ContactRepository) -> None:
    seed(repo, [contact(f"s{i}@acme.com", minutes=i, tags={"t": T0 + timedelta(seconds=i)}) for i in range(230)])
    for filters in ({}, {"tag": "t"}, {"domain": "acme.com"}):
        full = [c.email for c in repo.stream("default", page_size=17, **filters)]
        assert len(full) == 230 and len(set(full)) == 230
        resumed: list[str] = []
        cursor = None
        while True:
            stream = repo.stream("default", page_size=11, cursor=cursor, **filters)
            taken = []
            for c in stream:
                taken.append(c.email)
                if len(taken) == 37:
                    break
            resumed += taken
            cursor = stream.cursor()
            if len(taken) < 37 or cursor is None:
                break
        assert resumed == full, filters
    before = repo.calls["Query"]
    assert len(list(repo.stream("default", page_size=100))) == 230
    assert repo.calls["Query"] - before <= 8 + 230 // 100 + 8  # each item read once: about a page per shard


# ---------------------------------------------------------------------------------------------------- bulk tags


def test_bulk_tags_use_one_batch_read_and_keep_tag_members_right(repo: ContactRepository) -> None:
    seed(repo, [contact(f"b{i}@acme.com", minutes=i, tags={"old": T0}) for i in range(100)])
    full = contact("full@acme.com", tags={f"t{i}": T0 for i in range(50)})
    seed(repo, [full])
    reads, writes = repo.calls["BatchGetItem"], repo.calls["TransactWriteItems"]
    request = BulkTagRequest(
        emails=[f"B{i}@ACME.com" for i in range(97)] + ["full@acme.com", "nobody@acme.com", "not-an-email"],
        add=["Campaign Q4", "vip"],
        remove=["old"],
    )
    result = bulk_tags(repo, "default", request, NOW)
    assert repo.calls["BatchGetItem"] - reads == 1  # 99 valid emails: one batch read
    # 4 items per contact (the contact, 2 tags added, 1 removed): 24 contacts per transaction of at most 100 items
    assert repo.calls["TransactWriteItems"] - writes == 5
    updated = [f"b{i}@acme.com" for i in range(97)]
    assert result.updated == updated
    assert result.not_found == ["nobody@acme.com"]
    assert [i.value for i in result.invalid] == ["not-an-email"]
    assert [(r.email, r.code) for r in result.rejected] == [("full@acme.com", "too_many_tags")]
    assert result.unchanged == []
    assert sorted(repo.emails_matching("default", tag="campaign q4")) == sorted(updated)
    assert sorted(repo.emails_matching("default", tag="old")) == ["b97@acme.com", "b98@acme.com", "b99@acme.com"]
    assert repo.find("default", tag="vip", limit=100).items[0].tags["vip"] == NOW
    stored = repo.get("default", "full@acme.com")
    assert stored is not None and len(stored.tags) == 50 and stored.version == 1  # left as it was
    again = bulk_tags(repo, "default", request, NOW + timedelta(hours=1))
    assert again.updated == [] and again.unchanged == updated  # idempotent
    assert repo.find("default", tag="vip", limit=1).items[0].tags["vip"] == NOW  # a tag keeps its first time


def test_patch_sets_and_removes_and_a_missing_contact_is_404(repo: ContactRepository) -> None:
    seed(repo, [contact("ann@acme.com", custom={"plan": "pro"}, tags={"a": T0})])
    patch = ContactPatch.model_validate(
        {
            "tags": {"add": ["b"], "remove": ["a"]},
            "custom": {"set": {"seats": "12"}, "remove": ["plan"]},
            "do_not_enrich": True,
        }
    )
    after = update_contact(repo, "default", "ann@acme.com", patch, NOW)
    assert (set(after.tags), after.custom, after.do_not_enrich, after.version) == ({"b"}, {"seats": "12"}, True, 2)
    assert repo.emails_matching("default", tag="a") == [] and repo.emails_matching("default", tag="b") == [
        "ann@acme.com"
    ]
    assert emails(repo.find("default", custom={"seats": "12"})) == ["ann@acme.com"]
    unchanged = update_contact(repo, "default", "ann@acme.com", patch, NOW + timedelta(hours=1))
    assert unchanged.version == 2  # nothing to change: no write
    with pytest.raises(NotFound):
        update_contact(repo, "default", "nobody@acme.com", patch, NOW)
    with pytest.raises(NotFound):
        update_contact(repo, "other", "ann@acme.com", patch, NOW)  # another workspace's contact is not there


# ---------------------------------------------------------------------------------------------------- engagements


def test_engagement_history_is_bounded_and_counts_everything(repo: ContactRepository) -> None:
    seed(repo, [contact("eng@acme.com")])
    details = {"campaign": "x" * 400, "url": "https://example.com/" + "y" * 400, "n": 1}
    for i in range(MAX_HISTORY + 5):
        kind = EngagementType.EMAIL_SENT if i < 100 else EngagementType.EMAIL_OPENED
        request = EngagementRequest(type=kind, at=NOW - timedelta(minutes=200 - i), id=f"evt-{i}", details=details)
        recorded = add_engagement(repo, "default", "eng@acme.com", request, NOW)
        assert not recorded.duplicate
    again = add_engagement(repo, "default", "eng@acme.com", EngagementRequest(type="email_opened", id="evt-104"), NOW)
    assert again.duplicate and again.engagement.at == NOW - timedelta(minutes=96)
    stored = repo.get("default", "eng@acme.com")
    assert stored is not None
    assert len(stored.engagements) == MAX_HISTORY
    assert stored.engagements[0].id == "evt-104" and stored.engagements[-1].id == "evt-5"
    assert stored.engagement_counts == {"email_sent": 100, "email_opened": 5}
    assert stored.lifecycle is LifecycleStage.ENGAGED
    raw = repo.client.get_item(TableName=repo.table, Key={"pk": {"S": "C#default#eng@acme.com"}, "sk": {"S": "C"}})[
        "Item"
    ]
    assert len(json.dumps(raw)) < 200_000  # well under DynamoDB's 400 KB item limit
    with pytest.raises(NotFound):
        add_engagement(repo, "default", "nobody@acme.com", EngagementRequest(type="email_opened"), NOW)


# ---------------------------------------------------------------------------------------------------- export


def enriched(value: Any, provider: str = "sample", confidence: float = 0.9) -> FieldValue:
    return FieldValue(value=value, provider=provider, confidence=confidence, fetched_at=NOW)


def read_csv(data: bytes | str) -> list[dict[str, str]]:
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_export_inline_with_provenance_and_neutralised_cells(stack: Stack, repo: ContactRepository) -> None:
    seed(
        repo,
        [
            contact(
                "=evil@acme.com",
                minutes=2,
                first_name='=HYPERLINK("http://x")',
                custom={"note": "+cmd|' /C calc'!A0"},
                enrichment={"industry": enriched("@SUM(A1)"), "employee_range": enriched("51-200", "pdl", 0.6)},
                quality=0.75,
            ),
            contact("plain@acme.com", minutes=1, custom={"score": "-12"}, tags={"b": T0, "a": T0}),
            contact("other@globex.com", minutes=3),
        ],
    )
    exporter = ContactExporter(repo, stack.client("s3"), stack.bucket, clock=lambda: NOW)
    result = exporter.export("default", ExportFilter(domain="acme.com"))
    assert result.body is not None and result.url is None and result.rows == 2 and result.next_cursor is None
    assert result.filename == "leadpipe-contacts-default-20261201-000000.csv"
    rows = read_csv(result.body)
    assert [r["email"] for r in rows] == ["'=evil@acme.com", "plain@acme.com"]
    evil, plain = rows
    assert evil["first_name"] == '\'=HYPERLINK("http://x")'
    assert evil["custom.note"] == "'+cmd|' /C calc'!A0"
    assert evil["enriched.industry"] == "'@SUM(A1)"
    assert evil["enriched.industry_source"] == "sample" and evil["enriched.industry_confidence"] == "0.9"
    assert evil["enriched.employee_range_source"] == "pdl" and evil["enriched.employee_range_fetched_at"]
    assert plain["custom.score"] == "-12" and plain["tags"] == "a;b" and plain["enriched.industry"] == ""
    assert result.body.startswith("email,first_name,") and "\r\n" in result.body


def test_a_large_export_goes_to_s3_with_a_short_presigned_url(stack: Stack, repo: ContactRepository) -> None:
    seed(repo, [contact(f"big{i}@acme.com", minutes=i, custom={"note": "=x" + "n" * 200}) for i in range(60)])
    s3 = stack.client("s3")
    exporter = ContactExporter(repo, s3, stack.bucket, clock=lambda: NOW, inline_max_bytes=5_000)
    result = exporter.export("default", ExportFilter())
    assert result.body is None and result.rows == 60 and result.size_bytes > 5_000
    assert result.key is not None and result.key.startswith(f"{EXPORTS_PREFIX}default/")
    assert result.key.endswith(result.filename)
    assert result.expires_at == int(NOW.timestamp()) + 300
    query = parse_qs(urlsplit(result.url or "").query)
    if "X-Amz-Expires" in query:  # SigV4 query signing
        assert query["X-Amz-Expires"] == ["300"]
    else:  # SigV2 query signing: an absolute time
        assert abs(int(query["Expires"][0]) - time.time() - 300) < 30
    stored = s3.get_object(Bucket=stack.bucket, Key=result.key)
    assert stored["ContentType"].startswith("text/csv")
    assert stored["ContentDisposition"] == f'attachment; filename="{result.filename}"'
    rows = read_csv(stored["Body"].read())
    assert len(rows) == 60 and rows[0]["email"] == "big59@acme.com"
    assert all(r["custom.note"].startswith("'=x") for r in rows)
    small = exporter.export("default", ExportFilter(tag="none"), delivery="link")
    assert small.body is None and small.rows == 0 and small.key  # delivery=link: always a URL, even when empty
    assert read_csv(s3.get_object(Bucket=stack.bucket, Key=small.key)["Body"].read()) == []


def test_export_parts_follow_the_cursor_and_stop_when_time_runs_out(stack: Stack, repo: ContactRepository) -> None:
    seed(repo, [contact(f"part{i}@acme.com", minutes=i, custom={f"k{i % 3}": "v"}) for i in range(25)])
    exporter = ContactExporter(repo, stack.client("s3"), stack.bucket, clock=lambda: NOW)
    seen: list[str] = []
    cursor = None
    parts = 0
    while True:
        part = exporter.export("default", ExportFilter(), limit=10, cursor=cursor)
        parts += 1
        assert part.body is not None
        seen += [r["email"] for r in read_csv(part.body)]
        cursor = part.next_cursor
        if cursor is None:
            break
    assert parts == 3 and seen == [f"part{i}@acme.com" for i in reversed(range(25))]
    exact = exporter.export("default", ExportFilter(), limit=25)
    assert exact.rows == 25 and exact.next_cursor is None  # nothing after the last one: no empty next part
    with_bom = exporter.export("default", ExportFilter(custom={"k0": "v"}), bom=True)
    assert with_bom.body is not None and with_bom.body.startswith("\ufeffemail,")
    assert with_bom.rows == 9
    hurried = exporter.export("default", ExportFilter(), time_left=lambda: 0.0)
    assert hurried.rows == 25  # under MIN_ROWS every request still makes progress


def test_export_stops_early_when_time_runs_out(
    stack: Stack, repo: ContactRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    import leadpipe.export as export_module

    monkeypatch.setattr(export_module, "MIN_ROWS", 5)
    seed(repo, [contact(f"t{i}@acme.com", minutes=i) for i in range(12)])
    exporter = ContactExporter(repo, stack.client("s3"), stack.bucket, clock=lambda: NOW)
    first = exporter.export("default", ExportFilter(), time_left=lambda: -1.0)
    assert first.rows == 5 and first.next_cursor
    rest = exporter.export("default", ExportFilter(), cursor=first.next_cursor)
    assert rest.rows == 7 and rest.next_cursor is None
    assert rest.body is not None and first.body is not None
    both = [r["email"] for r in read_csv(first.body) + read_csv(rest.body)]
    assert both == [f"t{i}@acme.com" for i in reversed(range(12))]
