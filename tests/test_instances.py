"""Two `branchbot serve` processes on one database (SQLite, and PostgreSQL when
BRANCHBOT_TEST_PG_URL is set): a retried message is processed once whichever instance
gets each retry, and a due job runs once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlalchemy import text

from bot.store import create_store
from tests.conftest import TOKEN, sha1_sorted, text_xml

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_instances_process_a_retry_once_and_run_a_job_once(tmp_path, database_url):
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[database]\nurl = "{database_url}"\n[wechat]\ntoken = "{TOKEN}"\n'
                   '[scheduler]\nmonthly_quiz_day = 1\ndefault_misfire_grace = 4000000\n', encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env = {k: v for k, v in env.items() if not k.startswith("BRANCHBOT__")}
    subprocess.run([sys.executable, "-m", "bot.cli", "init", "--demo", "--config", str(cfg)], env=env, check=True,
                   capture_output=True, timeout=120)
    ports = [free_port(), free_port()]
    servers = [subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--config", str(cfg)],
                                env={**env, "BRANCHBOT__SERVER__PORT": str(port)},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for port in ports]
    try:
        deadline = time.time() + 60
        for port in ports:
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.time() < deadline, "servers did not start"
                time.sleep(0.2)
        ts, nonce = str(int(time.time())), "42"
        query = f"signature={sha1_sorted(TOKEN, ts, nonce)}&timestamp={ts}&nonce={nonce}"
        bind = text_xml("o-both", "绑定 李红梅 0002", int(ts), 555000111)
        # Four deliveries of one message, spread over both instances at once.
        with ThreadPoolExecutor(4) as pool:
            replies = list(pool.map(lambda i: httpx.post(f"http://127.0.0.1:{ports[i % 2]}/wechat?{query}",
                                                         content=bind.encode(), timeout=10), range(4)))
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
