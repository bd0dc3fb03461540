"""Logging in and out: the one-time 后台 link, WeCom OAuth2 (snsapi_base), 退出."""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import quote, urlencode

import anyio
import httpx
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bot.audit import actor_of, record
from bot.auth import (
    LoginRefused,
    check_attempts,
    client_key,
    may_use,
    open_session,
    record_failure,
    redeem_link,
)
from bot.console.web import COOKIE, Console, Page, message_page, redirect, secure_cookie, set_session_cookie
from bot.outbox.senders import PlatformError, RateLimiter, TransportError, WecomApp, checked
from bot.outbox.tokens import TokenStore
from bot.store import lookups

STATE_COOKIE = "branchbot_console_state"
TOKEN_ERRORS = (40014, 42001, 40001)
ASK_AGAIN = "请在机器人中发送「后台」获取登录链接。"


def _client(request: Request) -> str:
    return client_key(request.client.host if request.client else "unknown")


def _wecom_ready(console: Console) -> bool:
    cfg = console.config.wecom
    return bool(cfg.corp_id and cfg.agent_id and cfg.secret)


class WecomLogin:
    """WeCom's web login: authorize → code → auth/getuserinfo → userid → the roster."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.tokens = TokenStore(console.store, console.clock)
        cfg = console.config.wecom
        self.http = httpx.Client(base_url=cfg.api_base, timeout=console.config.outbox.timeout_seconds)
        # The same token (and token row) the outbox uses for this app. Login sends nothing,
        # so the rate limiter is never drawn on.
        self.app = WecomApp(cfg, self.http, self.tokens, limiter=RateLimiter(1.0), retry_wait=0)

    def authorize_url(self, state: str) -> str:
        cfg, console = self.console.config.wecom, self.console.config
        params = {
            "appid": cfg.corp_id,
            "redirect_uri": console.console_base_url + "/console/oauth/callback",
            "response_type": "code",
            "scope": "snsapi_base",
            "state": state,
            "agentid": cfg.agent_id,
        }
        return f"{console.console.oauth_authorize_url}?{urlencode(params, quote_via=quote)}#wechat_redirect"

    def userid(self, code: str) -> str:
        """The member's WeCom account for a one-time code ("" for a non-member visitor)."""
        token = self.tokens.get(self.app.api.name, self.app._fetch_token)
        try:
            data = checked(self.http, "GET", "/cgi-bin/auth/getuserinfo", params={"access_token": token, "code": code})
        except PlatformError as exc:
            if exc.errcode not in TOKEN_ERRORS:
                raise
            token = self.tokens.refresh(self.app.api.name, self.app._fetch_token, stale=token)
            data = checked(self.http, "GET", "/cgi-bin/auth/getuserinfo", params={"access_token": token, "code": code})
        return str(data.get("userid") or data.get("UserId") or "")


def login_routes(console: Console) -> list[Route]:
    wecom = WecomLogin(console) if _wecom_ready(console) else None

    async def welcome(request: Request) -> Response:
        if wecom is not None and "wxwork" in request.headers.get("user-agent", "").lower():
            return RedirectResponse("/console/oauth/start", status_code=303)  # inside WeCom: log in at once
        return message_page(
            request,
            "管理后台",
            "管理后台仅限支部书记和管理员使用。" + ASK_AGAIN + "链接 10 分钟内有效，只能使用一次。",
            200,
            login_hint=True,
            wecom=wecom is not None,
        )

    def _redeem(request: Request, token: str) -> Response:
        now = console.now()
        with console.store.session() as db:
            try:
                member = redeem_link(db, token, _client(request), now)
            except LoginRefused as refused:
                db.commit()  # the failed attempt counts
                return message_page(request, refused.title, refused.detail, refused.status, login_hint=True)
            opened = open_session(db, member, now, via="link")
            record(db, now, actor_of(member), "后台登录", "登录链接")
        response = redirect("/console/")
        set_session_cookie(response, console.config, opened.raw_id)
        return response

    async def login(request: Request) -> Response:
        token = request.query_params.get("token", "")
        return await anyio.to_thread.run_sync(_redeem, request, token)

    async def oauth_start(request: Request) -> Response:
        if wecom is None:
            return message_page(request, "未启用企业微信登录", ASK_AGAIN, 404, login_hint=True)
        state = secrets.token_urlsafe(16)
        response = RedirectResponse(wecom.authorize_url(state), status_code=303)
        response.set_cookie(
            STATE_COOKIE,
            state,
            max_age=600,
            path="/console",
            httponly=True,
            samesite="lax",
            secure=secure_cookie(console.config),
        )
        return response

    def _oauth(request: Request) -> Response:
        assert wecom is not None
        now = console.now()
        code, state = request.query_params.get("code", ""), request.query_params.get("state", "")
        expected = request.cookies.get(STATE_COOKIE, "")
        client = _client(request)
        with console.store.session() as db:
            try:
                check_attempts(db, client, now)
            except LoginRefused as refused:
                return message_page(request, refused.title, refused.detail, refused.status, login_hint=True)
        if not code or not expected or not hmac.compare_digest(state.encode(), expected.encode()) or len(code) > 512:
            return message_page(
                request, "登录未完成", "企业微信登录请求已失效，请重新打开管理后台。", 400, login_hint=True
            )
        try:
            userid = wecom.userid(code)
        except PlatformError:  # e.g. 40029, a code WeCom did not issue: counts against the limit
            with console.store.session() as db:
                record_failure(db, client, now)
            return message_page(
                request, "登录未完成", "企业微信未确认您的身份，请重新打开管理后台。", 400, login_hint=True
            )
        except TransportError:
            return message_page(
                request, "登录未完成", "暂时无法向企业微信确认身份，请稍后重试。" + ASK_AGAIN, 502, login_hint=True
            )
        with console.store.session() as db:
            member = lookups.member_by(db, "wecom", userid) if userid else None
            if not may_use(member):
                if member is not None:
                    record(db, now, actor_of(member), "拒绝", "企业微信登录管理后台：无权限")
                return message_page(
                    request,
                    "没有权限",
                    "管理后台仅限在册的支部书记和管理员使用；请确认名册中已填写您的企业微信账号。",
                    403,
                    login_hint=True,
                )
            assert member is not None
            opened = open_session(db, member, now, via="wecom")
            record(db, now, actor_of(member), "后台登录", "企业微信")
        response = redirect("/console/")
        set_session_cookie(response, console.config, opened.raw_id)
        response.delete_cookie(STATE_COOKIE, path="/console")
        return response

    async def oauth_callback(request: Request) -> Response:
        if wecom is None:
            return message_page(request, "未启用企业微信登录", ASK_AGAIN, 404, login_hint=True)
        return await anyio.to_thread.run_sync(_oauth, request)

    def logout(page: Page) -> Response:
        page.viewer.session.ended_at = page.now
        page.db.add(page.viewer.session)
        response = message_page(
            page.request, "已退出", "您已退出管理后台。如需再次进入，" + ASK_AGAIN, 200, login_hint=True
        )
        response.delete_cookie(COOKIE, path="/console")
        return response

    return [
        Route("/console/welcome", welcome),
        Route("/console/login", login),
        Route("/console/oauth/start", oauth_start),
        Route("/console/oauth/callback", oauth_callback),
        console.route("/console/logout", logout, methods=("POST",)),
    ]
