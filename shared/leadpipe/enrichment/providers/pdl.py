"""People Data Labs, company enrichment, through the Bulk Company Enrichment API.

API (https://docs.peopledatalabs.com/docs/bulk-company-enrichment-api, .../reference-company-enrichment-api):

- ``POST /v5/company/enrich/bulk`` with ``{"requests": [{"params": {...}, "metadata": {...}}, ...]}``, 1 to 100
  requests, the key in the ``X-Api-Key`` header. Answers a JSON array, one object per request in request order:
  ``{"status": 200, "likelihood": 1..10, <company fields at the top level>, "metadata": ...}`` for a match, or
  ``{"status": 404, "error": {"type": "not_found", ...}}`` for a miss. Only ``200`` items are billed.
- ``GET /v5/company/enrich?website=...`` is the same match for one company (``404`` when nothing matches); this
  adapter always uses the bulk form.
- ``min_likelihood`` (a request parameter) makes weaker matches come back as ``404``; ``likelihood`` is PDL's match
  confidence, 1 (very low) to 10 (highest), on a logarithmic scale.
- Errors: ``{"status": ..., "error": {"type": ..., "message": ...}}`` (401 ``authentication_error``, 402
  ``payment_required``, 429 ``rate_limit_error``). Rate limits are per key and endpoint, in fixed one-minute windows
  (free plan: 100 requests a minute); ``x-ratelimit-reset`` tells when the window resets.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from leadpipe.enrichment.fields import Kind, employee_range, range_of
from leadpipe.enrichment.http import retry_after_seconds
from leadpipe.enrichment.providers.base import Answer, CompanyQuery, ProviderError, ProviderInfo, RateLimit
from leadpipe.enrichment.providers.http_provider import HttpProvider

NAME = "pdl"
MAX_REQUESTS = 100
BULK_PATH = "/v5/company/enrich/bulk"

# Reliabilities (0..1) of PDL's company fields, used by the merge:
# - company_name 0.9 and company_linkedin 0.9: PDL's company records are built around the company's own pages
#   (website, LinkedIn page); a match on the website returns that company's name and page.
# - country 0.85, city 0.8: the headquarters location of the record; the city is more often a secondary office.
# - founded_year 0.8: mostly self-declared on the company's pages, sometimes missing or off by a year.
# - industry 0.75: a LinkedIn-style taxonomy; right for the company, but other providers label industries their own
#   way, so agreement between sources is weaker than for names.
# - employee_range 0.7: ``size`` is the self-declared bucket, ``employee_count`` is counted from profiles and lags.
# - description 0.7: the company's own summary (first sentences kept); accurate but promotional.
COMPANY_RELIABILITY: dict[str, float] = {
    "company_name": 0.9,
    "company_linkedin": 0.9,
    "country": 0.85,
    "city": 0.8,
    "founded_year": 0.8,
    "industry": 0.75,
    "employee_range": 0.7,
    "description": 0.7,
}

# likelihood -> answer confidence. The scale is logarithmic (each step is a large gain in certainty), so confidence
# rises fast through the low scores and flattens near the top.
LIKELIHOOD_CONFIDENCE: dict[int, float] = {
    1: 0.3,
    2: 0.45,
    3: 0.6,
    4: 0.7,
    5: 0.78,
    6: 0.85,
    7: 0.9,
    8: 0.94,
    9: 0.97,
    10: 1.0,
}
DEFAULT_MIN_LIKELIHOOD = 3  # below this PDL answers 404 (not billed): a weak match on a website is rarely right

RETRY_ITEM_STATUSES = frozenset({429, 500, 502, 503, 504})

_LOWER_WORDS = frozenset({"of", "the", "and", "de", "da", "do", "du", "del", "der", "la", "le", "les", "y", "on"})
_LINKEDIN_COMPANY = re.compile(r"linkedin\.com/company/([^/?#\s]+)", re.IGNORECASE)


def confidence_of(likelihood: Any) -> float:
    """PDL's ``likelihood`` (1..10) -> the answer's confidence."""
    if isinstance(likelihood, bool) or not isinstance(likelihood, int | float):
        return LIKELIHOOD_CONFIDENCE[DEFAULT_MIN_LIKELIHOOD]
    return LIKELIHOOD_CONFIDENCE[max(1, min(10, round(likelihood)))]


def company_linkedin(url: str | None) -> str | None:
    """``linkedin.com/company/slug`` (PDL's form) or any full URL -> ``https://www.linkedin.com/company/<slug>``."""
    match = _LINKEDIN_COMPANY.search(url or "")
    return f"https://www.linkedin.com/company/{match.group(1)}" if match else None


def place_name(text: str | None) -> str | None:
    """PDL writes places in lower case (``united states``): title case, keeping small words lower."""
    if not text or not text.strip():
        return None
    words = text.split()
    return " ".join(
        w if i and w in _LOWER_WORDS else "-".join(p[:1].upper() + p[1:] for p in w.split("-"))
        for i, w in enumerate(words)
    )


def short_description(text: str | None, sentences: int = 2, limit: int = 400) -> str | None:
    if not text or not text.strip():
        return None
    parts = re.split(r"(?<=[.!?])\s+", " ".join(text.split()))
    short = " ".join(parts[:sentences])
    return short if len(short) <= limit else short[: limit - 1].rstrip() + "…"


def pdl_retry_hint(response: httpx.Response) -> float | None:
    """Seconds to wait before retrying: ``Retry-After`` when sent, else the rate-limit window's
    ``x-ratelimit-reset`` (a UTC time: ISO 8601, an HTTP date or epoch seconds)."""
    hinted = retry_after_seconds(response)
    if hinted is not None:
        return hinted
    reset = (response.headers.get("x-ratelimit-reset") or "").strip()
    if not reset:
        return None
    try:
        number = float(reset)
    except ValueError:
        pass
    else:
        return max(0.0, number - time.time()) if number > 1e9 else max(0.0, number)
    try:
        when = datetime.fromisoformat(reset.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = parsedate_to_datetime(reset)
        except (TypeError, ValueError):
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - time.time())


class PdlProvider(HttpProvider):
    """People Data Labs' company enrichment, up to 100 domains per call."""

    info = ProviderInfo(
        name=NAME,
        company_fields=COMPANY_RELIABILITY,
        batch_size=MAX_REQUESTS,
        rate_limit=RateLimit(100, 60.0),  # free plan, per PROVIDERS.md (paid: 1,000 a minute)
        key_env="PDL_API_KEY",
    )

    default_base_url = "https://api.peopledatalabs.com"

    def __init__(self, api_key: str, *, min_likelihood: int = DEFAULT_MIN_LIKELIHOOD, **kwargs: Any) -> None:
        super().__init__(api_key, **kwargs)
        self.min_likelihood = min_likelihood

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"X-Api-Key": api_key, "Accept": "application/json"}

    def retry_hint(self, response: httpx.Response) -> float | None:
        return pdl_retry_hint(response)

    def companies(self, queries: Sequence[CompanyQuery]) -> list[Answer]:
        if len(queries) > MAX_REQUESTS:
            raise ProviderError(
                NAME, "bad_request", f"{len(queries)} companies, at most {MAX_REQUESTS} per request", retryable=False
            )
        if not queries:
            return []
        items = self._bulk(list(range(len(queries))), queries)
        retry = [i for i, item in items.items() if _status(item) in RETRY_ITEM_STATUSES]
        if retry:  # a few items failed on PDL's side: ask again for those only, once
            items.update(self._bulk(retry, queries))
            failed = [i for i in retry if _status(items[i]) in RETRY_ITEM_STATUSES]
            if failed:
                status = _status(items[failed[0]])
                reason = "rate_limited" if status == 429 else "server_error"
                raise ProviderError(
                    NAME, reason, f"{len(failed)} of {len(queries)} items failed ({status})", status=status
                )
        refused = [item for item in items.values() if _status(item) != 404 and 400 <= _status(item) < 500]
        if len(refused) == len(queries):  # every item refused: our request is wrong, not the domains
            raise ProviderError(
                NAME, "bad_request", f"every item refused: {str(refused[0])[:200]}", status=400, retryable=False
            )
        return [self._answer(query, items[i]) for i, query in enumerate(queries)]

    # ------------------------------------------------------------------------------------------------ requests

    def _params(self, query: CompanyQuery) -> dict[str, Any]:
        params: dict[str, Any] = {"website": query.domain, "min_likelihood": self.min_likelihood}
        if query.name:
            params["name"] = query.name
        return params

    def _bulk(self, indexes: list[int], queries: Sequence[CompanyQuery]) -> dict[int, dict[str, Any]]:
        """One bulk call for these queries -> each index's item. Items come back in request order; the metadata
        (our index) is echoed and preferred when present."""
        body = {"requests": [{"params": self._params(queries[i]), "metadata": {"index": i}} for i in indexes]}
        payload = self.http.json(self.http.request("POST", BULK_PATH, json=body))
        if (
            not isinstance(payload, list)
            or len(payload) != len(indexes)
            or not all(isinstance(x, dict) for x in payload)
        ):
            raise ProviderError(NAME, "bad_response", f"expected {len(indexes)} items, got {str(payload)[:200]}")
        items: dict[int, dict[str, Any]] = {}
        for position, item in zip(indexes, payload, strict=True):
            metadata = item.get("metadata")
            index = metadata.get("index") if isinstance(metadata, dict) else None
            items[index if isinstance(index, int) and index in indexes else position] = item
        if len(items) != len(indexes):
            raise ProviderError(NAME, "bad_response", "the items' metadata does not match the requests")
        return items

    # ------------------------------------------------------------------------------------------------ mapping

    def _answer(self, query: CompanyQuery, item: Mapping[str, Any]) -> Answer:
        status = _status(item)
        if 400 <= status < 500:  # 404: no match; another 4xx for one item: params PDL cannot match on (a bad domain)
            return Answer.miss(Kind.COMPANY, query.domain)
        if status != 200:
            raise ProviderError(NAME, "bad_response", f"item status {status}: {str(item)[:200]}")
        fields = self.map_company(item)
        if not fields:
            return Answer.miss(Kind.COMPANY, query.domain)
        return Answer(Kind.COMPANY, query.domain, True, fields, confidence=confidence_of(item.get("likelihood")))

    @staticmethod
    def map_company(record: Mapping[str, Any]) -> dict[str, Any]:
        """A PDL company record -> the company vocabulary (``fields.COMPANY_FIELDS``)."""
        fields: dict[str, Any] = {}
        name = _text(record.get("display_name")) or place_name(_text(record.get("name")))
        if name:
            fields["company_name"] = name
        industry = _text(record.get("industry"))
        if industry:
            fields["industry"] = industry.lower()
        count = record.get("employee_count")
        size = range_of(_text(record.get("size"))) or employee_range(count if isinstance(count, int) else None)
        if size:
            fields["employee_range"] = size
        location = record.get("location")
        if isinstance(location, dict):
            country = place_name(_text(location.get("country")))
            city = place_name(_text(location.get("locality")))
            if country:
                fields["country"] = country
            if city:
                fields["city"] = city
        founded = record.get("founded")
        if isinstance(founded, int) and not isinstance(founded, bool) and 1000 <= founded <= 9999:
            fields["founded_year"] = founded
        linkedin = company_linkedin(_text(record.get("linkedin_url")))
        if linkedin:
            fields["company_linkedin"] = linkedin
        description = short_description(_text(record.get("summary")) or _text(record.get("headline")))
        if description:
            fields["description"] = description
        return fields


def _status(item: Mapping[str, Any]) -> int:
    status = item.get("status")
    return status if isinstance(status, int) and not isinstance(status, bool) else 0


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return " ".join(value.split())
    return None
