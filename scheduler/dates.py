"""Small date rules for jobs: political-birthday anniversaries and recurring meetings."""

from __future__ import annotations

import calendar
from datetime import date

WEEKDAYS = "一二三四五六日"


def anniversary_years(joined: date | None, today: date) -> int | None:
    """Years since joining when today is the anniversary (a 29 February join date is
    greeted on 28 February in common years); None otherwise, or in the joining year."""
    if joined is None or today.year <= joined.year:
        return None
    month, day = joined.month, joined.day
    if (month, day) == (2, 29) and not calendar.isleap(today.year):
        day = 28
    return today.year - joined.year if (today.month, today.day) == (month, day) else None


def nth_weekday(year: int, month: int, weekday: int, nth: int) -> date | None:
    """The nth (1-based; -1 = last) weekday (1 = Monday) of a month, if it exists."""
    days = [
        d for d in range(1, calendar.monthrange(year, month)[1] + 1) if date(year, month, d).isoweekday() == weekday
    ]
    index = nth - 1 if nth > 0 else nth
    return date(year, month, days[index]) if -len(days) <= index < len(days) else None


def weekday_name(day: date) -> str:
    return "星期" + WEEKDAYS[day.weekday()]
