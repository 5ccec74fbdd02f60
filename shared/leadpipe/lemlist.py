"""Lemlist: a campaign's leads as import rows.

API (https://developer.lemlist.com/api-reference/getting-started/overview, .../getting-started/authentication,
.../getting-started/rate-limits, .../endpoints/campaigns/get-many-campaigns, .../endpoints/campaigns/get-campaign,
.../endpoints/campaigns/export-campaign-leads, .../endpoints/leads/get-campaign-leads; the OpenAPI document those
pages are generated from):

- Every route lives under ``https://api.lemlist.com/api``. Authentication is HTTP Basic with an empty user name and
  the API key as the password (``Authorization: Basic base64(":" + key)``). A wrong key answers ``401`` with the
  text/plain body "The authentication you supplied is incorrect"; no key ``400`` "No API key provided"; a key whose
  user is gone ``404`` "No user found for this API key"; a blocked user ``403``. Error bodies are plain text.
- ``GET /campaigns?version=v2&offset=&limit=`` lists the team's campaigns, at most 100 a call (``limit`` default and
  maximum 100), as an array of ``{"_id": "cam_...", "name", "labels", "createdAt", "createdBy", "status", ...}``.
- ``GET /campaigns/{campaignId}`` answers one campaign ``{"_id", "name", "createdAt", "status", "creator",
  "senders"}``, or ``404`` "Campaign not found".
- A campaign's leads, with their data, come only from the export: ``GET /v2/campaigns/{campaignId}/export/leads``
  (``/campaigns/{campaignId}/export/leads`` is the same export, marked legacy) with ``state=all`` (or a comma-separated
  list of states) and ``format=csv`` (the default) or ``json``. It is not paged: one answer holds every lead. The CSV
  has one column per lead variable: ``emailStatus, email, firstName, lastName, picture, phone, linkedinUrl, timezone,
  companyName, companyDomain, icebreaker``, the campaign's custom variables, then ``lastState, status, _id``
  (``jobTitle`` is in the JSON shape). ``GET /campaigns/{campaignId}/leads`` pages nothing either (``limit`` up to 500,
  no offset) and answers only ``_id``, ``contactId`` and ``state``, so it is not used.
- Rate limit: 20 requests per 2 seconds per API key, on every route; answers carry ``Retry-After`` (seconds),
  ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (a JavaScript date string). Going over
  answers ``429`` (honoured by ``ProviderHttp`` through Retry-After).

How this adapter reads them: the export is read as CSV and parsed while it streams (``csv`` over the decoded lines),
so a campaign of any size costs one row of memory, not the whole file. Because the export is not paged, a "page" of
leads (``lead_page``) is the export read again from the start, skipping ``offset`` leads and stopping after ``limit``
(the connection is closed as soon as the page is full); a connection lost mid-export is reopened and the leads
already handed out are skipped. Requests go through ``ProviderHttp`` (retries, Retry-After, the time budget) under a
sliding-window limiter of 20 calls per 2 seconds, since the reference does not say whether Lemlist's window is fixed
or rolling.

unverified: the shape of ``GET /campaigns`` with ``version=v2`` -- the reference shows a bare array; an object with a
  ``campaigns`` array (and ``pagination``) is also accepted. Listing stops at the first short page.
unverified: that the export keeps the same lead order from one call to the next (``lead_page`` offsets rely on it;
  a lead added to the campaign between two pages can shift later offsets by one).
unverified: what an empty campaign's export answers (an empty body and a header-only CSV both read as no leads), the
  CSV's encoding (read as UTF-8, a BOM tolerated) and where ``jobTitle`` sits in the CSV (columns are read by name).
unverified: the body of a 429 (not documented) and whether Retry-After also comes with answers that are not 429s.
unverified: the ``access_token`` query parameter as another way to pass the key (not in the current reference; this
  adapter sends the key only in the Authorization header, so it never appears in a URL or a log line).
"""

from __future__ import annotations

import base64
import codecs
import csv
import re
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from leadpipe.csvfile import HEADER_ALIASES, MAX_CUSTOM_COLUMNS
from leadpipe.enrichment.http import Budget, Limiter, ProviderHttp, bucket_for
from leadpipe.enrichment.providers.base import ProviderError, RateLimit
from leadpipe.models import RowError
from leadpipe.normalize import FieldProblem, clean_text, custom_key, domain_from_website

