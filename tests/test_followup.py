"""Secretaries' follow-up in chat, through the webhook: 未完成 and 催办 (once a day) for the
month's quiz, and 生日 (the branch's political birthdays this month)."""

from __future__ import annotations

from sqlmodel import select

from bot.store import Branch
from tests.conftest import correct_letters
from tests.support.chat import deliveries, last_campaign


def test_unfinished_and_nudge_once_a_day(env, people):
    reply = people["li"].say("答题")
    for _ in range(10):
        reply = people["li"].say(correct_letters(env.store, reply))
    unfinished = people["wang"].say("未完成")
    assert "已完成 1/6 人" in unfinished
    assert "未完成 2 人：王书记、赵敏" in unfinished
    assert "未绑定 3 人" in unfinished and "钱进" in unfinished
    nudged = people["wang"].say("催办")
    assert nudged.startswith("已向 2 位未完成的同志推送提醒") and "另有 3 人未绑定" in nudged
    assert set(deliveries(env, last_campaign(env, "nudge").id)) == {"王书记0001", "赵敏0003"}
    assert "今天已经催办过了" in people["wang"].say("催办")
    env.clock.advance(days=1)
    assert people["wang"].say("催办").startswith("已向 2 位")


def test_birthdays_this_month(env, people):
    env.clock.set_local(2026, 12, 3, 10, 0)
    assert people["wang"].say("生日") == "第一党支部12月政治生日（共 1 人）：\n12月1日 刘强（入党 13 周年）"
    assert "周芳（入党 16 周年）" in people["sun"].say("生日")


def test_admin_names_the_branch_a_follow_up_is_for(env, people):
    assert people["wu"].say("未完成 第二党支部").startswith("第二党支部本月测试")
    assert people["wu"].say("催办 第二党支部").startswith("已向 ")
    with env.store.session() as db:
        second = db.exec(select(Branch).where(Branch.name == "第二党支部")).one()
    assert last_campaign(env, "nudge").branch_id == second.id
