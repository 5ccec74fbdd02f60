"""The one HTTP client for every HubSpot call leadpipe makes.

- Bearer token (a private app's access token) per workspace; base URL configurable (the local fake).
- Timeouts; retries with back-off on 429 TEN_SECONDLY_ROLLING (the burst window), the search API's "secondly"
  limit, 423 Locked (wait 2 s), 477 Migration in progress (its Retry-After), 500/502/503/504/521/524.
  A 429 DAILY is not retried: the day's quota is spent, the contacts wait for their retry. A create is sent again
  only after an answer that refused it before doing anything (429, 423, 477) or a failure to reach HubSpot.
- Two sliding-window limiters per container: the portal's burst limit (100 or 190 per rolling 10 s;
  ``HUBSPOT_BURST_LIMIT``) and the search API's 5 per second, each holding this container's share (the sync event
  source's MaximumConcurrency).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

from leadpipe.enrichment.http import Budget, ProviderHttp, bucket_for, retry_after_seconds
from leadpipe.enrichment.providers.base import ProviderError, RateLimit
from leadpipe.observability import count, logger

DEFAULT_BASE_URL = "https://api.hubapi.com"
BATCH_MAX = 100
MALFORMED_RETRIES = 2  # an answer that is not JSON, asked for again (requests that may be repeated only)
SEARCH_PAGE_MAX = 200
SEARCH_IN_VALUES_MAX = 100
SERVER_ERRORS = frozenset({500, 502, 503, 504, 521, 524})

# v4 association type ids (HUBSPOT_DEFINED)
CONTACT_TO_COMPANY_PRIMARY = 1
NOTE_TO_CONTACT = 202


class HubSpotError(ProviderError):
    """HubSpot refused or failed a call (after the retries that make sense for it)."""


def _error_of(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"message": response.text[:300]}
    return body if isinstance(body, dict) else {"message": str(body)[:300]}


def classify(response: httpx.Response) -> ProviderError | None:
    """HubSpot's rules for the answers worth a second try, and for the ones that are not."""
    status = response.status_code
    body = _error_of(response)
    message = str(body.get("message", ""))[:300]
    if status == 429:
        policy = str(body.get("policyName", ""))
        if policy == "DAILY":
            return HubSpotError("hubspot", "daily_limit", message, status=429, retryable=False)
        burst = "TEN_SECONDLY" in policy.upper() or "ten_secondly" in message.lower()
        if not burst and "secondly limit" in message.lower():  # the search API: no rate headers; a second will do
            return HubSpotError("hubspot", "rate_limited", message, status=429, retry_after=1.0)
        interval = response.headers.get("x-hubspot-ratelimit-interval-milliseconds")
        wait = retry_after_seconds(response)
        if wait is None and interval:
            # The window is rolling: a slot frees within the interval; a short wait usually suffices.
            wait = min(float(interval) / 1000.0, 2.0)
        return HubSpotError("hubspot", "rate_limited", f"{policy or 'burst'}: {message}", status=429, retry_after=wait)
    if status == 423:
        return HubSpotError("hubspot", "locked", message, status=423, retry_after=2.0)
    if status == 477:
        return HubSpotError(
            "hubspot", "migration", message, status=477, retry_after=retry_after_seconds(response) or 5.0
        )
    if status in SERVER_ERRORS:
        return HubSpotError(
            "hubspot", "server_error", message, status=status, retry_after=retry_after_seconds(response)
        )
    if status in (401, 403):
        return HubSpotError("hubspot", "auth", message, status=status, retryable=False)
    return None


@dataclass
class BatchOutcome:
    """A batch call's results, and its per-record errors (a 207 multi-status answer)."""

    results: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


def token_fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:12]


