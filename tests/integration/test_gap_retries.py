"""Gap retries in the state table (moto from template.yaml), and the erasure of an entry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from leadpipe.enrichment.gaps import MAX_GAP_RETRIES, GapRetries, retryable
from leadpipe.enrichment.service import EnrichService
from leadpipe.enrichment.waterfall import ContactOutcome
from leadpipe.models import Contact, EnrichmentMeta, ProviderGap
from tests.conftest import Stack

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_entries_come_due_in_time_order_and_are_dropped_once_collected(stack: Stack) -> None:
    gaps = GapRetries(stack.client("dynamodb"), stack.state_table)
    gaps.schedule("default", ["b@x.com", "a@x.com", "a@x.com"], NOW + timedelta(minutes=30))
    gaps.schedule("default", ["c@x.com"], NOW + timedelta(minutes=90))
    gaps.schedule("other", ["a@x.com"], NOW)
    assert gaps.due("default", NOW) == []
    due = gaps.due("default", NOW + timedelta(hours=1))
    assert [email for _, email in due] == ["a@x.com", "b@x.com"]
    gaps.collected("default", [key for key, _ in due])
    assert gaps.due("default", NOW + timedelta(hours=1)) == []
    assert [email for _, email in gaps.due("default", NOW + timedelta(hours=2))] == ["c@x.com"]
    assert [email for _, email in gaps.due("other", NOW)] == ["a@x.com"]  # workspaces apart


def test_erasure_forgets_every_entry_of_the_email(stack: Stack) -> None:
    gaps = GapRetries(stack.client("dynamodb"), stack.state_table)
    gaps.schedule("default", ["gone@x.com", "kept@x.com"], NOW)
    gaps.schedule("default", ["gone@x.com"], NOW + timedelta(days=3))
    assert gaps.forget("default", "gone@x.com") == 2
    assert [email for _, email in gaps.due("default", NOW + timedelta(days=9))] == ["kept@x.com"]


def test_only_gaps_that_pass_are_retried_and_only_a_few_times_in_a_row() -> None:
    down = ProviderGap(provider="apollo", reason="server_error", message="503")
    bad_key = ProviderGap(provider="hunter", reason="auth", message="401")
    assert retryable([down, bad_key]) == [down]

    def contact(retries: int, gaps: list[ProviderGap]) -> Contact:
        meta = EnrichmentMeta(request_id="r", enriched_at=NOW, gaps=gaps, gap_retries=retries)
        return Contact(
            workspace="default", email="a@x.com", email_domain="x.com", created_at=NOW, updated_at=NOW,
            enrichment_meta=meta,
        )  # fmt: skip

    assert EnrichService._gap_retries(contact(0, []), ContactOutcome("a@x.com", gaps=[down])) == 1
    assert EnrichService._gap_retries(contact(2, [down]), ContactOutcome("a@x.com", gaps=[down])) == 3
    assert EnrichService._gap_retries(contact(2, [down]), ContactOutcome("a@x.com", gaps=[bad_key])) == 0
    assert EnrichService._gap_retries(contact(2, [down]), ContactOutcome("a@x.com", gaps=[])) == 0
    assert (
        EnrichService._gap_retries(contact(MAX_GAP_RETRIES, [down]), ContactOutcome("a@x.com", gaps=[down]))
        > MAX_GAP_RETRIES
    )
