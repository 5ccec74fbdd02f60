"""Run statistics per workspace (GET /status ``stats``), the run events behind the activity feed, and the summary
(GET /summary) built from the contact counters' facets.

A *run* is what the enrich or sync function does with one queue message: up to 100 (enrichment) or 500 (sync)
contacts. ``RunRecorder`` is what the two services call around each run:

- it publishes ``enrichment.started`` / ``sync.started`` when the run begins and ``*.completed`` or ``*.failed``
  with the run's counts when it ends (``RunEvent``); the ActivityRule takes them from the bus to the activity feed;
- it adds the finished run's counts to the workspace's stats item with ONE ``UpdateItem`` (``ADD``), and sets the
  stage's last run.

Both are telemetry: the run's contacts are already written when they happen, so a failure to record is logged and
counted (metric ``RunRecordsLost``) instead of failing -- and so repeating -- the run.

Stats item, in the state table: ``pk = STATS#{ws}``, ``sk = runs``, flat attributes ``{stage}:{count}``
(``enrichment:enriched``, ``sync:hubspot_429s``, ``enrichment:runs``, ``enrichment:failed_runs``, ...) and
``{stage}:last`` (a map: request id, time, outcome, counts, error). Counts are cumulative since the workspace's first
recorded run; the contacts' current pipeline statuses are the contact counters' business (``ContactRepository``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, Field

from leadpipe.contacts import FACET_PREFIX, SCORED_FACET
from leadpipe.dynamo import from_item, to_attr
from leadpipe.enrichment.fields import EMPLOYEE_RANGES
from leadpipe.errors import LeadpipeError
from leadpipe.events import EventPublisher
from leadpipe.models import (
    DETAIL_ENRICHMENT_COMPLETED,
    DETAIL_ENRICHMENT_FAILED,
    DETAIL_ENRICHMENT_STARTED,
    DETAIL_SYNC_COMPLETED,
    DETAIL_SYNC_FAILED,
    DETAIL_SYNC_STARTED,
    PipelineStatus,
    RunEvent,
    utcnow,
)
from leadpipe.observability import count, logger

Stage = Literal["enrichment", "sync"]
STAGES: tuple[Stage, ...] = ("enrichment", "sync")
STATS_SK = "runs"
MAX_ERROR = 500
# started, completed, failed
RUN_DETAIL_TYPES: dict[Stage, tuple[str, str, str]] = {
    "enrichment": (DETAIL_ENRICHMENT_STARTED, DETAIL_ENRICHMENT_COMPLETED, DETAIL_ENRICHMENT_FAILED),
    "sync": (DETAIL_SYNC_STARTED, DETAIL_SYNC_COMPLETED, DETAIL_SYNC_FAILED),
}


def stats_key(workspace: str) -> dict[str, Any]:
    return {"pk": {"S": f"STATS#{workspace}"}, "sk": {"S": STATS_SK}}


class LastRun(BaseModel):
    request_id: str
    at: datetime
    outcome: Literal["completed", "failed"]
    counts: dict[str, int] = Field(default_factory=dict)
    error: str | None = None


class StageTotals(BaseModel):
    runs: int = Field(0, description="runs recorded (one per queue message of contacts)")
    failed_runs: int = Field(0, description="runs that ended in an error (their message is retried)")
    counts: dict[str, int] = Field(default_factory=dict, description="the runs' counts, added up")


class LastRuns(BaseModel):
    enrichment: LastRun | None = Field(None, description="the enrichment run that finished last")
    sync: LastRun | None = Field(None, description="the sync run that finished last")


class RunStats(BaseModel):
    enrichment: StageTotals = Field(default_factory=StageTotals)
    sync: StageTotals = Field(default_factory=StageTotals)
    last_run: LastRuns = Field(default_factory=LastRuns)


class StatsRepository:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def record(
        self,
        workspace: str,
        stage: Stage,
        *,
        request_id: str,
        at: datetime,
        counts: Mapping[str, int],
        error: str | None = None,
    ) -> None:
        """Add one finished run to the workspace's stats: one UpdateItem."""
        last = LastRun(
            request_id=request_id,
            at=at,
            outcome="failed" if error is not None else "completed",
            counts=dict(counts),
            error=error,
        )
        names = {"#runs": f"{stage}:runs", "#last": f"{stage}:last"}
        values: dict[str, Any] = {":one": {"N": "1"}, ":last": to_attr(last.model_dump(mode="json", exclude_none=True))}
        adds = ["#runs :one"]
        if error is not None:
            names["#failed"] = f"{stage}:failed_runs"
            adds.append("#failed :one")
        for i, (name, value) in enumerate(sorted(counts.items())):
            if value:
                names[f"#c{i}"] = f"{stage}:{name}"
                values[f":c{i}"] = {"N": str(int(value))}
                adds.append(f"#c{i} :c{i}")
        self.client.update_item(
            TableName=self.table,
            Key=stats_key(workspace),
            UpdateExpression=f"ADD {', '.join(adds)} SET #last = :last",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def get(self, workspace: str) -> RunStats:
        item = self.client.get_item(TableName=self.table, Key=stats_key(workspace), ConsistentRead=True).get("Item")
        return parse_stats(from_item(item) if item else {})


def parse_stats(data: Mapping[str, Any]) -> RunStats:
    """The stats item's flat attributes -> per-stage totals."""
    stats = RunStats()
    for name, value in data.items():
        stage, sep, what = name.partition(":")
        if not sep or stage not in STAGES:
            continue
        totals: StageTotals = getattr(stats, stage)
        if what == "last":
            setattr(stats.last_run, stage, LastRun.model_validate(value))
        elif what == "runs":
            totals.runs = int(value)
        elif what == "failed_runs":
            totals.failed_runs = int(value)
        else:
            totals.counts[what] = int(value)
    return stats


def hit_rate(hits: int, lookups: int) -> float | None:
    """Share of cache lookups answered from the cache (None before any lookup)."""
    return round(hits / lookups, 4) if lookups else None


class _Counted(Protocol):
    """A run's report as the recorder reads it (EnrichReport, SyncReport)."""

    @property
    def contacts(self) -> int: ...

    def counts(self) -> dict[str, int]: ...


class RunRecorder:
    """Announces a stage's runs on the bus and adds their counts to the workspace's stats (see the module doc)."""

    def __init__(
        self,
        stage: Stage,
        *,
        publisher: EventPublisher | None,
        stats: StatsRepository | None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.stage = stage
        self.publisher = publisher
        self.stats = stats
        self.clock = clock

    @contextmanager
    def run(self, workspace: str, request_id: str, report: _Counted) -> Iterator[None]:
        """Announce the run, run the body, then record how it ended: the report's counts, and the error if the
        body raised (which is re-raised: the message is retried)."""
        self.started(workspace, request_id, report.contacts)
        try:
            yield
        except Exception as exc:
            self.finished(workspace, request_id, report.counts(), f"{type(exc).__name__}: {exc}")
            raise
        self.finished(workspace, request_id, report.counts())

    def started(self, workspace: str, request_id: str, contacts: int) -> None:
        event = RunEvent(workspace=workspace, request_id=request_id, at=self.clock(), counts={"contacts": contacts})
        self._quietly("run start", lambda: self._publish(RUN_DETAIL_TYPES[self.stage][0], event))

    def finished(self, workspace: str, request_id: str, counts: Mapping[str, int], error: str | None = None) -> None:
        """The run ended: ``error`` None when it completed (some contacts may have failed: see ``counts``)."""
        at = self.clock()
        error = error[:MAX_ERROR] if error is not None else None
        if self.stats is not None:
            stats = self.stats
            self._quietly(
                "run stats",
                lambda: stats.record(workspace, self.stage, request_id=request_id, at=at, counts=counts, error=error),
            )
        event = RunEvent(workspace=workspace, request_id=request_id, at=at, counts=dict(counts), error=error)
        _, completed, failed = RUN_DETAIL_TYPES[self.stage]
        self._quietly("run end", lambda: self._publish(failed if error is not None else completed, event))

    def _publish(self, detail_type: str, event: RunEvent) -> None:
        if self.publisher is not None:
            self.publisher.publish(detail_type, [event])

    def _quietly(self, what: str, action: Callable[[], None]) -> None:
        try:
            action()
        except (LeadpipeError, ClientError, BotoCoreError) as exc:
            logger.warning(f"{what} not recorded", extra={"stage": self.stage, "error": f"{type(exc).__name__}: {exc}"})
            count("RunRecordsLost")


# ---------------------------------------------------------------------------------------------- GET /status, /summary


class StatusStats(BaseModel):
    """GET /status ``stats``: the contacts' statuses now (the counters) and what the runs did (the stats item)."""

    total: int = Field(description="contacts in the workspace")
    by_status: dict[str, int] = Field(description="contacts per pipeline status now")
    enriched: int = Field(description="contacts the enrichment runs enriched, added up (a re-enrichment counts again)")
    synced: int = Field(description="contacts the sync runs synced, added up")
    failed: int = Field(description="contacts whose enrichment or sync failed in a run, added up")
    cache_hits: int = Field(description="provider answers taken from the enrichment cache")
    cache_lookups: int = Field(description="provider answers looked up in the cache (hits and misses)")
    cache_hit_rate: float | None = Field(description="cache_hits / cache_lookups (none before any lookup)")
    provider_calls: int = Field(description="calls made to enrichment providers (one per batch asked)")
    hubspot_calls: int = Field(description="HubSpot requests the sync runs made")
    hubspot_429s: int = Field(description="429 answers HubSpot gave the sync runs (each waited out and retried)")
    enrichment: StageTotals
    sync: StageTotals
    last_run: LastRuns


def status_stats(runs: RunStats, by_status: Mapping[str, int]) -> StatusStats:
    e, s = runs.enrichment.counts, runs.sync.counts
    hits, lookups = e.get("cache_hits", 0), e.get("cache_lookups", 0)
    return StatusStats(
        total=sum(by_status.values()),
        by_status=dict(by_status),
        enriched=e.get("enriched", 0),
        synced=s.get("synced", 0),
        failed=e.get("failed", 0) + s.get("failed", 0),
        cache_hits=hits,
        cache_lookups=lookups,
        cache_hit_rate=hit_rate(hits, lookups),
        provider_calls=e.get("provider_calls", 0),
        hubspot_calls=s.get("hubspot_calls", 0),
        hubspot_429s=s.get("hubspot_429s", 0),
        enrichment=runs.enrichment,
        sync=runs.sync,
        last_run=runs.last_run,
    )


class FacetCount(BaseModel):
    value: str = Field(description="lower case, at most 64 characters")
    contacts: int
    share: float = Field(description="of the workspace's contacts")


class ProviderCoverage(BaseModel):
    provider: str
    contacts: int = Field(description="contacts with at least one kept value from this provider")
    share: float = Field(description="of the workspace's contacts")
    share_of_enriched: float | None = Field(description="of the contacts with a quality score")


class QualityBucket(BaseModel):
    range: str = Field(description='"0.7-0.8": 0.7 <= quality < 0.8 (the last bucket includes 1.0)')
    contacts: int


class Summary(BaseModel):
    total: int = Field(description="contacts in the workspace")
    enriched: int = Field(description="contacts with a quality score")
    industries: list[FacetCount] = Field(description="the most common industries, most contacts first")
    company_sizes: list[FacetCount] = Field(description="employee ranges, smallest first")
    countries: list[FacetCount] = Field(description="the most common countries, most contacts first")
    coverage: list[ProviderCoverage] = Field(description="coverage by provider, most contacts first")
    quality: list[QualityBucket] = Field(description="quality scores in buckets of 0.1")


def summarise(totals: Mapping[str, int], *, top: int = 10) -> Summary:
    """The summary from the contact counters (``ContactRepository.counter_totals``): no contact is read."""
    total = sum(totals.get(s.value, 0) for s in PipelineStatus)
    scored = totals.get(SCORED_FACET, 0)
    facets: dict[str, dict[str, int]] = {}
    for name, n in totals.items():
        if name.startswith(FACET_PREFIX) and n > 0:
            facet, sep, value = name[len(FACET_PREFIX) :].partition(":")
            if sep:
                facets.setdefault(facet, {})[value] = n

    def share(n: int, of: int) -> float:
        return round(n / of, 4) if of else 0.0

    def ranked(facet: str, limit: int | None) -> list[FacetCount]:
        values = sorted(facets.get(facet, {}).items(), key=lambda kv: (-kv[1], kv[0]))
        return [FacetCount(value=v, contacts=n, share=share(n, total)) for v, n in values[:limit]]

    size_order = {r: i for i, r in enumerate(EMPLOYEE_RANGES)}
    sizes = sorted(ranked("size", None), key=lambda f: (size_order.get(f.value, len(size_order)), f.value))
    buckets = facets.get("quality", {})
    return Summary(
        total=total,
        enriched=scored,
        industries=ranked("industry", top),
        company_sizes=sizes,
        countries=ranked("country", top),
        coverage=[
            ProviderCoverage(
                provider=f.value,
                contacts=f.contacts,
                share=f.share,
                share_of_enriched=share(f.contacts, scored) if scored else None,
            )
            for f in ranked("provider", None)
        ],
        quality=[
            QualityBucket(range=f"{b / 10:.1f}-{(b + 1) / 10:.1f}", contacts=buckets.get(f"{b / 10:.1f}", 0))
            for b in range(10)
        ],
    )
