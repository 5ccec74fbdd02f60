"""Per-workspace settings (a workspace is one HubSpot portal): sync options, the property mapping and overwrite
policies, the portal's burst limit, how changes are captured (portal and app ids, webhooks, polling), the enrichment
thresholds and the automation switches (each None until the workspace chooses: the deployment's value applies, see
``EffectiveSettings``). Stored in the state table (``pk = W#{ws}``, ``sk = settings``); a workspace without stored
settings uses the defaults (the default workspace takes the deployment's portal and app from the environment).
Secrets (the HubSpot token, the app's client secret, provider keys) are never stored here: they live in SSM
Parameter Store (see ``leadpipe.secrets``). Each container caches a workspace's settings for
``WORKSPACE_CACHE_SECONDS`` (60 s by default); the container that writes them sees its own write at once.

Routing: ``pk = PORTAL#{portal id}`` names the workspace a portal's webhook events belong to (one workspace per
portal, enforced by a conditional write); ``pk = POLLING, sk = {ws}`` lists the workspaces the poller visits."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from leadpipe.dynamo import TransactionCancelled, from_item, to_item, transact_write
from leadpipe.errors import Conflict
from leadpipe.hubspot.mapping import DEFAULT_MAPPING, PropertyMapping
from leadpipe.models import SyncOptions, Workspace, utcnow
from leadpipe.settings import Settings

CACHE_SECONDS = 60.0


class SyncSettings(BaseModel):
    options: SyncOptions = Field(default_factory=SyncOptions)
    mapping: list[PropertyMapping] = Field(default_factory=lambda: list(DEFAULT_MAPPING))
    burst_limit: Literal[100, 190] = Field(100, description="requests per 10 s the portal allows a private app")


class HubSpotSettings(BaseModel):
    """How this workspace hears about changes in its portal."""

    portal_id: int | None = Field(None, ge=1, description="the HubSpot portal (hub id); routes its webhook events here")
    app_id: int | None = Field(
        None, ge=1, description="leadpipe's app: its own writes come back as changeSource INTEGRATION and are dropped"
    )
    webhooks: bool = Field(True, description="accept this portal's webhook events")
    polling: bool = Field(False, description="poll HubSpot's search on the schedule (portals webhooks cannot reach)")


class EnrichmentSettings(BaseModel):
    """The workspace's thresholds; None: the deployment's (``MIN_QUALITY``, ``ENRICH_FIELD_THRESHOLD``)."""

    min_quality: float | None = Field(
        None, ge=0.0, le=1.0, description="quality a contact needs to be published as enriched (and synced)"
    )
    field_threshold: float | None = Field(
        None, ge=0.0, le=1.0, description="confidence at which the waterfall stops asking providers for a field"
    )


class AutomationSettings(BaseModel):
    """The workspace's automation switches; None: the deployment's (``AUTO_ENRICH_ON_IMPORT``,
    ``AUTO_SYNC_AFTER_ENRICH``). They govern only the automatic path (events the rules deliver): POST /enrich and
    POST /sync always run."""

    auto_enrich_on_import: bool | None = None
    auto_sync_after_enrich: bool | None = None


class WorkspaceSettings(BaseModel):
    workspace: Workspace
    sync: SyncSettings = Field(default_factory=SyncSettings)
    hubspot: HubSpotSettings = Field(default_factory=HubSpotSettings)
    enrichment: EnrichmentSettings = Field(default_factory=EnrichmentSettings)
    automation: AutomationSettings = Field(default_factory=AutomationSettings)
    updated_at: datetime | None = None


class EffectiveSettings(BaseModel):
    """Thresholds and switches in force for a workspace: its own choice, else the deployment's."""

    min_quality: float
    field_threshold: float
    auto_enrich_on_import: bool
    auto_sync_after_enrich: bool

    @classmethod
    def of(cls, workspace: WorkspaceSettings | None, deployment: Settings) -> EffectiveSettings:
        chosen = workspace or WorkspaceSettings(workspace=deployment.default_workspace)
        e, a = chosen.enrichment, chosen.automation
        return cls(
            min_quality=deployment.min_quality if e.min_quality is None else e.min_quality,
            field_threshold=deployment.enrich_field_threshold if e.field_threshold is None else e.field_threshold,
            auto_enrich_on_import=(
                deployment.auto_enrich_on_import if a.auto_enrich_on_import is None else a.auto_enrich_on_import
            ),
            auto_sync_after_enrich=(
                deployment.auto_sync_after_enrich if a.auto_sync_after_enrich is None else a.auto_sync_after_enrich
            ),
        )


REGISTRY_PK = "WORKSPACES"  # one item per workspace that ever had a key or an import: sk = the workspace


def registry_item(workspace: str) -> dict[str, Any]:
    """The registry entry of a workspace (written, idempotently, with its first key and with every import job), so
    that schedules (the enrich and sync retries) can go through every workspace without a scan."""
    return {"pk": {"S": REGISTRY_PK}, "sk": {"S": workspace}}


