"""Apollo.io: people through Bulk People Enrichment, companies through Organization Enrichment.

API (https://docs.apollo.io/reference/bulk-people-enrichment, .../organization-enrichment, .../status-codes,
.../rate-limits):

- The key goes in the ``x-api-key`` header. A missing or wrong key answers ``401`` with a text/plain body ("Invalid
  API key. See https://docs.apollo.io/reference/authentication ..."); a key whose scope or plan does not include the
  endpoint answers ``403`` ``{"error": ..., "error_code": "API_INACCESSIBLE"}``.
- ``POST /api/v1/people/bulk_match`` with ``{"details": [{email, first_name, last_name, organization_name, domain,
  linkedin_url, ...}, ...]}``, up to 10 people. ``200`` ``{"status": "success", "matches": [...],
  "missing_records": n, ...}``: ``matches[i]`` answers ``details[i]`` and is ``null`` when Apollo matched nobody
  (``status`` is ``success`` even when nobody matched). More than 10 details answers ``400`` ``RECORD_LIMIT_EXCEEDED``,
  none ``400`` ``INVALID_REQUEST``; ``422`` ``UNKNOWN_ERROR`` for bodies it cannot read. Standard (non-waterfall)
  answers carry no match confidence; waterfall answers carry ``match_confidence`` (``none`` for no match, ``low``...),
  which is honoured when present. Phones come asynchronously (webhook), so this adapter does not ask for them.
- ``GET /api/v1/organizations/enrich?domain=...``: ``200`` ``{"organization": {...}}``, one company per call.
  ``422`` ``{"error": "Required parameter 'domain' missing"}``. What an unknown domain answers is not in the
  reference; an answer without an organization (``{}``), or a ``404``, is taken as a miss.
- ``429`` ``{"message": "The maximum number of api calls allowed for api/v1/people/bulk_match is 600 times per
  hour..."}``; fixed windows per minute, hour and day, reported in ``x-rate-limit-minute`` / ``x-minute-requests-left``
  (and hourly, daily) headers, with ``retry-after`` on the 429 (honoured by ``ProviderHttp``). Free plan: 50 a minute,
  200 an hour, 600 a day (``RateLimit`` holds one window: the minute one; the hour and day windows surface as 429s
  whose long Retry-After the time budget refuses).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from leadpipe.enrichment.fields import Kind, employee_range
from leadpipe.enrichment.providers.base import (
    Answer,
    CompanyQuery,
    PersonQuery,
    ProviderError,
    ProviderInfo,
    RateLimit,
)
from leadpipe.enrichment.providers.http_provider import HttpProvider

NAME = "apollo"
DEFAULT_BASE_URL = "https://api.apollo.io"
BULK_MATCH_PATH = "/api/v1/people/bulk_match"
ORG_ENRICH_PATH = "/api/v1/organizations/enrich"
MAX_DETAILS = 10

# Reliabilities (0..1) of Apollo's fields, used by the merge:
# - first_name, last_name 0.9: taken from the matched profile; they rarely change and are rarely wrong once the
#   person is matched on their email.
# - linkedin 0.85: the profile URL Apollo built the record from; wrong only when the match itself is wrong.
# - title 0.8: the current position on the profile; lags job changes by weeks to months.
# - seniority 0.75, department 0.7: Apollo's own classification of the title (department more often ambiguous:
#   people sit in several, and "c_suite" says nothing about the function).
# - country 0.8, city 0.7: from the profile's location; the city is stale or a metro area more often.
# - email_status 0.7: Apollo verifies its own emails periodically; a dedicated verifier (Hunter) does better. Given
#   only when the email Apollo holds is the one asked about.
# - company_name 0.9, company_linkedin 0.85: the organization record's own name and page.
# - country 0.85, city 0.75 (company): the headquarters address; the city is sometimes a branch office.
# - founded_year 0.8: self-declared on the company's pages; sometimes missing or off by a year.
# - industry 0.75: Apollo's LinkedIn-style taxonomy; right for the company, but other providers label differently.
# - employee_range 0.7: ``estimated_num_employees`` is counted from profiles and lags growth.
# - description 0.7: the company's own summary (first two sentences kept), accurate but promotional.
PERSON_RELIABILITY: dict[str, float] = {
    "first_name": 0.9,
    "last_name": 0.9,
    "title": 0.8,
    "seniority": 0.75,
    "department": 0.7,
    "linkedin": 0.85,
    "city": 0.7,
    "country": 0.8,
    "email_status": 0.7,
}
COMPANY_RELIABILITY: dict[str, float] = {
    "company_name": 0.9,
    "industry": 0.75,
    "employee_range": 0.7,
    "country": 0.85,
    "city": 0.75,
    "founded_year": 0.8,
    "company_linkedin": 0.85,
    "description": 0.7,
}

# Apollo's seniorities (the People API Search ``person_seniorities`` values) -> fields.SENIORITIES. A partner holds a
# share of the firm, like an owner.
SENIORITY: dict[str, str] = {
    "owner": "owner",
    "founder": "owner",
    "partner": "owner",
    "c_suite": "c_suite",
    "vp": "vp",
    "head": "head",
    "director": "director",
    "manager": "manager",
    "senior": "senior",
    "entry": "entry",
    "intern": "intern",
}

# Apollo's departments (``master_*`` slugs and the few unprefixed ones) -> fields.DEPARTMENTS.
DEPARTMENT: dict[str, str] = {
    "master_sales": "sales",
    "master_marketing": "marketing",
    "master_engineering_technical": "engineering",
    "master_information_technology": "it",
    "master_finance": "finance",
    "master_human_resources": "hr",
    "master_legal": "legal",
    "master_operations": "operations",
    "master_support": "customer_success",
    "product_management": "product",
    "master_product_management": "product",
    "design": "design",
    "master_design": "design",
    "master_data_science": "data",
    "consulting": "other",
    "master_consulting": "other",
    "education": "other",
    "master_education": "other",
    "medical_health": "other",
    "master_medical_health": "other",
    "master_media_communications": "marketing",
}
EXECUTIVE_DEPARTMENT = "c_suite"  # used only when no functional department is given (a CTO is engineering)

# Subdepartments that name a department of ours more precisely than their Apollo department does.
SUBDEPARTMENT: dict[str, str] = {
    "sales_operations": "revenue_operations",
    "revenue_operations": "revenue_operations",
    "marketing_operations": "revenue_operations",
    "customer_success": "customer_success",
    "customer_service_support": "customer_success",
    "account_management": "customer_success",
    "data_science": "data",
    "business_intelligence": "data",
    "analytics": "data",
}

# Apollo's email_status -> fields.EMAIL_STATUSES. "unavailable" means Apollo has no email: no status is given.
EMAIL_STATUS: dict[str, str] = {
    "verified": "valid",
    "valid": "valid",
    "unverified": "unknown",
    "likely to engage": "risky",
    "likely_to_engage": "risky",
    "extrapolated": "risky",
    "guessed": "risky",
    "catch_all": "accept_all",
    "accept_all": "accept_all",
    "bounced": "invalid",
    "invalid": "invalid",
}

# Waterfall answers' match_confidence -> the answer's confidence ("none" is a miss).
MATCH_CONFIDENCE: dict[str, float] = {"high": 1.0, "medium": 0.8, "low": 0.5}

_LINKEDIN = re.compile(
    r"^(?:https?://)?(?:[a-z]{2,3}\.|www\.)?linkedin\.com/(?P<kind>in|company)/(?P<slug>[^/?#\s]+)",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")


def linkedin_url(value: Any, kind: str) -> str | None:
    """A LinkedIn profile (``kind`` "in") or company page ("company") URL in the form the vocabulary uses."""
    if not isinstance(value, str):
        return None
    match = _LINKEDIN.match(value.strip())
    if not match or match.group("kind").lower() != kind:
        return None
    return f"https://www.linkedin.com/{kind}/{match.group('slug')}"


def seniority_of(value: Any) -> str | None:
    return SENIORITY.get(value.strip().lower()) if isinstance(value, str) else None


def department_of(departments: Any, subdepartments: Any = None) -> str | None:
    """Apollo's departments (and subdepartments) -> one of fields.DEPARTMENTS; a function wins over "c_suite"."""
    for sub in _strings(subdepartments):
        if sub in SUBDEPARTMENT:
            return SUBDEPARTMENT[sub]
    names = _strings(departments)
    mapped = [DEPARTMENT[name] for name in names if name in DEPARTMENT]
    functional = [d for d in mapped if d != "other"]
    if functional:
        return functional[0]
    if EXECUTIVE_DEPARTMENT in names:
        return "executive"
    return mapped[0] if mapped else None


