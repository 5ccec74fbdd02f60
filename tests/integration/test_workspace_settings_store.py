"""Workspace settings against moto: secrets as SSM SecureString parameters at the paths their readers use (and the
readers decrypt them), never in DynamoDB, never in a log line, never in an answer; the /settings routes run
in-process; the enrich and sync services apply a workspace's thresholds and automation switches."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from leadpipe.aws import AwsClients
from leadpipe.deals.service import serper_key
from leadpipe.enrichment.keys import ProviderKeys
from leadpipe.errors import BadRequest, NotFound
from leadpipe.models import ImportSource, PipelineStatus, SyncMessage
from leadpipe.remote_import import credential
from leadpipe.secrets import HUBSPOT_SECRETS, WorkspaceSecrets, check_secret, provider_secret, provider_secrets
from leadpipe.settings import Settings
from leadpipe.workspaces import (
    AutomationSettings,
    EffectiveSettings,
    EnrichmentSettings,
    HubSpotSettings,
    WorkspaceRepository,
    WorkspaceSettings,
)
from leadpipe_local.fakes.hubspot import FakeHubSpot
from tests.conftest import ROOT, Stack
from tests.integration.test_enrich_service import BUDGET, imported_event, people, registry
from tests.integration.test_enrich_service import World as EnrichWorld
from tests.integration.test_sync_service import World as SyncWorld
from tests.scripted import ScriptedProvider

PREFIX = "/leadpipe/test/workspaces"
TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"  # test values, looked for in logs and tables
CLIENT_SECRET = "cs-aaaabbbbccccddddeeeeffff00001111"
APOLLO_KEY = "apollo-key-Zx81Qp0000000000"


def secrets_of(stack: Stack, keys: ProviderKeys | None = None, env: dict[str, str] | None = None) -> WorkspaceSecrets:
    return WorkspaceSecrets(stack.client("ssm"), PREFIX, keys=keys, env=env or {})


# ---------------------------------------------------------------------------------------------- secrets in SSM


def test_secrets_are_secure_strings_at_the_readers_paths_and_the_readers_decrypt_them(stack: Stack) -> None:
    ssm = stack.client("ssm")
    keys = ProviderKeys(PREFIX, ssm_client=ssm, env={})
    secrets = secrets_of(stack, keys)
    written = {
        f"{PREFIX}/acme/hubspot/token": (HUBSPOT_SECRETS["token"], TOKEN),
        f"{PREFIX}/acme/hubspot/client_secret": (HUBSPOT_SECRETS["client_secret"], CLIENT_SECRET),
        f"{PREFIX}/acme/providers/apollo": (provider_secret("apollo"), APOLLO_KEY),
        f"{PREFIX}/acme/providers/serper": (provider_secret("serper"), "serper-key-1"),
        f"{PREFIX}/acme/lemlist": (provider_secret("lemlist"), "lemlist-key-1"),
    }
    for spec, value in written.values():
        secrets.put("acme", spec, f"  {value}\n")  # surrounding blanks are not part of a key
    for name, (_, value) in written.items():
        stored = ssm.get_parameter(Name=name)["Parameter"]
        assert stored["Type"] == "SecureString"
        assert stored["Value"] != value  # encrypted: without decryption the value is not readable
        assert ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"] == value

    # every reader of these parameters gets the decrypted value
    assert keys.secret("acme", "hubspot/token", "HUBSPOT_TOKEN") == TOKEN  # sync, import, poller, deals
    assert keys.secret("acme", "hubspot/client_secret", "HUBSPOT_CLIENT_SECRET") == CLIENT_SECRET  # webhooks
    assert keys.for_workspace("acme", {"apollo": "APOLLO_API_KEY", "hunter": "HUNTER_API_KEY"}) == {
        "apollo": APOLLO_KEY,
        "hunter": None,
    }
    assert serper_key(keys, "acme") == "serper-key-1"
    assert credential(keys, "acme", ImportSource.LEMLIST) == "lemlist-key-1"
    assert credential(keys, "acme", ImportSource.HUBSPOT) == TOKEN
    # another workspace (even one whose name starts the same) has none of them
    assert keys.secret("acme2", "hubspot/token", None) is None
    assert secrets.stored("acme2") == {}


def test_a_change_is_read_at_once_here_and_after_the_cache_time_elsewhere(stack: Stack) -> None:
    ssm = stack.client("ssm")
    here = ProviderKeys(PREFIX, ssm_client=ssm, env={"APOLLO_API_KEY": "from-the-environment"})
    elsewhere = ProviderKeys(PREFIX, ssm_client=ssm, env={})  # another container
    secrets = secrets_of(stack, here)
    apollo = provider_secret("apollo")
    secrets.put("acme", apollo, "first")
    assert here.for_workspace("acme", {"apollo": None}) == {"apollo": "first"}
    assert elsewhere.for_workspace("acme", {"apollo": None}) == {"apollo": "first"}

    secrets.put("acme", apollo, "second")
    assert here.for_workspace("acme", {"apollo": None}) == {"apollo": "second"}  # its own cache was dropped
    assert elsewhere.for_workspace("acme", {"apollo": None}) == {"apollo": "first"}  # cached, up to 5 minutes
    elsewhere._provider.clear_cache()  # ... until its cache expires
    assert elsewhere.for_workspace("acme", {"apollo": None}) == {"apollo": "second"}

    assert secrets.delete("acme", apollo) is True
    assert here.for_workspace("acme", {"apollo": "APOLLO_API_KEY"}) == {"apollo": "from-the-environment"}
    assert secrets.delete("acme", apollo) is False  # nothing stored any more


def test_states_say_whether_a_secret_is_set_and_never_its_value(stack: Stack) -> None:
    secrets = secrets_of(stack, env={"HUNTER_API_KEY": "hunter-from-env", "HUBSPOT_TOKEN": "deployment-token"})
    secrets.put("acme", provider_secret("apollo"), APOLLO_KEY)
    states = secrets.states("acme", provider_secrets())
    assert states["apollo"].set and states["apollo"].source == "workspace"
    assert isinstance(states["apollo"].updated_at, datetime)
    assert states["hunter"].model_dump() == {"set": True, "source": "environment", "updated_at": None}
    assert states["pdl"].model_dump() == {"set": False, "source": None, "updated_at": None}
    assert APOLLO_KEY not in json.dumps({k: v.model_dump(mode="json") for k, v in states.items()})
    # the deployment's HubSpot token opens the deployment's portal: the default workspace's fallback only
    assert secrets.states("default", HUBSPOT_SECRETS)["token"].source == "environment"
    assert secrets.states("acme", HUBSPOT_SECRETS)["token"].set is False


def test_provider_names_and_secret_values_are_checked_without_quoting_the_value() -> None:
    assert set(provider_secrets()) == {"apollo", "dropcontact", "hunter", "pdl", "serper", "lemlist"}
    with pytest.raises(NotFound) as unknown:
        provider_secret("clearbit")
    assert unknown.value.http_status == 404 and "apollo" in unknown.value.message
    with pytest.raises(BadRequest, match="needs no API key"):
        provider_secret("sample")
    for value, why in (("   ", "empty"), ("two words", "spaces"), ("x" * 4097, "longer than 4096")):
        with pytest.raises(BadRequest) as refused:
            check_secret(value, "apollo API key")
        assert why in refused.value.message and (not value.strip() or value not in refused.value.message)


# ---------------------------------------------------------------------------------------------- the routes, in-process


@dataclass
class Context:
    function_name: str = "ApiFunction"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:ApiFunction"
    aws_request_id: str = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


@dataclass
class Answer:
    status: int
    body: Any


class Api:
    def __init__(self, handler: Any, key: str) -> None:
        self.handler = handler
        self.key = key

    def __call__(self, method: str, path: str, body: Any = None, key: str | None = None) -> Answer:
        event = {
            "version": "2.0",
            "routeKey": f"{method} {path}",
            "rawPath": path,
            "rawQueryString": "",
            "headers": {"authorization": f"Bearer {key or self.key}", "content-type": "application/json"},
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "local",
                "domainName": "localhost",
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
                "requestId": "req-1",
                "routeKey": f"{method} {path}",
                "stage": "$default",
                "timeEpoch": 0,
            },
            "isBase64Encoded": False,
        }
        if body is not None:
            event["body"] = json.dumps(body)
        result = self.handler(event, Context())
        return Answer(result["statusCode"], json.loads(result["body"]) if result.get("body") else None)


def _clear_api_caches() -> None:
    from leadpipe.settings import get_settings

    get_settings.cache_clear()
    for module in ("api_routes.deps", "api_routes.workspace"):
        for value in vars(sys.modules[module]).values():
            if callable(getattr(value, "cache_clear", None)):
                value.cache_clear()


@pytest.fixture
def api(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """The API function's handler in this process, on the moto stack, with a key of workspace ``acme``."""
    env = {
        "CONTACTS_TABLE": stack.contacts_table,
        "STATE_TABLE": stack.state_table,
        "UPLOADS_BUCKET": stack.bucket,
        "EVENT_BUS_NAME": stack.bus,
        "IMPORT_QUEUE_URL": stack.import_queue_url,
        "ENRICH_QUEUE_URL": stack.ref("EnrichQueue"),
        "SYNC_QUEUE_URL": stack.ref("SyncQueue"),
        "PROVIDER_KEYS_PATH": PREFIX,
        "MIN_QUALITY": "0.7",
        "ENRICH_FIELD_THRESHOLD": "0.7",
        "AUTO_ENRICH_ON_IMPORT": "true",
        "AUTO_SYNC_AFTER_ENRICH": "false",
        "HUBSPOT_BURST_LIMIT": "100",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("HUBSPOT_TOKEN", "HUBSPOT_CLIENT_SECRET", "APOLLO_API_KEY", "HUNTER_API_KEY", "PDL_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.syspath_prepend(str(ROOT / "functions" / "api"))
    import api_handler
    from api_routes import deps

    from leadpipe.apikeys import ApiKeyStore
    from leadpipe.observability import metrics

    _clear_api_caches()
    metrics.clear_metrics()  # counts other tests left behind: the handler flushes its own at the end
    monkeypatch.setattr(metrics, "namespace", "LeadpipeTests")
    services = ("dynamodb", "ssm", "sqs", "s3", "events")
    monkeypatch.setattr(deps, "clients", AwsClients(overrides={s: stack.client(s) for s in services}))
    key = ApiKeyStore(stack.client("dynamodb"), stack.state_table).create("acme", "tests")[0]
    yield Api(api_handler.handler, key)
    _clear_api_caches()


def table_text(stack: Stack) -> str:
    """Everything the state table holds, as text."""
    items = stack.client("dynamodb").scan(TableName=stack.state_table)["Items"]
    return json.dumps(items)


def test_get_settings_shows_defaults_and_whether_secrets_are_set(api: Api) -> None:
    got = api("GET", "/settings")
    assert got.status == 200, got.body
    view = got.body
    assert view["workspace"] == "acme" and view["updated_at"] is None
    assert view["thresholds"]["min_quality"] == {"value": 0.7, "source": "deployment", "deployment": 0.7}
    assert view["automation"]["auto_enrich_on_import"] == {"value": True, "source": "deployment", "deployment": True}
    assert view["automation"]["auto_sync_after_enrich"]["value"] is False
    assert view["hubspot"]["token"] == {"set": False, "source": None, "updated_at": None}
    assert view["providers"]["apollo"] == {
        "set": False,
        "source": None,
        "updated_at": None,
        "provider": "apollo",
        "in_waterfall": True,
    }
    assert view["providers"]["serper"]["in_waterfall"] is False
    assert view["sync"]["burst_limit"] == 100 and view["sync"]["options"]["createIfNew"] is True


def test_secrets_go_to_ssm_only_and_are_never_shown_logged_or_stored_in_dynamodb(
    api: Api, stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    from leadpipe.observability import logger

    caplog.set_level(logging.DEBUG)  # every logger, botocore's included, at its most talkative
    rendered = io.StringIO()  # and leadpipe's own lines as the function writes them (JSON, extra keys included)
    handler = logging.StreamHandler(rendered)
    handler.setFormatter(logger.registered_formatter)
    own = logging.getLogger(logger.name)
    own.addHandler(handler)
    level = own.level
    own.setLevel(logging.DEBUG)
    try:
        hub = api("PUT", "/settings/hubspot", {"token": TOKEN, "client_secret": CLIENT_SECRET, "portal_id": 4242})
        key = api("PUT", "/settings/providers/apollo", {"api_key": APOLLO_KEY})
        view = api("GET", "/settings")
    finally:
        own.removeHandler(handler)
        own.setLevel(level)
    assert hub.status == 200 and key.status == 200 and view.status == 200, (hub.body, key.body)
    records = [r.getMessage() + json.dumps(vars(r), default=str) for r in caplog.records]
    everything_logged = rendered.getvalue() + "\n".join(records)
    assert '"workspace secret stored"' in rendered.getvalue()  # the capture works: the write itself was logged
    assert any(r.name.startswith("botocore") and r.levelno == logging.DEBUG for r in caplog.records)
    for secret in (TOKEN, CLIENT_SECRET, APOLLO_KEY):
        assert secret not in everything_logged
        assert secret not in json.dumps(hub.body) + json.dumps(key.body) + json.dumps(view.body)
        assert secret not in table_text(stack)

    ssm = stack.client("ssm")
    token = ssm.get_parameter(Name=f"{PREFIX}/acme/hubspot/token", WithDecryption=True)["Parameter"]
    assert token["Value"] == TOKEN
    assert ssm.get_parameter(Name=f"{PREFIX}/acme/providers/apollo")["Parameter"]["Type"] == "SecureString"
    hubspot = view.body["hubspot"]
    assert hubspot["portal_id"] == 4242
    assert hubspot["token"]["set"] and hubspot["token"]["source"] == "workspace" and hubspot["token"]["updated_at"]
    assert hubspot["client_secret"]["set"] and view.body["providers"]["apollo"]["source"] == "workspace"
    assert key.body == view.body["providers"]["apollo"]
    # the portal routes to the workspace (state table); the secrets stay out of it
    workspaces = WorkspaceRepository(stack.client("dynamodb"), stack.state_table)
    assert workspaces.workspace_for_portal(4242) == "acme"


def test_put_settings_is_a_partial_update_and_null_goes_back_to_the_default(api: Api) -> None:
    first = api(
        "PUT",
        "/settings",
        {
            "min_quality": 0.55,
            "auto_enrich_on_import": False,
            "burst_limit": 190,
            "sync_options": {"createIfNew": False, "log_activity": False},
            "overwrite": {"jobtitle": "always", "leadpipe_quality_score": "fill_empty"},
        },
    )
    assert first.status == 200, first.body
    view = first.body
    assert view["thresholds"]["min_quality"] == {"value": 0.55, "source": "workspace", "deployment": 0.7}
    assert view["thresholds"]["field_threshold"]["source"] == "deployment"
    assert view["automation"]["auto_enrich_on_import"] == {"value": False, "source": "workspace", "deployment": True}
    assert view["sync"]["burst_limit"] == 190 and view["updated_at"]
    assert view["sync"]["options"] == {
        "deduplicate": True,
        "createIfNew": False,
        "updateIfExists": True,
        "associateCompany": True,
        "logActivity": False,
    }
    policies = {m["property"]: m["policy"] for m in view["sync"]["mapping"]}
    assert policies["jobtitle"] == "always" and policies["leadpipe_quality_score"] == "fill_empty"
    assert policies["firstname"] == "fill_empty"

    # only what is named changes; null goes back to the default
    second = api("PUT", "/settings", {"field_threshold": 0.9, "min_quality": None, "overwrite": {"jobtitle": None}})
    assert second.status == 200, second.body
    view = second.body
    assert view["thresholds"]["min_quality"] == {"value": 0.7, "source": "deployment", "deployment": 0.7}
    assert view["thresholds"]["field_threshold"]["value"] == 0.9
    assert view["automation"]["auto_enrich_on_import"]["value"] is False  # untouched
    assert view["sync"]["burst_limit"] == 190 and view["sync"]["options"]["createIfNew"] is False
    policies = {m["property"]: m["policy"] for m in view["sync"]["mapping"]}
    assert policies["jobtitle"] == "fill_empty" and policies["leadpipe_quality_score"] == "fill_empty"

    reset = api("PUT", "/settings", {"burst_limit": None, "sync_options": None, "overwrite": None})
    assert reset.body["sync"]["burst_limit"] == 100 and reset.body["sync"]["options"]["createIfNew"] is True
    assert {m["policy"] for m in reset.body["sync"]["mapping"] if m["property"].startswith("leadpipe_")} == {"ours"}
    # the other settings routes agree
    assert api("GET", "/settings/sync").body["burst_limit"] == 100


@pytest.mark.parametrize(
    ("body", "status", "code", "says"),
    [
        ({"min_quality": 1.5}, 400, "validation_error", "min_quality"),
        ({"burst_limit": 150}, 400, "validation_error", "burst_limit"),
        ({"colour": "blue"}, 400, "validation_error", "colour"),
        ({"overwrite": {"not_mapped": "always"}}, 400, "unmapped_property", "not_mapped"),
        ({"overwrite": {"jobtitle": "sometimes"}}, 400, "validation_error", "overwrite"),
        ({"sync_options": {"teleport": True}}, 400, "unknown_sync_option", "teleport"),
        ({"mapping": [{"source": "title", "property": "x"}, {"source": "city", "property": "x"}]}, 400, "", "twice"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(api: Api, body: Any, status: int, code: str, says: str) -> None:
    got = api("PUT", "/settings", body)
    assert got.status == status, got.body
    assert not code or got.body["error"]["code"] == code
    assert says in json.dumps(got.body["error"])
    assert api("GET", "/settings").body["updated_at"] is None  # nothing was written


def test_hubspot_updates_are_partial_checked_first_and_null_removes(api: Api, stack: Stack) -> None:
    assert api("PUT", "/settings/hubspot", {}).body["error"]["code"] == "empty_update"
    bad = api("PUT", "/settings/hubspot", {"token": "has spaces in it", "portal_id": 777})
    assert bad.status == 400 and "has spaces in it" not in json.dumps(bad.body)
    assert api("GET", "/settings").body["hubspot"]["portal_id"] is None  # the portal was not written either
    assert api("PUT", "/settings/hubspot", {"portal_id": 0}).status == 400

    set_up = api("PUT", "/settings/hubspot", {"token": TOKEN, "portal_id": 777, "app_id": 9, "polling": True})
    assert set_up.status == 200 and set_up.body["hubspot"]["polling"] is True
    changed = api("PUT", "/settings/hubspot", {"webhooks": False})
    hubspot = changed.body["hubspot"]
    assert (hubspot["portal_id"], hubspot["app_id"], hubspot["webhooks"], hubspot["token"]["set"]) == (
        777,
        9,
        False,
        True,
    )
    removed = api("PUT", "/settings/hubspot", {"token": None, "portal_id": None, "webhooks": None})
    hubspot = removed.body["hubspot"]
    assert hubspot["token"] == {"set": False, "source": None, "updated_at": None}
    assert hubspot["portal_id"] is None and hubspot["webhooks"] is True and hubspot["polling"] is True
    assert WorkspaceRepository(stack.client("dynamodb"), stack.state_table).workspace_for_portal(777) is None

    # a portal another workspace has is refused
    WorkspaceRepository(stack.client("dynamodb"), stack.state_table).put(
        WorkspaceSettings(workspace="other", hubspot=HubSpotSettings(portal_id=888))
    )
    taken = api("PUT", "/settings/hubspot", {"portal_id": 888, "client_secret": CLIENT_SECRET})
    assert taken.status == 409 and taken.body["error"]["code"] == "portal_taken"
    assert api("GET", "/settings").body["hubspot"]["client_secret"]["set"] is False  # nothing half-written


def test_provider_keys_are_stored_removed_and_unknown_names_are_404(api: Api) -> None:
    stored = api("PUT", "/settings/providers/hunter", {"api_key": "hunter-key-1"})
    assert stored.status == 200 and stored.body["set"] and stored.body["source"] == "workspace"
    status = api("GET", "/status").body
    assert next(p for p in status["providers"] if p["name"] == "hunter")["enabled"] is True  # seen at once here
    removed = api("DELETE", "/settings/providers/hunter")
    assert removed.status == 200 and removed.body["removed"] is True and removed.body["set"] is False
    assert api("DELETE", "/settings/providers/hunter").body["removed"] is False
    assert next(p for p in api("GET", "/status").body["providers"] if p["name"] == "hunter")["enabled"] is False

    unknown = api("PUT", "/settings/providers/clearbit", {"api_key": "x"})
    assert unknown.status == 404 and unknown.body["error"]["code"] == "unknown_provider"
    assert api("DELETE", "/settings/providers/clearbit").status == 404
    assert api("PUT", "/settings/providers/sample", {"api_key": "x"}).status == 400
    assert api("PUT", "/settings/providers/apollo", {}).status == 400  # no api_key
    assert api("PUT", "/settings/providers/apollo", {"api_key": ""}).body["error"]["code"] == "invalid_secret"


def test_a_key_of_one_workspace_never_reads_or_changes_anothers_settings(api: Api, stack: Stack) -> None:
    from leadpipe.apikeys import ApiKeyStore

    other = ApiKeyStore(stack.client("dynamodb"), stack.state_table).create("other", "tests")[0]
    api("PUT", "/settings/providers/apollo", {"api_key": APOLLO_KEY})
    api("PUT", "/settings", {"min_quality": 0.2})
    assert api("PUT", "/settings", {"min_quality": 0.9}, key=other).status == 200
    theirs = api("GET", "/settings", key=other).body
    assert theirs["workspace"] == "other" and theirs["providers"]["apollo"]["set"] is False
    assert api("GET", "/settings").body["thresholds"]["min_quality"]["value"] == 0.2
    assert api("DELETE", "/settings/providers/apollo", key=other).body["removed"] is False
    assert api("GET", "/settings").body["providers"]["apollo"]["set"] is True


# ---------------------------------------------------------------------------------------------- enforcement


def deployment(**overrides: Any) -> Settings:
    return Settings(**({"min_quality": 0.7, "enrich_field_threshold": 0.7} | overrides))


def test_effective_settings_take_the_workspaces_choice_else_the_deployments() -> None:
    chosen = WorkspaceSettings(
        workspace="acme",
        enrichment=EnrichmentSettings(min_quality=0.4),
        automation=AutomationSettings(auto_sync_after_enrich=True),
    )
    effective = EffectiveSettings.of(chosen, deployment(auto_enrich_on_import=True, enrich_field_threshold=0.8))
    assert effective.model_dump() == {
        "min_quality": 0.4,
        "field_threshold": 0.8,
        "auto_enrich_on_import": True,
        "auto_sync_after_enrich": True,
    }
    assert EffectiveSettings.of(None, deployment()).auto_enrich_on_import is False


def enrich_world(stack: Stack, providers: list[Any], **workspace: Any) -> tuple[EnrichWorld, WorkspaceRepository]:
    world = EnrichWorld(stack, providers)
    repository = WorkspaceRepository(stack.client("dynamodb"), stack.state_table)
    repository.put(WorkspaceSettings(workspace="default", **workspace))
    world.service.workspaces = repository
    return world, repository


def test_the_workspaces_min_quality_decides_what_is_published(stack: Stack, bus_tap: Any) -> None:
    world, _ = enrich_world(stack, [registry(), people()], enrichment=EnrichmentSettings(min_quality=0.99))
    world.add("ann@acme.com", first_name=None)
    report = world.service.handle_message(imported_event(["ann@acme.com"]), budget=BUDGET)
    assert report is not None and report.below_threshold == ["ann@acme.com"] and report.published == []
    ann = world.get("ann@acme.com")
    assert ann.status_reason == "below_threshold"
    assert ann.enrichment_meta is not None and ann.enrichment_meta.min_quality == 0.99  # not the deployment's 0.7
    # a request's own min_quality still wins over the workspace's
    world.add("bob@acme.com")
    asked = world.service.handle_message(world.message("bob@acme.com", minQuality=0.1), budget=BUDGET)
    assert asked is not None and asked.published == ["bob@acme.com"]


def test_the_workspaces_field_threshold_decides_when_the_waterfall_stops(stack: Stack) -> None:
    second = ScriptedProvider(
        "second", people={"ann@acme.com": {"title": "Chief Technology Officer"}}, person_fields={"title": 0.9}
    )
    world, repository = enrich_world(stack, [people(), second])
    world.add("ann@acme.com")
    world.service.handle_message(world.message("ann@acme.com", request_id="r-1"), budget=BUDGET)
    assert second.asked_people == []  # the deployment's 0.7: the title at 0.95 from the first was enough

    repository.put(repository.get("default").model_copy(update={"enrichment": EnrichmentSettings(field_threshold=1.0)}))
    world.service.handle_message(world.message("ann@acme.com", request_id="r-2", cache=False), budget=BUDGET)
    assert second.asked_people == ["ann@acme.com"]  # 0.95 < 1.0: the next provider is asked too


def test_auto_enrich_off_drops_the_rules_events_but_never_an_explicit_request(stack: Stack) -> None:
    world, repository = enrich_world(
        stack, [registry(), people()], automation=AutomationSettings(auto_enrich_on_import=False)
    )
    world.add("ann@acme.com")
    assert world.service.handle_message(imported_event(["ann@acme.com"]), budget=BUDGET) is None
    assert world.get("ann@acme.com").status is PipelineStatus.IMPORTED
    explicit = world.service.handle_message(world.message("ann@acme.com"), budget=BUDGET)  # POST /enrich's message
    assert explicit is not None and explicit.enriched == ["ann@acme.com"]

    # switched on for the workspace while the deployment's default is off (World's Settings say on: turn it off)
    world.service.settings = world.settings.model_copy(update={"auto_enrich_on_import": False})
    repository.put(repository.get("default").model_copy(update={"automation": AutomationSettings()}))
    world.add("bob@acme.com")
    assert world.service.handle_message(imported_event(["bob@acme.com"], "e-2"), budget=BUDGET) is None
    repository.put(
        repository.get("default").model_copy(update={"automation": AutomationSettings(auto_enrich_on_import=True)})
    )
    report = world.service.handle_message(imported_event(["bob@acme.com"], "e-3"), budget=BUDGET)
    assert report is not None and report.enriched == ["bob@acme.com"]


def enriched_event(emails: list[str], event_id: str) -> str:
    return json.dumps(
        {
            "version": "0",
            "id": event_id,
            "detail-type": "contacts.enriched",
            "source": "leadpipe",
            "detail": {"workspace": "default", "request_id": "enr-1", "emails": emails},
        }
    )


def test_auto_sync_off_drops_the_rules_events_but_never_an_explicit_request(stack: Stack, hubspot: FakeHubSpot) -> None:
    world = SyncWorld(stack, hubspot)
    world.workspaces.put(
        WorkspaceSettings(workspace="default", automation=AutomationSettings(auto_sync_after_enrich=False))
    )
    world.add("ann@acme.com")
    before = world.requests()
    report = world.service.handle_message(enriched_event(["ann@acme.com"], "ev-1"), budget=BUDGET)
    assert report.synced == [] and report.skipped == {"ann@acme.com": "auto-sync is off"}
    assert world.get("ann@acme.com").status is PipelineStatus.ENRICHED and world.requests() == before

    message = SyncMessage(workspace="default", request_id="sync-1", emails=["ann@acme.com"])  # POST /sync's
    explicit = world.service.handle_message(message.model_dump_json(), budget=BUDGET)
    assert explicit.created == ["ann@acme.com"] and world.get("ann@acme.com").status is PipelineStatus.SYNCED

    # the workspace's choice wins over the deployment's default either way
    world.service.settings = world.service.settings.model_copy(update={"auto_sync_after_enrich": False})
    world.workspaces.put(
        WorkspaceSettings(workspace="default", automation=AutomationSettings(auto_sync_after_enrich=True))
    )
    world.add("bob@acme.com")
    assert world.service.handle_message(enriched_event(["bob@acme.com"], "ev-2"), budget=BUDGET).created == [
        "bob@acme.com"
    ]
    world.workspaces.put(WorkspaceSettings(workspace="default"))  # no choice: the deployment's (off)
    world.add("cy@acme.com")
    assert world.service.handle_message(enriched_event(["cy@acme.com"], "ev-3"), budget=BUDGET).synced == []
