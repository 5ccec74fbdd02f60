"""The buying role a deal's contact played, from their title, seniority and department. Pure logic, no I/O.

The rules and constants are documented in docs/icp.md ("Buying roles"); keep the two in step.

A role is chosen by the first matching rule, in the order of ``buying_role``'s code; its confidence is

    confidence = rule strength x min(evidence of the inputs the rule used)

where the evidence of a seniority or department combines how clearly the title states it with the confidence of the
enriched value, and counts a provider-confirmed value (``is_verified``) as independent of the title:

    verified value, title agrees        1 - (1 - c)(1 - TITLE_CLARITY)
    unverified value, title agrees      max(DERIVED_FACTOR x c, TITLE_CLARITY)
    title silent                        c (verified) or DERIVED_FACTOR x c (unverified)
    title disagrees                     the above x DISAGREEMENT_FACTOR
    no value, the title states it       TITLE_CLARITY
    no value, title without keyword     TITLE_FALLBACK (seniority "entry", department "other")
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from leadpipe.enrichment.fields import DEPARTMENTS, SENIORITIES, department_of, range_of, seniority_of
from leadpipe.models import Contact, FieldValue

BuyingRole = Literal["decision_maker", "champion", "influencer", "user", "other"]
BUYING_ROLES: tuple[BuyingRole, ...] = ("decision_maker", "champion", "influencer", "user", "other")

# Sources whose seniority or department is not a confirmation: the contact's own imported values, the offline sample
# datasets (``sample-web`` derives seniority and department from the title with the same keyword rules as here),
# values derived by leadpipe itself, and what came back from HubSpot. Any other provider (apollo, dropcontact, pdl,
# hunter, ...) is a data provider.
DERIVED_SOURCES: frozenset[str] = frozenset(
    {"import", "sample", "sample-web", "derived", "title", "hubspot", "hubspot-deals"}
)

# The departments that buy contact enrichment (own the CRM and pipeline tooling) and those that use it day to day.
BUYING_DEPARTMENTS: frozenset[str] = frozenset({"sales", "revenue_operations", "marketing"})
USER_DEPARTMENTS: frozenset[str] = frozenset({"sales", "revenue_operations", "marketing", "customer_success"})
# Company sizes (employee ranges) where a director or head of a buying department signs for the tool themselves.
SMALL_COMPANY_SIZES: frozenset[str] = frozenset({"1-10", "11-50"})

TITLE_CLARITY = 0.6  # evidence of a seniority/department stated by a keyword of the title
TITLE_FALLBACK = 0.4  # evidence of the fallback when the title has no keyword ("entry", "other")
DERIVED_FACTOR = 0.8  # an unverified value (imported, sample data, derived) counts for 80% of its confidence
DISAGREEMENT_FACTOR = 0.7  # the title's keyword says something else
UNKNOWN_CONFIDENCE = 0.1  # neither a title nor a seniority: "other" at this confidence

# Rule strengths: how reliably the rule's inputs mean the role, when the inputs are certain.
STRENGTH: dict[str, float] = {
    "c_level": 0.95,  # owner, founder, C-level, president -> decision_maker
    "vp": 0.9,  # vice president -> decision_maker
    "executive": 0.8,  # managing director, general manager (executive department) -> decision_maker
    "small_company": 0.75,  # director/head of a buying department at a small company -> decision_maker
    "buying_leader": 0.85,  # director/head of a buying department -> champion
    "buying_manager": 0.8,  # manager of a buying department -> champion
    "other_leader": 0.7,  # director/head/manager of another department -> influencer
    "leader_unknown_department": 0.5,  # director/head/manager, department unknown -> influencer
    "senior": 0.6,  # senior individual contributor -> influencer
    "user": 0.8,  # individual contributor of a using department -> user
    "intern": 0.7,  # intern, trainee -> other
    "ic_other": 0.6,  # individual contributor of another department -> other
    "ic_unknown_department": 0.4,  # individual contributor, department unknown -> other
}

_LEADERS = frozenset({"director", "head", "manager"})
# "Product Owner" and the like are roles in a team, not owners of the company.
_NOT_AN_OWNER = re.compile(r"\b(product|process|data|system|service|business|account|content)\s+owner\b")


@dataclass(frozen=True, slots=True)
class RoleGuess:
    role: BuyingRole
    confidence: float  # 0..1
    reasons: list[str] = field(default_factory=list)


def is_data_provider(source: str) -> bool:
    """A real data provider (not the import, the sample data, HubSpot or leadpipe's own derivation)."""
    return bool(source) and source not in DERIVED_SOURCES


def is_verified(fv: FieldValue | None) -> bool:
    """A seniority or department is verified when a data provider gave that value: the winning provider is one, or
    one of the sources that agreed with it (``agreed_by``) is. A provider whose answer lost (``conflicts``) does not
    verify the winner."""
    if fv is None or fv.value in (None, ""):
        return False
    return is_data_provider(fv.provider) or any(is_data_provider(source) for source in fv.agreed_by)


@dataclass(frozen=True, slots=True)
class _Evidence:
    value: str | None
    evidence: float
    reason: str


def _evidence(
    name: str,
    given: str | None,
    confidence: float,
    verified: bool,
    from_title: str | None,
    explicit: bool,
) -> _Evidence:
    """How sure we are of a seniority or department (see the module docstring)."""
    confidence = min(max(confidence, 0.0), 1.0)
    if given is None:
        if from_title is None:
            return _Evidence(None, 0.0, f"{name} unknown")
        if explicit:
            return _Evidence(from_title, TITLE_CLARITY, f"{name} {from_title} from the title")
        return _Evidence(from_title, TITLE_FALLBACK, f"{name} {from_title} assumed (no keyword in the title)")
    base = confidence if verified else DERIVED_FACTOR * confidence
    source = "provider-confirmed" if verified else "unconfirmed"
    if explicit and from_title == given:
        # An unverified value most likely came from this very title: it is not independent evidence.
        evidence = 1 - (1 - base) * (1 - TITLE_CLARITY) if verified else max(base, TITLE_CLARITY)
        return _Evidence(given, evidence, f"{name} {given} ({source} {confidence:.2f}, the title agrees)")
    if explicit:
        return _Evidence(
            given,
            base * DISAGREEMENT_FACTOR,
            f"{name} {given} ({source} {confidence:.2f}, but the title suggests {from_title})",
        )
    return _Evidence(given, base, f"{name} {given} ({source} {confidence:.2f})")


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip().lower()
    return text or None


def buying_role(
    title: str | None,
    seniority: str | None,
    department: str | None,
    *,
    seniority_confidence: float = 1.0,
    department_confidence: float = 1.0,
    company_size: str | None = None,
    seniority_verified: bool = False,
    department_verified: bool = False,
    buying_departments: Iterable[str] = BUYING_DEPARTMENTS,
    user_departments: Iterable[str] = USER_DEPARTMENTS,
) -> RoleGuess:
    """The buying role of a deal's contact.

    ``seniority`` and ``department`` are enriched values (``fields.SENIORITIES`` / ``DEPARTMENTS``) with their
    confidence; pass ``*_verified=is_verified(field_value)`` so a provider-confirmed value counts more. A missing one
    is derived from the title. ``company_size`` is an employee range ("11-50").
    """
    buying, using = frozenset(buying_departments), frozenset(user_departments)
    title = (title or "").strip() or None
    seniority, department = _clean(seniority), _clean(department)
    ignored = [
        f"{name} {value!r} is not in the vocabulary, ignored"
        for name, value, vocabulary in (("seniority", seniority, SENIORITIES), ("department", department, DEPARTMENTS))
        if value is not None and value not in vocabulary
    ]
    if seniority not in SENIORITIES:
        seniority = None
    if department not in DEPARTMENTS:
        department = None

    title_seniority = seniority_of(title)
    if title and title_seniority == "owner" and _NOT_AN_OWNER.search(title.lower()):
        title_seniority = "senior"
    if seniority == "owner" and not seniority_verified and title and _NOT_AN_OWNER.search(title.lower()):
        seniority = "senior"
    title_department = department_of(title)
    s = _evidence(
        "seniority",
        seniority,
        seniority_confidence,
        seniority_verified,
        title_seniority,
        title_seniority not in (None, "entry"),
    )
    d = _evidence(
        "department",
        department,
        department_confidence,
        department_verified,
        title_department,
        title_department not in (None, "other"),
    )

    if s.value is None:
        return RoleGuess("other", UNKNOWN_CONFIDENCE, ["no title and no seniority", *ignored])

    level = s.value
    dept = d.value if d.value not in (None, "other") else None
    size = range_of(company_size) if company_size else None

    def guess(role: BuyingRole, rule: str, why: str, *, uses_department: bool) -> RoleGuess:
        evidence = min(s.evidence, d.evidence) if uses_department else s.evidence
        reasons = [s.reason, d.reason] if uses_department or dept else [s.reason]
        return RoleGuess(role, round(STRENGTH[rule] * evidence, 3), [*reasons, *ignored, why])

    if level in ("owner", "c_suite"):
        return guess("decision_maker", "c_level", "owners and C-level executives decide", uses_department=False)
    if level == "vp":
        return guess("decision_maker", "vp", "vice presidents decide", uses_department=False)
    if level in _LEADERS:
        if dept == "executive":
            return guess(
                "decision_maker", "executive", "general management decides (managing director)", uses_department=True
            )
        if dept in buying and level in ("director", "head") and size in SMALL_COMPANY_SIZES:
            return guess(
                "decision_maker",
                "small_company",
                f"at a company of {size} a {level} of {dept} decides",
                uses_department=True,
            )
        if dept in buying:
            rule = "buying_leader" if level in ("director", "head") else "buying_manager"
            return guess("champion", rule, f"{level} in a buying department ({dept})", uses_department=True)
        if dept is not None:
            return guess("influencer", "other_leader", f"{level} outside the buying departments", uses_department=True)
        return guess("influencer", "leader_unknown_department", f"{level}, department unknown", uses_department=False)
    if level == "senior":
        return guess("influencer", "senior", "senior individual contributor", uses_department=False)
    if level == "intern":
        return guess("other", "intern", "interns do not take part in buying", uses_department=False)
    if dept in using:
        return guess("user", "user", f"individual contributor in a using department ({dept})", uses_department=True)
    if dept is not None:
        return guess("other", "ic_other", "individual contributor outside the using departments", uses_department=True)
    return guess("other", "ic_unknown_department", "individual contributor, department unknown", uses_department=False)


def role_of_contact(contact: Contact, *, company_size: str | None = None) -> RoleGuess:
    """``buying_role`` from a contact's enriched fields (title, seniority, department, employee range), with their
    confidence and whether a data provider confirmed them."""
    fields = contact.enrichment

    def text(name: str) -> str | None:
        fv = fields.get(name)
        return str(fv.value) if fv is not None and fv.value not in (None, "") else None

    seniority, department = fields.get("seniority"), fields.get("department")
    return buying_role(
        text("title") or contact.title,
        text("seniority"),
        text("department"),
        seniority_confidence=seniority.confidence if seniority is not None else 0.0,
        department_confidence=department.confidence if department is not None else 0.0,
        seniority_verified=is_verified(seniority),
        department_verified=is_verified(department),
        company_size=company_size or text("employee_range"),
    )
