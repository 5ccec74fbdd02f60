"""The contacts repository against moto: access patterns, pagination, conditional writes, counters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadpipe.contacts import UNCHANGED, ContactChange, ContactRepository, Unchanged, shard_of
from leadpipe.errors import BadRequest
from leadpipe.models import Contact, PipelineStatus
from tests.conftest import Stack

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def contact(email: str, *, minutes: int = 0, **fields: Any) -> Contact:
    at = T0 + timedelta(minutes=minutes)
    domain = fields.pop("domain", email.split("@")[1])
    return Contact(
        workspace=fields.pop("workspace", "default"),
        email=email,
        email_domain=email.split("@")[1],
        domain=domain,
        created_at=at,
        updated_at=at,
        **fields,
    )


@pytest.fixture
def repo(stack: Stack) -> ContactRepository:
    return ContactRepository(stack.client("dynamodb"), stack.contacts_table)


def seed(repo: ContactRepository, contacts: list[Contact]) -> None:
    result = repo.save([ContactChange(None, c) for c in contacts])
    assert not result.conflicts and len(result.written) == len(contacts)


def test_get_batch_get_and_versions(repo: ContactRepository) -> None:
    seed(repo, [contact(f"p{i}@acme.com", minutes=i) for i in range(150)])
    got = repo.get("default", "p7@acme.com")
    assert got is not None and got.version == 1 and got.email == "p7@acme.com"
    many = repo.batch_get("default", [f"p{i}@acme.com" for i in range(150)] + ["nobody@acme.com"])
    assert len(many) == 150 and "nobody@acme.com" not in many
    assert repo.get("other", "p7@acme.com") is None  # workspaces never see each other


def test_transactions_are_packed_100_items_per_call(repo: ContactRepository) -> None:
    seed(repo, [contact(f"p{i}@acme.com") for i in range(250)])
    # 99 contacts + 1 counter update per call
    assert repo.calls["TransactWriteItems"] == 3


def test_a_concurrent_update_is_never_lost(repo: ContactRepository) -> None:
    seed(repo, [contact("ann@acme.com"), contact("bob@acme.com")])
    interfered = {"done": False}

    def add_title(email: str, before: Contact | None) -> Contact | Unchanged:
        assert before is not None
        if not interfered["done"]:
            # Someone else writes Ann between our read and our write.
            interfered["done"] = True
            other = repo.get("default", "ann@acme.com")
            assert other is not None
            other.phone = "+1 555 0100"
            assert not repo.save([ContactChange(repo.get("default", "ann@acme.com"), other)]).conflicts
        after = before.model_copy(deep=True)
        after.title = "CTO"
        return after

    result = repo.upsert("default", ["ann@acme.com", "bob@acme.com"], add_title)
    ann = repo.get("default", "ann@acme.com")
    assert ann is not None
    assert (ann.title, ann.phone, ann.version) == ("CTO", "+1 555 0100", 3)  # both writes kept
    assert result["bob@acme.com"] is not None and result["bob@acme.com"].title == "CTO"


def test_save_reports_conflicts_instead_of_overwriting(repo: ContactRepository) -> None:
    seed(repo, [contact("ann@acme.com")])
    stale = repo.get("default", "ann@acme.com")
    fresh = repo.get("default", "ann@acme.com")
    assert stale is not None and fresh is not None
    first, second = stale.model_copy(deep=True), fresh.model_copy(deep=True)
    first.title, second.title = "one", "two"
    assert repo.save([ContactChange(stale, first)]).written
    result = repo.save([ContactChange(fresh, second), ContactChange(None, contact("new@acme.com"))])
    assert [c.email for c in result.conflicts] == ["ann@acme.com"]
    assert [c.email for c in result.written] == ["new@acme.com"]
    stored = repo.get("default", "ann@acme.com")
    assert stored is not None and stored.title == "one"
    # creating a contact that already exists is a conflict too
    assert repo.save([ContactChange(None, contact("new@acme.com"))]).conflicts


def test_counters_follow_status_changes_and_deletes(repo: ContactRepository) -> None:
    seed(repo, [contact(f"p{i}@acme.com") for i in range(10)])
    assert repo.counts("default")["imported"] == 10

    def to_status(status: PipelineStatus) -> Any:
        def mutate(email: str, before: Contact | None) -> Contact | Unchanged:
            assert before is not None
            if email.startswith("p1"):
                return UNCHANGED
            after = before.model_copy(deep=True)
            after.status = status
            return after

        return mutate

    repo.upsert("default", [f"p{i}@acme.com" for i in range(6)], to_status(PipelineStatus.ENRICHED))
    counts = repo.counts("default")
    assert (counts["imported"], counts["enriched"]) == (5, 5)
    repo.upsert("default", ["p2@acme.com", "p3@acme.com"], lambda e, b: None)  # delete
    counts = repo.counts("default")
    assert (counts["imported"], counts["enriched"], sum(counts.values())) == (5, 3, 8)
    assert repo.get("default", "p2@acme.com") is None


def all_pages(repo: ContactRepository, limit: int, **filters: Any) -> list[Contact]:
    out: list[Contact] = []
    cursor = None
    for _ in range(100):
        page = repo.find("default", limit=limit, cursor=cursor, **filters)
        assert len(page.items) <= limit
        out.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return out
    raise AssertionError("pagination did not end")


def test_listing_all_contacts_newest_first_across_shards(repo: ContactRepository) -> None:
    people = [contact(f"p{i:03d}@acme{i % 5}.com", minutes=i) for i in range(95)]
    assert len({shard_of(c.email) for c in people}) > 1
    seed(repo, people)
    listed = all_pages(repo, 7)
    assert [c.email for c in listed] == [c.email for c in sorted(people, key=lambda c: c.created_at, reverse=True)]


@pytest.mark.parametrize("limit", [1, 10, 100])
def test_listing_by_status_domain_and_tag(repo: ContactRepository, limit: int) -> None:
    people = []
    for i in range(60):
        status = PipelineStatus.ENRICHED if i % 3 == 0 else PipelineStatus.IMPORTED
        tags = {"vip": T0} if i % 4 == 0 else {}
        people.append(contact(f"p{i:02d}@d{i % 2}.com", minutes=i, status=status, tags=tags))
    seed(repo, people)

    def expect(pred: Any) -> list[str]:
        chosen = [c for c in people if pred(c)]
        return [c.email for c in sorted(chosen, key=lambda c: c.created_at, reverse=True)]

    def emails(**f: Any) -> list[str]:
        return [c.email for c in all_pages(repo, limit, **f)]

    assert emails(status=PipelineStatus.ENRICHED) == expect(lambda c: c.status is PipelineStatus.ENRICHED)
    assert emails(domain="d1.com") == expect(lambda c: c.domain == "d1.com")
    assert set(emails(tag="vip")) == set(expect(lambda c: "vip" in c.tags))
    assert emails(domain="d0.com", status=PipelineStatus.IMPORTED) == expect(
        lambda c: c.domain == "d0.com" and c.status is PipelineStatus.IMPORTED
    )
    assert set(emails(tag="vip", status=PipelineStatus.ENRICHED)) == set(
        expect(lambda c: "vip" in c.tags and c.status is PipelineStatus.ENRICHED)
    )
    assert set(emails(tag="vip", domain="d0.com")) == set(expect(lambda c: "vip" in c.tags and c.domain == "d0.com"))
    assert emails(tag="nope") == []


def test_emails_matching_selects_what_the_listing_does_reading_only_emails(repo: ContactRepository) -> None:
    people = []
    for i in range(300):
        status = PipelineStatus.ENRICHED if i % 3 == 0 else PipelineStatus.IMPORTED
        tags = {"vip": T0} if i % 4 == 0 else {}
        people.append(contact(f"p{i:03d}@d{i % 2}.com", minutes=i, status=status, tags=tags))
    seed(repo, people)

    def expect(pred: Any) -> list[str]:
        return sorted(c.email for c in people if pred(c))

    def emails(**f: Any) -> list[str]:
        return sorted(repo.emails_matching("default", **f))

    assert emails() == expect(lambda c: True)
    assert emails(status=PipelineStatus.ENRICHED) == expect(lambda c: c.status is PipelineStatus.ENRICHED)
    assert emails(domain="d1.com") == expect(lambda c: c.domain == "d1.com")
    assert emails(domain="d0.com", status=PipelineStatus.IMPORTED) == expect(
        lambda c: c.domain == "d0.com" and c.status is PipelineStatus.IMPORTED
    )
    assert emails(tag="vip", status=PipelineStatus.ENRICHED) == expect(
        lambda c: "vip" in c.tags and c.status is PipelineStatus.ENRICHED
    )
    assert emails(tag="vip", domain="d0.com") == expect(lambda c: "vip" in c.tags and c.domain == "d0.com")
    assert emails(tag="nope") == []
    limited = repo.emails_matching("default", status=PipelineStatus.IMPORTED, limit=50)
    assert len(limited) == 50 and set(limited) <= set(expect(lambda c: c.status is PipelineStatus.IMPORTED))
    # one pass over the 8 status shards: a query per shard here, not one per shard for every page of 100
    repo.calls.clear()
    assert len(repo.emails_matching("default", status=PipelineStatus.IMPORTED)) == 200
    assert repo.calls["Query"] == 8


def test_removing_a_tag_removes_it_from_the_tag_listing(repo: ContactRepository) -> None:
    seed(repo, [contact("ann@acme.com", tags={"vip": T0, "webinar": T0})])

    def drop_vip(email: str, before: Contact | None) -> Contact:
        assert before is not None
        after = before.model_copy(deep=True)
        del after.tags["vip"]
        return after

    repo.upsert("default", ["ann@acme.com"], drop_vip)
    assert repo.find("default", tag="vip").items == []
    assert [c.email for c in repo.find("default", tag="webinar").items] == ["ann@acme.com"]


def test_cursors_are_validated(repo: ContactRepository) -> None:
    seed(repo, [contact(f"p{i}@acme.com", minutes=i) for i in range(5)])
    page = repo.find("default", limit=2)
    assert page.next_cursor is not None
    with pytest.raises(BadRequest, match="different query"):
        repo.find("default", limit=2, cursor=page.next_cursor, status=PipelineStatus.IMPORTED)
    for bad in ["garbage!", "eyJmIjoxfQ", page.next_cursor[:-4]]:
        with pytest.raises(BadRequest):
            repo.find("default", limit=2, cursor=bad)


def test_freemail_contacts_have_no_company_domain_partition(repo: ContactRepository) -> None:
    seed(repo, [contact("joe@gmail.com", domain=None)])
    item = repo.client.get_item(TableName=repo.table, Key={"pk": {"S": "C#default#joe@gmail.com"}, "sk": {"S": "C"}})[
        "Item"
    ]
    assert "gsi2pk" not in item
    assert repo.find("default", domain="gmail.com").items == []


def test_upsert_starts_from_known_contacts_and_rereads_a_stale_one(repo: ContactRepository) -> None:
    seed(repo, [contact("ann@acme.com"), contact("bob@acme.com"), contact("cy@acme.com")])
    known = {e: repo.get("default", e) for e in ("ann@acme.com", "bob@acme.com")}
    # Ann changes after the caller read her: her known copy is stale.
    ann = repo.get("default", "ann@acme.com")
    assert ann is not None
    changed = ann.model_copy(deep=True)
    changed.phone = "+1 555 0100"
    assert not repo.save([ContactChange(ann, changed)]).conflicts
    reads: list[list[str]] = []
    real_get = repo.batch_get

    def counting_get(workspace: str, emails: Any) -> Any:
        reads.append(sorted(emails))
        return real_get(workspace, emails)

    repo.batch_get = counting_get  # type: ignore[method-assign]

    def add_title(email: str, before: Contact | None) -> Contact | Unchanged:
        assert before is not None
        after = before.model_copy(deep=True)
        after.title = "CTO"
        return after

    result = repo.upsert("default", ["ann@acme.com", "bob@acme.com", "cy@acme.com"], add_title, known=known)
    # first round: only Cy (not known) is read; Ann's stale copy fails its condition and she alone is read again
    assert reads == [["cy@acme.com"], ["ann@acme.com"]]
    stored = repo.get("default", "ann@acme.com")
    assert stored is not None and (stored.title, stored.phone) == ("CTO", "+1 555 0100")
    assert all(c is not None and c.title == "CTO" for c in result.values())
