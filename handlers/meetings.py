"""会议 / 参加 / 请假 / 会议情况 / 签到码 / 签到: 三会一课 in chat.

A secretary arranges a meeting in a short dialog; members answer 参加 or 请假; at the
meeting the secretary shows a 4-digit code valid for 30 minutes and members check in
with it. Replies and check-ins are the branch's meeting record. A code has 10,000
values, so each member gets MAX_WRONG_CODES wrong tries per meeting, counted in
``check_in_with_code`` (every way of checking in goes through it) and shown to the
secretary in 会议情况.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import pairwise

from sqlmodel import Session, col, select

from bot.audit import actor_of, record
from bot.dialogs import DialogState
from bot.messages import normalise
from bot.outbox.campaigns import create_campaign
from bot.router import SECRETARIES, Context, MemberContext
from bot.store import Branch, Member
from bot.store.members import branch_members
from bot.store.models import Dialog, Meeting, MeetingReply, saved_id
from handlers.listing import names
from scheduler.dates import weekday_name

DIALOG = "meeting"
TYPES = ["支部党员大会", "支委会", "党小组会", "党课", "主题党日"]
STEP_WINDOW = timedelta(minutes=30)
CODE_VALID = timedelta(minutes=30)
RECENT = timedelta(hours=3)
MAX_WRONG_CODES = 5
TOO_MANY_WRONG = (
    f"签到码错误次数过多（已输错 {MAX_WRONG_CODES} 次），本次会议不能再用签到码签到。如确已到会，请当面请书记登记。"
)


def _when(meeting: Meeting, ctx: MemberContext) -> str:
    local = meeting.starts_at.astimezone(ctx.config.tz)
    return f"{local.month}月{local.day}日（{weekday_name(local)}）{local:%H:%M}"


@dataclass(frozen=True)
class MeetingDraft(DialogState):
    """The meeting being arranged: the step it waits on, and what is filled in so far."""

    step: str = "type"
    type: str = ""
    when: datetime | None = None
    place: str = ""
    topic: str = ""


# What a step makes of the secretary's reply: the draft with it filled in (on to the next
# step), a sentence to say while staying on this step, or None: the text is not meant
# for the dialog (the router tries it as a command).
Taken = MeetingDraft | str | None


@dataclass(frozen=True)
class Step:
    """One step of the 会议 dialog: what to ask, how to take the reply, and the hint
    when a reply does not fit."""

    name: str
    ask: Callable[[MemberContext, MeetingDraft], str]
    take: Callable[[MemberContext, MeetingDraft, str], Taken]
    hint: str = "请继续填写"


def _ask_type(ctx: MemberContext, draft: MeetingDraft) -> str:
    options = " ".join(f"{i} {name}" for i, name in enumerate(TYPES, start=1))
    return f"安排会议。请选择会议类型（回复数字或名称）：\n{options}\n随时回复「取消」可放弃。"


def _take_type(ctx: MemberContext, draft: MeetingDraft, text: str) -> Taken:
    if text.isdigit() and 1 <= int(text) <= len(TYPES):
        return replace(draft, type=TYPES[int(text) - 1])
    return replace(draft, type=text) if text in TYPES else None


def _ask_time(ctx: MemberContext, draft: MeetingDraft) -> str:
    return f"会议类型：{draft.type}。请回复会议时间，例如 {(ctx.now + timedelta(days=3)):%Y-%m-%d} 15:00。"


def _take_time(ctx: MemberContext, draft: MeetingDraft, text: str) -> Taken:
    try:
        when = datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=ctx.config.tz)
    except ValueError:
        return None
    if when <= ctx.now:
        return "会议时间须晚于现在，请重新回复，如 2026-12-04 15:00。"
    return replace(draft, when=when)


def _ask_confirm(ctx: MemberContext, draft: MeetingDraft) -> str:
    topic = f"\n主题：{draft.topic}" if draft.topic else ""
    when = f"{draft.when:%Y-%m-%d %H:%M}" if draft.when else ""
    return (
        f"请确认会议通知：\n{draft.type}\n时间：{when}\n地点：{draft.place}{topic}\n"
        "回复「确认」发给全支部，回复「取消」放弃。"
    )


def _take_confirm(ctx: MemberContext, draft: MeetingDraft, text: str) -> Taken:
    if text != "确认":
        return None
    ctx.end_dialog()
    if ctx.role not in SECRETARIES:  # demoted since 「会议」: the router read the role afresh
        return "您的角色已变更，会议通知没有发出。"
    return _publish(ctx, draft)


STEPS: tuple[Step, ...] = (
    Step("type", _ask_type, _take_type, hint="请回复会议类型的数字（1-5）"),
    Step("time", _ask_time, _take_time, hint="请按「2026-12-04 15:00」的格式回复会议时间"),
    Step("place", lambda ctx, draft: "请回复会议地点。", lambda ctx, draft, text: replace(draft, place=text[:100])),
    Step(
        "topic",
        lambda ctx, draft: "请回复会议主题（没有可回复「无」）。",
        lambda ctx, draft, text: replace(draft, topic="" if text == "无" else text[:200]),
    ),
    Step("confirm", _ask_confirm, _take_confirm, hint="请回复「确认」发出通知"),
)
STEP_NAMED = {s.name: s for s in STEPS}
NEXT_STEP = {s.name: following for s, following in pairwise(STEPS)}


def start(ctx: MemberContext) -> str:
    draft = MeetingDraft(step=STEPS[0].name)
    ctx.start_dialog(DIALOG, draft, expires_at=ctx.now + STEP_WINDOW)
    return STEPS[0].ask(ctx, draft)


def step(ctx: MemberContext, dialog: Dialog) -> str | None:
    """Take the reply to the current step; on to the next step's question."""
    text = ctx.args.strip()
    if text == "取消":
        ctx.end_dialog()
        return "已取消会议安排。"
    draft = MeetingDraft.load(dialog.data)
    taken = STEP_NAMED[draft.step].take(ctx, draft, text)
    if not isinstance(taken, MeetingDraft):
        return taken
    following = NEXT_STEP[draft.step]  # the last step (confirm) never returns a draft
    taken = replace(taken, step=following.name)
    ctx.start_dialog(DIALOG, taken, expires_at=ctx.now + STEP_WINDOW)
    return following.ask(ctx, taken)


