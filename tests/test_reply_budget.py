"""The reply budget (wechat.reply_budget_ms): a handler that overruns it gets WeChat an
empty answer at once, and its reply follows through the outbox as a late push."""

from __future__ import annotations

from sqlmodel import select

from bot.store import Member
from bot.store.models import Campaign, Delivery
from tests.conftest import build_env


def campaigns(env, kind: str) -> list[Campaign]:
    with env.store.session() as db:
        return list(db.exec(select(Campaign).where(Campaign.kind == kind)).all())


def test_slow_reply_answers_at_once_and_follows_through_the_outbox(tmp_path, clock, monkeypatch):
    """A reply that overruns the budget: WeChat gets an empty answer while the handler is
    still working, and the reply follows as a one-member campaign. Independent of the
    machine's pace: the handler is held until the answer has arrived, and the member is
    bound in the store, so the only message through the webhook is the slow one."""
    import threading
    import time as time_module

    from bot.app import create_app
    from handlers import build_registry

    registry = build_registry()
    slow = next(c for c in registry.commands if c.word == "积分")
    original = slow.handler
    release, finished = threading.Event(), threading.Event()

    def held(ctx):
        release.wait(60)
        try:
            return original(ctx)
        finally:
            finished.set()

    registry.commands[registry.commands.index(slow)] = type(slow)(
        slow.word, held, slow.roles, slow.summary, slow.usage, slow.aliases
    )
    env = build_env(tmp_path, clock, BRANCHBOT__WECHAT__REPLY_BUDGET_MS="200")
    with env.store.session() as db:
        li = db.exec(select(Member).where(Member.name == "李明")).one()
        li.openid = "o-li"
        db.add(li)
    from starlette.testclient import TestClient

    env.client = TestClient(create_app(env.config, env.store, env.clock, registry=registry))
    with env.client:
        user = env.wechat("o-li")
        response = user.post(user.text_request("积分"))
        assert not finished.is_set()  # answered while the handler was still held
        assert response.text == "success"
        release.set()
        deadline = time_module.time() + 60  # a bound on a wait, not a timing test
        while not campaigns(env, "reply") and time_module.time() < deadline:
            time_module.sleep(0.05)
    [late] = campaigns(env, "reply")
    assert "李明同志的积分" in late.text
    with env.store.session() as db:
        assert db.exec(select(Delivery.member_id).where(Delivery.campaign_id == late.id)).all() == [li.id]
