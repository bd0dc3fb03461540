"""The demo shows the whole loop: with the simulator on and no credentials, pushes to demo
members go through the real outbox into the simulator's loopback channel and come back out
of /simulator/api/pushes; with credentials set, the real senders carry them as before."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from bot.app import create_app
from bot.cli import main
from bot.config import load_config
from bot.outbox.worker import OutboxWorker
from bot.store import Member, create_store
from bot.store.models import Delivery
from scheduler.runner import JobRunner
from tests.conftest import SHANGHAI, unhurried
from tests.support.fake_wechat_api import FakeWeChatApi

pytestmark = pytest.mark.usefixtures("no_env_overrides")
LOCAL = {"base_url": "http://127.0.0.1:8000", "client": ("127.0.0.1", 50000)}  # the simulator answers loopback only


def demo_config(tmp_path: Path, extra: str = "") -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "demo.db"}"\n'
        '[wechat]\ntoken = "branchbotdemo"\nmode = "plain"\n'
        f'[simulator]\nenabled = true\n{extra}',
        encoding="utf-8",
    )
    assert main(["init", "--demo", "--config", str(cfg)]) == 0
    return cfg


class Simulator:
    """The simulator page's calls: send (through /wechat), and the push poll."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.members = {m["name"]: m for m in client.get("/simulator/api/members").json()}

    def say(self, name: str, text: str) -> str:
        response = self.client.post("/simulator/api/send", json={"openid": self.members[name]["openid"], "text": text})
        assert response.status_code == 200, response.text
        return response.json()["text"]

    def pushes(self, since: str = "") -> dict:
        response = self.client.get("/simulator/api/pushes", params={"since": since} if since else {})
        assert response.status_code == 200
        return response.json()

    def chat(self, name: str) -> list[str]:
        member_id = self.members[name]["id"]
        return [p["text"] for p in self.pushes()["pushes"] if p["member_id"] == member_id]


def drain(store, config) -> None:
    worker = OutboxWorker(store, config)
    try:
        worker.drain(max_seconds=30)
    finally:
        worker.stop()


def deliveries(store) -> list[tuple[str, str, str, str]]:
    with store.session() as db:
        rows = db.exec(
            select(Delivery, Member).join(Member, Member.id == Delivery.member_id).order_by(Delivery.id)
        ).all()
        return [(m.name, d.status, d.via, d.errmsg) for d, m in rows]


def test_secretary_notice_and_jobs_arrive_in_the_demo_members_chats(tmp_path, capsys):
    cfg = demo_config(tmp_path)
    config = load_config(cfg, {})
    store = create_store(config.database.url)
    with TestClient(create_app(unhurried(config), store), **LOCAL) as client:
        sim = Simulator(client)
        assert sim.pushes()["pushes"] == []
        assert "绑定成功" in sim.say("张建国", "绑定 张建国 0001")
        assert "绑定成功" in sim.say("王志强", "绑定 王志强 0003")
        preview = sim.say("张建国", "通知 今晚七点在党员活动室集中学习。")
        assert "确认" in preview
        assert sim.say("张建国", "确认").startswith("已发送，通知编号 #")
        drain(store, config)

        # Bound (王志强) and WeCom-reachable (李红梅, 张建国) demo members get it in their chats;
        # the unbound ones are skipped as 未绑定, as in production.
        for name in ("张建国", "李红梅", "王志强"):
            assert sim.chat(name) == ["今晚七点在党员活动室集中学习。"], name
        assert sim.chat("刘晓燕") == [] and sim.chat("孙丽娟") == []
        ledger = deliveries(store)
        assert {(n, s, v) for n, s, v, _ in ledger} == {
            ("张建国", "sent", "demo"),
            ("李红梅", "sent", "demo"),
            ("王志强", "sent", "demo"),
            ("刘晓燕", "skipped", ""),
            ("陈立新", "skipped", ""),
        }
        status = sim.say("张建国", "通知状态")
        assert "已送达 3 人" in status and "未绑定、收不到 2 人" in status
        first = sim.pushes()
        shown = {p["id"] for p in first["pushes"]}

        # `branchbot jobs run holiday_reminder --send` from the CLI lands in the same chats.
        code = main(["jobs", "run", "holiday_reminder", "--at", "2026-09-29 09:30", "--send", "--config", str(cfg)])
        assert code == 0 and "已发送：国庆" in capsys.readouterr().out
        # A poll since the last cursor repeats a minute of overlap; the page drops what it has shown.
        new = [p for p in sim.pushes(first["cursor"])["pushes"] if p["id"] not in shown]
        li = [p["text"] for p in new if p["member_id"] == sim.members["李红梅"]["id"]]
        assert len(li) == 1 and li[0].startswith("国庆将至") and "八项规定" in li[0]
        assert any(t.startswith("国庆将至") for t in sim.chat("王志强")) and sim.chat("赵卫东") == []  # bound; unbound

        # The monthly quiz push and a 政治生日 greeting (李红梅 joined 2005-06-18).
        runner = JobRunner(store, config)
        assert runner.run("monthly_quiz", datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI)).ran
        assert runner.run("birthday_greetings", datetime(2027, 6, 18, 8, 30, tzinfo=SHANGHAI)).ran
        drain(store, config)
        chat = sim.chat("李红梅")
        assert any("测试" in t for t in chat), chat
        assert any(
            (t.startswith("【") and "李红梅同志：今天是您入党 22 周年的政治生日" in t)
            or t.startswith("李红梅同志：今天是您入党 22 周年的政治生日")
            for t in chat
        ), chat
        assert not any("政治生日" in t for t in sim.chat("王志强"))

        # The member's page shows each push once: ids are unique across polls.
        ids = [p["id"] for p in sim.pushes()["pushes"]]
        assert len(ids) == len(set(ids))
        assert client.get("/simulator/api/pushes", params={"since": "yesterday"}).status_code == 400
        assert client.get("/simulator/api/pushes", params={"since": "2026-11-10T09:00:00"}).status_code == 400
    store.dispose()


