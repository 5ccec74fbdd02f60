"""The local dispatcher's fault specs: validation (what POST /_local/faults answers) and how faults are spent."""

from __future__ import annotations

import pytest

from leadpipe_local.faults import DispatchFault, DispatchFaults


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ([], "a fault is a JSON object"),
        ({"function": "SyncFunction"}, "kind and function are required"),
        ({"kind": "explode", "function": "SyncFunction"}, "kind must be one of crash, duplicate, reorder"),
        ({"kind": "crash", "function": "NoSuchFunction"}, "function must be one of"),
        ({"kind": "crash", "function": "SyncFunction", "times": 0}, "times must be a positive integer"),
        ({"kind": "crash", "function": "SyncFunction", "times": "2"}, "times must be a number"),
        ({"kind": "crash", "function": "SyncFunction", "fraction": 1.5}, r"fraction must be a number in \(0, 1\]"),
        ({"kind": "crash", "function": "SyncFunction", "after": -1}, "after must be a count"),
        ({"kind": "crash", "function": "SyncFunction", "match": "("}, "match is not a regular expression"),
        ({"kind": "reorder", "function": "SyncFunction", "hold": 600}, "hold must be between 0 and 60"),
        ({"kind": "crash", "function": "SyncFunction", "when": "now"}, "unknown fields: when"),
        (
            {"kind": "crash", "function": "SyncFunction", "times": 2, "fraction": 0.5},
            "give times or fraction, not both",
        ),
    ],
)
def test_a_bad_spec_is_refused_with_the_reason(spec: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        DispatchFault.from_json(spec, {"SyncFunction", "EnrichFunction"})


def test_a_good_spec_and_its_view() -> None:
    crash = DispatchFault.from_json({"kind": "crash", "function": "SyncFunction", "after": 3, "match": "upsert"})
    assert crash.view() == {"kind": "crash", "function": "SyncFunction", "times": 1, "after": 3, "match": "upsert"}
    share = DispatchFault.from_json({"kind": "duplicate", "function": "EnrichFunction", "fraction": 0.05})
    assert share.view() == {"kind": "duplicate", "function": "EnrichFunction", "fraction": 0.05}


def test_times_are_spent_per_batch_of_the_named_function_and_kind_only() -> None:
    faults = DispatchFaults()
    faults.add(DispatchFault("crash", "SyncFunction", times=2))
    assert faults.take("duplicate", "SyncFunction") is None
    assert faults.take("crash", "EnrichFunction") is None
    for _ in range(2):
        taken = faults.take("crash", "SyncFunction")
        assert taken is not None
        faults.settle(taken)  # the process died
    assert faults.take("crash", "SyncFunction") is None
    assert faults.active() == []
    assert faults.applied == {"crash:SyncFunction": 2}


def test_a_crash_that_did_not_happen_is_given_back_and_not_shared_while_its_batch_runs() -> None:
    faults = DispatchFaults()
    crash = faults.add(DispatchFault("crash", "SyncFunction", times=1, match="notes/batch/create"))
    taken = faults.take("crash", "SyncFunction")
    assert taken is crash
    # while that batch runs, its one time is taken: a batch beside it gets no crash, and the fault is still active
    assert faults.take("crash", "SyncFunction") is None
    assert faults.active() == [crash]
    # the batch ended before its crash point (no call matched): the fault is given back, as if never taken
    faults.settle(crash, happened=False)
    assert crash.times == 1 and faults.applied == {} and faults.active() == [crash]
    assert crash.view()["times"] == 1
    # the next batch crashes: spent
    again = faults.take("crash", "SyncFunction")
    assert again is crash
    faults.settle(again, happened=True)
    assert faults.active() == [] and faults.applied == {"crash:SyncFunction": 1}


def test_a_fraction_crash_that_did_not_happen_is_not_counted() -> None:
    faults = DispatchFaults(seed=3)
    share = faults.add(DispatchFault("crash", "SyncFunction", times=None, fraction=1.0))
    taken = faults.take("crash", "SyncFunction")
    assert taken is share
    faults.settle(share, happened=False)
    assert faults.applied == {} and faults.active() == [share]


def test_a_fraction_applies_to_about_that_share_of_batches() -> None:
    faults = DispatchFaults(seed=7)
    faults.add(DispatchFault("reorder", "ImportFunction", times=None, fraction=0.25))
    hits = sum(faults.take("reorder", "ImportFunction") is not None for _ in range(4000))
    assert 850 < hits < 1150  # binomial(4000, 0.25): mean 1000, sd 27
    assert len(faults.active()) == 1  # a fraction is never spent
    faults.clear()
    assert faults.take("reorder", "ImportFunction") is None
