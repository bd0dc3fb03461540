"""Pushes survive outages: what may pass is retried with capped backoff for
``outbox.retry_window`` (fake clock, fake WeChat API on loopback); only permanent
errcodes end ``failed`` at once; ``outbox status`` shows what waits and when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert
from sqlmodel import select

from bot.cli import main
from bot.outbox.campaigns import create_campaign
from bot.outbox.worker import OutboxWorker
from bot.store import Branch, Member
from bot.store.models import Delivery
from tests.conftest import build_env
from tests.support.fake_wechat_api import FakeWeChatApi, push_settings

MEMBERS = 2000


@pytest.fixture
def api():
    with FakeWeChatApi() as fake:
        yield fake


def outage_env(tmp_path, clock, database_url, api, **extra: str):
    # Real outbox defaults for backoff and window; only the send rate is lifted so the
    # final pass is quick. Sleeps inside a call go to the fake clock (see worker below).
    settings = push_settings(api, BRANCHBOT__OUTBOX__WECHAT_PER_SECOND="100000", BRANCHBOT__OUTBOX__TIMEOUT_SECONDS="2")
    for key in ("BRANCHBOT__OUTBOX__RETRY_BASE_SECONDS", "BRANCHBOT__OUTBOX__POLL_SECONDS"):
        settings.pop(key)
    settings.update(extra)
    return build_env(tmp_path, clock, bank=None, database_url=database_url, **settings)


def worker_for(env) -> OutboxWorker:
    """The worker on the test's clock; the short waits between quick retries inside one
    call (a second or two of real time) are skipped."""
    return OutboxWorker(env.store, env.config, clock=env.clock, sleep=lambda seconds: None)


def next_due(env) -> datetime | None:
    """When the next pending delivery may be tried (now for a new one); None when none is left."""
    with env.store.session() as db:
        waiting = db.exec(select(Delivery.next_attempt_at).where(Delivery.status == "pending")).all()
    if not waiting:
        return None
    return min(when or env.clock() for when in waiting)


def counts(env, campaign: int) -> dict[str, int]:
    with env.store.session() as db:
        found: dict[str, int] = {}
        for status in db.exec(select(Delivery.status).where(Delivery.campaign_id == campaign)).all():
            found[status] = found.get(status, 0) + 1
        return found


def test_api_down_30_minutes_during_a_2000_member_campaign_sends_each_once_after(tmp_path, clock, database_url, api):
    env = outage_env(tmp_path, clock, database_url, api, BRANCHBOT__OUTBOX__RETRY_BASE_SECONDS="60")  # 8 passes, not 12
    with env.store.session() as db:
        branch = db.exec(select(Branch)).first()
        db.execute(
            insert(Member),
            [
                {
                    "name": f"党员{i}",
                    "phone": f"1370000{i:04d}",
                    "branch_id": branch.id,
                    "role": "党员",
                    "openid": f"o-m{i}",
                    "subscribed": True,
                    "is_demo": False,
                    "status": "在册",
                }
                for i in range(MEMBERS)
            ],
        )
        ids = db.exec(select(Member.id).where(Member.openid.like("o-m%"))).all()  # type: ignore[union-attr]
        campaign = create_campaign(
            db, kind="broadcast", text="支部通知：周五下午学习。", member_ids=ids, now=env.clock()
        ).id
    api.outage("http", 503)
    back_at = env.clock() + timedelta(minutes=30)
    worker = worker_for(env)
    passes = 0
    try:
        while True:
            if api.state.outage is not None and env.clock() >= back_at:
                api.restore()
            worker.run_once()
            passes += 1
            due = next_due(env)
            if due is None:
                break
            assert counts(env, campaign).get("failed", 0) == 0  # nothing gives up inside the window
            env.clock.now = max(env.clock.now, due)
            assert passes < 40, (passes, counts(env, campaign))
    finally:
        worker.stop()
    assert counts(env, campaign) == {"sent": MEMBERS}
    assert all(api.times_delivered(f"o-m{i}") == 1 for i in range(MEMBERS))
    assert sum(api.state.delivered.values()) == MEMBERS
    # The outage was met with backoff, not a flood: a few calls per pass while it lasted.
    assert sum(api.state.outage_calls.values()) < 60 * passes
    assert 6 <= passes <= 10  # backoff doubling from 60 s: 0, 1, 3, 7, 15, 25 minutes down, then sent
    env.store.dispose()


def bind_roster(env) -> list[int]:
    with env.store.session() as db:
        members = db.exec(select(Member).where(Member.wecom_userid.is_(None))).all()  # type: ignore[union-attr]
        for m in members:
            m.openid = f"o-{m.phone}"
            db.add(m)
        return [m.id for m in members]


def test_retries_stop_at_the_retry_window_and_permanent_errcodes_fail_at_once(tmp_path, clock, database_url, api):
    env = outage_env(tmp_path, clock, database_url, api, BRANCHBOT__OUTBOX__RETRY_WINDOW="3600")
    ids = bind_roster(env)
    api.inject("custom_send", "errcode", 43004, user="o-13900000003")  # unfollowed: permanent
    api.inject(
        "custom_send", "errcode", 40001, times=4, user="o-13900000012"
    )  # token trouble past the refresh: retried
    with env.store.session() as db:
        first = create_campaign(db, kind="broadcast", text="第一条", member_ids=ids, now=env.clock()).id
    worker = worker_for(env)
    try:
        worker.run_once()
        with env.store.session() as db:
            rows = {
                m.phone: (d.status, d.errcode)
                for d, m in db.exec(
                    select(Delivery, Member)
                    .join(Member, Member.id == Delivery.member_id)
                    .where(Delivery.campaign_id == first)
                ).all()
            }
        assert rows["13900000003"] == ("failed", 43004)
        assert rows["13900000012"] == ("pending", 40001)
        while next_due(env) is not None:
            env.clock.now = max(env.clock.now, next_due(env))
            worker.run_once()
        assert api.times_delivered("o-13900000012") == 1

        # Down for good: every delivery keeps trying for the window (an hour here), then fails.
        api.outage("http", 503)
        start = env.clock()
        with env.store.session() as db:
            second = create_campaign(db, kind="broadcast", text="第二条", member_ids=ids, now=start).id
        while (due := next_due(env)) is not None:
            assert counts(env, second).get("failed", 0) == 0 or env.clock() >= start + timedelta(hours=1)
            env.clock.now = max(env.clock.now, due)
            worker.run_once()
        assert counts(env, second) == {"failed": len(ids)}
        assert env.clock() - start < timedelta(hours=1, minutes=1)  # the last try is at the window's end
    finally:
        worker.stop()
    env.store.dispose()


def test_outbox_status_shows_what_waits_to_retry_and_when(tmp_path, clock, api, capsys, no_env_overrides):
    database_url = f"sqlite:///{tmp_path / 'test.db'}"
    env = outage_env(tmp_path, clock, database_url, api)

    env.clock.now = datetime.now(UTC).replace(microsecond=0)
    ids = bind_roster(env)
    with env.store.session() as db:
        create_campaign(db, kind="broadcast", title="学习通知", text="周五学习", member_ids=ids, now=env.clock())
    api.outage("http", 503)
    worker = worker_for(env)
    try:
        worker.run_once()
    finally:
        worker.stop()
    due = next_due(env)
    assert due is not None
    cfg = tmp_path / "cli.toml"
    cfg.write_text(f'[database]\nurl = "{database_url}"\n', encoding="utf-8")
    assert main(["outbox", "status", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "等待重试" in out
    [line] = [line for line in out.splitlines() if "学习通知" in line and "503" in line]
    assert f"{len(ids)}" in line and due.astimezone(env.config.tz).strftime("%H:%M") in line
    env.store.dispose()
