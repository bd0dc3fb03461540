#!/usr/bin/env python3
"""Per-message cost of each layer of the /wechat request path, before and after (run by hand).

    .venv/bin/python bench/request_layers.py                  # this tree against main, about a minute
    .venv/bin/python bench/request_layers.py --before cade9f3 # compare with any git revision
    .venv/bin/python bench/request_layers.py --before ''      # this tree only
    .venv/bin/python bench/request_layers.py --json out.json

One safe-mode text message (``积分`` from a bound-looking OpenID, as WeChat sends it:
AES envelope, ``msg_signature``), taken apart layer by layer through the channel's
public methods, so the same script measures any revision of the code:

| layer | what runs |
|---|---|
| signature | ``check_signature`` over token, timestamp, nonce and the ciphertext |
| envelope parse | ``xml_fields`` of the outer body (to find ``Encrypt``) |
| open (all) | ``channel.open``: body checks, replay window, signature, envelope parse, AES decrypt, message parse, ``Inbound`` |
| seal plain | ``channel.seal`` of a reply to a plaintext message: the reply XML only |
| seal safe | ``channel.seal`` of a reply to an encrypted message: reply XML, AES, envelope, signature |
| handle stub | ``Webhooks.reply_for`` with an engine whose ``handle`` returns a fixed text: the retry coalescing and the worker-thread hop, no database |
| request | one whole ``POST /wechat`` through Starlette (the ASGI app called directly, as uvicorn would), stub engine, on asyncio and on uvloop |

Beside them, in the same process, the reference: wechatpy's own decrypt + parse + reply
+ encrypt (``WeChatCrypto.decrypt_message``, ``parse_message``, ``TextReply.render``,
``WeChatCrypto.encrypt_message``). The ``--before`` revision is exported with
``git archive`` into a temporary directory and measured by this same script in a
subprocess, alternating with this tree, ``--rounds`` times; each figure is the best
(lowest) round, in microseconds of process CPU time (all threads) per message. Speed is reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "benchtoken"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
APP_ID = "wx5823bf96d3bd56c7"
OPENID = "oBench0123456789abcdefghijk"
REPLY = "你的积分：本月 120 分，总计 860 分，支部第 3 名。"


# CPU time of the whole process (every thread): what a message costs the machine, and
# far steadier than wall time on a machine shared with other work.
clock = time.process_time


def per_call(fn: Callable[[], Any], seconds: float) -> float:
    """CPU µs per call: calibrate a batch to ~0.05 s, run batches for ``seconds``, keep the best."""
    n = 1
    while True:
        t = clock()
        for _ in range(n):
            fn()
        took = clock() - t
        if took > 0.05:
            break
        n *= 2
    best = took / n
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t = clock()
        for _ in range(n):
            fn()
        best = min(best, (clock() - t) / n)
    return best * 1e6


def per_call_async(make: Callable[[], Any], seconds: float, loop: asyncio.AbstractEventLoop) -> float:
    """CPU µs per awaited call, one in flight at a time, on ``loop``."""

    async def batch(n: int) -> float:
        t = clock()
        for _ in range(n):
            await make()
        return clock() - t

    n = 1
    while (took := loop.run_until_complete(batch(n))) < 0.05:
        n *= 2
    best = took / n
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        best = min(best, loop.run_until_complete(batch(n)) / n)
    return best * 1e6


def wechat_request(now: int, msg_id: int) -> tuple[dict[str, str], bytes]:
    from urllib.parse import parse_qsl

    from wechatpy.crypto import WeChatCrypto

    from bot.channels.common import signature

    xml = (
        f"<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>"
        f"<CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[积分]]></Content>"
        f"<MsgId>{msg_id}</MsgId></xml>"
    )
    nonce = "1372623149"
    envelope = WeChatCrypto(TOKEN, AES_KEY, APP_ID).encrypt_message(xml, nonce, str(now))
    encrypted = envelope.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    query = (
        f"signature={signature(TOKEN, str(now), nonce)}&timestamp={now}&nonce={nonce}&openid={OPENID}"
        f"&encrypt_type=aes&msg_signature={signature(TOKEN, str(now), nonce, encrypted)}"
    )
    return dict(parse_qsl(query)), envelope.encode()


def measure(seconds: float) -> dict[str, float]:
    """Every layer of the tree this interpreter imports ``bot`` from."""
    from bot.channels import common
    from bot.channels.wechat import WechatChannel
    from bot.config import WechatConfig

    results: dict[str, float] = {}
    now_dt = datetime.now(UTC)
    now = int(now_dt.timestamp())
    params, body = wechat_request(now, 24411234567890123)
    safe = WechatChannel(
        WechatConfig(app_id=APP_ID, token=TOKEN, encoding_aes_key=AES_KEY, mode="safe", replay_window=300)
    )
    encrypted = common.xml_fields(body)["Encrypt"]

    results["signature"] = per_call(
        lambda: common.check_signature(params["msg_signature"], TOKEN, params["timestamp"], params["nonce"], encrypted),
        seconds,
    )
    results["envelope parse"] = per_call(lambda: common.xml_fields(body), seconds)
    results["open (all)"] = per_call(lambda: safe.open(params, body, now_dt), seconds)
    opened = safe.open(params, body, now_dt)
    plain_opened = type(opened)(opened.inbound, False, opened.nonce)
    results["seal plain"] = per_call(lambda: safe.seal(plain_opened, REPLY), seconds)
    results["seal safe"] = per_call(lambda: safe.seal(opened, REPLY), seconds)
    results["open + seal"] = results["open (all)"] + results["seal safe"]

    loops: list[tuple[str, Callable[[], asyncio.AbstractEventLoop]]] = [("asyncio", asyncio.new_event_loop)]
    try:
        import uvloop

        loops.append(("uvloop", uvloop.new_event_loop))
    except ImportError:
        pass
    for name, new_loop in loops:
        loop = new_loop()
        asyncio.set_event_loop(loop)
        hooks, app = stub_app(safe)
        scope = asgi_scope(params, body)
        results[f"handle stub ({name})"] = per_call_async(
            lambda hooks=hooks: hooks.reply_for(opened.inbound), seconds, loop
        )
        results[f"request ({name})"] = per_call_async(
            lambda app=app, scope=scope: call_asgi(app, dict(scope), body), seconds, loop
        )
        loop.close()
    return results


class StubEngine:
    """Answers every message with the same text, at once: no store, no router."""

    def __init__(self) -> None:
        from bot.engine import system_clock

        self.clock = system_clock
        self.store = None

    def handle(self, inbound: Any) -> str:
        return REPLY

    def push_reply(self, inbound: Any, reply: str) -> None:
        pass


def stub_app(channel: Any) -> tuple[Any, Any]:
    import anyio
    from starlette.applications import Starlette
    from starlette.routing import Route

    import bot.app as app_module

    metrics_class = getattr(app_module, "Metrics", None)
    if metrics_class is None:  # moved out of bot/app.py
        from bot.metrics import Metrics as metrics_class  # type: ignore[no-redef]
    hooks = app_module.Webhooks(StubEngine(), metrics_class(), limiter=anyio.CapacityLimiter(1))  # type: ignore[arg-type]

    # A new key per delivery would be WeChat's next message; the same key would be a retry
    # answered from the in-flight table. Clear it so each call is handled, as a new message is.
    async def endpoint(request: Any) -> Any:
        hooks.inflight.clear()
        return await hooks.serve(channel, request)

    return hooks, Starlette(routes=[Route("/wechat", endpoint, methods=["GET", "POST"])])


def asgi_scope(params: dict[str, str], body: bytes) -> dict[str, Any]:
    """What uvicorn hands the app for WeChat's POST (built once: not the server's cost)."""
    from urllib.parse import urlencode

    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/wechat",
        "raw_path": b"/wechat",
        "root_path": "",
        "query_string": urlencode(params).encode(),
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"text/xml"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }


async def call_asgi(app: Any, scope: dict[str, Any], body: bytes) -> None:
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    if status != 200:
        raise RuntimeError(f"request answered {status}")


def reference(seconds: float) -> dict[str, float]:
    """wechatpy's own pipeline on the same message: the yardstick."""
    from wechatpy import parse_message
    from wechatpy.crypto import WeChatCrypto
    from wechatpy.replies import TextReply

    now = int(time.time())
    params, body = wechat_request(now, 24411234567890123)
    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
    text = body.decode()

    def pipeline() -> str:
        xml = crypto.decrypt_message(text, params["msg_signature"], params["timestamp"], params["nonce"])
        message = parse_message(xml)
        reply = TextReply(content=REPLY, message=message).render()
        return crypto.encrypt_message(reply, params["nonce"])

    xml = crypto.decrypt_message(text, params["msg_signature"], params["timestamp"], params["nonce"])
    message = parse_message(xml)
    reply = TextReply(content=REPLY, message=message).render()
    return {
        "wechatpy decrypt_message": per_call(
            lambda: crypto.decrypt_message(text, params["msg_signature"], params["timestamp"], params["nonce"]), seconds
        ),
        "wechatpy parse_message": per_call(lambda: parse_message(xml), seconds),
        "wechatpy TextReply.render": per_call(lambda: TextReply(content=REPLY, message=message).render(), seconds),
        "wechatpy encrypt_message": per_call(lambda: crypto.encrypt_message(reply, params["nonce"]), seconds),
        "wechatpy whole pipeline": per_call(pipeline, seconds),
    }


