"""Secretaries' and admins' work in chat, through the webhook: broadcasts, follow-up,
meetings, birthdays, and the permission boundaries between roles and branches."""

from __future__ import annotations

from sqlmodel import select

from bot.outbox.worker import OutboxWorker
from bot.store.models import AuditEntry, Campaign, Delivery
from tests.conftest import build_env
from tests.support.chat import bind, deliveries, last_campaign
from tests.support.fake_wechat_api import FakeWeChatApi, push_settings


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


def test_secretary_cannot_reach_another_branch(env, people):
    people["sun"].say("通知 第二支部的通知")
    people["sun"].say("确认")
    second = last_campaign(env).id
    assert "没有找到通知" in people["wang"].say(f"通知状态 {second}")
    # A secretary naming another branch is told it is not theirs; nothing is prepared or sent.
    refused = people["wang"].say("通知 第二党支部 想发给别的支部")
    assert refused == "「第二党支部」不是您所在的支部。您只能管理本支部（第一党支部）的事务。"
    people["wang"].say("确认")
    assert last_campaign(env).id == second
    assert "第二党支部" not in people["wang"].say("未完成") and "周芳" not in people["wang"].say("未完成")


def test_secretary_may_name_own_branch_but_not_all(env, people):
    assert "即将发送给第一党支部" in people["wang"].say("通知 第一党支部 周五集中学习")
    assert people["wang"].say("取消") == "已取消，通知没有发送。"
    assert "第一党支部本月测试" in people["wang"].say("未完成 第一党支部")
    assert "仅限管理员" in people["wang"].say("通知 全部 年底前完成党费收缴。")
    assert env.count(Campaign) == 0


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
