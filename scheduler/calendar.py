"""Festivals and statutory days off for any year, as pure functions.

Festival days are computed (lunar-python), so the calendar never runs out. Days off come,
in order of preference, from an operator's ``[holidays.YYYY]`` entry (the State Council
publishes next year's schedule around November, before the packages catch up), from
chinese_calendar where it knows the year, and otherwise from the statutory days of the
放假办法 (2025 revision: 春节 is 除夕 to 初三, 劳动节 5/1–5/2, 国庆 10/1–10/3). Nothing here
raises for a year a data package does not know.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import chinese_calendar
from lunar_python import Lunar

FESTIVALS = ("元旦", "春节", "清明", "劳动节", "端午", "中秋", "国庆")

# Offsets (from the festival day) of the statutory days off when no schedule is known.
_STATUTORY_2025 = {
    "元旦": (0,),
    "春节": (-1, 0, 1, 2),
    "清明": (0,),
    "劳动节": (0, 1),
    "端午": (0,),
    "中秋": (0,),
    "国庆": (0, 1, 2),
}
_STATUTORY_2008 = {**_STATUTORY_2025, "春节": (0, 1, 2), "劳动节": (0,)}


def unknown_festivals(entries: Mapping[int, Mapping[str, object]]) -> list[str]:
    """What is wrong with an operator's ``[holidays.YYYY]`` names: each must be a festival
    this calendar computes, or 调休 (the make-up working days)."""
    return [
        f"[holidays.{year}] 中的「{name}」不是节日名（应为 {'、'.join(FESTIVALS)} 或 调休）"
        for year, names in entries.items()
        for name in names
        if name != "调休" and name not in FESTIVALS
    ]


def _solar(lunar: Lunar) -> date:
    solar = lunar.getSolar()
    return date(solar.getYear(), solar.getMonth(), solar.getDay())


def spring_festival(year: int) -> date:
    return _solar(Lunar.fromYmd(year, 1, 1))


def new_years_eve(year: int) -> date:
    """除夕 is the day before 正月初一 (the 12th month has only 29 days in some years)."""
    return spring_festival(year) - timedelta(days=1)


def qingming(year: int) -> date:
    term = Lunar.fromYmd(year, 1, 1).getJieQiTable()["清明"]
    return date(term.getYear(), term.getMonth(), term.getDay())


_DAY: dict[str, Callable[[int], date]] = {
    "元旦": lambda y: date(y, 1, 1),
    "春节": spring_festival,
    "清明": qingming,
    "劳动节": lambda y: date(y, 5, 1),
    "端午": lambda y: _solar(Lunar.fromYmd(y, 5, 5)),
    "中秋": lambda y: _solar(Lunar.fromYmd(y, 8, 15)),
    "国庆": lambda y: date(y, 10, 1),
}


def festival_day(name: str, year: int) -> date:
    return _DAY[name](year)


@dataclass(frozen=True)
class FestivalDate:
    """A festival's own date in a year (not its days off): what a secretary plans around."""

    name: str
    day: date
    eve: date | None = None  # 除夕, for 春节
    day_off: bool = True  # False for festivals with no statutory day off (元宵)

    @property
    def label(self) -> str:
        """ "春节 2027-02-06（除夕 02-05）"."""
        return f"{self.name} {self.day:%Y-%m-%d}" + (f"（除夕 {self.eve:%m-%d}）" if self.eve else "")


def festival_dates(year: int) -> list[FestivalDate]:
    """The statutory festivals' own dates (春节 with 除夕) and 元宵, in date order, for any year."""
    found = [
        FestivalDate(name, festival_day(name, year), new_years_eve(year) if name == "春节" else None)
        for name in FESTIVALS
    ]
    found.append(FestivalDate("元宵", _solar(Lunar.fromYmd(year, 1, 15)), day_off=False))
    return sorted(found, key=lambda f: f.day)


@dataclass(frozen=True)
class YearSchedule:
    """An operator's published schedule for one year: festival → (first, last) day off,
    and the weekend days that are working days (调休上班)."""

    days_off: Mapping[str, tuple[date, date]]
    workdays: frozenset[date] = frozenset()

    def is_day_off(self, day: date) -> bool:
        return any(first <= day <= last for first, last in self.days_off.values())


