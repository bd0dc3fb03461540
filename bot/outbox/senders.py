"""Senders over httpx: Official Account (customer service, then template, then the
member's unread inbox), WeCom / 政务微信 app messages in batches of up to 1000, and
group robots. Each has a configurable API base, so tests aim them at a fake server.

Within one call, transient failures (timeouts, 5xx, -1 busy, 45009/45011/45033 rate
limits) are retried a few times with short backoff by tenacity; an invalid or expired
token (40001/40014/42001) is refreshed once through the shared TokenStore before the
call is retried. What still fails comes back as an Outcome: ``failed`` only for the
permanent errcodes below (the member unfollowed, an invalid recipient, a message WeChat
will never take); anything else is ``retry``, and the outbox worker tries it again
later, with capped exponential backoff, for up to ``outbox.retry_window``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from bot.config import RobotConfig, WechatConfig, WecomConfig
from bot.outbox.tokens import TokenStore
from bot.store.models import DeliveryStatus

TOKEN_ERRORS = {40001, 40014, 42001}
TRANSIENT_ERRORS = {-1, 45009, 45011, 45033}
WINDOW_CLOSED = {45015, 45047}  # outside 48 h, or over the customer-service quota
# Failures no retry can fix: the recipient (invalid openid, unfollowed, refuses messages,
# not a WeCom user) or the message itself (too long, empty, bad type).
PERMANENT_ERRORS = {40003, 43004, 43101, 81013, 45002, 44004, 40008}
WECOM_ALL_INVALID = 81013
WECOM_BATCH = 1000


class PlatformError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"{errcode} {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg

    @property
    def transient(self) -> bool:
        return self.errcode in TRANSIENT_ERRORS


class TransportError(Exception):
    """Timeouts, connection failures and 5xx: worth trying again later."""

    errcode = -2

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.errmsg = detail
        self.transient = True


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TransportError) or (isinstance(exc, PlatformError) and exc.transient)


class RateLimiter:
    """A token bucket shared by the sending threads. A caller that finds it empty takes
    the next token ahead (the bucket goes into debt) and sleeps once until that token's
    time: waiting threads do not all wake to race for each new token."""

    def __init__(
        self,
        per_second: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = per_second
        self.capacity = burst or max(1.0, per_second)
        self.tokens = self.capacity
        self.clock, self.sleep = clock, sleep
        self.updated = clock()
        self.lock = threading.Lock()

    def acquire(self) -> float:
        """Take a token, sleeping until it is due; returns the seconds slept."""
        with self.lock:
            now = self.clock()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate) - 1
            self.updated = now
            wait = -self.tokens / self.rate if self.tokens < 0 else 0.0
        if wait > 0:
            self.sleep(wait)
        return wait


@dataclass(frozen=True)
class Outgoing:
    delivery_id: int
    member_id: int
    openid: str | None
    wecom_userid: str | None
    title: str
    text: str
    date: str = ""
    branch: str = ""


RETRY = "retry"  # an outcome, not a stored status: the delivery goes back to pending for a later try


@dataclass(frozen=True)
class Outcome:
    status: str  # a DeliveryStatus (sent / failed / inbox / skipped), or RETRY: may pass later
    via: str = ""
    errcode: int | None = None
    errmsg: str = ""


class Api:
    """JSON calls with transient retries and one token refresh."""

    def __init__(
        self,
        name: str,
        http: httpx.Client,
        tokens: TokenStore,
        fetch_token: Callable[[], tuple[str, int]],
        retry_wait: float,
        attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name
        self.http = http
        self.tokens = tokens
        self.fetch_token = fetch_token
        self._call = retry(
            retry=retry_if_exception(_is_transient),
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=retry_wait, max=max(retry_wait * 8, 0.01)),
            sleep=sleep,
            reraise=True,
        )(self._call_once)

    def call(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self._call(path, payload)

    def _call_once(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        token = self.tokens.get(self.name, self.fetch_token)
        try:
            return self._post(path, payload, token)
        except PlatformError as exc:
            if exc.errcode not in TOKEN_ERRORS:
                raise
            token = self.tokens.refresh(self.name, self.fetch_token, stale=token)
            return self._post(path, payload, token)

    def _post(self, path: str, payload: dict[str, Any], token: str) -> dict[str, Any]:
        return checked(self.http, "POST", path, params={"access_token": token}, json=payload)


def checked(http: httpx.Client, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    """One HTTP call; WeChat's errcode becomes PlatformError, transport trouble TransportError."""
    try:
        response = http.request(method, path, **kwargs)
    except httpx.TimeoutException as exc:
        raise TransportError(f"timeout: {type(exc).__name__}") from exc
    except httpx.TransportError as exc:
        raise TransportError(f"transport: {type(exc).__name__}") from exc
    if response.status_code >= 500:
        raise TransportError(f"HTTP {response.status_code}")
    try:
        data: dict[str, Any] = response.json()
    except ValueError as exc:
        raise TransportError(f"HTTP {response.status_code}, not JSON") from exc
    errcode = int(data.get("errcode", 0) or 0)
    if errcode:
        raise PlatformError(errcode, str(data.get("errmsg", "")))
    return data


def _outcome_for(exc: Exception) -> Outcome:
    if isinstance(exc, (PlatformError, TransportError)):
        return Outcome(
            DeliveryStatus.FAILED if exc.errcode in PERMANENT_ERRORS else RETRY,
            errcode=exc.errcode,
            errmsg=exc.errmsg[:300],
        )
    raise exc


