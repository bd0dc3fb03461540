"""会议 in chat, through the webhook: a secretary arranges a meeting step by step, members
reply 参加 or 请假, and check in with the code shown at the meeting; cancelling and expiry."""

from __future__ import annotations

from sqlmodel import select

from bot.store.models import MeetingReply
from tests.support.chat import last_campaign


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
