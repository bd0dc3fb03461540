"""Small date rules: political-birthday anniversaries, recurring meetings, weekday names."""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import date
from typing import Protocol

WEEKDAYS = "一二三四五六日"  # Monday first, as date.weekday() counts


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
    """「星期三」: in sentences (meeting notices and reminders, the console's calendar)."""
    return "星期" + WEEKDAYS[day.weekday()]


def short_weekday_name(day: date) -> str:
    """「周三」: in tables, where a column is narrow."""
    return "周" + WEEKDAYS[day.weekday()]


class Joined(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def joined_on(self) -> date | None: ...


def birthday_lines(members: Iterable[Joined], year: int, month: int) -> list[str]:
    """A month's political birthdays by day, 「12月3日 王五（入党 20 周年）」: what 生日 answers
    a secretary and what the 1st-of-month digest sends them."""
    found: list[tuple[int, str]] = []
    for member in members:
        joined = member.joined_on
        if joined is None or joined.month != month:
            continue
        day = 28 if (joined.month, joined.day) == (2, 29) and not calendar.isleap(year) else joined.day
        years = anniversary_years(joined, date(year, month, day))
        if years:
            found.append((day, f"{month}月{day}日 {member.name}（入党 {years} 周年）"))
    return [line for _, line in sorted(found)]
