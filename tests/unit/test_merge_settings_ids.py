"""Merge rules (with properties), settings from the environment, identifiers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadpipe.csvfile import ContactDraft
from leadpipe.errors import ConfigurationError
from leadpipe.ids import is_id, new_id
from leadpipe.merge import MAX_SOURCES, ImportOrigin, apply_rows
from leadpipe.models import PROFILE_FIELDS, Contact, PipelineStatus
from leadpipe.settings import Settings

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
ORIGIN = ImportOrigin("default", "api", "imp_job", "file.csv")

field_values = st.one_of(st.none(), st.sampled_from(["", "Ann", "Bob", "Acme", "CTO", "x" * 5]))
drafts = st.lists(
    st.builds(
        lambda values, tags: (values, tags),
        st.fixed_dictionaries(dict.fromkeys(("first_name", "company", "title", "city"), field_values)),
        st.lists(st.sampled_from(["vip", "webinar", "q4"]), max_size=3, unique=True),
    ),
    min_size=1,
    max_size=6,
)


def make_drafts(spec: list[tuple[dict[str, str | None], list[str]]]) -> list[ContactDraft]:
    return [
        ContactDraft(row=i + 2, email="ann@acme.com", fields={k: v for k, v in values.items() if v}, tags=tags)
        for i, (values, tags) in enumerate(spec)
    ]


@given(drafts)
@settings(max_examples=200, deadline=None)
def test_first_non_empty_value_wins_and_tags_are_united(spec: list[tuple[dict[str, str | None], list[str]]]) -> None:
    rows = make_drafts(spec)
    contact, outcomes = apply_rows(None, rows, ORIGIN, NOW)
    for name in ("first_name", "company", "title", "city"):
        expected = next((r.fields[name] for r in rows if r.fields.get(name)), None)
        assert getattr(contact, name) == expected
    assert set(contact.tags) == {t for r in rows for t in r.tags}
    assert outcomes[0].effect == "created"
    assert all(o.effect in {"updated", "unchanged"} for o in outcomes[1:])
    assert [(s.job_id, s.row) for s in contact.sources] == [("imp_job", r.row) for r in rows][:MAX_SOURCES]


@given(drafts)
@settings(max_examples=100, deadline=None)
def test_replaying_the_same_rows_changes_nothing_and_repeats_the_outcomes(
    spec: list[tuple[dict[str, str | None], list[str]]],
) -> None:
    rows = make_drafts(spec)
    first, outcomes = apply_rows(None, rows, ORIGIN, NOW)
    again, replayed = apply_rows(first, rows, ORIGIN, NOW + timedelta(minutes=5))
    assert again == first
    assert [o.effect for o in replayed] == [o.effect for o in outcomes]
    assert all(o.replayed for o in replayed)


def test_existing_values_are_never_overwritten_and_new_data_restarts_the_loop() -> None:
    stored = Contact(
        workspace="default",
        email="ann@acme.com",
        email_domain="acme.com",
        domain="acme.com",
        first_name="Ann",
        title="CTO",
        status=PipelineStatus.SYNCED,
        version=4,
    )
    draft = ContactDraft(row=9, email="ann@acme.com", fields={"title": "Intern", "phone": "+1 555 0100"})
    after, [outcome] = apply_rows(stored, [draft], ImportOrigin("default", "s3", "imp_2", "b.csv"), NOW)
    assert (after.title, after.phone) == ("CTO", "+1 555 0100")
    assert outcome.effect == "updated"
    assert after.status is PipelineStatus.IMPORTED and after.status_reason == "new data imported"
    assert stored.phone is None  # the stored copy is not mutated

    unchanged, [same] = apply_rows(
        stored, [ContactDraft(row=3, email="ann@acme.com", fields={"title": "X"})], ORIGIN, NOW
    )
    assert same.effect == "unchanged"
    assert unchanged.status is PipelineStatus.SYNCED  # nothing new: it stays where it was
    assert unchanged.sources[-1].effect == "unchanged"


def test_company_domain_comes_from_the_website_else_the_email_except_free_mail() -> None:
    web = ContactDraft(
        row=2, email="joe@gmail.com", fields={"website": "https://www.joes.io"}, website_domain="joes.io"
    )
    assert apply_rows(None, [web], ORIGIN, NOW)[0].domain == "joes.io"
    assert apply_rows(None, [ContactDraft(row=2, email="joe@gmail.com")], ORIGIN, NOW)[0].domain is None
    assert apply_rows(None, [ContactDraft(row=2, email="joe@acme.io")], ORIGIN, NOW)[0].domain == "acme.io"


def test_source_history_is_capped_keeping_the_first() -> None:
    rows = [ContactDraft(row=i, email="ann@acme.com") for i in range(2, 40)]
    contact, _ = apply_rows(None, rows, ORIGIN, NOW)
    assert len(contact.sources) == MAX_SOURCES
    assert contact.sources[0].row == 2 and contact.sources[-1].row == 39


def test_profile_fields_are_contact_fields() -> None:
    assert set(PROFILE_FIELDS) <= set(Contact.model_fields)


# ------------------------------------------------------------------------------------------------ settings


def test_settings_parse_the_environment() -> None:
    s = Settings.from_env(
        {
            "CONTACTS_TABLE": "t",
            "AUTO_ENRICH_ON_IMPORT": "false",
            "AUTO_SYNC_AFTER_ENRICH": "TRUE",
            "CACHE_DAYS": "7",
            "MIN_QUALITY": "0.55",
            "IMPORT_CHUNK_ROWS": "50",
            "UNRELATED": "x",
        }
    )
    assert (s.contacts_table, s.auto_enrich_on_import, s.auto_sync_after_enrich) == ("t", False, True)
    assert (s.cache_days, s.min_quality, s.import_chunk_rows, s.default_workspace) == (7, 0.55, 50, "default")


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"MIN_QUALITY": "1.5"}, "MIN_QUALITY"),
        ({"CACHE_DAYS": "zero"}, "CACHE_DAYS"),
        ({"AUTO_ENRICH_ON_IMPORT": "maybe"}, "AUTO_ENRICH_ON_IMPORT"),
        ({"DEFAULT_WORKSPACE": "Not Valid"}, "DEFAULT_WORKSPACE"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigurationError) as bad:
        Settings.from_env(env)
    assert needle in bad.value.message


def test_required_settings_are_named_when_missing() -> None:
    with pytest.raises(ConfigurationError, match="CONTACTS_TABLE, IMPORT_QUEUE_URL"):
        Settings.from_env({"STATE_TABLE": "s"}).require("contacts_table", "state_table", "import_queue_url")


# ------------------------------------------------------------------------------------------------ ids


def test_ids_sort_by_time_and_seeded_ids_are_stable() -> None:
    earlier = new_id("imp", at_ms=1_700_000_000_000)
    later = new_id("imp", at_ms=1_700_000_000_001)
    assert earlier < later and is_id(earlier, "imp") and len(earlier) == 30
    assert new_id("imp", at_ms=5, seed=b"s3://b/k") == new_id("imp", at_ms=5, seed=b"s3://b/k")
    assert new_id("imp", at_ms=5, seed=b"s3://b/k") != new_id("imp", at_ms=5, seed=b"s3://b/k2")
    assert not is_id("imp_short", "imp") and not is_id(earlier, "job") and not is_id("imp_" + "I" * 26, "imp")
