"""The chat simulator at / (only where simulator.enabled, on a loopback address).

The page never talks to the router directly: ``/simulator/api/send`` builds the request
WeChat would send (signed, and encrypted in safe mode), posts it through this very app's
/wechat, and opens the reply it got back. So a demo exercises the real webhook path, and
no endpoint signs a request for the caller to keep or decrypts ciphertext the caller
brings. Because it speaks for any member, it is safe by construction: mounted only when
the server listens on a loopback address, answering only loopback clients that name a
loopback host (a DNS-rebound page names another), never showing a real member's phone
tail, and reading at most 64 KiB of request body, like /wechat.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import anyio
import httpx
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from wechatpy.crypto import WeChatCrypto

from bot.bodies import read_capped
from bot.channels.common import Refusal, signature, xml_fields
from bot.config import Config
from bot.engine import Clock
from bot.outbox import demo
from bot.store import Branch, Member, Store

SIMULATED_ACCOUNT = "gh_branchbot_sim"
WEB_DIR = Path(__file__).resolve().parent / "web"  # package data, so a wheel carries it


def simulated_openid(member: Member) -> str:
    return member.openid or f"sim-{member.id}"


def build_request(
    config: Config, openid: str, now: int, text: str = "", event: str = "", key: str = "", msg_id: int | None = None
) -> tuple[str, str]:
    """(query string, body) exactly as WeChat would send them in the configured mode."""
    cfg = config.wechat
    if event:
        inner = f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>"
        if key:
            inner += f"<EventKey><![CDATA[{key}]]></EventKey>"
    else:
        safe_text = text.replace("]]>", "]]]]><![CDATA[>")
        inner = (
            f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{safe_text}]]></Content>"
            f"<MsgId>{msg_id or secrets.randbits(62)}</MsgId>"
        )
    xml = (
        f"<xml><ToUserName><![CDATA[{SIMULATED_ACCOUNT}]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{now}</CreateTime>{inner}</xml>"
    )
    timestamp, nonce = str(now), str(secrets.randbelow(10**9))
    params = {
        "signature": signature(cfg.token, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        "openid": openid,
    }
    if cfg.mode == "plain":
        return urlencode(params), xml
    crypto = WeChatCrypto(cfg.token, cfg.encoding_aes_key, cfg.app_id)
    envelope = crypto.encrypt_message(xml, nonce, timestamp)
    encrypted = xml_fields(envelope)
    params.update(encrypt_type="aes", msg_signature=signature(cfg.token, timestamp, nonce, encrypted["Encrypt"]))
    return urlencode(params), envelope


def open_reply(config: Config, body: str) -> str:
    """The text of a reply body (decrypting it in safe mode)."""
    if not body or body == "success":
        return ""
    fields = xml_fields(body)
    if "Encrypt" in fields:
        cfg = config.wechat
        crypto = WeChatCrypto(cfg.token, cfg.encoding_aes_key, cfg.app_id)
        fields = xml_fields(crypto.decrypt_message(body, fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"]))
    return fields.get("Content") or ""


LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost (a host name, an address, or [v6])."""
    host = host.strip().lower().removeprefix("[").removesuffix("]")
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    """The host part of a Host header: 'localhost:8000' → 'localhost', '[::1]:80' → '::1'."""
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def local_request(request: Request) -> bool:
    client = request.client.host if request.client else ""
    return is_loopback(client) and is_loopback(_host_name(request.headers.get("host", "")))


def simulator_routes(config: Config, store: Store, clock: Clock) -> list[Route]:
    def local_only(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            if not local_request(request):
                return PlainTextResponse("模拟器只接受本机访问（127.0.0.1 / localhost）。", status_code=403)
            return await endpoint(request)

        return guarded

    async def page(_: Request) -> Response:
        return FileResponse(WEB_DIR / "simulator.html")

    def member_list() -> list[dict[str, object]]:
        with store.session() as db:
            branches = {b.id: b.name for b in db.exec(select(Branch)).all()}
            rows = db.exec(select(Member).order_by(col(Member.branch_id), col(Member.id))).all()
            return [
                {
                    "id": m.id,
                    "name": m.name,
                    "branch": branches.get(m.branch_id, ""),
                    "role": m.role,
                    "openid": simulated_openid(m),
                    "bound": bool(m.openid),
                    "demo": m.is_demo,
                    # The phone tail is a real member's binding secret: shown for demo members only.
                    "phone_tail": m.phone[-4:] if m.is_demo else None,
                }
                for m in rows
            ]

    async def members(_: Request) -> Response:
        return JSONResponse(await anyio.to_thread.run_sync(member_list))

    async def send(request: Request) -> Response:
        """Deliver one simulated message through /wechat and answer the reply's text."""
        # Another site's page in the operator's browser could POST here without a CORS
        # preflight as text/plain or a form: JSON only, and no foreign Origin.
        origin = request.headers.get("origin", "")
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json" or (
            origin and not is_loopback(_host_name(urlsplit(origin).netloc))
        ):
            return JSONResponse({"error": "只接受本机模拟器页面发出的 JSON 请求"}, status_code=403)
        try:
            data = json.loads(await read_capped(request))
            openid, text = str(data["openid"]), str(data.get("text", ""))
            event, key = str(data.get("event", "")), str(data.get("key", ""))
        except Refusal as refusal:  # over 64 KiB
            return JSONResponse({"error": refusal.reason}, status_code=refusal.status)
        except Exception:
            return JSONResponse({"error": "需要 openid，以及 text 或 event"}, status_code=400)
        if not openid or len(openid) > 64:
            return JSONResponse({"error": "openid 应为 1-64 个字符"}, status_code=400)
        if bool(text) == bool(event):
            return JSONResponse({"error": "text 和 event 须且只能提供一个"}, status_code=400)
        if event not in ("", "subscribe", "unsubscribe", "CLICK"):
            return JSONResponse({"error": "只支持 subscribe、unsubscribe、CLICK 事件"}, status_code=400)
        query, body = build_request(
            config, openid, int(clock().timestamp()), text=text[:2000], event=event, key=key[:64]
        )
        transport = httpx.ASGITransport(app=request.app, client=("127.0.0.1", 0))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            response = await client.post(
                f"/wechat?{query}", content=body.encode(), headers={"Content-Type": "text/xml"}
            )
        if response.status_code != 200:
            return JSONResponse(
                {"error": f"/wechat 返回 HTTP {response.status_code}：{response.text[:200]}"}, status_code=502
            )
        # Only the reply /wechat just produced for this request is opened here.
        return JSONResponse({"text": open_reply(config, response.text)})

    async def pushes(request: Request) -> Response:
        """Pushes the loopback demo channel delivered, for the members' chats (polled)."""
        since = None
        if raw := request.query_params.get("since", ""):
            try:
                since = datetime.fromisoformat(raw[:40])
            except ValueError:
                return JSONResponse({"error": "since 应为上次返回的 cursor"}, status_code=400)
            if since.tzinfo is None:
                return JSONResponse({"error": "since 应带时区"}, status_code=400)

        def read() -> dict[str, object]:
            with store.session() as db:
                return demo.pushes(db, since, clock(), config.tz)

        return JSONResponse(await anyio.to_thread.run_sync(read))

    return [
        Route("/", local_only(page)),
        Route("/simulator/api/pushes", local_only(pushes)),
        Route("/simulator/api/members", local_only(members)),
        Route("/simulator/api/send", local_only(send), methods=["POST"]),
    ]
