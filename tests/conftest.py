"""Shared fixtures: a configured app on a temp database, and WeChat/WeCom clients that
sign (and encrypt) requests the way the platforms do, using wechatpy."""

from __future__ import annotations

import os

os.environ["COLUMNS"] = "200"  # keep rich tables and errors on one line in captured output

import hashlib
import itertools
import random
import re
import string
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, settings
from sqlmodel import select
from starlette.testclient import TestClient
from wechatpy.crypto import WeChatCrypto

from bot.app import create_app
from bot.config import Config, load_config
from bot.roster import check_file as check_roster
from bot.roster import import_members
from bot.store import Question, Store, create_store
from quizzes.bank import LETTERS, bundled_files, import_questions
from quizzes.bank import check_file as check_questions
from tests.support.chat import bind

# Hypothesis times examples and their generation by the wall clock; a busy machine is no
# finding. Files that set their own settings list these health checks too.
settings.register_profile("branchbot", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("branchbot")

DATA = Path(__file__).parent / "data"
SHANGHAI = ZoneInfo("Asia/Shanghai")
TOKEN = "testtoken123"
APP_ID = "wx1234567890abcdef"
CORP_ID = "ww0123456789abcdef"
WECOM_TOKEN = "wecomtoken42"


def random_aes_key() -> str:
    return "".join(random.choice(string.ascii_letters + string.digits) for _ in range(43))


class FakeClock:
    """The app's clock, moved by tests (time is UTC inside, shown in Shanghai)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)

    def set_local(self, *args: int) -> None:
        self.now = datetime(*args, tzinfo=SHANGHAI).astimezone(UTC)


PG_URL = os.environ.get("BRANCHBOT_TEST_PG_URL", "")
RUN_DATABASE_PREFIX = "branchbot_test_"


@pytest.fixture(scope="session")
def pg_run_url():
    """A PostgreSQL database of this run's own, created beside the one BRANCHBOT_TEST_PG_URL
    names and dropped at the end: two runs at once (two worktrees, CI beside a developer)
    share no schema and no advisory lock, which PostgreSQL scopes to a database. Databases
    left by runs that were killed (their process is gone) are dropped on the way in."""
    if not PG_URL:
        yield ""
        return
    from uuid import uuid4

    from sqlalchemy import create_engine, make_url, text

    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"{RUN_DATABASE_PREFIX}{os.getpid()}_{uuid4().hex[:8]}"
    with admin.connect() as conn:
        for (stale,) in conn.execute(
            text("SELECT datname FROM pg_database WHERE datname LIKE :prefix"), {"prefix": f"{RUN_DATABASE_PREFIX}%"}
        ):
            if not _process_alive(int(stale.removeprefix(RUN_DATABASE_PREFIX).split("_")[0])):
                conn.execute(text(f'DROP DATABASE IF EXISTS "{stale}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path: Path, pg_run_url: str):
    """Each test runs on SQLite and, where BRANCHBOT_TEST_PG_URL is set, on PostgreSQL in
    a schema of its own (inside this run's own database), so tests and runs never interfere."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    if not PG_URL:
        pytest.skip(
            "PostgreSQL run skipped: set BRANCHBOT_TEST_PG_URL, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test"
        )
    from uuid import uuid4

    from sqlalchemy import create_engine, text

    schema = f"t_{uuid4().hex[:16]}"
    admin = create_engine(pg_run_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{pg_run_url}{'&' if '?' in pg_run_url else '?'}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def make_config(tmp_path: Path, database_url: str | None = None, **env: str) -> Config:
    environ = {
        "BRANCHBOT__DATABASE__URL": database_url or f"sqlite:///{tmp_path / 'test.db'}",
        "BRANCHBOT__WECHAT__TOKEN": TOKEN,
        "BRANCHBOT__WECHAT__APP_ID": APP_ID,
    }
    environ.update(env)
    empty = tmp_path / "empty-config.toml"  # never the repository's own config.toml
    empty.write_text("", encoding="utf-8")
    config = load_config(empty, environ)
    return config if "BRANCHBOT__WECHAT__REPLY_BUDGET_MS" in env else unhurried(config)


def unhurried(config: Config) -> Config:
    """No reply is deferred, however busy the machine: the reply budget is a wall-clock race
    (3 s by default), so a test that is not about it would otherwise see an empty answer
    whenever a handler is slow. Tests about the budget set BRANCHBOT__WECHAT__REPLY_BUDGET_MS
    and hold the handler instead. (Set past the 4.5 s the config file allows: tests only.)"""
    config.wechat.reply_budget_ms = 3_600_000
    return config


def load_bank(store: Store, path: Path | None = None) -> None:
    files = [path] if path else bundled_files()
    with store.session() as db:
        for file in files:
            checked = check_questions(file)
            assert checked.ok, checked.errors[:3]
            import_questions(db, checked.questions)


def load_roster(store: Store, path: Path = DATA / "roster.csv") -> None:
    checked = check_roster(path, datetime(2030, 1, 1).date())
    assert not checked.errors, checked.errors
    with store.session() as db:
        result = import_members(db, checked.members, path.name)
        assert not result.conflicts


@dataclass
class Env:
    config: Config
    store: Store
    clock: FakeClock
    client: TestClient
    aes_key: str = ""
    msg_ids: Any = field(default_factory=lambda: itertools.count(10_000_000_001))

    def wechat(self, openid: str, mode: str | None = None) -> WechatUser:
        return WechatUser(self, openid, mode or self.config.wechat.mode)

    def count(self, model: Any) -> int:
        with self.store.session() as db:
            return len(db.exec(select(model)).all())


@pytest.fixture
def no_env_overrides(monkeypatch) -> None:
    """CLI tests read only their own config file, whatever BRANCHBOT__* the shell has."""
    for name in list(os.environ):
        if name.startswith("BRANCHBOT__"):
            monkeypatch.delenv(name)


@pytest.fixture
def clock() -> FakeClock:
    c = FakeClock(datetime(2026, 11, 10, 9, 0, tzinfo=SHANGHAI).astimezone(UTC))
    return c


def build_env(
    tmp_path: Path,
    clock: FakeClock,
    bank: Path | None = DATA / "questions.csv",
    database_url: str | None = None,
    **env: str,
) -> Env:
    config = make_config(tmp_path, database_url, **env)
    store = create_store(config.database.url)
    store.create_all()
    load_roster(store)
    if bank is not None:
        load_bank(store, bank)
    app = create_app(config, store, clock)
    return Env(config, store, clock, TestClient(app), config.wechat.encoding_aes_key)


@pytest.fixture
def env(tmp_path: Path, clock: FakeClock, database_url: str):
    e = build_env(tmp_path, clock, database_url=database_url)
    with e.client:
        yield e
    e.store.dispose()


@pytest.fixture
def safe_env(tmp_path: Path, clock: FakeClock, database_url: str):
    e = build_env(
        tmp_path,
        clock,
        database_url=database_url,
        BRANCHBOT__WECHAT__MODE="safe",
        BRANCHBOT__WECHAT__ENCODING_AES_KEY=random_aes_key(),
    )
    with e.client:
        yield e
    e.store.dispose()


@pytest.fixture
def people(env):
    """王书记 (第一党支部 secretary), 孙书记 (第二), 吴管理 (admin), 李明 and 赵敏 (members of 第一)."""
    return {
        "wang": bind(env, "o-wang", "王书记", "0001"),
        "sun": bind(env, "o-sun", "孙书记", "0011"),
        "wu": bind(env, "o-wu", "吴管理", "0021"),
        "li": bind(env, "o-li", "李明", "0002"),
        "zhao": bind(env, "o-zhao", "赵敏", "0003"),
    }


@pytest.fixture(scope="module")
def fuzz_env(tmp_path_factory):
    """One app in compatible mode for a whole module: hypothesis runs many examples per test,
    and a fresh database for each would make the hostile-input files slow."""
    from datetime import datetime

    from tests.conftest import FakeClock

    clock = FakeClock(datetime(2026, 11, 10, 1, 0, tzinfo=UTC))
    env = build_env(
        tmp_path_factory.mktemp("fuzz"),
        clock,
        BRANCHBOT__WECHAT__MODE="compatible",
        BRANCHBOT__WECHAT__ENCODING_AES_KEY=random_aes_key(),
    )
    with env.client:
        yield env


def sha1_sorted(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def text_xml(openid: str, content: str, created: int, msg_id: int) -> str:
    return (
        f"<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content.replace(']]>', ']]]]><![CDATA[>')}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    )


def event_xml(openid: str, event: str, created: int, key: str = "") -> str:
    extra = f"<EventKey><![CDATA[{key}]]></EventKey>" if key else ""
    return (
        f"<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[{event}]]></Event>{extra}</xml>"
    )


def scan_xml(openid: str, now: int, result: str, event: str = "scancode_waitmsg") -> str:
    return (
        f"<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{now}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>"
        f"<EventKey><![CDATA[CHECKIN_SCAN]]></EventKey><ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType>"
        f"<ScanResult><![CDATA[{result}]]></ScanResult></ScanCodeInfo></xml>"
    )


@dataclass
class Signed:
    query: str
    body: str

    @property
    def url(self) -> str:
        return f"/wechat?{self.query}"


@dataclass
class WechatUser:
    env: Env
    openid: str
    mode: str

    def sign(self, xml: str, timestamp: int | None = None, nonce: str | None = None) -> Signed:
        # A fresh nonce per request, as WeChat does: a nonce reused with another body
        # inside the replay window is refused as a replay in plain mode.
        nonce = nonce or str(random.randrange(10**9, 10**10))
        ts = str(int(self.env.clock().timestamp()) if timestamp is None else timestamp)
        params = {"signature": sha1_sorted(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce, "openid": self.openid}
        if self.mode == "plain":
            return Signed(urlencode(params), xml)
        crypto = WeChatCrypto(TOKEN, self.env.aes_key, APP_ID)
        envelope = crypto.encrypt_message(xml, nonce, ts)
        encrypted = re.search(r"<Encrypt><!\[CDATA\[(.*?)\]\]></Encrypt>", envelope).group(1)
        params.update(encrypt_type="aes", msg_signature=sha1_sorted(TOKEN, ts, nonce, encrypted))
        return Signed(urlencode(params), envelope)

    def text_request(self, content: str, msg_id: int | None = None) -> Signed:
        created = int(self.env.clock().timestamp())
        return self.sign(text_xml(self.openid, content, created, msg_id or next(self.env.msg_ids)))

    def post(self, signed: Signed) -> Any:
        return self.env.client.post(signed.url, content=signed.body.encode(), headers={"Content-Type": "text/xml"})

    def reply_text(self, body: str) -> str:
        if body in ("success", ""):
            return ""
        if self.mode != "plain" and "<Encrypt>" in body:
            crypto = WeChatCrypto(TOKEN, self.env.aes_key, APP_ID)
            sig = re.search(r"<MsgSignature><!\[CDATA\[(.*?)\]\]>", body).group(1)
            ts = re.search(r"<TimeStamp>(\d+)</TimeStamp>", body).group(1)
            nonce = re.search(r"<Nonce><!\[CDATA\[(.*?)\]\]>", body).group(1)
            body = crypto.decrypt_message(body, sig, ts, nonce)
        import xmltodict

        return xmltodict.parse(body)["xml"].get("Content") or ""

    def say(self, content: str) -> str:
        response = self.post(self.text_request(content))
        assert response.status_code == 200, response.text
        return self.reply_text(response.text)

    def event(self, event: str, key: str = "") -> str:
        created = int(self.env.clock().timestamp())
        response = self.post(self.sign(event_xml(self.openid, event, created, key)))
        assert response.status_code == 200, response.text
        return self.reply_text(response.text)


def correct_letters(store: Store, reply: str) -> str:
    """Read the question shown at the end of a reply and work out the right letters
    from the store's answer key (by option text, since letters are shuffled)."""
    block = reply.split("\n\n")[-1]
    lines = block.splitlines()
    header = next(i for i, line in enumerate(lines) if re.search(r"（(单选|多选|判断)）$", line))
    stem = lines[header + 1]
    with store.session() as db:
        question = db.exec(select(Question).where(Question.stem == stem)).one()
    texts = {o["id"]: o["text"] for o in question.options}
    if question.kind == "判断":
        return texts[question.answer[0]]
    shown = {m.group(2): m.group(1) for m in (re.match(r"([A-F])\. (.*)", l) for l in lines) if m}
    return "".join(sorted(shown[texts[oid]] for oid in question.answer))


def wrong_letters(store: Store, reply: str) -> str:
    right = correct_letters(store, reply)
    if right in ("对", "错"):
        return "错" if right == "对" else "对"
    other = next(ch for ch in LETTERS[:4] if ch not in right)
    return "".join(sorted(right[0] + other)) if len(right) > 1 else other  # a multiple choice needs two letters


def wait_healthy(
    port: int, process: subprocess.Popen | None = None, seconds: float = 300, log: Path | None = None
) -> None:
    """Wait for a `branchbot serve` subprocess to answer /healthz (failing early if it exits).
    The bound only stops a hung start: a loaded machine may take a while to import and migrate."""
    import time

    import httpx

    deadline = time.time() + seconds
    while True:
        if process is not None and process.poll() is not None:
            raise AssertionError("serve exited" + (f":\n{log.read_text(errors='replace')[-3000:]}" if log else ""))
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.time() < deadline, "serve did not start"
        time.sleep(0.1)
