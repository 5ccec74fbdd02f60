"""Function settings, parsed once per container from the environment into a validated model.

Every variable is set by ``template.yaml`` (Globals or the function's own Environment); the local runtime sets the
same variables from the same template. A missing or malformed value fails fast with the variable's name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from leadpipe.errors import ConfigurationError

WORKSPACE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


def _env(name: str, **kw: object) -> object:
    return Field(alias=name, **kw)  # type: ignore[call-overload]


class Settings(BaseModel):
    """Typed view of the environment. Field aliases are the environment variable names."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    stage: Annotated[str, _env("STAGE")] = "dev"
    contacts_table: Annotated[str, _env("CONTACTS_TABLE")] = ""
    state_table: Annotated[str, _env("STATE_TABLE")] = ""
    event_bus_name: Annotated[str, _env("EVENT_BUS_NAME")] = ""
    uploads_bucket: Annotated[str, _env("UPLOADS_BUCKET")] = ""
    import_queue_url: Annotated[str, _env("IMPORT_QUEUE_URL")] = ""
    enrich_queue_url: Annotated[str, _env("ENRICH_QUEUE_URL")] = ""
    enrich_cache_table: Annotated[str, _env("ENRICH_CACHE_TABLE")] = ""
    sync_queue_url: Annotated[str, _env("SYNC_QUEUE_URL")] = ""
    hubspot_base_url: Annotated[str, _env("HUBSPOT_BASE_URL")] = "https://api.hubapi.com"
    lemlist_base_url: Annotated[str, _env("LEMLIST_BASE_URL")] = "https://api.lemlist.com/api"
    sync_concurrency: Annotated[int, _env("SYNC_CONCURRENCY", ge=1, le=1000)] = 2
    hubspot_burst_limit: Annotated[int, _env("HUBSPOT_BURST_LIMIT", ge=1, le=1000)] = 100
    change_queue_url: Annotated[str, _env("CHANGE_QUEUE_URL")] = ""
    deal_queue_url: Annotated[str, _env("DEAL_QUEUE_URL")] = ""
    activity_queue_url: Annotated[str, _env("ACTIVITY_QUEUE_URL")] = ""
    # The dead-letter queues (erasure removes the messages that mention an erased email from them).
    import_dlq_url: Annotated[str, _env("IMPORT_DLQ_URL")] = ""
    enrich_dlq_url: Annotated[str, _env("ENRICH_DLQ_URL")] = ""
    sync_dlq_url: Annotated[str, _env("SYNC_DLQ_URL")] = ""
    change_dlq_url: Annotated[str, _env("CHANGE_DLQ_URL")] = ""
    deal_dlq_url: Annotated[str, _env("DEAL_DLQ_URL")] = ""
    activity_dlq_url: Annotated[str, _env("ACTIVITY_DLQ_URL")] = ""
    deals_schedule: Annotated[str, _env("DEALS_SCHEDULE")] = "cron(0 7 1 * ? *)"
    serper_base_url: Annotated[str, _env("SERPER_BASE_URL")] = "https://google.serper.dev"
    # Change capture: the deployment's own portal and app (the default workspace's, unless a workspace stores its
    # own), the webhook signature versions accepted besides v3, the polling lookback for search's lag.
    hubspot_portal_id: Annotated[int, _env("HUBSPOT_PORTAL_ID", ge=0)] = 0
    hubspot_app_id: Annotated[int, _env("HUBSPOT_APP_ID", ge=0)] = 0
    webhook_signature_versions: Annotated[str, _env("WEBHOOK_SIGNATURE_VERSIONS", pattern=r"^v[123](,v[123])*$")] = "v3"
    poll_lookback_minutes: Annotated[int, _env("POLL_LOOKBACK_MINUTES", ge=0, le=1440)] = 5
    hubspot_polling: Annotated[bool, _env("HUBSPOT_POLLING")] = False
    # The fraction of the portal's HubSpot limits this function's containers share between them (the sync function
    # most of it; the change consumer and the poller the rest), and how many of them run at once.
    hubspot_limit_share: Annotated[float, _env("HUBSPOT_LIMIT_SHARE", gt=0.0, le=1.0)] = 1.0
    hubspot_containers: Annotated[int, _env("HUBSPOT_CONTAINERS", ge=1, le=1000)] = 1
    suppression_salt_secret: Annotated[str, _env("SUPPRESSION_SALT_SECRET")] = ""
    provider_keys_path: Annotated[str, _env("PROVIDER_KEYS_PATH")] = ""

    auto_enrich_on_import: Annotated[bool, _env("AUTO_ENRICH_ON_IMPORT")] = False
    auto_sync_after_enrich: Annotated[bool, _env("AUTO_SYNC_AFTER_ENRICH")] = False
    # Enrichment data older than this many days is purged daily (retention.py); 0 switches the purge off. Declared
    # before the cache's days, which it bounds (see _within_retention).
    retention_days: Annotated[int, _env("RETENTION_DAYS", ge=0, le=3650)] = 365
    cache_days: Annotated[int, _env("CACHE_DAYS", ge=1, le=3650)] = 30
    min_quality: Annotated[float, _env("MIN_QUALITY", ge=0.0, le=1.0)] = 0.7
    default_workspace: Annotated[str, _env("DEFAULT_WORKSPACE", pattern=WORKSPACE_PATTERN)] = "default"
    # How long a container keeps a workspace's settings (thresholds, switches, mapping, portal) before reading them
    # again: a change made through the API reaches the other containers within this many seconds.
    workspace_cache_seconds: Annotated[float, _env("WORKSPACE_CACHE_SECONDS", ge=0, le=3600)] = 60.0

    # Enrichment: providers in waterfall order, the confidence a field needs before later providers are skipped,
    # how long misses are cached, how many enrich containers run at once (each keeps 1/N of a provider's rate
    # limit), when a failed enrichment is retried.
    enrich_providers: Annotated[str, _env("ENRICH_PROVIDERS")] = "sample,sample-web,apollo,pdl,hunter,dropcontact"
    enrich_field_threshold: Annotated[float, _env("ENRICH_FIELD_THRESHOLD", ge=0.0, le=1.0)] = 0.7
    cache_miss_days: Annotated[int, _env("CACHE_MISS_DAYS", ge=1, le=3650)] = 7
    enrich_concurrency: Annotated[int, _env("ENRICH_CONCURRENCY", ge=1, le=1000)] = 2
    enrich_retry_minutes: Annotated[int, _env("ENRICH_RETRY_MINUTES", ge=1)] = 60
    # a contact enriched while a provider was down is enriched again this long after (enrichment/gaps.py)
    enrich_gap_retry_minutes: Annotated[int, _env("ENRICH_GAP_RETRY_MINUTES", ge=0)] = 60
    # a note create that timed out may still be carried out by HubSpot: its contact's notes are read back only this
    # long after that attempt (before, the contact waits for the sync retry) (hubspot/sync.py)
    hubspot_note_settle_seconds: Annotated[int, _env("HUBSPOT_NOTE_SETTLE_SECONDS", ge=0, le=600)] = 120
    # how long another delivery's sync attempt of a contact may still be running (the sync function's timeout; the
    # template sets it): a contact found ``syncing`` is not read back before then (hubspot/sync.py)
    sync_inflight_seconds: Annotated[int, _env("SYNC_INFLIGHT_SECONDS", ge=0, le=900)] = 300
    enrich_time_margin_ms: Annotated[int, _env("ENRICH_TIME_MARGIN_MS", ge=0)] = 30_000
    enrich_max_polls: Annotated[int, _env("ENRICH_MAX_POLLS", ge=1)] = 40

    # Import tuning. Rows are written in chunks; after each chunk the job checkpoint advances, and when less than
    # the margin of the invocation's time is left, the rest continues in a follow-up message.
    import_chunk_rows: Annotated[int, _env("IMPORT_CHUNK_ROWS", ge=1, le=10_000)] = 500
    import_time_margin_ms: Annotated[int, _env("IMPORT_TIME_MARGIN_MS", ge=0)] = 30_000
    import_max_receives: Annotated[int, _env("IMPORT_MAX_RECEIVES", ge=1)] = 5
    max_row_bytes: Annotated[int, _env("MAX_ROW_BYTES", ge=1024)] = 1024 * 1024
    max_body_bytes: Annotated[int, _env("MAX_BODY_BYTES", ge=1024)] = 5 * 1024 * 1024
    upload_url_ttl_seconds: Annotated[int, _env("UPLOAD_URL_TTL_SECONDS", ge=60, le=43_200)] = 900

    @field_validator("auto_enrich_on_import", "auto_sync_after_enrich", "hubspot_polling", mode="before")
    @classmethod
    def _parse_bool(cls, value: object) -> object:
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in {"true", "1", "yes", "on"}:
                return True
            if lowered in {"false", "0", "no", "off", ""}:
                return False
        return value

    @field_validator("cache_days", "cache_miss_days")
    @classmethod
    def _within_retention(cls, value: int, info: ValidationInfo) -> int:
        """A cached answer never outlives the retention period: with the purge on, CACHE_DAYS and CACHE_MISS_DAYS
        are at most RETENTION_DAYS (DynamoDB's TTL then deletes the entry, and readers ignore it once expired)."""
        retention = info.data.get("retention_days")
        return min(value, retention) if isinstance(retention, int) and retention > 0 else value

    @property
    def provider_order(self) -> list[str]:
        return [p.strip() for p in self.enrich_providers.split(",") if p.strip()]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        source = os.environ if env is None else env
        try:
            return cls.model_validate(dict(source))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
            raise ConfigurationError(f"invalid environment: {problems}") from exc

    @property
    def dlq_urls(self) -> dict[str, str]:
        """The configured dead-letter queues by name (import, enrich, sync, change, deal, activity)."""
        urls = {
            "import": self.import_dlq_url,
            "enrich": self.enrich_dlq_url,
            "sync": self.sync_dlq_url,
            "change": self.change_dlq_url,
            "deal": self.deal_dlq_url,
            "activity": self.activity_dlq_url,
        }
        return {name: url for name, url in urls.items() if url}

    def require(self, *names: str) -> Settings:
        """Fail with the environment variable names of every required setting that is empty."""
        missing = [str(Settings.model_fields[name].alias or name).upper() for name in names if not getattr(self, name)]
        if missing:
            raise ConfigurationError(f"missing environment variable(s): {', '.join(missing)}")
        return self


@cache
def get_settings() -> Settings:
    """The container's settings, parsed once."""
    return Settings.from_env()
