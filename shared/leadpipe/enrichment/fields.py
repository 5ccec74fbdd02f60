"""The enrichment vocabulary: the fields providers answer with, normalised, and derivations from a job title.

Every provider adapter maps its API's answer onto these names and value formats, so answers from different
providers can be compared and merged field by field.
"""

from __future__ import annotations

import re
from enum import StrEnum


class Kind(StrEnum):
    PERSON = "person"  # keyed by email
    COMPANY = "company"  # keyed by company domain


# Person fields (keyed by email).
PERSON_FIELDS: dict[str, str] = {
    "first_name": "given name",
    "last_name": "family name",
    "title": "job title as the person states it",
    "seniority": "one of SENIORITIES",
    "department": "one of DEPARTMENTS",
    "linkedin": "https://www.linkedin.com/in/<slug>",
    "phone": "phone number as given (E.164 when the provider gives it)",
    "city": "city",
    "country": "country name in English",
    "email_status": "one of EMAIL_STATUSES",
}

# Company fields (keyed by domain).
COMPANY_FIELDS: dict[str, str] = {
    "company_name": "the company's usual name",
    "industry": "industry label, lower case",
    "employee_range": "one of EMPLOYEE_RANGES",
    "country": "headquarters country name in English",
    "city": "headquarters city",
    "founded_year": "four-digit year",
    "company_linkedin": "https://www.linkedin.com/company/<slug>",
    "description": "one or two sentences",
}

SENIORITIES = ("owner", "c_suite", "vp", "head", "director", "manager", "senior", "entry", "intern")
DEPARTMENTS = (
    "executive",
    "sales",
    "marketing",
    "revenue_operations",
    "customer_success",
    "engineering",
    "product",
    "data",
    "it",
    "operations",
    "finance",
    "hr",
    "legal",
    "design",
    "other",
)
EMAIL_STATUSES = ("valid", "accept_all", "webmail", "unknown", "risky", "disposable", "invalid")
EMPLOYEE_RANGES = (
    "1-10",
    "11-50",
    "51-200",
    "201-500",
    "501-1000",
    "1001-5000",
    "5001-10000",
    "10001+",
)


def employee_range(count: int | None) -> str | None:
    """A head count -> its range bucket."""
    if count is None or count < 1:
        return None
    for bucket in EMPLOYEE_RANGES[:-1]:
        if count <= int(bucket.split("-")[1]):
            return bucket
    return EMPLOYEE_RANGES[-1]


def range_of(text: str | None) -> str | None:
    """Normalise ranges written by providers ("51-200", "51 - 200", "51_200", "10,001+", "10000+") to ours."""
    if not text:
        return None
    cleaned = text.replace(",", "").replace(" ", "").replace("_", "-").strip()
    if cleaned in EMPLOYEE_RANGES:
        return cleaned
    match = re.match(r"^(\d+)(?:-(\d+)|\+)?$", cleaned)
    if not match:
        return None
    high = int(match.group(2) or match.group(1))
    if match.group(2) is None and cleaned.endswith("+"):
        high = int(match.group(1)) + 1
    return employee_range(high)


_SENIORITY_RULES: tuple[tuple[str, str], ...] = (
    (r"\b(founder|co-?founder|owner|proprietor)\b", "owner"),
    (r"\b(ceo|cto|cfo|coo|cmo|cro|cio|ciso|cpo|cdo|chief\b|president)\b", "c_suite"),
    (r"\b(evp|svp|vp|vice[- ]president)\b", "vp"),
    (r"\bhead of\b|\bhead\b", "head"),
    (r"\bdirector\b", "director"),
    (r"\b(manager|lead|team lead|supervisor)\b", "manager"),
    (r"\b(senior|sr\.?|principal|staff)\b", "senior"),
    (r"\b(intern|trainee|apprentice|working student)\b", "intern"),
)

_DEPARTMENT_RULES: tuple[tuple[str, str], ...] = (
    (
        r"\b(revops|revenue operations|sales operations|sales ops|marketing operations|gtm operations)\b",
        "revenue_operations",
    ),
    (r"\b(customer success|customer experience|account management|support|onboarding)\b", "customer_success"),
    (r"\b(sales|account executive|business development|bdr|sdr|partnerships|cro)\b", "sales"),
    (r"\b(marketing|demand gen|growth|brand|content|seo|communications|cmo|pr)\b", "marketing"),
    (r"\b(data|analytics|analyst|bi|machine learning|data science)\b", "data"),
    (r"\b(product|cpo)\b", "product"),
    (r"\b(engineer|engineering|developer|software|devops|cto|architect|technical)\b", "engineering"),
    (r"\b(it|information technology|systems|security|ciso|cio|infrastructure)\b", "it"),
    (r"\b(finance|financial|accounting|controller|cfo|treasury)\b", "finance"),
    (r"\b(hr|human resources|people|talent|recruit\w*)\b", "hr"),
    (r"\b(legal|counsel|compliance)\b", "legal"),
    (r"\b(design|designer|ux|ui)\b", "design"),
    (r"\b(operations|logistics|supply chain|procurement|coo|quality|plant|fleet)\b", "operations"),
    (r"\b(ceo|founder|owner|president|managing director|general manager)\b", "executive"),
)


def seniority_of(title: str | None) -> str | None:
    if not title:
        return None
    lowered = title.lower()
    for pattern, level in _SENIORITY_RULES:
        if re.search(pattern, lowered):
            return level
    return "entry"


def department_of(title: str | None) -> str | None:
    if not title:
        return None
    lowered = title.lower()
    for pattern, department in _DEPARTMENT_RULES:
        if re.search(pattern, lowered):
            return department
    return "other"


_LEGAL_SUFFIX = re.compile(
    r"[,.]?\s+(?:inc|llc|llp|ltd|limited|corp|corporation|co|company|plc|gmbh|ag|kg|sa|sas|sarl|sarl|srl|s\.r\.l|"
    r"spa|s\.p\.a|sl|s\.l|bv|b\.v|nv|n\.v|ab|as|a/s|aps|oy|oyj|sp\. z o\.o|pty ltd|pte\.? ltd|pvt\.? ltd|"
    r"ltda|k\.k|kk|co\.,? ltd)\.?$"
)


def comparable(field: str, value: object) -> object:
    """The form two values are compared in when merging (case, spacing, URL trailing slashes, legal suffixes)."""
    if isinstance(value, str):
        text = " ".join(value.split()).casefold().rstrip("/")
        if field == "company_name":
            text = _LEGAL_SUFFIX.sub("", text)
        return text
    return value