NAME = "lemlist"
DEFAULT_BASE_URL = "https://api.lemlist.com/api"
RATE_LIMIT = RateLimit(20, 2.0)  # per API key, every route
CAMPAIGNS_PATH = "/campaigns"
CAMPAIGN_PATH = "/campaigns/{campaign_id}"
EXPORT_PATH = "/v2/campaigns/{campaign_id}/export/leads"
CAMPAIGNS_PAGE = 100  # the documented maximum (and default) of GET /campaigns
DEFAULT_PAGE = 500  # leads per lead_page

# Export columns -> LemlistLead fields. Every other non-empty column is a variable of the lead and goes to ``custom``,
# except Lemlist's own bookkeeping below.
COLUMNS: dict[str, str] = {
    "_id": "lemlist_id",
    "email": "email",
    "firstName": "first_name",
    "lastName": "last_name",
    "companyName": "company",
    "companyDomain": "domain",
    "jobTitle": "title",
    "phone": "phone",
    "linkedinUrl": "linkedin",
    "lastState": "state",
    "status": "status",
    "emailStatus": "email_status",
}

# Import row keys (leadpipe's CSV import fields, as ``RowParser.for_fields`` takes them) <- LemlistLead fields.
ROW_FIELDS: dict[str, str] = {
    "email": "email",
    "first_name": "first_name",
    "last_name": "last_name",
    "company": "company",
    "title": "title",
    "phone": "phone",
    "website": "domain",
    "linkedin": "linkedin",
}
TAG_PREFIX = "lemlist:"
MAX_TAG_LENGTH = 64  # leadpipe's limit on one tag (normalize.MAX_TAG_LENGTH)
_TAG_SEPARATORS = re.compile(r"[,;|]")  # what leadpipe splits a tags value on


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = clean_text(str(value))
    return text or None


class Campaign(BaseModel):
    """One Lemlist campaign (the fields leadpipe uses; the rest of Lemlist's object is ignored)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    id: str = Field(alias="_id", min_length=1)
    name: str = ""
    status: str | None = None
    labels: list[str] = Field(default_factory=list)
    created_at: str | None = Field(default=None, alias="createdAt")

    @field_validator("labels", mode="before")
    @classmethod
    def _labels(cls, value: Any) -> Any:
        return [] if value is None else value


class LemlistLead(BaseModel):
    """One lead of a campaign, in leadpipe's vocabulary: text trimmed (blank is None), email lower-cased, the company
    domain reduced to a host name when it is a web address. Values are not validated here: the import does that, row
    by row, and reports what is wrong."""

    model_config = ConfigDict(frozen=True)

    lemlist_id: str | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    domain: str | None = None
    title: str | None = None
    phone: str | None = None
    linkedin: str | None = None
    state: str | None = None  # the lead's last state in the campaign (lastState: emailsSent, emailsReplied...)
    status: str | None = None  # Lemlist's status of the lead (done, interested, unsubscribed...)
    email_status: str | None = None  # Lemlist's verification: deliverable, risky, undeliverable
    custom: dict[str, str] = Field(default_factory=dict)  # every other variable: icebreaker, timezone, custom fields

    @field_validator(
        "lemlist_id",
        "email",
        "first_name",
        "last_name",
        "company",
        "domain",
        "title",
        "phone",
        "linkedin",
        "state",
        "status",
        "email_status",
        mode="before",
    )
    @classmethod
    def _clean(cls, value: Any) -> str | None:
        return _text(value)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return value.lower() if value else None

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        if not value:
            return None
        try:
            return domain_from_website(value)
        except FieldProblem:
            return value.lower()  # kept as given: the import reports it as an invalid website

    @field_validator("custom", mode="before")
    @classmethod
    def _custom(cls, value: Any) -> dict[str, str]:
        if not isinstance(value, Mapping):
            return {}
        out: dict[str, str] = {}
        for key, raw in value.items():
            name, text = str(key).strip(), _text(raw)
            if name and text:
                out[name] = text
        return out

    @classmethod
    def from_export(cls, record: Mapping[str, Any]) -> LemlistLead:
        """A lead from one row of the export (CSV columns or JSON keys)."""
        known: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        for column, value in record.items():
            target = COLUMNS.get(column)
            if target is not None:
                known[target] = value
            else:
                custom[column] = value
        return cls(**known, custom=custom)

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)


@dataclass(frozen=True, slots=True)
class LeadPage:
    """``limit`` leads of a campaign from ``offset``; ``next_offset`` is None after the last lead."""

    leads: list[LemlistLead]
    offset: int
    next_offset: int | None

    @property
    def next_cursor(self) -> str | None:
        """``next_offset`` as an import job's cursor."""
        return None if self.next_offset is None else str(self.next_offset)


