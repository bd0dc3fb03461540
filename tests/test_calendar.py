"""Festival dates for any year (lunar-python) and `branchbot calendar YEAR` in an 80-column terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date

from scheduler.calendar import festival_dates


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
