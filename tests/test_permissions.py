"""Who may do what in chat, through the webhook: each role (guest, member, secretary, admin)
is refused what it may not do, refusals are audited, and 帮助 lists only what one may use."""

from __future__ import annotations

import pytest
from sqlmodel import select

from bot.store.models import AuditEntry, Campaign


def test_members_cannot_broadcast_and_refusals_are_audited(env, people):
    assert "仅限支部书记和管理员" in people["li"].say("通知 大家好")
    assert "仅限支部书记和管理员" in people["li"].say("未完成")
    assert "仅限支部书记和管理员" in people["li"].say("会议")
    assert "仅限支部书记和管理员" in people["li"].say("通知状态")
    assert "仅限支部书记和管理员" in people["li"].say("催办")
    with env.store.session() as db:
        refusals = db.exec(select(AuditEntry).where(AuditEntry.action == "拒绝")).all()
    assert len(refusals) == 5 and all("李明" in r.actor for r in refusals)
    assert "请先绑定" in env.wechat("o-stranger").say("未完成")


def test_help_lists_secretary_commands_only_for_secretaries(env, people):
    assert "催办" in people["wang"].say("帮助") and "会议" in people["wang"].say("帮助")
    assert "催办" not in people["li"].say("帮助")


def test_each_role_is_refused_what_it_may_not_do(env, people):
    assert "请先绑定" in env.wechat("o-guest").say("积分")  # guest
    assert "仅限支部书记和管理员" in people["li"].say("生日")  # member
    assert "仅限管理员" in people["wang"].say("题目统计")  # secretary
    assert "仅限管理员" in people["wang"].say("纠错列表")
    assert "最难的 10 道题" in people["wu"].say("题目统计") or "答题数据还不够" in people["wu"].say("题目统计")  # admin
    with env.store.session() as db:
        actors = {e.actor.split("（")[0] for e in db.exec(select(AuditEntry).where(AuditEntry.action == "拒绝")).all()}
    assert actors == {"李明", "王书记"}


@pytest.mark.parametrize(
    "command",
    ["催办 第二党支部", "未完成 第二党支部", "生日 第二党支部", "定时通知 2026-11-20 09:00 第二党支部 内容"],
)
def test_secretary_naming_another_branch_is_told_it_is_not_theirs(env, people, command):
    before = env.count(Campaign)
    reply = people["wang"].say(command)
    assert reply == "「第二党支部」不是您所在的支部。您只能管理本支部（第一党支部）的事务。"
    assert env.count(Campaign) == before
    with env.store.session() as db:
        refusal = db.exec(select(AuditEntry).where(AuditEntry.action == "拒绝")).one()
    assert "王书记" in refusal.actor and "第二党支部" in refusal.detail