@dataclass(frozen=True, slots=True)
class LeadRow:
    """One lead as an import row: ``values`` has the keys of leadpipe's CSV import (``email``, ``first_name``,
    ``last_name``, ``company``, ``title``, ``phone``, ``website``, ``linkedin``, ``tags``, and ``custom:<key>`` for
    each other variable), only those with a value. ``error`` is set when the lead cannot be imported (no email); the
    row is still handed out, so the import counts and reports it."""

    row: int  # the lead's position in the campaign's export, from 1
    lemlist_id: str | None
    values: dict[str, str] = field(default_factory=dict)
    error: RowError | None = None

    @property
    def custom(self) -> dict[str, str]:
        """The ``custom:<key>`` values, keyed by ``<key>``."""
        return {k.removeprefix("custom:"): v for k, v in self.values.items() if k.startswith("custom:")}


def campaign_tag(campaign_name: str) -> str:
    """``lemlist:<campaign name>`` as one leadpipe tag: lower-case (leadpipe's tags are), no tag separator in it (a
    comma would split it in two), at most 64 characters."""
    name = clean_text(_TAG_SEPARATORS.sub(" ", campaign_name)).lower() or "campaign"
    return (TAG_PREFIX + name)[:MAX_TAG_LENGTH].rstrip()


def lead_rows(leads: Iterable[LemlistLead], campaign_name: str, *, first_row: int = 1) -> Iterator[LeadRow]:
    """Import rows for ``leads``, tagged ``lemlist:<campaign name>``, in order, one per lead: a lead without an email
    comes out with a ``missing_email`` row error ("no email ..."), never dropped. Custom variables become
    ``custom:<key>`` the way CSV columns do (same key rules, at most 50 of them)."""
    tag = campaign_tag(campaign_name)
    for index, lead in enumerate(leads):
        row = first_row + index
        values: dict[str, str] = {}
        for key, attribute in ROW_FIELDS.items():
            value = getattr(lead, attribute)
            if value:
                values[key] = value
        values["tags"] = tag
        used: set[str] = set()
        for name, value in lead.custom.items():
            if len(used) >= MAX_CUSTOM_COLUMNS:
                break
            key = base = custom_key(name)
            n = 2
            while key in used or key in HEADER_ALIASES:
                key = f"{base}_{n}"
                n += 1
            used.add(key)
            values[f"custom:{key}"] = value
        error = None
        if not lead.email:
            who = lead.lemlist_id or "without an id"
            if lead.name:
                who += f" ({lead.name})"
            error = RowError(
                row=row,
                field="email",
                code="missing_email",
                message=f"no email: Lemlist lead {who} has no email address",
            )
        yield LeadRow(row=row, lemlist_id=lead.lemlist_id, values=values, error=error)


def _lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Decoded text split after each newline (kept, so ``csv`` sees line breaks inside quoted values), one line in
    memory at a time. UTF-8, a leading BOM dropped, undecodable bytes replaced."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
    carry = ""
    for chunk in chunks:
        parts = (carry + decoder.decode(chunk)).split("\n")
        carry = parts.pop()
        for part in parts:
            yield part + "\n"
    carry += decoder.decode(b"", final=True)
    if carry:
        yield carry


def _excerpt(response: httpx.Response) -> str:
    return f"HTTP {response.status_code}: {response.text[:300]}"


def _no_user(response: httpx.Response) -> bool:
    """Lemlist's 404 for a key with no user behind it (not a missing campaign)."""
    return "no user found" in response.text.lower()


