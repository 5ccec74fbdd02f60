"""Erasure end to end through the local runtime: import -> AutoEnrich -> sync to the HubSpot fake -> DELETE
/contacts/{email}?hubspot=true -> gone everywhere, the email suppressed, and a re-import of the same row refused."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from leadpipe.enrichment.cache import EnrichmentCache
from leadpipe.enrichment.fields import Kind
from leadpipe.enrichment.registry import PROVIDERS
from leadpipe.erasure import REDACTED
from leadpipe_local.cli import main
from leadpipe_local.client import ApiClient, ApiError
from leadpipe_local.runtime import LocalRuntime
from tests.e2e.test_enrichment import known_domains, people_csv, wait_until
from tests.e2e.test_sync import wait_synced


def cache_of(runtime: LocalRuntime) -> EnrichmentCache:
    assert runtime.provisioned is not None
    return EnrichmentCache(runtime.client("dynamodb"), runtime.provisioned.ref("EnrichCacheTable"))


def person_entries(runtime: LocalRuntime, email: str) -> list[str]:
    cache = cache_of(runtime)
    return [p for p in PROVIDERS if cache.get_many(p, Kind.PERSON, [email])]


def test_erasure_removes_the_person_everywhere_and_refuses_them_afterwards(
    runtime: LocalRuntime, api: ApiClient
) -> None:
    tag = f"e{uuid.uuid4().hex[:8]}"
    domain = known_domains(12)[8]
    ann, bob = f"{tag}.ann@{domain}", f"{tag}.bob@{domain}"
    data = people_csv([(ann, "Ann"), (bob, "Bob")], tag) + f"{ann};{ann},Ann,Tester,Head of Sales,{tag}\n".encode()
    job = api.wait_job(api.import_csv(data, f"{tag}.csv")["job_id"], timeout=30)
    assert job["status"] == "completed_with_errors" and ann in json.dumps(job["errors"])
    wait_until(
        lambda: api.contacts(tag=tag, limit=10)["items"],
        lambda items: len(items) == 2 and all(c["status"] == "enriched" for c in items),
        what="two enriched contacts",
    )
    assert person_entries(runtime, ann)  # the sample-web provider's person answer is cached
    accepted = api.sync([ann, bob])
    synced = wait_synced(api, [ann, bob], accepted["request_id"])
    ann_id = synced[0]["hubspot"]["contact_id"]
    assert runtime.hubspot is not None and runtime.hubspot.get("contacts", ann_id)["email"] == ann

    # another workspace's key neither sees nor erases this workspace's contact
    with runtime.api_client(f"w{tag}") as other:
        with pytest.raises(ApiError) as hidden:
            other.contact(ann)
        assert hidden.value.status == 404
        elsewhere = other.erase(ann)
        assert elsewhere["workspace"] == f"w{tag}" and elsewhere["contact"] is False
        assert elsewhere["cache_entries"] == elsewhere["job_row_errors"] == elsewhere["source_files"] == 0
    assert api.contact(ann)["email"] == ann and person_entries(runtime, ann)
    assert ann in json.dumps(api.job(job["job_id"])["errors"])

    report = api.erase(ann.upper(), hubspot=True)
    assert (report["workspace"], report["email"], report["contact"], report["suppressed"]) == (
        "default",
        ann,
        True,
        True,
    )
    assert report["hubspot"]["status"] == "deleted" and report["complete"] is True, report["notes"]
    assert report["cache_entries"] >= 1 and (report["job_row_errors"], report["source_files"]) == (1, 1)

    with pytest.raises(ApiError) as gone:
        api.contact(ann)
    assert (gone.value.status, gone.value.code) == (404, "contact_not_found")
    assert runtime.hubspot.get("contacts", ann_id) is None
    assert person_entries(runtime, ann) == []
    assert api.contact(bob)["status"] == "synced" and person_entries(runtime, bob)  # Bob untouched
    after = api.job(job["job_id"])
    assert after["counts"] == job["counts"] and ann not in json.dumps(after)
    assert [(e["row"], e["code"], e["message"], e["value"]) for e in after["errors"]] == [
        (4, "invalid_email", REDACTED, None)
    ]

    # the same row imported again: refused with a clear reason, the contact not recreated
    again = api.wait_job(api.import_csv(people_csv([(ann, "Ann")], tag), f"{tag}-again.csv")["job_id"], timeout=30)
    assert again["status"] == "failed" and again["error"]["code"] == "all_rows_invalid"
    [refused] = again["errors"]
    assert (refused["row"], refused["field"], refused["code"], refused["value"]) == (2, "email", "suppressed", None)
    assert "erased" in refused["message"] and "may not be imported again" in refused["message"]
    with pytest.raises(ApiError):
        api.contact(ann)

    # repeating the request is harmless
    repeat = api.erase(ann, hubspot=True)
    assert repeat["contact"] is False and repeat["suppressed"] is True
    assert repeat["hubspot"]["status"] == "not_found" and repeat["source_files"] == 0
    assert "now suppressed" in repeat["message"]


def test_erasing_an_unknown_email_suppresses_it_and_bad_requests_are_4xx(runtime: LocalRuntime, api: ApiClient) -> None:
    email = f"nobody.{uuid.uuid4().hex[:8]}@example.org"
    report = api.erase(email)
    assert report["contact"] is False and report["suppressed"] is True and report["hubspot"]["status"] == "skipped"
    with pytest.raises(ApiError) as bad:
        api.erase("not an email")
    assert (bad.value.status, bad.value.code) == (400, "invalid_email")
    with pytest.raises(ApiError) as flag:
        api._request("DELETE", f"/contacts/{email}", params={"hubspot": "perhaps"})
    assert flag.value.status == 400
    unauthenticated = httpx.delete(f"{runtime.api_url}/contacts/{email}", timeout=30)
    assert unauthenticated.status_code == 401


def test_the_cli_erases(runtime: LocalRuntime, cli_key: str, capsys: pytest.CaptureFixture[str]) -> None:
    email = f"cli.{uuid.uuid4().hex[:8]}@example.org"
    assert main(["erase", email, "--api-url", runtime.api_url, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["email"] == email and printed["suppressed"] is True
    assert main(["erase", email, "--api-url", runtime.api_url]) == 0
    out = capsys.readouterr().out
    assert f"no contact {email}" in out and "suppressed" in out and "hubspot" in out
