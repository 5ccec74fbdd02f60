"""A local Dropcontact (``/v1/enrich/all``) with the public API's shapes, for development and tests.

Submitted batches are kept; polling a batch answers ``200`` with ``"success": false`` and ``Request not ready yet``
for ``polls_until_ready`` polls (an unknown request id answers the same, as the real API does), then the enriched
records in input order. Records come from an in-memory dataset keyed by email (``add_contact``); a contact not in it
comes back as the cleaned echo of what was sent, which is how the API answers when it finds nothing.

Validation follows the documentation: ``400`` ``Missing data in JSON``, ``Too many records, you can only submit up to
250 records``, ``Data size is too big...`` (15 kB per record), ``422`` with ``detail`` for a body that is not JSON.
A missing or wrong ``X-Access-Token`` gets ``401`` with the usual ``{"error": true, "reason": ..., "success":
false}`` body (the exact status and wording for a bad token are not in the public docs). Use ``Fault`` injection
(``rate_limit_fault`` for the 429) for 5xx, throttling, latency and timeouts.
"""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass, field
from typing import Any

from leadpipe_local.fakes.base import FakeServer, Fault, Reply, Request, route

MAX_RECORDS = 250
MAX_RECORD_BYTES = 15_000
NOT_READY_REASON = "Request not ready yet, try again in 30 seconds"
INPUT_FIELDS = frozenset({
    "first_name", "last_name", "full_name", "civility", "email", "linkedin", "job", "job_function", "job_level",
    "mobile_phone", "location", "company", "website", "company_linkedin", "num_siren", "siret", "siret_address",
    "siret_zip", "siret_city", "phone", "country", "custom_fields",
})  # fmt: skip


@dataclass
class Batch:
    request_id: str
    records: list[dict[str, Any]]
    options: dict[str, Any]
    polls_left: int
    polls: int = 0
    result: list[dict[str, Any]] = field(default_factory=list)
    unexpected_fields: list[str] = field(default_factory=list)  # keys the API would report as ``unexpected_field``


def _refusal(status: int, reason: str) -> Reply:
    return Reply(status, {"error": True, "reason": reason, "success": False})