def email_status_of(value: Any) -> str | None:
    return EMAIL_STATUS.get(value.strip().lower()) if isinstance(value, str) else None


def description_of(text: Any) -> str | None:
    """The first two sentences of the first paragraph."""
    if not isinstance(text, str):
        return None
    paragraph = next((line.strip() for line in text.strip().splitlines() if line.strip()), "")
    sentences = _SENTENCE_END.split(paragraph)
    return " ".join(sentences[:2]).strip() or None


def founded_year_of(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        year = int(value)
    except (TypeError, ValueError):
        return None
    return year if 1000 <= year <= 2999 else None


def clean_domain(domain: str) -> str:
    """What Apollo asks for: no scheme, no ``www.``, no path."""
    text = domain.strip().lower()
    text = re.sub(r"^[a-z]+://", "", text)
    text = text.split("/", 1)[0].split("@")[-1]
    return text.removeprefix("www.")


def _strings(values: Any) -> list[str]:
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list):
        return []
    return [v.strip().lower() for v in values if isinstance(v, str) and v.strip()]


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return " ".join(value.split())
    return None


def _bad_response(message: str) -> ProviderError:
    return ProviderError(NAME, "bad_response", message)


class ApolloProvider(HttpProvider):
    """Apollo people (up to 10 per call, one HTTP call per ``people()``) and companies.

    ``companies()`` makes one HTTP call per query, in order: ``batch_size`` (10) is the people endpoint's limit, and
    the waterfall gives ``companies()`` as many queries, which is up to 10 calls, each taking a rate-limit token.
    (Apollo also documents ``POST /api/v1/organizations/bulk_enrich``, 10 domains a call, but its rate limit is a
    tenth of the single endpoint's, so it saves round trips, not quota; this adapter uses the single endpoint.)
    """

    info = ProviderInfo(
        name=NAME,
        person_fields=PERSON_RELIABILITY,
        company_fields=COMPANY_RELIABILITY,
        batch_size=MAX_DETAILS,
        rate_limit=RateLimit(50, 60.0),  # free plan: 50 calls a minute (also 200 an hour, 600 a day)
        key_env="APOLLO_API_KEY",
    )

    default_base_url = DEFAULT_BASE_URL

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"x-api-key": api_key, "accept": "application/json", "cache-control": "no-cache"}

    # ------------------------------------------------------------------------------------------------------ people

    def people(self, queries: Sequence[PersonQuery]) -> list[Answer]:
        if not queries:
            return []
        if len(queries) > MAX_DETAILS:
            raise ValueError(f"Apollo matches at most {MAX_DETAILS} people per call, got {len(queries)}")
        response = self.http.request("POST", BULK_MATCH_PATH, json={"details": [_detail(q) for q in queries]})
        data = self.http.json(response)
        matches = data.get("matches") if isinstance(data, dict) else None
        if not isinstance(matches, list):
            raise _bad_response(f"bulk_match answered without a matches list: {str(data)[:200]!r}")
        if len(matches) != len(queries):
            raise _bad_response(f"bulk_match answered {len(matches)} matches for {len(queries)} people")
        return [person_answer(query, match) for query, match in zip(queries, matches, strict=True)]

    # --------------------------------------------------------------------------------------------------- companies

    def companies(self, queries: Sequence[CompanyQuery]) -> list[Answer]:
        return [self._company(query) for query in queries]

    def _company(self, query: CompanyQuery) -> Answer:
        # Only the domain: it is what the answer is keyed by, and a name could match another company.
        response = self.http.request(
            "GET", ORG_ENRICH_PATH, params={"domain": clean_domain(query.domain)}, ok_statuses=frozenset({404})
        )
        if response.status_code == 404:
            return Answer.miss(Kind.COMPANY, query.domain)
        data = self.http.json(response)
        if not isinstance(data, dict):
            raise _bad_response(f"organizations/enrich answered {str(data)[:200]!r}")
        organization = data.get("organization")
        if not organization:
            return Answer.miss(Kind.COMPANY, query.domain)
        if not isinstance(organization, dict):
            raise _bad_response(f"organizations/enrich answered an organization of type {type(organization).__name__}")
        fields = company_fields(organization)
        if not fields:
            return Answer.miss(Kind.COMPANY, query.domain)
        return Answer(kind=Kind.COMPANY, key=query.domain, found=True, fields=fields)


