"""Who is writing: binding a WeChat account to the roster, following and unfollowing."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import col, select

from bot.audit import record
from bot.outbox.campaigns import create_campaign
from bot.router import Context, not_bound
from bot.store import BindAttempt, Branch, Member, Role
from bot.store.members import active_members

MAX_FAILED_BINDS = 5  # per sender an hour
ENTRY_MAX_FAILURES = 10  # per roster entry an hour, from any senders: then the entry locks
LOCKOUT = timedelta(hours=1)
BIND_USAGE = "绑定格式：绑定 姓名 手机号后四位，例如「绑定 张三 1234」。"
# One answer for a name not on the roster, wrong digits and a locked entry: a guesser
# learns nothing about which names exist or which entry it has locked.
REFUSED = "姓名或手机号后四位与支部名册不符，请核对后重试；如确认无误仍无法绑定，请联系支部书记协助。"


def _branch_name(ctx: Context, member: Member) -> str:
    branch = ctx.db.get(Branch, member.branch_id)
    return branch.name if branch else ""


def bind(ctx: Context) -> str:
    if ctx.inbound.channel != "wechat":
        if ctx.member:
            return f"您已通过企业微信账号识别为{ctx.member.name}同志，无需绑定。"
        return "名册中没有您的企业微信账号，请联系支部书记在名册中补充「企业微信账号」。"
    if ctx.member:
        return f"您已绑定为{_branch_name(ctx, ctx.member)}的{ctx.member.name}同志，无需重复绑定。"
    parts = ctx.args.split()
    if len(parts) != 2 or not re.fullmatch(r"\d{4}", parts[1]):
        return BIND_USAGE
    name, digits = parts
    openid = ctx.inbound.sender
    failures = _recent_failures(ctx, openid)
    if failures >= MAX_FAILED_BINDS:
        return "绑定尝试次数过多，请 1 小时后再试，或联系支部书记协助绑定。"
    candidates = [
        m
        for m in ctx.db.exec(active_members(col(Member.name) == name).order_by(col(Member.id))).all()
        if not _locked(m, ctx.now)
    ]
    matching = [m for m in candidates if m.phone.endswith(digits)]
    if not matching:
        ctx.db.add(BindAttempt(openid=openid, ok=False, at=ctx.now))
        for entry in candidates:  # a guess at this name: it counts against each entry of that name
            _count_against(ctx, entry, openid)
        left = MAX_FAILED_BINDS - failures - 1
        return REFUSED + (f"还可尝试 {left} 次。" if left else "尝试次数已用完，请 1 小时后再试。")
    if len(matching) > 1:
        return f"名册中有多位「{name}」且手机号后四位相同，请联系支部书记协助绑定。"
    member = matching[0]
    if member.openid and member.openid != openid:
        return f"「{name}」已绑定其他微信。如需更换微信，请联系支部书记解除原绑定。"
    member.openid, member.bound_at, member.subscribed = openid, ctx.now, True
    ctx.db.add(member)
    ctx.db.add(BindAttempt(openid=openid, ok=True, at=ctx.now))
    return (
        f"绑定成功！欢迎{_branch_name(ctx, member)}的{member.name}同志。\n"
        "发送「答题」参加本月党史党纪知识测试，发送「帮助」查看全部功能。"
    )


def _locked(member: Member, now: datetime) -> bool:
    return member.bind_locked_until is not None and member.bind_locked_until > now


def _recent_failures(ctx: Context, openid: str) -> int:
    """The sender's failed attempts in the last hour (rows not tied to a roster entry)."""
    since = ctx.now - LOCKOUT
    return ctx.db.exec(
        select(func.count(col(BindAttempt.id))).where(
            col(BindAttempt.openid) == openid,
            col(BindAttempt.ok) == False,
            col(BindAttempt.at) > since,
            col(BindAttempt.member_id).is_(None),
        )
    ).one()


def _count_against(ctx: Context, entry: Member, openid: str) -> None:
    """Record a failed guess at ``entry``; the tenth within the hour (since any earlier
    lock ended) locks it for an hour, is audited, and is reported to the branch."""
    ctx.db.add(BindAttempt(openid=openid, ok=False, at=ctx.now, member_id=entry.id))
    ctx.db.flush()
    since = ctx.now - LOCKOUT
    if entry.bind_locked_until is not None and entry.bind_locked_until > since:
        since = entry.bind_locked_until
    count = ctx.db.exec(
        select(func.count(col(BindAttempt.id))).where(
            col(BindAttempt.member_id) == entry.id, col(BindAttempt.ok) == False, col(BindAttempt.at) > since
        )
    ).one()
    if count < ENTRY_MAX_FAILURES:
        return
    entry.bind_locked_until = ctx.now + LOCKOUT
    ctx.db.add(entry)
    branch = _branch_name(ctx, entry)
    until = entry.bind_locked_until.astimezone(ctx.config.tz)
    who = f"{entry.name}（{branch}，{entry.role}）"
    record(
        ctx.db,
        ctx.now,
        "系统",
        "绑定锁定",
        f"{who}：1 小时内 {count} 次绑定失败（来自多个微信号），锁定至 {until:%Y-%m-%d %H:%M}",
    )
    recipients = [
        m.id
        for m in ctx.db.exec(
            active_members(col(Member.branch_id) == entry.branch_id, col(Member.role) == Role.SECRETARY.value)
        ).all()
    ]
    if entry.role in (Role.SECRETARY.value, Role.ADMIN.value):
        recipients += [m.id for m in ctx.db.exec(active_members(col(Member.role) == Role.ADMIN.value)).all()]
    text = (
        f"{who}的身份绑定在 1 小时内失败 {count} 次，已暂停绑定至 {until:%m月%d日 %H:%M}。"
        "如非本人操作，可能有人在猜测其手机号后四位；本人可在此后重新绑定，如有疑问请核实后协助。"
    )
    create_campaign(
        ctx.db,
        kind="bind_lock",
        title="绑定异常提醒",
        text=text,
        member_ids=[m for m in recipients if m != entry.id],
        now=ctx.now,
        branch_id=entry.branch_id,
    )


def welcome(ctx: Context) -> str:
    if ctx.member:
        ctx.member.subscribed = True
        ctx.db.add(ctx.member)
        return f"欢迎回来，{ctx.member.name}同志！发送「答题」参加本月测试，发送「帮助」查看全部功能。"
    after = "绑定后即可" if ctx.inbound.channel == "wechat" else "添加后即可"
    return "欢迎关注党支部学习助手！\n" + not_bound(ctx) + f"\n{after}参加每月党史党纪知识测试、查看积分和排行榜。"


def unsubscribe(ctx: Context) -> str:
    if ctx.member:
        ctx.member.subscribed = False
        ctx.db.add(ctx.member)
    return ""


PHOTO_HINT = "暂时无法处理图片。请发送文字指令，例如「答题」「积分」；发送「帮助」查看全部功能。"
LOCATION_HINT = "暂时无法处理位置信息。请发送文字指令，发送「帮助」查看全部功能。"


def photo_button(ctx: Context) -> str:
    """A photo menu button (pic_sysphoto / pic_photo_or_album / pic_weixin) while nothing
    asks for a picture."""
    return PHOTO_HINT


def location_button(ctx: Context) -> str:
    return LOCATION_HINT


def unsupported(ctx: Context) -> str:
    return "暂时只能识别文字消息哦。请发送文字指令，例如「答题」「积分」；发送「帮助」查看全部功能。"
