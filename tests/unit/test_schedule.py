"""Unit tests of leadpipe_local.schedule: EventBridge rate() and cron() expressions, and their next firing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from leadpipe_local.schedule import Schedule, ScheduleError


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def fires(expression: str, after: datetime, count: int = 1) -> list[datetime]:
    schedule = Schedule(expression)
    out = []
    for _ in range(count):
        after = schedule.next_after(after)
        out.append(after)
    return out


# ------------------------------------------------------------------------------------------- rate()


@pytest.mark.parametrize(
    ("expression", "interval"),
    [
        ("rate(1 minute)", timedelta(minutes=1)),
        ("rate(5 minutes)", timedelta(minutes=5)),
        ("rate(1 hour)", timedelta(hours=1)),
        ("rate(2 hours)", timedelta(hours=2)),
        ("rate(1 day)", timedelta(days=1)),
        ("rate(7 days)", timedelta(days=7)),
        ("  rate(10 minutes)  ", timedelta(minutes=10)),
    ],
)
def test_rate_interval(expression: str, interval: timedelta) -> None:
    schedule = Schedule(expression)
    assert schedule.interval == interval
    assert schedule.expression == expression.strip()
    start = utc(2026, 1, 15, 10, 7, 30)
    assert schedule.next_after(start) == start + interval


@pytest.mark.parametrize(
    "expression",
    [
        "rate(1 minutes)",
        "rate(1 hours)",
        "rate(1 days)",
        "rate(5 minute)",
        "rate(2 hour)",
        "rate(3 day)",
        "rate(0 minutes)",
        "rate(0 minute)",
        "rate(0 days)",
    ],
)
def test_rate_singular_plural_and_zero_are_rejected(expression: str) -> None:
    with pytest.raises(ScheduleError, match=r"use 'rate\(1 minute\)' or 'rate\(N minutes\)'"):
        Schedule(expression)


@pytest.mark.parametrize(
    "expression",
    [
        "rate(-1 minutes)",
        "rate(1.5 hours)",
        "rate(2 weeks)",
        "rate(5)",
        "rate()",
        "rate(minutes)",
        "every 5 minutes",
        "",
        "at(2026-01-01T00:00:00)",
        "cron()",
        "RATE(5 minutes)",
    ],
)
def test_not_a_schedule_expression(expression: str) -> None:
    with pytest.raises(ScheduleError, match=r"is not a rate\(\) or cron\(\) expression"):
        Schedule(expression)


def test_schedule_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="rate"):
        Schedule("rate(0 minutes)")


def test_rate_next_after_converts_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    result = Schedule("rate(1 hour)").next_after(datetime(2026, 1, 1, 12, 0, tzinfo=plus_two))
    assert result == utc(2026, 1, 1, 11, 0)
    assert result.tzinfo == UTC


# ----------------------------------------------------------------------------------- cron() parsing


def test_cron_fields() -> None:
    schedule = Schedule("cron(0/15 8-17 ? JAN,MAR-APR MON-FRI 2026-2027)")
    assert schedule.interval is None
    assert schedule.minutes == {0, 15, 30, 45}
    assert schedule.hours == set(range(8, 18))
    assert schedule.doms is None
    assert schedule.months == {1, 3, 4}
    assert schedule.dows == {2, 3, 4, 5, 6}
    assert schedule.years == {2026, 2027}


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("5", {5}),
        ("5,10,55", {5, 10, 55}),
        ("10-12", {10, 11, 12}),
        ("*/20", {0, 20, 40}),
        ("5/20", {5, 25, 45}),
        ("10-30/10", {10, 20, 30}),
        ("5,10-12,30-40/5", {5, 10, 11, 12, 30, 35, 40}),
        ("0-59/30", {0, 30}),
        ("59", {59}),
    ],
)
def test_cron_minute_field(field: str, expected: set[int]) -> None:
    assert Schedule(f"cron({field} * * * ? *)").minutes == expected


def test_star_and_question_mark_mean_any() -> None:
    schedule = Schedule("cron(* * * * ? *)")
    assert (
        schedule.minutes,
        schedule.hours,
        schedule.doms,
        schedule.months,
        schedule.dows,
        schedule.years,
    ) == (
        None,
        None,
        None,
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("SUN", {1}),
        ("sat", {7}),
        ("Mon-Fri", {2, 3, 4, 5, 6}),
        ("MON,WED,FRI", {2, 4, 6}),
        ("1-7", set(range(1, 8))),
        ("WED", {4}),
        ("TUE-THU", {3, 4, 5}),
    ],
)
def test_cron_day_of_week_names_and_numbers(field: str, expected: set[int]) -> None:
    assert Schedule(f"cron(0 9 ? * {field} *)").dows == expected


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("JAN", {1}),
        ("dec", {12}),
        ("JUL", {7}),
        ("APR,JUL", {4, 7}),
        ("JUN-AUG", {6, 7, 8}),
        ("1-12/3", {1, 4, 7, 10}),
    ],
)
def test_cron_month_names_and_numbers(field: str, expected: set[int]) -> None:
    assert Schedule(f"cron(0 9 1 {field} ? *)").months == expected


@pytest.mark.parametrize("fields", ["0 9 * * *", "0 9 * * ? * *", "0 9 * *", "0"])
def test_cron_needs_six_fields(fields: str) -> None:
    with pytest.raises(ScheduleError, match="cron needs 6 fields"):
        Schedule(f"cron({fields})")


@pytest.mark.parametrize("fields", ["0 9 ? * ? *", "0 9 * * * *", "0 9 1 * MON *", "0 9 1 * * *", "0 9 * * MON *"])
def test_exactly_one_of_day_of_month_and_day_of_week_is_a_question_mark(fields: str) -> None:
    with pytest.raises(ScheduleError, match="exactly one of day-of-month and day-of-week must be '\\?'"):
        Schedule(f"cron({fields})")


@pytest.mark.parametrize(
    "fields",
    [
        "0 0 L * ? *",
        "0 0 l * ? *",
        "0 0 15W * ? *",
        "0 0 LW * ? *",
        "0 0 ? * 6L *",
        "0 0 ? * 6#3 *",
        "0 0 ? * FRI#2 *",
        "0 0 ? * L *",
    ],
)
def test_l_w_and_hash_are_unsupported_with_a_clear_error(fields: str) -> None:
    with pytest.raises(ScheduleError, match="L, W and # are not supported by the local runtime"):
        Schedule(f"cron({fields})")


@pytest.mark.parametrize(
    "fields",
    [
        "60 * * * ? *",
        "0 24 * * ? *",
        "0 0 0 * ? *",
        "0 0 32 * ? *",
        "0 0 1 0 ? *",
        "0 0 1 13 ? *",
        "0 0 ? * 0 *",
        "0 0 ? * 8 *",
        "0 0 1 * ? 1969",
        "0 0 1 * ? 2200",
        "0 0 1 * ? 2026-2300",
        "50-61 * * * ? *",
    ],
)
def test_out_of_range_values_are_rejected(fields: str) -> None:
    with pytest.raises(ScheduleError, match="is out of range"):
        Schedule(f"cron({fields})")


# -------------------------------------------------------------------------------- cron() next_after


def test_first_of_the_month_at_seven() -> None:
    assert fires("cron(0 7 1 * ? *)", utc(2026, 1, 15, 12, 0), count=3) == [
        utc(2026, 2, 1, 7, 0),
        utc(2026, 3, 1, 7, 0),
        utc(2026, 4, 1, 7, 0),
    ]


def test_every_quarter_hour() -> None:
    assert fires("cron(0/15 * * * ? *)", utc(2026, 1, 15, 10, 7, 30), count=4) == [
        utc(2026, 1, 15, 10, 15),
        utc(2026, 1, 15, 10, 30),
        utc(2026, 1, 15, 10, 45),
        utc(2026, 1, 15, 11, 0),
    ]


def test_next_after_is_strictly_after() -> None:
    assert Schedule("cron(0/15 * * * ? *)").next_after(utc(2026, 1, 15, 10, 15)) == utc(2026, 1, 15, 10, 30)
    assert Schedule("cron(0/15 * * * ? *)").next_after(utc(2026, 1, 15, 10, 14, 59)) == utc(2026, 1, 15, 10, 15)


def test_every_minute_drops_seconds_and_microseconds() -> None:
    after = datetime(2026, 1, 15, 10, 7, 30, 123456, tzinfo=UTC)
    assert Schedule("cron(* * * * ? *)").next_after(after) == utc(2026, 1, 15, 10, 8)


def test_crossing_the_new_year() -> None:
    assert Schedule("cron(0/15 * * * ? *)").next_after(utc(2026, 12, 31, 23, 50)) == utc(2027, 1, 1, 0, 0)


def test_weekdays_at_nine_from_friday_evening_is_monday() -> None:
    friday_evening = utc(2026, 1, 16, 18, 0)
    assert friday_evening.strftime("%A") == "Friday"
    result = Schedule("cron(0 9 ? * MON-FRI *)").next_after(friday_evening)
    assert result == utc(2026, 1, 19, 9, 0)
    assert result.strftime("%A") == "Monday"


def test_weekdays_at_nine_on_consecutive_days() -> None:
    assert fires("cron(0 9 ? * MON-FRI *)", utc(2026, 1, 14, 9, 0), count=4) == [
        utc(2026, 1, 15, 9, 0),  # Thursday
        utc(2026, 1, 16, 9, 0),  # Friday
        utc(2026, 1, 19, 9, 0),  # Monday
        utc(2026, 1, 20, 9, 0),  # Tuesday
    ]


def test_weekday_at_nine_later_the_same_day() -> None:
    assert Schedule("cron(0 9 ? * MON-FRI *)").next_after(utc(2026, 1, 19, 8, 59, 59)) == utc(2026, 1, 19, 9, 0)


@pytest.mark.parametrize(
    ("day_of_week", "expected"),
    [
        ("1", utc(2026, 1, 18, 12)),  # Sunday
        ("SUN", utc(2026, 1, 18, 12)),
        ("2", utc(2026, 1, 19, 12)),  # Monday
        ("4", utc(2026, 1, 21, 12)),  # Wednesday (the next one: the 14th's noon has passed)
        ("WED", utc(2026, 1, 21, 12)),
        ("5", utc(2026, 1, 15, 12)),  # Thursday
        ("6", utc(2026, 1, 16, 12)),  # Friday
        ("7", utc(2026, 1, 17, 12)),  # Saturday
        ("SAT", utc(2026, 1, 17, 12)),
    ],
)
def test_aws_day_of_week_numbering_is_one_for_sunday(day_of_week: str, expected: datetime) -> None:
    after = utc(2026, 1, 14, 13, 0)  # a Wednesday afternoon
    result = Schedule(f"cron(0 12 ? * {day_of_week} *)").next_after(after)
    assert result == expected


def test_weekend_days() -> None:
    assert fires("cron(30 6 ? * 1,7 *)", utc(2026, 1, 14), count=3) == [
        utc(2026, 1, 17, 6, 30),  # Saturday
        utc(2026, 1, 18, 6, 30),  # Sunday
        utc(2026, 1, 24, 6, 30),  # Saturday
    ]


def test_named_month_containing_l() -> None:
    assert Schedule("cron(0 0 1 JUL ? *)").next_after(utc(2026, 6, 20)) == utc(2026, 7, 1)


def test_day_31_skips_shorter_months() -> None:
    assert fires("cron(0 0 31 * ? *)", utc(2026, 4, 1), count=2) == [utc(2026, 5, 31), utc(2026, 7, 31)]


def test_leap_day() -> None:
    assert Schedule("cron(0 0 29 2 ? *)").next_after(utc(2027, 12, 31)) == utc(2028, 2, 29)


def test_year_field() -> None:
    assert Schedule("cron(0 0 1 1 ? 2027)").next_after(utc(2026, 12, 31, 12)) == utc(2027, 1, 1)


def test_hours_and_minutes_lists() -> None:
    assert fires("cron(0,30 8,20 * * ? *)", utc(2026, 1, 15, 8, 0), count=4) == [
        utc(2026, 1, 15, 8, 30),
        utc(2026, 1, 15, 20, 0),
        utc(2026, 1, 15, 20, 30),
        utc(2026, 1, 16, 8, 0),
    ]


def test_cron_next_after_converts_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    result = Schedule("cron(0 7 * * ? *)").next_after(datetime(2026, 3, 10, 8, 30, tzinfo=plus_two))
    assert result == utc(2026, 3, 10, 7, 0)  # 08:30+02:00 is 06:30 UTC
    assert result.tzinfo == UTC