class WorkspaceRepository:
    def __init__(
        self,
        client: Any,
        table: str,
        *,
        burst_limit: int = 100,
        default_workspace: str = "default",
        default_hubspot: HubSpotSettings | None = None,
        clock: Callable[[], datetime] = utcnow,
        cache_seconds: float = CACHE_SECONDS,
    ) -> None:
        self.client = client
        self.table = table
        self.clock = clock
        self.cache_seconds = cache_seconds  # another container's change is seen within this long
        self.default_burst = 190 if burst_limit >= 190 else 100  # the deployment's HubSpotBurstLimit
        self.default_workspace = default_workspace
        self.default_hubspot = default_hubspot or HubSpotSettings()  # the deployment's portal, for its default ws
        self._cache: dict[str, tuple[float, WorkspaceSettings]] = {}

    def get(self, workspace: str) -> WorkspaceSettings:
        cached = self._cache.get(workspace)
        if cached and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1]
        item = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": f"W#{workspace}"}, "sk": {"S": "settings"}}
        ).get("Item")
        settings = WorkspaceSettings(
            workspace=workspace,
            sync=SyncSettings(burst_limit=self.default_burst),
            hubspot=self.default_hubspot if workspace == self.default_workspace else HubSpotSettings(),
        )
        if item:
            data = from_item(item)
            settings = WorkspaceSettings.model_validate(data.get("settings", {}) | {"workspace": workspace})
        self._cache[workspace] = (time.monotonic(), settings)
        return settings

    def put(self, settings: WorkspaceSettings) -> WorkspaceSettings:
        """Store the settings, and with them the portal's route and the poller's list, in one transaction. A portal
        another workspace already has is refused (409)."""
        ws = settings.workspace
        before = self.get(ws).hubspot
        self._cache.pop(ws, None)
        stored = settings.model_copy(update={"updated_at": self.clock()})
        item = to_item({"pk": f"W#{ws}", "sk": "settings", "settings": stored.model_dump(mode="json")})
        items: list[dict[str, Any]] = [{"Put": {"TableName": self.table, "Item": item}}]
        portal, old_portal = stored.hubspot.portal_id, before.portal_id
        if portal is not None:
            items.append(
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": to_item({"pk": f"PORTAL#{portal}", "sk": "P", "workspace": ws}),
                        "ConditionExpression": "attribute_not_exists(pk) OR workspace = :ws",
                        "ExpressionAttributeValues": {":ws": {"S": ws}},
                    }
                }
            )
        if old_portal is not None and old_portal != portal:
            items.append(
                {
                    "Delete": {
                        "TableName": self.table,
                        "Key": {"pk": {"S": f"PORTAL#{old_portal}"}, "sk": {"S": "P"}},
                        "ConditionExpression": "attribute_not_exists(pk) OR workspace = :ws",
                        "ExpressionAttributeValues": {":ws": {"S": ws}},
                    }
                }
            )
        polling_key = {"pk": {"S": "POLLING"}, "sk": {"S": ws}}
        if stored.hubspot.polling:
            items.append({"Put": {"TableName": self.table, "Item": polling_key}})
        else:
            items.append({"Delete": {"TableName": self.table, "Key": polling_key}})
        try:
            transact_write(self.client, items)
        except TransactionCancelled as exc:
            if "ConditionalCheckFailed" in exc.reasons:
                raise Conflict(f"HubSpot portal {portal} belongs to another workspace", code="portal_taken") from exc
            raise
        self._cache[ws] = (time.monotonic(), stored)
        return stored

    def workspace_for_portal(self, portal_id: int) -> str | None:
        """The workspace a portal's events go to: its stored route, else the default workspace if the portal is the
        deployment's own; None for a portal nobody claimed."""
        item = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": f"PORTAL#{portal_id}"}, "sk": {"S": "P"}}, ConsistentRead=True
        ).get("Item")
        if item:
            return str(from_item(item)["workspace"])
        if self.default_hubspot.portal_id == portal_id and self.get(self.default_workspace).hubspot.portal_id in (
            None,
            portal_id,
        ):
            return self.default_workspace
        return None

    def known(self) -> list[str]:
        """Every workspace in the registry, the default one first (one query per 1 MB page)."""
        found = [self.default_workspace]
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": REGISTRY_PK}},
            "ProjectionExpression": "sk",
        }
        while True:
            page = self.client.query(**kwargs)
            found.extend(str(i["sk"]["S"]) for i in page.get("Items", []) if i["sk"]["S"] != self.default_workspace)
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return found

    def polling_workspaces(self) -> list[str]:
        """Workspaces whose portal is polled: those that asked for it, and the default workspace when the deployment
        says so and it has not stored settings of its own."""
        found: list[str] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": "POLLING"}},
        }
        while True:
            page = self.client.query(**kwargs)
            found.extend(str(from_item(i)["sk"]) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        if self.default_workspace not in found and self.get(self.default_workspace).hubspot.polling:
            found.append(self.default_workspace)
        return found


def workspace_repository(client: Any, settings: Settings) -> WorkspaceRepository:
    """The repository as every function builds it: the deployment's burst limit, and its own portal and app for
    the default workspace."""
    return WorkspaceRepository(
        client,
        settings.state_table,
        burst_limit=settings.hubspot_burst_limit,
        default_workspace=settings.default_workspace,
        default_hubspot=HubSpotSettings(
            portal_id=settings.hubspot_portal_id or None,
            app_id=settings.hubspot_app_id or None,
            polling=settings.hubspot_polling,
        ),
        cache_seconds=settings.workspace_cache_seconds,
    )