def _publish(ctx: MemberContext, draft: MeetingDraft) -> str:
    branch = ctx.db.get(Branch, ctx.scope.branch_id)
    branch_name = branch.name if branch else "本支部"
    assert draft.when is not None  # the time step comes before confirm
    when = draft.when
    meeting = Meeting(
        branch_id=ctx.scope.branch_id,
        type=draft.type,
        starts_at=when,
        place=draft.place,
        topic=draft.topic,
        created_by=ctx.member_id,
        created_at=ctx.now,
    )
    ctx.db.add(meeting)
    ctx.db.flush()
    topic = f"，主题：{meeting.topic}" if meeting.topic else ""
    text = (
        f"{_when(meeting, ctx)} 在{meeting.place}召开{meeting.type}{topic}。"
        "请回复「参加」，不能参加请回复「请假 理由」。"
    )
    members = branch_members(ctx.db, [meeting.branch_id])
    campaign = create_campaign(
        ctx.db,
        kind="meeting",
        title=f"{meeting.type}通知",
        text=text,
        member_ids=[m.id for m in members if m.id is not None],
        now=ctx.now,
        branch_id=meeting.branch_id,
        created_by=meeting.created_by,
        robot=True,
    )
    meeting.campaign_id = campaign.id
    ctx.db.add(meeting)
    record(
        ctx.db,
        ctx.now,
        actor_of(ctx.member),
        "会议通知",
        f"{branch_name} {meeting.type} {when:%Y-%m-%d %H:%M} {meeting.place}",
    )
    return f"已向{branch_name} {len(members)} 人发出{meeting.type}通知。发送「会议情况」查看回复。"


def hint(ctx: MemberContext, dialog: Dialog) -> str:
    current = STEP_NAMED.get(MeetingDraft.load(dialog.data).step, STEPS[0])
    return current.hint + "，或回复「取消」放弃。"


def expired(ctx: MemberContext, dialog: Dialog) -> str | None:
    if ctx.args.strip() == "确认":
        return "会议安排超过 30 分钟没有继续，已作废，没有发出通知。请重新发送「会议」。"
    return None


