"""The demo loop in a real browser: a secretary's 通知 → 确认 on the simulator page reaches
another demo member's chat, marked 推送. Runs where Playwright and Debian's chromium are
installed; tests/test_demo_channel.py covers the same path through the HTTP API."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import wait_healthy
from tests.support.net import free_port

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed")
ROOT = Path(__file__).resolve().parent.parent


def test_notice_arrives_in_the_members_simulator_chat(tmp_path):
    port = free_port()
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[server]\nport = {port}\n[database]\nurl = "sqlite:///{tmp_path / "demo.db"}"\n'
        # The longest reply budget the config allows: a busy machine must not turn a reply into a late push.
        '[wechat]\ntoken = "branchbotdemo"\nreply_budget_ms = 4500\n[simulator]\nenabled = true\n[outbox]\npoll_seconds = 0.2\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRANCHBOT__")} | {"PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-m", "bot.cli", "init", "--demo", "--config", str(cfg)],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--config", str(cfg)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_healthy(port, server, log=log)
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page()
            page.set_default_timeout(120_000)  # bounds on waits, not timing checks: a busy machine is slow
            page.goto(f"http://127.0.0.1:{port}/")

            def say(text: str) -> None:
                page.fill("#input", text)
                page.press("#input", "Enter")
                page.wait_for_function("!document.getElementById('send').disabled", timeout=120_000)

            page.locator(".member", has_text="张建国").click()
            say("绑定 张建国 0001")
            say("通知 今晚七点在党员活动室集中学习。")
            say("确认")
            assert "已发送，通知编号" in page.locator(".msg.bot .bubble").last.inner_text()
            # The unread dot appears on 李红梅 without switching to her; her chat shows the push.
            page.locator(".member", has_text="李红梅").locator(".unread").wait_for(timeout=120_000)
            page.locator(".member", has_text="李红梅").click()
            # Select the notice: on some dates the scheduler's own pushes (the monthly quiz on the 1st) arrive too.
            push = page.locator(".msg.push .bubble", has_text="今晚七点在党员活动室集中学习")
            push.wait_for(timeout=120_000)  # bounds on waits, not timing checks
            assert push.count() == 1
            assert "推送" in page.evaluate("getComputedStyle(document.querySelector('.push-tag'), '::before').content")
            assert push.inner_text().endswith("今晚七点在党员活动室集中学习。")
            # Polling again (switching back and forth) does not show it twice.
            page.locator(".member", has_text="王志强").click()
            page.locator(".member", has_text="李红梅").click()
            assert page.locator(".msg.push .bubble", has_text="今晚七点在党员活动室集中学习").count() == 1
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=15)
