"""The console in a real browser: Playwright driving Debian's chromium against a real
server on a loopback port. A secretary sends 后台 through the webhook, opens the link,
sees the dashboard's charts drawn (canvas pixels, not just elements), then works the
pages. Screenshots go to test-artifacts/console/ (gitignored)."""

from __future__ import annotations

import re
import shutil
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlmodel import select

from bot.app import create_app
from bot.console.dashboard import previous_months
from bot.store import Attempt, Member, Paper, create_store
from quizzes.points import attempt_finished
from tests.conftest import SHANGHAI, TOKEN, load_bank, load_roster, make_config, sha1_sorted, text_xml
from tests.support.net import bound_socket

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "console"
playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed (apt-get install chromium)")


def seed_scores(store, now: datetime) -> None:
    """Finished monthly attempts for this month and the past few, so the charts have data;
    and for next month, since the server reads the machine's clock: a run that crosses a
    month's end in Shanghai still finds the month it shows filled."""
    local = now.astimezone(SHANGHAI)
    next_month = (local.replace(day=28) + timedelta(days=4)).strftime("%Y-%m")
    with store.session() as db:
        members = db.exec(select(Member).order_by(Member.id)).all()
        for back, month in enumerate(reversed(previous_months(next_month, 5))):
            papers = {}
            for i, member in enumerate(members):
                if (i + back) % 3 == 2:
                    continue
                if member.branch_id not in papers:
                    paper = Paper(branch_id=member.branch_id, month=month, question_ids=[], created_at=now)
                    db.add(paper)
                    db.flush()
                    papers[member.branch_id] = paper
                score = 40 + (i * 10 + back * 20) % 70
                db.add(
                    Attempt(
                        member_id=member.id,
                        paper_id=papers[member.branch_id].id,
                        branch_id=member.branch_id,
                        month=month,
                        option_orders={},
                        score=score,
                        correct=score // 10,
                        started_at=now,
                        finished_at=now,
                    )
                )
                attempt_finished(db, month, member.branch_id, score)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("console-browser")
    sock = bound_socket()
    port = sock.getsockname()[1]
    config = make_config(tmp, BRANCHBOT__SERVER__PORT=str(port), BRANCHBOT__SCHEDULER__ENABLED="false")
    store = create_store(config.database.url)
    store.create_all()
    load_roster(store)
    load_bank(store)
    seed_scores(store, datetime.now(UTC))
    app = create_app(config, store)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + 120  # a bound on a hung start, not a speed check
    while not server.started:
        assert time.time() < deadline, "console test server did not start"
        time.sleep(0.02)
    yield {"base": f"http://127.0.0.1:{port}", "store": store, "config": config}
    server.should_exit = True
    thread.join(timeout=30)
    sock.close()
    store.dispose()


