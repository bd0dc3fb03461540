"""Two `branchbot serve` processes on one database (SQLite, and PostgreSQL when
BRANCHBOT_TEST_PG_URL is set): a retried message is processed once whichever instance
gets each retry, and a due job runs once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import text

from bot.store import create_store
from tests.conftest import SHANGHAI, TOKEN, sha1_sorted, text_xml, wait_healthy
from tests.support.net import free_port

ROOT = Path(__file__).resolve().parent.parent


def quiz_day_behind(today: date) -> int:
    """A monthly quiz day whose latest occurrence is 2 to 5 days before ``today``: start-up
    catch-up finds exactly one due run, and none falls due while the test runs, whatever
    the date (a fixed day 1 would fire mid-test on the 1st at 09:00)."""
    back = today - timedelta(days=2)
    return min(back.day, 28)


def test_quiz_day_behind_is_two_to_five_days_back_on_any_date():
    for today in (date(2026, 12, 1), date(2026, 12, 2), date(2026, 3, 3), date(2026, 12, 31), date(2028, 3, 1)):
        day = quiz_day_behind(today)
        back = today - timedelta(days=2)
        latest = back.replace(day=day)
        assert 2 <= (today - latest).days <= 5 and 1 <= day <= 28, today


def test_two_instances_process_a_retry_once_and_run_a_job_once(tmp_path, database_url):
    cfg = tmp_path / "config.toml"
    day = quiz_day_behind(datetime.now(SHANGHAI).date())
    cfg.write_text(
        f'[database]\nurl = "{database_url}"\n[wechat]\ntoken = "{TOKEN}"\nreply_budget_ms = 4500\n'
        f"[scheduler]\nmonthly_quiz_day = {day}\ndefault_misfire_grace = 4000000\n",
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env = {k: v for k, v in env.items() if not k.startswith("BRANCHBOT__")}
    subprocess.run(
        [sys.executable, "-m", "bot.cli", "init", "--demo", "--config", str(cfg)],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    ports = [free_port(), free_port()]
    servers = [
        subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--config", str(cfg)],
            env={**env, "BRANCHBOT__SERVER__PORT": str(port)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        for port, server in zip(ports, servers):
            wait_healthy(port, server)
        ts, nonce = str(int(time.time())), "42"
        query = f"signature={sha1_sorted(TOKEN, ts, nonce)}&timestamp={ts}&nonce={nonce}"
        bind = text_xml("o-both", "绑定 李红梅 0002", int(ts), 555000111)
        # Four deliveries of one message, spread over both instances at once.
        with ThreadPoolExecutor(4) as pool:
            replies = list(
                pool.map(
                    lambda i: httpx.post(
                        f"http://127.0.0.1:{ports[i % 2]}/wechat?{query}", content=bind.encode(), timeout=10
                    ),
                    range(4),
                )
            )
        assert all(r.status_code == 200 for r in replies)
        assert all("绑定成功" in r.text for r in replies), [r.text for r in replies]
        store = create_store(database_url)
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM processedmessage")).scalar() == 1
            assert conn.execute(text("SELECT COUNT(*) FROM bindattempt")).scalar() == 1
            # Both instances caught up the month's quiz at start-up; it ran once.
            runs = conn.execute(text("SELECT COUNT(*) FROM jobrun WHERE job = 'monthly_quiz'")).scalar()
            campaigns = conn.execute(text("SELECT COUNT(*) FROM campaign WHERE kind = 'monthly_quiz'")).scalar()
        assert runs == 1 and campaigns == 3
        store.dispose()
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=20)


def test_serve_with_two_workers_shares_one_sqlite_database(tmp_path):
    """`serve --workers 2` on SQLite: members writing at once through both processes all get
    real replies (writers queue on the file lock instead of failing "database is locked"),
    and every message and answer is recorded once."""
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        # The longest reply budget the config allows: eight members write at once through
        # one SQLite file, and a busy machine must not turn a queued reply into a deferral.
        f'[database]\nurl = "sqlite:///bot.db"\n[wechat]\ntoken = "{TOKEN}"\nreply_budget_ms = 4500\n'
        "[scheduler]\nenabled = false\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in {**os.environ, "PYTHONPATH": str(ROOT)}.items() if not k.startswith("BRANCHBOT__")}
    subprocess.run(
        [sys.executable, "-m", "bot.cli", "init", "--demo", "--config", str(cfg)],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--workers", "2", "--config", str(cfg)],
        env={**env, "BRANCHBOT__SERVER__PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    members = [
        ("李红梅", "0002"),
        ("王志强", "0003"),
        ("刘晓燕", "0004"),
        ("陈立新", "0005"),
        ("孙丽娟", "0012"),
        ("周海涛", "0013"),
        ("吴晓明", "0014"),
        ("郑秀兰", "0021"),
    ]
    msg_ids = iter(range(900_000, 999_999))

    def converse(index: int) -> list[str]:
        name, tail = members[index]
        openid = f"o-worker-{index}"
        replies = []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
            for text_ in [f"绑定 {name} {tail}", "答题", "A", "B", "对", "积分"]:
                ts, nonce = str(int(time.time())), f"{index}{len(replies)}"  # fresh per message, as WeChat sends
                query = f"signature={sha1_sorted(TOKEN, ts, nonce)}&timestamp={ts}&nonce={nonce}"
                body = text_xml(openid, text_, int(ts), next(msg_ids))
                replies.append(client.post(f"/wechat?{query}", content=body.encode()).text)
        return replies

    try:
        wait_healthy(port, server)
        with ThreadPoolExecutor(len(members)) as pool:
            conversations = list(pool.map(converse, range(len(members))))
        for replies in conversations:
            assert "绑定成功" in replies[0], replies[0]
            assert "测试共" in replies[1], replies[1]
            assert not any("系统暂时繁忙" in r or r == "success" for r in replies), replies
        store = create_store(f"sqlite:///{tmp_path / 'bot.db'}")
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM processedmessage")).scalar() == 6 * len(members)
            assert conn.execute(text("SELECT COUNT(DISTINCT member_id) FROM attempt")).scalar() == len(members)
        store.dispose()
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
    assert "database is locked" not in errors, errors[-2000:]
    assert len(set(re.findall(r"Started server process \[(\d+)\]", errors))) == 2, errors[-2000:]
