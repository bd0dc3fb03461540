"""Campaigns: the one way anything is pushed, and the rules of a notice.

Chat (通知 / 定时通知 / 通知状态 / 取消定时, 催办, 会议), the CLI's ``broadcast``, the
scheduler's jobs and the console's 通知 page all create their pushes here, so a notice's
size limit, its recipients, its audit line and its delivery rows are the same whichever
door it came through. Each caller words its own preview and answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, update
from sqlmodel import Session, col, select

from bot.audit import record
from bot.store import Member
from bot.store.members import branch_members, only_active, reachable
from bot.store.models import Campaign, Delivery, DeliveryStatus

MAX_BYTES = 2048  # WeCom text and the Official Account's customer-service text both stop near here
NOTICE_TITLE = "支部通知"
SCHEDULE_AHEAD = timedelta(days=90)


def create_campaign(
    db: Session,
    *,
    kind: str,
    text: str,
    member_ids: Iterable[int],
    now: datetime,
    title: str = "",
    branch_id: int | None = None,
    created_by: int | None = None,
    job_run_id: int | None = None,
    robot: bool = False,
) -> Campaign:
    """A campaign and one pending delivery per active member (duplicates in the list, and
    members marked 已转出, are left out). With ``robot``, the text is also posted once
    into the branch's group robot, if it has one."""
    campaign = Campaign(
        kind=kind,
        title=title,
        text=text,
        branch_id=branch_id,
        created_by=created_by,
        job_run_id=job_run_id,
        created_at=now,
        robot_status="pending" if robot and branch_id else "",
    )
    db.add(campaign)
    db.flush()
    unique = only_active(db, member_ids)
    if unique:
        db.execute(
            insert(Delivery),
            [
                {"campaign_id": campaign.id, "member_id": m, "status": DeliveryStatus.PENDING, "updated_at": now}
                for m in unique
            ],
        )
    if not unique:
        campaign.finished_at = now
    return campaign


# ---------------------------------------------------------------- notices


def text_problem(content: str) -> str | None:
    """Why a notice's text cannot be sent: WeChat's size limit, counted in UTF-8 bytes."""
    size = len(content.encode())
    if size > MAX_BYTES:
        return (
            f"通知内容过长：微信单条消息最多 {MAX_BYTES} 字节（约 680 个汉字），当前 {size} 字节。请精简或分几次发送。"
        )
    return None


def schedule_problem(when: datetime, now: datetime) -> str | None:
    """Why a notice cannot be scheduled for ``when``."""
    if when <= now:
        return "定时发送的时间须晚于现在。"
    if when > now + SCHEDULE_AHEAD:
        return "定时通知最多可提前 90 天安排。"
    return None


@dataclass(frozen=True)
class Reach:
    """A notice's preview: who it is for (the branches' active members) and how many of
    them can be reached (bound, and still following)."""

    members: list[Member]
    bound: int

    @property
    def count(self) -> int:
        return len(self.members)

    @property
    def unbound(self) -> int:
        return len(self.members) - self.bound


def reach(db: Session, branch_ids: list[int]) -> Reach:
    members = branch_members(db, branch_ids)
    return Reach(members, sum(1 for m in members if reachable(m)))


def send_notice(
    db: Session,
    now: datetime,
    *,
    text: str,
    branch_ids: list[int],
    target: str,
    actor: str,
    sender: Member | None = None,
    when: datetime | None = None,
    title: str = NOTICE_TITLE,
) -> tuple[Campaign, int]:
    """The confirmed notice: a broadcast campaign to the branches' active members (now,
    or scheduled for ``when``), audited. A notice to one branch belongs to that branch
    (its secretary may follow it up); to several, to none. Returns (campaign, recipients)."""
    recipients = branch_members(db, branch_ids)
    campaign = create_campaign(
        db,
        kind="broadcast",
        title=title,
        text=text,
        member_ids=[m.id for m in recipients if m.id is not None],
        now=now,
        branch_id=branch_ids[0] if len(branch_ids) == 1 else None,
        created_by=sender.id if sender else None,
    )
    if when:
        campaign.send_after = when
        db.add(campaign)
    db.flush()
    record(
        db,
        now,
        actor,
        "定时通知" if when else "发布通知",
        f"#{campaign.id} → {target}（{len(recipients)} 人）：{text[:200]}",
    )
    return campaign, len(recipients)


def visible_campaign(db: Session, scope: list[int] | None, number: int | None) -> Campaign | None:
    """A notice within ``scope`` (branch ids; None for every branch); the latest without a number."""
    if number is not None and not 0 <= number < 2**31:  # a 32-bit id column: PostgreSQL refuses larger
        return None
    query = select(Campaign).where(Campaign.kind == "broadcast")
    if scope is not None:
        query = query.where(col(Campaign.branch_id).in_(scope))
    if number is not None:
        query = query.where(Campaign.id == number)
    return db.exec(query.order_by(col(Campaign.id).desc())).first()


def delivery_groups(db: Session, campaign: Campaign) -> tuple[int, dict[str, list[tuple[Delivery, Member]]]]:
    """(recipients, deliveries by outcome): sent, failed, inbox, unbound, skipped, pending/sending."""
    rows = db.exec(
        select(Delivery, Member)
        .join(Member, col(Member.id) == Delivery.member_id)
        .where(Delivery.campaign_id == campaign.id)
        .order_by(col(Member.id))
    ).all()
    by: dict[str, list[tuple[Delivery, Member]]] = {}
    for delivery, member in rows:
        key = delivery.status
        if key == DeliveryStatus.SKIPPED and delivery.errmsg == "未绑定":
            key = "unbound"
        by.setdefault(key, []).append((delivery, member))
    return len(rows), by


def withdraw(db: Session, now: datetime, campaign: Campaign, actor: str) -> str | None:
    """Withdraw a scheduled notice before its time; the reason it cannot be, otherwise."""
    number = campaign.id
    if campaign.send_after is None:
        return f"通知 #{number} 不是定时通知，已经发出，无法撤回。"
    if campaign.cancelled_at:
        return f"定时通知 #{number} 已经撤回过了。"
    if campaign.send_after <= now:
        return f"定时通知 #{number} 已到发送时间，无法撤回。发送「通知状态 {number}」查看送达情况。"
    campaign.cancelled_at = campaign.finished_at = now
    db.add(campaign)
    db.exec(
        update(Delivery)
        .where(col(Delivery.campaign_id) == campaign.id, col(Delivery.status) == DeliveryStatus.PENDING)
        .values(status=DeliveryStatus.SKIPPED, errmsg="已撤回", updated_at=now)
    )
    record(db, now, actor, "撤回定时通知", f"#{campaign.id}")
    return None
