"""S3 drops: which workspace a key names, and which keys are refused."""

from __future__ import annotations

import pytest

from leadpipe.importer import drop_workspace, unsafe_key_problem


@pytest.mark.parametrize(
    ("key", "workspace"),
    [
        ("incoming/leads.csv", "default"),
        ("incoming/sub/folder/leads.csv", "default"),
        ("incoming/workspaces/acme/leads.csv", "acme"),
        ("incoming/workspaces/acme/q3/leads.csv", "acme"),
        ("incoming/workspaces/Acme Corp/leads.csv", "default"),  # not a workspace name: refused below
        ("incoming/workspaces/", "default"),
    ],
)
def test_drop_workspace(key: str, workspace: str) -> None:
    assert drop_workspace(key, "default") == workspace


@pytest.mark.parametrize(
    "key",
    [
        "incoming/../leads.csv",
        "incoming/a/../../b.csv",
        "incoming/./leads.csv",
        "incoming/workspaces/acme/../globex/leads.csv",
        "incoming/lea\x00ds.csv",
        "incoming/lea\nds.csv",
        "incoming/workspaces/Acme Corp/leads.csv",
    ],
)
def test_unsafe_keys_are_refused_with_a_reason(key: str) -> None:
    problem = unsafe_key_problem(key)
    assert problem is not None and len(problem) > 20


@pytest.mark.parametrize(
    "key",
    ["incoming/leads.csv", "incoming/..leads.csv", "incoming/my.file..csv", "incoming/workspaces/acme/x.csv"],
)
def test_ordinary_keys_pass(key: str) -> None:
    assert unsafe_key_problem(key) is None