def run_tree(tree: Path, seconds: float) -> dict[str, float]:
    """This script's ``measure`` with ``bot`` imported from ``tree``, in a fresh interpreter."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run(
        [sys.executable, __file__, "--measure-only", "--seconds", str(seconds)],
        cwd=tree,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def export(rev: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="main", help="git revision to compare with ('' for none)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per tree (best kept)")
    parser.add_argument("--seconds", type=float, default=0.5, help="time per layer per round")
    parser.add_argument("--json", help="write the results here too")
    parser.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_only:
        print(json.dumps(measure(args.seconds)))
        return

    trees: dict[str, Path] = {"after": ROOT}
    with tempfile.TemporaryDirectory(prefix="bb-layers-") as tmp:
        if args.before:
            trees = {"before": export(args.before, Path(tmp)), **trees}
        best: dict[str, dict[str, float]] = {name: {} for name in trees}
        for _ in range(args.rounds):
            for name, tree in trees.items():
                for layer, micros in run_tree(tree, args.seconds).items():
                    best[name][layer] = min(micros, best[name].get(layer, float("inf")))
        ref: dict[str, float] = {}
        for _ in range(args.rounds):
            for layer, micros in reference(args.seconds).items():
                ref[layer] = min(micros, ref.get(layer, float("inf")))

    names = list(trees)
    header = f"{'layer (CPU µs per message)':<28}" + "".join(f"{n:>10}" for n in names)
    if len(names) == 2:
        header += f"{'ratio':>8}"
    print(header)
    for layer in best["after"]:
        row = f"{layer:<28}" + "".join(f"{best[n].get(layer, float('nan')):>10.1f}" for n in names)
        if len(names) == 2 and layer in best["before"]:
            row += f"{best['before'][layer] / best['after'][layer]:>7.2f}×"
        print(row)
    print()
    for layer, micros in ref.items():
        print(f"{layer:<28}{micros:>10.1f}")
    print(
        f"\nopen + seal vs wechatpy's whole pipeline: {best['after']['open + seal']:.1f} µs vs "
        f"{ref['wechatpy whole pipeline']:.1f} µs"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"trees": best, "reference": ref}, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