def _current(ctx: MemberContext) -> Meeting | None:
    """The branch's next meeting, or the one that has just begun."""
    upcoming = ctx.db.exec(
        select(Meeting)
        .where(col(Meeting.branch_id) == ctx.member.branch_id, col(Meeting.starts_at) >= ctx.now - RECENT)
        .order_by(col(Meeting.starts_at))
    ).first()
    if upcoming is not None:
        return upcoming
    return ctx.db.exec(
        select(Meeting).where(col(Meeting.branch_id) == ctx.member.branch_id).order_by(col(Meeting.starts_at).desc())
    ).first()


def _reply_row(ctx: MemberContext, meeting: Meeting) -> MeetingReply:
    row = ctx.db.exec(
        select(MeetingReply).where(
            col(MeetingReply.meeting_id) == meeting.id, col(MeetingReply.member_id) == ctx.member_id
        )
    ).first()
    return row or MeetingReply(meeting_id=saved_id(meeting.id), member_id=ctx.member_id)


def attend(ctx: MemberContext) -> str:
    meeting = _current(ctx)
    if meeting is None or meeting.starts_at < ctx.now - RECENT:
        return "近期没有需要回复的会议。"
    row = _reply_row(ctx, meeting)
    row.answer, row.reason, row.answered_at = "参加", "", ctx.now
    ctx.db.add(row)
    return f"已登记：您将参加 {_when(meeting, ctx)} 的{meeting.type}（{meeting.place}）。"


def leave(ctx: MemberContext) -> str:
    meeting = _current(ctx)
    if meeting is None or meeting.starts_at < ctx.now - RECENT:
        return "近期没有需要请假的会议。"
    reason = ctx.args.strip()
    if not reason:
        return "请说明请假理由，例如「请假 出差」。"
    row = _reply_row(ctx, meeting)
    row.answer, row.reason, row.answered_at = "请假", reason[:200], ctx.now
    ctx.db.add(row)
    return f"已登记请假（{reason[:50]}）：{_when(meeting, ctx)} 的{meeting.type}。会后请及时补学会议内容。"


@dataclass
class MeetingRecord:
    """Who replied what and who checked in: the branch's record of one meeting."""

    members: list[Member]
    replies: dict[int, MeetingReply]
    going: list[Member]
    away: list[Member]
    silent: list[Member]
    checked: list[Member]


def meeting_record(db: Session, meeting: Meeting) -> MeetingRecord:
    members = branch_members(db, [meeting.branch_id])
    replies = {
        r.member_id: r for r in db.exec(select(MeetingReply).where(col(MeetingReply.meeting_id) == meeting.id)).all()
    }
    going = [m for m in members if (r := replies.get(saved_id(m.id))) and r.answer == "参加"]
    away = [m for m in members if (r := replies.get(saved_id(m.id))) and r.answer == "请假"]
    silent = [m for m in members if m not in going and m not in away]
    checked = [m for m in members if (r := replies.get(saved_id(m.id))) and r.checked_in_at]
    return MeetingRecord(members, replies, going, away, silent, checked)


def report(ctx: MemberContext) -> str:
    meeting = _current(ctx)
    if meeting is None:
        return "本支部还没有安排过会议。发送「会议」安排一次。"
    rec = meeting_record(ctx.db, meeting)
    members, replies, going, away, silent, checked = (
        rec.members,
        rec.replies,
        rec.going,
        rec.away,
        rec.silent,
        rec.checked,
    )
    guessing = [(m, r.wrong_codes) for m in members if (r := replies.get(saved_id(m.id))) and r.wrong_codes]
    lines = [
        f"{meeting.type}：{_when(meeting, ctx)}，{meeting.place}",
        f"参加 {len(going)} 人" + (f"：{names(going)}" if going else ""),
    ]
    if away:
        lines.append(
            f"请假 {len(away)} 人：" + "；".join(f"{m.name}（{replies[saved_id(m.id)].reason}）" for m in away)
        )
    lines.append(f"未回复 {len(silent)} 人" + (f"：{names(silent)}" if silent else ""))
    lines.append(f"已签到 {len(checked)}/{len(members)} 人" + (f"：{names(checked)}" if checked else ""))
    if guessing:
        lines.append(
            "签到码输错："
            + "、".join(f"{m.name} {n} 次" + ("（已停止签到）" if n >= MAX_WRONG_CODES else "") for m, n in guessing)
        )
    return "\n".join(lines)


