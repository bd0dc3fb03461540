"""The callback protocol both platforms speak: verify, decrypt, parse, seal.

An Official Account (``/wechat``) and a WeCom app (``/wecom``) sign, encrypt and frame
their callbacks the same way; what differs is declared by each subclass:

| | Official Account | WeCom app |
|---|---|---|
| receive id inside the ciphertext | app id | corp id |
| URL check (GET) | ``signature``; echo ``echostr`` as sent | ``msg_signature`` over ``echostr``; answer its plaintext |
| encryption | by ``wechat.mode``: plain, compatible or safe | always |
| reply's FromUserName | the account the message was sent to | the corp id |
| nothing to say | ``success`` | an empty body |

Everything else lives here once: the replay window, the body checks, ``msg_signature``
over the ciphertext (never ``signature``), one AES cipher per channel, one XML parse per
document, and a reply rendered straight from a template and sealed without re-parsing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from bot.channels.aes import CipherError, MessageCipher
from bot.channels.common import (
    Refusal,
    cdata_safe,
    check_body,
    check_fresh,
    check_signature,
    reply_nonce,
    signature,
    to_inbound,
    xml_fields,
)
from bot.messages import Inbound

# wechatpy's TextReply and encrypted-message layouts, byte for byte.
_REPLY = (
    "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[{content}]]></Content>\n"
    "<FromUserName><![CDATA[{source}]]></FromUserName>\n<ToUserName><![CDATA[{target}]]></ToUserName>\n"
    "<CreateTime>{time}</CreateTime>\n</xml>"
)
_ENVELOPE = (
    "<xml>\n<Encrypt><![CDATA[{encrypt}]]></Encrypt>\n<MsgSignature><![CDATA[{signature}]]></MsgSignature>\n"
    "<TimeStamp>{timestamp}</TimeStamp>\n<Nonce><![CDATA[{nonce}]]></Nonce>\n</xml>"
)


@dataclass(frozen=True, slots=True)
class Opened:
    """A verified, decrypted, parsed callback, and how to answer it."""

    inbound: Inbound
    encrypted: bool
    nonce: str


class Channel:
    """One platform's callback endpoint. Subclasses declare ``name``, ``empty_reply`` and
    the three hooks below; the checks and the crypto are shared and must stay so."""

    name: ClassVar[str]  # the route, the metric label and the message-key prefix
    empty_reply: ClassVar[str]  # the body when there is nothing to say

    def __init__(self, *, token: str, aes_key: str, receive_id: str, replay_window: int) -> None:
        self.token = token
        self.receive_id = receive_id
        self.replay_window = replay_window
        # Built once per key: decoding the key and setting up AES is not per-message work.
        self._cipher = MessageCipher(aes_key, receive_id) if aes_key else None

    # Per-platform hooks -------------------------------------------------------------

    def _echo(self, params: Mapping[str, str]) -> str:
        """The URL check's answer, once the timestamp is known fresh."""
        raise NotImplementedError

    def _encrypted(self, params: Mapping[str, str]) -> bool:
        """Whether this callback comes in an AES envelope; a Refusal for a mode mismatch."""
        raise NotImplementedError

    def _reply_source(self, inbound: Inbound) -> str:
        """FromUserName of our reply."""
        raise NotImplementedError

    # The shared protocol --------------------------------------------------------------

    def verify_url(self, params: Mapping[str, str], now: datetime) -> str:
        """GET handshake: the answer that proves we hold the token (and the key)."""
        check_fresh(params.get("timestamp"), now, self.replay_window)
        return self._echo(params)

    def open(self, params: Mapping[str, str], body: bytes, now: datetime) -> Opened:
        """Verify, decrypt and parse one callback; a Refusal for anything we will not process."""
        check_body(body)
        timestamp, nonce = params.get("timestamp", ""), params.get("nonce", "")
        check_fresh(timestamp, now, self.replay_window)
        if not self._encrypted(params):
            check_signature(params.get("signature"), self.token, timestamp, nonce)
            return Opened(to_inbound(self.name, xml_fields(body, checked=True)), False, nonce)
        ciphertext = xml_fields(body, checked=True).get("Encrypt")
        if not isinstance(ciphertext, str):
            raise Refusal(400, "missing Encrypt")
        # The AES envelope: msg_signature covers the ciphertext, so the body is signed too.
        check_signature(params.get("msg_signature"), self.token, timestamp, nonce, ciphertext)
        return Opened(to_inbound(self.name, xml_fields(self.decrypt(ciphertext))), True, nonce)

    def decrypt(self, ciphertext: str) -> bytes:
        """The plaintext inside a signed ciphertext, UTF-8 as the platforms send it (and as
        wechatpy insisted); a 400 for anything wrong with it."""
        if self._cipher is None:
            raise Refusal(400, "cannot decrypt (no encoding_aes_key)")
        try:
            plain = self._cipher.decrypt(ciphertext)
            plain.decode()
        except CipherError as exc:
            raise Refusal(400, exc.reason) from None
        except UnicodeDecodeError:
            raise Refusal(400, "cannot decrypt (UnicodeDecodeError)") from None
        return plain

    def seal(self, opened: Opened, text: str) -> str:
        """The HTTP body for a reply: XML (encrypted when the message was), or ``empty_reply``."""
        if not text:
            return self.empty_reply
        inbound = opened.inbound
        now = int(time.time())
        xml = _REPLY.format(
            content=cdata_safe(text),
            source=cdata_safe(self._reply_source(inbound)),
            target=cdata_safe(inbound.sender),
            time=now,
        )
        if not opened.encrypted:
            return xml
        if self._cipher is None:  # open() refuses an envelope it cannot decrypt
            raise RuntimeError(f"{self.name}: encrypted message without a key")
        encrypted = self._cipher.encrypt(xml.encode())
        nonce, timestamp = reply_nonce(opened.nonce), str(now)
        return _ENVELOPE.format(
            encrypt=encrypted,
            signature=signature(self.token, timestamp, nonce, encrypted),
            timestamp=timestamp,
            nonce=nonce,
        )
