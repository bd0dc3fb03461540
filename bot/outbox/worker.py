"""Working off deliveries: claim, send, mark.

A claim sets a delivery to ``sending`` with a lease, which the worker renews for as long
as it is still working through the claim. A worker that dies leaves its claims behind;
once their lease has passed, any worker takes them over (attempts + 1). The one
unavoidable gap is between WeChat accepting a message and our marking it sent: a crash
exactly there re-sends that message after the lease. WeCom's duplicate check suppresses
such a re-send; on the Official Account the member may see it twice (see README).

A delivery that fails for a reason that may pass (the API down or slow, rate limits,
token trouble) waits and is tried again, with exponential backoff capped at
``outbox.retry_max_seconds``, until ``outbox.retry_window`` after its first failure;
only then, or at once for a permanent errcode, does it end ``failed``. When the API is
down, a pass stops calling it after BREAKER_FAILURES failures in a row and reschedules
the rest of its claim untried, so an outage costs a few calls a pass, not thousands.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import httpx
from sqlalchemy import ColumnElement, and_, func, or_, update
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from bot.config import Config
from bot.outbox import demo
from bot.outbox.senders import (
    RETRY,
    WECOM_BATCH,
    GroupRobot,
    OfficialAccount,
    Outcome,
    Outgoing,
    PlatformError,
    RateLimiter,
    TransportError,
    WecomApp,
)
from bot.outbox.tokens import TokenStore
from bot.store import Branch, Member, Store
from bot.store.members import is_active
from bot.store.models import WAITING, Campaign, Delivery, DeliveryStatus, saved_id

log = logging.getLogger("branchbot.outbox")
CLAIM_BATCH = 2000
MARK_GROUP = 50  # outcomes per bulk update, at most
MARK_DELAY = 0.05  # seconds a finished send may wait to share a bulk update
BREAKER_FAILURES = 10  # transient failures in a row, on one platform, that pause it for the rest of a pass
Attempts = dict[int, tuple[int, datetime | None]]  # delivery id → (attempts, failing since) as claimed


class Route(StrEnum):
    """Which way a claimed delivery goes; the skip routes go nowhere, and say why."""

    WECHAT = "wechat"
    WECOM = "wecom"
    DEMO = "demo"
    SKIP_UNBOUND = "skip:unbound"
    SKIP_UNSUBSCRIBED = "skip:unsubscribed"
    SKIP_TRANSFERRED = "skip:transferred"


SKIPS = {Route.SKIP_UNBOUND: "未绑定", Route.SKIP_UNSUBSCRIBED: "已取消关注", Route.SKIP_TRANSFERRED: "已转出"}
# A route and what groups its sends: the campaign for WeCom (one call takes a batch of a
# campaign's recipients), 0 for the routes that send one message per call.
RouteKey = tuple[Route, int]


def _not_yet(now: datetime) -> SelectOfScalar[int | None]:
    """The campaigns whose deliveries wait: scheduled for later, or cancelled."""
    return select(col(Campaign.id)).where(or_(col(Campaign.send_after) > now, col(Campaign.cancelled_at).is_not(None)))


class Breaker:
    """Per pass and platform: after BREAKER_FAILURES retryable failures in a row (no
    success between), further sends are not attempted; they are rescheduled as retries."""

    PAUSED = Outcome(RETRY, errcode=-2, errmsg="接口暂时不可用，本轮暂停发送，稍后重试")

    def __init__(self) -> None:
        self.failures: dict[str, int] = defaultdict(int)
        self.lock = threading.Lock()

    def open(self, platform: str) -> bool:
        return self.failures[platform] >= BREAKER_FAILURES

    def record(self, platform: str, outcomes: Iterable[Outcome]) -> None:
        with self.lock:
            for outcome in outcomes:
                if outcome.status == RETRY:
                    self.failures[platform] += 1
                elif outcome.status in (DeliveryStatus.SENT, DeliveryStatus.INBOX):
                    self.failures[platform] = 0


@dataclass
class Claimed:
    delivery: Delivery
    member: Member
    campaign: Campaign
    branch: str

    @property
    def id(self) -> int:
        """The delivery's id."""
        return saved_id(self.delivery.id)