Schedules = Mapping[int, YearSchedule]


def _known_to_package(year: int) -> bool:
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
        return True
    except NotImplementedError:
        return False


def source_of(year: int, schedules: Schedules | None = None) -> str:
    if schedules and year in schedules:
        return "config"
    return "chinese_calendar" if _known_to_package(year) else "statutory"


def _statutory_days(year: int) -> set[date]:
    offsets = _STATUTORY_2025 if year >= 2025 else _STATUTORY_2008
    return {festival_day(name, year) + timedelta(days=o) for name in FESTIVALS for o in offsets[name]}


def is_workday(day: date, schedules: Schedules | None = None) -> bool:
    source = source_of(day.year, schedules)
    if source == "config":
        assert schedules is not None  # source_of says "config" only for a year the schedules have
        schedule = schedules[day.year]
        if day in schedule.workdays:
            return True
        return day.weekday() < 5 and not schedule.is_day_off(day)
    if source == "chinese_calendar":
        return bool(chinese_calendar.is_workday(day))  # the library is untyped
    return day.weekday() < 5 and day not in _statutory_days(day.year)


@dataclass(frozen=True)
class Holiday:
    """One festival's stretch of days off (several festivals may share one, e.g. 国庆 and 中秋)."""

    names: tuple[str, ...]
    first: date
    last: date
    source: str

    @property
    def title(self) -> str:
        return "、".join(self.names)


def _days_off_around(name: str, year: int, schedules: Schedules | None) -> tuple[date, date]:
    source = source_of(year, schedules)
    day = festival_day(name, year)
    if source == "config":
        assert schedules is not None  # source_of says "config" only for a year the schedules have
        schedule = schedules[year]
        if name in schedule.days_off:
            return schedule.days_off[name]
        return day, day
    if source == "statutory":
        offsets = (_STATUTORY_2025 if year >= 2025 else _STATUTORY_2008)[name]
        return day + timedelta(days=min(offsets)), day + timedelta(days=max(offsets))
    # chinese_calendar: the run of non-working days that contains the festival day.
    if is_workday(day, schedules):
        return day, day
    first = last = day
    while not is_workday(first - timedelta(days=1), schedules):
        first -= timedelta(days=1)
    while not is_workday(last + timedelta(days=1), schedules):
        last += timedelta(days=1)
    return first, last


def holidays(year: int, schedules: Schedules | None = None) -> list[Holiday]:
    """The year's festival holidays in date order; festivals whose days off overlap or
    touch (国庆 and 中秋 in some years) share one holiday and one reminder."""
    spans: dict[tuple[date, date], list[str]] = {}
    one_day = timedelta(days=1)
    for name in FESTIVALS:
        first, last = _days_off_around(name, year, schedules)
        merged = next((span for span in spans if span[0] <= last + one_day and first <= span[1] + one_day), None)
        if merged:
            names = spans.pop(merged)
            spans[(min(first, merged[0]), max(last, merged[1]))] = names + [name]
        else:
            spans[(first, last)] = [name]
    source = source_of(year, schedules)
    return sorted(
        (Holiday(tuple(names), first, last, source) for (first, last), names in spans.items()), key=lambda h: h.first
    )


def working_days_before(day: date, count: int, schedules: Schedules | None = None) -> date:
    """The ``count``-th working day before ``day`` (count ≥ 1)."""
    current, found = day, 0
    while found < max(count, 1):
        current -= timedelta(days=1)
        if is_workday(current, schedules):
            found += 1
    return current


@dataclass(frozen=True)
class Reminder:
    holiday: Holiday
    send_on: date


def reminder_plan(year: int, days_before: int = 2, schedules: Schedules | None = None) -> list[Reminder]:
    """When each 廉洁过节 reminder goes out: ``days_before`` working days before the first day off."""
    return [Reminder(h, working_days_before(h.first, days_before, schedules)) for h in holidays(year, schedules)]
