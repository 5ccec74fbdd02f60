"""The change loop end to end, over real HTTP: the HubSpot fake sends signed webhooks to the local stack's
``POST /webhooks/hubspot``; the webhook function queues them; the import function reads the changed contacts back
and compares; a person's edit restarts enrichment and sync (both automation switches on); leadpipe's own writes
coming back are dropped -- and the loop settles."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from leadpipe_local.client import ApiClient
from leadpipe_local.runtime import LocalRuntime
from tests.conftest import TEMPLATE
from tests.e2e.test_enrichment import known_domains, people_csv, wait_until


@pytest.fixture(scope="module")
def loop_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    rt = LocalRuntime(
        TEMPLATE,
        api_port=0,
        state_dir=tmp_path_factory.mktemp("loop"),
        retry_delay=0,
        # both switches on; a lower MinQuality so that every test contact goes on to sync
        parameters={"AutoSyncAfterEnrich": "true", "AutoEnrichOnImport": "true", "MinQuality": "0.5"},
    )
    rt.start()
    rt.hubspot.webhook_delay = 0.05
    try:
        yield rt
    finally:
        rt.stop()


@pytest.fixture
def loop_api(loop_runtime: LocalRuntime) -> Iterator[ApiClient]:
    with loop_runtime.api_client() as client:
        yield client


def settled(runtime: LocalRuntime, quiet: float = 1.5, timeout: float = 90) -> None:
    """Until nothing is queued, invoked or waiting to be delivered as a webhook, for ``quiet`` seconds."""
    fake = runtime.hubspot
    deadline = time.monotonic() + timeout
    while True:
        runtime.wait_until_idle(timeout=max(1.0, deadline - time.monotonic()))
        before = (fake.counts()["api_calls"], len(fake.delivered), len(fake.events))
        time.sleep(quiet)
        runtime.wait_until_idle(timeout=max(1.0, deadline - time.monotonic()))
        if (fake.counts()["api_calls"], len(fake.delivered), len(fake.events)) == before:
            return
        if time.monotonic() > deadline:
            raise TimeoutError("the loop did not settle")


def writes(runtime: LocalRuntime) -> list[Any]:
    """HubSpot write requests leadpipe made (everything but reads and searches)."""
    return [
        r
        for r in runtime.hubspot.requests
        if r.method in ("POST", "PATCH", "PUT", "DELETE")
        and not r.path.startswith("/_fake")
        and not r.path.endswith(("/batch/read", "/search"))
    ]


def test_a_persons_edit_goes_round_the_loop_once_and_settles(loop_runtime: LocalRuntime, loop_api: ApiClient) -> None:
    runtime, api, fake = loop_runtime, loop_api, loop_runtime.hubspot
    tag = f"t{uuid.uuid4().hex[:8]}"
    domain = known_domains(12)[3]
    people = [(f"{tag}.{i}@{domain}", f"P{i}") for i in range(3)]
    api.wait_job(api.import_csv(people_csv(people, tag), f"{tag}.csv")["job_id"], timeout=30)
    emails = [e for e, _ in people]
    synced = wait_until(
        lambda: [api.contact(e) for e in emails],
        lambda cs: all(c["status"] == "synced" for c in cs),
        what="the imported contacts enriched and synced automatically",
        timeout=60,
    )
    settled(runtime)
    # leadpipe's own writes came back as webhooks (changeSource INTEGRATION) and were dropped: nothing restarted
    assert all(d["status"] == 200 for d in fake.delivered), [d["status"] for d in fake.delivered]
    assert any(e.get("changeSource") == "INTEGRATION" for e in fake.events)
    assert [api.contact(e)["status"] for e in emails] == ["synced"] * 3
    writes_before = len(writes(runtime))

    # A person edits one contact's job title in HubSpot.
    contact_id = synced[0]["hubspot"]["contact_id"]
    edited = httpx.patch(
        f"{fake.url}/_fake/contacts/{contact_id}", json={"properties": {"jobtitle": "VP Revenue (edited)"}}, timeout=10
    )
    assert edited.status_code == 200
    after = wait_until(
        lambda: api.contact(emails[0]),
        lambda c: (
            c["title"] == "VP Revenue (edited)"
            and c["status"] == "synced"
            and c["hubspot"]["synced_at"] != synced[0]["hubspot"]["synced_at"]
        ),
        what="the edit taken in, re-enriched and synced again",
        timeout=60,
    )
    settled(runtime)
    assert after["hubspot"]["observed"]["jobtitle"] == "VP Revenue (edited)"
    assert fake.get("contacts", contact_id)["jobtitle"] == "VP Revenue (edited)"  # the person's edit kept
    # One more round for that contact only; the others untouched; then quiet.
    assert [api.contact(e)["hubspot"]["synced_at"] for e in emails[1:]] == [
        c["hubspot"]["synced_at"] for c in synced[1:]
    ]
    new_writes = writes(runtime)[writes_before:]
    assert new_writes, "the restarted contact was synced again"
    quiet_writes = len(writes(runtime))
    time.sleep(3)
    runtime.wait_until_idle(timeout=30)
    assert len(writes(runtime)) == quiet_writes  # no ping-pong


def test_a_badly_signed_or_malformed_delivery_is_refused(loop_runtime: LocalRuntime) -> None:
    url = loop_runtime.api_url + "/webhooks/hubspot"
    fake = loop_runtime.hubspot
    body = '[{"eventId":1,"subscriptionId":2,"portalId":%d,"occurredAt":3,"subscriptionType":"contact.propertyChange",'
    body = (body + '"objectId":4}]') % fake.portal_id
    now = str(int(time.time() * 1000))
    unsigned = httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=10)
    assert unsigned.status_code == 401 and unsigned.json()["error"]["code"] == "missing_signature"
    wrong = httpx.post(
        url,
        content=body,
        headers={"x-hubspot-signature-v3": "bm9wZQ==", "x-hubspot-request-timestamp": now},
        timeout=10,
    )
    assert wrong.status_code == 401
    malformed = httpx.post(
        url, content="[{", headers={"x-hubspot-signature-v3": "x", "x-hubspot-request-timestamp": now}, timeout=10
    )
    assert malformed.status_code == 400


def test_post_imports_hubspot_brings_the_portals_contacts_in(loop_runtime: LocalRuntime, loop_api: ApiClient) -> None:
    fake = loop_runtime.hubspot
    tag = uuid.uuid4().hex[:6]
    created = httpx.post(
        f"{fake.url}/crm/v3/objects/contacts/batch/create",
        json={
            "inputs": [{"properties": {"email": f"hs{i}.{tag}@portal.example", "firstname": f"H{i}"}} for i in range(3)]
        },
        headers={"Authorization": f"Bearer {fake.token}"},
        timeout=10,
    )
    created.raise_for_status()
    ids = {r["properties"]["email"]: r["id"] for r in created.json()["results"]}
    bad = httpx.post(
        loop_runtime.api_url + "/imports", json={"source": "lemlist"}, headers=loop_runtime.auth_headers(), timeout=10
    )
    assert bad.status_code == 400 and "campaign_id" in bad.json()["error"]["message"]
    response = httpx.post(
        loop_runtime.api_url + "/imports", json={"source": "hubspot"}, headers=loop_runtime.auth_headers(), timeout=10
    )
    assert response.status_code == 202, response.text
    job = loop_api.wait_job(response.json()["job_id"], timeout=60)
    assert job["status"] == "completed" and job["source"] == "hubspot"
    assert job["counts"]["rows_read"] == fake.counts()["contacts"] and job["counts"]["invalid"] == 0
    for email, contact_id in ids.items():
        contact = loop_api.contact(email)
        assert contact["hubspot"]["contact_id"] == contact_id and contact["sources"][0]["source"] == "hubspot"


def test_the_cli_imports_the_portal(
    loop_runtime: LocalRuntime, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from leadpipe_local.cli import main

    monkeypatch.setenv("LEADPIPE_API_KEY", loop_runtime.api_key())
    url = ["--api-url", loop_runtime.api_url]
    assert main(["import", "--hubspot", *url]) == 0
    out = capsys.readouterr().out
    assert "completed" in out and "(hubspot: portal)" in out
    assert main(["import", *url]) == 2  # neither a file nor a source
    assert "give a CSV file" in capsys.readouterr().err