class OfficialAccount:
    def __init__(
        self,
        cfg: WechatConfig,
        http: httpx.Client,
        tokens: TokenStore,
        limiter: RateLimiter,
        retry_wait: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cfg = cfg
        self.limiter = limiter
        self.api = Api(f"wechat:{cfg.app_id}", http, tokens, self._fetch_token, retry_wait, sleep=sleep)
        self.http = http

    @property
    def configured(self) -> bool:
        return bool(self.cfg.app_id and self.cfg.app_secret)

    def _fetch_token(self) -> tuple[str, int]:
        data = checked(
            self.http,
            "POST",
            "/cgi-bin/stable_token",
            json={"grant_type": "client_credential", "appid": self.cfg.app_id, "secret": self.cfg.app_secret},
        )
        return data["access_token"], int(data.get("expires_in", 7200))

    def send(self, item: Outgoing) -> Outcome:
        """Customer service inside the 48-hour window; else the template; else the inbox."""
        assert item.openid
        self.limiter.acquire()
        text = f"【{item.title}】\n{item.text}" if item.title else item.text
        try:
            self.api.call(
                "/cgi-bin/message/custom/send", {"touser": item.openid, "msgtype": "text", "text": {"content": text}}
            )
            return Outcome(DeliveryStatus.SENT, "wechat_kf")
        except PlatformError as exc:
            if exc.errcode not in WINDOW_CLOSED:
                return _outcome_for(exc)
            window_error = exc
        except TransportError as exc:
            return _outcome_for(exc)
        if not self.cfg.template_id:
            return Outcome(DeliveryStatus.INBOX, "inbox", window_error.errcode, window_error.errmsg)
        values = {"title": item.title or "支部通知", "text": item.text[:20], "date": item.date, "branch": item.branch}
        data = {key: {"value": values[source]} for key, source in self.cfg.template_fields.items()}
        try:
            self.limiter.acquire()
            self.api.call(
                "/cgi-bin/message/template/send",
                {"touser": item.openid, "template_id": self.cfg.template_id, "data": data},
            )
            return Outcome(DeliveryStatus.SENT, "wechat_template")
        except (PlatformError, TransportError) as exc:
            if isinstance(exc, PlatformError) and not exc.transient and exc.errcode not in TOKEN_ERRORS:
                return Outcome(DeliveryStatus.INBOX, "inbox", exc.errcode, exc.errmsg)  # the template itself is refused
            return _outcome_for(exc)


class WecomApp:
    def __init__(
        self,
        cfg: WecomConfig,
        http: httpx.Client,
        tokens: TokenStore,
        limiter: RateLimiter,
        retry_wait: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cfg = cfg
        self.http = http
        self.limiter = limiter
        self.api = Api(f"wecom:{cfg.corp_id}:{cfg.agent_id}", http, tokens, self._fetch_token, retry_wait, sleep=sleep)

    @property
    def configured(self) -> bool:
        return bool(self.cfg.corp_id and self.cfg.secret and self.cfg.agent_id)

    def _fetch_token(self) -> tuple[str, int]:
        data = checked(
            self.http, "GET", "/cgi-bin/gettoken", params={"corpid": self.cfg.corp_id, "corpsecret": self.cfg.secret}
        )
        return data["access_token"], int(data.get("expires_in", 7200))

    def send_batch(self, items: list[Outgoing]) -> dict[int, Outcome]:
        """One message/send call for up to 1000 members with the same content.

        WeCom's duplicate check suppresses an identical message to the same user within
        30 minutes, so a batch re-sent after a crash is not delivered twice."""
        assert 0 < len(items) <= WECOM_BATCH
        first = items[0]
        payload: dict[str, Any] = {
            "touser": "|".join(i.wecom_userid or "" for i in items),
            "agentid": int(self.cfg.agent_id) if self.cfg.agent_id.isdigit() else self.cfg.agent_id,
            "enable_duplicate_check": 1,
            "duplicate_check_interval": 1800,
        }
        if first.title:
            payload |= {
                "msgtype": "textcard",
                "textcard": {
                    "title": first.title,
                    "description": first.text[:512],
                    "url": self.cfg.card_url or "https://work.weixin.qq.com",
                    "btntxt": "详情",
                },
            }
        else:
            payload |= {"msgtype": "text", "text": {"content": first.text}}
        self.limiter.acquire()
        try:
            data = self.api.call("/cgi-bin/message/send", payload)
        except PlatformError as exc:
            if exc.errcode == WECOM_ALL_INVALID:
                return {
                    i.delivery_id: Outcome(DeliveryStatus.FAILED, "wecom", exc.errcode, "invaliduser") for i in items
                }
            return {i.delivery_id: _outcome_for(exc) for i in items}
        except TransportError as exc:
            return {i.delivery_id: _outcome_for(exc) for i in items}
        invalid = {u.lower() for u in str(data.get("invaliduser") or "").split("|") if u}
        return {
            i.delivery_id: Outcome(DeliveryStatus.FAILED, "wecom", 81013, "invaliduser")
            if (i.wecom_userid or "").lower() in invalid
            else Outcome(DeliveryStatus.SENT, "wecom")
            for i in items
        }


class GroupRobot:
    """A branch's WeCom group robot: text (an @all reminder), at most 20 messages a minute."""

    def __init__(self, cfg: RobotConfig, http: httpx.Client, per_minute: int) -> None:
        self.cfg = cfg
        self.http = http
        self.per_minute = per_minute
        self.limiters: dict[str, RateLimiter] = {}
        self.lock = threading.Lock()

    def post(self, key: str, content: str, mentioned: list[str] | None = None) -> None:
        with self.lock:
            limiter = self.limiters.setdefault(key, RateLimiter(self.per_minute / 60.0, burst=self.per_minute))
        limiter.acquire()
        body = {"msgtype": "text", "text": {"content": content[:2000], "mentioned_list": mentioned or []}}
        checked(self.http, "POST", "/cgi-bin/webhook/send", params={"key": key}, json=body)
