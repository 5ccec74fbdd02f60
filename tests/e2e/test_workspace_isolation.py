"""A key never reads or changes another workspace: every documented route, called with workspace B's key against
workspace A's data, through the local runtime. Adding a route without a probe here fails the suite."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from leadpipe_local.runtime import LocalRuntime

SUFFIX = uuid.uuid4().hex[:8]
A, B = f"iso-a-{SUFFIX}", f"iso-b-{SUFFIX}"
DOMAIN = f"iso-{SUFFIX}.example.com"
EMAILS = [f"p{i}@{DOMAIN}" for i in range(3)]
PORTAL = 700_000 + int(SUFFIX[:4], 16)
PUBLIC = {"GET /openapi.json", "POST /webhooks/hubspot", "GET /"}  # GET /: the console page (no data; docs/console.md)


@dataclass
class Caller:
    runtime: LocalRuntime
    workspace: str

    def __call__(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        kwargs["headers"] = self.runtime.auth_headers(self.workspace) | kwargs.get("headers", {})
        return httpx.request(method, self.runtime.api_url + path, timeout=60, **kwargs)

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self(method, path, **kwargs)
        assert response.status_code < 300, (method, path, response.status_code, response.text[:400])
        return response.json() if response.content else None


@dataclass
class World:
    runtime: LocalRuntime
    a: Caller
    b: Caller
    job_id: str
    a_key_id: str
    dlq_message_id: str
    snapshot: dict[str, Any] = field(default_factory=dict)


def _people_csv() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Email", "First Name", "Company", "Website", "Job Title", "Tags"])
    for i, email in enumerate(EMAILS):
        writer.writerow([email, f"Iso {i}", "Iso Co", DOMAIN, "Head of Sales", "vip"])
    return out.getvalue().encode()


def _ssm_values(runtime: LocalRuntime, workspace: str) -> dict[str, str]:
    ssm = runtime.client("ssm")
    found: dict[str, str] = {}
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path="/", Recursive=True, WithDecryption=True):
        for p in page["Parameters"]:
            if f"/workspaces/{workspace}/" in p["Name"]:
                found[p["Name"]] = p["Value"]
    return found


def _dlq_url(runtime: LocalRuntime) -> str:
    assert runtime.provisioned is not None
    return str(runtime.provisioned.ref("ImportDLQ"))


def _view_of_a(w: World) -> dict[str, Any]:
    """Everything A can see of its own data; compared before and after B's probes."""
    a = w.a
    contacts = {e: a.ok("GET", f"/contacts/{quote(e)}") for e in EMAILS}
    return {
        "contacts": contacts,
        "engagements": a.ok("GET", f"/contacts/{quote(EMAILS[0])}/engagements"),
        "listing": sorted(c["email"] for c in a.ok("GET", "/contacts", params={"domain": DOMAIN})["items"]),
        "job": {k: v for k, v in a.ok("GET", f"/imports/{w.job_id}").items() if k != "progress"},
        "keys": a.ok("GET", "/keys")["items"],
        "settings": a.ok("GET", "/settings"),
        "sync_settings": a.ok("GET", "/settings/sync"),
        "ssm": _ssm_values(w.runtime, A),
        "status_counts": a.ok("GET", "/status")["counts"],
        "summary": a.ok("GET", "/summary"),
        "deals": a.ok("GET", "/deals/enrichment/status"),
        "dlq": sorted(
            m["message_id"] for q in a.ok("GET", "/dlq")["queues"] if q["queue"] == "import" for m in q["messages"]
        ),
    }


@pytest.fixture(scope="module")
def world(runtime: LocalRuntime) -> World:
    a, b = Caller(runtime, A), Caller(runtime, B)
    job = a.ok("POST", "/imports?filename=iso.csv", content=_people_csv(), headers={"content-type": "text/csv"})
    runtime.wait_until_idle(90)
    assert a.ok("GET", f"/imports/{job['job_id']}")["counts"]["imported"] == 3
    a.ok("PATCH", f"/contacts/{quote(EMAILS[0])}", json={"custom": {"set": {"segment": "enterprise"}}})
    a.ok("POST", f"/contacts/{quote(EMAILS[0])}/engagements", json={"type": "email_opened", "id": "open-1"})
    a.ok("PUT", "/settings", json={"min_quality": 0.55})
    a.ok("PUT", "/settings/hubspot", json={"portal_id": PORTAL})
    a.ok("PUT", "/settings/providers/hunter", json={"api_key": f"hunter-secret-of-{A}"})
    a_key = a.ok("POST", "/keys", json={"name": "a's second key"})
    # a dead letter of A's, waiting in the import DLQ
    sqs = runtime.client("sqs")
    body = json.dumps({"type": "import.run", "workspace": A, "job_id": "imp_00000000000000000000000000"})
    sent = sqs.send_message(QueueUrl=_dlq_url(runtime), MessageBody=body)
    runtime.wait_until_idle(60)
    w = World(runtime, a, b, job["job_id"], a_key["key_id"], sent["MessageId"])
    w.snapshot = _view_of_a(w)
    assert w.dlq_message_id in w.snapshot["dlq"]
    return w


