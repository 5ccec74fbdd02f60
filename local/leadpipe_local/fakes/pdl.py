"""A local People Data Labs company enrichment API with the public API's shapes, for development and tests.

- ``GET /v5/company/enrich?website=...`` (also ``name``, ``profile``, ``ticker``, ``pdl_id``; ``min_likelihood``):
  ``200`` with the company record's fields at the top level plus ``status`` and ``likelihood``, or ``404``
  ``{"status": 404, "error": {"type": "not_found", ...}}``.
- ``POST /v5/company/enrich/bulk`` with ``{"requests": [{"params": {...}, "metadata": ...}]}`` (1 to 100): ``200``
  with a JSON array of per-item answers in request order, each with its own ``status`` and the echoed ``metadata``.
- The key in ``X-Api-Key`` (or the ``api_key`` query parameter): missing or wrong -> ``401`` ``authentication_error``;
  a key in ``forbidden_keys`` -> ``403``. Errors are ``{"status": ..., "error": {"type": ..., "message": ...}}``.
- Every answer carries the rate-limit headers (``x-ratelimit-limit``/``-remaining`` as per-window objects,
  ``x-ratelimit-reset``); ``rate_limit_fault`` builds the documented ``429`` for ``Fault`` injection.

Companies live in an in-memory dataset keyed by domain (``add_company``), each with the likelihood a match on it
gets. ``item_faults`` makes single items of a bulk answer fail (e.g. ``{"acme.com": [503]}``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from leadpipe_local.fakes.base import FakeServer, Fault, Reply, Request, route

MAX_REQUESTS = 100
LOOKUP_PARAMS = ("pdl_id", "name", "profile", "ticker", "website")
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "payment_required",
    403: "forbidden",
    404: "not_found",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "api_error",
}


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"status": status, "error": {"type": _ERROR_TYPES.get(status, "api_error"), "message": message}}


def domain_of(website: str) -> str:
    text = website.strip().lower()
    for prefix in ("https://", "http://"):
        text = text.removeprefix(prefix)
    return text.split("/")[0].split("?")[0].removeprefix("www.")


def _window_reset() -> str:
    now = datetime.now(UTC)
    return (now.replace(second=0, microsecond=0) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakePdl(FakeServer):
    name = "pdl"

    def __init__(
        self,
        api_key: str = "test-key",
        *,
        forbidden_keys: frozenset[str] = frozenset(),
        rate_limit_per_minute: int = 100,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 7,
    ) -> None:
        super().__init__(host, port, seed=seed)
        self.api_key = api_key
        self.forbidden_keys = forbidden_keys
        self.rate_limit_per_minute = rate_limit_per_minute  # reported in the headers, not enforced (use faults)
        self.companies: dict[str, tuple[dict[str, Any], int]] = {}  # domain -> (record, likelihood)
        self.item_faults: dict[str, list[int]] = {}  # domain -> statuses its next bulk items answer with
        self.billed = 0  # 200 answers, the ones PDL charges a credit for

    def reset(self) -> None:
        """Back to the state after construction (dataset, item faults, request log, faults), so one running server
        can serve many tests."""
        with self.lock:
            self.requests.clear()
            self.faults.clear()
            self.companies.clear()
            self.item_faults.clear()
            self.billed = 0
            self.latency = 0.0

    # ------------------------------------------------------------------------------------------------- dataset

    def add_company(self, domain: str, record: dict[str, Any], likelihood: int = 8) -> None:
        """A company record in PDL's schema (``display_name``, ``size``, ``location``: {...}, ``linkedin_url``...)."""
        self.companies[domain_of(domain)] = (dict(record), likelihood)

    def rate_limit_fault(self, times: int = 1, retry_after: float | None = None, **kwargs: Any) -> Fault:
        """The documented ``429``: ``rate_limit_error`` body, the window's headers, ``Retry-After`` if asked."""
        headers = self._limit_headers(remaining=0)
        if retry_after is not None:
            headers["Retry-After"] = f"{retry_after:g}"
        body = error_body(429, "An error occurred due to requests hitting the API too quick")
        return Fault(status=429, body=body, headers=headers, times=times, **kwargs)

    def _limit_headers(self, remaining: int | None = None) -> dict[str, str]:
        left = self.rate_limit_per_minute - 1 if remaining is None else remaining
        return {
            "x-ratelimit-limit": json.dumps({"minute": self.rate_limit_per_minute}),
            "x-ratelimit-remaining": json.dumps({"minute": max(0, left)}),
            "x-ratelimit-reset": _window_reset(),
        }

    # ------------------------------------------------------------------------------------------------- routes

    def _authorised(self, request: Request) -> Reply | None:
        key = request.headers.get("x-api-key") or request.arg("api_key")
        if not key:
            return Reply(401, error_body(401, "No API key was provided"))
        if key in self.forbidden_keys:
            return Reply(403, error_body(403, "This API key does not have access to this endpoint"))
        if key != self.api_key:
            return Reply(401, error_body(401, "Invalid API key"))
        return None

    def _reply(self, status: int, body: Any) -> Reply:
        return Reply(status, body, self._limit_headers())

    @route("GET", "/v5/company/enrich")
    def enrich(self, request: Request) -> Reply:
        refused = self._authorised(request)
        if refused:
            return refused
        params = {k: v[0] for k, v in request.query.items() if v}
        status, body = self._match(params)
        return self._reply(status, body)

    @route("POST", "/v5/company/enrich/bulk")
    def bulk(self, request: Request) -> Reply:
        refused = self._authorised(request)
        if refused:
            return refused
        try:
            body = request.json()
        except ValueError:
            return Reply(400, error_body(400, "The request body is not valid JSON"))
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            return Reply(400, error_body(400, "requests must be a list of 1 to 100 request objects"))
        if len(requests) > MAX_REQUESTS:
            return Reply(400, error_body(400, f"You can only send up to {MAX_REQUESTS} requests at once"))
        shared = {k: v for k, v in body.items() if k != "requests"}  # parameters applied to every request
        items: list[dict[str, Any]] = []
        for entry in requests:
            params = entry.get("params") if isinstance(entry, dict) else None
            if not isinstance(params, dict):
                items.append(error_body(400, "Each request needs a params object"))
                continue
            _, answer = self._match({**shared, **params}, bulk=True)
            if isinstance(entry, dict) and "metadata" in entry:
                answer["metadata"] = entry["metadata"]
            items.append(answer)
        return self._reply(200, items)

    # ------------------------------------------------------------------------------------------------- matching

    def _match(self, params: dict[str, Any], *, bulk: bool = False) -> tuple[int, dict[str, Any]]:
        if not any(params.get(k) for k in LOOKUP_PARAMS):
            return 400, error_body(400, f"At least one of {', '.join(LOOKUP_PARAMS)} is required")
        try:
            min_likelihood = int(params.get("min_likelihood") or 0)
        except (TypeError, ValueError):
            return 400, error_body(400, "min_likelihood must be an integer between 0 and 10")
        if not 0 <= min_likelihood <= 10:
            return 400, error_body(400, "min_likelihood must be an integer between 0 and 10")
        domain = domain_of(str(params.get("website") or ""))
        with self.lock:
            if bulk and self.item_faults.get(domain):
                status = self.item_faults[domain].pop(0)
                return status, error_body(status, "An internal error occurred")
            known = self.companies.get(domain) if domain else self._by_name(str(params.get("name") or ""))
            if known is None or known[1] < min_likelihood:
                return 404, error_body(404, "No records were found matching your request")
            self.billed += 1
        record, likelihood = known
        return 200, {"status": 200, **record, "likelihood": likelihood}

    def _by_name(self, name: str) -> tuple[dict[str, Any], int] | None:
        wanted = " ".join(name.split()).casefold()
        for record, likelihood in self.companies.values():
            names = {str(record.get(k) or "").casefold() for k in ("name", "display_name")}
            if wanted and wanted in names:
                return record, likelihood
        return None