def test_real_members_and_real_credentials_use_the_real_senders(tmp_path):
    with FakeWeChatApi() as api:
        cfg = demo_config(tmp_path)
        config = load_config(cfg, {})
        store = create_store(config.database.url)
        with TestClient(create_app(unhurried(config), store), **LOCAL) as client:
            sim = Simulator(client)
            sim.say("张建国", "绑定 张建国 0001")
            sim.say("王志强", "绑定 王志强 0003")
            sim.say("张建国", "通知 第一条。")
            sim.say("张建国", "确认")
            with store.session() as db:  # a real (not demo) member in the same branch
                wang = db.exec(select(Member).where(Member.name == "王志强")).one()
                wang.is_demo = False
                db.add(wang)
            drain(store, config)
            assert ("王志强", "failed", "wechat_kf", "未配置公众号 app_id / app_secret") in deliveries(store)
            assert not any(p["member_id"] == sim.members["王志强"]["id"] for p in sim.pushes()["pushes"])

        # Credentials set: the Official Account and WeCom senders, exactly as without the simulator.
        real = load_config(
            cfg,
            {
                "BRANCHBOT__WECHAT__APP_ID": "wx1234567890abcdef",
                "BRANCHBOT__WECHAT__APP_SECRET": "s" * 32,
                "BRANCHBOT__WECHAT__API_BASE": api.base,
                "BRANCHBOT__WECOM__CORP_ID": "ww1234567890",
                "BRANCHBOT__WECOM__SECRET": "w" * 32,
                "BRANCHBOT__WECOM__AGENT_ID": "1000002",
                "BRANCHBOT__WECOM__API_BASE": api.base,
            },
        )
        with TestClient(create_app(unhurried(real), store), **LOCAL) as client:
            sim = Simulator(client)
            before = len(sim.pushes()["pushes"])
            sim.say("张建国", "通知 第二条。")
            sim.say("张建国", "确认")
            drain(store, real)
            assert len(sim.pushes()["pushes"]) == before
        second = [row for row in deliveries(store)[-5:] if row[1] != "skipped"]  # the second notice: 5 members
        assert {(n, s, v) for n, s, v, _ in second} == {
            ("张建国", "sent", "wecom"),
            ("李红梅", "sent", "wecom"),
            ("王志强", "sent", "wechat_kf"),
        }
        assert api.times_delivered("lihongmei") == 1 and api.times_delivered(sim.members["王志强"]["openid"]) == 1
        store.dispose()


def test_no_demo_channel_without_the_simulator(tmp_path):
    cfg = demo_config(tmp_path)
    config = load_config(cfg, {"BRANCHBOT__SIMULATOR__ENABLED": "false"})
    store = create_store(config.database.url)
    with TestClient(create_app(unhurried(config), store), **LOCAL) as client:
        assert client.get("/simulator/api/pushes").status_code == 404
    runner = JobRunner(store, config)
    assert runner.run("holiday_reminder", datetime(2026, 9, 29, 9, 30, tzinfo=SHANGHAI)).ran
    drain(store, config)
    assert {v for _, _, v, _ in deliveries(store)} <= {"", "wechat_kf"}
    assert all(s in ("skipped", "failed") for _, s, _, _ in deliveries(store))
    store.dispose()
