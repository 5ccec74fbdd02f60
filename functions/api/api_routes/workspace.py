"""/settings: the caller's workspace's settings -- thresholds, automation switches, sync options and overwrite
policies, HubSpot portal and credentials, provider keys.

Secrets (the HubSpot token and client secret, provider keys) go to SSM Parameter Store as SecureString
(``leadpipe.secrets``) and are only ever shown as ``{set, source, updated_at}``; the other settings go to the state
table (``leadpipe.workspaces``). This container sees a change at once; the other functions' containers within their
cache time: ``WORKSPACE_CACHE_SECONDS`` (60 s) for settings, 5 minutes for secrets.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from api_routes import deps
from leadpipe.errors import BadRequest
from leadpipe.hubspot.mapping import DEFAULT_MAPPING, Policy, PropertyMapping
from leadpipe.models import SyncOptions
from leadpipe.secrets import (
    HUBSPOT_SECRETS,
    SecretState,
    WorkspaceSecrets,
    check_secret,
    provider_secret,
    provider_secrets,
)
from leadpipe.workspaces import (
    AutomationSettings,
    EnrichmentSettings,
    HubSpotSettings,
    SyncSettings,
    WorkspaceSettings,
)

router = APIGatewayHttpRouter()

ProviderName = Annotated[str, Path(min_length=1, max_length=40, description="a provider that takes an API key")]


@cache
def secrets() -> WorkspaceSecrets:
    settings = deps.settings()
    return WorkspaceSecrets(
        deps.clients.get("ssm"),
        settings.provider_keys_path,
        keys=deps.provider_keys(),
        default_workspace=settings.default_workspace,
    )


# ---------------------------------------------------------------------------------------------------------- views


class Threshold(BaseModel):
    value: float = Field(description="in force for this workspace")
    source: Literal["workspace", "deployment"] = Field(description="the workspace's choice, or the deployment's")
    deployment: float = Field(description="the deployment's value, used when the workspace has not chosen")


class Switch(BaseModel):
    value: bool = Field(description="in force for this workspace")
    source: Literal["workspace", "deployment"]
    deployment: bool


class Thresholds(BaseModel):
    min_quality: Threshold = Field(description="quality a contact needs to be published as enriched (and synced)")
    field_threshold: Threshold = Field(description="confidence at which providers stop being asked for a field")


class Automation(BaseModel):
    auto_enrich_on_import: Switch = Field(description="imported contacts are enriched without being asked")
    auto_sync_after_enrich: Switch = Field(description="enriched contacts are synced to HubSpot without being asked")


class HubSpotView(HubSpotSettings):
    token: SecretState
    client_secret: SecretState


class ProviderKeyView(SecretState):
    provider: str
    in_waterfall: bool = Field(description="the provider is in the deployment's ENRICH_PROVIDERS")


class SettingsView(BaseModel):
    workspace: str
    thresholds: Thresholds
    automation: Automation
    sync: SyncSettings
    hubspot: HubSpotView
    providers: dict[str, ProviderKeyView]
    updated_at: datetime | None = Field(description="when the workspace's stored settings last changed")


def _threshold(own: float | None, deployment: float) -> Threshold:
    return Threshold(
        value=deployment if own is None else own,
        source="deployment" if own is None else "workspace",
        deployment=deployment,
    )


def _switch(own: bool | None, deployment: bool) -> Switch:
    return Switch(
        value=deployment if own is None else own,
        source="deployment" if own is None else "workspace",
        deployment=deployment,
    )


def settings_view(workspace: str) -> SettingsView:
    stored = deps.workspaces().get(workspace)
    deployment = deps.settings()
    enrichment, automation = stored.enrichment, stored.automation
    providers = provider_secrets()
    names = {f"hubspot.{n}": spec for n, spec in HUBSPOT_SECRETS.items()} | providers
    states = secrets().states(workspace, names)
    waterfall = set(deployment.provider_order)
    return SettingsView(
        workspace=workspace,
        thresholds=Thresholds(
            min_quality=_threshold(enrichment.min_quality, deployment.min_quality),
            field_threshold=_threshold(enrichment.field_threshold, deployment.enrich_field_threshold),
        ),
        automation=Automation(
            auto_enrich_on_import=_switch(automation.auto_enrich_on_import, deployment.auto_enrich_on_import),
            auto_sync_after_enrich=_switch(automation.auto_sync_after_enrich, deployment.auto_sync_after_enrich),
        ),
        sync=stored.sync,
        hubspot=HubSpotView(
            **stored.hubspot.model_dump(),
            token=states["hubspot.token"],
            client_secret=states["hubspot.client_secret"],
        ),
        providers={
            name: ProviderKeyView(provider=name, in_waterfall=name in waterfall, **states[name].model_dump())
            for name in providers
        },
        updated_at=stored.updated_at,
    )


def provider_view(workspace: str, name: str) -> ProviderKeyView:
    spec = provider_secret(name)
    state = secrets().state(workspace, spec, secrets().stored(workspace))
    in_waterfall = name in deps.settings().provider_order
    return ProviderKeyView(provider=name, in_waterfall=in_waterfall, **state.model_dump())


# ---------------------------------------------------------------------------------------------------------- requests


class SettingsUpdate(BaseModel):
    """A partial update: a key left out keeps its value; a key set to null goes back to its default (the
    deployment's value for the thresholds, switches and burst limit; leadpipe's defaults for the sync options, the
    mapping and its policies). ``sync_options`` and ``overwrite`` change only the keys they name."""

    model_config = ConfigDict(extra="forbid")

    min_quality: float | None = Field(None, ge=0.0, le=1.0, description="0-1; null: the deployment's MIN_QUALITY")
    field_threshold: float | None = Field(
        None, ge=0.0, le=1.0, description="0-1; null: the deployment's ENRICH_FIELD_THRESHOLD"
    )
    auto_enrich_on_import: bool | None = Field(None, description="null: the deployment's AUTO_ENRICH_ON_IMPORT")
    auto_sync_after_enrich: bool | None = Field(None, description="null: the deployment's AUTO_SYNC_AFTER_ENRICH")
    burst_limit: Literal[100, 190] | None = Field(None, description="HubSpot requests per 10 s for the portal")
    sync_options: dict[str, bool] | None = Field(
        None,
        description="some of deduplicate, createIfNew, updateIfExists, associateCompany, logActivity "
        "(or their snake_case names); null: all back to true",
    )
    mapping: list[PropertyMapping] | None = Field(
        None, max_length=200, description="the whole field -> property mapping; null: leadpipe's default mapping"
    )
    overwrite: dict[str, Policy | None] | None = Field(
        None,
        description="HubSpot property -> overwrite policy (fill_empty, ours, always) for mapped properties; a "
        "property set to null, or null for all, goes back to its default policy",
    )


def _default_policy(prop: str) -> Policy:
    return "ours" if prop.startswith("leadpipe_") else "fill_empty"


def _sync_options(current: SyncOptions, patch: dict[str, bool] | None) -> SyncOptions:
    if patch is None:
        return SyncOptions()
    names = {name: name for name in SyncOptions.model_fields} | {
        str(f.alias): name for name, f in SyncOptions.model_fields.items() if f.alias
    }
    unknown = sorted(k for k in patch if k not in names)
    if unknown:
        raise BadRequest(
            f"unknown sync option(s) {', '.join(unknown)} (known: {', '.join(sorted(SyncOptions.model_fields))})",
            code="unknown_sync_option",
        )
    return SyncOptions.model_validate(current.model_dump() | {names[k]: v for k, v in patch.items()})


def _mapping(current: list[PropertyMapping], given: set[str], update: SettingsUpdate) -> list[PropertyMapping]:
    mapping = current
    if "mapping" in given:
        mapping = list(DEFAULT_MAPPING) if update.mapping is None else update.mapping
        properties = [m.property for m in mapping]
        twice = sorted({p for p in properties if properties.count(p) > 1})
        if twice:
            raise BadRequest(f"properties mapped twice: {', '.join(twice)}", code="invalid_mapping")
    if "overwrite" not in given:
        return mapping
    if update.overwrite is None:
        return [m.model_copy(update={"policy": _default_policy(m.property)}) for m in mapping]
    mapped = {m.property for m in mapping}
    unknown = sorted(p for p in update.overwrite if p not in mapped)
    if unknown:
        raise BadRequest(
            f"not mapped, so no overwrite policy: {', '.join(unknown)} (mapped: {', '.join(sorted(mapped))})",
            code="unmapped_property",
        )
    return [
        m.model_copy(update={"policy": update.overwrite[m.property] or _default_policy(m.property)})
        if m.property in update.overwrite
        else m
        for m in mapping
    ]


def apply_update(current: WorkspaceSettings, update: SettingsUpdate, *, default_burst: int) -> WorkspaceSettings:
    """The settings after a partial update (see ``SettingsUpdate``)."""
    given = set(update.model_fields_set)
    enrichment = current.enrichment.model_dump()
    enrichment.update({k: getattr(update, k) for k in ("min_quality", "field_threshold") if k in given})
    automation = current.automation.model_dump()
    automation.update(
        {k: getattr(update, k) for k in ("auto_enrich_on_import", "auto_sync_after_enrich") if k in given}
    )
    sync = current.sync
    burst = sync.burst_limit
    if "burst_limit" in given:
        burst = update.burst_limit or (190 if default_burst >= 190 else 100)
    options = _sync_options(sync.options, update.sync_options) if "sync_options" in given else sync.options
    return current.model_copy(
        update={
            "enrichment": EnrichmentSettings.model_validate(enrichment),
            "automation": AutomationSettings.model_validate(automation),
            "sync": SyncSettings(
                options=options, mapping=_mapping(list(sync.mapping), given, update), burst_limit=burst
            ),
        }
    )


class HubSpotUpdate(BaseModel):
    """A partial update: a key left out is unchanged; null removes a stored secret (the deployment's applies again
    in the default workspace) and puts the others back to their default (for the default workspace: the
    deployment's portal, app and polling)."""

    model_config = ConfigDict(extra="forbid")

    token: SecretStr | None = Field(None, description="the private app's access token (stored as a SecureString)")
    client_secret: SecretStr | None = Field(
        None, description="the app's client secret, which verifies webhook signatures (stored as a SecureString)"
    )
    portal_id: int | None = Field(None, ge=1, description="the portal (hub id): its webhook events come here")
    app_id: int | None = Field(None, ge=1, description="leadpipe's app id: its own writes coming back are dropped")
    webhooks: bool | None = Field(None, description="accept the portal's webhook events (null: the default, true)")
    polling: bool | None = Field(
        None,
        description="poll the portal for changes on the schedule (null: the default, off but for the "
        "default workspace of a deployment with HubSpotPolling=true)",
    )


class ProviderKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr = Field(description="the provider's API key (stored as a SecureString, never shown again)")


class ProviderKeyRemoved(ProviderKeyView):
    removed: bool = Field(description="a key stored for the workspace was removed")


# ---------------------------------------------------------------------------------------------------------- routes


@router.get(
    "/settings",
    summary="The workspace's settings: thresholds, automation, sync, HubSpot, provider keys (never secret values)",
    tags=["settings"],
)
def get_settings() -> SettingsView:
    return settings_view(router.context["workspace"])


@router.put(
    "/settings",
    summary="Change some of the workspace's settings (thresholds, switches, sync options, mapping, policies)",
    description=(
        "A partial update: keys left out keep their value, a key set to null goes back to its default (the "
        "deployment's for min_quality, field_threshold, auto_enrich_on_import, auto_sync_after_enrich and "
        "burst_limit). sync_options and overwrite change only the keys they name. Other functions see the change "
        "within WORKSPACE_CACHE_SECONDS (60 s by default)."
    ),
    tags=["settings"],
)
def put_settings(update: Annotated[SettingsUpdate, Body()]) -> SettingsView:
    workspace = router.context["workspace"]
    repository = deps.workspaces()
    if update.model_fields_set:
        repository.put(apply_update(repository.get(workspace), update, default_burst=repository.default_burst))
    return settings_view(workspace)


@router.put(
    "/settings/hubspot",
    summary="Set the workspace's HubSpot portal, app, webhooks/polling, access token and client secret",
    description=(
        "Secrets go to SSM Parameter Store (SecureString) at /leadpipe/{stage}/workspaces/{workspace}/hubspot/"
        "{token,client_secret}, never to the database; the answer says only whether each is set. A portal another "
        "workspace has is refused (409). A key left out is unchanged; null removes or resets it."
    ),
    tags=["settings"],
)
def put_hubspot(update: Annotated[HubSpotUpdate, Body()]) -> SettingsView:
    workspace = router.context["workspace"]
    given = set(update.model_fields_set)
    if not given:
        raise BadRequest(
            "give at least one of token, client_secret, portal_id, app_id, webhooks, polling", code="empty_update"
        )
    new_secrets: dict[str, str | None] = {}
    for name, spec in HUBSPOT_SECRETS.items():  # checked before anything is written
        if name in given:
            value: SecretStr | None = getattr(update, name)
            new_secrets[name] = None if value is None else check_secret(value.get_secret_value(), spec.label)
    fields = {k: getattr(update, k) for k in ("portal_id", "app_id", "webhooks", "polling") if k in given}
    if fields:
        repository = deps.workspaces()
        current = repository.get(workspace)
        # null: the workspace's default (the deployment's portal, app and polling for the default workspace)
        own_default = repository.default_hubspot if workspace == repository.default_workspace else HubSpotSettings()
        defaults = own_default.model_dump()
        changed = {k: defaults[k] if v is None else v for k, v in fields.items()}
        hubspot = HubSpotSettings.model_validate(current.hubspot.model_dump() | changed)
        repository.put(current.model_copy(update={"hubspot": hubspot}))
    for name, secret in new_secrets.items():
        if secret is None:
            secrets().delete(workspace, HUBSPOT_SECRETS[name])
        else:
            secrets().put(workspace, HUBSPOT_SECRETS[name], secret)
    return settings_view(workspace)


@router.put(
    "/settings/providers/<name>",
    summary="Store a provider's API key for the workspace (SecureString in SSM Parameter Store)",
    description="Stored at /leadpipe/{stage}/workspaces/{workspace}/providers/{name}; never shown again.",
    tags=["settings"],
)
def put_provider_key(name: ProviderName, body: Annotated[ProviderKey, Body()]) -> ProviderKeyView:
    workspace = router.context["workspace"]
    spec = provider_secret(name)
    secrets().put(workspace, spec, body.api_key.get_secret_value())
    return provider_view(workspace, name)


@router.delete(
    "/settings/providers/<name>",
    summary="Remove the workspace's key of a provider (the deployment's environment key, if any, applies again)",
    tags=["settings"],
)
def delete_provider_key(name: ProviderName) -> ProviderKeyRemoved:
    workspace = router.context["workspace"]
    removed = secrets().delete(workspace, provider_secret(name))
    return ProviderKeyRemoved(removed=removed, **provider_view(workspace, name).model_dump())
