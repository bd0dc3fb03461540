"""Monthly 廉政提醒: one quotation a month, each with its exact source, in a rotation that
does not repeat for two years. Pure functions; the job in scheduler/jobs.py sends.

The bundled set is scheduler/templates/integrity_reminders.toml (25 quotations from the
党章 2022, the 廉洁自律准则 2015, the 纪律处分条例 2023 and the 中央八项规定 2012). An
admin's own quotations, in a file of the same format named by ``scheduler.integrity_file``,
follow them in the rotation.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

BUNDLED = Path(__file__).parent / "templates" / "integrity_reminders.toml"
HOLIDAY_GAP = timedelta(days=7)  # a 廉洁过节 reminder this close makes the month's one redundant
MAX_TEXT = 300


class ReminderFileProblem(Exception):
    """The admin's file cannot be used (the message says where)."""


@dataclass(frozen=True)
class IntegrityReminder:
    text: str  # quoted verbatim
    source: str


def parse_reminders(content: str, name: str) -> list[IntegrityReminder]:
    """``[[reminder]]`` tables with ``text`` and ``source``; ReminderFileProblem names the
    entry at fault."""
    try:
        data = tomllib.loads(content)
    except tomllib.TOMLDecodeError as exc:
        raise ReminderFileProblem(f"{name}：不是有效的 TOML（{exc}）") from exc
    entries = data.get("reminder")
    if not isinstance(entries, list) or not entries:
        raise ReminderFileProblem(f"{name}：没有 [[reminder]] 条目")
    reminders = []
    for number, entry in enumerate(entries, start=1):
        text = str(entry.get("text", "")).strip() if isinstance(entry, dict) else ""
        source = str(entry.get("source", "")).strip() if isinstance(entry, dict) else ""
        if not text or not source:
            raise ReminderFileProblem(f"{name} 第 {number} 条：text（原文）和 source（出处）都要填写")
        if len(text) > MAX_TEXT:
            raise ReminderFileProblem(f"{name} 第 {number} 条：原文过长（{len(text)} 字），请控制在 {MAX_TEXT} 字以内")
        reminders.append(IntegrityReminder(text, source))
    return reminders


def load_reminders(extra_file: str = "") -> list[IntegrityReminder]:
    """The bundled quotations, then the admin's (ReminderFileProblem if that file is bad)."""
    reminders = parse_reminders(BUNDLED.read_text(encoding="utf-8"), BUNDLED.name)
    if extra_file:
        path = Path(extra_file)
        try:
            content = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ReminderFileProblem(f"无法读取廉政提醒文件 {path}（{type(exc).__name__}）") from exc
        known = set(reminders)
        reminders += [r for r in parse_reminders(content, path.name) if r not in known]
    return reminders


def month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def reminder_for(day: date, reminders: list[IntegrityReminder]) -> IntegrityReminder:
    """The month's quotation: the rotation's position is the month index modulo the set's
    size, so with 24 or more quotations no month repeats one of the previous 23, and the
    choice depends on nothing but the month (a skipped month skips its quotation)."""
    return reminders[month_index(day) % len(reminders)]


def near_holiday_reminder(day: date, holiday_sends: Iterable[date], gap: timedelta = HOLIDAY_GAP) -> date | None:
    """The nearest 廉洁过节 reminder date within ``gap`` of ``day``, if any."""
    near = [sent for sent in holiday_sends if abs(sent - day) <= gap]
    return min(near, key=lambda sent: (abs(sent - day), sent)) if near else None
