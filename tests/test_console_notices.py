"""通知 in the console: preview with the recipient count, 确认发送, the delivery report
(the same facts as chat's 通知状态), scheduling and withdrawing, branch scope."""

from __future__ import annotations

import re

from sqlmodel import select

from bot.outbox.worker import OutboxWorker
from bot.store.models import AuditEntry, Campaign, Delivery
from tests.conftest import build_env
from tests.support.chat import bind
from tests.support.console import client_for, csrf_of
from tests.support.fake_wechat_api import FakeWeChatApi, push_settings


def campaigns(env) -> list[Campaign]:
    with env.store.session() as db:
        return list(db.exec(select(Campaign).where(Campaign.kind == "broadcast")).all())


def test_preview_sends_nothing_and_confirm_sends_to_own_branch(env):
    wang = client_for(env, "王书记")
    csrf = csrf_of(wang, "/console/notices")
    preview = wang.post(
        "/console/notices/preview",
        data={"csrf": csrf, "text": "周五下午学习全会精神", "branch": "all"},
        headers={"HX-Request": "true"},
    )
    assert preview.status_code == 200
    assert "即将发送给<b>第一党支部</b>" in preview.text  # a secretary's 'all' means their own branch
    assert re.search(r'id="recipient-count">6<', preview.text)
    assert campaigns(env) == []
    sent = wang.post(
        "/console/notices/send", data={"csrf": csrf, "text": "周五下午学习全会精神"}, follow_redirects=False
    )
    assert sent.status_code == 303
    [campaign] = campaigns(env)
    assert sent.headers["location"].startswith(f"/console/notices/{campaign.id}")
    with env.store.session() as db:
        assert len(db.exec(select(Delivery).where(Delivery.campaign_id == campaign.id)).all()) == 6
        entry = db.exec(select(AuditEntry).where(AuditEntry.action == "发布通知")).one()
        assert "王书记" in entry.actor and "第一党支部（6 人）" in entry.detail
    # 孙书记 (第二党支部) can neither read nor withdraw it; 吴管理 can read it.
    sun = client_for(env, "孙书记")
    assert sun.get(f"/console/notices/{campaign.id}").status_code == 404
    assert f"#{campaign.id}" not in sun.get("/console/notices").text
    assert client_for(env, "吴管理").get(f"/console/notices/{campaign.id}").status_code == 200


def test_too_long_or_empty_is_refused_with_the_chat_rules(env):
    wang = client_for(env, "王书记")
    csrf = csrf_of(wang, "/console/notices")
    long = wang.post(
        "/console/notices/preview", data={"csrf": csrf, "text": "学" * 700}, headers={"HX-Request": "true"}
    )
    assert "通知内容过长" in long.text
    assert wang.post("/console/notices/send", data={"csrf": csrf, "text": "学" * 700}).status_code == 400
    assert wang.post("/console/notices/send", data={"csrf": csrf, "text": " "}).status_code == 400
    assert campaigns(env) == []


def test_admin_chooses_a_branch_or_all(env):
    wu = client_for(env, "吴管理")
    csrf = csrf_of(wu, "/console/notices")
    preview = wu.post("/console/notices/preview", data={"csrf": csrf, "text": "年底党费", "branch": "all"})
    assert "全部支部" in preview.text and re.search(r'id="recipient-count">11<', preview.text)
    wu.post("/console/notices/send", data={"csrf": csrf, "text": "年底党费", "branch": "all"})
    assert campaigns(env)[0].branch_id is None


def test_schedule_and_withdraw(env):
    wang = client_for(env, "王书记")
    csrf = csrf_of(wang, "/console/notices")
    past = wang.post("/console/notices/send", data={"csrf": csrf, "text": "旧", "when": "2026-11-01T09:00"})
    assert past.status_code == 400 and "晚于现在" in past.text
    done = wang.post("/console/notices/send", data={"csrf": csrf, "text": "十二月主题党日", "when": "2026-12-01T09:00"})
    assert done.status_code == 200 and "定时通知，尚未到发送时间" in done.text
    [campaign] = campaigns(env)
    assert campaign.send_after is not None
    assert wang.post(f"/console/notices/{campaign.id}/withdraw").status_code == 403  # no CSRF: nothing changes
    assert campaigns(env)[0].cancelled_at is None
    withdrawn = wang.post(f"/console/notices/{campaign.id}/withdraw", data={"csrf": csrf})
    assert withdrawn.status_code == 200 and "已撤回" in withdrawn.text
    assert campaigns(env)[0].cancelled_at is not None
    assert wang.post(f"/console/notices/{campaign.id}/withdraw", data={"csrf": csrf}).status_code == 409
    # The chat command sees the same state.
    assert "已经撤回过了" in bind(env, "o-wang", "王书记", "0001").say(f"取消定时 {campaign.id}")


def test_delivery_report_matches_chat(tmp_path, clock):
    with FakeWeChatApi() as api:
        env = build_env(tmp_path, clock, **push_settings(api))
        with env.client:
            wang = bind(env, "o-wang", "王书记", "0001")
            bind(env, "o-li-oa", "赵敏", "0003")
            bind(env, "o-qian", "钱进", "0004")
            api.state.invalid_users.add("liming")
            api.state.closed_window.add("o-qian")
            api.inject("custom_send", "errcode", 43004, user="o-li-oa")
            browser = client_for(env, "王书记")
            csrf = csrf_of(browser, "/console/notices")
            browser.post("/console/notices/send", data={"csrf": csrf, "text": "周五学习"})
            worker = OutboxWorker(env.store, env.config, env.clock)
            worker.drain(max_seconds=20)
            worker.stop()
            [campaign] = campaigns(env)
            page = browser.get(f"/console/notices/{campaign.id}").text
            chat = wang.say("通知状态")
        env.store.dispose()
    assert "共 6 人" in page and "共 6 人" in chat
    assert re.search(r'id="sent-count">1<', page)
    assert "发送失败 2 人：李明（企业微信账号无效）；赵敏（已取消关注）" in page
    assert "存入未读通知 1 人" in page and "钱进" in page
    assert "未绑定、收不到 2 人：张伟、刘强" in page
