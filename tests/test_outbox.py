"""Pushes through the outbox against a fake WeChat/WeCom API on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import select

from bot.outbox.campaigns import create_campaign
from bot.outbox.worker import OutboxWorker
from bot.store import Member
from bot.store.models import AccessToken, Campaign, Delivery
from tests.conftest import build_env
from tests.support.fake_wechat_api import FakeWeChatApi, push_settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def api():
    with FakeWeChatApi() as fake:
        yield fake


@pytest.fixture
def push_env(tmp_path, clock, database_url, api):
    env = build_env(tmp_path, clock, database_url=database_url, **push_settings(api))
    # Bind everyone without a WeCom account to an Official Account openid, except 钱进.
    with env.store.session() as db:
        for member in db.exec(select(Member)).all():
            if not member.wecom_userid and member.name != "钱进":
                member.openid = f"o-{member.phone}"
                db.add(member)
    with env.client:
        yield env
    env.store.dispose()


def all_member_ids(env) -> list[int]:
    with env.store.session() as db:
        return list(db.exec(select(Member.id)).all())


def push(env, text: str = "支部通知：周五下午学习。", title: str = "") -> int:
    with env.store.session() as db:
        return create_campaign(
            db, kind="broadcast", text=text, title=title, member_ids=all_member_ids(env), now=env.clock()
        ).id


def drain(env) -> None:
    worker = OutboxWorker(env.store, env.config)
    try:
        worker.drain(max_seconds=30)
    finally:
        worker.stop()


def statuses(env, campaign_id: int) -> dict[str, str]:
    with env.store.session() as db:
        rows = db.exec(
            select(Member.name, Member.phone, Delivery.status)
            .join(Delivery, Delivery.member_id == Member.id)
            .where(Delivery.campaign_id == campaign_id)
        ).all()
        return {f"{name}{phone[-4:]}" if name != "刘强" else f"{name}{phone}": status for name, phone, status in rows}


def test_every_reachable_member_gets_the_push_exactly_once(push_env, api):
    campaign = push(push_env)
    drain(push_env)
    result = statuses(push_env, campaign)
    assert result.pop("钱进0004") == "skipped"  # never bound
    assert set(result.values()) == {"sent"}
    with push_env.store.session() as db:
        members = db.exec(select(Member)).all()
        for member in members:
            user = member.wecom_userid or member.openid
            if user:
                assert api.times_delivered(user) == 1, member.name
        assert db.get(Campaign, campaign).finished_at is not None
    drain(push_env)  # a second pass sends nothing more
    assert sum(api.state.delivered.values()) == len(result)


def test_transient_failures_are_retried_until_sent(push_env, api):
    api.inject("custom_send", "timeout", 2, user="o-13900000003")
    api.inject("custom_send", "http", 502, user="o-13900000012")
    api.inject("custom_send", "errcode", 45009, user="o-13900001234")
    api.inject("custom_send", "errcode", -1, user="o-13900005678")
    api.inject("wecom_send", "errcode", 45033)
    campaign = push(push_env)
    drain(push_env)
    result = statuses(push_env, campaign)
    result.pop("钱进0004")
    assert set(result.values()) == {"sent"}
    for user in ("o-13900000003", "o-13900000012", "o-13900001234", "o-13900005678", "liming"):
        assert api.times_delivered(user) == 1


def test_permanent_failures_keep_the_errcode(push_env, api):
    api.state.invalid_users.add("liming")
    api.inject("custom_send", "errcode", 40003, user="o-13900000003")
    campaign = push(push_env)
    drain(push_env)
    with push_env.store.session() as db:
        failed = {
            m.name: (d.errcode, d.errmsg)
            for d, m in db.exec(
                select(Delivery, Member)
                .join(Member, Member.id == Delivery.member_id)
                .where(Delivery.campaign_id == campaign, Delivery.status == "failed")
            ).all()
        }
    assert failed == {"李明": (81013, "invaliduser"), "赵敏": (40003, "injected 40003")}
    assert api.times_delivered("wangshuji") == 1  # the rest of the WeCom batch went out


def test_expired_token_is_refreshed_once(push_env, api):
    push(push_env)
    drain(push_env)
    fetches = dict(api.state.token_fetches)
    assert fetches == {"stable_token": 1, "gettoken": 1}
    api.expire_tokens()
    push(push_env, text="第二条通知")
    drain(push_env)
    assert api.state.token_fetches["stable_token"] == 2 and api.state.token_fetches["gettoken"] == 2
    with push_env.store.session() as db:
        assert len(db.exec(select(AccessToken)).all()) == 2


def test_closed_window_falls_back_to_template(tmp_path, clock, api):
    env = build_env(
        tmp_path,
        clock,
        **push_settings(
            api,
            BRANCHBOT__WECHAT__TEMPLATE_ID="tpl-1",
            BRANCHBOT__WECHAT__TEMPLATE_FIELDS='{"thing1": "title", "time2": "date"}',
        ),
    )
    with env.store.session() as db:
        db.exec(update(Member).where(Member.name == "赵敏").values(openid="o-zhao"))
        member_id = db.exec(select(Member.id).where(Member.name == "赵敏")).one()
        campaign = create_campaign(
            db, kind="broadcast", title="学习通知", text="周五学习", member_ids=[member_id], now=clock()
        ).id
    api.state.closed_window.add("o-zhao")
    drain(env)
    with env.store.session() as db:
        delivery = db.exec(select(Delivery).where(Delivery.campaign_id == campaign)).one()
    assert (delivery.status, delivery.via) == ("sent", "wechat_template")
    [(channel, _user, data)] = [key for key in api.state.delivered]
    assert channel == "template" and json.loads(data)["thing1"] == {"value": "学习通知"}


def test_closed_window_without_template_waits_in_the_inbox(push_env, api):
    api.state.closed_window.add("o-13900000003")  # 45015: outside the 48-hour window
    api.inject("custom_send", "errcode", 45047, user="o-13900000012")  # 周芳: over the customer-service quota
    campaign = push(push_env, text="本周五下午三点集中学习。", title="学习通知")
    drain(push_env)
    result = statuses(push_env, campaign)
    assert result["赵敏0003"] == "inbox" and result["周芳0012"] == "inbox"
    with push_env.store.session() as db:
        codes = set(
            db.exec(select(Delivery.errcode).where(Delivery.campaign_id == campaign, Delivery.status == "inbox")).all()
        )
    assert codes == {45015, 45047}
    user = push_env.wechat("o-13900000003")
    reply = user.say("积分")
    assert reply.startswith("您有 1 条未读通知，发送「通知」查看。") and "赵敏同志的积分" in reply
    inbox = user.say("通知")
    assert "【学习通知】本周五下午三点集中学习。" in inbox
    assert not user.say("积分").startswith("您有")
    assert user.say("通知") == "暂无未读通知。"


def test_wecom_batches_of_at_most_1000(tmp_path, clock, api):
    env = build_env(tmp_path, clock, **push_settings(api))
    with env.store.session() as db:
        branch_id = db.exec(select(Member.branch_id)).first()
        db.add_all(
            [
                Member(name=f"成员{i}", phone=f"186{i:08d}", branch_id=branch_id, wecom_userid=f"u{i}")
                for i in range(2300)
            ]
        )
    with env.store.session() as db:
        ids = db.exec(select(Member.id).where(Member.wecom_userid.like("u%"))).all()  # type: ignore[union-attr]
        create_campaign(db, kind="broadcast", text="通知", member_ids=ids, now=clock())
    drain(env)
    assert api.state.calls["wecom_send"] == 3
    assert sum(api.state.delivered.values()) == 2300


def test_group_robot_post_once_per_campaign(tmp_path, clock, api):
    env = build_env(
        tmp_path,
        clock,
        **push_settings(
            api, BRANCHBOT__ROBOTS__API_BASE=api.base, BRANCHBOT__ROBOTS__KEYS='{"第一党支部": "robot-key-1"}'
        ),
    )
    with env.store.session() as db:
        branch_id = db.exec(select(Member.branch_id).where(Member.name == "李明")).one()
        create_campaign(
            db,
            kind="meeting",
            title="主题党日提醒",
            text="明天下午三点主题党日。",
            member_ids=[],
            now=clock(),
            branch_id=branch_id,
            robot=True,
        )
    drain(env)
    drain(env)
    assert len(api.state.robot_posts) == 1
    post = api.state.robot_posts[0]
    assert post["key"] == "robot-key-1" and post["text"]["mentioned_list"] == ["@all"]
    assert post["text"]["content"].startswith("【主题党日提醒】")


TOKEN_SCRIPT = textwrap.dedent("""
    import sys, threading
    from bot.config import load_config
    from bot.outbox.senders import OfficialAccount, RateLimiter
    from bot.outbox.tokens import TokenStore
    from bot.store import create_store
    import httpx
    config = load_config(sys.argv[1])
    store = create_store(config.database.url)
    account = OfficialAccount(config.wechat, httpx.Client(base_url=config.wechat.api_base), TokenStore(store),
                              RateLimiter(100), 0.01)
    token = store and account.api.tokens.get(account.api.name, account._fetch_token)
    if sys.argv[2] == "refresh":
        token = account.api.tokens.refresh(account.api.name, account._fetch_token, stale=sys.argv[3])
    print(token)
