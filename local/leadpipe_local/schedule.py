"""EventBridge schedule expressions: ``rate(...)`` and ``cron(...)``, and when they next fire (UTC)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_MONTHS = {
    m: i
    for i, m in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], start=1)
}
_DAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], start=1)}


class ScheduleError(ValueError):
    pass


def _field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int] | None:
    """Values a cron field allows; None means "any" (``*`` or ``?``)."""
    if text in ("*", "?"):
        return None
    special = text.upper()
    for name in names or {}:
        special = special.replace(name, "")  # JUL and WED are names, not the L and W of AWS cron
    if any(c in special for c in "LW#"):
        raise ScheduleError(f"cron field {text!r}: L, W and # are not supported by the local runtime")
    values: set[int] = set()
    for item in text.split(","):
        step = 1
        part = item
        if "/" in item:
            part, step_text = item.split("/", 1)
            step = int(step_text)
        if part == "*":
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _value(a, names), _value(b, names)
        else:
            start = _value(part, names)
            end = high if step > 1 else start
        if not (low <= start <= high and low <= end <= high):
            raise ScheduleError(f"cron field {text!r} is out of range {low}-{high}")
        values.update(range(start, end + 1, step))
    return values


def _value(text: str, names: dict[str, int] | None) -> int:
    if names and text.upper() in names:
        return names[text.upper()]
    return int(text)


class Schedule:
    def __init__(self, expression: str) -> None:
        self.expression = expression.strip()
        rate = _RATE.match(self.expression)
        cron = _CRON.match(self.expression)
        self.interval: timedelta | None = None
        if rate:
            n, unit = int(rate.group(1)), rate.group(2)
            if n < 1 or (n == 1) != (not unit.endswith("s")):
                raise ScheduleError(f"{expression}: use 'rate(1 minute)' or 'rate(N minutes)'")
            self.interval = timedelta(**{unit.rstrip("s") + "s": n})
        elif cron:
            fields = cron.group(1).split()
            if len(fields) != 6:
                raise ScheduleError(f"{expression}: cron needs 6 fields (minutes hours day month weekday year)")
            minute, hour, dom, month, dow, year = fields
            if (dom == "?") == (dow == "?"):
                raise ScheduleError(f"{expression}: exactly one of day-of-month and day-of-week must be '?'")
            self.minutes = _field(minute, 0, 59)
            self.hours = _field(hour, 0, 23)
            self.doms = _field(dom, 1, 31)
            self.months = _field(month, 1, 12, _MONTHS)
            self.dows = _field(dow, 1, 7, _DAYS)
            self.years = _field(year, 1970, 2199)
        else:
            raise ScheduleError(f"{expression!r} is not a rate() or cron() expression")

    def next_after(self, after: datetime) -> datetime:
        after = after.astimezone(UTC)
        if self.interval is not None:
            return after + self.interval
        t = (after + timedelta(minutes=1)).replace(second=0, microsecond=0)
        for _ in range(60 * 24 * 366 * 5):
            if (
                (self.years is None or t.year in self.years)
                and (self.months is None or t.month in self.months)
                and (self.doms is None or t.day in self.doms)
                and (self.dows is None or (t.isoweekday() % 7) + 1 in self.dows)
                and (self.hours is None or t.hour in self.hours)
                and (self.minutes is None or t.minute in self.minutes)
            ):
                return t
            t += timedelta(minutes=1)
        raise ScheduleError(f"{self.expression} never fires in the next five years")
