"""通知 / 定时通知 / 通知状态 / 取消定时: a secretary's broadcast to the branch.

Every broadcast is previewed with its recipient count and sent only on 确认; the
preview waits 10 minutes and says so when a late 确认 arrives.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, select

from bot.audit import actor_of, record
from bot.errcodes import ERRCODE_TEXT
from bot.outbox.worker import create_campaign
from bot.router import Context
from bot.store import Branch, Member, Role
from bot.store.models import Campaign, Delivery, Dialog
from handlers import notices
from handlers.scope import branch_members, is_admin, names, pick_branches, reachable

DIALOG = "broadcast"
CONFIRM_WINDOW = timedelta(minutes=10)
MAX_BYTES = 2048  # WeCom text and the Official Account's customer-service text both stop near here


def reason(delivery: Delivery) -> str:
    if delivery.errcode in ERRCODE_TEXT:
        return ERRCODE_TEXT[delivery.errcode]  # type: ignore[index]
    return delivery.errmsg or (f"错误码 {delivery.errcode}" if delivery.errcode else "原因不明")


def notice(ctx: Context) -> str:
    """通知 alone lists the unread inbox; with content, secretaries and admins broadcast."""
    if not ctx.args:
        return notices.show_inbox(ctx)
    assert ctx.member is not None
    if ctx.member.role == Role.MEMBER.value:
        record(ctx.db, ctx.now, actor_of(ctx.member), "拒绝", f"党员尝试发布通知：{ctx.args[:100]}")
        return "发布通知仅限支部书记和管理员。发送「通知」可查看您的未读通知。"
    return _preview(ctx, ctx.args, None)


def scheduled_notice(ctx: Context) -> str:
    parts = ctx.args.split(" ", 2)
    if len(parts) < 3:
        return "定时通知格式：定时通知 2026-12-01 09:00 通知内容"
    try:
        when = datetime.strptime(f"{parts[0]} {parts[1]}", "%Y-%m-%d %H:%M").replace(tzinfo=ctx.config.tz)
    except ValueError:
        return f"时间「{parts[0]} {parts[1]}」格式不对，应为 YYYY-MM-DD HH:MM，如 2026-12-01 09:00。"
    problem = schedule_problem(when, ctx.now)
    if problem:
        return problem
    return _preview(ctx, parts[2], when)


def schedule_problem(when: datetime, now: datetime) -> str | None:
    """Why a notice cannot be scheduled for ``when`` (chat and console alike)."""
    if when <= now:
        return "定时发送的时间须晚于现在。"
    if when > now + timedelta(days=90):
        return "定时通知最多可提前 90 天安排。"
    return None


def text_problem(content: str) -> str | None:
    """Why a notice's text cannot be sent: WeChat's size limit."""
    size = len(content.encode())
    if size > MAX_BYTES:
        return (
            f"通知内容过长：微信单条消息最多 {MAX_BYTES} 字节（约 680 个汉字），当前 {size} 字节。请精简或分几次发送。"
        )
    return None


def recipients_of(db: Session, branch_ids: list[int]) -> tuple[list[Member], int]:
    """(the notice's recipients, how many of them can be reached)."""
    recipients = branch_members(db, branch_ids)
    return recipients, sum(1 for m in recipients if reachable(m))


def send_notice(
    db: Session,
    now: datetime,
    sender: Member | None,
    text: str,
    branch_ids: list[int],
    target: str,
    when: datetime | None,
    actor: str,
) -> tuple[Campaign, int]:
    """Create the broadcast (now, or scheduled for ``when``) and audit it: (campaign, recipients)."""
    recipients = branch_members(db, branch_ids)
    branch_id = branch_ids[0] if len(branch_ids) == 1 else None
    campaign = create_campaign(
        db,
        kind="broadcast",
        title="支部通知",
        text=text,
        member_ids=[m.id for m in recipients],  # type: ignore[misc]
        now=now,
        branch_id=branch_id,
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


def _preview(ctx: Context, text: str, when: datetime | None) -> str:
    branches, content = pick_branches(ctx, text.strip())
    if not content:
        return "请在「通知」后写上通知内容。" + (
            "管理员可写「通知 支部名 内容」或「通知 全部 内容」。" if is_admin(ctx) else ""
        )
    problem = text_problem(content)
    if problem:
        return problem
    recipients, bound = recipients_of(ctx.db, [b.id for b in branches if b.id is not None])
    target = "全部支部" if len(branches) > 1 else branches[0].name
    ctx.start_dialog(
        DIALOG,
        {
            "text": content,
            "branch_ids": [b.id for b in branches],
            "target": target,
            "when": when.isoformat() if when else "",
        },
        expires_at=ctx.now + CONFIRM_WINDOW,
    )
    timing = f"将于 {when:%Y-%m-%d %H:%M} 发送给" if when else "即将发送给"
    return (
        f"{timing}{target}：\n——\n{content}\n——\n"
        f"收件人 {len(recipients)} 人（已绑定 {bound} 人，未绑定 {len(recipients) - bound} 人收不到）。\n"
        "回复「确认」发送，回复「取消」放弃（10 分钟内有效）。"
    )


def confirm(ctx: Context, dialog: Dialog) -> str | None:
    word = ctx.args.strip()
    if word not in ("确认", "取消"):
        return None
    ctx.end_dialog()
    if word == "取消":
        return "已取消，通知没有发送。"
    data = dialog.data
    # The role was checked at 「通知」; read it again from the store now: a secretary
    # demoted or moved to another branch within the 10 minutes sends nothing.
    role = ctx.role
    if role not in (Role.SECRETARY.value, Role.ADMIN.value) or (
        role != Role.ADMIN.value and list(data["branch_ids"]) != [ctx.member.branch_id]
    ):  # type: ignore[union-attr]
        return "您的角色或所在支部已变更，这条通知没有发送。"
    when = datetime.fromisoformat(data["when"]) if data["when"] else None
    campaign, _ = send_notice(
        ctx.db, ctx.now, ctx.member, data["text"], data["branch_ids"], data["target"], when, actor_of(ctx.member)
    )
    if data["when"]:
        return f"已安排定时通知 #{campaign.id}，将于 {data['when'][:16].replace('T', ' ')} 发送。如需撤回，发送「取消定时 {campaign.id}」。"
    return f"已发送，通知编号 #{campaign.id}。稍后发送「通知状态 {campaign.id}」查看送达情况。"


def confirm_hint(ctx: Context, dialog: Dialog) -> str:
    return "有一条通知等待确认：回复「确认」发送，或回复「取消」放弃。"


def expired(ctx: Context, dialog: Dialog) -> str | None:
    if ctx.args.strip() in ("确认", "取消"):
        return "这条通知超过 10 分钟没有确认，已自动作废，没有发送。如需发送，请重新发「通知 内容」。"
    return None


def _visible_campaign(ctx: Context, number: int | None) -> Campaign | None:
    assert ctx.member is not None
    return visible_campaign(ctx.db, ctx.member, number)


def visible_campaign(db: Session, viewer: Member, number: int | None) -> Campaign | None:
    """A broadcast this secretary (own branch) or admin (any) may see; the latest without a number."""
    if number is not None and not 0 <= number < 2**31:  # a 32-bit id column: PostgreSQL refuses larger
        return None
    query = select(Campaign).where(Campaign.kind == "broadcast")
    if viewer.role != Role.ADMIN.value:
        query = query.where(Campaign.branch_id == viewer.branch_id)
    if number is not None:
        query = query.where(Campaign.id == number)
    return db.exec(query.order_by(Campaign.id.desc())).first()  # type: ignore[union-attr]


def delivery_groups(db: Session, campaign: Campaign) -> tuple[int, dict[str, list[tuple[Delivery, Member]]]]:
    """(recipients, deliveries by outcome): sent, failed, inbox, unbound, skipped, pending/sending."""
    rows = db.exec(
        select(Delivery, Member)
        .join(Member, Member.id == Delivery.member_id)
        .where(Delivery.campaign_id == campaign.id)
        .order_by(Member.id)
    ).all()
    by: dict[str, list[tuple[Delivery, Member]]] = {}
    for delivery, member in rows:
        key = delivery.status
        if key == "skipped" and delivery.errmsg == "未绑定":
            key = "unbound"
        by.setdefault(key, []).append((delivery, member))
    return len(rows), by


def status(ctx: Context) -> str:
    arg = ctx.args.strip().lstrip("#")
    if arg and not arg.isdigit():
        return "用法：通知状态 或 通知状态 编号"
    campaign = _visible_campaign(ctx, int(arg) if arg else None)
    if campaign is None:
        return f"没有找到通知 #{arg}（只能查看本支部的通知）。" if arg else "本支部还没有发过通知。"
    total, by = delivery_groups(ctx.db, campaign)
    when = (campaign.send_after or campaign.created_at).astimezone(ctx.config.tz)
    branch = ctx.db.get(Branch, campaign.branch_id) if campaign.branch_id else None
    lines = [
        f"通知 #{campaign.id}（{when:%m月%d日 %H:%M}，{branch.name if branch else '全部支部'}）共 {total} 人：",
        f"已送达 {len(by.get('sent', []))} 人",
    ]
    if campaign.cancelled_at:
        lines.insert(1, "该定时通知已撤回。")
    elif campaign.send_after and campaign.send_after > ctx.now:
        lines.insert(1, "定时通知，尚未到发送时间。")
    if failed := by.get("failed"):
        lines.append(f"发送失败 {len(failed)} 人：" + "；".join(f"{m.name}（{reason(d)}）" for d, m in failed[:20]))
    if inbox := by.get("inbox"):
        lines.append(
            f"存入未读通知 {len(inbox)} 人（超过 48 小时未与公众号互动，下次发消息时会看到）：{names([m for _, m in inbox])}"
        )
    if unbound := by.get("unbound"):
        lines.append(f"未绑定、收不到 {len(unbound)} 人：{names([m for _, m in unbound])}")
    if other := by.get("skipped"):
        lines.append(
            f"跳过 {len(other)} 人：" + "；".join(f"{m.name}（{d.errmsg or '已取消关注'}）" for d, m in other[:20])
        )
    waiting = by.get("pending", []) + by.get("sending", [])
    if waiting:
        lines.append(f"等待发送 {len(waiting)} 人")
    return "\n".join(lines)


def cancel_scheduled(ctx: Context) -> str:
    arg = ctx.args.strip().lstrip("#")
    if not arg.isdigit():
        return "用法：取消定时 编号"
    campaign = _visible_campaign(ctx, int(arg))
    if campaign is None or campaign.send_after is None:
        return f"没有找到定时通知 #{arg}（只能撤回本支部的定时通知）。"
    problem = withdraw(ctx.db, ctx.now, campaign, actor_of(ctx.member))
    if problem:
        return problem
    return f"已撤回定时通知 #{arg}，不会发送。"


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
        .where(Delivery.campaign_id == campaign.id, Delivery.status == "pending")  # type: ignore[call-overload]
        .values(status="skipped", errmsg="已撤回", updated_at=now)
    )
    record(db, now, actor, "撤回定时通知", f"#{campaign.id}")
    return None
