"""Enrichment end to end: import -> AutoEnrich rule -> EnrichQueue -> enrich function, POST /enrich, the status
endpoint, a real provider adapter against its local fake, and AutoEnrichOnImport=false."""

from __future__ import annotations

import csv
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadpipe_local.client import ApiClient
from leadpipe_local.fakes.apollo import FakeApollo
from leadpipe_local.runtime import LocalRuntime
from tests.conftest import ROOT, TEMPLATE
from tests.e2e.conftest import wait_until

COMPANIES = list(csv.DictReader((ROOT / "shared/leadpipe/data/companies.csv").open(encoding="utf-8")))
KNOWN = {c["domain"]: c for c in COMPANIES}


def known_domains(n: int) -> list[str]:
    web = {r["domain"] for r in csv.DictReader((ROOT / "shared/leadpipe/data/companies_web.csv").open())}
    return [c["domain"] for c in COMPANIES if c["domain"] in web][:n]


def people_csv(emails: list[tuple[str, str]], tag: str) -> bytes:
    rows = "".join(f"{email},{first},Tester,Head of Sales,{tag}\n" for email, first in emails)
    return ("Email,First Name,Last Name,Job Title,Tags\n" + rows).encode()


def test_imported_contacts_are_enriched_automatically(api: ApiClient) -> None:
    tag = f"t{uuid.uuid4().hex[:8]}"
    domains = known_domains(3)
    people = [(f"{tag}.ann@{domains[0]}", "Ann"), (f"{tag}.bo@{domains[1]}", "Bo"), (f"{tag}@gmail.com", "Cy")]
    job = api.import_csv(people_csv(people, tag), "auto.csv")
    api.wait_job(job["job_id"], timeout=30)
    enriched = wait_until(
        lambda: api.contacts(tag=tag, limit=10)["items"],
        lambda items: len(items) == 3 and all(c["status"] == "enriched" for c in items),
        what="three enriched contacts",
    )
    by_email = {c["email"]: c for c in enriched}
    ann = by_email[people[0][0]]
    company = KNOWN[domains[0]]
    assert ann["enrichment"]["company_country"]["value"] == company["country"]
    assert ann["enrichment"]["company_country"]["provider"] == "sample"
    assert ann["enrichment"]["seniority"] == {
        "value": "head",
        "provider": "sample-web",
        "confidence": pytest.approx(0.7, abs=0.05),
        "fetched_at": ann["enrichment"]["seniority"]["fetched_at"],
        "agreed_by": [],
        "conflicts": [],
    }
    assert ann["enrichment"]["first_name"]["provider"] == "import"
    meta = ann["enrichment_meta"]
    assert meta["sources_asked"] == ["sample", "sample-web"]
    assert meta["request_id"] == f"imp-{job['job_id']}-r2.0"  # the AutoEnrich path, named by the import's chunk
    assert sorted(meta["skipped"]) == ["apollo", "dropcontact", "hunter", "pdl"]
    assert 0 < ann["quality"] <= 1
    # a free-mail contact has no company: lower quality, kept with the reason below_threshold
    cy = by_email[people[2][0]]
    assert cy["enrichment"]["email_status"]["value"] == "webmail"
    assert cy["status_reason"] == "below_threshold" and cy["enrichment_meta"]["below_threshold"] is True
    assert "company_name" not in cy["enrichment"]
    listed = api.contacts(status="enriched", tag=tag, limit=10)["items"]
    assert {c["email"] for c in listed} == set(by_email)


def test_status_reports_the_waterfall_and_who_is_skipped(api: ApiClient) -> None:
    providers = {p["name"]: p for p in api.status()["providers"]}
    assert [p["name"] for p in sorted(providers.values(), key=lambda p: p["position"])] == [
        "sample",
        "sample-web",
        "apollo",
        "pdl",
        "hunter",
        "dropcontact",
    ]
    assert providers["sample"]["enabled"] is True and providers["sample"]["reason"] is None
    assert providers["apollo"] == providers["apollo"] | {"enabled": False, "reason": "no API key", "batch_size": 10}
    assert providers["dropcontact"]["asynchronous"] is True