def _detail(query: PersonQuery) -> dict[str, str]:
    """One ``details[]`` entry: what is known about the person."""
    detail = {
        "email": query.email,
        "first_name": query.first_name,
        "last_name": query.last_name,
        "organization_name": query.company,
        "domain": clean_domain(query.domain) if query.domain else None,
        "linkedin_url": query.linkedin,
    }
    return {name: value.strip() for name, value in detail.items() if value and value.strip()}


def person_answer(query: PersonQuery, match: Any) -> Answer:
    """One ``matches[i]`` -> the answer about ``query.email`` (``null`` is a miss)."""
    if match is None:
        return Answer.miss(Kind.PERSON, query.email)
    if not isinstance(match, dict):
        raise _bad_response(f"bulk_match answered a match of type {type(match).__name__}")
    confidence = 1.0
    raw_confidence = match.get("match_confidence")
    if isinstance(raw_confidence, str):
        level = raw_confidence.strip().lower()
        if level == "none":
            return Answer.miss(Kind.PERSON, query.email)
        confidence = MATCH_CONFIDENCE.get(level, confidence)
    elif isinstance(raw_confidence, int | float) and not isinstance(raw_confidence, bool):
        confidence = max(0.0, min(1.0, float(raw_confidence)))
    fields = person_fields(match, query.email)
    if not fields:
        return Answer.miss(Kind.PERSON, query.email)
    return Answer(kind=Kind.PERSON, key=query.email, found=True, fields=fields, confidence=confidence)


