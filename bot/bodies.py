"""Reading a request body with a cap: the webhooks and the simulator refuse what is too large
before holding it all in memory."""

from __future__ import annotations

from starlette.requests import Request

from bot.channels.common import MAX_BODY, Refusal


async def read_capped(request: Request) -> bytes:
    """The body, refusing (without reading it all) anything over 64 KiB."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY:
        raise Refusal(400, "body larger than 64 KiB")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise Refusal(400, "body larger than 64 KiB")
        chunks.append(chunk)
    return b"".join(chunks)