# ---------------------------------------------------------------------------------------------- the probes
# Each is B's request against A's data, and what B must (not) see. A's own view is compared afterwards.


def _no_a_contacts(rows: list[dict[str, Any]]) -> None:
    assert not {r["email"] for r in rows} & set(EMAILS)


def probe_import_body(w: World) -> None:
    job = w.b.ok(
        "POST", "/imports?filename=b.csv", content=b"email\nb-only@b.example\n", headers={"content-type": "text/csv"}
    )
    assert job["workspace"] == B


def probe_upload(w: World) -> None:
    answer = w.b.ok("POST", "/imports/uploads", json={"filename": f"../../{A}/x.csv"})
    assert answer["upload"]["key"].startswith(f"incoming/uploads/{B}/")


def probe_list_imports(w: World) -> None:
    assert w.job_id not in [j["job_id"] for j in w.b.ok("GET", "/imports", params={"limit": 100})["items"]]


def probe_get_import(w: World) -> None:
    assert w.b("GET", f"/imports/{w.job_id}").status_code == 404


def probe_list_contacts(w: World) -> None:
    assert w.b.ok("GET", "/contacts", params={"domain": DOMAIN})["items"] == []
    _no_a_contacts(w.b.ok("GET", "/contacts", params={"tag": "vip", "limit": 100})["items"])


def probe_get_contact(w: World) -> None:
    assert w.b("GET", f"/contacts/{quote(EMAILS[0])}").status_code == 404


def probe_patch_contact(w: World) -> None:
    response = w.b("PATCH", f"/contacts/{quote(EMAILS[0])}", json={"tags": {"remove": ["vip"]}, "do_not_enrich": True})
    assert response.status_code == 404


def probe_erase_contact(w: World) -> None:
    answer = w.b.ok("DELETE", f"/contacts/{quote(EMAILS[1])}")  # B suppresses the email in B only
    assert answer["contact"] is False


def probe_export(w: World) -> None:
    response = w.b("GET", "/contacts/export", follow_redirects=True)
    assert response.status_code == 200, response.text[:300]
    assert DOMAIN not in response.text


def probe_bulk_tags(w: World) -> None:
    answer = w.b.ok("POST", "/contacts/tags", json={"emails": EMAILS, "add": ["stolen"], "remove": ["vip"]})
    assert sorted(answer["not_found"]) == sorted(EMAILS)


def probe_record_engagement(w: World) -> None:
    response = w.b("POST", f"/contacts/{quote(EMAILS[0])}/engagements", json={"type": "meeting_booked"})
    assert response.status_code == 404


def probe_list_engagements(w: World) -> None:
    assert w.b("GET", f"/contacts/{quote(EMAILS[0])}/engagements").status_code == 404


def probe_enrich(w: World) -> None:
    answer = w.b.ok("POST", "/enrich", json={"emails": EMAILS})
    assert answer["queued"] == 0 and sorted(answer["not_found"]) == sorted(EMAILS)
    assert w.b.ok("POST", "/enrich", json={"filter": {"domain": DOMAIN}})["queued"] == 0


def probe_sync(w: World) -> None:
    answer = w.b.ok("POST", "/sync", json={"emails": EMAILS})
    assert answer["queued"] == 0 and sorted(answer["not_found"]) == sorted(EMAILS)


def probe_sync_log(w: World) -> None:
    assert DOMAIN not in json.dumps(w.b.ok("GET", "/sync/log"))


def probe_get_sync_settings(w: World) -> None:
    assert w.b.ok("GET", "/settings/sync")  # B's own (defaults)


def probe_put_sync_settings(w: World) -> None:
    current = w.b.ok("GET", "/settings/sync")
    current["options"]["logActivity"] = False
    w.b.ok("PUT", "/settings/sync", json=current)


def probe_get_settings(w: World) -> None:
    mine = w.b.ok("GET", "/settings")
    assert mine["workspace"] == B and PORTAL not in json.dumps(mine).split()


def probe_put_settings(w: World) -> None:
    w.b.ok("PUT", "/settings", json={"min_quality": 0.95, "auto_enrich_on_import": False})


def probe_put_hubspot(w: World) -> None:
    taken = w.b("PUT", "/settings/hubspot", json={"portal_id": PORTAL, "token": "pat-b"})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "portal_taken"


def probe_put_provider_key(w: World) -> None:
    w.b.ok("PUT", "/settings/providers/hunter", json={"api_key": "hunter-of-b"})


