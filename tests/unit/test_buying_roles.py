"""Buying roles of deal contacts (deals/roles.py): the rules, the confidence, and what counts as verified."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from leadpipe.deals.roles import (
    BUYING_ROLES,
    DERIVED_FACTOR,
    STRENGTH,
    TITLE_CLARITY,
    UNKNOWN_CONFIDENCE,
    RoleGuess,
    buying_role,
    is_verified,
    role_of_contact,
)
from leadpipe.enrichment.fields import DEPARTMENTS, EMPLOYEE_RANGES, SENIORITIES, department_of, seniority_of
from leadpipe.models import Conflict, Contact, FieldValue

T = datetime(2026, 11, 24, tzinfo=UTC)

TITLES = [
    ("CEO", "decision_maker"),
    ("Founder & CEO", "decision_maker"),
    ("VP Sales", "decision_maker"),
    ("Head of RevOps", "champion"),
    ("Sales Operations Manager", "champion"),
    ("Director of Marketing", "champion"),
    ("Managing Director", "decision_maker"),
    ("Customer Success Manager", "influencer"),
    ("Engineering Manager", "influencer"),
    ("Senior Data Analyst", "influencer"),
    ("Account Executive", "user"),
    ("SDR", "user"),
    ("Software Engineer", "other"),
    ("Intern", "other"),
    ("Sales Intern", "other"),
    ("", "other"),
    (None, "other"),
]


def fv(value: object, provider: str, confidence: float = 0.9, agreed_by: tuple[str, ...] = ()) -> FieldValue:
    return FieldValue(value=value, provider=provider, confidence=confidence, fetched_at=T, agreed_by=list(agreed_by))


# ------------------------------------------------------------------------------------------------ the rules


@pytest.mark.parametrize(("title", "role"), TITLES)
def test_role_from_the_title_alone(title: str | None, role: str) -> None:
    guess = buying_role(title, None, None)
    assert guess.role == role
    assert 0.0 < guess.confidence <= 1.0
    assert guess.reasons


@pytest.mark.parametrize(("title", "role"), TITLES)
def test_enriched_values_that_agree_with_the_title_give_the_same_role(title: str | None, role: str) -> None:
    guess = buying_role(
        title,
        seniority_of(title),
        department_of(title),
        seniority_confidence=0.9,
        department_confidence=0.9,
        seniority_verified=True,
        department_verified=True,
    )
    assert guess.role == role


def test_enriched_values_decide_when_there_is_no_title() -> None:
    assert buying_role(None, "vp", "engineering").role == "decision_maker"
    assert buying_role(None, "manager", "sales").role == "champion"
    assert buying_role(None, "entry", "marketing").role == "user"
    assert buying_role(None, "entry", "finance").role == "other"
    assert buying_role(None, "director", None).role == "influencer"  # department unknown: no champion


def test_a_director_decides_at_a_small_company_only() -> None:
    assert buying_role("Director of Sales", None, None, company_size="11-50").role == "decision_maker"
    assert buying_role("Head of Sales", None, None, company_size="1 - 10").role == "decision_maker"  # normalised
    assert buying_role("Director of Sales", None, None, company_size="201-500").role == "champion"
    assert buying_role("Director of Sales", None, None).role == "champion"
    # a manager does not, nor a director outside the buying departments
    assert buying_role("Sales Manager", None, None, company_size="1-10").role == "champion"
    assert buying_role("Director of Engineering", None, None, company_size="1-10").role == "influencer"


def test_a_product_owner_is_not_an_owner() -> None:
    assert seniority_of("Product Owner") == "owner"  # the keyword rule alone would say so
    assert buying_role("Product Owner", None, None).role == "influencer"
    assert buying_role("Product Owner", "owner", "product", seniority_confidence=0.7).role == "influencer"
    assert buying_role("Owner", None, None).role == "decision_maker"


def test_values_outside_the_vocabulary_are_ignored() -> None:
    guess = buying_role(None, "partner", "sales")
    assert guess.role == "other"
    assert guess.confidence == UNKNOWN_CONFIDENCE
    assert any("partner" in reason for reason in guess.reasons)
    assert buying_role("VP Sales", "grand poobah", None).role == "decision_maker"  # the title still counts


def test_every_combination_gives_a_role_and_a_confidence_in_range() -> None:
    for seniority in (*SENIORITIES, None):
        for department in (*DEPARTMENTS, None):
            for size in (*EMPLOYEE_RANGES, None):
                for verified in (False, True):
                    guess = buying_role(
                        None,
                        seniority,
                        department,
                        seniority_confidence=0.8,
                        department_confidence=0.8,
                        seniority_verified=verified,
                        company_size=size,
                    )
                    assert guess.role in BUYING_ROLES
                    assert 0.0 <= guess.confidence <= 1.0


def test_the_same_input_gives_the_same_guess() -> None:
    first = buying_role("Head of RevOps", "head", "revenue_operations", seniority_confidence=0.7)
    second = buying_role("Head of RevOps", "head", "revenue_operations", seniority_confidence=0.7)
    assert first == second


# ------------------------------------------------------------------------------------------------ confidence


def test_unknown_is_other_with_the_lowest_confidence() -> None:
    unknown = buying_role(None, None, None)
    assert unknown.role == "other"
    assert unknown.confidence == UNKNOWN_CONFIDENCE
    blank = buying_role("   ", None, "sales", department_confidence=1.0)
    assert blank == RoleGuess("other", UNKNOWN_CONFIDENCE, ["no title and no seniority"])
    for title, _ in TITLES:
        if title:
            assert buying_role(title, None, None).confidence > unknown.confidence


@pytest.mark.parametrize(
    ("title", "seniority", "department"),
    [
        ("CEO", "c_suite", "executive"),
        ("VP Sales", "vp", "sales"),
        ("Head of RevOps", "head", "revenue_operations"),
        ("Account Executive", "entry", "sales"),
    ],
)
def test_a_provider_confirmed_value_counts_more_than_a_derived_one(title: str, seniority: str, department: str) -> None:
    def guess(verified: bool) -> float:
        return buying_role(
            title,
            seniority,
            department,
            seniority_confidence=0.7,
            department_confidence=0.7,
            seniority_verified=verified,
            department_verified=verified,
        ).confidence

    confirmed, derived, title_only = guess(True), guess(False), buying_role(title, None, None).confidence
    assert confirmed > derived >= title_only
    assert buying_role(title, None, None).role == buying_role(title, seniority, department).role


def test_the_documented_evidence_values() -> None:
    # C-level rests on the seniority alone: strength x evidence.
    assert buying_role("CEO", None, None).confidence == pytest.approx(STRENGTH["c_level"] * TITLE_CLARITY, abs=1e-3)
    confirmed = buying_role("CEO", "c_suite", None, seniority_confidence=0.7, seniority_verified=True)
    assert confirmed.confidence == pytest.approx(STRENGTH["c_level"] * (1 - 0.3 * (1 - TITLE_CLARITY)), abs=1e-3)
    # an unconfirmed value agreeing with the title is not independent evidence: the larger of the two
    derived = buying_role("CEO", "c_suite", None, seniority_confidence=0.9)
    assert derived.confidence == pytest.approx(STRENGTH["c_level"] * DERIVED_FACTOR * 0.9, abs=1e-3)


def test_confidence_grows_with_the_values_confidence() -> None:
    for verified in (False, True):
        previous = -1.0
        for confidence in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
            current = buying_role(
                "Head of Sales",
                "head",
                "sales",
                seniority_confidence=confidence,
                department_confidence=confidence,
                seniority_verified=verified,
                department_verified=verified,
            ).confidence
            assert current >= previous
            previous = current


def test_a_title_that_disagrees_lowers_the_confidence() -> None:
    agree = buying_role("VP Sales", "vp", "sales", seniority_confidence=0.9, seniority_verified=True)
    disagree = buying_role("Sales Director", "vp", "sales", seniority_confidence=0.9, seniority_verified=True)
    assert agree.role == disagree.role == "decision_maker"
    assert disagree.confidence < agree.confidence
    assert any("title suggests director" in reason for reason in disagree.reasons)


def test_a_champion_is_as_sure_as_its_weaker_input() -> None:
    sure = buying_role(
        None, "head", "sales", seniority_confidence=0.9, department_confidence=0.9, department_verified=True
    )
    unsure_department = buying_role(None, "head", "sales", seniority_confidence=0.9, department_confidence=0.3)
    assert sure.role == unsure_department.role == "champion"
    assert unsure_department.confidence == pytest.approx(STRENGTH["buying_leader"] * DERIVED_FACTOR * 0.3, abs=1e-3)
    assert unsure_department.confidence < sure.confidence


# ------------------------------------------------------------------------------------------------ verified


def test_is_verified() -> None:
    assert not is_verified(None)
    assert not is_verified(fv("vp", "sample-web"))  # derived from the title
    assert not is_verified(fv("vp", "import"))
    assert not is_verified(fv("vp", "derived"))
    assert not is_verified(fv("vp", "hubspot"))
    assert is_verified(fv("vp", "apollo"))
    assert is_verified(fv("sales", "dropcontact"))
    assert is_verified(fv("vp", "sample-web", agreed_by=("apollo",)))  # a provider agreed
    assert not is_verified(fv("vp", "sample-web", agreed_by=("import",)))
    assert not is_verified(fv(None, "apollo"))
    assert not is_verified(fv("", "apollo"))
    # a provider whose answer lost does not verify the winner
    lost = fv("vp", "sample-web")
    lost.conflicts.append(Conflict(value="director", provider="apollo"))
    assert not is_verified(lost)


def test_role_of_contact_reads_the_enriched_fields() -> None:
    contact = Contact(
        workspace="default",
        email="ada@acme.com",
        email_domain="acme.com",
        title="Head of Sales",
        enrichment={
            "seniority": fv("head", "apollo", 0.8),
            "department": fv("sales", "sample-web", 0.6),
            "employee_range": fv("11-50", "sample", 0.9),
        },
    )
    guess = role_of_contact(contact)
    assert guess == buying_role(
        "Head of Sales",
        "head",
        "sales",
        seniority_confidence=0.8,
        department_confidence=0.6,
        seniority_verified=True,
        department_verified=False,
        company_size="11-50",
    )
    assert guess.role == "decision_maker"  # a head of sales at a company of 11-50
    assert role_of_contact(contact, company_size="1001-5000").role == "champion"
    assert role_of_contact(Contact(workspace="default", email="x@y.com", email_domain="y.com")).role == "other"
