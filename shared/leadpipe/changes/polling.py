"""The change-polling pager: every HubSpot contact modified since a cursor, found through the CRM search API within its
limits, page by page in ascending ``lastmodifieddate`` order.

How it searches:

- ``lastmodifieddate >= since - lookback`` (and ``<= until`` when given), sorted ascending by ``lastmodifieddate``,
  ``page_size`` (at most 200) a page, ``after`` paging. HubSpot compares datetime filters with epoch milliseconds
  given as strings.
- HubSpot answers at most ``cap`` (10,000) results for one query and refuses (400) a page past it. Before the next
  page would pass the cap, the pager starts a new query from the last timestamp it has seen
  (``lastmodifieddate >= t``); the records it already returned at ``t`` come back and are dropped.
- A bulk edit can give more records one timestamp than a query can return. When everything one query has read shares
  one timestamp ``t``, the pager pages inside it by record id (``lastmodifieddate == t AND hs_object_id > last``,
  sorted by ``hs_object_id``), then goes on with ``lastmodifieddate > t``.
- Each restart is strictly further on: a later timestamp, a higher record id, or from ``>= t`` to ``> t``. Records
  are finite, so the pager ends (pass ``until_ms`` so that contacts edited during the poll do not keep it going).
- A 400 on a page after a query's first one is taken as HubSpot's cap (its message is not documented): the pager
  restarts from where it is and stops that much earlier from then on. A 400 on a query's first page is a real error
  and is raised.
- The result set changes while it is paged: a contact edited after it was read leaves its place and the records
  behind it move up one, so plain offset paging would skip one record at the next page boundary. When HubSpot's
  ``after`` tokens are offsets (they are), each page is asked from one record before the end of the previous one and
  must start with that record; if it does not, the records moved and the pager restarts from the previous page's
  last timestamp. An edited contact is found again with its new timestamp (it is a new change).
- Ids are deduplicated across restarts; a record is returned again only with a newer ``lastmodifieddate``.

The cursor (``high_water_ms``): every contact whose ``lastmodifieddate`` is at most ``high_water_ms`` and that the
search showed has been yielded. It is updated before each page is yielded, so a caller may store it after enqueueing
that page, and again after the last one. Store it only *after* the changes are safely enqueued: the next poll starts
from it, so a cursor stored before a crash that lost the page would skip those changes for good; stored afterwards,
a crash only means the same contacts are found, and enqueued, again (the re-import is idempotent).

Why the lookback: search results lag writes by seconds (eventual consistency). A contact modified just before the
last poll's high-water mark may not have been visible to that poll yet; searching from ``cursor - lookback`` finds
it on the next one. Anything the lookback window returns again is harmless for the same reason.

Usage::

    pager = ChangePager(client, since_ms=cursor, lookback_ms=5 * 60_000, properties=["firstname", "jobtitle"],
                        until_ms=now_ms - 10_000)
    for page in pager:
        enqueue(page)                     # ChangeQueue
        store_cursor(pager.high_water_ms)  # optional checkpoint, only after the page is enqueued
    store_cursor(pager.high_water_ms)
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from leadpipe.enrichment.providers.base import ProviderError

OBJECT_TYPE = "contacts"
MODIFIED = "lastmodifieddate"
RECORD_ID = "hs_object_id"
REQUIRED_PROPERTIES = ("email", MODIFIED, RECORD_ID)
SEARCH_CAP = 10_000  # results one search query can return (paging past it answers 400)
PAGE_MAX = 200  # results a search page can hold
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
_DIGITS = re.compile(r"-?\d+")


class Searcher(Protocol):
    """What the pager needs of ``HubSpotClient``: ``search`` (its limiter and retries included)."""

    def search(self, object_type: str, request: Mapping[str, Any]) -> dict[str, Any]: ...


@dataclass
class ChangedContact:
    """A contact the search found modified: its record id, ``lastmodifieddate`` in epoch ms, the properties asked."""

    id: str
    modified_at_ms: int
    properties: dict[str, str | None]


@dataclass(frozen=True)
class _Query:
    """One search query. ``range``: ``lastmodifieddate`` from ``at`` (``>=`` when ``inclusive``, else ``>``), up to
    ``until``; ``tie``: ``lastmodifieddate == at`` and ``hs_object_id > after_id``, in record id order."""

    kind: Literal["range", "tie"]
    at: int
    inclusive: bool = True
    after_id: int | None = None


def to_epoch_ms(value: str) -> int | None:
    """A HubSpot datetime value (``2026-11-24T10:00:00.123Z`` or epoch ms) as epoch ms, exactly (no float rounding);
    None when it is neither."""
    text = value.strip()
    if _DIGITS.fullmatch(text):
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MILLISECOND


def _properties(wanted: Sequence[str]) -> list[str]:
    return list(dict.fromkeys([*REQUIRED_PROPERTIES, *wanted]))


class ChangePager(Iterator[list[ChangedContact]]):
    """Iterates over pages (lists) of changed contacts, in ascending modified order; see the module's docstring.

    ``high_water_ms`` is the cursor to store after enqueueing. Counters for logs and metrics: ``requests`` (search
    calls, retries not included), ``queries``, ``restarts`` (at the cap), ``cap_refusals`` (400s taken as the cap),
    ``shifts`` (result sets that moved under the pager), ``tie_queries`` (queries inside one timestamp),
    ``duplicates`` (records dropped as already returned)."""

    def __init__(
        self,
        client: Searcher,
        *,
        since_ms: int,
        lookback_ms: int,
        properties: Sequence[str] = (),
        cap: int = SEARCH_CAP,
        page_size: int = PAGE_MAX,
        until_ms: int | None = None,
    ) -> None:
        if not 1 <= page_size <= PAGE_MAX:
            raise ValueError(f"page_size must be between 1 and {PAGE_MAX}")
        if cap < 2:
            raise ValueError("cap must be at least 2")
        if lookback_ms < 0:
            raise ValueError("lookback_ms must not be negative")
        self.client = client
        self.since_ms = since_ms
        self.lookback_ms = lookback_ms
        self.start_ms = max(0, since_ms - lookback_ms)
        self.until_ms = until_ms
        self.properties = _properties(properties)
        self.cap = cap
        self.page_size = page_size
        self.high_water_ms = since_ms
        self.requests = 0
        self.queries = 0
        self.restarts = 0
        self.cap_refusals = 0
        self.shifts = 0
        self.tie_queries = 0
        self.duplicates = 0
        self._returned: dict[str, int] = {}  # record id -> the modified time it was returned with
        self._pages = self._run()

    def __next__(self) -> list[ChangedContact]:
        return next(self._pages)

    def __iter__(self) -> ChangePager:
        return self

    # ------------------------------------------------------------------------------------------------ queries

    def _run(self) -> Iterator[list[ChangedContact]]:
        if self.until_ms is not None and self.until_ms < self.start_ms:
            return
        query: _Query | None = _Query("range", self.start_ms)
        while query is not None:
            query = yield from self._query(query)

    def _body(self, query: _Query, limit: int, after: str | None) -> dict[str, Any]:
        if query.kind == "range":
            filters = [
                {"propertyName": MODIFIED, "operator": "GTE" if query.inclusive else "GT", "value": str(query.at)}
            ]
            if self.until_ms is not None:
                filters.append({"propertyName": MODIFIED, "operator": "LTE", "value": str(self.until_ms)})
            sort = MODIFIED
        else:
            filters = [{"propertyName": MODIFIED, "operator": "EQ", "value": str(query.at)}]
            if query.after_id is not None:
                filters.append({"propertyName": RECORD_ID, "operator": "GT", "value": str(query.after_id)})
            sort = RECORD_ID
        body: dict[str, Any] = {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
            "properties": self.properties,
            "limit": limit,
        }
        if after is not None:
            body["after"] = after
        return body

    def _query(self, query: _Query) -> Generator[list[ChangedContact], None, _Query | None]:
        """Pages through one query; returns the query to run next (None: all found)."""
        self.queries += 1
        if query.kind == "tie":
            self.tie_queries += 1
        position = 0  # results of this query read so far (the offset of the next one)
        token: str | None = None  # HubSpot's ``after`` for the next page
        offsets = True  # HubSpot's ``after`` tokens are offsets: pages can overlap by one record
        first_ts: int | None = None
        last: ChangedContact | None = None  # the last record read (its id and time)
        while True:
            overlap = position > 0 and offsets
            start = position - 1 if overlap else position
            limit = min(self.page_size, self.cap - start)
            if position and limit < (2 if overlap else 1):  # the next page would pass the cap
                self.restarts += 1
                return self._restart(query, first_ts, last)
            after = None if position == 0 else (str(start) if offsets else token)
            self.requests += 1
            try:
                answer = self.client.search(OBJECT_TYPE, self._body(query, limit, after))
            except ProviderError as error:
                if error.status != 400 or position == 0:
                    raise
                # HubSpot refused to page this far: the cap is lower than we thought (or the page was refused for a
                # reason the next query's first page will show again, and raise)
                self.cap_refusals += 1
                self.restarts += 1
                self.cap = max(2, min(self.cap, position))
                return self._restart(query, first_ts, last)
            raw = [r for r in answer.get("results") or [] if isinstance(r, dict)]
            records = [self._record(r) for r in raw]
            if overlap:
                assert last is not None
                if not records or records[0].id != last.id:
                    # records before this page left it (edited) or joined it: a record may have moved past the
                    # boundary unseen; everything up to the previous page's last timestamp was read
                    self.shifts += 1
                    return self._restart(query, first_ts, last)
                records = records[1:]
            position = start + len(raw)
            following = str(((answer.get("paging") or {}).get("next") or {}).get("after") or "") or None
            if following is not None and not records and last is not None:
                # a page with nothing new that claims more: don't trust it to be the end, go on from where we are
                self.restarts += 1
                return self._restart(query, first_ts, last)
            more = following is not None and bool(records)
            if records:
                first_ts = records[0].modified_at_ms if first_ts is None else first_ts
                last = records[-1]
            if query.kind == "range":
                if more and last is not None:
                    self._advance(last.modified_at_ms - 1)
                elif not more:
                    self._advance(self.until_ms if self.until_ms is not None else last.modified_at_ms if last else None)
            else:
                self._advance(query.at - 1 if more else query.at)
            page = self._new(records)
            if page:
                yield page
            if not more:
                return _Query("range", query.at, inclusive=False) if query.kind == "tie" else None
            offsets = offsets and following == str(position)
            token = following

    def _restart(self, query: _Query, first_ts: int | None, last: ChangedContact | None) -> _Query:
        """The query that goes on from where ``query`` stopped, strictly further on than ``query``."""
        if last is None:  # a refusal or a shift is only seen after a first page that held records
            raise RuntimeError("the search pager cannot restart a query it has read nothing of")
        if query.kind == "tie":
            return _Query("tie", query.at, after_id=int(last.id))
        if first_ts == last.modified_at_ms:
            # everything this query read shares one timestamp, and nothing before it is left: page inside it by id
            return _Query("tie", last.modified_at_ms)
        return _Query("range", last.modified_at_ms)  # later than query.at: first_ts >= query.at

    # ------------------------------------------------------------------------------------------------ records

    def _record(self, result: Mapping[str, Any]) -> ChangedContact:
        properties = result.get("properties") or {}
        values: dict[str, str | None] = {
            name: (None if value is None else str(value)) for name, value in properties.items()
        }
        raw = values.get(MODIFIED) or str(result.get("updatedAt") or "")
        modified = to_epoch_ms(raw)
        record_id = str(result.get("id") or values.get(RECORD_ID) or "")
        if modified is None or not record_id:
            raise ProviderError(
                "hubspot", "bad_response", f"a search result without an id or {MODIFIED}: {str(result)[:200]}"
            )
        return ChangedContact(record_id, modified, values)

    def _new(self, records: Sequence[ChangedContact]) -> list[ChangedContact]:
        """The records not yet returned (or returned with an older modified time)."""
        page: list[ChangedContact] = []
        for record in records:
            seen = self._returned.get(record.id)
            if seen is not None and seen >= record.modified_at_ms:
                self.duplicates += 1
                continue
            self._returned[record.id] = record.modified_at_ms
            page.append(record)
        return page

    def _advance(self, consumed_ms: int | None) -> None:
        if consumed_ms is not None and consumed_ms > self.high_water_ms:
            self.high_water_ms = consumed_ms


def changed_since(
    client: Searcher,
    *,
    since_ms: int,
    lookback_ms: int,
    properties: Sequence[str],
    cap: int = SEARCH_CAP,
    page_size: int = PAGE_MAX,
    until_ms: int | None = None,
) -> ChangePager:
    """Pages of the contacts modified since ``since_ms - lookback_ms`` (up to ``until_ms``), ascending; the returned
    pager is the iterator, and its ``high_water_ms`` the cursor to store once the pages are enqueued."""
    return ChangePager(
        client,
        since_ms=since_ms,
        lookback_ms=lookback_ms,
        properties=properties,
        cap=cap,
        page_size=page_size,
        until_ms=until_ms,
    )
