"""The closed-deal run's small pure helpers: calendar months back, HubSpot employee counts as ranges."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from leadpipe.deals.service import months_ago, size_range


@pytest.mark.parametrize(
    ("now", "months", "expected"),
    [
        (datetime(2026, 11, 24, 7, 0, tzinfo=UTC), 6, datetime(2026, 5, 24, 7, 0, tzinfo=UTC)),
        (datetime(2026, 1, 15, tzinfo=UTC), 1, datetime(2025, 12, 15, tzinfo=UTC)),  # across the year
        (datetime(2026, 3, 31, tzinfo=UTC), 1, datetime(2026, 2, 28, tzinfo=UTC)),  # clamped to February's end
        (datetime(2028, 3, 31, tzinfo=UTC), 1, datetime(2028, 2, 29, tzinfo=UTC)),  # a leap year
        (datetime(2026, 12, 1, tzinfo=UTC), 24, datetime(2024, 12, 1, tzinfo=UTC)),
    ],
)
def test_months_ago_counts_calendar_months(now: datetime, months: int, expected: datetime) -> None:
    assert months_ago(now, months) == expected


@pytest.mark.parametrize(
    ("employees", "expected"),
    [
        ("8", "1-10"),
        (11, "11-50"),
        ("120", "51-200"),
        ("201", "201-500"),
        ("1000", "501-1000"),
        ("4200", "1001-5000"),
        ("6000", "5001-10000"),
        ("99999", "10001+"),
        ("0", None),
        ("", None),
        (None, None),
        ("many", None),
    ],
)
def test_hubspot_employee_counts_become_leadpipe_ranges(employees: object, expected: str | None) -> None:
    assert size_range(employees) == expected
