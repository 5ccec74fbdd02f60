"""The deployment's HubSpot token (environment) belongs to the default workspace only."""

from __future__ import annotations

from leadpipe.enrichment.keys import ProviderKeys

ENV = {"HUBSPOT_TOKEN": "pat-env", "HUBSPOT_CLIENT_SECRET": "cs-env", "APOLLO_API_KEY": "apollo-env"}


def keys(stored: dict[str, dict[str, str]], env: dict[str, str] = ENV) -> ProviderKeys:
    return ProviderKeys("/leadpipe/test/workspaces", env=env, fetch=lambda path: stored.get(path, {}))


def test_hubspot_secrets_fall_back_to_the_environment_only_in_the_default_workspace() -> None:
    k = keys({})
    assert k.secret("default", "hubspot/token", "HUBSPOT_TOKEN") == "pat-env"
    assert k.secret("default", "hubspot/client_secret", "HUBSPOT_CLIENT_SECRET") == "cs-env"
    assert k.secret("acme", "hubspot/token", "HUBSPOT_TOKEN") is None
    assert k.secret("acme", "hubspot/client_secret", "HUBSPOT_CLIENT_SECRET") is None
    other_default = keys({}, ENV | {"DEFAULT_WORKSPACE": "main"})
    assert other_default.secret("main", "hubspot/token", "HUBSPOT_TOKEN") == "pat-env"
    assert other_default.secret("default", "hubspot/token", "HUBSPOT_TOKEN") is None


def test_a_workspace_uses_its_own_stored_token() -> None:
    k = keys({"/leadpipe/test/workspaces/acme/hubspot": {"token": "pat-acme"}})
    assert k.secret("acme", "hubspot/token", "HUBSPOT_TOKEN") == "pat-acme"
    assert k.secret("default", "hubspot/token", "HUBSPOT_TOKEN") == "pat-env"


def test_provider_keys_still_fall_back_for_every_workspace() -> None:
    # data providers are the deployment's accounts; their answers are shared through the cache by design
    assert keys({}).for_workspace("acme", {"apollo": "APOLLO_API_KEY"}) == {"apollo": "apollo-env"}
