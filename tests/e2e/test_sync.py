"""Sync end to end: POST /sync -> SyncQueue -> sync function -> the HubSpot fake over HTTP; the sync log; the
workspace's sync settings; the CLI; and AutoSyncAfterEnrich=true (contacts.enriched -> AutoSync rule -> SyncQueue)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadpipe_local.cli import main
from leadpipe_local.client import ApiClient
from leadpipe_local.runtime import LocalRuntime
from tests.conftest import TEMPLATE
from tests.e2e.test_enrichment import known_domains, people_csv, wait_until


def enriched_people(api: ApiClient, runtime: LocalRuntime, n: int, domain_index: int) -> tuple[str, list[str]]:
    """n contacts at a company the sample provider knows, imported and enriched (the AutoEnrich path)."""
    tag = f"t{uuid.uuid4().hex[:8]}"
    domain = known_domains(12)[domain_index]
    people = [(f"{tag}.{i}@{domain}", f"P{i}") for i in range(n)]
    api.wait_job(api.import_csv(people_csv(people, tag), f"{tag}.csv")["job_id"], timeout=30)
    wait_until(
        lambda: api.contacts(tag=tag, limit=50)["items"],
        lambda items: len(items) == n and all(c["status"] == "enriched" for c in items),
        what=f"{n} enriched contacts",
    )
    return tag, [email for email, _ in people]


def wait_synced(api: ApiClient, emails: list[str], request_id: str) -> list[dict[str, Any]]:
    def finished(contacts: list[dict[str, Any]]) -> bool:
        return all((c["hubspot"] or {}).get("request_id") == request_id and c["status"] != "syncing" for c in contacts)

    return wait_until(lambda: [api.contact(e) for e in emails], finished, what=f"sync {request_id}")  # type: ignore[no-any-return]


def test_post_sync_writes_contacts_and_their_company_to_hubspot(api: ApiClient, runtime: LocalRuntime) -> None:
    _, emails = enriched_people(api, runtime, 3, domain_index=5)
    response = httpx.post(
        runtime.api_url + "/sync",
        json={"emails": [emails[0].upper(), emails[1], "nobody@nowhere.example", "not an email"]},
        headers=runtime.auth_headers(),
        timeout=30,
    )
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert (accepted["queued"], accepted["messages"]) == (2, 1)
    assert accepted["not_found"] == ["nobody@nowhere.example"]
    assert accepted["invalid"] == [{"value": "not an email", "reason": "the email contains spaces"}]
    assert accepted["options"] == {
        "deduplicate": True,
        "createIfNew": True,
        "updateIfExists": True,
        "associateCompany": True,
        "logActivity": True,
    }
    synced = wait_synced(api, emails[:2], accepted["request_id"])
    assert [c["status"] for c in synced] == ["synced", "synced"]
    first, second = (c["hubspot"] for c in synced)
    assert first["contact_id"] != second["contact_id"] and first["company_id"] == second["company_id"]
    assert first["synced_at"] and first["note_for"] == synced[0]["enrichment_meta"]["request_id"]

    fake = runtime.hubspot
    stored = fake.get("contacts", first["contact_id"])
    assert stored["email"] == emails[0]
    assert stored["firstname"] == "P0"
    assert stored["company"] == synced[0]["enrichment"]["company_name"]["value"]
    assert float(stored["leadpipe_quality_score"]) == pytest.approx(synced[0]["quality"], abs=0.005)
    company = fake.get("companies", first["company_id"])
    assert company["domain"] == synced[0]["domain"]
    assert api.contact(emails[2])["status"] == "enriched"  # not asked for: untouched

    [entry] = [e for e in api.sync_log(limit=100) if e["request_id"] == accepted["request_id"]]
    assert (entry["created"], entry["failed"], entry["associations"], entry["notes"]) == (2, 0, 2, 2)
    assert entry["hubspot_calls"] > 0 and entry["errors"] == [] and entry["mapping_problems"] == []

    # asked again with nothing new: the hash of what was written says so, and HubSpot is not called
    again = api.sync(emails[:2])
    wait_synced(api, emails[:2], again["request_id"])
    [entry] = [e for e in api.sync_log(limit=100) if e["request_id"] == again["request_id"]]
    assert (entry["unchanged"], entry["hubspot_calls"]) == (2, 0)


def test_post_sync_by_filter_with_options(api: ApiClient, runtime: LocalRuntime) -> None:
    tag, emails = enriched_people(api, runtime, 2, domain_index=6)
    accepted = api.sync(filter={"tag": tag}, options={"logActivity": False, "associateCompany": False})
    assert accepted["queued"] == 2 and accepted["options"]["logActivity"] is False
    synced = wait_synced(api, emails, accepted["request_id"])
    assert all(c["status"] == "synced" and c["hubspot"]["company_id"] is None for c in synced)
    assert all(c["hubspot"]["note_for"] is None for c in synced)
    [entry] = [e for e in api.sync_log(limit=100) if e["request_id"] == accepted["request_id"]]
    assert (entry["created"], entry["notes"], entry["associations"]) == (2, 0, 0)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"emails": ["a@b.co"], "filter": {"tag": "x"}},
        {"emails": []},
        {"filter": {"tag": "x"}, "limit": 10_001},
        {"emails": ["a@b.co"], "options": {"overwrite": True}},
        {"emails": ["a@b.co"], "options": {"createIfNew": "sometimes"}},
    ],
)
def test_post_sync_refuses_a_bad_request(runtime: LocalRuntime, body: dict[str, Any]) -> None:
    response = httpx.post(runtime.api_url + "/sync", json=body, headers=runtime.auth_headers(), timeout=30)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "validation_error"


def test_sync_settings_are_read_validated_and_replaced(runtime: LocalRuntime, api: ApiClient) -> None:
    original = api.sync_settings()
    assert original["burst_limit"] == 100 and original["options"]["createIfNew"] is True
    by_property = {m["property"]: m for m in original["mapping"]}
    assert by_property["jobtitle"]["policy"] == "fill_empty" and by_property["leadpipe_quality_score"]["policy"]
    bad = [
        {**original, "burst_limit": 150},
        {**original, "mapping": [{"source": "favourite_colour", "property": "color"}]},
        {**original, "mapping": [{"source": "title", "property": "jobtitle", "policy": "sometimes"}]},
    ]
    for body in bad:
        response = httpx.put(runtime.api_url + "/settings/sync", json=body, headers=runtime.auth_headers(), timeout=30)
        assert response.status_code == 400, (body, response.text)
    try:
        changed = {
            **original,
            "burst_limit": 190,
            "options": {**original["options"], "logActivity": False},
            "mapping": [{**m, "policy": "always"} if m["property"] == "jobtitle" else m for m in original["mapping"]],
        }
        stored = api.put_sync_settings(changed)
        assert stored["burst_limit"] == 190 and stored["options"]["logActivity"] is False
        assert api.sync_settings() == stored
        # the workspace's default options are what a request without options gets
        accepted = api.sync(["nobody@nowhere.example"])
        assert accepted["queued"] == 0 and accepted["options"]["logActivity"] is False
    finally:
        api.put_sync_settings(original)
    assert api.sync_settings() == original


def test_the_cli_syncs_waits_and_shows_the_log(
    api: ApiClient, runtime: LocalRuntime, capsys: pytest.CaptureFixture[str], cli_key: str
) -> None:
    _, emails = enriched_people(api, runtime, 2, domain_index=7)
    url = ["--api-url", runtime.api_url]
    assert main(["sync", *emails, "--wait", "--no-activity", *url]) == 0
    out = capsys.readouterr().out
    assert "2 contact(s) queued for HubSpot" in out and "HubSpot contact" in out
    contact = api.contact(emails[0])
    assert contact["status"] == "synced" and contact["hubspot"]["contact_id"] in out
    assert contact["hubspot"]["note_for"] is None  # --no-activity

    assert main(["sync-log", "--limit", "5", *url, "--json"]) == 0
    log = json.loads(capsys.readouterr().out)
    assert log[0]["request_id"] == contact["hubspot"]["request_id"] and log[0]["created"] == 2
    assert main(["sync-log", *url]) == 0
    assert contact["hubspot"]["request_id"] in capsys.readouterr().out

    assert main(["sync", *url]) == 2
    assert "give emails" in capsys.readouterr().err


def test_with_auto_sync_enriched_contacts_reach_hubspot_on_their_own(tmp_path: Path) -> None:
    rt = LocalRuntime(
        TEMPLATE, api_port=0, state_dir=tmp_path, retry_delay=0, parameters={"AutoSyncAfterEnrich": "true"}
    )
    with rt, rt.api_client() as api:
        bus = rt.provisioned.ref("EventBus")  # type: ignore[union-attr]
        rules = {r["Name"] for r in rt.client("events").list_rules(EventBusName=bus)["Rules"]}
        assert any("AutoSync" in name for name in rules) and any("AutoEnrich" in name for name in rules)
        assert api.status()["config"]["auto_sync_after_enrich"] is True
        domain = known_domains(9)[8]
        good, webmail = f"auto@{domain}", f"auto.{uuid.uuid4().hex[:6]}@gmail.com"
        job = api.import_csv(people_csv([(good, "Auto"), (webmail, "Mail")], "auto"), "auto.csv")
        api.wait_job(job["job_id"], timeout=30)
        contact = wait_until(lambda: api.contact(good), lambda c: c["status"] == "synced", what="the automatic sync")
        assert contact["hubspot"]["request_id"].startswith("evt-")  # driven by the contacts.enriched event
        stored = rt.hubspot.get("contacts", contact["hubspot"]["contact_id"])
        assert stored is not None and stored["email"] == good
        # below the quality threshold: no contacts.enriched event, so it waits for a manual sync
        rt.wait_until_idle(30)
        below = api.contact(webmail)
        assert (below["status"], below["status_reason"], below["hubspot"]) == ("enriched", "below_threshold", None)
        assert rt.errors == []
