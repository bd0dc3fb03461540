"""A fake WeChat / WeCom API server on loopback, with faults the tests can inject.

Endpoints: OA /cgi-bin/stable_token, /cgi-bin/token, /cgi-bin/message/custom/send,
/cgi-bin/message/template/send; WeCom /cgi-bin/gettoken, /cgi-bin/message/send (with
its duplicate check), /cgi-bin/auth/getuserinfo (web login codes in ``oauth_codes``); group robot /cgi-bin/webhook/send. What was delivered is counted
per recipient, so a test can assert "exactly once".

Besides one-off faults (``inject``), a test can take the whole API down (``outage``:
every call hangs or answers 5xx until ``restore``) and hold an endpoint's calls before
they are delivered (``hold`` / ``release``), e.g. to kill a sender while its requests
are still on their way and then drop them, as if they never reached WeChat.

For doctor and menus: ``fail(endpoint, errcode)`` makes an endpoint answer that errcode
on every call until ``heal`` (e.g. 40164 for a server outside the IP whitelist); the
account's templates, WeCom apps and menu are plain attributes a test can set.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.net import bound_socket


@dataclass
class Fault:
    kind: str  # "errcode" | "timeout" | "http"
    value: int = 0
    user: str | None = None


@dataclass
class FakeState:
    latency: float = 0.0
    token_seq: int = 0
    valid_tokens: set[str] = field(default_factory=set)
    token_fetches: Counter = field(default_factory=Counter)  # endpoint → count
    faults: dict[str, deque[Fault]] = field(default_factory=lambda: defaultdict(deque))
    closed_window: set[str] = field(default_factory=set)  # openids outside the 48 h window
    invalid_users: set[str] = field(default_factory=set)  # WeCom user ids that do not exist
    delivered: Counter = field(default_factory=Counter)  # (channel, user, content) → times
    calls: Counter = field(default_factory=Counter)  # endpoint → calls
    wecom_recent: dict[tuple[str, str], float] = field(default_factory=dict)
    robot_posts: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    outage: Fault | None = None  # every endpoint answers with this fault until restored
    outage_calls: Counter = field(default_factory=Counter)  # endpoint → calls refused by the outage
    holding: dict[str, int] = field(default_factory=dict)  # endpoint → the hold now in force
    held: Counter = field(default_factory=Counter)  # endpoint → calls waiting at a hold now
    hold_seq: int = 0
    dropped_holds: set[int] = field(default_factory=set)  # holds whose calls are answered 503, undelivered
    failing: dict[str, tuple[int, str]] = field(default_factory=dict)  # endpoint → errcode answered every call
    templates: list[dict[str, str]] = field(default_factory=list)  # template/get_all_private_template
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)  # agent id → agent/get answer
    menu: dict[str, Any] | None = None  # what menu/create stored; menu/get answers 46003 while None
    menu_raw: bytes = b""  # the last menu/create body as sent
    oauth_codes: dict[str, str] = field(default_factory=dict)  # WeCom web-login code → userid (used once)


class FakeWeChatApi:
    def __init__(self, latency: float = 0.0) -> None:
        self.state = FakeState(latency=latency)
        self.socket = bound_socket()
        self.port = self.socket.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        app = Starlette(
            routes=[
                Route("/cgi-bin/stable_token", self._stable_token, methods=["POST"]),
                Route("/cgi-bin/token", self._token, methods=["GET"]),
                Route("/cgi-bin/gettoken", self._gettoken, methods=["GET"]),
                Route("/cgi-bin/message/custom/send", self._custom_send, methods=["POST"]),
                Route("/cgi-bin/message/template/send", self._template_send, methods=["POST"]),
                Route("/cgi-bin/message/send", self._wecom_send, methods=["POST"]),
                Route("/cgi-bin/webhook/send", self._robot_send, methods=["POST"]),
                Route("/cgi-bin/template/get_all_private_template", self._templates, methods=["GET"]),
                Route("/cgi-bin/agent/get", self._agent_get, methods=["GET"]),
                Route("/cgi-bin/menu/create", self._menu_create, methods=["POST"]),
                Route("/cgi-bin/menu/get", self._menu_get, methods=["GET"]),
                Route("/cgi-bin/auth/getuserinfo", self._getuserinfo, methods=["GET"]),
                Route("/stats", self._stats, methods=["GET"]),
            ]
        )
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False, lifespan="off")
        )
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    # ------------------------------------------------------------------ control

    def __enter__(self) -> FakeWeChatApi:
        self.thread.start()
        deadline = time.time() + 120  # a bound on a hung start, not a speed check
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("fake WeChat API did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.socket.close()

    def inject(self, endpoint: str, kind: str, value: int = 0, times: int = 1, user: str | None = None) -> None:
        for _ in range(times):
            self.state.faults[endpoint].append(Fault(kind, value, user))

    def expire_tokens(self) -> None:
        with self.state.lock:
            self.state.valid_tokens.clear()

    def outage(self, kind: str = "http", value: int = 0) -> None:
        """Take every endpoint down until ``restore``: "http" answers HTTP ``value`` (503),
        "timeout" hangs ``value`` seconds (30) before answering -1."""
        self.state.outage = Fault(kind, value or (503 if kind == "http" else 30))

    def restore(self) -> None:
        self.state.outage = None

    def hold(self, endpoint: str) -> None:
        """Calls to ``endpoint`` wait, before anything is delivered, until ``release``."""
        with self.state.lock:
            self.state.hold_seq += 1
            self.state.holding[endpoint] = self.state.hold_seq

    def release(self, endpoint: str, drop: bool = False) -> None:
        """Let held calls go on; with ``drop`` they are answered 503 and deliver nothing."""
        with self.state.lock:
            hold = self.state.holding.pop(endpoint, None)
            if drop and hold is not None:
                self.state.dropped_holds.add(hold)

    def fail(self, endpoint: str, errcode: int, errmsg: str = "") -> None:
        """Every call to ``endpoint`` ("token", "gettoken", "templates", "agent_get", "menu_create",
        "menu_get") answers ``errcode`` until ``heal``."""
        self.state.failing[endpoint] = (errcode, errmsg or f"injected {errcode}")

    def heal(self, endpoint: str | None = None) -> None:
        if endpoint is None:
            self.state.failing.clear()
        else:
            self.state.failing.pop(endpoint, None)

    def _failing(self, endpoint: str) -> Response | None:
        found = self.state.failing.get(endpoint)
        return JSONResponse({"errcode": found[0], "errmsg": found[1]}) if found else None

    def times_delivered(self, user: str) -> int:
        return sum(n for (channel, u, _), n in self.state.delivered.items() if u == user)

    # ------------------------------------------------------------------ helpers

    async def _fault(self, endpoint: str, user: str | None = None) -> Response | None:
        hold = self.state.holding.get(endpoint)
        if hold is not None:
            with self.state.lock:
                self.state.held[endpoint] += 1
            try:
                while self.state.holding.get(endpoint) == hold:
                    await asyncio.sleep(0.005)
            finally:
                with self.state.lock:
                    self.state.held[endpoint] -= 1
            if hold in self.state.dropped_holds:
                return Response("dropped before delivery", status_code=503)
        if (outage := self.state.outage) is not None:
            with self.state.lock:
                self.state.outage_calls[endpoint] += 1
            if outage.kind == "timeout":
                await asyncio.sleep(outage.value)
                return JSONResponse({"errcode": -1, "errmsg": "late"})
            return Response("upstream down", status_code=outage.value)
        if self.state.latency:
            await asyncio.sleep(self.state.latency)
        queue = self.state.faults[endpoint]
        with self.state.lock:
            fault = next((f for f in queue if f.user in (None, user)), None)
            if fault is not None:
                queue.remove(fault)
        if fault is None:
            return None
        if fault.kind == "timeout":
            await asyncio.sleep(fault.value or 30)
            return JSONResponse({"errcode": -1, "errmsg": "late"})
        if fault.kind == "http":
            return Response("upstream trouble", status_code=fault.value or 502)
        return JSONResponse({"errcode": fault.value, "errmsg": f"injected {fault.value}"})

    def _issue(self, endpoint: str) -> JSONResponse:
        with self.state.lock:
            self.state.token_seq += 1
            token = f"tok-{self.state.token_seq}"
            self.state.valid_tokens.add(token)
            self.state.token_fetches[endpoint] += 1
        return JSONResponse({"access_token": token, "expires_in": 7200})

    def _token_ok(self, request: Request) -> bool:
        return request.query_params.get("access_token") in self.state.valid_tokens

    # ------------------------------------------------------------------ endpoints

    async def _stable_token(self, request: Request) -> Response:
        body = await request.json()
        if not body.get("appid") or not body.get("secret"):
            return JSONResponse({"errcode": 40013, "errmsg": "invalid appid"})
        await asyncio.sleep(0.2)  # slow enough that racing fetches would overlap
        return self._failing("token") or await self._fault("token") or self._issue("stable_token")

    async def _token(self, request: Request) -> Response:
        return self._failing("token") or await self._fault("token") or self._issue("token")

    async def _gettoken(self, request: Request) -> Response:
        await asyncio.sleep(0.2)
        return self._failing("gettoken") or await self._fault("gettoken") or self._issue("gettoken")

    async def _custom_send(self, request: Request) -> Response:
        self.state.calls["custom_send"] += 1
        body = await request.json()
        user = body.get("touser")
        if not self._token_ok(request):
            return JSONResponse({"errcode": 40001, "errmsg": "invalid credential"})
        if (fault := await self._fault("custom_send", user)) is not None:
            return fault
        if user in self.state.closed_window:
            return JSONResponse({"errcode": 45015, "errmsg": "response out of time limit or subscription is canceled"})
        self.state.delivered[("kf", user, body["text"]["content"])] += 1
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    async def _template_send(self, request: Request) -> Response:
        self.state.calls["template_send"] += 1
        body = await request.json()
        user = body.get("touser")
        if not self._token_ok(request):
            return JSONResponse({"errcode": 40001, "errmsg": "invalid credential"})
        if (fault := await self._fault("template_send", user)) is not None:
            return fault
        self.state.delivered[("template", user, json.dumps(body.get("data"), ensure_ascii=False))] += 1
        return JSONResponse({"errcode": 0, "errmsg": "ok", "msgid": 1})

    async def _wecom_send(self, request: Request) -> Response:
        self.state.calls["wecom_send"] += 1
        body = await request.json()
        if not self._token_ok(request):
            return JSONResponse({"errcode": 42001, "errmsg": "access_token expired"})
        if (fault := await self._fault("wecom_send")) is not None:
            return fault
        users = [u for u in body["touser"].split("|") if u]
        if len(users) > 1000:
            return JSONResponse({"errcode": 40058, "errmsg": "too many users"})
        content = json.dumps(body.get("text") or body.get("textcard"), ensure_ascii=False, sort_keys=True)
        invalid = [u for u in users if u in self.state.invalid_users]
        if invalid and len(invalid) == len(users):
            return JSONResponse({"errcode": 81013, "errmsg": "user & party & tag all invalid"})
        now = time.monotonic()
        with self.state.lock:
            for user in users:
                if user in invalid:
                    continue
                key = (user, content)
                recent = self.state.wecom_recent.get(key)
                if (
                    body.get("enable_duplicate_check")
                    and recent is not None
                    and now - recent < body.get("duplicate_check_interval", 1800)
                ):
                    continue  # WeCom drops an identical message within the interval
                self.state.wecom_recent[key] = now
                self.state.delivered[("wecom", user, content)] += 1
        return JSONResponse({"errcode": 0, "errmsg": "ok", "invaliduser": "|".join(invalid)})

    async def _robot_send(self, request: Request) -> Response:
        self.state.calls["robot_send"] += 1
        if (fault := await self._fault("robot_send")) is not None:
            return fault
        body = await request.json()
        self.state.robot_posts.append({"key": request.query_params.get("key"), **body})
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    async def _templates(self, request: Request) -> Response:
        self.state.calls["templates"] += 1
        if not self._token_ok(request):
            return JSONResponse({"errcode": 40001, "errmsg": "invalid credential"})
        return self._failing("templates") or JSONResponse({"template_list": self.state.templates})

    async def _agent_get(self, request: Request) -> Response:
        self.state.calls["agent_get"] += 1
        if not self._token_ok(request):
            return JSONResponse({"errcode": 42001, "errmsg": "access_token expired"})
        if (failing := self._failing("agent_get")) is not None:
            return failing
        agent = self.state.agents.get(request.query_params.get("agentid", ""))
        if agent is None:
            return JSONResponse({"errcode": 40056, "errmsg": "invalid agentid"})
        return JSONResponse({"errcode": 0, "errmsg": "ok", **agent})

    async def _menu_create(self, request: Request) -> Response:
        self.state.calls["menu_create"] += 1
        if not self._token_ok(request):
            return JSONResponse({"errcode": 40001, "errmsg": "invalid credential"})
        if (failing := self._failing("menu_create")) is not None:
            return failing
        self.state.menu_raw = await request.body()
        body = json.loads(self.state.menu_raw.decode("utf-8"))
        buttons = body.get("button") or []
        if not 1 <= len(buttons) <= 3 or any(len(b.get("sub_button") or []) > 5 for b in buttons):
            return JSONResponse({"errcode": 40016, "errmsg": "invalid button size"})
        self.state.menu = body
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    async def _menu_get(self, request: Request) -> Response:
        self.state.calls["menu_get"] += 1
        if not self._token_ok(request):
            return JSONResponse({"errcode": 40001, "errmsg": "invalid credential"})
        if (failing := self._failing("menu_get")) is not None:
            return failing
        if self.state.menu is None:
            return JSONResponse({"errcode": 46003, "errmsg": "menu no exist"})
        return JSONResponse({"menu": self.state.menu})

    async def _getuserinfo(self, request: Request) -> Response:
        """WeCom OAuth2: a one-time code → the member's userid (40029 for an unknown code)."""
        self.state.calls["getuserinfo"] += 1
        if not self._token_ok(request):
            return JSONResponse({"errcode": 42001, "errmsg": "access_token expired"})
        with self.state.lock:
            userid = self.state.oauth_codes.pop(request.query_params.get("code", ""), None)
        if userid is None:
            return JSONResponse({"errcode": 40029, "errmsg": "invalid code"})
        return JSONResponse({"errcode": 0, "errmsg": "ok", "userid": userid, "user_ticket": "t"})

    async def _stats(self, request: Request) -> Response:
        return JSONResponse(
            {
                "token_fetches": dict(self.state.token_fetches),
                "calls": dict(self.state.calls),
                "delivered": [[c, u, n] for (c, u, _), n in self.state.delivered.items()],
            }
        )


def push_settings(api: FakeWeChatApi, **extra: str) -> dict[str, str]:
    """Settings that send every push to this fake API, fast enough for tests."""
    settings = {
        "BRANCHBOT__WECHAT__APP_ID": "wx1234567890abcdef",
        "BRANCHBOT__WECHAT__APP_SECRET": "s" * 32,
        "BRANCHBOT__WECHAT__API_BASE": api.base,
        "BRANCHBOT__WECOM__CORP_ID": "ww0123456789abcdef",
        "BRANCHBOT__WECOM__SECRET": "w" * 32,
        "BRANCHBOT__WECOM__AGENT_ID": "1000002",
        "BRANCHBOT__WECOM__API_BASE": api.base,
        "BRANCHBOT__OUTBOX__RETRY_BASE_SECONDS": "0.01",
        "BRANCHBOT__OUTBOX__POLL_SECONDS": "0.05",
        "BRANCHBOT__OUTBOX__TIMEOUT_SECONDS": "0.5",
        "BRANCHBOT__OUTBOX__WECHAT_PER_SECOND": "1000",
        "BRANCHBOT__OUTBOX__WECOM_PER_SECOND": "1000",
    }
    settings.update(extra)
    return settings