def person_fields(match: Mapping[str, Any], email: str) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "first_name": _text(match.get("first_name")),
        "last_name": _text(match.get("last_name")),
        "title": _text(match.get("title")),
        "seniority": seniority_of(match.get("seniority")),
        "department": department_of(match.get("departments"), match.get("subdepartments")),
        "linkedin": linkedin_url(match.get("linkedin_url"), "in"),
        "city": _text(match.get("city")),
        "country": _text(match.get("country")),
    }
    # The status is about the email Apollo holds: say it only when that is the email asked about.
    held = match.get("email")
    if isinstance(held, str) and held.strip().casefold() == email.strip().casefold():
        fields["email_status"] = email_status_of(match.get("email_status"))
    return {name: value for name, value in fields.items() if value is not None}


def company_fields(organization: Mapping[str, Any]) -> dict[str, Any]:
    industry = _text(organization.get("industry"))
    if industry is None:
        industries = _strings(organization.get("industries"))
        industry = industries[0] if industries else None
    count = organization.get("estimated_num_employees")
    fields: dict[str, Any] = {
        "company_name": _text(organization.get("name")),
        "industry": industry.lower() if industry else None,
        "employee_range": employee_range(count) if isinstance(count, int) and not isinstance(count, bool) else None,
        "country": _text(organization.get("country")),
        "city": _text(organization.get("city")),
        "founded_year": founded_year_of(organization.get("founded_year")),
        "company_linkedin": linkedin_url(organization.get("linkedin_url"), "company"),
        "description": description_of(organization.get("short_description"))
        or description_of(organization.get("seo_description")),
    }
    return {name: value for name, value in fields.items() if value is not None}
