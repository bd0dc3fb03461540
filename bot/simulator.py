"""The chat simulator at / (only where simulator.enabled).

The page never talks to the router directly: it asks for a signed (and, in safe mode,
encrypted) WeChat request, posts that to /wechat like WeChat would, and asks for the
reply to be opened. So a demo exercises the real webhook path. Because these endpoints
sign arbitrary messages, they must stay off in production (the shipped demo config
turns them on).
"""

from __future__ import annotations

import secrets
from datetime import datetime
from urllib.parse import urlencode

import anyio
from sqlmodel import select
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route
from wechatpy.crypto import WeChatCrypto

from bot.channels.common import signature, xml_fields
from bot.config import Config
from bot.engine import Clock
from bot.outbox import demo
from bot.store import Branch, Member, Store

SIMULATED_ACCOUNT = "gh_branchbot_sim"


def simulated_openid(member: Member) -> str:
    return member.openid or f"sim-{member.id}"


def build_request(config: Config, openid: str, now: int, text: str = "", event: str = "", key: str = "",
                  msg_id: int | None = None) -> tuple[str, str]:
    """(query string, body) exactly as WeChat would send them in the configured mode."""
    cfg = config.wechat
    if event:
        inner = f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>"
        if key:
            inner += f"<EventKey><![CDATA[{key}]]></EventKey>"
    else:
        safe_text = text.replace("]]>", "]]]]><![CDATA[>")
        inner = (f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{safe_text}]]></Content>"
                 f"<MsgId>{msg_id or secrets.randbits(62)}</MsgId>")
    xml = (f"<xml><ToUserName><![CDATA[{SIMULATED_ACCOUNT}]]></ToUserName>"
           f"<FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{now}</CreateTime>{inner}</xml>")
    timestamp, nonce = str(now), str(secrets.randbelow(10**9))
    params = {"signature": signature(cfg.token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce, "openid": openid}
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


def simulator_routes(config: Config, store: Store, clock: Clock) -> list[Route]:
    from bot.app import WEB_DIR

    async def page(_: Request) -> Response:
        return FileResponse(WEB_DIR / "simulator.html")

    def member_list() -> list[dict[str, object]]:
        with store.session() as db:
            branches = {b.id: b.name for b in db.exec(select(Branch)).all()}
            rows = db.exec(select(Member).order_by(Member.branch_id, Member.id)).all()
            return [
                {"id": m.id, "name": m.name, "branch": branches.get(m.branch_id, ""), "role": m.role,
                 "openid": simulated_openid(m), "bound": bool(m.openid), "phone_tail": m.phone[-4:], "demo": m.is_demo}
                for m in rows
            ]

    async def members(_: Request) -> Response:
        return JSONResponse(await anyio.to_thread.run_sync(member_list))

    async def envelope(request: Request) -> Response:
        try:
            data = await request.json()
            openid, text = str(data["openid"]), str(data.get("text", ""))
            event, key = str(data.get("event", "")), str(data.get("key", ""))
        except Exception:
            return JSONResponse({"error": "需要 openid，以及 text 或 event"}, status_code=400)
        if not openid or len(openid) > 64:
            return JSONResponse({"error": "openid 应为 1-64 个字符"}, status_code=400)
        if bool(text) == bool(event):
            return JSONResponse({"error": "text 和 event 须且只能提供一个"}, status_code=400)
        if event not in ("", "subscribe", "unsubscribe", "CLICK"):
            return JSONResponse({"error": "只支持 subscribe、unsubscribe、CLICK 事件"}, status_code=400)
        query, body = build_request(config, openid, int(clock().timestamp()), text=text[:2000], event=event, key=key[:64])
        return JSONResponse({"url": f"/wechat?{query}", "body": body})

    async def open_endpoint(request: Request) -> Response:
        try:
            return JSONResponse({"text": open_reply(config, (await request.body()).decode())})
        except Exception as exc:  # Refusal included: any unreadable reply
            return JSONResponse({"error": f"无法解析回复：{exc}"}, status_code=400)

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
        Route("/", page),
        Route("/simulator/api/pushes", pushes),
        Route("/simulator/api/members", members),
        Route("/simulator/api/envelope", envelope, methods=["POST"]),
        Route("/simulator/api/open", open_endpoint, methods=["POST"]),
    ]
