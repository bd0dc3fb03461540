"""WeChat's message encryption (the same for Official Accounts and WeCom), keyed once.

AES-256-CBC with key = base64(EncodingAESKey + "="), IV = the key's first 16 bytes,
PKCS#7 padding to 32 bytes; the plaintext is 16 random bytes, the message length
(4 bytes, big-endian), the message, then the receive id (the app id, or WeCom's corp id).

Why not wechatpy's ``WeChatCrypto``: it builds a new cipher for every message and
decodes and re-encodes text on the way; here the key is decoded and the cipher built
once per channel, and the plaintext stays bytes until the XML parser reads it.
"""

from __future__ import annotations

import base64
import binascii
import os
import re

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32  # WeChat pads to 32 bytes, not AES's 16
# Canonical base64 only: lenient decoders skip stray characters, and even binascii's
# strict mode takes a trailing "=" after a full quad; a different text must not open.
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


class CipherError(Exception):
    """The ciphertext cannot be opened; ``reason`` says why (never the key or plaintext)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def aes_key(encoding_aes_key: str) -> bytes:
    key = base64.b64decode(encoding_aes_key + "=")
    if len(key) != 32:
        raise ValueError("EncodingAESKey must be 43 characters of base64")
    return key


class MessageCipher:
    """One key and receive id: open what WeChat sent, seal what we answer."""

    __slots__ = ("_cipher", "_receive_id")

    def __init__(self, encoding_aes_key: str, receive_id: str) -> None:
        key = aes_key(encoding_aes_key)
        self._cipher = Cipher(algorithms.AES(key), modes.CBC(key[:16]))
        self._receive_id = receive_id.encode()

    def decrypt(self, encrypted: str) -> bytes:
        """The message inside ``encrypted`` (strict base64), for our receive id only."""
        if not _BASE64.fullmatch(encrypted):
            raise CipherError("Encrypt is not base64")
        data = binascii.a2b_base64(encrypted)
        if not data or len(data) % 16:
            raise CipherError("cannot decrypt (length)")
        decryptor = self._cipher.decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or len(plain) < 16 + 4 + pad:
            raise CipherError("cannot decrypt (padding)")
        content = plain[16 : len(plain) - pad]
        length = int.from_bytes(content[:4], "big")
        if 4 + length > len(content):
            raise CipherError("cannot decrypt (length)")
        if content[4 + length :] != self._receive_id:
            raise CipherError("cannot decrypt (receive id)")
        return content[4 : 4 + length]

    def encrypt(self, message: bytes) -> str:
        """Base64 ciphertext of ``message`` for our receive id."""
        body = os.urandom(16) + len(message).to_bytes(4, "big") + message + self._receive_id
        pad = BLOCK - len(body) % BLOCK
        encryptor = self._cipher.encryptor()
        sealed = encryptor.update(body + bytes((pad,)) * pad) + encryptor.finalize()
        return base64.b64encode(sealed).decode("ascii")
