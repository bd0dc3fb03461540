"""管理后台 logins: the 后台 link's life cycle, sessions, CSRF, WeCom OAuth2, and who may
use the console at all (read from the store on every request)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

from sqlmodel import select

from bot.auth import MAX_FAILURES, digest
from bot.store.models import AuditEntry, ConsoleLoginFailure, ConsoleLoginToken, ConsoleSession
from tests.conftest import CORP_ID, build_env
from tests.support.chat import bind
from tests.support.console import client_for, csrf_of, link_token, set_member
from tests.support.fake_wechat_api import FakeWeChatApi


def audit(env, action: str) -> list[AuditEntry]:
    with env.store.session() as db:
        return list(db.exec(select(AuditEntry).where(AuditEntry.action == action)).all())


def test_link_from_chat_opens_a_session_once(env):
    wang = bind(env, "o-wang", "王书记", "0001")
    reply = wang.say("后台")
    url = re.search(r"(http://127\.0\.0\.1:8000/console/login\?token=)(\S+)", reply)
    assert url, reply
    token = url.group(2)
    assert len(token) >= 22  # ≥ 128 bits, URL-safe base64
    with env.store.session() as db:
        stored = db.exec(select(ConsoleLoginToken)).all()
        assert [t.token_hash for t in stored] == [digest(token)]  # only the hash is kept
        assert token not in str([t.model_dump() for t in stored])
    browser = client_for(env, None)
    first = browser.get(f"/console/login?token={token}", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/console/"
    cookie = first.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie  # http base_url
    page = browser.get("/console/")
    assert page.status_code == 200 and "王书记" in page.text and "第一党支部" in page.text
    # The same link again, in another browser: used.
    again = client_for(env, None).get(f"/console/login?token={token}", follow_redirects=False)
    assert again.status_code == 400 and "已使用" in again.text and "set-cookie" not in again.headers


def test_expired_and_unknown_links_get_a_clear_page_and_no_session(env):
    token = link_token(env, "王书记")
    env.clock.advance(minutes=10, seconds=1)
    browser = client_for(env, None)
    expired = browser.get(f"/console/login?token={token}", follow_redirects=False)
    assert expired.status_code == 400 and "已过期" in expired.text and "set-cookie" not in expired.headers
    unknown = browser.get("/console/login?token=" + "x" * 43, follow_redirects=False)
    assert unknown.status_code == 400 and "无效" in unknown.text
    assert browser.get("/console/", follow_redirects=False).headers["location"] == "/console/welcome"
    with env.store.session() as db:
        assert db.exec(select(ConsoleSession)).all() == []


def test_failed_token_lookups_are_limited_per_client(env):
    browser = client_for(env, None)
    for i in range(MAX_FAILURES):
        assert browser.get(f"/console/login?token={f'guess{i:02d}'}{'y' * 30}").status_code == 400
    good = link_token(env, "王书记")
    locked = browser.get(f"/console/login?token={good}", follow_redirects=False)
    assert locked.status_code == 429 and "次数过多" in locked.text
    env.clock.advance(minutes=16)  # the window has passed (the first link has expired too)
    fresh = link_token(env, "王书记")
    assert browser.get(f"/console/login?token={fresh}", follow_redirects=False).status_code == 303


def test_plain_members_are_refused_politely_and_audited(env):
    li = bind(env, "o-li", "李明", "0002")
    reply = li.say("后台")
    assert "仅限支部书记和管理员" in reply and "token" not in reply
    assert any("后台" in e.detail for e in audit(env, "拒绝"))
    with env.store.session() as db:
        assert db.exec(select(ConsoleLoginToken)).all() == []


def test_session_idle_absolute_and_logout(env):
    browser = client_for(env, "王书记")
    env.clock.advance(minutes=29)
    assert browser.get("/console/").status_code == 200  # activity keeps it alive
    env.clock.advance(minutes=31)
    assert browser.get("/console/", follow_redirects=False).status_code == 303  # idle 30 min
    browser = client_for(env, "王书记")
    for _ in range(17):  # busy all day: still ends 8 hours after login
        env.clock.advance(minutes=29)
        browser.get("/console/")
    assert browser.get("/console/", follow_redirects=False).status_code == 303
    browser = client_for(env, "王书记")
    cookie = browser.cookies.get("branchbot_console")
    assert browser.post("/console/logout", data={"csrf": csrf_of(browser)}).status_code == 200
    # The old cookie replayed after 退出 opens nothing: the session ended server-side.
    replay = client_for(env, None)
    replay.cookies.set("branchbot_console", cookie, path="/console")
    assert replay.get("/console/", follow_redirects=False).status_code == 303


def test_secure_cookie_when_base_url_is_https(tmp_path, clock):
    env = build_env(tmp_path, clock, BRANCHBOT__CONSOLE__BASE_URL="https://dangjian.example.cn/")
    with env.client:
        wang = bind(env, "o-wang", "王书记", "0001")
        assert "https://dangjian.example.cn/console/login?token=" in wang.say("后台")
        response = client_for(env, None).get(
            f"/console/login?token={link_token(env, '王书记')}", follow_redirects=False
        )
        assert "Secure" in response.headers["set-cookie"]
    env.store.dispose()


def test_post_without_csrf_is_refused_and_changes_nothing(env):
    browser = client_for(env, "王书记")
    assert browser.post("/console/logout").status_code == 403
    assert browser.post("/console/logout", data={"csrf": "forged"}).status_code == 403
    assert browser.get("/console/").status_code == 200  # still logged in: nothing changed


def test_demotion_or_transfer_ends_access_at_once(env):
    browser = client_for(env, "王书记")
    assert browser.get("/console/").status_code == 200
    set_member(env, "王书记", role="党员")
    refused = browser.get("/console/")
    assert refused.status_code == 403 and "没有权限" in refused.text
    set_member(env, "王书记", role="书记")
    assert browser.get("/console/", follow_redirects=False).status_code == 303  # that session is over
    browser = client_for(env, "王书记")
    set_member(env, "王书记", status="已转出")
    assert browser.get("/console/").status_code == 403
    # A link issued before the transfer opens nothing either.
    set_member(env, "王书记", status="在册")
    token = link_token(env, "王书记")
    set_member(env, "王书记", status="已转出")
    assert client_for(env, None).get(f"/console/login?token={token}").status_code == 403


def test_console_can_be_turned_off(tmp_path, clock):
    env = build_env(tmp_path, clock, BRANCHBOT__CONSOLE__ENABLED="false")
    with env.client:
        assert env.client.get("/console/").status_code == 404
        assert "未启用" in bind(env, "o-wang", "王书记", "0001").say("后台")
    env.store.dispose()


def test_wecom_oauth_login_against_the_fake_api(tmp_path, clock):
    with FakeWeChatApi() as api:
        env = build_env(
            tmp_path,
            clock,
            BRANCHBOT__WECOM__CORP_ID=CORP_ID,
            BRANCHBOT__WECOM__AGENT_ID="1000002",
            BRANCHBOT__WECOM__SECRET="s3cret",
            BRANCHBOT__WECOM__API_BASE=api.base,
        )
        with env.client:
            browser = client_for(env, None)
            inside = browser.get(
                "/console/welcome",
                headers={"User-Agent": "Mozilla/5.0 wxwork/4.1 MicroMessenger"},
                follow_redirects=False,
            )
            assert inside.headers["location"] == "/console/oauth/start"
            start = browser.get("/console/oauth/start", follow_redirects=False)
            target = urlparse(start.headers["location"])
            query = parse_qs(target.query)
            assert target.netloc == "open.weixin.qq.com" and target.path == "/connect/oauth2/authorize"
            assert query["scope"] == ["snsapi_base"] and query["appid"] == [CORP_ID] and query["agentid"] == ["1000002"]
            assert query["redirect_uri"] == ["http://127.0.0.1:8000/console/oauth/callback"]
            assert start.headers["location"].endswith("#wechat_redirect")
            state = query["state"][0]
            # WeCom sends the browser back with a code; a forged state is refused.
            api.state.oauth_codes["code-1"] = "wangshuji"
            forged = browser.get("/console/oauth/callback?code=code-1&state=other", follow_redirects=False)
            assert forged.status_code == 400
            done = browser.get(f"/console/oauth/callback?code=code-1&state={state}", follow_redirects=False)
            assert done.status_code == 303, done.text
            assert "王书记" in browser.get("/console/").text
            assert api.state.calls["getuserinfo"] == 2 - 1  # the forged one never reached WeCom
            # A plain member's WeCom account (李明 is liming) gets no session.
            other = client_for(env, None)
            other.get("/console/oauth/start", follow_redirects=False)
            state = other.cookies.get("branchbot_console_state")
            set_member(env, "李明", wecom_userid="liming")
            api.state.oauth_codes["code-2"] = "liming"
            refused = other.get(f"/console/oauth/callback?code=code-2&state={state}", follow_redirects=False)
            assert refused.status_code == 403 and "没有权限" in refused.text
            assert other.get("/console/", follow_redirects=False).status_code == 303
            # A code WeCom never issued is refused and counts against the attempt limit.
            unknown = other.get(f"/console/oauth/callback?code=forged&state={state}", follow_redirects=False)
            assert unknown.status_code == 400 and "branchbot_console=" not in unknown.headers.get("set-cookie", "")
            with env.store.session() as db:
                assert len(db.exec(select(ConsoleLoginFailure)).all()) == 1
        env.store.dispose()


def test_the_link_is_shown_once_and_never_stored_in_clear(env):
    """The token is stored only as a hash: not in the recorded reply that answers WeChat's
    retries either. A retry of the 后台 message gets a hint to ask again, not the link."""
    from bot.store.models import ProcessedMessage

    bind(env, "o-wang", "王书记", "0001")
    wang = env.wechat("o-wang")
    signed = wang.text_request("后台")
    first = wang.reply_text(wang.post(signed).text)
    token = re.search(r"/console/login\?token=(\S+)", first).group(1)
    retry = wang.reply_text(wang.post(signed).text)  # WeChat resends the very same request
    assert token not in retry and "请重新发送「后台」" in retry and "\x02" not in first + retry
    with env.store.session() as db:
        recorded = [m.reply for m in db.exec(select(ProcessedMessage)).all()]
    assert recorded and not any(token in r for r in recorded)
    # The retry did not issue a second link, and the first still opens the console once.
    with env.store.session() as db:
        assert len(db.exec(select(ConsoleLoginToken)).all()) == 1
    opened = client_for(env, None).get(f"/console/login?token={token}", follow_redirects=False)
    assert opened.status_code == 303


def test_a_late_link_reply_pushes_the_hint_not_the_link(tmp_path, clock):
    """A 后台 reply that overruns WeChat's deadline follows through the outbox; the
    campaign (kept in the store) carries the hint to ask again, never the token."""
    import threading
    import time as time_module

    from starlette.testclient import TestClient

    from bot.app import create_app
    from bot.store.models import Campaign, Member
    from handlers import build_registry

    registry = build_registry()
    slow = next(c for c in registry.commands if c.word == "后台")
    release = threading.Event()

    def held(ctx, original=slow.handler):
        release.wait(60)
        return original(ctx)

    registry.commands[registry.commands.index(slow)] = type(slow)(
        slow.word, held, slow.roles, slow.summary, slow.usage, slow.aliases
    )
    env = build_env(tmp_path, clock, BRANCHBOT__WECHAT__REPLY_BUDGET_MS="200")
    with env.store.session() as db:
        wang = db.exec(select(Member).where(Member.name == "王书记")).one()
        wang.openid = "o-wang"
        db.add(wang)
    env.client = TestClient(create_app(env.config, env.store, env.clock, registry=registry))
    with env.client:
        user = env.wechat("o-wang")
        assert user.post(user.text_request("后台")).text == "success"  # answered before the handler ran
        release.set()
        deadline = time_module.time() + 60  # a bound on a wait, not a timing test
        late: list[Campaign] = []
        while not late and time_module.time() < deadline:
            time_module.sleep(0.05)
            with env.store.session() as db:
                late = list(db.exec(select(Campaign).where(Campaign.kind == "reply")).all())
    [campaign] = late
    assert "请重新发送「后台」" in campaign.text and "token=" not in campaign.text
