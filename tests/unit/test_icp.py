"""The ideal-customer profile (deals/icp.py) on a synthetic deal history whose right answer is known."""

from __future__ import annotations

import json
import math
import random
from typing import Literal

import pytest

from leadpipe.deals.icp import DIMENSIONS, NO_DEALS, DealRecord, IcpProfile
from leadpipe.dynamo import from_item, to_item

GOOD = ("software", "51-200", "United States")
BAD = ("retail", "1-10")
OTHER_INDUSTRIES = ("manufacturing", "finance", "healthcare", "education")
OTHER_SIZES = ("11-50", "201-500", "501-1000", "1001-5000")
COUNTRIES = ("United States", "United Kingdom", "Germany", "France")


def synthetic_deals(seed: int = 20261124, n: int = 200) -> list[DealRecord]:
    """Three kinds of account: software / 51-200 / US wins 80% (with a decision maker and a champion on the deal),
    retail / 1-10 wins 10% (a user or an influencer only), every other mix 40%."""
    rng = random.Random(seed)
    deals: list[DealRecord] = []
    for i in range(n):
        draw = rng.random()
        if draw < 0.3:
            industry, size, country = GOOD
            roles, p_win = ["decision_maker", "champion"], 0.8
        elif draw < 0.6:
            industry, size, country = *BAD, rng.choice(COUNTRIES)
            roles, p_win = [rng.choice(["user", "influencer"])], 0.1
        else:
            industry, size = rng.choice(OTHER_INDUSTRIES), rng.choice(OTHER_SIZES)
            country = rng.choice(COUNTRIES)
            roles, p_win = rng.sample(["decision_maker", "champion", "influencer", "user"], 2), 0.4
        outcome: Literal["won", "lost"] = "won" if rng.random() < p_win else "lost"
        deals.append(
            DealRecord(f"deal-{i:03d}", outcome, rng.choice([None, 12_000.0]), industry, size, country, roles, ["CEO"])
        )
    return deals


# Two deals in an industry seen nowhere else, both won: a 100% win rate on too little evidence.
RARE = [DealRecord(f"rare-{i}", "won", None, "aerospace", "201-500", "Germany", ["user"], []) for i in range(2)]


@pytest.fixture(scope="module")
def profile() -> IcpProfile:
    return IcpProfile.compute([*synthetic_deals(), *RARE])


# ------------------------------------------------------------------------------------------------ learning


def test_counts_and_the_overall_win_rate(profile: IcpProfile) -> None:
    deals = [*synthetic_deals(), *RARE]
    won = sum(d.outcome == "won" for d in deals)
    assert (profile.deals, profile.won, profile.lost) == (202, won, 202 - won)
    assert profile.win_rate == pytest.approx((won + 1) / (202 + 2))
    software = profile.stats("industry", "software")
    assert software is not None
    assert software.support == software.won + software.lost == sum(d.industry == "software" for d in deals)


def test_the_won_profile_comes_out_on_top(profile: IcpProfile) -> None:
    top_industry = profile.top("industry", 1)[0]
    assert top_industry.value == "software" and top_industry.lift > 1.5
    assert profile.top("company_size", 1)[0].value == "51-200"
    assert profile.top("country", 1)[0].value == "United States"
    assert {s.value for s in profile.top("role", 2)} == {"decision_maker", "champion"}  # both on every good deal
    assert all(s.lift > 1.2 for s in profile.top("role", 2))
    assert all(s.lift < 0.8 for s in profile.top("role", 4)[2:])  # users and influencers
    retail, tiny = profile.stats("industry", "retail"), profile.stats("company_size", "1-10")
    assert retail is not None and tiny is not None
    assert retail.lift < 0.5 and tiny.lift < 0.5
    assert profile.top("industry", 10)[-1].value == "retail"
    for dimension in DIMENSIONS:
        ranked = profile.top(dimension, 100)
        keys = [(-s.lift, -s.support, s.value) for s in ranked]
        assert keys == sorted(keys)
    assert len(profile.top("industry", 2)) == 2