class OutboxWorker:
    def __init__(
        self,
        store: Store,
        config: Config,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``clock`` and ``sleep`` (the waits between quick retries inside one call) are
        replaced in tests by a fake clock."""
        self.store = store
        self.config = config
        self.clock = clock
        cfg = config.outbox
        timeout = httpx.Timeout(cfg.timeout_seconds)
        limits = httpx.Limits(max_connections=cfg.concurrency * 2, max_keepalive_connections=cfg.concurrency * 2)
        tokens = TokenStore(store, clock)
        self._clients = [
            httpx.Client(base_url=config.wechat.api_base, timeout=timeout, limits=limits),
            httpx.Client(base_url=config.wecom.api_base, timeout=timeout, limits=limits),
            httpx.Client(base_url=config.robots.api_base, timeout=timeout, limits=limits),
        ]
        # `serve --workers N` runs N outbox workers: each takes its share of the limits.
        share = config.server.workers
        self.wechat = OfficialAccount(
            config.wechat,
            self._clients[0],
            tokens,
            RateLimiter(cfg.wechat_per_second / share),
            cfg.retry_base_seconds / 4,
            sleep,
        )
        self.wecom = WecomApp(
            config.wecom,
            self._clients[1],
            tokens,
            RateLimiter(cfg.wecom_per_second / share),
            cfg.retry_base_seconds / 4,
            sleep,
        )
        self.robot = GroupRobot(config.robots, self._clients[2], max(1, cfg.robot_per_minute // share))
        # The simulator's loopback channel stands in for the platforms while none is configured.
        self.demo = demo.DemoChannel() if demo.demo_active(config) else None
        self.pool = ThreadPoolExecutor(max_workers=cfg.concurrency, thread_name_prefix="outbox")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Work in the background (the serving process); unfinished campaigns resume."""
        self._thread = threading.Thread(target=self._loop, name="outbox-worker", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=10)
        self.pool.shutdown(wait=True)
        for client in self._clients:
            client.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once()
            except Exception:
                log.exception("outbox pass failed")
                busy = 0
            if not busy:
                self._wake.wait(self.config.outbox.poll_seconds)
                self._wake.clear()

    def drain(self, max_seconds: float = 600) -> None:
        """Work until nothing is left that could still be sent within ``max_seconds``
        (for CLI and tests): deliveries waiting to retry later stay for the service."""
        deadline = self.clock() + timedelta(seconds=max_seconds)
        while self.clock() < deadline:
            if self.run_once():
                continue
            if not self._unfinished(deadline):
                return
            self._stop.wait(min(self.config.outbox.poll_seconds, 0.2))

    # ------------------------------------------------------------------ one pass

    def run_once(self) -> int:
        """One pass: post what waits for group robots, claim a batch of deliveries, skip
        those no platform can take, send the rest and mark each as it finishes."""
        posted = self._post_to_robots()
        claimed = self._claim()
        if not claimed:
            self._close_finished_campaigns()
            return posted
        by_route: dict[RouteKey, list[Claimed]] = defaultdict(list)
        for item in claimed:
            by_route[self._route(item)].append(item)
        attempts: Attempts = {c.id: (c.delivery.attempts, c.delivery.failing_since) for c in claimed}
        skipped = self._skip_unreachable(by_route, attempts)
        unmarked = {c.id for c in claimed} - skipped
        lost: set[int] = set()  # claims another worker took over: not to be sent from here
        futures = self._submit_sends(by_route, lost)
        self._mark_as_they_finish(futures, attempts, claimed[0].delivery.claim, unmarked, lost)
        self._close_finished_campaigns()
        return len(claimed)

    def _skip_unreachable(self, by_route: dict[RouteKey, list[Claimed]], attempts: Attempts) -> set[int]:
        """Mark the claims no platform can take as skipped, saying why; their delivery ids."""
        skipped = [(c, reason) for route, reason in SKIPS.items() for c in by_route.pop((route, 0), [])]
        if skipped:
            self._mark({c.id: Outcome(DeliveryStatus.SKIPPED, "", None, reason) for c, reason in skipped}, attempts)
        return {c.id for c, _ in skipped}

    def _submit_sends(
        self, by_route: dict[RouteKey, list[Claimed]], lost: set[int]
    ) -> list[Future[dict[int, Outcome]]]:
        """Every route's sends to the pool: one call per Official Account or demo message,
        one per WeCom batch (a campaign's recipients, up to the batch size)."""
        breaker = Breaker()
        wechat, demo_items = by_route.pop((Route.WECHAT, 0), []), by_route.pop((Route.DEMO, 0), [])
        futures = [self.pool.submit(self._send_wechat, item, lost, breaker) for item in wechat]
        futures += [self.pool.submit(self._send_demo, item, lost) for item in demo_items]
        for items in by_route.values():  # (Route.WECOM, campaign id)
            size = min(self.config.outbox.wecom_batch, WECOM_BATCH)
            futures += [
                self.pool.submit(self._send_wecom, items[i : i + size], lost, breaker)
                for i in range(0, len(items), size)
            ]
        return futures

    def _mark_as_they_finish(
        self,
        futures: list[Future[dict[int, Outcome]]],
        attempts: Attempts,
        token: str,
        unmarked: set[int],
        lost: set[int],
    ) -> None:
        """Wait for the sends, marking them as they finish and keeping the lease on the
        rest of the claim (``unmarked`` and ``lost`` are updated in place).

        Sends are marked as they finish, in one bulk update for those that finish close
        together: a finished send waits at most MARK_DELAY for others to share its mark.
        A crash so leaves only what is in flight, and what finished in the last
        MARK_DELAY, sent but unmarked, to be re-sent after the lease. (Waiting for a group
        of a fixed size instead held finished sends unmarked for as long as the group
        took to fill: seconds at Official Account rates.)
        A pass can outlast the lease (2,000 Official Account messages at 20 a second take
        100 s; with the API hanging, much longer), so the lease on what is still unmarked
        is renewed every third of it: no other worker takes over a claim this one is still
        working through, which would send those messages twice."""
        every = self.config.outbox.lease_seconds / 3
        renew_at = time.monotonic() + every
        finished: queue.SimpleQueue[Future[dict[int, Outcome]]] = queue.SimpleQueue()
        for future in futures:
            future.add_done_callback(finished.put)
        pending = len(futures)
        done: dict[int, Outcome] = {}
        mark_by = float("inf")
        while pending or done:
            try:
                while pending:
                    future = finished.get(timeout=max(0.0, min(renew_at, mark_by) - time.monotonic()))
                    pending -= 1
                    done.update(future.result())
                    if finished.empty() or len(done) >= MARK_GROUP:
                        break
            except queue.Empty:
                pass
            now = time.monotonic()
            if done and mark_by == float("inf"):
                mark_by = now + MARK_DELAY
            if done and (len(done) >= MARK_GROUP or not pending or now >= mark_by):
                self._mark(done, attempts)
                unmarked -= done.keys()
                done, mark_by = {}, float("inf")
            if now >= renew_at:
                lost |= self._renew(token, unmarked)
                renew_at = time.monotonic() + every

    def _route(self, item: Claimed) -> RouteKey:
        member = item.member
        if not is_active(member):  # marked 已转出 after the campaign was created
            return Route.SKIP_TRANSFERRED, 0
        if self.demo is not None and demo.takes(member):
            return Route.DEMO, 0
        if member.wecom_userid and self.wecom.configured:
            return Route.WECOM, saved_id(item.campaign.id)
        if member.openid and not member.subscribed:
            return Route.SKIP_UNSUBSCRIBED, 0
        if member.openid:  # without credentials the send fails with a clear reason, kept on the delivery
            return Route.WECHAT, 0
        return Route.SKIP_UNBOUND, 0

    def _outgoing(self, item: Claimed) -> Outgoing:
        when = item.campaign.created_at.astimezone(self.config.tz).strftime("%Y-%m-%d %H:%M")
        return Outgoing(
            item.id,
            saved_id(item.member.id),
            item.member.openid,
            item.member.wecom_userid,
            item.campaign.title,
            item.campaign.text,
            when,
            item.branch,
        )

    def _send_wechat(self, item: Claimed, lost: set[int], breaker: Breaker) -> dict[int, Outcome]:
        if item.id in lost:
            return {}
        if not self.wechat.configured:
            return {item.id: Outcome(DeliveryStatus.FAILED, "wechat_kf", None, "未配置公众号 app_id / app_secret")}
        if breaker.open("wechat"):
            return {item.id: Breaker.PAUSED}
        outcome = self.wechat.send(self._outgoing(item))
        breaker.record("wechat", [outcome])
        return {item.id: outcome}

    def _send_demo(self, item: Claimed, lost: set[int]) -> dict[int, Outcome]:
        if item.id in lost or self.demo is None:
            return {}
        return {item.id: self.demo.send(self._outgoing(item))}

    def _send_wecom(self, items: list[Claimed], lost: set[int], breaker: Breaker) -> dict[int, Outcome]:
        items = [i for i in items if i.id not in lost]
        if not items:
            return {}
        if breaker.open("wecom"):
            return {i.id: Breaker.PAUSED for i in items}
        outcomes = self.wecom.send_batch([self._outgoing(i) for i in items])
        sent = any(o.status == DeliveryStatus.SENT for o in outcomes.values())  # one call, one verdict
        breaker.record("wecom", [Outcome(DeliveryStatus.SENT)] if sent else list(outcomes.values())[:1])
        return outcomes

    def _post_to_robots(self) -> int:
        """Group posts are at most once: claimed by flipping pending → posting first."""
        keys = self.config.robots.keys
        with self.store.session() as db:
            rows = db.exec(
                select(Campaign, Branch.name)
                .join(Branch, col(Branch.id) == Campaign.branch_id)
                .where(col(Campaign.robot_status) == "pending")
            ).all()
            todo = []
            for campaign, branch in rows:
                key = keys.get(branch)
                claimed = db.exec(
                    update(Campaign)
                    .where(col(Campaign.id) == campaign.id, col(Campaign.robot_status) == "pending")
                    .values(robot_status="posting" if key else "")
                ).rowcount
                if key and claimed:
                    todo.append(
                        (
                            campaign.id,
                            key,
                            f"【{campaign.title}】\n{campaign.text}" if campaign.title else campaign.text,
                        )
                    )
        for campaign_id, key, text in todo:
            try:
                self.robot.post(key, text, mentioned=["@all"])
                status = "sent"
            except (PlatformError, TransportError) as exc:
                status = f"failed {exc.errcode}"
            with self.store.session() as db:
                db.exec(update(Campaign).where(col(Campaign.id) == campaign_id).values(robot_status=status))
        return len(todo)

    # ------------------------------------------------------------------ store

    def _claimable(self, now: datetime) -> ColumnElement[bool]:
        return and_(
            or_(
                and_(
                    col(Delivery.status) == DeliveryStatus.PENDING,
                    or_(col(Delivery.next_attempt_at).is_(None), col(Delivery.next_attempt_at) <= now),
                ),
                and_(col(Delivery.status) == DeliveryStatus.SENDING, col(Delivery.lease_until) < now),
            ),
            col(Delivery.campaign_id).not_in(_not_yet(now)),
        )

    def _claim(self) -> list[Claimed]:
        now = self.clock()
        token = uuid.uuid4().hex
        lease = now + timedelta(seconds=self.config.outbox.lease_seconds)
        with self.store.session() as db:
            query = select(col(Delivery.id)).where(self._claimable(now)).order_by(col(Delivery.id)).limit(CLAIM_BATCH)
            if not self.store.is_sqlite:
                query = query.with_for_update(skip_locked=True)
            ids = list(db.exec(query).all())
            if not ids:
                return []
            db.execute(
                update(Delivery)
                .where(col(Delivery.id).in_(ids), self._claimable(now))
                .values(
                    status=DeliveryStatus.SENDING,
                    claim=token,
                    lease_until=lease,
                    attempts=Delivery.attempts + 1,
                    updated_at=now,
                )
            )
            rows = db.exec(
                select(Delivery, Member, Campaign, Branch.name)
                .join(Member, col(Member.id) == Delivery.member_id)
                .join(Campaign, col(Campaign.id) == Delivery.campaign_id)
                .join(Branch, col(Branch.id) == Member.branch_id)
                .where(col(Delivery.claim) == token)
            ).all()
            return [Claimed(d, m, c, b) for d, m, c, b in rows]

    def _renew(self, token: str, ids: set[int]) -> set[int]:
        """Extend the lease on the claims still being worked on; the ids among them that
        are no longer this claim's (this process stalled past its lease and another
        worker took them over)."""
        if not ids:
            return set()
        lease = self.clock() + timedelta(seconds=self.config.outbox.lease_seconds)
        ordered = sorted(ids)
        lost: set[int] = set()
        try:
            with self.store.session() as db:
                for start in range(0, len(ordered), 1000):
                    chunk = ordered[start : start + 1000]
                    renewed = db.exec(
                        update(Delivery)
                        .where(
                            col(Delivery.id).in_(chunk),
                            col(Delivery.claim) == token,
                            col(Delivery.status) == DeliveryStatus.SENDING,
                        )
                        .values(lease_until=lease)
                    ).rowcount
                    if renewed < len(chunk):
                        kept = set(
                            db.exec(
                                select(col(Delivery.id)).where(
                                    col(Delivery.id).in_(chunk), col(Delivery.claim) == token
                                )
                            ).all()
                        )
                        lost |= set(chunk) - kept
        except Exception:
            log.warning("outbox: could not renew the lease on %d claimed deliveries", len(ids), exc_info=True)
            return set()
        if lost:
            log.warning(
                "outbox: %d claimed deliveries were taken over by another worker; not sending them here", len(lost)
            )
        return lost

    def _mark(self, outcomes: dict[int, Outcome], attempts: Attempts) -> None:
        now = self.clock()
        cfg = self.config.outbox
        window = timedelta(seconds=cfg.retry_window)
        rows = []
        for delivery_id, outcome in outcomes.items():
            tries, failing_since = attempts[delivery_id]
            row = {
                "id": delivery_id,
                "via": outcome.via,
                "errcode": outcome.errcode,
                "errmsg": outcome.errmsg,
                "updated_at": now,
                "lease_until": None,
                "claim": "",
                "next_attempt_at": None,
                "failing_since": failing_since,
            }
            if outcome.status == RETRY:
                first = failing_since or now
                give_up_at = first + window
                if now < give_up_at:
                    wait = timedelta(
                        seconds=min(cfg.retry_max_seconds, cfg.retry_base_seconds * 2 ** min(tries - 1, 30))
                    )
                    row |= {
                        "status": DeliveryStatus.PENDING,
                        "next_attempt_at": min(now + wait, give_up_at),
                        "failing_since": first,
                    }
                else:
                    row |= {"status": DeliveryStatus.FAILED, "failing_since": first}
            else:
                row["status"] = outcome.status
            rows.append(row)
        with self.store.session() as db:
            db.execute(update(Delivery), rows)  # bulk update by primary key

    def _unfinished(self, due_by: datetime | None = None) -> int:
        """Deliveries that could still be sent now, or by ``due_by`` (scheduled broadcasts
        wait for their time; retries for theirs)."""
        now = self.clock()
        due = (
            []
            if due_by is None
            else [or_(col(Delivery.next_attempt_at).is_(None), col(Delivery.next_attempt_at) <= due_by)]
        )
        with self.store.session() as db:
            return db.exec(
                select(func.count(col(Delivery.id))).where(
                    col(Delivery.status).in_(WAITING),
                    col(Delivery.campaign_id).not_in(_not_yet(now)),
                    *due,
                )
            ).one()

    def _close_finished_campaigns(self) -> None:
        now = self.clock()
        with self.store.session() as db:
            open_ids = db.exec(select(col(Campaign.id)).where(col(Campaign.finished_at).is_(None))).all()
            for campaign_id in open_ids:
                waiting = db.exec(
                    select(func.count(col(Delivery.id))).where(
                        col(Delivery.campaign_id) == campaign_id, col(Delivery.status).in_(WAITING)
                    )
                ).one()
                if not waiting:
                    db.exec(update(Campaign).where(col(Campaign.id) == campaign_id).values(finished_at=now))
