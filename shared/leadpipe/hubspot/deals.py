"""Closed deals from HubSpot, read through ``HubSpotClient``: the pipelines' closed stages, and the deals closed in a
time window, each won or lost, with the ids of its contacts and companies.

How HubSpot marks a stage won or lost
-------------------------------------
Nothing in a stage's id or label says it: ids and labels belong to the portal (``closedwon``/"Closed Won" in the
default "Sales Pipeline", ``9912345``/"Signed" in a pipeline someone set up). What decides is each stage's
``metadata`` in ``GET /crm/v3/pipelines/deals``, whose values are strings:

- ``isClosed``: ``"true"`` for a stage that closes the deal;
- ``probability``: the deal probability of the stage, ``"0.0"`` to ``"1.0"``; HubSpot's pipelines guide: "0.0 being
  Closed Lost and 1.0 being Closed Won".

A closed stage at probability 1.0 is therefore won and one at 0.0 lost; HubSpot derives the deal properties
``hs_is_closed`` and ``hs_is_closed_won`` from the same settings. A closed stage with another probability (or none)
decides nothing by itself (``Stage.won`` is None): each of its deals is taken as its own ``hs_is_closed_won`` says,
and skipped, with the reason logged, when that property has no value.

How the deals are found
-----------------------
- The deals search (``POST /crm/v3/objects/deals/search``): ``dealstage IN [closed stage ids]`` and ``closedate
  BETWEEN since AND until`` (epoch milliseconds, both ends included), newest first (``closedate`` descending), 200 a
  page. An ``IN`` filter takes 100 values, so a portal with more closed stages gets one filter group (OR'ed) per 100,
  up to HubSpot's five groups.
- HubSpot answers at most 10,000 results for one query and refuses (400) a page past them. Before the next page
  would pass that cap, the search starts again with the window's upper end lowered to the oldest close date read so
  far; the deals already read at that instant come back and are dropped. When all of a query's results share one
  close date, that instant is read by record id (``closedate EQ t AND hs_object_id GT last``, by id) and the window
  goes on below it. Every restart is strictly further on, so the search ends.
- With ``limit``: the newest ``limit`` deals; the search stops as soon as it has them.
- Then the contacts and the companies of the deals found, with v4 association batch reads: one call per 1,000 deals
  and object type (and one more for the few deals with more associations than one answer holds), never one a deal.

Search results lag writes by seconds (HubSpot's search is eventually consistent): a deal closed moments ago may be
missing, and one whose stage changed moments ago may come with its old one. Within one query, ``after`` paging
assumes the matching deals do not change while they are read (closed deals rarely do). Deals whose pipeline is
archived are not found: ``GET /crm/v3/pipelines/deals`` lists live pipelines only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from leadpipe.hubspot.client import SEARCH_IN_VALUES_MAX, SEARCH_PAGE_MAX
from leadpipe.observability import logger

OBJECT_TYPE = "deals"
SEARCH_RESULTS_MAX = 10_000  # results HubSpot answers for one search query
SEARCH_FILTER_GROUPS_MAX = 5
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DEAL_PROPERTIES = (
    "dealname",
    "amount",
    "dealstage",
    "pipeline",
    "closedate",
    "hs_is_closed",
    "hs_is_closed_won",
    "hs_object_id",
)

Outcome = Literal["won", "lost"]


class DealsClient(Protocol):
    """What this module needs of ``HubSpotClient``."""

    def pipelines(self, object_type: str = ...) -> list[dict[str, Any]]: ...

    def search(self, object_type: str, request: Mapping[str, Any]) -> dict[str, Any]: ...

    def associations(self, from_type: str, to_type: str, ids: Sequence[str]) -> dict[str, list[str]]: ...


@dataclass(frozen=True, slots=True)
class Stage:
    """A deal stage. ``won``: True (closed won), False (closed lost), None (open, or closed without a deciding
    probability: its deals' ``hs_is_closed_won`` decides)."""

    id: str
    label: str
    pipeline_id: str
    is_closed: bool
    won: bool | None
    probability: float | None = None
    pipeline_label: str = ""


@dataclass(frozen=True, slots=True)
class Pipeline:
    id: str
    label: str
    stages: tuple[Stage, ...]


@dataclass(slots=True)
class ClosedDeal:
    """A won or lost deal. ``pipeline`` and ``stage`` are HubSpot's ids (labels alongside, for people)."""

    id: str
    name: str
    pipeline: str
    stage: str
    outcome: Outcome
    amount: float | None
    closed_at: datetime
    contact_ids: list[str] = field(default_factory=list)
    company_ids: list[str] = field(default_factory=list)
    pipeline_label: str = ""
    stage_label: str = ""


@dataclass(slots=True)
class ClosedDealScan:
    """What ``scan_closed_deals`` found: the deals, newest first, and the closed deals it could not use, with why."""

    deals: list[ClosedDeal] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (deal id, reason)


# ------------------------------------------------------------------------------------------------ values


def _flag(value: Any) -> bool | None:
    """HubSpot's booleans are the strings "true" and "false"."""
    text = str(value).strip().lower() if value is not None else ""
    return True if text == "true" else False if text == "false" else None


def _number(value: Any) -> float | None:
    if value is None or str(value).strip() == "":
        return None
    try:
        return float(str(value))
    except ValueError:
        return None


def to_epoch_ms(moment: datetime) -> int:
    """A datetime as HubSpot's datetime filters take it (epoch milliseconds); a naive one is taken as UTC."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return (aware - EPOCH) // timedelta(milliseconds=1)


def _moment(value: Any) -> datetime | None:
    """A datetime property value (ISO 8601, as HubSpot answers, or epoch milliseconds) in UTC."""
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    if text.lstrip("-").isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _ms_of(result: Mapping[str, Any]) -> int | None:
    moment = _moment((result.get("properties") or {}).get("closedate"))
    return to_epoch_ms(moment) if moment is not None else None


# ------------------------------------------------------------------------------------------------ pipelines


def stage_from(raw: Mapping[str, Any], pipeline_id: str, pipeline_label: str = "") -> Stage:
    """A stage of ``GET /crm/v3/pipelines/deals``, won or lost as its metadata says (see the module's docstring)."""
    metadata = raw.get("metadata") or {}
    is_closed = _flag(metadata.get("isClosed")) is True
    probability = _number(metadata.get("probability"))
    won: bool | None = None
    if is_closed and probability == 1.0:
        won = True
    elif is_closed and probability == 0.0:
        won = False
    return Stage(
        id=str(raw.get("id") or ""),
        label=str(raw.get("label") or ""),
        pipeline_id=pipeline_id,
        is_closed=is_closed,
        won=won,
        probability=probability,
        pipeline_label=pipeline_label,
    )


def deal_pipelines(client: DealsClient) -> list[Pipeline]:
    """The portal's deal pipelines with their stages, in HubSpot's order."""
    found: list[Pipeline] = []
    for raw in client.pipelines(OBJECT_TYPE):
        pipeline_id, label = str(raw.get("id") or ""), str(raw.get("label") or "")
        stages = sorted(raw.get("stages") or [], key=lambda s: int(s.get("displayOrder") or 0))
        found.append(Pipeline(pipeline_id, label, tuple(stage_from(s, pipeline_id, label) for s in stages)))
    return found


def closed_stages(client: DealsClient) -> dict[str, Stage]:
    """Every closed stage of every deal pipeline, by stage id (won, lost, or ``won=None`` when its probability does
    not decide). Stage ids are unique in a portal; should one repeat, the first pipeline's stage is kept."""
    stages: dict[str, Stage] = {}
    for pipeline in deal_pipelines(client):
        for stage in pipeline.stages:
            if not stage.is_closed or not stage.id:
                continue
            if stage.id in stages:
                logger.warning("deal stage id repeated across pipelines", extra={"stage": stage.id})
                continue
            if stage.won is None:
                logger.info(
                    "closed deal stage without a deciding probability: its deals' hs_is_closed_won decides",
                    extra={"stage": stage.id, "label": stage.label, "probability": stage.probability},
                )
            stages[stage.id] = stage
    return stages


# ------------------------------------------------------------------------------------------------ search


def _request(
    in_stages: list[dict[str, Any]],
    filters: list[dict[str, Any]],
    sort: str,
    direction: str,
    limit: int,
    after: str | None,
) -> dict[str, Any]:
    """A deals search: one filter group per ``dealstage IN`` filter (groups are OR'ed), each with ``filters``."""
    request: dict[str, Any] = {
        "filterGroups": [{"filters": [stages, *filters]} for stages in in_stages],
        "sorts": [{"propertyName": sort, "direction": direction}],
        "properties": list(DEAL_PROPERTIES),
        "limit": limit,
    }
    if after:
        request["after"] = after
    return request


def _query(
    client: DealsClient,
    in_stages: list[dict[str, Any]],
    filters: list[dict[str, Any]],
    sort: str,
    direction: str,
    cap: int,
    page_size: int,
) -> Iterator[tuple[list[dict[str, Any]], bool]]:
    """The pages of one query, each with whether the cap stopped the query there (a page past ``cap`` results would
    be refused): True only on a last page that is not the query's end."""
    read = 0
    after: str | None = None
    while True:
        limit = min(page_size, cap - read)
        page = client.search(OBJECT_TYPE, _request(in_stages, filters, sort, direction, limit, after))
        results = [r for r in page.get("results") or [] if isinstance(r, dict)]
        read += len(results)
        following = ((page.get("paging") or {}).get("next") or {}).get("after")
        more = bool(following) and bool(results)
        capped = more and read >= cap
        yield results, capped
        if not more or capped:
            return
        after = str(following)


def _search_closed(
    client: DealsClient, stage_ids: Sequence[str], since_ms: int, until_ms: int, cap: int, page_size: int
) -> Iterator[dict[str, Any]]:
    """Every deal in one of ``stage_ids`` closed in [since_ms, until_ms], newest first, each once. Up to 500 closed
    stages go in one query (five filter groups of 100); more take one query each, newest first within each."""
    seen: set[str] = set()
    per_query = SEARCH_IN_VALUES_MAX * SEARCH_FILTER_GROUPS_MAX
    for start in range(0, len(stage_ids), per_query):
        chosen = list(stage_ids[start : start + per_query])
        in_stages = [
            {"propertyName": "dealstage", "operator": "IN", "values": chosen[i : i + SEARCH_IN_VALUES_MAX]}
            for i in range(0, len(chosen), SEARCH_IN_VALUES_MAX)
        ]
        high = until_ms
        while high >= since_ms:
            window = {
                "propertyName": "closedate",
                "operator": "BETWEEN",
                "value": str(since_ms),
                "highValue": str(high),
            }
            newest: int | None = None
            oldest: int | None = None
            capped = False
            for results, stopped in _query(client, in_stages, [window], "closedate", "DESCENDING", cap, page_size):
                capped = stopped
                for result in results:
                    ms = _ms_of(result)
                    if ms is not None:
                        newest = ms if newest is None else max(newest, ms)
                        oldest = ms if oldest is None else min(oldest, ms)
                    deal_id = str(result.get("id") or "")
                    if deal_id and deal_id not in seen:
                        seen.add(deal_id)
                        yield result
            if not capped or oldest is None or newest is None:
                break
            if newest == oldest:  # more deals closed at one instant than one query answers: read it by id
                yield from _search_instant(client, in_stages, oldest, seen, cap, page_size)
                high = oldest - 1
            else:
                high = oldest  # the deals already read at ``oldest`` come back and are dropped


def _search_instant(
    client: DealsClient, in_stages: list[dict[str, Any]], instant: int, seen: set[str], cap: int, page_size: int
) -> Iterator[dict[str, Any]]:
    """Every deal in the stages closed at ``instant`` (epoch ms), by record id."""
    last = 0
    while True:
        filters = [
            {"propertyName": "closedate", "operator": "EQ", "value": str(instant)},
            {"propertyName": "hs_object_id", "operator": "GT", "value": str(last)},
        ]
        highest = last
        capped = False
        for results, stopped in _query(client, in_stages, filters, "hs_object_id", "ASCENDING", cap, page_size):
            capped = stopped
            for result in results:
                deal_id = str(result.get("id") or "")
                if deal_id.isdigit():
                    highest = max(highest, int(deal_id))
                if deal_id and deal_id not in seen:
                    seen.add(deal_id)
                    yield result
        if not capped or highest == last:
            return
        last = highest


# ------------------------------------------------------------------------------------------------ deals


def _closed_deal(result: Mapping[str, Any], stages: Mapping[str, Stage]) -> ClosedDeal | str:
    """A search result as a ``ClosedDeal``, or why it cannot be one."""
    props = result.get("properties") or {}
    deal_id = str(result.get("id") or props.get("hs_object_id") or "")
    stage = stages.get(str(props.get("dealstage") or ""))
    if stage is None:
        return f"stage {props.get('dealstage')!r} is not a closed stage of any deal pipeline"
    closed_at = _moment(props.get("closedate"))
    if closed_at is None:
        return f"close date {props.get('closedate')!r} is not a date"
    won = stage.won
    if won is None:
        won = _flag(props.get("hs_is_closed_won"))
        if won is None:
            return (
                f"stage {stage.id} ({stage.label}) is closed at probability {stage.probability}, neither won (1.0) "
                "nor lost (0.0), and the deal has no hs_is_closed_won"
            )
    return ClosedDeal(
        id=deal_id,
        name=str(props.get("dealname") or ""),
        pipeline=str(props.get("pipeline") or stage.pipeline_id),
        stage=stage.id,
        outcome="won" if won else "lost",
        amount=_number(props.get("amount")),
        closed_at=closed_at,
        pipeline_label=stage.pipeline_label,
        stage_label=stage.label,
    )


def scan_closed_deals(
    client: DealsClient,
    *,
    since: datetime,
    until: datetime,
    limit: int | None = None,
    search_cap: int = SEARCH_RESULTS_MAX,
    page_size: int = SEARCH_PAGE_MAX,
) -> ClosedDealScan:
    """The deals won or lost between ``since`` and ``until`` (both included; naive datetimes are UTC), newest
    first, at most ``limit``, with their contacts' and companies' ids; and the closed deals it skipped, with why.
    ``search_cap``: the results one search query answers (HubSpot: 10,000)."""
    scan = ClosedDealScan()
    since_ms, until_ms = to_epoch_ms(since), to_epoch_ms(until)
    if since_ms > until_ms or (limit is not None and limit <= 0):
        return scan
    stages = closed_stages(client)
    if not stages:
        return scan
    search_cap = max(1, search_cap)
    page_size = max(1, min(page_size, SEARCH_PAGE_MAX))
    if limit is not None:
        page_size = min(page_size, max(limit, 10))  # no 200-deal pages for a handful
    for result in _search_closed(client, list(stages), since_ms, until_ms, search_cap, page_size):
        deal = _closed_deal(result, stages)
        if isinstance(deal, str):
            deal_id = str(result.get("id") or "")
            scan.skipped.append((deal_id, deal))
            logger.warning("closed deal skipped", extra={"deal_id": deal_id, "reason": deal})
            continue
        scan.deals.append(deal)
        if limit is not None and len(scan.deals) >= limit:
            break
    if scan.deals:
        ids = [d.id for d in scan.deals]
        contacts = client.associations(OBJECT_TYPE, "contacts", ids)
        companies = client.associations(OBJECT_TYPE, "companies", ids)
        for deal in scan.deals:
            deal.contact_ids = list(contacts.get(deal.id, []))
            deal.company_ids = list(companies.get(deal.id, []))
    return scan


def closed_deals(
    client: DealsClient,
    *,
    since: datetime,
    until: datetime,
    limit: int | None = None,
    search_cap: int = SEARCH_RESULTS_MAX,
) -> list[ClosedDeal]:
    """The deals won or lost between ``since`` and ``until``, newest first, at most ``limit`` (see
    ``scan_closed_deals``; skipped deals are logged)."""
    return scan_closed_deals(client, since=since, until=until, limit=limit, search_cap=search_cap).deals