def checkin_code(ctx: MemberContext) -> str:
    meeting = _current(ctx)
    if meeting is None or not code_allowed(meeting, ctx.now):
        return "前后 3 小时内没有本支部的会议，无法生成签到码。"
    issue_code(ctx.db, meeting, ctx.now)
    assert meeting.checkin_until is not None
    until = meeting.checkin_until.astimezone(ctx.config.tz)
    return f"{meeting.type}签到码：{meeting.checkin_code}（{until:%H:%M} 前有效）。请参会同志发送「签到 {meeting.checkin_code}」。"


def code_allowed(meeting: Meeting, now: datetime) -> bool:
    """A check-in code is issued only within 3 hours either side of the meeting."""
    return abs(meeting.starts_at - now) <= RECENT


def issue_code(db: Session, meeting: Meeting, now: datetime) -> None:
    """A fresh 4-digit code, valid for 30 minutes (chat 签到码 and the console alike)."""
    meeting.checkin_code = f"{secrets.randbelow(10_000):04d}"
    meeting.checkin_until = now + CODE_VALID
    db.add(meeting)


def check_in(ctx: MemberContext) -> str:
    code = ctx.args.strip()
    if not code.isdigit() or len(code) != 4:
        return "请发送「签到 四位签到码」，签到码请向书记索取。"
    return check_in_with_code(ctx, code)


def check_in_with_code(ctx: MemberContext, code: str) -> str:
    """Check the member in with a meeting's code: the one place the wrong-code limit is
    kept. A wrong code counts against each of the branch's meetings whose code is open
    now; a member who reached the limit for a meeting is refused even the right code."""
    open_now = ctx.db.exec(
        select(Meeting).where(
            col(Meeting.branch_id) == ctx.member.branch_id,
            col(Meeting.checkin_code) != "",
            col(Meeting.checkin_until) >= ctx.now,
        )
    ).all()
    rows = {meeting.id: _reply_row(ctx, meeting) for meeting in open_now}
    if any(row.wrong_codes >= MAX_WRONG_CODES and not row.checked_in_at for row in rows.values()):
        return TOO_MANY_WRONG
    meeting = ctx.db.exec(
        select(Meeting)
        .where(col(Meeting.branch_id) == ctx.member.branch_id, col(Meeting.checkin_code) == code)
        .order_by(col(Meeting.starts_at).desc())
    ).first()
    if meeting is None or meeting.id not in rows:
        for row in rows.values():
            row.wrong_codes += 1
            ctx.db.add(row)
        if meeting is not None:
            return "签到码已过期（有效期 30 分钟），请向书记索取新的签到码。"
        tried = max((row.wrong_codes for row in rows.values()), default=0)
        if tried >= MAX_WRONG_CODES:
            return TOO_MANY_WRONG
        left = f"还可尝试 {MAX_WRONG_CODES - tried} 次。" if tried else ""
        return f"签到码不正确，请核对后重试。{left}"
    row = rows[meeting.id]
    if row.checked_in_at:
        return f"您已签到过了（{row.checked_in_at.astimezone(ctx.config.tz):%H:%M}）。"
    row.checked_in_at = ctx.now
    if not row.answer:
        row.answer, row.answered_at = "参加", ctx.now
    ctx.db.add(row)
    return f"签到成功：{meeting.type}，{ctx.now.astimezone(ctx.config.tz):%H:%M}。"


_SCANNED_CHECKIN = re.compile(r"(?:签到\s*)?(\d{4})")
SCAN_HINT = "扫码内容不是会议签到码。签到请扫描书记出示的签到二维码，或发送「签到 四位签到码」。"


def command_for_scan(result: str) -> str | None:
    """The check-in command a scanned meeting QR code stands for: its text is
    「签到 NNNN」 (bare four digits also do). Routed like a typed 签到, so roles and
    the attempt limits apply alike."""
    matched = _SCANNED_CHECKIN.fullmatch(normalise(result))
    return f"签到 {matched.group(1)}" if matched else None


def scan_button(ctx: Context) -> str:
    """A scan menu button whose result is no check-in code."""
    return SCAN_HINT
