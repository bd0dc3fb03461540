"""会议 in the console: replies and leave reasons from chat, a check-in code shown large
with a QR code of 「签到 NNNN」, and a member checking in with that text in chat."""

from __future__ import annotations

import re

import segno
from sqlmodel import select

from bot.console.meetings import checkin_text, qr_svg
from bot.store.models import AuditEntry, Meeting
from tests.support.chat import bind
from tests.support.console import client_for, csrf_of


def arrange(env, wang) -> int:
    for step in ("会议", "5", "2026-11-10 15:00", "三楼会议室", "学习全会精神"):
        wang.say(step)
    assert "已向第一党支部" in wang.say("确认")
    with env.store.session() as db:
        return db.exec(select(Meeting)).one().id


def test_meeting_record_code_qr_and_check_in(env):
    env.clock.set_local(2026, 11, 10, 9, 0)
    wang = bind(env, "o-wang", "王书记", "0001")
    li, zhao = bind(env, "o-li", "李明", "0002"), bind(env, "o-zhao", "赵敏", "0003")
    meeting_id = arrange(env, wang)
    li.say("参加")
    zhao.say("请假 出差")
    browser = client_for(env, "王书记")
    listing = browser.get("/console/meetings").text
    assert "主题党日" in listing and f"/console/meetings/{meeting_id}" in listing
    page = browser.get(f"/console/meetings/{meeting_id}").text
    assert "出差" in page and "未回复" in page and 'id="checkin-code"' not in page
    assert "会议前后 3 小时内可以生成签到码" in page  # 09:00, the meeting is at 15:00
    assert browser.post(f"/console/meetings/{meeting_id}/code", data={"csrf": csrf_of(browser)}).status_code == 409
    env.clock.set_local(2026, 11, 10, 14, 40)
    browser = client_for(env, "王书记")  # the morning's session has timed out
    assert browser.post(f"/console/meetings/{meeting_id}/code").status_code == 403  # no CSRF
    shown = browser.post(f"/console/meetings/{meeting_id}/code", data={"csrf": csrf_of(browser)})
    assert shown.status_code == 200
    code = re.search(r'id="checkin-code">(\d{4})<', shown.text).group(1)
    with env.store.session() as db:
        assert db.exec(select(Meeting)).one().checkin_code == code
        assert db.exec(select(AuditEntry).where(AuditEntry.action == "签到码")).one().actor.startswith("王书记")
    # The page carries a regular QR code (not Micro QR) of exactly what a member would type.
    assert checkin_text(code) == f"签到 {code}"
    assert str(qr_svg(code)) in shown.text and "<svg" in shown.text
    assert not segno.make_qr(checkin_text(code)).is_micro
    assert "签到成功" in li.say(checkin_text(code))
    after = browser.get(f"/console/meetings/{meeting_id}").text
    assert "已签到 1/" in after
    # Another branch's secretary cannot see or act on it.
    sun = client_for(env, "孙书记")
    assert sun.get(f"/console/meetings/{meeting_id}").status_code == 404
    assert sun.post(f"/console/meetings/{meeting_id}/code", data={"csrf": csrf_of(sun)}).status_code == 404
    assert "三楼会议室" not in sun.get("/console/meetings").text