def say(server, openid: str, text: str, msg_id: int) -> str:
    """One message through the real webhook, signed as WeChat signs it."""
    ts, nonce = str(int(time.time())), str(msg_id)
    query = {"signature": sha1_sorted(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce, "openid": openid}
    body = text_xml(openid, text, int(ts), msg_id)
    response = httpx.post(f"{server['base']}/wechat", params=query, content=body.encode(), timeout=60)
    assert response.status_code == 200
    return re.search(r"<Content><!\[CDATA\[(.*?)\]\]></Content>", response.text, re.S).group(1)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


def login_link(server, openid: str, name: str, tail: str, first_id: int) -> str:
    assert "绑定成功" in say(server, openid, f"绑定 {name} {tail}", first_id)
    reply = say(server, openid, "后台", first_id + 1)
    return re.search(r"http://\S+/console/login\?token=\S+", reply).group(0)


def assert_charts_drawn(page) -> None:
    for name in ("bars", "trend", "scores"):
        page.wait_for_selector(f'[data-chart="{name}"][data-drawn]', timeout=120_000)  # ECharts' "finished" event
        coloured = page.evaluate(
            """(name) => {
            const canvas = document.querySelector(`[data-chart="${name}"] canvas`);
            const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            let red = 0;
            for (let i = 0; i < data.length; i += 4) {
                if (data[i + 3] > 200 && data[i] > 150 && data[i + 1] < 90 && data[i + 2] < 90) red++;
            }
            return red;
        }""",
            name,
        )
        assert coloured > 50, f"chart {name} drew no red pixels"


def test_secretary_opens_the_console_from_chat_and_works_it(server, browser, tmp_path):
    SHOTS.mkdir(parents=True, exist_ok=True)
    link = login_link(server, "o-wang", "王书记", "0001", 900_001)
    assert link.startswith(server["base"])
    desktop = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    desktop.set_default_timeout(120_000)  # bounds on waits, not timing checks: a busy machine is slow
    page = desktop.new_page()
    page.goto(link)
    assert page.url == f"{server['base']}/console/"
    assert "第一党支部" in page.text_content("h1")
    page.screenshot(path=str(SHOTS / "dashboard-1280.png"), full_page=True)
    assert_charts_drawn(page)
    assert "第二党支部" not in page.content()  # a secretary sees no other branch's name
    page.screenshot(path=str(SHOTS / "dashboard-1280.png"), full_page=True)
    # The same dashboard on a phone (375 px), in the same session.
    phone = browser.new_context(
        viewport={"width": 375, "height": 760},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        storage_state=desktop.storage_state(),
    )
    phone.set_default_timeout(120_000)
    mobile = phone.new_page()
    mobile.goto(f"{server['base']}/console/")
    assert_charts_drawn(mobile)
    assert mobile.evaluate("document.documentElement.scrollWidth") <= 375  # nothing sticks out sideways
    mobile.screenshot(path=str(SHOTS / "dashboard-375.png"), full_page=True)
    # The link was single-use.
    again = browser.new_page()
    again.set_default_timeout(120_000)
    again.goto(link)
    assert "已使用" in again.text_content("h1")
    again.close()
    phone.close()

    # 名册: a file with a bad row shows the error table and imports nothing; the corrected file imports.
    head = "姓名,手机号,支部,入党日期,角色,微信OpenID,企业微信账号\n"
    rows = [
        "王书记,13900000001,第一党支部,1999-07-01,书记,,wangshuji",
        "李明,13900000002,第一党支部,2008-06-18,党员,,liming",
        "赵敏,13900000003,第一党支部,2012-11-08,党员,,",
        "钱进,13900000004,第一党支部,2016-02-29,党员,,",
        "张伟,13900001234,第一党支部,2018-05-04,党员,,",
        "刘强,13933332222,第一党支部,2013-12-01,党员,,",
    ]
    bad = tmp_path / "名册-有错.csv"
    bad.write_text(head + "\n".join(rows + ["新同志,1390000009,第一党支部,2020-07-01,党员,,"]) + "\n", encoding="utf-8")
    good = tmp_path / "名册.csv"
    good.write_text(
        head + "\n".join(rows + ["新同志,13900000099,第一党支部,2020-07-01,党员,,"]) + "\n", encoding="utf-8"
    )
    page.click("nav >> text=名册")
    page.wait_for_selector("input[name=file]")
    page.set_input_files("input[name=file]", str(bad))
    page.click("button:has-text(\"检查并预览\")")
    page.wait_for_selector("#problems")
    assert "未导入任何内容" in page.text_content("main")
    assert "不是 11 位手机号" in page.text_content("#problems")
    page.screenshot(path=str(SHOTS / "roster-error-1280.png"), full_page=True)
    with server["store"].session() as db:
        assert db.exec(select(Member).where(Member.name == "新同志")).first() is None
    page.click("text=返回名册")
    page.wait_for_selector("input[name=file]")
    page.set_input_files("input[name=file]", str(good))
    page.click("button:has-text(\"检查并预览\")")
    page.wait_for_selector("#preview")
    assert "新增 1 人：新同志" in page.text_content("#preview")
    page.click("button:has-text(\"确认导入\")")
    page.wait_for_selector("#done")
    assert "新增 1 人" in page.text_content("#done")
    with server["store"].session() as db:
        assert db.exec(select(Member).where(Member.name == "新同志")).one().status == "在册"

    # 通知: compose, see the recipient count (htmx), confirm, and land on the delivery report.
    page.click("nav >> text=通知")
    page.wait_for_selector("textarea[name=text]")
    page.fill("textarea[name=text]", "本周五下午三点在三楼会议室集中学习。")
    page.click("button:has-text(\"预览收件人\")")
    page.wait_for_selector("#notice-preview")
    assert page.text_content("#recipient-count") == "7"
    page.click("button:has-text(\"确认发送\")")
    page.wait_for_selector("#report")
    assert "共 7 人" in page.text_content("#report")
    assert "本周五下午三点" in page.text_content("#report")
    page.screenshot(path=str(SHOTS / "notice-report-1280.png"), full_page=True)
    desktop.close()
