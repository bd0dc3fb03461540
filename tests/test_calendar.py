"""Calendar facts: festival dates for any year (lunar-python), statutory days off and the
holiday reminder plan, configured schedules, and `branchbot calendar YEAR` in an 80-column terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta

import pytest

from scheduler.calendar import (
    YearSchedule,
    festival_dates,
    festival_day,
    holidays,
    new_years_eve,
    reminder_plan,
    source_of,
)


def test_festival_dates_are_computed_for_any_year():
    dates = {f.name: f for f in festival_dates(2027)}
    assert dates["春节"].day == date(2027, 2, 6) and dates["春节"].eve == date(2027, 2, 5)
    assert dates["元宵"].day == date(2027, 2, 20) and not dates["元宵"].day_off
    assert dates["清明"].day == date(2027, 4, 5) and dates["端午"].day == date(2027, 6, 9)
    assert dates["中秋"].day == date(2027, 9, 15) and dates["国庆"].day == date(2027, 10, 1)
    # 2026: 除夕 falls on 腊月廿九 (the 12th lunar month has 29 days).
    spring = next(f for f in festival_dates(2026) if f.name == "春节")
    assert (spring.eve, spring.day) == (date(2026, 2, 16), date(2026, 2, 17))
    far = festival_dates(2099)  # no table runs out
    assert [f.day for f in far] == sorted(f.day for f in far) and len(far) == 8


def test_calendar_shows_festival_dates_beside_days_off_in_80_columns(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text("", encoding="utf-8")
    env = {**os.environ, "COLUMNS": "80"}
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "calendar", "2027", "--config", str(cfg)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(len(line) + sum(1 for ch in line if ord(ch) > 0x2E80) <= 80 for line in lines), result.stdout
    assert "…" not in result.stdout
    spring = next(line for line in lines if "春节" in line)
    assert "02-06（除夕 02-05）" in spring and "02-05 至 02-08，4 天" in spring and "02-03 周三" in spring
    assert "元宵 02-20" in result.stdout and "中秋" in result.stdout
    assert not (tmp_path / "data").exists()  # calendar needs no database


@pytest.mark.parametrize(
    "year, expected",
    [(2024, date(2024, 2, 10)), (2025, date(2025, 1, 29)), (2026, date(2026, 2, 17)), (2027, date(2027, 2, 6))],
)
def test_spring_festival(year, expected):
    assert festival_day("春节", year) == expected
    assert new_years_eve(year) == expected - timedelta(days=1)


def test_known_festival_dates():
    assert festival_day("中秋", 2025) == date(2025, 10, 6)
    assert festival_day("清明", 2026) == date(2026, 4, 5)
    assert festival_day("端午", 2026) == date(2026, 6, 19)
    assert new_years_eve(2025) == date(2025, 1, 28)  # the 12th lunar month of 2024 has 29 days


@pytest.mark.parametrize("year", [1901, 2050, 2099])
def test_far_years_are_sane_and_never_raise(year):
    plan = reminder_plan(year)
    names = [n for r in plan for n in r.holiday.names]
    assert sorted(names) == sorted(["元旦", "春节", "清明", "劳动节", "端午", "中秋", "国庆"])
    for reminder in plan:
        assert reminder.send_on < reminder.holiday.first
        assert (reminder.holiday.first - reminder.send_on).days <= 6
    spring = festival_day("春节", year)
    assert date(year, 1, 20) <= spring <= date(year, 2, 21)
    assert date(year, 4, 4) <= festival_day("清明", year) <= date(year, 4, 6)


def test_years_the_package_does_not_know_fall_back_without_raising():
    assert source_of(2027) == "statutory"
    spring = next(h for h in holidays(2027) if "春节" in h.names)
    assert (spring.first, spring.last) == (date(2027, 2, 5), date(2027, 2, 8))  # 除夕 to 初三


def test_statutory_days_off_from_chinese_calendar_and_merged_festivals():
    plan = {r.holiday.title: r for r in reminder_plan(2026)}
    assert (plan["春节"].holiday.first, plan["春节"].send_on) == (date(2026, 2, 15), date(2026, 2, 13))
    merged = {r.holiday.title: r for r in reminder_plan(2025)}
    assert merged["中秋、国庆"].holiday.first == date(2025, 10, 1)
    assert merged["春节"].send_on == date(2025, 1, 26)  # a working Sunday (调休) counts


def test_configured_schedule_wins_for_a_new_year():
    schedule = {2027: YearSchedule({"春节": (date(2027, 2, 5), date(2027, 2, 11))}, frozenset({date(2027, 2, 14)}))}
    spring = next(r for r in reminder_plan(2027, 2, schedule) if "春节" in r.holiday.names)
    assert (spring.holiday.first, spring.holiday.last, spring.holiday.source) == (
        date(2027, 2, 5),
        date(2027, 2, 11),
        "config",
    )
    assert spring.send_on == date(2027, 2, 3)


def test_a_holiday_entry_that_names_no_festival_is_refused_naming_it(tmp_path, capsys, monkeypatch):
    from bot.cli import main

    monkeypatch.delenv("BRANCHBOT_CONFIG", raising=False)
    cfg = tmp_path / "config.toml"
    cfg.write_text('[holidays.2027]\n"春季" = ["2027-02-05", "2027-02-11"]\n', encoding="utf-8")
    assert main(["calendar", "2027", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "「春季」不是节日名" in err and "调休" in err
    cfg.write_text(
        '[holidays.2027]\n"春节" = ["2027-02-05", "2027-02-11"]\n"调休" = ["2027-02-14"]\n', encoding="utf-8"
    )
    assert main(["calendar", "2027", "--config", str(cfg)]) == 0
