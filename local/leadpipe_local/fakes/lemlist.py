"""A local Lemlist API: campaigns and the export of their leads, in the public API's shapes.

Routes live under ``/api`` like Lemlist's (``https://api.lemlist.com/api``): point a client at ``fake.api_url``.
Campaigns and leads are seeded from Python (``add_campaign``, ``add_leads``). Behaviour, as documented
(https://developer.lemlist.com/api-reference/getting-started/authentication, .../rate-limits,
.../endpoints/campaigns/get-many-campaigns, .../get-campaign, .../export-campaign-leads):

- HTTP Basic authentication, empty user name, the API key as the password. No key: ``400`` "No API key provided";
  any other key or a user name: ``401`` "The authentication you supplied is incorrect". Error bodies are text/plain.
- ``GET /api/campaigns`` (``offset``, ``limit`` up to 100, ``page``, ``status``, ``sortBy=createdAt``, ``sortOrder``;
  ``version=v2`` accepted): an array of ``{"_id", "name", "labels", "createdAt", "createdBy", "status"}``.
- ``GET /api/campaigns/{campaignId}``: ``{"_id", "name", "labels", "createdAt", "status", "creator", "senders"}``;
  ``404`` "Campaign not found".
- ``GET /api/v2/campaigns/{campaignId}/export/leads`` and the legacy ``GET /api/campaigns/{campaignId}/export/leads``:
  every lead at once (no paging), ``state=all`` (the default) or a comma-separated list of last states, ``format=csv``
  (the default; ``text/csv``) or ``json``. CSV columns: ``emailStatus, email, firstName, lastName, picture, phone,
  linkedinUrl, timezone, companyName, companyDomain, icebreaker, jobTitle``, the campaign's custom variables (in the
  order they first appear), then ``lastState, status, _id``. Leads come in the order they were added.
- Rate limit (``rate_limit=(20, 2.0)``: 20 calls in any 2 seconds per API key, on ``clock``): past it, ``429`` with
  ``Retry-After`` (whole seconds until a call leaves the window). Answers carry ``X-RateLimit-Limit``,
  ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (a JavaScript date string, as documented).

Not documented, so illustrative here: the 429 body (text/plain "Too many requests"), where ``jobTitle`` sits among
the CSV columns, and whether the limit is a fixed or a rolling window (rolling here: the stricter reading). Global
lead states (``contacted``, ``hooked``...) are not modelled: ``state`` filters on the exact last state.

Use ``Fault`` injection for 5xx, 429 storms, latency, timeouts and malformed bodies.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import math
import string
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from leadpipe_local.fakes.base import FakeServer, Reply, Request, route

API = "/api"
MAX_CAMPAIGNS_PAGE = 100
STANDARD_COLUMNS = (
    "emailStatus",
    "email",
    "firstName",
    "lastName",
    "picture",
    "phone",
    "linkedinUrl",
    "timezone",
    "companyName",
    "companyDomain",
    "icebreaker",
    "jobTitle",
)
TRAILING_COLUMNS = ("lastState", "status", "_id")
CAMPAIGN_STATUSES = ("running", "draft", "archived", "ended", "paused", "errors")
_ID_ALPHABET = string.ascii_letters + string.digits
FIRST_CREATED = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)  # campaigns seeded without a date: one minute apart from here


def _text(status: int, message: str) -> Reply:
    return Reply(status, message.encode(), {"content-type": "text/plain; charset=utf-8"})


def _js_date(epoch: float) -> str:
    """A date the way JavaScript's ``Date.toString`` writes it (the documented X-RateLimit-Reset format), in UTC."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)")


@dataclass
class FakeCampaign:
    id: str
    name: str
    status: str = "running"
    labels: list[str] = field(default_factory=list)
    created_at: str = ""
    created_by: str = "usr_fakeLemlistUser01"
    leads: list[dict[str, str]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "_id": self.id,
            "name": self.name,
            "labels": list(self.labels),
            "createdAt": self.created_at,
            "createdBy": self.created_by,
            "status": self.status,
        }


