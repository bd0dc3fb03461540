"""Who is an active member has one home (bot.store.members): a roster entry marked
已转出 is a guest in chat, holds no role, and receives nothing, whichever path pushes."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from bot.outbox.campaigns import create_campaign
from bot.outbox.worker import OutboxWorker
from bot.roster import check_file, import_members
from bot.store import Member, MemberStatus
from bot.store.models import Campaign, Delivery
from scheduler.runner import JobRunner
from tests.conftest import DATA, SHANGHAI, build_env
from tests.support.fake_wechat_api import FakeWeChatApi, push_settings


@pytest.fixture
def api():
    with FakeWeChatApi() as fake:
        yield fake


def transfer_out(env, tmp_path, phone: str) -> None:
    """A full roster import that leaves ``phone`` out (it is marked 已转出)."""
    lines = (DATA / "roster.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    path = tmp_path / "roster-without.csv"
    path.write_text("".join(line for line in lines if phone not in line), encoding="utf-8")
    checked = check_file(path, datetime(2030, 1, 1).date())
    assert not checked.errors
    with env.store.session() as db:
        result = import_members(db, checked.members, path.name, mark_missing=True)
        assert [m.phone for m in result.transferred] == [phone]


def member_id(env, phone: str) -> int:
    with env.store.session() as db:
        return db.exec(select(Member.id).where(Member.phone == phone)).one()


def deliveries_to(env, member: int) -> list[tuple[str, str, str]]:
    with env.store.session() as db:
        return [
            (c.kind, d.status, d.errmsg)
            for d, c in db.exec(
                select(Delivery, Campaign)
                .join(Campaign, Campaign.id == Delivery.campaign_id)
                .where(Delivery.member_id == member)
            ).all()
        ]


def test_transferred_secretary_loses_every_power_and_receives_nothing(tmp_path, clock, database_url, api):
    env = build_env(tmp_path, clock, database_url=database_url, **push_settings(api))
    with env.client:
        secretary = env.wechat("o-wang-shuji")
        assert "绑定成功" in secretary.say("绑定 王书记 0001")
        assert "确认" in secretary.say("通知 周五下午三点集中学习")  # a broadcast waiting for 确认
        wang = member_id(env, "13900000001")
        with env.store.session() as db:  # a push created before the transfer, sent after it
            before = create_campaign(db, kind="broadcast", text="早先的通知", member_ids=[wang], now=env.clock()).id

        transfer_out(env, tmp_path, "13900000001")
        with env.store.session() as db:
            assert db.get(Member, wang).status == MemberStatus.TRANSFERRED

        # Chat: a guest. The pending 确认 is void, secretaries' commands are refused as to a stranger.
        said = secretary.say("确认")
        assert "已发送" not in said and "通知 #" not in said
        for command in ("未完成", "催办", "通知 再发一条", "会议情况", "积分"):
            assert "请先绑定" in secretary.say(command), command
        with env.store.session() as db:
            assert (
                db.exec(select(Campaign).where(Campaign.kind.in_(["broadcast", "nudge"]), Campaign.id != before)).all()
                == []
            )

        # Scheduled jobs and any new campaign leave the member out.
        runner = JobRunner(env.store, env.config, env.clock)
        assert runner.run("monthly_quiz", datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI)).ran
        assert runner.run("quiz_reminder", datetime(2026, 12, 28, 19, 0, tzinfo=SHANGHAI)).ran
        with env.store.session() as db:
            create_campaign(db, kind="broadcast", text="之后的通知", member_ids=[wang], now=env.clock())

        # The push queued before the transfer is skipped, not sent.
        worker = OutboxWorker(env.store, env.config)
        try:
            worker.drain(max_seconds=30)
        finally:
            worker.stop()
        assert deliveries_to(env, wang) == [("broadcast", "skipped", "已转出")]
        assert api.times_delivered("wangshuji") == 0 and api.times_delivered("o-wang-shuji") == 0
        assert api.times_delivered("liming") == 2  # the monthly quiz and its reminder reached the others
    env.store.dispose()


def test_transferred_member_can_no_longer_bind_with_their_old_details(tmp_path, clock, database_url):
    env = build_env(tmp_path, clock, database_url=database_url)
    with env.client:
        transfer_out(env, tmp_path, "13900000003")
        said = env.wechat("o-zhao").say("绑定 赵敏 0003")
        assert "绑定成功" not in said
        with env.store.session() as db:
            assert db.exec(select(Member).where(Member.phone == "13900000003")).one().openid is None
    env.store.dispose()


def test_secretary_demoted_while_a_notice_awaits_confirmation_cannot_send_it(tmp_path, clock, database_url):
    env = build_env(tmp_path, clock, database_url=database_url)
    with env.client:
        secretary = env.wechat("o-wang-shuji")
        assert "绑定成功" in secretary.say("绑定 王书记 0001")
        assert "确认" in secretary.say("通知 周五下午三点集中学习")
        with env.store.session() as db:  # an admin revokes the role (console or CLI) meanwhile
            wang = db.exec(select(Member).where(Member.phone == "13900000001")).one()
            wang.role = "党员"
            db.add(wang)
        reply = secretary.say("确认")
        assert "已发送" not in reply
        with env.store.session() as db:
            assert db.exec(select(Campaign).where(Campaign.kind == "broadcast")).all() == []


def test_secretary_demoted_while_arranging_a_meeting_cannot_publish_it(tmp_path, clock, database_url):
    env = build_env(tmp_path, clock, database_url=database_url)
    with env.client:
        secretary = env.wechat("o-wang-shuji")
        assert "绑定成功" in secretary.say("绑定 王书记 0001")
        secretary.say("会议")
        secretary.say("1")
        secretary.say((env.clock() + timedelta(days=3)).astimezone(SHANGHAI).strftime("%Y-%m-%d 15:00"))
        secretary.say("三楼会议室")
        assert "确认" in secretary.say("无")
        with env.store.session() as db:
            wang = db.exec(select(Member).where(Member.phone == "13900000001")).one()
            wang.role = "党员"
            db.add(wang)
        assert "已向" not in secretary.say("确认")
        with env.store.session() as db:
            assert db.exec(select(Campaign).where(Campaign.kind == "meeting")).all() == []


def test_notice_numbers_past_32_bits_get_a_clear_answer(tmp_path, clock, database_url):
    env = build_env(tmp_path, clock, database_url=database_url)
    with env.client:
        secretary = env.wechat("o-wang-shuji")
        assert "绑定成功" in secretary.say("绑定 王书记 0001")
        assert "没有找到通知 #99999999999" in secretary.say("通知状态 99999999999")
        assert "没有找到定时通知" in secretary.say("取消定时 99999999999")
