"""Per-workspace settings (a workspace is one HubSpot portal): sync options, the property mapping and overwrite
policies, the portal's burst limit. Stored in the state table (``pk = W#{ws}``, ``sk = settings``); a workspace
without stored settings uses the defaults. Secrets (the HubSpot token, provider keys) are never stored here: they
live in SSM Parameter Store."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from leadpipe.dynamo import from_item, to_item
from leadpipe.hubspot.mapping import DEFAULT_MAPPING, PropertyMapping
from leadpipe.models import SyncOptions, Workspace, utcnow

CACHE_SECONDS = 60.0


class SyncSettings(BaseModel):
    options: SyncOptions = Field(default_factory=SyncOptions)
    mapping: list[PropertyMapping] = Field(default_factory=lambda: list(DEFAULT_MAPPING))
    burst_limit: Literal[100, 190] = Field(100, description="requests per 10 s the portal allows a private app")


class WorkspaceSettings(BaseModel):
    workspace: Workspace
    sync: SyncSettings = Field(default_factory=SyncSettings)
    updated_at: datetime | None = None


class WorkspaceRepository:
    def __init__(
        self, client: Any, table: str, *, burst_limit: int = 100, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.client = client
        self.table = table
        self.clock = clock
        self.default_burst = 190 if burst_limit >= 190 else 100  # the deployment's HubSpotBurstLimit
        self._cache: dict[str, tuple[float, WorkspaceSettings]] = {}

    def get(self, workspace: str) -> WorkspaceSettings:
        cached = self._cache.get(workspace)
        if cached and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        item = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": f"W#{workspace}"}, "sk": {"S": "settings"}}
        ).get("Item")
        settings = WorkspaceSettings(workspace=workspace, sync=SyncSettings(burst_limit=self.default_burst))
        if item:
            data = from_item(item)
            settings = WorkspaceSettings.model_validate(data.get("settings", {}) | {"workspace": workspace})
        self._cache[workspace] = (time.monotonic(), settings)
        return settings

    def put(self, settings: WorkspaceSettings) -> WorkspaceSettings:
        stored = settings.model_copy(update={"updated_at": self.clock()})
        item = to_item({"pk": f"W#{stored.workspace}", "sk": "settings", "settings": stored.model_dump(mode="json")})
        self.client.put_item(TableName=self.table, Item=item)
        self._cache[stored.workspace] = (time.monotonic(), stored)
        return stored