def probe_delete_provider_key(w: World) -> None:
    w.b.ok("DELETE", "/settings/providers/hunter")


def probe_status(w: World) -> None:
    status = w.b.ok("GET", "/status")
    assert status["workspace"] == B and status["total"] < 3  # B's one import at most, never A's three


def probe_summary(w: World) -> None:
    assert DOMAIN not in json.dumps(w.b.ok("GET", "/summary"))


def probe_activity(w: World) -> None:
    assert w.job_id not in json.dumps(w.b.ok("GET", "/activity", params={"limit": 100}))


def probe_dlq(w: World) -> None:
    listed = json.dumps(w.b.ok("GET", "/dlq"))
    assert w.dlq_message_id not in listed and A not in listed


def probe_redrive(w: World) -> None:
    w.b.ok("POST", "/dlq/import/redrive", json={"max": 100})  # moves B's messages only


def probe_start_deals(w: World) -> None:
    # B has no HubSpot token of its own: the deployment's (the default workspace's) must not open a portal for it
    response = w.b("POST", "/deals/enrichment", json={"lookbackMonths": 6})
    assert response.status_code == 400 and response.json()["error"]["code"] == "no_hubspot_token", response.text


def probe_deal_status(w: World) -> None:
    assert w.b("GET", "/deals/enrichment/status").status_code in {200, 404}


def probe_deal_summary(w: World) -> None:
    assert w.b("GET", "/deals/enrichment/summary").status_code in {200, 404}


def probe_list_keys(w: World) -> None:
    assert w.a_key_id not in [k["key_id"] for k in w.b.ok("GET", "/keys")["items"]]


def probe_create_key(w: World) -> None:
    assert w.b.ok("POST", "/keys", json={"name": "b"})["workspace"] == B


def probe_revoke_key(w: World) -> None:
    assert w.b("DELETE", f"/keys/{w.a_key_id}").status_code == 404


PROBES: dict[str, Callable[[World], None]] = {
    "POST /imports": probe_import_body,
    "POST /imports/uploads": probe_upload,
    "GET /imports": probe_list_imports,
    "GET /imports/{job_id}": probe_get_import,
    "GET /contacts": probe_list_contacts,
    "GET /contacts/{email}": probe_get_contact,
    "PATCH /contacts/{email}": probe_patch_contact,
    "DELETE /contacts/{email}": probe_erase_contact,
    "GET /contacts/export": probe_export,
    "POST /contacts/tags": probe_bulk_tags,
    "POST /contacts/{email}/engagements": probe_record_engagement,
    "GET /contacts/{email}/engagements": probe_list_engagements,
    "POST /enrich": probe_enrich,
    "POST /sync": probe_sync,
    "GET /sync/log": probe_sync_log,
    "GET /settings/sync": probe_get_sync_settings,
    "PUT /settings/sync": probe_put_sync_settings,
    "GET /settings": probe_get_settings,
    "PUT /settings": probe_put_settings,
    "PUT /settings/hubspot": probe_put_hubspot,
    "PUT /settings/providers/{name}": probe_put_provider_key,
    "DELETE /settings/providers/{name}": probe_delete_provider_key,
    "GET /status": probe_status,
    "GET /summary": probe_summary,
    "GET /activity": probe_activity,
    "GET /dlq": probe_dlq,
    "POST /dlq/{queue}/redrive": probe_redrive,
    "POST /deals/enrichment": probe_start_deals,
    "GET /deals/enrichment/status": probe_deal_status,
    "GET /deals/enrichment/summary": probe_deal_summary,
    "GET /keys": probe_list_keys,
    "POST /keys": probe_create_key,
    "DELETE /keys/{key_id}": probe_revoke_key,
}


def test_every_documented_route_has_a_probe(runtime: LocalRuntime) -> None:
    spec = httpx.get(runtime.api_url + "/openapi.json", timeout=30).json()
    documented = {f"{m.upper()} {p}" for p, ops in spec["paths"].items() for m in ops} - PUBLIC
    assert documented == set(PROBES), {"without a probe": documented - set(PROBES), "gone": set(PROBES) - documented}


@pytest.mark.parametrize("route", list(PROBES))
def test_a_key_of_another_workspace_cannot_reach_it(world: World, route: str) -> None:
    PROBES[route](world)


def test_workspace_a_is_exactly_as_it_was(world: World) -> None:
    world.runtime.wait_until_idle(60)
    after = _view_of_a(world)
    for part, before in world.snapshot.items():
        assert after[part] == before, part
    # and A's keys all still work, its provider key is A's own
    assert world.a.ok("GET", "/status")["workspace"] == A
    assert f"hunter-secret-of-{A}" in after["ssm"].values()
