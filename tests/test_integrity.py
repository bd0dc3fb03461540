"""Monthly 廉政提醒: a bundled set of sourced quotations rotating without repeats for two
years, the admins' own texts after them, skipped near a 廉洁过节 reminder, active members only."""

from __future__ import annotations

import re
from datetime import date, datetime

import pytest
from sqlmodel import select

from bot.store import Member, MemberStatus
from bot.store.models import Campaign, Delivery
from scheduler.integrity import (
    ReminderFileProblem,
    load_reminders,
    near_holiday_reminder,
    parse_reminders,
    reminder_for,
)
from scheduler.runner import JobRunner
from tests.conftest import SHANGHAI, build_env

# The documents a reminder may cite, in their current versions, with an article or part.
SOURCES = [
    r"《中国共产党章程》（2022年10月修改）(总纲|第[一二三四五六七八九十]+条(第[一二三四五六七八九十]+项)?)",
    r"《中国共产党廉洁自律准则》（2015年10月）(导语|第[一二三四五六七八]条)",
    r"《中国共产党纪律处分条例》（2023年12月修订）第[一二三四五六七八九十百]+条(第[一二]款)?",
    r"《中共中央政治局关于改进工作作风、密切联系群众的八项规定》（2012年12月4日）第[一二三四五六七八]项",
]


def test_bundled_set_is_large_enough_distinct_and_cites_current_documents():
    reminders = load_reminders()
    assert len(reminders) >= 24
    assert len({r.text for r in reminders}) == len(reminders)
    for reminder in reminders:
        assert any(re.fullmatch(pattern, reminder.source) for pattern in SOURCES), reminder.source
        assert len(reminder.text) <= 300 and "“" not in reminder.text[:1]
    families = {pattern: sum(bool(re.fullmatch(pattern, r.source)) for r in reminders) for pattern in SOURCES}
    assert all(count >= 1 for count in families.values()), families


def test_no_quotation_repeats_within_any_two_years():
    reminders = load_reminders()
    months = [date(2026 + (m // 12), m % 12 + 1, 10) for m in range(60)]
    chosen = [reminder_for(day, reminders) for day in months]
    for start in range(len(months) - 24):
        assert len(set(chosen[start : start + 24])) == 24
    assert reminder_for(date(2027, 3, 10), reminders) == reminder_for(date(2027, 3, 25), reminders)  # by month only


def test_admin_texts_join_the_rotation_and_bad_files_are_named(tmp_path):
    extra = tmp_path / "ours.toml"
    extra.write_text(
        '[[reminder]]\ntext = "本支部自定的提醒原文。"\nsource = "本支部廉政公约（2026年）第一条"\n', encoding="utf-8"
    )
    bundled = load_reminders()
    combined = load_reminders(str(extra))
    assert combined[:-1] == bundled and combined[-1].source == "本支部廉政公约（2026年）第一条"
    with pytest.raises(ReminderFileProblem, match="第 2 条：text（原文）和 source（出处）都要填写"):
        parse_reminders('[[reminder]]\ntext = "甲"\nsource = "乙"\n[[reminder]]\ntext = "丙"\n', "x.toml")
    with pytest.raises(ReminderFileProblem, match="不是有效的 TOML"):
        parse_reminders("text = ", "x.toml")
    with pytest.raises(ReminderFileProblem, match="无法读取"):
        load_reminders(str(tmp_path / "missing.toml"))


def test_holiday_reminder_within_seven_days():
    sends = [date(2026, 9, 29), date(2026, 12, 30)]
    assert near_holiday_reminder(date(2026, 9, 22), sends) == date(2026, 9, 29)
    assert near_holiday_reminder(date(2026, 9, 25), [date(2026, 9, 23), date(2026, 9, 29)]) == date(2026, 9, 23)
    assert near_holiday_reminder(date(2026, 10, 6), sends) == date(2026, 9, 29)
    assert near_holiday_reminder(date(2026, 10, 7), sends) is None
    assert near_holiday_reminder(date(2026, 11, 10), sends) is None


@pytest.fixture
def jobs(tmp_path, clock, database_url):
    env = build_env(tmp_path, clock, database_url=database_url)
    runner = JobRunner(env.store, env.config, env.clock)
    yield env, runner
    env.store.dispose()


def test_job_sends_the_months_quotation_to_active_members(jobs):
    env, runner = jobs
    with env.store.session() as db:
        members = db.exec(select(Member)).all()
        leaving = members[0]
        leaving.status = MemberStatus.TRANSFERRED.value
        db.add(leaving)
        active = {m.id for m in members if m.id != leaving.id}
        leaving_id = leaving.id
    result = runner.run("integrity_reminder", datetime(2026, 11, 10, 9, 0, tzinfo=SHANGHAI))
    expected = reminder_for(date(2026, 11, 10), load_reminders())
    assert result.ran and result.detail == f"发送给 {len(active)} 人：{expected.source}"
    with env.store.session() as db:
        sent = db.exec(select(Campaign).where(Campaign.kind == "integrity")).all()
        assert sent and all(c.title == "每月廉政提醒" for c in sent)
        assert {c.text for c in sent} == {
            f"【每月廉政提醒】\n“{expected.text}”\n——{expected.source}\n请对照检视，守纪律、讲规矩。"
        }
        recipients = {
            d.member_id for d in db.exec(select(Delivery).where(Delivery.campaign_id.in_([c.id for c in sent]))).all()
        }
    assert recipients == active and leaving_id not in recipients
    assert not runner.run("integrity_reminder", datetime(2026, 11, 10, 9, 0, tzinfo=SHANGHAI)).ran  # once only


def test_job_skips_a_month_whose_holiday_reminder_is_near(jobs):
    env, runner = jobs
    result = runner.run(
        "integrity_reminder", datetime(2026, 10, 5, 9, 0, tzinfo=SHANGHAI)
    )  # 国庆's reminder: 29 September
    assert result.detail == "本月跳过：9月29日有廉洁过节提醒"
    with env.store.session() as db:
        assert db.exec(select(Campaign).where(Campaign.kind == "integrity")).all() == []


def test_job_with_a_broken_admin_file_falls_back_to_the_bundled_set(tmp_path, clock):
    broken = tmp_path / "ours.toml"
    broken.write_text("not toml [", encoding="utf-8")
    env = build_env(tmp_path, clock, BRANCHBOT__SCHEDULER__INTEGRITY_FILE=str(broken))
    try:
        result = JobRunner(env.store, env.config, env.clock).run(
            "integrity_reminder", datetime(2027, 1, 10, 9, 0, tzinfo=SHANGHAI)
        )
        assert result.ran and "自定义提醒文件有误" in result.detail and "ours.toml" in result.detail
        assert reminder_for(date(2027, 1, 10), load_reminders()).source in result.detail
    finally:
        env.store.dispose()