def test_low_support_values_are_kept_flagged_and_shrunk(profile: IcpProfile) -> None:
    rare = profile.stats("industry", "aerospace")
    assert rare is not None
    assert (rare.won, rare.lost, rare.support, rare.low_support) == (2, 0, 2, True)
    p0 = profile.win_rate
    smoothed = (2 + 1.0 * p0) / (2 + 1.0)
    assert rare.win_rate == pytest.approx(smoothed)
    unshrunk = smoothed / p0
    assert 1.0 < rare.lift < unshrunk < 2 / 2 / p0  # shrunk toward 1, below the smoothed and the raw lift
    assert math.log(rare.lift) == pytest.approx(2 / 3 * math.log(unshrunk))
    software = profile.stats("industry", "software")
    assert software is not None and not software.low_support
    assert software.lift == pytest.approx(software.win_rate / p0)  # enough support: no shrinking
    assert "low support" in profile.fit("aerospace").explanation


def test_a_hand_computed_profile() -> None:
    deals = [
        DealRecord("1", "won", None, "a", None, None, ["champion", "champion"], []),
        DealRecord("2", "won", None, "a", None, None, [], []),
        DealRecord("3", "won", None, "b", None, None, [], []),
        DealRecord("4", "lost", None, "b", None, None, ["other"], []),
    ]
    profile = IcpProfile.compute(deals, min_support=2, prior=2.0)
    p0 = (3 + 1) / (4 + 2)
    a, b = profile.stats("industry", "a"), profile.stats("industry", "b")
    champion = profile.stats("role", "champion")
    assert a is not None and b is not None and champion is not None
    assert a.win_rate == pytest.approx((2 + 2 * p0) / (2 + 2))
    assert a.lift == pytest.approx(a.win_rate / p0)
    assert b.lift == pytest.approx(((1 + 2 * p0) / 4) / p0)
    # a role counts once per deal; "other" is not a buying role
    assert (champion.won, champion.lost, champion.low_support) == (1, 0, True)
    assert champion.lift == pytest.approx(math.exp(0.5 * math.log(((1 + 2 * p0) / 3) / p0)))
    assert profile.stats("role", "other") is None
    assert profile.values["company_size"] == {}


def test_values_are_matched_case_and_space_insensitively() -> None:
    deals = [
        DealRecord("1", "won", None, "Software", "51 - 200", "united states", [], []),
        DealRecord("2", "won", None, "software ", "51-200", "United States", [], []),
        DealRecord("3", "lost", None, "SOFTWARE", "51_200", "United  States", [], []),
    ]
    profile = IcpProfile.compute(deals)
    assert [s.value for s in profile.top("industry")] == ["software"]
    assert [s.value for s in profile.top("company_size")] == ["51-200"]
    assert [(s.value, s.support) for s in profile.top("country")] == [("United States", 3)]
    assert profile.fit("Software", "51 - 200") == profile.fit("software", "51-200")


def test_the_order_of_the_deals_does_not_matter() -> None:
    deals = [*synthetic_deals(), *RARE]
    shuffled = list(deals)
    random.Random(7).shuffle(shuffled)
    assert IcpProfile.compute(shuffled).to_dict() == IcpProfile.compute(deals).to_dict()


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="min_support"):
        IcpProfile.compute([], min_support=0)
    with pytest.raises(ValueError, match="prior"):
        IcpProfile.compute([], prior=0.0)
    with pytest.raises(ValueError, match="outcome"):
        IcpProfile.compute([DealRecord("1", "open", None, None, None, None, [], [])])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dimension"):
        IcpProfile.compute([]).top("title")


# ------------------------------------------------------------------------------------------------ fit


def test_the_won_profile_fits_and_the_lost_one_does_not(profile: IcpProfile) -> None:
    good = profile.fit("software", "51-200", "United States", "decision_maker")
    bad = profile.fit("retail", "1-10", "France", "user")
    assert good.score > 0.75
    assert bad.score < 0.3
    assert good.explanation.startswith("industry software (lift ")
    assert "size 51-200 (lift" in good.explanation and "role decision_maker (lift" in good.explanation
    assert ";" not in good.explanation
    assert bad.explanation.startswith("industry retail (lift 0.")


def test_an_unknown_contact_is_neutral(profile: IcpProfile) -> None:
    unknown = profile.fit(None, None, None, None)
    assert unknown.score == pytest.approx(0.5, abs=0.05)
    assert unknown.score == 0.5
    assert unknown.contributions == dict.fromkeys(DIMENSIONS, 0.0)
    assert unknown.explanation == "industry unknown, size unknown, country unknown, role unknown"
    unseen = profile.fit("mining", "", "Atlantis", "other")
    assert unseen.score == 0.5
    assert unseen.explanation == (
        "industry mining not in closed deals, size unknown, country Atlantis not in closed deals, no buying role"
    )


