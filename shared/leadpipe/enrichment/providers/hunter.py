"""Hunter: email verification through the Email Verifier API.

API (https://hunter.io/api-documentation/v2#email-verifier, #errors, #rate-limit; help.hunter.io "How to verify
emails via API"):

- ``GET /v2/email-verifier?email=...``, one email per call. The key can go in the ``api_key`` query parameter or the
  ``X-API-KEY`` header; this adapter uses the header, so the key never appears in a URL (httpx logs request URLs at
  INFO level, and URLs end up in proxies' and load balancers' logs).
- ``200`` ``{"data": {"status": "valid"|"invalid"|"accept_all"|"webmail"|"disposable"|"unknown", "result": ...
  (deprecated: deliverable/undeliverable/risky), "score": 0..100, "email": ..., "regexp", "gibberish",
  "disposable", "webmail", "mx_records", "smtp_server", "smtp_check", "accept_all", "block", "sources": [...]},
  "meta": {"params": {...}}}``. ``score`` is Hunter's confidence in the status; it becomes the answer's confidence
  for ``email_status``.
- ``202``: the verification is still in progress; the same call is to be made again later.
- Errors are ``{"errors": [{"id": ..., "code": ..., "details": ...}]}``: ``400`` bad parameters, ``401`` no valid
  key, ``403`` the rate limit (10 requests a second, 300 a minute for the verifier), ``429`` the plan's usage limit
  (the month's credits are spent), ``451`` Hunter does not process data about this person. No rate-limit headers and
  no Retry-After are documented for these.

``ProviderHttp`` retries timeouts, 429 and 5xx and treats 401/403 as a bad key. Hunter's statuses mean otherwise for
three of them, so this adapter asks ``ProviderHttp`` to hand 403, 429 and 451 back and reads them itself: ``202`` and
``403`` are retried here (a few times, short waits, within the time budget), ``429`` is a quota error that no retry
fixes, ``451`` is a miss.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from leadpipe.enrichment.fields import Kind
from leadpipe.enrichment.http import retry_after_seconds
from leadpipe.enrichment.providers.base import Answer, PersonQuery, ProviderError, ProviderInfo, RateLimit
from leadpipe.enrichment.providers.http_provider import HttpProvider

NAME = "hunter"
DEFAULT_BASE_URL = "https://api.hunter.io"
VERIFIER_PATH = "/v2/email-verifier"

# Reliability of Hunter's email_status: verifying deliverability (MX, SMTP, catch-all, disposable and webmail
# checks) is all this API does, and each answer comes with Hunter's own score, which scales it further.
EMAIL_STATUS_RELIABILITY = 0.9

# data.status -> fields.EMAIL_STATUSES (the same names), and the deprecated data.result for answers without status.
STATUS: dict[str, str] = {
    "valid": "valid",
    "invalid": "invalid",
    "accept_all": "accept_all",
    "webmail": "webmail",
    "disposable": "disposable",
    "unknown": "unknown",
}
RESULT: dict[str, str] = {"deliverable": "valid", "undeliverable": "invalid", "risky": "risky"}

PENDING_STATUS = 202
THROTTLED_STATUS = 403  # Hunter's "you have reached the rate limit"
USAGE_LIMIT_STATUS = 429  # Hunter's "you have reached your usage limit"
RESTRICTED_STATUS = 451  # Hunter does not process data about this person
HANDLED_HERE = frozenset({THROTTLED_STATUS, USAGE_LIMIT_STATUS, RESTRICTED_STATUS})


def status_of(data: Mapping[str, Any]) -> str | None:
    status = data.get("status")
    if isinstance(status, str) and status.strip().lower() in STATUS:
        return STATUS[status.strip().lower()]
    result = data.get("result")
    if isinstance(result, str) and result.strip().lower() in RESULT:
        return RESULT[result.strip().lower()]
    return None


def _excerpt(response: httpx.Response) -> str:
    return f"HTTP {response.status_code}: {response.text[:300]}"


class HunterProvider(HttpProvider):
    """Hunter's Email Verifier: ``email_status`` for one email per HTTP call; ``people()`` loops over its queries."""

    info = ProviderInfo(
        name=NAME,
        person_fields={"email_status": EMAIL_STATUS_RELIABILITY},
        batch_size=1,
        rate_limit=RateLimit(10, 1.0),  # the verifier's 10 requests a second (it also allows 300 a minute)
        key_env="HUNTER_API_KEY",
    )

    # Retries done here (on top of ProviderHttp's for timeouts and 5xx), with their waits in seconds.
    pending_retries = 3  # 202: the verification is still running
    pending_wait = 2.0
    throttled_retries = 3  # 403: over the per-second or per-minute limit; waits double from throttled_wait
    throttled_wait = 1.0

    default_base_url = DEFAULT_BASE_URL

    def auth_headers(self, api_key: str) -> dict[str, str]:
        # In a header rather than ?api_key=: URLs end up in logs.
        return {"X-API-KEY": api_key, "accept": "application/json"}

    def people(self, queries: Sequence[PersonQuery]) -> list[Answer]:
        return [self.verify(query.email) for query in queries]

    def verify(self, email: str) -> Answer:
        """The answer about one email: found with ``email_status``, or a miss when Hunter will not process it."""
        pending = throttled = 0
        while True:
            response = self.http.request("GET", VERIFIER_PATH, params={"email": email}, ok_statuses=HANDLED_HERE)
            status = response.status_code
            if status == 200:
                return self._answer(email, self.http.json(response))
            if status == RESTRICTED_STATUS:
                return Answer.miss(Kind.PERSON, email)
            if status == USAGE_LIMIT_STATUS:
                raise ProviderError(NAME, "quota", _excerpt(response), status=status, retryable=False)
            if status == PENDING_STATUS:
                wait = retry_after_seconds(response)
                wait = self.pending_wait if wait is None else wait
                if pending >= self.pending_retries:
                    raise ProviderError(
                        NAME,
                        "timeout",
                        f"verification still in progress after {pending + 1} tries",
                        status=status,
                        retry_after=wait,
                    )
                pending += 1
                self._wait(wait, "verification in progress")
                continue
            if status == THROTTLED_STATUS:
                self.http.throttled += 1
                wait = retry_after_seconds(response)
                wait = self.throttled_wait * 2.0**throttled if wait is None else wait
                if throttled >= self.throttled_retries:
                    raise ProviderError(NAME, "rate_limited", _excerpt(response), status=status, retry_after=wait)
                throttled += 1
                self._wait(wait, "rate limit")
                continue
            # Another 2xx: not an answer this adapter knows how to read; Hunter may answer it next time.
            raise ProviderError(NAME, "server_error", f"unexpected {_excerpt(response)}", status=status)

    def _answer(self, email: str, payload: Any) -> Answer:
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, dict):
            raise ProviderError(NAME, "bad_response", f"no data object in {str(payload)[:200]!r}")
        status = status_of(data)
        if status is None:
            raise ProviderError(NAME, "bad_response", f"unknown verification status in {str(data)[:200]!r}")
        answer = Answer(kind=Kind.PERSON, key=email, found=True, fields={"email_status": status})
        score = data.get("score")
        if isinstance(score, int | float) and not isinstance(score, bool):
            answer.field_confidence["email_status"] = max(0.0, min(1.0, float(score) / 100.0))
        return answer

    def _wait(self, seconds: float, why: str) -> None:
        if seconds <= 0:
            return
        if not self.http.budget.can_wait(seconds):
            raise ProviderError(NAME, "budget", f"would need to wait {seconds:.1f}s ({why}) past the invocation's time")
        self.http.sleep(seconds)
