"""Closed-deal enrichment through the local runtime: deals seeded in the HubSpot fake (two pipelines, one with its own
stage ids), POST /deals/enrichment -> DealQueue -> deals function, the status and summary, every contact's ICP fit,
HubSpot's leadpipe_icp_fit after a sync, and the monthly schedule."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from leadpipe_local.client import ApiClient
from leadpipe_local.runtime import LocalRuntime
from tests.e2e.test_enrichment import known_domains, wait_until


def seed_people(runtime: LocalRuntime, people: list[dict[str, str]]) -> list[str]:
    fake = runtime.hubspot
    answer = httpx.post(
        f"{fake.url}/crm/v3/objects/contacts/batch/create",
        json={"inputs": [{"properties": p} for p in people]},
        headers={"Authorization": f"Bearer {fake.token}"},
        timeout=10,
    )
    answer.raise_for_status()
    by_email = {r["properties"]["email"]: str(r["id"]) for r in answer.json()["results"]}
    return [by_email[p["email"]] for p in people]


def seed_company(runtime: LocalRuntime, domain: str, name: str, industry: str, employees: int) -> str:
    fake = runtime.hubspot
    answer = httpx.post(
        f"{fake.url}/crm/v3/objects/companies",
        json={
            "properties": {"domain": domain, "name": name, "industry": industry, "numberofemployees": str(employees)}
        },
        headers={"Authorization": f"Bearer {fake.token}"},
        timeout=10,
    )
    answer.raise_for_status()
    return str(answer.json()["id"])


def test_closed_deals_are_enriched_and_the_icp_profile_scores_every_contact(
    runtime: LocalRuntime, api: ApiClient
) -> None:
    fake = runtime.hubspot
    tag = uuid.uuid4().hex[:6]
    now = datetime.now(UTC)
    enterprise = fake.add_pipeline(
        "Enterprise",
        [("e-open", "Talking", 0.3, False), ("9912345", "Signed", 1.0, True), ("9912399", "Gone", 0.0, True)],
    )
    domains = known_domains(12)
    deals: dict[str, str] = {}
    for i in range(4):  # won: software companies, decision makers
        domain = f"won{i}-{tag}.example"
        company = seed_company(runtime, domain, f"Won {i}", "COMPUTER_SOFTWARE", 120)
        people = seed_people(
            runtime,
            [
                {"email": f"ceo{i}.{tag}@{domain}", "firstname": "Cee", "jobtitle": "CEO"},
                {"email": f"vp{i}.{tag}@{domain}", "firstname": "Vee", "jobtitle": "VP Sales"},
            ],
        )
        won_stage, pipeline = ("9912345", enterprise) if i % 2 else ("closedwon", "default")
        deals[
            fake.add_deal(
                f"won {i}",
                stage=won_stage,
                pipeline=pipeline,
                amount=10_000.0 + i,
                closed_at=now - timedelta(days=20 + i),
                contact_ids=people,
                company_ids=[company],
            )
        ] = "won"
    for i in range(3):  # lost: retail, individual contributors
        domain = f"lost{i}-{tag}.example"
        company = seed_company(runtime, domain, f"Lost {i}", "RETAIL", 8)
        people = seed_people(
            runtime, [{"email": f"ic{i}.{tag}@{domain}", "firstname": "Ike", "jobtitle": "Sales Associate"}]
        )
        lost_stage, pipeline = ("9912399", enterprise) if i % 2 else ("closedlost", "default")
        deals[
            fake.add_deal(
                f"lost {i}",
                stage=lost_stage,
                pipeline=pipeline,
                amount=3_000.0,
                closed_at=now - timedelta(days=30 + i),
                contact_ids=people,
                company_ids=[company],
            )
        ] = "lost"
    fake.add_deal("still open", stage="e-open", pipeline=enterprise, amount=1.0, closed_at=now + timedelta(days=9))
    fake.add_deal("too old", stage="closedwon", amount=1.0, closed_at=now - timedelta(days=400))
    del domains

    for bad in ({"lookbackMonths": 25}, {"limit": 101}, {"lookbackMonths": 0}, {"unknown": 1}):
        refused = httpx.post(
            runtime.api_url + "/deals/enrichment", json=bad, headers=runtime.auth_headers(), timeout=10
        )
        assert refused.status_code == 400, (bad, refused.text)

    run = api.start_deal_enrichment(lookback_months=6, limit=100)
    assert run["status"] == "queued" and run["lookback_months"] == 6
    done = api.wait_deal_run(run["run_id"])
    assert done["status"] == "completed", done
    counts = done["counts"]
    assert (counts["won"], counts["lost"]) == (4, 3)  # the open and the too-old deal left out
    assert counts["deal_contacts"] == 11 and counts["roles_resolved"] >= 8
    assert counts["accounts"] == 7 and counts["contacts_scored"] >= 11

    status = api.deal_status()
    assert status["stats"]["total_closed_deals"] >= 7 and status["last_run"]["run_id"] == run["run_id"]
    summary = api.deal_summary()
    ours = {d["deal_id"]: d for d in summary["deals"] if d["deal_id"] in deals}
    assert {k: v["outcome"] for k, v in ours.items()} == deals
    won_roles = {c["role"] for d in ours.values() if d["outcome"] == "won" for c in d["contacts"]}
    assert "decision_maker" in won_roles
    assert summary["won"]["industries"][0]["value"] == "COMPUTER_SOFTWARE"
    assert summary["icp"]["deals"] >= 7

    ceo = api.contact(f"ceo0.{tag}@won0-{tag}.example")
    ic = api.contact(f"ic0.{tag}@lost0-{tag}.example")
    assert ceo["icp"]["score"] > ic["icp"]["score"]
    assert "industry" in ceo["icp"]["explanation"]
    assert "deal:won" in ceo["tags"] and "deal:lost" in ic["tags"]

    # HubSpot follows: a sync writes leadpipe_icp_fit.
    accepted = api.sync([ceo["email"]])
    wait_until(
        lambda: api.contact(ceo["email"]),
        lambda c: (c["hubspot"] or {}).get("request_id") == accepted["request_id"] and c["status"] != "syncing",
        what="the sync",
    )
    stored = fake.get("contacts", ceo["hubspot"]["contact_id"])
    assert float(stored["leadpipe_icp_fit"]) == pytest.approx(ceo["icp"]["score"], abs=0.001)
    assert runtime.errors == []


def test_the_monthly_schedule_runs_last_months_deals(runtime: LocalRuntime, api: ApiClient) -> None:
    before = (api.deal_status().get("last_run") or {}).get("run_id")
    runtime.fire_schedule("DealsFunction", "Monthly")
    last: dict[str, Any] = wait_until(
        lambda: api.deal_status().get("last_run") or {},
        lambda r: r.get("run_id") != before and r.get("status") in ("completed", "failed"),
        what="the scheduled run",
    )
    assert (last["status"], last["trigger"], last["lookback_months"]) == ("completed", "schedule", 1)