def test_the_score_is_the_logistic_of_the_summed_log_lifts(profile: IcpProfile) -> None:
    partial = profile.fit("software", None, "Germany", None)
    software, germany = profile.stats("industry", "software"), profile.stats("country", "Germany")
    assert software is not None and germany is not None
    assert partial.contributions["industry"] == pytest.approx(math.log(software.lift))
    assert partial.contributions["company_size"] == 0.0
    odds = software.lift * germany.lift
    assert partial.score == pytest.approx(odds / (1 + odds))
    assert partial.explanation == (
        f"industry software (lift {software.lift:.1f}), country Germany (lift {germany.lift:.1f}); "
        "size unknown, role unknown"
    )


def test_improving_one_dimension_never_lowers_the_score(profile: IcpProfile) -> None:
    options: dict[str, list[str | None]] = {
        dimension: [None, *(s.value for s in profile.top(dimension, 100))] for dimension in DIMENSIONS
    }
    rng = random.Random(3)
    for _ in range(200):
        contact = {dimension: rng.choice(values) for dimension, values in options.items()}
        for dimension in DIMENSIONS:
            scored = []
            for value in options[dimension]:
                stats = profile.stats(dimension, value)
                lift = stats.lift if stats is not None else 1.0
                scored.append((lift, profile.fit(**{**contact, dimension: value}).score))
            scored.sort(key=lambda item: item[0])
            scores = [score for _, score in scored]
            assert scores == sorted(scores), (dimension, contact)


def test_scores_stay_between_0_and_1_and_a_lift_is_at_most_1_over_p0() -> None:
    extreme = IcpProfile.compute(
        [DealRecord(str(i), "won", None, "a", "1-10", "X", ["user"], []) for i in range(500)]
        + [DealRecord(f"l{i}", "lost", None, "b", "10001+", "Y", ["champion"], []) for i in range(500)]
    )
    assert extreme.win_rate == 0.5
    assert 0.0 <= extreme.fit("b", "10001+", "Y", "champion").score < 0.01
    # every value of the won deals has a lift just under 1 / p0 = 2: the odds are at most 2^4 = 16
    best = extreme.fit("a", "1-10", "X", "user").score
    assert 0.9 < best < 16 / 17


# ------------------------------------------------------------------------------------------------ storage


def test_to_dict_and_back(profile: IcpProfile) -> None:
    data = profile.to_dict()
    assert data["dimensions"]["industry"][0]["value"] == "software"
    again = IcpProfile.from_dict(json.loads(json.dumps(data)))
    assert again == profile
    assert again.to_dict() == data
    assert again.fit(*GOOD, "champion") == profile.fit(*GOOD, "champion")


def test_the_profile_survives_dynamodb(profile: IcpProfile) -> None:
    # As stored by DealRepository.put_profile: floats become Decimals and come back as float, or int when whole.
    for candidate in (profile, IcpProfile.compute([]), IcpProfile.compute(RARE)):
        stored = from_item(to_item({"profile": candidate.to_dict()}))["profile"]
        assert IcpProfile.from_dict(stored) == candidate


def test_an_unknown_format_version_is_refused(profile: IcpProfile) -> None:
    with pytest.raises(ValueError, match="version"):
        IcpProfile.from_dict({**profile.to_dict(), "version": 99})


def test_no_deals_gives_a_neutral_profile() -> None:
    empty = IcpProfile.compute([])
    assert (empty.deals, empty.won, empty.lost, empty.win_rate) == (0, 0, 0, 0.5)
    assert all(empty.top(dimension) == [] for dimension in DIMENSIONS)
    for args in ((), GOOD, (*BAD, "France", "user")):
        fit = empty.fit(*args)
        assert fit.score == 0.5
        assert fit.explanation == NO_DEALS == "no closed deals yet"
    assert IcpProfile.from_dict(json.loads(json.dumps(empty.to_dict()))) == empty
    assert IcpProfile.from_dict({}).fit(*GOOD).explanation == NO_DEALS
