"""The ASGI app: /wechat and /wecom webhooks, health, metrics and the simulator.

Handlers run in worker threads (the store is synchronous). A retried delivery that
arrives while the original is still being handled waits for it and gets the same reply;
one that arrives later gets the reply recorded in the store.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import parse_qsl

import anyio
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot.bodies import read_capped
from bot.channels.base import Channel, Opened
from bot.channels.common import Refusal
from bot.channels.wechat import WechatChannel
from bot.channels.wecom import WecomChannel
from bot.config import Config
from bot.engine import Clock, Engine, system_clock
from bot.messages import Inbound, kind_label, log_safe
from bot.metrics import Metrics
from bot.outbox.worker import OutboxWorker
from bot.router import Registry
from bot.store import Store
from bot.store.db import WriterLockTimeout
from bot.store.nonces import claim_nonce, nonce_key
from scheduler.runner import JobRunner

log = logging.getLogger("branchbot.app")
APOLOGY = "系统暂时繁忙，请稍后再发一次。"
DUPLICATE_WAIT_SECONDS = 4.0


@dataclass
class Webhooks:
    engine: Engine
    metrics: Metrics
    budget: float = 3.0
    limiter: anyio.CapacityLimiter = field(default_factory=lambda: anyio.CapacityLimiter(8))
    inflight: dict[str, asyncio.Future[str]] = field(default_factory=dict)
    senders: dict[str, tuple[asyncio.Lock, int]] = field(default_factory=dict)
    # Late pushes run as tasks; the loop keeps only weak references, so we hold them until done.
    late: set[asyncio.Future[None]] = field(default_factory=set)
    # Metric children by label values, looked up once rather than per message.
    counted: dict[tuple[str, str, str], Counter] = field(default_factory=dict)
    timers: dict[str, Histogram] = field(default_factory=dict)

    async def reply_for(self, inbound: Inbound) -> tuple[str, str]:
        """(reply text, outcome) for one delivery, coalescing concurrent retries.

        A reply that takes longer than ``wechat.reply_budget_ms`` is not waited for:
        WeChat gets an empty answer at once, and the reply follows through the outbox."""
        pending = self.inflight.get(inbound.key)
        if pending is not None:
            try:
                return await asyncio.wait_for(asyncio.shield(pending), DUPLICATE_WAIT_SECONDS), "duplicate"
            except Exception:
                return "", "duplicate_unanswered"
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.inflight[inbound.key] = future
        started = time.perf_counter()
        work = asyncio.ensure_future(self._handle(inbound, started))
        try:
            reply, outcome = await asyncio.wait_for(asyncio.shield(work), self.budget)
        except TimeoutError:
            work.add_done_callback(lambda done: self._deliver_late(inbound, done))
            reply, outcome = "", "deferred"
        self.inflight.pop(inbound.key, None)
        future.set_result(reply)
        return reply, outcome

    async def _handle(self, inbound: Inbound, started: float) -> tuple[str, str]:
        # One sender's messages are handled in the order they arrived, even when an
        # earlier one overran the budget and is still running.
        conversation = inbound.conversation
        lock, users = self.senders.get(conversation, (asyncio.Lock(), 0))
        self.senders[conversation] = (lock, users + 1)
        try:
            async with lock:
                try:
                    reply = await anyio.to_thread.run_sync(self.engine.handle, inbound, limiter=self.limiter)
                    outcome = "ok"
                except WriterLockTimeout:  # logged by the lock, with its holder
                    reply, outcome = APOLOGY, "busy"
                except Exception:
                    log.exception("handler failed for %s message %s", inbound.channel, log_safe(inbound.key, 120))
                    reply, outcome = APOLOGY, "error"
        finally:
            lock, users = self.senders[conversation]
            if users == 1:
                del self.senders[conversation]
            else:
                self.senders[conversation] = (lock, users - 1)
        timer = self.timers.get(inbound.channel)
        if timer is None:
            timer = self.timers[inbound.channel] = self.metrics.latency.labels(inbound.channel)
        timer.observe(time.perf_counter() - started)
        return reply, outcome

    def _deliver_late(self, inbound: Inbound, done: asyncio.Future[tuple[str, str]]) -> None:
        if done.cancelled() or done.exception() is not None:
            return
        reply, _ = done.result()
        if reply:
            task = asyncio.ensure_future(anyio.to_thread.run_sync(self.engine.push_reply, inbound, reply))
            self.late.add(task)
            task.add_done_callback(self._late_done)

    def _late_done(self, task: asyncio.Future[None]) -> None:
        self.late.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("late reply push failed", exc_info=task.exception())

    async def serve(self, channel: Channel, request: Request) -> Response:
        if not channel.token:
            # Safe by construction: with no token anyone could sign (`serve` refuses to
            # start this way too, but an app built otherwise must not answer either).
            return self._refused(channel.name, Refusal(503, f"{channel.name}.token is not configured"))
        now = self.engine.clock()
        params = query_params(request)
        if request.method == "GET":
            try:
                return PlainTextResponse(channel.verify_url(params, now))
            except Refusal as refusal:
                return self._refused(channel.name, refusal)
        try:
            body = await read_capped(request)
            opened: Opened = channel.open(params, body, now)
            fresh = True if opened.encrypted else await self._nonce_fresh(channel.name, params, body, now)
            if fresh is False:
                raise Refusal(403, "nonce reused with a different body")
        except Refusal as refusal:
            return self._refused(channel.name, refusal)
        except ClientDisconnect:
            log.warning("client hung up mid-body on /%s", channel.name)
            return Response(status_code=400)
        inbound = opened.inbound
        if fresh is None:  # the store is down: the nonce cannot be checked, nor the message handled
            reply, outcome = APOLOGY, "error"
        else:
            reply, outcome = await self.reply_for(inbound)
        self._count(channel.name, kind_label(inbound.kind), outcome)
        if log.isEnabledFor(logging.INFO):  # hashing and escaping only for a line someone will read
            log.info(
                "message channel=%s sender=%s kind=%s outcome=%s",
                channel.name,
                hashlib.sha256(inbound.sender.encode()).hexdigest()[:12],
                log_safe(inbound.kind, 24),
                outcome,
            )
        return Response(channel.seal(opened, reply), media_type="application/xml")

    async def _nonce_fresh(self, channel: str, params: dict[str, str], body: bytes, now: datetime) -> bool | None:
        """A plaintext signature covers token, timestamp and nonce but not the body: its
        second use with another body is a replay (a byte-identical retry is welcome).
        None when the store cannot say."""
        key = nonce_key(channel, params.get("timestamp", ""), params.get("nonce", ""))
        try:
            return await anyio.to_thread.run_sync(claim_nonce, self.engine.store, key, body, now, limiter=self.limiter)
        except Exception as exc:
            log.warning("nonce check failed on /%s: store unavailable (%s)", channel, type(exc).__name__)
            return None

    def _count(self, channel: str, kind: str, outcome: str) -> None:
        """One message in the counter; each label set's child is looked up once, not per
        message (the labels come from fixed sets: kind_label, outcomes, statuses)."""
        key = (channel, kind, outcome)
        child = self.counted.get(key)
        if child is None:
            child = self.counted[key] = self.metrics.messages.labels(channel, kind, outcome)
        child.inc()

    def _refused(self, channel: str, refusal: Refusal) -> Response:
        self._count(channel, "-", f"refused_{refusal.status}")
        if log.isEnabledFor(logging.WARNING):
            log.warning("refused %s request: %s", channel, log_safe(refusal.reason, 120))
        return PlainTextResponse(refusal.reason, status_code=refusal.status)


def query_params(request: Request) -> dict[str, str]:
    """The query string as a dict (the last of repeated keys, blanks kept), as Starlette's
    ``dict(request.query_params)`` gives, without building its multi-dict first."""
    return dict(parse_qsl(request.scope["query_string"].decode("latin-1"), keep_blank_values=True))


def create_app(
    config: Config,
    store: Store,
    clock: Clock = system_clock,
    background: bool = False,
    registry: Registry | None = None,
) -> Starlette:
    """The app. With ``background`` it also runs the outbox worker and the scheduler
    (``branchbot serve`` does; tests drive those directly)."""
    from handlers import build_registry

    store.set_lock_timeout(config.database.lock_timeout_seconds)
    worker = OutboxWorker(store, config, clock) if background else None
    engine = Engine(store, config, registry or build_registry(), clock, on_push=worker.wake if worker else None)
    metrics = Metrics(store)
    # SQLite takes one writer at a time anyway: more handler threads only fight over the GIL.
    threads = anyio.CapacityLimiter(1 if store.is_sqlite else 8)
    hooks = Webhooks(engine, metrics, budget=config.wechat.reply_budget_ms / 1000, limiter=threads)
    wechat = WechatChannel(config.wechat)
    wecom = WecomChannel(config.wecom, config.wechat.replay_window) if config.wecom.enabled else None

    async def wechat_endpoint(request: Request) -> Response:
        return await hooks.serve(wechat, request)

    async def wecom_endpoint(request: Request) -> Response:
        if wecom is None:
            return PlainTextResponse("WeCom is not configured", status_code=404)
        return await hooks.serve(wecom, request)

    async def healthz(_: Request) -> Response:
        try:
            await anyio.to_thread.run_sync(store.ping)
        except Exception as exc:
            return JSONResponse({"status": "error", "database": type(exc).__name__}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def metrics_endpoint(_: Request) -> Response:
        # The store collector queries the database: never on the event loop's thread.
        body = await anyio.to_thread.run_sync(generate_latest, metrics.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    routes: list[BaseRoute] = [
        Route("/wechat", wechat_endpoint, methods=["GET", "POST"]),
        Route("/wecom", wecom_endpoint, methods=["GET", "POST"]),
        Route("/healthz", healthz),
        Route("/metrics", metrics_endpoint),
    ]
    if config.console.enabled:
        from bot.console import console_routes

        routes += console_routes(config, store, clock)
    if config.simulator.enabled:
        from bot.simulator import is_loopback, simulator_routes

        if is_loopback(config.server.host):
            routes += simulator_routes(config, store, clock)
        else:  # it speaks for any member: never on an address others can reach
            log.warning("simulator not mounted: server.host %s is not a loopback address", log_safe(config.server.host))

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        runner = None
        if worker is not None:
            worker.start()
            if config.scheduler.enabled:
                runner = JobRunner(store, config, clock, on_push=worker.wake)
                await anyio.to_thread.run_sync(runner.start)
        try:
            yield
        finally:
            if runner:
                runner.stop()
            if worker:
                await anyio.to_thread.run_sync(worker.stop)

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.engine = engine
    app.state.webhooks = hooks
    return app


def app_from_environment() -> Starlette:
    """The app of one ``serve --workers N`` process: config from ``BRANCHBOT_CONFIG``."""
    from bot.config import load_config
    from bot.redact import setup_logging
    from bot.serving import configure
    from bot.store import create_store
    from bot.store.migrate import check

    config = load_config(os.environ["BRANCHBOT_CONFIG"])
    setup_logging(config, logging.INFO)
    configure(config.server)  # this worker's connections get the configured read deadlines
    store = create_store(config.database.url, lock_timeout=config.database.lock_timeout_seconds)
    check(store)  # a respawned worker checks the schema as `serve` did
    return create_app(config, store, background=True)