""")


def test_token_is_fetched_once_and_shared_by_two_processes(tmp_path, api, database_url):
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[database]\nurl = "{database_url}"\n[wechat]\napp_id = "wxabc"\napp_secret = "{"s" * 32}"\n'
        f'api_base = "{api.base}"\n',
        encoding="utf-8",
    )
    from bot.store import create_store

    create_store(database_url).create_all()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def both(*args: str) -> set[str]:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", TOKEN_SCRIPT, str(cfg), *args], stdout=subprocess.PIPE, env=env, text=True
            )
            for _ in range(2)
        ]
        return {p.communicate(timeout=300)[0].strip() for p in procs}

    tokens = both("get")
    assert len(tokens) == 1 and api.state.token_fetches["stable_token"] == 1
    [stale] = tokens
    api.expire_tokens()
    refreshed = both("refresh", stale)
    assert len(refreshed) == 1 and refreshed != tokens
    assert api.state.token_fetches["stable_token"] == 2  # refreshed once, not once per process


def test_killed_mid_campaign_five_times_resumes_without_duplicates_or_misses(tmp_path, clock):
    """kill -9 the sending process five times during a 2,000-member campaign; each restart
    takes over the dead one's claims after the lease, and every member gets it once."""
    with FakeWeChatApi(latency=0.3) as api:
        cfg = tmp_path / "config.toml"
        settings = push_settings(
            api,
            BRANCHBOT__OUTBOX__LEASE_SECONDS="5",
            BRANCHBOT__OUTBOX__TIMEOUT_SECONDS="5",
            BRANCHBOT__OUTBOX__CONCURRENCY="2",
            BRANCHBOT__OUTBOX__WECOM_BATCH="50",
        )
        env = build_env(tmp_path, clock, **settings)
        with env.store.session() as db:
            branch_id = db.exec(select(Member.branch_id)).first()
            db.add_all(
                [
                    Member(name=f"成员{i}", phone=f"186{i:08d}", branch_id=branch_id, wecom_userid=f"u{i}")
                    for i in range(2000)
                ]
            )
        with env.store.session() as db:
            ids = db.exec(select(Member.id).where(Member.wecom_userid.like("u%"))).all()  # type: ignore[union-attr]
            campaign = create_campaign(db, kind="broadcast", text="通知", member_ids=ids, now=clock()).id
        cfg.write_text("", encoding="utf-8")
        run_env = {
            **os.environ,
            **settings,
            "BRANCHBOT__DATABASE__URL": env.config.database.url,
            "PYTHONPATH": str(ROOT),
        }
        command = [sys.executable, "-m", "bot.cli", "outbox", "run", "--config", str(cfg)]
        for _ in range(5):
            calls_before = api.state.calls["wecom_send"]
            worker = subprocess.Popen(command, env=run_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.time() + 30
            while api.state.calls["wecom_send"] < calls_before + 3 and time.time() < deadline:
                time.sleep(0.02)
            worker.send_signal(signal.SIGKILL)
            worker.wait()
        assert sum(api.state.delivered.values()) < 2000  # really killed mid-campaign
        last = subprocess.run(command, env=run_env, capture_output=True, text=True, timeout=600)
        assert last.returncode == 0, last.stderr
        assert statuses_count(env, campaign) == {"sent": 2000}
        assert all(api.times_delivered(f"u{i}") == 1 for i in range(2000))


def statuses_count(env, campaign: int) -> dict[str, int]:
    from collections import Counter

    with env.store.session() as db:
        return dict(Counter(db.exec(select(Delivery.status).where(Delivery.campaign_id == campaign)).all()))


def test_metrics_report_deliveries_by_status_and_errcode(push_env, api):
    api.state.invalid_users.add("liming")
    push(push_env)
    drain(push_env)
    metrics = push_env.client.get("/metrics").text
    assert 'branchbot_deliveries{errcode="",status="sent"} 9.0' in metrics
    assert 'branchbot_deliveries{errcode="81013",status="failed"} 1.0' in metrics
    assert 'branchbot_deliveries{errcode="",status="skipped"} 1.0' in metrics


def test_rate_limiter_queues_callers_instead_of_waking_them_all():
    """With the bucket empty, each caller reserves the next token and sleeps once until
    its time; the rate holds (no caller is early) and a burst is served at once."""
    from bot.outbox.senders import RateLimiter

    now = [100.0]
    slept: list[float] = []
    limiter = RateLimiter(5, burst=2, clock=lambda: now[0], sleep=slept.append)
    waits = [limiter.acquire() for _ in range(6)]  # all at the same instant
    assert waits == pytest.approx([0.0, 0.0, 0.2, 0.4, 0.6, 0.8])
    assert slept == pytest.approx([0.2, 0.4, 0.6, 0.8])  # one sleep per waiting caller
    now[0] += 0.8 + 1.0  # the debt is paid after 0.8 s; one more second refills the burst
    assert [limiter.acquire() for _ in range(3)] == pytest.approx([0.0, 0.0, 0.2])