def _classify(response: httpx.Response) -> ProviderError | None:
    """Lemlist's statuses that mean something else than HTTP's generic reading."""
    text = response.text.lower()
    if response.status_code == 400 and "api key" in text:
        return ProviderError(NAME, "auth", _excerpt(response), status=400, retryable=False)
    if response.status_code == 404 and _no_user(response):
        return ProviderError(NAME, "auth", _excerpt(response), status=404, retryable=False)
    return None


class LemlistClient:
    """Lemlist's campaigns and their leads, for imports. One ``ProviderHttp`` (retries, back-off, Retry-After, time
    budget) limited to Lemlist's 20 calls per 2 seconds."""

    export_path = EXPORT_PATH

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        budget: Budget | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 30.0,
        max_retries: int = 3,
        bucket: Limiter | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("Lemlist needs an API key")
        token = base64.b64encode(f":{api_key}".encode()).decode("ascii")
        self.http = ProviderHttp(
            NAME,
            base_url,
            rate_limit=RATE_LIMIT,
            headers={"Authorization": f"Basic {token}", "accept": "application/json"},
            timeout=timeout,
            max_retries=max_retries,
            budget=budget,
            transport=transport,
            sleep=sleep,
            bucket=bucket or bucket_for(NAME, RATE_LIMIT, rolling=True),
            classify=_classify,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------------- campaigns

    def campaigns(self, *, status: str | None = None) -> list[Campaign]:
        """Every campaign of the team (``status``: running, draft, archived, ended, paused, errors), 100 per call."""
        found: dict[str, Campaign] = {}
        offset = 0
        while True:
            params: dict[str, Any] = {"version": "v2", "offset": offset, "limit": CAMPAIGNS_PAGE}
            if status:
                params["status"] = status
            payload = self.http.json(self.http.request("GET", CAMPAIGNS_PATH, params=params))
            items = payload.get("campaigns") if isinstance(payload, dict) else payload
            if not isinstance(items, list):
                raise ProviderError(NAME, "bad_response", f"no campaign list in {str(payload)[:200]!r}")
            page = [self._campaign(item) for item in items]
            new = [c for c in page if c.id not in found]
            if page and not new:
                raise ProviderError(NAME, "bad_response", f"offset {offset} answered campaigns already listed")
            found.update((c.id, c) for c in new)
            if len(items) < CAMPAIGNS_PAGE:
                return list(found.values())
            offset += len(items)

    def campaign(self, campaign_id: str) -> Campaign:
        """One campaign; ``ProviderError`` ``not_found`` ("no Lemlist campaign <id>") when there is none."""
        response = self.http.request(
            "GET", CAMPAIGN_PATH.format(campaign_id=_segment(campaign_id)), ok_statuses=frozenset({404})
        )
        if response.status_code == 404:
            raise self._not_found(campaign_id, response)
        return self._campaign(self.http.json(response))

    @staticmethod
    def _campaign(item: Any) -> Campaign:
        try:
            return Campaign.model_validate(item)
        except ValidationError as exc:
            raise ProviderError(NAME, "bad_response", f"not a campaign: {str(item)[:200]!r}") from exc

    @staticmethod
    def _not_found(campaign_id: str, response: httpx.Response) -> ProviderError:
        if _no_user(response):
            return ProviderError(NAME, "auth", _excerpt(response), status=404, retryable=False)
        return ProviderError(NAME, "not_found", f"no Lemlist campaign {campaign_id}", status=404, retryable=False)

    # ----------------------------------------------------------------------------------------------------- leads

    def leads(self, campaign_id: str, *, offset: int = 0, state: str = "all") -> Generator[LemlistLead]:
        """The campaign's leads in export order, from the ``offset``-th (0 is the first), read as the export streams
        in. A connection lost mid-export is reopened (within the retries) and resumes after the last lead handed out.
        Stop iterating (or ``close()`` the iterator) to drop the connection early."""
        if offset < 0:
            raise ValueError("offset must be 0 or more")
        return self._export(campaign_id, offset, state)

    def lead_page(
        self, campaign_id: str, *, offset: int = 0, limit: int = DEFAULT_PAGE, state: str = "all"
    ) -> LeadPage:
        """At most ``limit`` leads from ``offset``, and where the next page starts (None after the last lead)."""
        if limit < 1:
            raise ValueError("limit must be 1 or more")
        leads: list[LemlistLead] = []
        more = False
        stream = self.leads(campaign_id, offset=offset, state=state)
        try:
            for lead in stream:
                if len(leads) == limit:
                    more = True  # one lead past the page: there is a next page
                    break
                leads.append(lead)
        finally:
            stream.close()
        return LeadPage(leads, offset, offset + len(leads) if more else None)

    def _export(self, campaign_id: str, skip: int, state: str) -> Generator[LemlistLead]:
        path = self.export_path.format(campaign_id=_segment(campaign_id))
        params = {"state": state, "format": "csv"}
        http = self.http
        handed = skip  # leads before this position are skipped (already handed out, or before the offset)
        failures = 0
        last: ProviderError | None = None
        while True:
            if failures:
                if failures > http.max_retries:
                    assert last is not None
                    raise last
                delay = last.retry_after if last and last.retry_after is not None else http._backoff(failures - 1)
                http._wait(delay, f"retry {failures} after {last.reason if last else 'an error'}")
            http._wait(http.bucket.reserve(), "rate limit")
            http.calls += 1
            try:
                with http.client.stream("GET", path, params=params, headers={"accept": "text/csv"}) as response:
                    if not 200 <= response.status_code < 300:
                        response.read()
                        last = self._export_error(campaign_id, response)
                        if not last.retryable:
                            raise last
                        failures += 1
                        continue
                    for position, lead in enumerate(self._parse(response)):
                        if position >= handed:
                            yield lead
                            handed += 1
                    return
            except httpx.TimeoutException as exc:
                last = ProviderError(NAME, "timeout", f"no answer within the timeout ({exc})")
            except httpx.TransportError as exc:
                last = ProviderError(NAME, "network", f"{type(exc).__name__}: {exc}")
            failures += 1

    def _export_error(self, campaign_id: str, response: httpx.Response) -> ProviderError:
        status = response.status_code
        decided = _classify(response)
        if decided is not None:
            return decided
        if status == 404:
            return self._not_found(campaign_id, response)
        hint = self.http.retry_hint(response)
        if status == 429:
            self.http.throttled += 1
            return ProviderError(NAME, "rate_limited", _excerpt(response), status=status, retry_after=hint)
        if status in ProviderHttp.RETRY_STATUSES:
            return ProviderError(NAME, "server_error", _excerpt(response), status=status, retry_after=hint)
        if status in (401, 403):
            return ProviderError(NAME, "auth", _excerpt(response), status=status, retryable=False)
        if 200 <= status < 400:  # a redirect or an unexpected 1xx: Lemlist may answer properly next time
            return ProviderError(NAME, "server_error", f"unexpected {_excerpt(response)}", status=status)
        return ProviderError(NAME, "bad_request", _excerpt(response), status=status, retryable=False)

    @staticmethod
    def _parse(response: httpx.Response) -> Iterator[LemlistLead]:
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type in ("application/json", "text/html"):
            body = response.read()[:200]
            raise ProviderError(NAME, "bad_response", f"expected a CSV export, got {content_type}: {body!r}")
        rows = csv.reader(_lines(response.iter_bytes()))
        try:
            header = next(rows, None)
            if header is None:
                return  # an empty export: no leads
            header = [h.strip() for h in header]
            if "email" not in header:
                raise ProviderError(NAME, "bad_response", f"the export has no email column: {header[:20]!r}")
            width = len(header)
            for values in rows:
                if not any(v.strip() for v in values):
                    continue
                record = dict(zip(header, values[:width], strict=False))
                yield LemlistLead.from_export(record)
        except csv.Error as exc:
            raise ProviderError(NAME, "bad_response", f"unreadable CSV export: {exc}") from exc


def _segment(value: str) -> str:
    """An id as one URL path segment: a slash in it cannot reach another route, nor can "." or ".."."""
    value = value.strip()
    if value in ("", ".", ".."):
        raise ValueError(f"not a Lemlist id: {value!r}")
    return quote(value, safe="")
