"""A local Hunter Email Verifier (``GET /v2/email-verifier``) with the public API's shapes.

Verification results come from an in-memory dataset (``add_person``); an email not in it verifies as ``unknown``
with score 0 (Hunter could not tell). Behaviour, as documented (https://hunter.io/api-documentation/v2#email-verifier,
#errors, #rate-limit; help.hunter.io):

- The key is read from the ``api_key`` query parameter, the ``X-API-KEY`` header or ``Authorization: Bearer``.
  Missing or wrong: ``401``.
- ``200`` ``{"data": {"status", "result", "score", "email", "regexp", "gibberish", "disposable", "webmail",
  "mx_records", "smtp_server", "smtp_check", "accept_all", "block", "sources"}, "meta": {"params": {"email"}}}``.
- ``202`` while a verification is in progress (``add_person(..., pending=n)`` answers 202 to the first n calls).
- ``400`` for a missing or malformed ``email``; ``451`` for a person whose data Hunter does not process
  (``add_person(..., restricted=True)``).
- Rate limits (``limits={"second": 10, "minute": 300}``, fixed windows on ``clock``): past one, ``403`` (Hunter's
  "rate limit reached"; no Retry-After or rate-limit headers, as documented). Usage (``credits=n``): each
  ``valid``, ``invalid`` or ``accept_all`` verification uses a credit (webmail, disposable and unknown results are
  free); with none left, ``429`` (Hunter's "usage limit reached").

Error bodies are ``{"errors": [{"id", "code", "details"}]}``; the ``id`` and ``details`` strings here are
illustrative (the reference documents the envelope and the statuses, not every string).

Use ``Fault`` injection for 5xx, latency, timeouts and malformed bodies.
"""

from __future__ import annotations

import copy
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from leadpipe_local.fakes.base import FakeServer, Reply, Request, route

VERIFIER = "/v2/email-verifier"
VERIFIER_LIMITS: dict[str, int] = {"second": 10, "minute": 300}
WINDOWS: dict[str, int] = {"second": 1, "minute": 60}
STATUSES = ("valid", "invalid", "accept_all", "webmail", "disposable", "unknown")
RESULTS = {"valid": "deliverable", "invalid": "undeliverable"}  # everything else: "risky"
FREE_STATUSES = frozenset({"webmail", "disposable", "unknown"})  # verifications that use no credit

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _error(status: int, error_id: str, details: str) -> Reply:
    return Reply(status, {"errors": [{"id": error_id, "code": status, "details": details}]})


@dataclass
class Verification:
    data: dict[str, Any]
    pending: int = 0  # 202 answers still to give
    restricted: bool = False


class FakeHunter(FakeServer):
    name = "hunter"

    def __init__(
        self,
        api_key: str = "test-key",
        *,
        limits: Mapping[str, int] | None = None,
        credits: int | None = None,
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
        self._initial = (dict(limits or {}), credits, clock)
        self.limits = dict(limits or {})  # window ("second", "minute") -> calls
        self.credits = credits  # None: unlimited
        self.clock = clock
        self.verifications: dict[str, Verification] = {}  # casefolded email -> result
        self._usage: dict[tuple[str, int], int] = {}  # (window, window start) -> calls
        self._data_lock = threading.Lock()

    def reset(self) -> None:
        """Back to the state after construction: no data, requests, faults or usage."""
        with self.lock:
            self.requests.clear()
            self.faults.clear()
        with self._data_lock:
            self.verifications.clear()
            self._usage.clear()
            self.limits = dict(self._initial[0])
            self.credits = self._initial[1]
            self.clock = self._initial[2]

    def add_person(
        self,
        email: str,
        *,
        status: str = "valid",
        score: int | None = None,
        result: str | None = None,
        pending: int = 0,
        restricted: bool = False,
        sources: Iterable[Mapping[str, Any]] = (),
        **flags: Any,
    ) -> dict[str, Any]:
        """A verification result; ``flags`` override the check booleans (``webmail=True``, ``smtp_check=False``...)."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r} (Hunter's: {', '.join(STATUSES)})")
        default_score = {"valid": 95, "accept_all": 75, "webmail": 70, "invalid": 10, "disposable": 5, "unknown": 0}
        data: dict[str, Any] = {
            "status": status,
            "result": result or RESULTS.get(status, "risky"),
            "score": default_score[status] if score is None else score,
            "email": email.strip().lower(),
            "regexp": True,
            "gibberish": False,
            "disposable": status == "disposable",
            "webmail": status == "webmail",
            "mx_records": status != "invalid",
            "smtp_server": status != "invalid",
            "smtp_check": status in ("valid", "accept_all", "webmail"),
            "accept_all": status == "accept_all",
            "block": False,
            "sources": [dict(s) for s in sources],
            **flags,
        }
        with self._data_lock:
            self.verifications[email.strip().casefold()] = Verification(data, pending=pending, restricted=restricted)
        return data

    # ------------------------------------------------------------------------------------------------ routes

    @route("GET", VERIFIER)
    def email_verifier(self, request: Request) -> Reply:
        key = request.arg("api_key") or request.headers.get("x-api-key")
        bearer = request.headers.get("authorization", "")
        if not key and bearer.lower().startswith("bearer "):
            key = bearer[7:].strip()
        if key != self.api_key:
            return _error(401, "authentication_failed", "No user found for the API key supplied")
        throttled = self._throttle()
        if throttled is not None:
            return throttled
        email = (request.arg("email") or "").strip()
        if not email:
            return _error(400, "wrong_params", "You are missing the email parameter")
        if not _EMAIL.match(email):
            return _error(400, "invalid_email", "The email must be a valid email address")
        with self._data_lock:
            verification = self.verifications.get(email.casefold())
            if verification is None:
                verification = Verification(self._unknown(email))
            if verification.restricted:
                return _error(451, "claimed_email", "We cannot process data about this person")
            if verification.pending > 0:
                verification.pending -= 1
                return Reply(202, {})
            data = copy.deepcopy(verification.data)
            if data["status"] not in FREE_STATUSES and self.credits is not None:
                if self.credits <= 0:
                    return _error(429, "too_many_requests", "You have reached your usage limit.")
                self.credits -= 1
        return Reply(200, {"data": data, "meta": {"params": {"email": email}}})

    def _unknown(self, email: str) -> dict[str, Any]:
        return {
            "status": "unknown",
            "result": "risky",
            "score": 0,
            "email": email.lower(),
            "regexp": True,
            "gibberish": False,
            "disposable": False,
            "webmail": False,
            "mx_records": False,
            "smtp_server": False,
            "smtp_check": False,
            "accept_all": False,
            "block": True,
            "sources": [],
        }

    def _throttle(self) -> Reply | None:
        if not self.limits:
            return None
        now = self.clock()
        with self._data_lock:
            starts = {w: int(now // WINDOWS[w]) * WINDOWS[w] for w in self.limits}
            if any(self._usage.get((w, starts[w]), 0) >= limit for w, limit in self.limits.items()):
                return _error(403, "too_many_requests", "You have reached the rate limit.")
            for window in self.limits:
                self._usage[(window, starts[window])] = self._usage.get((window, starts[window]), 0) + 1
        return None
