"""Workspace settings end to end, over real HTTP through the local runtime: a provider key stored for a workspace
(SSM SecureString) makes /status report the provider configured; the automation switch of one workspace keeps its
imports from being enriched while other workspaces' are; the HubSpot portal and client secret stored for a workspace
route that portal's signed webhooks to it; and no secret ever reaches a function's log.

The stack runs with WORKSPACE_CACHE_SECONDS=1 (60 s deployed), so the functions see a change within a second."""

from __future__ import annotations

import io
import json
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from leadpipe.changes.webhook import signed_uri
from leadpipe_local.cfn import load_template
from leadpipe_local.client import ApiError
from leadpipe_local.fakes.hubspot import signature_v3
from leadpipe_local.runtime import LocalRuntime
from tests.conftest import TEMPLATE
from tests.e2e.test_enrichment import known_domains, people_csv, wait_until

CACHE_SECONDS = 1.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    functions = [
        name
        for name, resource in load_template(TEMPLATE)["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    ]
    rt = LocalRuntime(
        TEMPLATE,
        api_port=0,
        state_dir=tmp_path_factory.mktemp("workspaces"),
        retry_delay=0,
        env_overrides={name: {"WORKSPACE_CACHE_SECONDS": str(CACHE_SECONDS)} for name in functions},
    )
    rt.start()
    try:
        yield rt
    finally:
        rt.stop()


def workspace() -> str:
    return f"ws-{uuid.uuid4().hex[:10]}"


def provider(status: dict[str, object], name: str) -> dict[str, object]:
    providers = status["providers"]
    assert isinstance(providers, list)
    found: dict[str, object] = next(p for p in providers if p["name"] == name)
    return found


def function_logs(runtime: LocalRuntime) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(Path(runtime.state_dir, "logs").glob("*.log")))


def test_a_provider_key_stored_for_a_workspace_shows_it_configured_and_never_its_value(stack: LocalRuntime) -> None:
    ws, other = workspace(), workspace()
    key = f"apollo-{uuid.uuid4().hex}"
    with stack.api_client(ws) as api, stack.api_client(other) as theirs:
        assert provider(api.status(), "apollo")["enabled"] is False
        stored = api.put_provider_key("apollo", key)
        assert stored["set"] is True and stored["source"] == "workspace" and stored["updated_at"]
        assert provider(api.status(), "apollo")["enabled"] is True  # this workspace now asks apollo
        assert provider(theirs.status(), "apollo")["enabled"] is False  # another workspace does not
        assert theirs.settings()["providers"]["apollo"]["set"] is False
        view = api.settings()
        assert view["providers"]["apollo"]["set"] is True and key not in json.dumps(view)

        with pytest.raises(ApiError) as unknown:
            api.put_provider_key("clearbit", key)
        assert unknown.value.status == 404 and unknown.value.code == "unknown_provider"

        removed = api.delete_provider_key("apollo")
        assert removed["removed"] is True and removed["set"] is False
        assert provider(api.status(), "apollo")["enabled"] is False
    stored_value = stack.client("ssm").get_parameters_by_path(Path=f"/leadpipe/dev/workspaces/{ws}", Recursive=True)
    assert stored_value["Parameters"] == []  # removed from Parameter Store
    assert key not in function_logs(stack)


def test_the_auto_enrich_switch_of_a_workspace_governs_only_its_automatic_path(stack: LocalRuntime) -> None:
    ws, other = workspace(), workspace()
    domain = known_domains(1)[0]
    with stack.api_client(ws) as api, stack.api_client(other) as theirs:
        switched = api.put_settings({"auto_enrich_on_import": False})
        assert switched["automation"]["auto_enrich_on_import"] == {
            "value": False,
            "source": "workspace",
            "deployment": True,
        }
        time.sleep(CACHE_SECONDS + 0.2)
        off = [(f"off{i}.{ws}@{domain}", f"Off{i}") for i in range(3)]
        api.wait_job(api.import_csv(people_csv(off, ws), "off.csv")["job_id"], timeout=30)
        default = [(f"on.{other}@{domain}", "Other")]  # a workspace that did not choose: the deployment's (on)
        theirs.wait_job(theirs.import_csv(people_csv(default, other), "other.csv")["job_id"], timeout=30)
        wait_until(lambda: theirs.contact(default[0][0]), lambda c: c["status"] == "enriched", what="default on")
        stack.wait_until_idle(30)
        assert [api.contact(e)["status"] for e, _ in off] == ["imported"] * 3

        # switched on, with a workspace threshold: the next import is enriched on its own, and judged by 0.99
        api.put_settings({"auto_enrich_on_import": True, "min_quality": 0.99})
        time.sleep(CACHE_SECONDS + 0.2)
        on = [(f"on{i}.{ws}@{domain}", f"On{i}") for i in range(2)]
        api.wait_job(api.import_csv(people_csv(on, ws), "on.csv")["job_id"], timeout=30)
        enriched = wait_until(
            lambda: [api.contact(e) for e, _ in on],
            lambda cs: all(c["status"] == "enriched" for c in cs),
            what="the second import enriched automatically",
        )
        assert {c["status_reason"] for c in enriched} == {"below_threshold"}
        assert {c["enrichment_meta"]["min_quality"] for c in enriched} == {0.99}
        assert [api.contact(e)["status"] for e, _ in off] == ["imported"] * 3  # not retroactive

        # an explicit request is never blocked by the switch
        api.put_settings({"auto_enrich_on_import": False, "min_quality": None})
        time.sleep(CACHE_SECONDS + 0.2)
        accepted = api.enrich([e for e, _ in off])
        assert accepted["queued"] == 3
        wait_until(
            lambda: [api.contact(e) for e, _ in off],
            lambda cs: all(c["status"] == "enriched" for c in cs),
            what="POST /enrich with auto-enrich off",
        )
        assert api.settings()["thresholds"]["min_quality"]["source"] == "deployment"


def test_a_portal_stored_for_a_workspace_routes_its_signed_webhooks_there(stack: LocalRuntime) -> None:
    ws = workspace()
    fake = stack.hubspot
    portal = random.randint(10_000_000, 99_999_999)
    secret = f"cs-{uuid.uuid4().hex}"
    email = f"hooked.{ws}@portal.example"
    created = httpx.post(
        f"{fake.url}/crm/v3/objects/contacts",
        json={"properties": {"email": email, "firstname": "Hooked"}},
        headers={"Authorization": f"Bearer {fake.token}"},
        timeout=10,
    )
    created.raise_for_status()
    object_id = int(created.json()["id"])
    url = stack.api_url + "/webhooks/hubspot"

    def deliver(signing_secret: str) -> httpx.Response:
        body = json.dumps(
            [
                {
                    "eventId": random.randint(1, 10**9),
                    "subscriptionId": 7,
                    "portalId": portal,
                    "appId": 1,
                    "occurredAt": int(time.time() * 1000),
                    "subscriptionType": "contact.propertyChange",
                    "attemptNumber": 0,
                    "objectId": object_id,
                    "propertyName": "firstname",
                    "propertyValue": "Hooked",
                    "changeSource": "CRM_UI",
                }
            ],
            separators=(",", ":"),
        )
        timestamp = str(int(time.time() * 1000))
        headers = {
            "content-type": "application/json",
            "x-hubspot-signature-v3": signature_v3(signing_secret, "POST", signed_uri(url), body, timestamp),
            "x-hubspot-request-timestamp": timestamp,
        }
        return httpx.post(url, content=body, headers=headers, timeout=10)

    unclaimed = deliver(secret)
    assert unclaimed.status_code == 403 and unclaimed.json()["error"]["code"] == "unknown_portal"

    with stack.api_client(ws) as api:
        assert api.settings()["hubspot"]["token"]["set"] is False  # the deployment's token is the default's only
        # the workspace's own app and token (here the fake portal's, which the import function reads changes with)
        view = api.put_hubspot_settings({"portal_id": portal, "client_secret": secret, "token": fake.token})
        assert view["hubspot"]["portal_id"] == portal
        for name in ("client_secret", "token"):
            assert view["hubspot"][name] == {
                "set": True,
                "source": "workspace",
                "updated_at": view["hubspot"][name]["updated_at"],
            }
        assert secret not in json.dumps(view) and fake.token not in json.dumps(view)
        wrong = deliver(fake.client_secret)  # the deployment's secret no longer verifies this portal's deliveries
        assert wrong.status_code == 401, wrong.text
        accepted = deliver(secret)
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["queued"] == 1
        page = wait_until(api.contacts, lambda page: any(c["email"] == email for c in page["items"]))
        assert [c["workspace"] for c in page["items"] if c["email"] == email] == [ws]

        # another workspace cannot take the portal
        with stack.api_client(workspace()) as thief, pytest.raises(ApiError) as taken:
            thief.put_hubspot_settings({"portal_id": portal})
        assert taken.value.status == 409
    logs = function_logs(stack)
    assert secret not in logs and fake.token not in logs


def test_the_cli_shows_and_changes_the_settings(
    stack: LocalRuntime, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from leadpipe_local.cli import main

    ws = workspace()
    monkeypatch.setenv("LEADPIPE_API_KEY", stack.api_key(ws))
    url = ["--api-url", stack.api_url]
    key = f"hunter-{uuid.uuid4().hex}"
    assert (
        main(["settings", "set", "min_quality=0.55", "auto_sync_after_enrich=true", "overwrite.jobtitle=always", *url])
        == 0
    )
    assert main(["settings", "hubspot", "--portal-id", str(random.randint(10_000_000, 99_999_999)), *url]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(key + "\n"))
    assert main(["settings", "provider", "hunter", "--api-key", "-", *url]) == 0
    capsys.readouterr()
    assert main(["settings", *url]) == 0
    shown = capsys.readouterr().out
    assert f"workspace {ws}" in shown and key not in shown
    lines = {line.split()[0]: line.split()[1:] for line in shown.splitlines() if line.strip()}
    assert lines["min_quality"][:2] == ["0.55", "workspace"]
    assert lines["auto_sync_after_enrich"][:2] == ["True", "workspace"]
    assert lines["auto_enrich_on_import"][:2] == ["True", "deployment"]
    assert lines["hunter"][:2] == ["set", "(workspace,"]
    assert lines["jobtitle"] == ["title", "always"]

    assert main(["settings", "set", "min_quality=default", "--json", *url]) == 0
    assert json.loads(capsys.readouterr().out)["thresholds"]["min_quality"]["source"] == "deployment"
    assert main(["settings", "provider", "hunter", "--remove", *url]) == 0
    assert "hunter: removed; key not set" in capsys.readouterr().out
    assert main(["settings", "set", "min_quality=2", *url]) == 1  # refused by the API, with its reason
    assert "min_quality" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="not KEY=VALUE"):
        main(["settings", "set", "min_quality", *url])
    assert key not in function_logs(stack)
