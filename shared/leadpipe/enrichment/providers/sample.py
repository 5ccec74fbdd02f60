"""Offline providers answering from two snapshots shipped with the package: the default waterfall of the demo and tests.

The two files behave like two independent sources, so merging has something to do:

- ``sample`` (``SampleRegistryProvider``) reads ``data/companies.csv``, a company-registry snapshot: legal name,
  industry classification, head-count band, headquarters country and city, founding year, a LinkedIn page matched by
  name. Companies only.
- ``sample-web`` (``SampleWebProvider``) reads ``data/companies_web.csv``, a web-crawl snapshot: the name as the
  company's site writes it, the crawler's own industry labels, a fresher head-count band, the LinkedIn page the site
  links to, the city on the contact page, the site's description. For people it derives seniority and department from
  the title the contact gave (``fields.seniority_of`` / ``department_of``) and checks the email by rules (below). It
  invents no personal data: a person answer holds nothing a rule cannot derive from the query itself.

The snapshots agree on most companies; on about a fifth of the ones both hold they differ on a field (an adjacent
head-count band, a related industry label, a shorter name, an operating city other than the registered one), and
each lacks some companies and fields the other has. Both files are read once per process, on first use, from the
package directory (``importlib.resources``), which is where the Lambda layer has them too (``python/leadpipe/data``).

Email status by rules (the syntax was validated at import):

1. a role account (``info@``, ``sales@``, ``contact@``...) -> ``risky``: a shared inbox, not a person;
2. a free-mail domain (``normalize.is_free_mail``) -> ``webmail``;
3. a local part following the person's name (``first.last``, ``flast``, ``f.last``, ``first``; accents folded, ``ü``
   also as ``ue``) at a company domain the crawl knows -> ``valid``;
4. anything else -> ``unknown``.
"""

from __future__ import annotations

import csv
import io
import re
import threading
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

from leadpipe.enrichment.fields import Kind, department_of, seniority_of
from leadpipe.enrichment.providers.base import (
    Answer,
    CompanyQuery,
    PersonQuery,
    Provider,
    ProviderInfo,
    RateLimit,
)
from leadpipe.normalize import FieldProblem, domain_from_website, is_free_mail, normalize_email

REGISTRY_FILE = "companies.csv"
WEB_FILE = "companies_web.csv"
LINKEDIN_COMPANY = "https://www.linkedin.com/company/"
# Answering from memory costs nothing: large batches, no real rate limit, one call at a time (threads gain nothing).
BATCH_SIZE = 100
RATE_LIMIT = RateLimit(10_000, 1.0)
# An answer found under a parent domain (``eu.acme.com`` -> ``acme.com``) is most likely the same company, not surely.
PARENT_DOMAIN_CONFIDENCE = 0.9

# Reliabilities (0..1) of the registry's fields:
# - country 0.95, founded_year 0.9, company_name 0.9: filed at incorporation and kept current by law; the name is
#   the legal one ("Kestrel Freight, Inc."), which is the company's usual name once the legal suffix is set aside.
# - city 0.8: the registered office, usually the headquarters but sometimes a lawyer's address (Wilmington, Delaware).
# - industry 0.6: a classification code chosen at registration and rarely revised; coarse and often dated.
# - employee_range 0.55: from the last annual filing, a year or more old; growing companies outgrow it.
# - company_linkedin 0.5: matched to the page by name, not confirmed by the company.
REGISTRY_RELIABILITY: dict[str, float] = {
    "company_name": 0.9,
    "industry": 0.6,
    "employee_range": 0.55,
    "country": 0.95,
    "city": 0.8,
    "founded_year": 0.9,
    "company_linkedin": 0.5,
}

# Reliabilities of the web crawl's company fields:
# - company_linkedin 0.85: the page the company's own site links to.
# - description 0.75: the site's own summary; accurate, if promotional.
# - employee_range 0.7: counted from recent pages and profiles, fresher than the registry; still an estimate.
# - company_name 0.7: the brand as the site writes it, which is sometimes shorter than the company's name.
# - city 0.65: the address on the contact page; can be a sales office.
# - industry 0.55: the crawler's own labels, inferred from the site's words; below the registry's classification.
WEB_COMPANY_RELIABILITY: dict[str, float] = {
    "company_name": 0.7,
    "industry": 0.55,
    "employee_range": 0.7,
    "city": 0.65,
    "company_linkedin": 0.85,
    "description": 0.75,
}

