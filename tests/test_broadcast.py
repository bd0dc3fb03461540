"""Secretaries' and admins' work in chat, through the webhook: broadcasts, follow-up,
meetings, birthdays, and the permission boundaries between roles and branches."""

from __future__ import annotations

import pytest
from sqlmodel import select

from bot.outbox.worker import OutboxWorker
from bot.store import Member
from bot.store.models import AuditEntry, Campaign, Delivery, MeetingReply
from tests.conftest import build_env, correct_letters
from tests.support.fake_wechat_api import FakeWeChatApi
from tests.test_outbox import push_settings


def bind(env, openid: str, name: str, tail: str):
    user = env.wechat(openid)
    assert "绑定成功" in user.say(f"绑定 {name} {tail}")
    return user


@pytest.fixture
def people(env):
    """王书记 (第一党支部 secretary), 孙书记 (第二), 吴管理 (admin), 李明 and 赵敏 (members of 第一)."""
    return {
        "wang": bind(env, "o-wang", "王书记", "0001"),
        "sun": bind(env, "o-sun", "孙书记", "0011"),
        "wu": bind(env, "o-wu", "吴管理", "0021"),
        "li": bind(env, "o-li", "李明", "0002"),
        "zhao": bind(env, "o-zhao", "赵敏", "0003"),
    }


def deliveries(env, campaign_id: int) -> dict[str, str]:
    with env.store.session() as db:
        return {
            m.name + m.phone[-4:]: d.status
            for d, m in db.exec(
                select(Delivery, Member)
                .join(Member, Member.id == Delivery.member_id)
                .where(Delivery.campaign_id == campaign_id)
            ).all()
        }


def last_campaign(env, kind: str = "broadcast") -> Campaign:
    with env.store.session() as db:
        return db.exec(select(Campaign).where(Campaign.kind == kind).order_by(Campaign.id.desc())).first()


def test_broadcast_preview_confirm_and_number(env, people):
    preview = people["wang"].say("通知 本周五下午三点在三楼会议室集中学习二十届四中全会精神。")
    assert "即将发送给第一党支部" in preview
    assert "收件人 6 人（已绑定 3 人，未绑定 3 人收不到）" in preview and "确认" in preview
    assert env.count(Campaign) == 0  # nothing is sent before 确认
    done = people["wang"].say("确认")
    campaign = last_campaign(env)
    assert done == f"已发送，通知编号 #{campaign.id}。稍后发送「通知状态 {campaign.id}」查看送达情况。"
    recipients = deliveries(env, campaign.id)
    assert len(recipients) == 6 and not any(
        name.startswith(("孙书记", "周芳")) for name in recipients
    )  # own branch only
    with env.store.session() as db:
        assert (
            db.exec(select(AuditEntry).where(AuditEntry.action == "发布通知"))
            .one()
            .detail.startswith(f"#{campaign.id} → 第一党支部")
        )


def test_broadcast_cancel_and_expiry(env, people):
    people["wang"].say("通知 明天停电，学习改期。")
    assert people["wang"].say("取消") == "已取消，通知没有发送。"
    people["wang"].say("通知 明天停电，学习改期。")
    env.clock.advance(minutes=11)
    late = people["wang"].say("确认")
    assert "超过 10 分钟没有确认，已自动作废" in late
    assert env.count(Campaign) == 0
    # Other commands still work while a broadcast waits for confirmation.
    people["wang"].say("通知 再发一次。")
    assert "本月积分" in people["wang"].say("积分")
    assert "有一条通知等待确认" in people["wang"].say("嗯")


def test_broadcast_length_limit(env, people):
    reply = people["wang"].say("通知 " + "学" * 700)
    assert "最多 2048 字节" in reply and "当前 2100 字节" in reply


def test_admin_broadcasts_to_a_named_branch_or_all(env, people):
    assert "即将发送给第二党支部" in people["wu"].say("通知 第二党支部 请报送学习材料。")
    people["wu"].say("确认")
    assert set(deliveries(env, last_campaign(env).id)) == {"张伟5678", "孙书记0011", "周芳0012", "刘强2222"}
    assert "即将发送给全部支部" in people["wu"].say("通知 全部 年底前完成党费收缴。")
    people["wu"].say("确认")
    with env.store.session() as db:
        assert len(db.exec(select(Delivery).where(Delivery.campaign_id == last_campaign(env).id)).all()) == 11


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


def test_secretary_cannot_reach_another_branch(env, people):
    people["sun"].say("通知 第二支部的通知")
    people["sun"].say("确认")
    second = last_campaign(env).id
    assert "没有找到通知" in people["wang"].say(f"通知状态 {second}")
    # A secretary naming another branch still only reaches their own.
    assert "即将发送给第一党支部" in people["wang"].say("通知 第二党支部 想发给别的支部")
    people["wang"].say("确认")
    assert all(not name.startswith(("孙书记", "周芳")) for name in deliveries(env, last_campaign(env).id))
    assert "第二党支部" not in people["wang"].say("未完成") and "周芳" not in people["wang"].say("未完成")