class FakeLemlist(FakeServer):
    name = "lemlist"

    def __init__(
        self,
        api_key: str = "test-key",
        *,
        rate_limit: tuple[int, float] | None = (20, 2.0),
        clock: Callable[[], float] = time.time,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 7,
    ) -> None:
        super().__init__(host, port, seed=seed)
        self.api_key = api_key
        self._initial = (rate_limit, clock, seed)
        self.rate_limit = rate_limit  # (calls, seconds) per API key, or None for no limit
        self.clock = clock
        self.campaigns: dict[str, FakeCampaign] = {}
        self._calls: dict[str, deque[float]] = {}  # API key -> start times of its calls in the window
        self._data_lock = threading.Lock()

    @property
    def api_url(self) -> str:
        """The base URL a client is given (Lemlist's is ``https://api.lemlist.com/api``)."""
        return self.url + API

    def reset(self) -> None:
        """Back to the state after construction: no campaigns, requests, faults or rate-limit history."""
        with self.lock:
            self.requests.clear()
            self.faults.clear()
        with self._data_lock:
            self.campaigns.clear()
            self._calls.clear()
            self.rate_limit, self.clock, seed = self._initial
            self.rng.seed(seed)

    # ------------------------------------------------------------------------------------------------- seeding

    def _new_id(self, prefix: str) -> str:
        return prefix + "".join(self.rng.choice(_ID_ALPHABET) for _ in range(17))

    def add_campaign(
        self,
        name: str,
        *,
        status: str = "running",
        labels: Iterable[str] = (),
        created_at: str | None = None,
    ) -> str:
        """A campaign; returns its id (``cam_`` and 17 letters or digits, like Lemlist's)."""
        if status not in CAMPAIGN_STATUSES:
            raise ValueError(f"unknown campaign status {status!r} (Lemlist's: {', '.join(CAMPAIGN_STATUSES)})")
        with self._data_lock:
            campaign_id = self._new_id("cam_")
            created = created_at or (FIRST_CREATED + timedelta(minutes=len(self.campaigns))).strftime(
                "%Y-%m-%dT%H:%M:%S.000Z"
            )
            self.campaigns[campaign_id] = FakeCampaign(campaign_id, name, status, list(labels), created)
        return campaign_id

    def add_leads(self, campaign_id: str, leads: Iterable[Mapping[str, Any]]) -> list[str]:
        """Leads in Lemlist's vocabulary (``email``, ``firstName``, ``lastName``, ``companyName``, ``companyDomain``,
        ``jobTitle``, ``phone``, ``linkedinUrl``, ``icebreaker``, any custom variable; optionally ``lastState``
        (default ``imported``), ``status``, ``emailStatus``, ``_id``). Returns their ids (``lea_...``)."""
        with self._data_lock:
            campaign = self.campaigns.get(campaign_id)
            if campaign is None:
                raise KeyError(f"no campaign {campaign_id}")
            ids = []
            for lead in leads:
                stored = {str(k): "" if v is None else str(v) for k, v in lead.items()}
                stored.setdefault("_id", self._new_id("lea_"))
                stored.setdefault("lastState", "imported")
                stored.setdefault("status", "review" if stored["lastState"] == "imported" else "done")
                campaign.leads.append(stored)
                ids.append(stored["_id"])
        return ids

    # ------------------------------------------------------------------------------------------------ checks

    def _key(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded.strip():
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return ""
        user, sep, password = decoded.partition(":")
        return password if sep and not user else ""

    def _serve(self, request: Request, answer: Callable[[Request], Reply]) -> Reply:
        """Authentication, then the rate limit, then ``answer``; rate-limit headers on what goes out."""
        key = self._key(request)
        if key is None:
            return _text(400, "No API key provided")
        if key != self.api_key:
            return _text(401, "The authentication you supplied is incorrect")
        if self.rate_limit is None:
            return answer(request)
        calls, seconds = self.rate_limit
        now = self.clock()
        with self._data_lock:
            window = self._calls.setdefault(key, deque())
            while window and window[0] <= now - seconds:
                window.popleft()
            throttled = len(window) >= calls
            if not throttled:
                window.append(now)
            remaining, reset = calls - len(window), window[0] + seconds
        if throttled:
            reply = _text(429, "Too many requests")
            reply.headers["Retry-After"] = str(max(1, math.ceil(reset - now)))
        else:
            reply = answer(request)
        reply.headers.update(
            {
                "X-RateLimit-Limit": str(calls),
                "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": _js_date(reset),
            }
        )
        return reply

    # ------------------------------------------------------------------------------------------------ routes

    @route("GET", API + "/campaigns")
    def list_campaigns(self, request: Request) -> Reply:
        return self._serve(request, self._list_campaigns)

    @route("GET", API + "/campaigns/{campaign_id}")
    def get_campaign(self, request: Request) -> Reply:
        return self._serve(request, self._get_campaign)

    @route("GET", API + "/v2/campaigns/{campaign_id}/export/leads")
    def export_leads(self, request: Request) -> Reply:
        return self._serve(request, self._export_leads)

    @route("GET", API + "/campaigns/{campaign_id}/export/leads")
    def export_leads_legacy(self, request: Request) -> Reply:
        return self._serve(request, self._export_leads)

    def _list_campaigns(self, request: Request) -> Reply:
        try:
            limit = int(request.arg("limit") or MAX_CAMPAIGNS_PAGE)
            offset = int(request.arg("offset") or 0)
            page = request.arg("page")
            if page is not None:
                offset = (int(page) - 1) * limit
        except ValueError:
            return _text(400, "Invalid pagination parameters")
        limit = max(1, min(limit, MAX_CAMPAIGNS_PAGE))
        offset = max(0, offset)
        status = request.arg("status")
        with self._data_lock:
            found = [c for c in self.campaigns.values() if status is None or c.status == status]
        if request.arg("sortBy") == "createdAt":  # otherwise the order they were added in
            found.sort(key=lambda c: c.created_at, reverse=request.arg("sortOrder") == "desc")
        return Reply(200, [c.summary() for c in found[offset : offset + limit]])

    def _get_campaign(self, request: Request) -> Reply:
        with self._data_lock:
            campaign = self.campaigns.get(request.params["campaign_id"])
        if campaign is None:
            return _text(404, "Campaign not found")
        body = {
            "_id": campaign.id,
            "name": campaign.name,
            "labels": list(campaign.labels),
            "createdAt": campaign.created_at,
            "status": campaign.status,
            "creator": {"userId": campaign.created_by, "userEmail": "owner@example.com"},
            "senders": [],
        }
        return Reply(200, body)

    def _export_leads(self, request: Request) -> Reply:
        with self._data_lock:
            campaign = self.campaigns.get(request.params["campaign_id"])
            leads = [dict(lead) for lead in campaign.leads] if campaign else []
        if campaign is None:
            return _text(404, "Campaign not found")
        state = (request.arg("state") or "all").strip()
        if state != "all":
            wanted = {s.strip() for s in state.split(",") if s.strip()}
            leads = [lead for lead in leads if lead.get("lastState") in wanted]
        output = request.arg("format") or "csv"
        if output == "json":
            return Reply(200, leads)
        if output != "csv":
            return _text(400, "Invalid format")
        return Reply(200, self._csv(leads).encode(), {"content-type": "text/csv; charset=utf-8"})

    @staticmethod
    def _csv(leads: list[dict[str, str]]) -> str:
        custom: list[str] = []
        fixed = set(STANDARD_COLUMNS) | set(TRAILING_COLUMNS)
        for lead in leads:
            for key in lead:
                if key not in fixed and key not in custom:
                    custom.append(key)
        columns = [*STANDARD_COLUMNS, *custom, *TRAILING_COLUMNS]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for lead in leads:
            writer.writerow([lead.get(column, "") for column in columns])
        return out.getvalue()
