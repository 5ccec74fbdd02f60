"""A local Apollo.io (Bulk People Enrichment, Organization Enrichment) with the public API's shapes.

Routes: ``POST /api/v1/people/bulk_match`` and ``GET /api/v1/organizations/enrich``. Data comes from an in-memory
dataset (``add_person``, ``add_organization``); records are stored in Apollo's shapes and returned as they are, a
person with the organization of their domain nested.

Behaviour, as documented (https://docs.apollo.io/reference/bulk-people-enrichment, .../organization-enrichment,
.../status-codes, .../rate-limits):

- The key is read from the ``x-api-key`` header. Missing or unknown: ``401`` with a text/plain body. A key limited to
  some endpoints (``add_key(key, endpoints=[...])``) asking for another: ``403`` ``API_INACCESSIBLE``.
- bulk_match matches each detail by Apollo ``id``, email, LinkedIn URL, or first and last name with the employer's
  domain or name; ``matches[i]`` answers ``details[i]``, ``null`` when nobody matches (a name alone matches nobody).
  No ``details``: ``400`` ``INVALID_REQUEST``; more than 10: ``400`` ``RECORD_LIMIT_EXCEEDED``; a body that is not
  a JSON object with a list of objects: ``422`` ``UNKNOWN_ERROR``.
- organizations/enrich looks the domain up (``www.`` and scheme ignored); no domain, name, website or LinkedIn URL:
  ``422`` ``{"error": "Required parameter 'domain' missing"}``. An unknown domain answers ``200`` ``{}`` (the
  reference does not show this case; this is the assumption the adapter is written against).
- Rate limits (``limits={"minute": 50, "hour": 200, "day": 600}``, per endpoint, fixed windows on ``clock``):
  successful answers carry ``x-rate-limit-minute`` / ``x-minute-requests-left`` / ``x-minute-usage`` (and the
  hourly and daily ones); past a limit, ``429`` ``{"message": "The maximum number of api calls allowed for
  api/v1/people/bulk_match is 50 times per minute. ..."}`` with ``retry-after`` (seconds to the window's end).

Use ``Fault`` injection for 5xx, latency, timeouts and malformed bodies.
"""

from __future__ import annotations

import copy
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from leadpipe_local.fakes.base import FakeServer, Reply, Request, route

MAX_DETAILS = 10
BULK_MATCH = "/api/v1/people/bulk_match"
ORG_ENRICH = "/api/v1/organizations/enrich"
FREE_PLAN_LIMITS: dict[str, int] = {"minute": 50, "hour": 200, "day": 600}

# window -> (seconds, limit header, left header, usage header, the word in the 429 message)
WINDOWS: dict[str, tuple[int, str, str, str, str]] = {
    "minute": (60, "x-rate-limit-minute", "x-minute-requests-left", "x-minute-usage", "minute"),
    "hour": (3600, "x-rate-limit-hourly", "x-hourly-requests-left", "x-hourly-usage", "hour"),
    "day": (86400, "x-rate-limit-daily", "x-daily-requests-left", "x-daily-usage", "day"),
}
INVALID_KEY = "Invalid API key. See https://docs.apollo.io/reference/authentication for how to authenticate."
UPGRADE = "Please upgrade your plan from https://app.apollo.io/#/settings/plans/upgrade."

_LINKEDIN_SLUG = re.compile(r"linkedin\.com/(?:in|company)/([^/?#\s]+)", re.IGNORECASE)


def _slug(url: Any) -> str | None:
    match = _LINKEDIN_SLUG.search(url) if isinstance(url, str) else None
    return match.group(1).lower() if match else None


def _domain(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    text = re.sub(r"^[a-z]+://", "", value.strip().lower())
    return text.split("/", 1)[0].removeprefix("www.") or None


def _failed(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"status": "failed", "error_code": code, "error_message": message})