def test_delivery_report_after_some_sends_failed(tmp_path, clock):
    with FakeWeChatApi() as api:
        env = build_env(tmp_path, clock, **push_settings(api))
        with env.client:
            wang = bind(env, "o-wang", "王书记", "0001")
            bind(env, "o-li-oa", "赵敏", "0003")
            bind(env, "o-qian", "钱进", "0004")
            api.state.invalid_users.add("liming")  # 王书记 and 李明 are on WeCom; 李明's account is invalid
            api.state.closed_window.add("o-qian")  # outside the 48-hour window: goes to the inbox
            api.inject("custom_send", "errcode", 43004, user="o-li-oa")  # 赵敏 unfollowed meanwhile
            wang.say("通知 周五学习")
            wang.say("确认")
            worker = OutboxWorker(env.store, env.config, env.clock)
            worker.drain(max_seconds=20)
            worker.stop()
            report = wang.say("通知状态")
    assert "共 6 人" in report
    assert "已送达 1 人" in report  # 王书记 via WeCom
    assert "发送失败 2 人：李明（企业微信账号无效）；赵敏（已取消关注）" in report
    assert "存入未读通知 1 人" in report and "钱进" in report
    assert "未绑定、收不到 2 人：张伟、刘强" in report


def test_scheduled_notice_waits_and_can_be_withdrawn(env, people):
    preview = people["wang"].say("定时通知 2026-11-12 09:00 周四上午九点集中学习。")
    assert "将于 2026-11-12 09:00 发送给第一党支部" in preview
    assert "已安排定时通知" in people["wang"].say("确认")
    campaign = last_campaign(env)
    worker = OutboxWorker(env.store, env.config, env.clock)
    assert worker.run_once() == 0  # not before its time
    assert "尚未到发送时间" in people["wang"].say(f"通知状态 {campaign.id}")
    assert people["wang"].say(f"取消定时 {campaign.id}") == f"已撤回定时通知 #{campaign.id}，不会发送。"
    env.clock.set_local(2026, 11, 12, 9, 1)
    assert worker.run_once() == 0
    worker.stop()
    assert set(deliveries(env, campaign.id).values()) == {"skipped"}
    assert "定时通知格式" in people["wang"].say("定时通知 明天 发")
    assert "须晚于现在" in people["wang"].say("定时通知 2026-11-01 09:00 过去的时间")


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


def test_meeting_dialog_rsvp_and_check_in(env, people):
    wang = people["wang"]
    assert "请选择会议类型" in wang.say("会议")
    assert "请回复会议时间" in wang.say("5")
    assert "请按「2026-12-04 15:00」的格式" in wang.say("下周五")
    assert "请回复会议地点" in wang.say("2026-11-13 15:00")
    assert "请回复会议主题" in wang.say("三楼会议室")
    confirm = wang.say("学习党的二十届四中全会精神")
    assert "主题党日" in confirm and "2026-11-13 15:00" in confirm
    assert wang.say("确认") == "已向第一党支部 6 人发出主题党日通知。发送「会议情况」查看回复。"
    notice = last_campaign(env, "meeting")
    assert "11月13日（星期五）15:00 在三楼会议室召开主题党日" in notice.text
    assert "已登记：您将参加" in people["li"].say("参加")
    assert "请说明请假理由" in people["zhao"].say("请假")
    assert "已登记请假（出差）" in people["zhao"].say("请假 出差")
    report = wang.say("会议情况")
    assert "参加 1 人：李明" in report and "请假 1 人：赵敏（出差）" in report and "未回复 4 人" in report
    assert "前后 3 小时内没有" in wang.say("签到码")  # too early
    env.clock.set_local(2026, 11, 13, 14, 55)
    code_reply = wang.say("签到码")
    code = code_reply.split("签到码：")[1][:4]
    assert "15:25 前有效" in code_reply
    wrong = "0000" if code != "0000" else "1111"
    assert people["li"].say(f"签到 {wrong}") == "签到码不正确，请核对后重试。还可尝试 4 次。"
    assert people["li"].say(f"签到 {code}").startswith("签到成功")
    assert "您已签到过了" in people["li"].say(f"签到 {code}")
    env.clock.advance(minutes=31)
    assert "签到码已过期" in people["zhao"].say(f"签到 {code}")
    assert "已签到 1/6 人：李明" in wang.say("会议情况")
    with env.store.session() as db:
        rows = db.exec(select(MeetingReply)).all()
        assert {(r.answer, r.reason, r.checked_in_at is not None) for r in rows} == {
            ("参加", "", True),
            ("请假", "出差", False),
        }


def test_meeting_dialog_cancel_and_expiry(env, people):
    people["wang"].say("会议")
    assert people["wang"].say("取消") == "已取消会议安排。"
    people["wang"].say("会议")
    people["wang"].say("1")
    env.clock.advance(minutes=31)
    assert "没有找到" in people["wang"].say("2026-11-20 15:00")  # the dialog is gone; this is unknown text
    assert people["li"].say("参加") == "近期没有需要回复的会议。"


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