def test_post_enrich_by_emails_and_by_filter(api: ApiClient, runtime: LocalRuntime) -> None:
    tag = f"t{uuid.uuid4().hex[:8]}"
    domain = known_domains(4)[3]
    people = [(f"{tag}.{i}@{domain}", f"P{i}") for i in range(3)]
    api.wait_job(api.import_csv(people_csv(people, tag), "manual.csv")["job_id"], timeout=30)
    runtime.wait_until_idle(60)  # the automatic enrichment is done
    response = httpx.post(
        runtime.api_url + "/enrich",
        json={
            "emails": [people[0][0].upper(), "nobody@nowhere.example", "not an email"],
            "options": {"cache": True, "includeCompany": True, "minQuality": 0.1},
        },
        headers=runtime.auth_headers(),
        timeout=30,
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["queued"] == 1 and body["messages"] == 1
    assert body["not_found"] == ["nobody@nowhere.example"]
    assert body["invalid"] == [{"value": "not an email", "reason": "the email contains spaces"}]
    # echoed in the names the request used (the original system's)
    assert body["options"] == {"cache": True, "includeCompany": True, "includeIntelligence": False, "minQuality": 0.1}
    contact = wait_until(
        lambda: api.contact(people[0][0]),
        lambda c: c["enrichment_meta"]["request_id"] == body["request_id"] and c["status"] == "enriched",
        what="the manual request",
    )
    assert contact["status_reason"] is None and contact["enrichment_meta"]["min_quality"] == 0.1
    assert contact["enrichment_meta"]["cache_hits"] >= 2  # inside the TTL: answers came from the cache

    by_filter = httpx.post(
        runtime.api_url + "/enrich", json={"filter": {"tag": tag}}, headers=runtime.auth_headers(), timeout=30
    ).json()
    assert by_filter["queued"] == 3 and by_filter["not_found"] == [] and by_filter["invalid"] == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"emails": ["a@b.co"], "filter": {"tag": "x"}},
        {"emails": []},
        {"filter": {"tag": "x"}, "limit": 10_001},
        {"emails": ["a@b.co"], "options": {"minQuality": 2}},
        {"emails": ["a@b.co"], "options": {"unknown": True}},
        {"filter": {"status": "bogus"}},
    ],
)
def test_post_enrich_refuses_a_bad_request(runtime: LocalRuntime, body: dict[str, Any]) -> None:
    response = httpx.post(runtime.api_url + "/enrich", json=body, headers=runtime.auth_headers(), timeout=30)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "validation_error"


def test_the_retry_schedules_go_through_every_workspace(runtime: LocalRuntime, domain: str) -> None:
    before = runtime.fire_schedule("EnrichFunction", "RetryDue")
    assert before["requeued"] == 0
    runtime.api_key(f"w{uuid.uuid4().hex[:8]}")  # a new workspace: registered with its first key
    with runtime.api_client(f"i{uuid.uuid4().hex[:8]}") as other:  # and another, with an import
        other.wait_job(other.import_csv(f"Email\nsomeone@{domain}\n".encode(), "ws.csv")["job_id"], timeout=30)
    runtime.wait_until_idle(60)
    for function in ("EnrichFunction", "SyncFunction"):
        after = runtime.fire_schedule(function, "RetryDue")
        assert after["workspaces"] >= before["workspaces"] + 2 and after["requeued"] == 0, after


# ------------------------------------------------------------------------------------------------ other runtimes