class FakeApollo(FakeServer):
    name = "apollo"

    def __init__(
        self,
        api_key: str = "test-key",
        *,
        limits: Mapping[str, int] | None = None,
        clock: Callable[[], float] = time.time,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 7,
    ) -> None:
        super().__init__(host, port, seed=seed)
        unknown = set(limits or {}) - set(WINDOWS)
        if unknown:
            raise ValueError(f"unknown rate-limit windows {sorted(unknown)} (known: {sorted(WINDOWS)})")
        self.api_key = api_key
        self._initial = (dict(limits or {}), clock)
        self.keys: dict[str, frozenset[str] | None] = {api_key: None}  # key -> endpoints it may call (None: all)
        self.limits = dict(limits or {})  # window ("minute", "hour", "day") -> calls per endpoint
        self.clock = clock
        self.people: dict[str, dict[str, Any]] = {}  # Apollo id -> person record
        self.organizations: dict[str, dict[str, Any]] = {}  # primary domain -> organization record
        self.credits_consumed = 0
        self._usage: dict[tuple[str, str, int], int] = {}  # (endpoint, window, window start) -> calls
        self._data_lock = threading.Lock()

    def reset(self) -> None:
        """Back to the state after construction: no data, requests, faults, usage or extra keys."""
        with self.lock:
            self.requests.clear()
            self.faults.clear()
        with self._data_lock:
            self.people.clear()
            self.organizations.clear()
            self._usage.clear()
            self.credits_consumed = 0
            self.keys = {self.api_key: None}
            self.limits = dict(self._initial[0])
            self.clock = self._initial[1]

    # ------------------------------------------------------------------------------------------------ dataset

    def add_key(self, key: str, endpoints: Iterable[str] | None = None) -> None:
        """Another valid key; with ``endpoints`` (e.g. ``["api/v1/people/bulk_match"]``) limited to those."""
        self.keys[key] = None if endpoints is None else frozenset(e.strip("/") for e in endpoints)

    def add_person(
        self,
        email: str | None = None,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        title: str | None = None,
        seniority: str | None = None,
        departments: Iterable[str] = (),
        subdepartments: Iterable[str] = (),
        functions: Iterable[str] = (),
        linkedin_url: str | None = None,
        city: str | None = None,
        state: str | None = None,
        country: str | None = None,
        email_status: str | None = "verified",
        organization_domain: str | None = None,
        organization_name: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """A person as bulk_match returns them; ``extra`` keys are added to (or override) the record."""
        person_id = self._new_id()
        name = " ".join(part for part in (first_name, last_name) if part) or None
        domain = _domain(organization_domain)
        record: dict[str, Any] = {
            "id": person_id,
            "first_name": first_name,
            "last_name": last_name,
            "name": name,
            "linkedin_url": linkedin_url,
            "title": title,
            "email_status": email_status if email else "unavailable",
            "photo_url": None,
            "twitter_url": None,
            "github_url": None,
            "facebook_url": None,
            "extrapolated_email_confidence": None,
            "headline": f"{title} at {organization_name}" if title and organization_name else title,
            "email": email,
            "organization_id": None,
            "employment_history": [
                {
                    "_id": self._new_id(),
                    "current": True,
                    "organization_name": organization_name,
                    "title": title,
                    "start_date": None,
                    "end_date": None,
                }
            ]
            if title or organization_name
            else [],
            "state": state,
            "city": city,
            "country": country,
            "departments": list(departments),
            "subdepartments": list(subdepartments),
            "seniority": seniority,
            "functions": list(functions),
            "show_intent": False,
            "revealed_for_current_team": True,
            "_organization_domain": domain,  # not sent: used to nest the organization and to match on the domain
            "_organization_name": organization_name,
            **extra,
        }
        with self._data_lock:
            self.people[person_id] = record
        return record

    def add_organization(
        self,
        domain: str,
        *,
        name: str | None = None,
        industry: str | None = None,
        estimated_num_employees: int | None = None,
        city: str | None = None,
        state: str | None = None,
        country: str | None = None,
        founded_year: int | None = None,
        linkedin_url: str | None = None,
        short_description: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """An organization as organizations/enrich returns it; ``extra`` keys are added to (or override) it."""
        primary = _domain(domain)
        if not primary:
            raise ValueError(f"not a domain: {domain!r}")
        record: dict[str, Any] = {
            "id": self._new_id(),
            "name": name,
            "website_url": f"http://www.{primary}",
            "blog_url": None,
            "angellist_url": None,
            "linkedin_url": linkedin_url,
            "twitter_url": None,
            "facebook_url": None,
            "primary_phone": {},
            "languages": [],
            "num_languages": 0,
            "alexa_ranking": None,
            "phone": None,
            "linkedin_uid": None,
            "founded_year": founded_year,
            "publicly_traded_symbol": None,
            "publicly_traded_exchange": None,
            "logo_url": None,
            "crunchbase_url": None,
            "primary_domain": primary,
            "industry": industry,
            "keywords": [],
            "estimated_num_employees": estimated_num_employees,
            "industries": [industry] if industry else [],
            "secondary_industries": [],
            "raw_address": ", ".join(p for p in (city, state, country) if p) or None,
            "street_address": None,
            "city": city,
            "state": state,
            "postal_code": None,
            "country": country,
            "owned_by_organization_id": None,
            "seo_description": None,
            "short_description": short_description,
            "suborganizations": [],
            "num_suborganizations": 0,
            "annual_revenue_printed": None,
            "annual_revenue": None,
            "total_funding": None,
            "latest_funding_stage": None,
            "funding_events": [],
            "technology_names": [],
            "current_technologies": [],
            **extra,
        }
        with self._data_lock:
            self.organizations[primary] = record
        return record

    def _new_id(self) -> str:
        with self.lock:
            return f"{self.rng.getrandbits(96):024x}"

    # ------------------------------------------------------------------------------------------------ gates

    def _gate(self, request: Request, endpoint: str) -> tuple[Reply | None, dict[str, str]]:
        """Authentication, scope and rate limits: an error reply, or the rate-limit headers of a success."""
        key = request.headers.get("x-api-key")
        if not key or key not in self.keys:
            return Reply(401, INVALID_KEY.encode(), {"content-type": "text/plain; charset=utf-8"}), {}
        allowed = self.keys[key]
        if allowed is not None and endpoint not in allowed:
            return Reply(
                403,
                {
                    "error": f"This API key is not authorized to access {endpoint}. Request an API key from your "
                    "administrator that includes this endpoint in its configured scope.",
                    "error_code": "API_INACCESSIBLE",
                },
            ), {}
        return self._count(endpoint)

    def _count(self, endpoint: str) -> tuple[Reply | None, dict[str, str]]:
        if not self.limits:
            return None, {}
        now = self.clock()
        with self._data_lock:
            starts = {w: int(now // WINDOWS[w][0]) * WINDOWS[w][0] for w in self.limits}
            for window, limit in self.limits.items():
                if self._usage.get((endpoint, window, starts[window]), 0) >= limit:
                    seconds, _, _, _, word = WINDOWS[window]
                    retry_after = max(1, math.ceil(starts[window] + seconds - now))
                    message = f"The maximum number of api calls allowed for {endpoint} is {limit} times per {word}."
                    return Reply(429, {"message": f"{message} {UPGRADE}"}, {"retry-after": str(retry_after)}), {}
            headers: dict[str, str] = {}
            for window, limit in self.limits.items():
                used = self._usage[(endpoint, window, starts[window])] = (
                    self._usage.get((endpoint, window, starts[window]), 0) + 1
                )
                _, limit_header, left_header, usage_header, _ = WINDOWS[window]
                headers |= {limit_header: str(limit), left_header: str(max(0, limit - used)), usage_header: str(used)}
        return None, headers

    # ------------------------------------------------------------------------------------------------ routes

    @route("POST", BULK_MATCH)
    def bulk_match(self, request: Request) -> Reply:
        refusal, headers = self._gate(request, BULK_MATCH.strip("/"))
        if refusal is not None:
            return refusal
        try:
            body = json.loads(request.body or b"{}")
        except ValueError as exc:
            return _failed(422, "UNKNOWN_ERROR", f"unexpected token in JSON: {exc}")
        details = body.get("details") if isinstance(body, dict) else None
        if isinstance(body, dict) and not details:
            return _failed(400, "INVALID_REQUEST", "invalid request, missing details")
        if not isinstance(details, list) or not all(isinstance(d, dict) for d in details):
            return _failed(422, "UNKNOWN_ERROR", "no implicit conversion of Symbol into Integer")
        if len(details) > MAX_DETAILS:
            return _failed(400, "RECORD_LIMIT_EXCEEDED", "cannot enrich more than 10 in a single request")
        matches = [self._match(detail) for detail in details]
        enriched = {m["id"] for m in matches if m is not None}
        with self._data_lock:
            self.credits_consumed += len(enriched)
        reply = {
            "status": "success",
            "error_code": None,
            "error_message": None,
            "total_requested_enrichments": len(details),
            "unique_enriched_records": len(enriched),
            "missing_records": sum(1 for m in matches if m is None),
            "credits_consumed": len(enriched),
            "matches": matches,
        }
        return Reply(200, reply, headers)

    @route("GET", ORG_ENRICH)
    def organization_enrich(self, request: Request) -> Reply:
        refusal, headers = self._gate(request, ORG_ENRICH.strip("/"))
        if refusal is not None:
            return refusal
        domain = _domain(request.arg("domain")) or _domain(request.arg("website"))
        name = (request.arg("name") or "").strip().lower()
        slug = _slug(request.arg("linkedin_url"))
        if not (domain or name or slug):
            return Reply(422, {"error": "Required parameter 'domain' missing"})
        with self._data_lock:
            organization = self.organizations.get(domain) if domain else None
            if organization is None and slug:
                organization = next((o for o in self.organizations.values() if _slug(o["linkedin_url"]) == slug), None)
            if organization is None and name and not domain:
                organization = next(
                    (o for o in self.organizations.values() if (o["name"] or "").strip().lower() == name), None
                )
            if organization is not None:
                self.credits_consumed += 1
            found = copy.deepcopy(organization)
        return Reply(200, {"organization": found} if found else {}, headers)

    # ------------------------------------------------------------------------------------------------ matching

    def _match(self, detail: Mapping[str, Any]) -> dict[str, Any] | None:
        with self._data_lock:
            person = self._find(detail)
            if person is None:
                return None
            match = {k: copy.deepcopy(v) for k, v in person.items() if not k.startswith("_")}
            organization = self.organizations.get(person["_organization_domain"] or "")
            if organization is not None:
                match["organization_id"] = organization["id"]
                match["organization"] = copy.deepcopy(organization)
            return match

    def _find(self, detail: Mapping[str, Any]) -> dict[str, Any] | None:
        people = list(self.people.values())
        person_id = detail.get("id")
        if isinstance(person_id, str) and person_id in self.people:
            return self.people[person_id]
        email = detail.get("email")
        if isinstance(email, str) and email.strip():
            wanted = email.strip().casefold()
            found = next((p for p in people if (p["email"] or "").casefold() == wanted), None)
            if found is not None:
                return found
        slug = _slug(detail.get("linkedin_url"))
        if slug:
            found = next((p for p in people if _slug(p["linkedin_url"]) == slug), None)
            if found is not None:
                return found
        first, last = (str(detail.get(k) or "").strip().casefold() for k in ("first_name", "last_name"))
        domain = _domain(detail.get("domain"))
        company = str(detail.get("organization_name") or "").strip().casefold()
        if first and last and (domain or company):
            for p in people:
                if (p["first_name"] or "").casefold() != first or (p["last_name"] or "").casefold() != last:
                    continue
                if (domain and p["_organization_domain"] == domain) or (
                    company and (p["_organization_name"] or "").casefold() == company
                ):
                    return p
        return None
