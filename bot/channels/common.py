"""Checks shared by the Official Account and WeCom callbacks."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime
from typing import Any

from bot.channels.xmlwire import DECLARATION_REFUSED, MalformedXml, parse_document
from bot.messages import Inbound, message_key

MAX_BODY = 64 * 1024
_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_LAST_TIMESTAMP = 253402300799  # 9999-12-31T23:59:59Z, the last second a datetime can hold


class Refusal(Exception):
    """A request we will not process; the status goes back to the caller."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def check_signature(given: str | None, *parts: str) -> None:
    """Constant-time comparison: a forged signature learns nothing from timing."""
    if not given or not hmac.compare_digest(signature(*parts).encode(), given.lower().encode()):
        raise Refusal(403, "bad signature")


def _number(text: str | None, digits: int) -> bool:
    """ASCII digits only: str.isdigit() also accepts '¹' or '٣', which int() refuses."""
    return text is not None and text.isascii() and text.isdigit() and len(text) <= digits


def check_fresh(timestamp: str | None, now: datetime, window: int) -> None:
    if timestamp is None or not _number(timestamp, 12):
        raise Refusal(403, "missing or malformed timestamp")
    if window and abs(now.timestamp() - int(timestamp)) > window:
        raise Refusal(403, "timestamp outside the replay window")


def check_body(body: bytes) -> None:
    if len(body) > MAX_BODY:
        raise Refusal(400, "body larger than 64 KiB")
    if _DECLARATION.search(body):
        raise Refusal(400, DECLARATION_REFUSED)


def xml_fields(body: bytes | str, checked: bool = False) -> dict[str, Any]:
    """The <xml> element's children as a dict (one expat pass), or a 400 refusal.
    ``checked``: the caller has already run ``check_body`` on these bytes."""
    if isinstance(body, str):
        body = body.encode()
    if not checked:
        check_body(body)
    try:
        tree = parse_document(body)
    except MalformedXml as exc:
        raise Refusal(400, exc.reason) from None
    root = tree.get("xml") if tree is not None else None
    if not isinstance(root, dict):
        raise Refusal(400, "no <xml> root element")
    return root


def _text(fields: dict[str, Any], name: str) -> str:
    """A leaf element's text; '' when absent, empty, or (undocumented) nested."""
    value = fields.get(name)
    return value if isinstance(value, str) else ""


def to_inbound(channel: str, fields: dict[str, Any]) -> Inbound:
    """Keep what the router needs from a (decrypted) message.

    Every kind and event the platforms send is accepted, nested elements included
    (``ScanCodeInfo``, ``SendPicsInfo``, ``SendLocationInfo``, ``BatchJob``, the
    ``SubscribeMsg*Event`` lists...): the fields we read are leaves, the rest is ignored.
    Only the sender, the kind, the time and the message id must be single leaves."""
    for name in ("FromUserName", "MsgType", "CreateTime", "MsgId"):
        value = fields.get(name)
        if value is not None and not isinstance(value, str):
            raise Refusal(400, f"unexpected structure in <{name}>")
    sender, msg_type = _text(fields, "FromUserName"), _text(fields, "MsgType")
    created = _text(fields, "CreateTime")
    if not sender or not msg_type or not _number(created, 12):
        raise Refusal(400, "missing FromUserName, MsgType or CreateTime")
    if int(created) > _LAST_TIMESTAMP:  # 12 digits reach year 33658: datetime would raise
        raise Refusal(400, "CreateTime out of range")
    msg_id = _text(fields, "MsgId")
    if msg_id and not _number(msg_id, 20):
        raise Refusal(400, "MsgId is not a number")
    kind = msg_type.lower()
    event = _text(fields, "Event").lower() if kind == "event" else ""
    event_key = _text(fields, "EventKey")
    if event == "subscribe" and event_key.startswith("qrscene_"):  # followed by scanning a parametric QR code
        event = "subscribe_scan"
    scan = fields.get("ScanCodeInfo")
    scan_result = _text(scan, "ScanResult") if isinstance(scan, dict) else ""
    return Inbound(
        channel=channel,
        sender=sender,
        kind=kind,
        key=message_key(channel, msg_id, sender, created, event, event_key),
        created_at=datetime.fromtimestamp(int(created), tz=UTC),
        text=_text(fields, "Content") if kind == "text" else "",
        event=event,
        event_key=event_key,
        recipient=_text(fields, "ToUserName"),
        scan_result=scan_result[:200],
    )


def cdata_safe(text: str) -> str:
    """']]>' would end the CDATA section early; split it across two sections."""
    return text.replace("]]>", "]]]]><![CDATA[>")


def reply_nonce(request_nonce: str) -> str:
    """The nonce for an encrypted reply. It is ours to choose: echo the request's only
    when it is plain, since a signed but odd one (' ', '\x1f') would not survive the
    reply XML and WeChat could not verify the reply."""
    if re.fullmatch(r"[A-Za-z0-9]{1,32}", request_nonce):
        return request_nonce
    return str(secrets.randbelow(10**10))