# Reliabilities of the web crawl's person fields, all derived from the query:
# - seniority 0.7: keyword rules on the title; the level is usually explicit ("Head of", "VP", "Director").
# - department 0.6: titles name their function less clearly ("Head of Strategy", "Managing Partner").
# - email_status 0.8, scaled per status by ``EMAIL_STATUS_CONFIDENCE``: rules see the address, not the mailbox.
WEB_PERSON_RELIABILITY: dict[str, float] = {
    "seniority": 0.7,
    "department": 0.6,
    "email_status": 0.8,
}
# How sure each rule's verdict is (multiplied into email_status's reliability): a free-mail domain is a fact, a role
# account almost one; a name pattern at a live company domain makes a deliverable mailbox likely but unverified;
# "unknown" says little. Everything but webmail stays below the waterfall's 0.7 bar, so a real verifier is still asked.
EMAIL_STATUS_CONFIDENCE: dict[str, float] = {
    "webmail": 1.0,
    "risky": 0.85,
    "valid": 0.75,
    "unknown": 0.6,
    "invalid": 1.0,
}

ROLE_ACCOUNTS = frozenset(
    {
        "accounts",
        "admin",
        "billing",
        "bonjour",
        "careers",
        "contact",
        "enquiries",
        "hello",
        "help",
        "hr",
        "info",
        "inquiries",
        "jobs",
        "kontakt",
        "mail",
        "marketing",
        "media",
        "no-reply",
        "noreply",
        "office",
        "postmaster",
        "press",
        "sales",
        "service",
        "support",
        "team",
        "ventas",
        "vertrieb",
        "webmaster",
    }
)