class FakeDropcontact(FakeServer):
    name = "dropcontact"

    def __init__(
        self,
        api_key: str = "test-key",
        *,
        polls_until_ready: int = 1,
        credits: int = 1000,
        echo_custom_fields: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 7,
    ) -> None:
        super().__init__(host, port, seed=seed)
        self.api_key = api_key
        self._settings = (polls_until_ready, credits, echo_custom_fields)
        self.polls_until_ready = polls_until_ready
        self.credits = credits
        self.echo_custom_fields = echo_custom_fields  # the API echoes them; False to exercise matching by position
        self.contacts: dict[str, dict[str, Any]] = {}  # email (lower case) -> enriched record, Dropcontact's shape
        self.batches: dict[str, Batch] = {}
        self._ids = random.Random(seed)

    def reset(self) -> None:
        """Back to the state after construction (dataset, batches, request log, faults, settings), so one running
        server can serve many tests."""
        with self.lock:
            self.requests.clear()
            self.faults.clear()
            self.contacts.clear()
            self.batches.clear()
            self.polls_until_ready, self.credits, self.echo_custom_fields = self._settings
            self.latency = 0.0

    # ------------------------------------------------------------------------------------------------- dataset

    def add_contact(self, email: str, record: dict[str, Any] | None = None, **attributes: Any) -> None:
        """What Dropcontact knows about this email: an enriched record (``email`` as a list of ``{"email",
        "qualification"}``; ``qualification`` may be given alone as an attribute)."""
        data = {**(record or {}), **attributes}
        qualification = data.pop("qualification", None)
        if qualification and "email" not in data:
            data["email"] = [{"email": email, "qualification": qualification}]
        self.contacts[email.casefold()] = data

    @staticmethod
    def rate_limit_fault(times: int = 1, retry_after: float | None = None, **kwargs: Any) -> Fault:
        """``429 Too Many Requests`` as the API sends it when over 60 requests a second."""
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        body = {"error": True, "reason": "Too many requests", "success": False}
        return Fault(status=429, body=body, headers=headers, times=times, **kwargs)

    # ------------------------------------------------------------------------------------------------- routes

    def _authorised(self, request: Request) -> Reply | None:
        token = request.headers.get("x-access-token")
        if not token:
            return _refusal(401, "Missing access token: send your API key in the X-Access-Token header")
        if token != self.api_key:
            return _refusal(401, "Invalid access token")
        return None

    @route("POST", "/v1/enrich/all")
    def submit(self, request: Request) -> Reply:
        refused = self._authorised(request)
        if refused:
            return refused
        try:
            body = request.json()
        except ValueError as exc:
            return Reply(422, {"detail": [{"type": "json_invalid", "msg": f"JSON decode error: {exc}"}]})
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list) or not data:
            return _refusal(400, "Missing data in JSON")
        if len(data) > MAX_RECORDS:
            return _refusal(400, f"Too many records, you can only submit up to {MAX_RECORDS} records")
        for record in data:
            if not isinstance(record, dict):
                return Reply(422, {"detail": [{"type": "dict_type", "msg": "Input should be a valid dictionary"}]})
            if len(json.dumps(record).encode()) > MAX_RECORD_BYTES:
                return _refusal(400, "Data size is too big, you can only submit up to 15 kB of data in a single record")
        options = {k: v for k, v in body.items() if k != "data"}
        with self.lock:
            request_id = "".join(self._ids.choice(string.ascii_lowercase) for _ in range(15))
            batch = Batch(request_id, [dict(r) for r in data], options, self.polls_until_ready)
            batch.unexpected_fields = sorted({k for r in data for k in r if k not in INPUT_FIELDS})
            self.batches[request_id] = batch
            credits = self.credits
        return Reply(200, {"credits_left": credits, "request_id": request_id, "error": False, "success": True})

    @route("GET", "/v1/enrich/all/{request_id}")
    def result(self, request: Request) -> Reply:
        refused = self._authorised(request)
        if refused:
            return refused
        force = (request.arg("forceResults") or "").lower() == "true"
        with self.lock:
            batch = self.batches.get(request.params["request_id"])
            if batch is None:  # unknown ids answer like pending ones
                return Reply(200, {"error": False, "reason": NOT_READY_REASON, "success": False})
            batch.polls += 1
            if batch.polls_left > 0:
                batch.polls_left -= 1
                if not force:
                    return Reply(200, {"error": False, "reason": NOT_READY_REASON, "success": False})
                return Reply(200, {"data": [], "error": False, "status": "in_progress", "success": True})
            if not batch.result:
                batch.result = [self._enrich(record) for record in batch.records]
            data = [dict(record) for record in batch.result]
        payload: dict[str, Any] = {"data": data, "error": False, "success": True}
        if force:
            payload["status"] = "ready"
        return Reply(200, payload)

    # ------------------------------------------------------------------------------------------------- enrichment

    def _enrich(self, record: dict[str, Any]) -> dict[str, Any]:
        """The enriched record: the cleaned input, plus what the dataset knows (only populated attributes)."""
        out: dict[str, Any] = {}
        for key in ("first_name", "last_name", "full_name", "company", "job", "mobile_phone", "phone"):
            value = record.get(key)
            if isinstance(value, str) and value.strip():
                out[key] = value.strip().title() if key in ("first_name", "last_name", "full_name") else value.strip()
        website = record.get("website")
        if isinstance(website, str) and website.strip():
            domain = website.strip().lower().removeprefix("https://").removeprefix("http://").split("/")[0]
            out["website"] = domain if domain.startswith("www.") else f"www.{domain}"
        linkedin = record.get("linkedin")
        if isinstance(linkedin, str) and "linkedin.com/in/" in linkedin:
            out["linkedin"] = "www.linkedin.com/in/" + linkedin.split("linkedin.com/in/", 1)[1].strip("/")
        email = record.get("email")
        known = self.contacts.get(email.casefold()) if isinstance(email, str) else None
        if known:
            out.update(known)
            emails = known.get("email") or []
            if any(isinstance(e, dict) and str(e.get("qualification", "")).startswith("nomina") for e in emails):
                self.credits = max(0, self.credits - 1)  # a credit per nominative email found or verified
        if self.echo_custom_fields and isinstance(record.get("custom_fields"), dict):
            out["custom_fields"] = dict(record["custom_fields"])
        return {k: v for k, v in out.items() if v not in (None, "", [], {})}