def test_a_real_adapter_keyed_from_ssm_answers_through_the_runtime(tmp_path: Path, apollo: FakeApollo) -> None:
    domain = known_domains(5)[4]
    apollo.add_person(
        "maya.ortiz@" + domain,
        first_name="Maya",
        last_name="Ortiz",
        title="VP Revenue Operations",
        seniority="vp",
        departments=["master_sales"],
        linkedin_url="http://www.linkedin.com/in/maya-ortiz-revops",
        organization_domain=domain,
    )
    rt = LocalRuntime(
        TEMPLATE,
        api_port=0,
        state_dir=tmp_path,
        retry_delay=0,
        parameters={"EnrichProviders": "apollo,sample"},
        env_overrides={"EnrichFunction": {"APOLLO_BASE_URL": apollo.url}, "ApiFunction": {}},
    )
    with rt, rt.api_client() as api:
        # Keys are read with a 5-minute cache per container: store it before anything asks.
        rt.client("ssm").put_parameter(
            Name="/leadpipe/dev/workspaces/default/providers/apollo", Value="apollo-test-key", Type="SecureString"
        )
        assert [(p["name"], p["enabled"]) for p in api.status()["providers"]] == [("apollo", True), ("sample", True)]
        job = api.import_csv(f"Email,Job Title\nmaya.ortiz@{domain},Head of RevOps\n".encode(), "apollo.csv")
        api.wait_job(job["job_id"], timeout=30)
        contact = wait_until(
            lambda: api.contact("maya.ortiz@" + domain),
            lambda c: c["status"] == "enriched",
            what="enrichment through Apollo",
        )
    fields = contact["enrichment"]
    assert fields["last_name"]["provider"] == "apollo" and fields["last_name"]["value"] == "Ortiz"
    assert fields["linkedin"]["value"] == "https://www.linkedin.com/in/maya-ortiz-revops"
    assert fields["title"]["value"] == "VP Revenue Operations" or fields["title"]["conflicts"]
    assert contact["enrichment_meta"]["sources_asked"][0] == "apollo"
    assert apollo.calls("bulk_match")  # the adapter really went over HTTP to the fake
    sent = json.loads(apollo.calls("bulk_match")[0].body)
    assert sent["details"][0]["email"] == "maya.ortiz@" + domain


def test_without_auto_enrich_imports_are_not_enriched_and_post_enrich_still_works(tmp_path: Path) -> None:
    rt = LocalRuntime(
        TEMPLATE, api_port=0, state_dir=tmp_path, retry_delay=0, parameters={"AutoEnrichOnImport": "false"}
    )
    with rt, rt.api_client() as api:
        # the rule exists (a workspace may switch auto-enrich on); the enrich function drops its events here
        bus = rt.provisioned.ref("EventBus")  # type: ignore[union-attr]
        assert any("AutoEnrich" in r["Name"] for r in rt.client("events").list_rules(EventBusName=bus)["Rules"])
        domain = known_domains(1)[0]
        job = api.import_csv(f"Email\nsolo@{domain}\n".encode(), "manual.csv")
        api.wait_job(job["job_id"], timeout=30)
        rt.wait_until_idle(30)
        assert api.contact(f"solo@{domain}")["status"] == "imported"
        assert api.status()["config"]["auto_enrich_on_import"] is False
        accepted = api.http.post("/enrich", json={"emails": [f"solo@{domain}"]}, timeout=30).json()
        assert accepted["queued"] == 1
        contact = wait_until(lambda: api.contact(f"solo@{domain}"), lambda c: c["status"] == "enriched")
        assert contact["enrichment"]["company_name"]["provider"] == "sample"


def test_enrich_and_sync_filters_take_custom_fields(api: ApiClient, runtime: LocalRuntime) -> None:
    tag = f"c{uuid.uuid4().hex[:8]}"
    domain = known_domains(4)[2]
    rows = "".join(f"{tag}.{i}@{domain},P{i},{'webinar' if i < 2 else 'referral'}\n" for i in range(3))
    job = api.import_csv(f"Email,First Name,Lead Source\n{rows}".encode(), "custom.csv")
    api.wait_job(job["job_id"], timeout=30)
    runtime.wait_until_idle(60)
    for path in ("/enrich", "/sync"):
        chosen = api.http.post(path, json={"filter": {"domain": domain, "custom": {"lead_source": "webinar"}}})
        assert chosen.status_code == 202, chosen.text
        assert chosen.json()["queued"] == 2
        refused = api.http.post(path, json={"filter": {"custom": {"Lead Source": "webinar"}}})
        assert refused.status_code == 400 and "lead_source" in refused.text  # says which key to use
    runtime.wait_until_idle(60)