class HubSpotClient:
    def __init__(
        self,
        token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        burst_limit: int = 100,
        budget: Budget | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 15.0,
        max_retries: int = 4,
    ) -> None:
        if not token:
            raise ValueError("a HubSpot access token is required")
        portal = token_fingerprint(token)
        common: dict[str, Any] = {
            "headers": {"Authorization": f"Bearer {token}", "Accept": "application/json"},
            "timeout": timeout,
            "budget": budget,
            "transport": transport,
            "sleep": sleep,
            "max_retries": max_retries,
            "classify": classify,
        }
        burst = RateLimit(burst_limit, 10.0)
        search = RateLimit(5, 1.0)
        # HubSpot counts both limits over rolling windows: a sliding window keeps them exactly (a token bucket would
        # let up to twice the limit through in a window)
        self.http = ProviderHttp(
            "hubspot", base_url, rate_limit=burst, bucket=bucket_for(f"hubspot:{portal}", burst, rolling=True), **common
        )
        self.search_http = ProviderHttp(
            "hubspot",
            base_url,
            rate_limit=search,
            bucket=bucket_for(f"hubspot-search:{portal}", search, rolling=True),
            **common,
        )

    def close(self) -> None:
        """Close the connections, and count this client's HubSpot requests and 429 answers (every user of the
        client -- sync, change capture, polling, deals -- closes it: ``with HubSpotClient(...)``)."""
        if not self.http.client.is_closed:  # counted once, however often it is closed
            count("HubSpotCalls", self.calls)
            count("HubSpot429s", self.throttled)
        self.http.close()
        self.search_http.close()

    def __enter__(self) -> HubSpotClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def calls(self) -> int:
        return self.http.calls + self.search_http.calls

    @property
    def throttled(self) -> int:
        return self.http.throttled + self.search_http.throttled

    def _json(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        search: bool = False,
        ok: Iterable[int] = (),
        repeatable: bool = True,
    ) -> Any:
        http = self.search_http if search else self.http
        # An answer cut short (not JSON) is asked for again when the request may be repeated (reads, searches,
        # upserts, updates; not a create, which may have been carried out): the soak saw whole batches redone for it.
        retries = MALFORMED_RETRIES if repeatable else 0
        while True:
            response = http.request(method, path, json=body, ok_statuses=frozenset(ok), repeatable=repeatable)
            if response.status_code == 204 or not response.content:
                return None
            try:
                return http.json(response)
            except ProviderError as exc:
                if exc.reason != "bad_response" or retries <= 0:
                    raise
                retries -= 1
                logger.warning("HubSpot's answer was not JSON; asking again", extra={"path": path})

    def _raise_for(self, response_body: Any, what: str) -> None:
        raise HubSpotError("hubspot", "bad_request", f"{what}: {str(response_body)[:300]}", retryable=False)

    # ------------------------------------------------------------------------------------------ properties

    def properties(self, object_type: str) -> dict[str, dict[str, Any]]:
        body = self._json("GET", f"/crm/v3/properties/{object_type}")
        return {p["name"]: p for p in (body or {}).get("results", [])}

    def ensure_group(self, object_type: str, name: str, label: str) -> None:
        """Create a property group unless it exists (409 means it does)."""
        self._json("POST", f"/crm/v3/properties/{object_type}/groups", {"name": name, "label": label}, ok=(409,))

    def create_properties(self, object_type: str, definitions: Sequence[Mapping[str, Any]]) -> set[str]:
        """Create properties in batches of 100 (``properties/{type}/batch/create``, 201 or 207 per item). Returns the
        names that now exist: created, or already there (OBJECT_ALREADY_EXISTS: creation is idempotent); a
        definition HubSpot refused for another reason is left out, for the caller to report."""
        outcome = self._batch(f"/crm/v3/properties/{object_type}/batch/create", definitions)
        names = {str(result.get("name")) for result in outcome.results}
        for error in outcome.errors:
            if error.get("category") == "OBJECT_ALREADY_EXISTS":
                names.update(str(n) for n in (error.get("context") or {}).get("name", []))
        return names

    # ------------------------------------------------------------------------------------------ objects

    def _batch(
        self,
        path: str,
        inputs: Sequence[Mapping[str, Any]],
        extra: Mapping[str, Any] | None = None,
        *,
        repeatable: bool = True,
    ) -> BatchOutcome:
        outcome = BatchOutcome()
        for start in range(0, len(inputs), BATCH_MAX):
            body = {**(extra or {}), "inputs": list(inputs[start : start + BATCH_MAX])}
            answer = self._json("POST", path, body, ok=(207,), repeatable=repeatable) or {}
            if not isinstance(answer, dict):
                self._raise_for(answer, path)
            outcome.results.extend(answer.get("results", []))
            outcome.errors.extend(answer.get("errors", []))
        return outcome

    def list_page(
        self, object_type: str, properties: Sequence[str], after: str | None = None, limit: int = BATCH_MAX
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of every record (``GET /crm/v3/objects/{type}``, ≤100 a page, ``after`` paging): the records and
        the cursor of the next page (None after the last)."""
        query = {"limit": str(min(limit, BATCH_MAX)), "properties": ",".join(properties), "archived": "false"}
        if after:
            query["after"] = after
        body = self._json("GET", f"/crm/v3/objects/{object_type}?{urlencode(query)}") or {}
        following = ((body.get("paging") or {}).get("next") or {}).get("after")
        return list(body.get("results") or []), (str(following) if following else None)

    def read(self, object_type: str, ids: Sequence[str], properties: Sequence[str]) -> BatchOutcome:
        """batch/read by record id (≤100 a call); ids HubSpot no longer has come back as errors."""
        inputs = [{"id": i} for i in ids]
        body = {"properties": list(properties), "propertiesWithHistory": []}
        return self._batch(f"/crm/v3/objects/{object_type}/batch/read", inputs, body)

    def read_by(
        self, object_type: str, id_property: str, ids: Sequence[str], properties: Sequence[str]
    ) -> BatchOutcome:
        """batch/read by a unique property (e.g. contacts by email); unknown ids come back as errors."""
        inputs = [{"id": i} for i in ids]
        return self._batch(
            f"/crm/v3/objects/{object_type}/batch/read",
            inputs,
            {"idProperty": id_property, "properties": list(properties), "propertiesWithHistory": []},
        )

    def upsert(
        self, object_type: str, id_property: str, records: Sequence[tuple[str, Mapping[str, str]]]
    ) -> BatchOutcome:
        """batch/upsert by a unique property; a 207 answer's per-record errors are returned, not raised.

        Each input carries an ``objectWriteTraceId`` (its key): with it, HubSpot fails only the records in error
        (207) instead of refusing the whole batch with a 400 for one bad value."""
        inputs = [
            {"id": key, "idProperty": id_property, "properties": dict(props), "objectWriteTraceId": key}
            for key, props in records
        ]
        return self._batch(f"/crm/v3/objects/{object_type}/batch/upsert", inputs)

    def create(self, object_type: str, inputs: Sequence[Mapping[str, Any]]) -> BatchOutcome:
        """batch/create; each input gets an ``objectWriteTraceId`` (its position) so errors are per record.

        A create is not idempotent: one that timed out, lost its connection or got a 5xx may have been carried out,
        so it is not sent again here (the error is raised; the caller finds out what exists before creating again).
        One refused before anything was done (429, 423, 477) or that never reached HubSpot is sent again."""
        traced = [{**dict(item), "objectWriteTraceId": str(i)} for i, item in enumerate(inputs)]
        return self._batch(f"/crm/v3/objects/{object_type}/batch/create", traced, repeatable=False)

    def search(self, object_type: str, request: Mapping[str, Any]) -> dict[str, Any]:
        body = self._json("POST", f"/crm/v3/objects/{object_type}/search", dict(request), search=True)
        return body if isinstance(body, dict) else {}

    def companies_by_domain(self, domains: Sequence[str]) -> dict[str, str]:
        """Company ids by domain, with one search per 100 domains (IN filter), the oldest company for a domain."""
        found: dict[str, tuple[str, str]] = {}
        unique = list(dict.fromkeys(d for d in domains if d))
        for start in range(0, len(unique), SEARCH_IN_VALUES_MAX):
            chunk = unique[start : start + SEARCH_IN_VALUES_MAX]
            after: str | None = None
            while True:
                request: dict[str, Any] = {
                    "filterGroups": [{"filters": [{"propertyName": "domain", "operator": "IN", "values": chunk}]}],
                    "properties": ["domain", "createdate"],
                    "limit": SEARCH_PAGE_MAX,
                }
                if after:
                    request["after"] = after
                page = self.search("companies", request)
                for result in page.get("results", []):
                    domain = str((result.get("properties") or {}).get("domain") or "").lower()
                    created = str((result.get("properties") or {}).get("createdate") or "")
                    if domain and (domain not in found or created < found[domain][1]):
                        found[domain] = (str(result["id"]), created)
                after = ((page.get("paging") or {}).get("next") or {}).get("after")
                if not after:
                    break
        return {domain: company_id for domain, (company_id, _) in found.items()}

    def associate_default(self, from_type: str, to_type: str, pairs: Sequence[tuple[str, str]]) -> BatchOutcome:
        inputs = [{"from": {"id": a}, "to": {"id": b}} for a, b in pairs]
        return self._batch(f"/crm/v4/associations/{from_type}/{to_type}/batch/associate/default", inputs)

    def create_notes(self, notes: Sequence[tuple[str, str, str]]) -> BatchOutcome:
        """Notes (contact id, ISO timestamp, body), each associated with its contact; batches of 100."""
        inputs = [
            {
                "properties": {"hs_timestamp": timestamp, "hs_note_body": body},
                "associations": [
                    {
                        "to": {"id": contact_id},
                        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": NOTE_TO_CONTACT}],
                    }
                ],
            }
            for contact_id, timestamp, body in notes
        ]
        return self.create("notes", inputs)

    def gdpr_delete(self, email: str) -> bool:
        """Permanently delete the contact with this email (``POST /crm/v3/objects/contacts/gdpr-delete`` with
        ``idProperty: email``). HubSpot answers 204 either way, and blocklists an email it had no contact for, so
        whether it had one is asked first (a batch/read by email). Returns True when HubSpot had the contact."""
        found = self.read_by("contacts", "email", [email], ["email"])
        self._json(
            "POST", "/crm/v3/objects/contacts/gdpr-delete", {"objectId": email, "idProperty": "email"}, ok=(404,)
        )
        return bool(found.results)

    # ------------------------------------------------------------------------------------------ pipelines, associations

    def pipelines(self, object_type: str = "deals") -> list[dict[str, Any]]:
        """Every pipeline of an object type with its stages (``GET /crm/v3/pipelines/{objectType}``), as HubSpot
        sends them: ``{"id", "label", "displayOrder", "stages": [{"id", "label", "metadata", ...}], ...}``."""
        body = self._json("GET", f"/crm/v3/pipelines/{object_type}") or {}
        if not isinstance(body, dict):
            self._raise_for(body, f"pipelines of {object_type}")
        return [p for p in body.get("results") or [] if isinstance(p, dict)]

    def associations(
        self, from_type: str, to_type: str, ids: Sequence[str], *, batch_size: int = 1000
    ) -> dict[str, list[str]]:
        """The ids of the ``to_type`` records associated with each of ``ids``, whatever the association's label
        (``POST /crm/v4/associations/{from}/{to}/batch/read``, at most 1,000 ids a call). A record with more
        associations than one answer holds gets a ``paging.next.after``; it is asked again with that cursor (with
        the other unfinished ones, in the next call). Every id is in the answer; HubSpot reports a record without
        associations as a per-record error (207), which here is an empty list."""
        found: dict[str, list[str]] = {str(i): [] for i in ids}
        pending: list[dict[str, str]] = [{"id": i} for i in found]
        cursors: set[tuple[str, str]] = set()  # (id, after) asked already: a cursor that repeats ends that record
        path = f"/crm/v4/associations/{from_type}/{to_type}/batch/read"
        while pending:
            chunk, pending = pending[:batch_size], pending[batch_size:]
            answer = self._json("POST", path, {"inputs": chunk}, ok=(207,)) or {}
            if not isinstance(answer, dict):
                self._raise_for(answer, path)
            for result in answer.get("results") or []:
                from_id = str((result.get("from") or {}).get("id") or "")
                if from_id not in found:
                    continue
                targets = found[from_id]
                for target in result.get("to") or []:
                    to_id = str(target.get("toObjectId") or "")
                    if to_id and to_id not in targets:
                        targets.append(to_id)
                after = ((result.get("paging") or {}).get("next") or {}).get("after")
                if after and (from_id, str(after)) not in cursors:
                    cursors.add((from_id, str(after)))
                    pending.append({"id": from_id, "after": str(after)})
        return found