_TRANSLIT = str.maketrans({"ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "\u0131": "i", "ß": "ss", "þ": "th"})
_GERMAN_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue"})
_NOT_NAME = re.compile(r"[^a-z0-9 ]+")


# ------------------------------------------------------------------------------------------------------ snapshots


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One data file: normalised domain -> the row's non-empty cells (``domain`` left out)."""

    name: str
    rows: Mapping[str, Mapping[str, str]]

    def find(self, domain: str) -> tuple[Mapping[str, str], bool] | None:
        """The row for ``domain`` (a domain, host or web address, any case, ``www.`` or not, Unicode or punycode)
        and whether it matched exactly; a subdomain falls back to its parent domains. None when unknown."""
        try:
            host = domain_from_website(domain)
        except FieldProblem:
            return None
        labels = host.split(".")
        for start in range(len(labels) - 1):
            row = self.rows.get(".".join(labels[start:]))
            if row is not None:
                return row, start == 0
        return None


def _read(file: str) -> str:
    return resources.files("leadpipe").joinpath("data", file).read_text(encoding="utf-8")


def _parse(name: str, text: str) -> Snapshot:
    rows: dict[str, Mapping[str, str]] = {}
    for record in csv.DictReader(io.StringIO(text)):
        domain = domain_from_website(record["domain"])
        rows[domain] = {k: v.strip() for k, v in record.items() if k != "domain" and v and v.strip()}
    return Snapshot(name, rows)


_snapshots: dict[str, Snapshot] = {}
_lock = threading.Lock()


def snapshot(file: str) -> Snapshot:
    """The parsed data file, read on first use and kept for the life of the process."""
    found = _snapshots.get(file)
    if found is None:
        with _lock:
            found = _snapshots.get(file)
            if found is None:
                found = _snapshots[file] = _parse(file, _read(file))
    return found


def registry_snapshot() -> Snapshot:
    return snapshot(REGISTRY_FILE)


def web_snapshot() -> Snapshot:
    return snapshot(WEB_FILE)


def _linkedin(row: Mapping[str, str]) -> dict[str, str]:
    slug = row.get("linkedin_slug")
    return {"company_linkedin": LINKEDIN_COMPANY + slug} if slug else {}


def registry_fields(row: Mapping[str, str]) -> dict[str, object]:
    fields: dict[str, object] = {}
    for column, field in (
        ("name", "company_name"),
        ("industry", "industry"),
        ("employee_range", "employee_range"),
        ("country", "country"),
        ("city", "city"),
    ):
        if column in row:
            fields[field] = row[column]
    if "founded_year" in row:
        fields["founded_year"] = int(row["founded_year"])
    fields.update(_linkedin(row))
    return fields


def web_company_fields(row: Mapping[str, str]) -> dict[str, object]:
    fields: dict[str, object] = {}
    for column, field in (
        ("name", "company_name"),
        ("industry", "industry"),
        ("employee_range", "employee_range"),
        ("city", "city"),
        ("description", "description"),
    ):
        if column in row:
            fields[field] = row[column]
    fields.update(_linkedin(row))
    return fields


def _company_answers(
    queries: Sequence[CompanyQuery], data: Snapshot, fields_of: Callable[[Mapping[str, str]], dict[str, object]]
) -> list[Answer]:
    answers: list[Answer] = []
    for query in queries:
        found = data.find(query.domain)
        if found is None:
            answers.append(Answer.miss(Kind.COMPANY, query.domain))
            continue
        row, exact = found
        answers.append(
            Answer(
                kind=Kind.COMPANY,
                key=query.domain,
                found=True,
                fields=fields_of(row),
                confidence=1.0 if exact else PARENT_DOMAIN_CONFIDENCE,
            )
        )
    return answers


# ------------------------------------------------------------------------------------------------------ people


def _name_forms(name: str | None) -> set[str]:
    """ASCII spellings of a (first or last) name as a mailbox would hold it: all its words joined and each word
    alone, accents folded ("Nguyễn Thị" -> nguyenthi, nguyen, thi), German umlauts also spelled out (ü -> ue)."""
    if not name:
        return set()
    forms: set[str] = set()
    lowered = name.casefold()
    for variant in {lowered, lowered.translate(_GERMAN_UMLAUTS)}:
        decomposed = unicodedata.normalize("NFKD", variant.translate(_TRANSLIT))
        ascii_only = "".join(c for c in decomposed if not unicodedata.combining(c))
        words = _NOT_NAME.sub("", ascii_only.replace("-", " ").replace("'", "").replace("\u2019", "")).split()
        if words:
            forms.add("".join(words))
            forms.update(words)
    return forms


def name_patterns(first_name: str | None, last_name: str | None) -> set[str]:
    """Local parts that follow the person's name: first.last, flast, f.last and first."""
    firsts, lasts = _name_forms(first_name), _name_forms(last_name)
    patterns = set(firsts)
    for first in firsts:
        for last in lasts:
            patterns.update({f"{first}.{last}", f"{first[0]}{last}", f"{first[0]}.{last}"})
    return patterns


def email_status(query: PersonQuery, known_domain: Callable[[str], bool]) -> str:
    """The email's status by the rules in this module's docstring; ``known_domain`` says whether the crawl has seen
    the domain as a company's website."""
    try:
        email = normalize_email(query.email)
    except FieldProblem:
        return "invalid"
    local, _, domain = email.rpartition("@")
    local = local.split("+", 1)[0]
    if local in ROLE_ACCOUNTS:
        return "risky"
    if is_free_mail(domain):
        return "webmail"
    if local in name_patterns(query.first_name, query.last_name) and known_domain(domain):
        return "valid"
    return "unknown"


# ------------------------------------------------------------------------------------------------------ providers


class SampleRegistryProvider(Provider):
    """Companies from the registry snapshot (``data/companies.csv``)."""

    info = ProviderInfo(
        name="sample",
        company_fields=REGISTRY_RELIABILITY,
        batch_size=BATCH_SIZE,
        rate_limit=RATE_LIMIT,
        needs_key=False,
        concurrency=1,
    )

    def companies(self, queries: Sequence[CompanyQuery]) -> list[Answer]:
        return _company_answers(queries, registry_snapshot(), registry_fields)


class SampleWebProvider(Provider):
    """Companies from the web-crawl snapshot (``data/companies_web.csv``); people from their own query by rules."""

    info = ProviderInfo(
        name="sample-web",
        person_fields=WEB_PERSON_RELIABILITY,
        company_fields=WEB_COMPANY_RELIABILITY,
        batch_size=BATCH_SIZE,
        rate_limit=RATE_LIMIT,
        needs_key=False,
        concurrency=1,
    )

    def companies(self, queries: Sequence[CompanyQuery]) -> list[Answer]:
        return _company_answers(queries, web_snapshot(), web_company_fields)

    def people(self, queries: Sequence[PersonQuery]) -> list[Answer]:
        data = web_snapshot()

        def known(domain: str) -> bool:
            return data.find(domain) is not None

        answers: list[Answer] = []
        for query in queries:
            status = email_status(query, known)
            fields: dict[str, object] = {"email_status": status}
            seniority, department = seniority_of(query.title), department_of(query.title)
            if seniority:
                fields["seniority"] = seniority
            if department:
                fields["department"] = department
            answers.append(
                Answer(
                    kind=Kind.PERSON,
                    key=query.email,
                    found=True,
                    fields=fields,
                    field_confidence={"email_status": EMAIL_STATUS_CONFIDENCE[status]},
                )
            )
        return answers
