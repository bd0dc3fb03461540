"""Monthly exports for secretaries and the Party committee office, as Excel workbooks.

Building the rows (plain Python values: str, int, float, naive local datetimes) is kept
apart from writing the workbook, so the numbers can be tested without opening a file
and the workbook layout is the same for every kind of export.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, func
from sqlmodel import Session, col, select

from bot.errcodes import errcode_reason
from bot.store import Attempt, Branch, Member, PointsEntry
from bot.store.members import active_members, is_active
from bot.store.models import Campaign, Delivery, Meeting, MeetingReply, saved_id

KINDS = {"scores": "测试成绩", "participation": "参与情况", "attendance": "会议考勤", "deliveries": "推送记录"}

DELIVERY_STATUS = {
    "pending": "待发送",
    "sending": "待发送",
    "sent": "已发送",
    "failed": "失败",
    "skipped": "跳过",
    "inbox": "待阅读",
}
CHANNELS = {
    "wecom": "企业微信",
    "wechat_kf": "公众号客服消息",
    "wechat_template": "公众号模板消息",
    "robot": "群机器人",
    "inbox": "未读通知",
    "demo": "演示模拟器",
}
CAMPAIGN_KINDS = {
    "monthly_quiz": "月度测试",
    "quiz_reminder": "月底催答",
    "nudge": "催办",
    "holiday": "廉洁过节",
    "birthday": "政治生日",
    "birthday_digest": "本月政治生日",
    "meeting": "会议通知",
    "broadcast": "支部通知",
    "reply": "延迟回复",
    "integrity": "每月廉政提醒",
    "contest": "抢答赛",
    "meeting_reminder": "会议提醒",
}

WIDTH_CAP = 50
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"


class ExportError(ValueError):
    """Bad export parameters (month, branch); the message is for the operator."""


@dataclass(frozen=True)
class Column:
    header: str
    kind: str = "text"  # text / int / number / percent / datetime


@dataclass
class Export:
    kind: str
    month: str
    columns: list[Column]
    rows: list[list[Any]] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.month} {KINDS[self.kind]}"


# ---------------------------------------------------------------- months and times


def parse_month(text: str) -> str:
    """'2026-11' (also '2026-1', '2026/11', '2026年11月') → '2026-11'; anything else is refused."""
    match = re.fullmatch(r"\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*月?\s*", text or "")
    if not match or not 1 <= int(match.group(2)) <= 12 or not 1900 <= int(match.group(1)) <= 9998:  # datetime's range
        raise ExportError(f"--month「{text}」不是有效月份，格式应为 YYYY-MM，如 2026-11")
    return f"{int(match.group(1)):04d}-{int(match.group(2)):02d}"


def month_bounds(month: str, tz: tzinfo) -> tuple[datetime, datetime]:
    """The month as [start, end) in the configured timezone: "this month" is a local notion."""
    year, number = (int(part) for part in month.split("-"))
    start = datetime(year, number, 1, tzinfo=tz)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=tz)
    return start, end


def local(value: datetime | None, tz: tzinfo) -> datetime | None:
    """Excel has no time zones: cells get naive datetimes in the configured zone."""
    if value is None:
        return None
    return value.astimezone(tz).replace(tzinfo=None)


# ---------------------------------------------------------------- rows


def _branch_names(db: Session) -> dict[int, str]:
    return {b.id: b.name for b in db.exec(select(Branch)).all() if b.id is not None}


def scores(db: Session, month: str, tz: tzinfo, branch_id: int | None = None) -> Export:
    """Every member on the roster plus anyone who took this month's quiz (a member
    transferred out later still has a score for the month). 累计积分 counts up to the end
    of the month, so exporting a past month gives the same numbers later on."""
    columns = [
        Column("支部"),
        Column("姓名"),
        Column("角色"),
        Column("状态"),
        Column("是否完成"),
        Column("得分", "int"),
        Column("答对题数", "int"),
        Column("完成时间", "datetime"),
        Column("本月积分", "int"),
        Column("累计积分", "int"),
    ]
    branches = _branch_names(db)
    attempts = {a.member_id: a for a in db.exec(select(Attempt).where(col(Attempt.month) == month)).all()}
    members = [m for m in db.exec(select(Member).order_by(col(Member.id))).all() if is_active(m) or m.id in attempts]
    this_month = _points(db, col(PointsEntry.month) == month)
    total = _points(db, col(PointsEntry.month) <= month)
    keyed: list[tuple[tuple[Any, ...], list[Any]]] = []
    for m in members:
        member_id = saved_id(m.id)
        attempt = attempts.get(member_id)
        row_branch = attempt.branch_id if attempt else m.branch_id
        if branch_id is not None and row_branch != branch_id:
            continue
        done, result, rank = _outcome(attempt, tz)
        points = [int(this_month.get(member_id) or 0), int(total.get(member_id) or 0)]
        row = [branches.get(row_branch, ""), m.name, m.role, m.status, done, *result, *points]
        keyed.append(((row_branch, *rank, m.id), row))
    keyed.sort(key=lambda pair: pair[0])
    return Export("scores", month, columns, [row for _, row in keyed])


def _points(db: Session, when: ColumnElement[bool]) -> dict[int, int]:
    """Points per member over the ledger entries ``when`` selects."""
    sums = db.exec(
        select(col(PointsEntry.member_id), func.sum(col(PointsEntry.amount)))
        .where(when)
        .group_by(col(PointsEntry.member_id))
    ).all()
    return {member_id: int(total or 0) for member_id, total in sums}


def _outcome(attempt: Attempt | None, tz: tzinfo) -> tuple[str, list[Any], tuple[int, int, datetime]]:
    """(是否完成, [得分, 答对题数, 完成时间], sort rank) of a member's month. Rows sort by branch
    in roster order, then the month's ranking (score, earlier completion), then the rest
    in roster order."""
    if attempt is not None and attempt.finished_at is not None:
        result = [attempt.score, attempt.correct, local(attempt.finished_at, tz)]
        return "是", result, (0, -attempt.score, attempt.finished_at.replace(tzinfo=None))
    return ("未答完" if attempt else "否"), [None, None, None], (1 if attempt else 2, 0, datetime.max)


def participation(db: Session, month: str, tz: tzinfo, branch_id: int | None = None) -> Export:
    """Per branch. 党员人数 is the roster (在册) plus anyone who finished that month in
    the branch, so a later transfer does not push a past month over 100%. 未绑定 means
    neither a bound WeChat nor a 企业微信账号: such a member cannot get any push."""
    columns = [
        Column("支部"),
        Column("党员人数", "int"),
        Column("已完成", "int"),
        Column("参与率", "percent"),
        Column("平均分", "number"),
        Column("未绑定人数", "int"),
    ]
    branches = _branch_names(db)
    members: dict[int, set[int]] = defaultdict(set)
    unbound: dict[int, int] = defaultdict(int)
    for m in db.exec(active_members()).all():
        members[m.branch_id].add(m.id)
        if not m.openid and not m.wecom_userid:
            unbound[m.branch_id] += 1
    scores_by_branch: dict[int, list[int]] = defaultdict(list)
    finished = select(Attempt).where(col(Attempt.month) == month, col(Attempt.finished_at).is_not(None))
    for attempt in db.exec(finished).all():
        members[attempt.branch_id].add(attempt.member_id)
        scores_by_branch[attempt.branch_id].append(attempt.score)
    rows: list[list[Any]] = []
    totals = [0, 0, 0]
    all_scores: list[int] = []
    for bid, name in sorted(branches.items()):  # roster order
        if branch_id is not None and bid != branch_id:
            continue
        count, done = len(members[bid]), len(scores_by_branch[bid])
        rows.append([name, count, done, done / count if count else 0.0, _average(scores_by_branch[bid]), unbound[bid]])
        totals = [totals[0] + count, totals[1] + done, totals[2] + unbound[bid]]
        all_scores += scores_by_branch[bid]
    if len(rows) > 1:
        rows.append(
            ["合计", totals[0], totals[1], totals[1] / totals[0] if totals[0] else 0.0, _average(all_scores), totals[2]]
        )
    return Export("participation", month, columns, rows)


def _average(values: list[int]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def attendance(db: Session, month: str, tz: tzinfo, branch_id: int | None = None) -> Export:
    """One row per meeting per person: the branch's members on the roster today, whether
    they replied or not, and anyone else who replied (moved or transferred since)."""
    columns = [
        Column("支部"),
        Column("会议类型"),
        Column("时间", "datetime"),
        Column("地点"),
        Column("主题"),
        Column("姓名"),
        Column("回复"),
        Column("请假理由"),
        Column("签到时间", "datetime"),
    ]
    start, end = month_bounds(month, tz)
    query = select(Meeting).where(col(Meeting.starts_at) >= start, col(Meeting.starts_at) < end)
    if branch_id is not None:
        query = query.where(col(Meeting.branch_id) == branch_id)
    meetings = db.exec(query.order_by(col(Meeting.starts_at), col(Meeting.id))).all()
    if not meetings:
        return Export("attendance", month, columns)
    branches = _branch_names(db)
    people = {m.id: m for m in db.exec(select(Member).order_by(col(Member.id))).all()}
    roster: dict[int, list[int]] = defaultdict(list)
    for m in people.values():
        if is_active(m):
            roster[m.branch_id].append(saved_id(m.id))
    replies: dict[int, dict[int, MeetingReply]] = defaultdict(dict)
    ids = [m.id for m in meetings]
    for given in db.exec(select(MeetingReply).where(col(MeetingReply.meeting_id).in_(ids))).all():
        replies[given.meeting_id][given.member_id] = given
    rows: list[list[Any]] = []
    for meeting in meetings:
        answered = replies[saved_id(meeting.id)]
        member_ids = roster[meeting.branch_id] + sorted(set(answered) - set(roster[meeting.branch_id]))
        for member_id in member_ids:
            reply = answered.get(member_id)
            rows.append(
                [
                    branches.get(meeting.branch_id, ""),
                    meeting.type,
                    local(meeting.starts_at, tz),
                    meeting.place,
                    meeting.topic,
                    people[member_id].name,
                    (reply.answer if reply else "") or "未回复",
                    reply.reason if reply else "",
                    local(reply.checked_in_at, tz) if reply else None,
                ]
            )
    return Export("attendance", month, columns, rows)


def deliveries(db: Session, month: str, tz: tzinfo, branch_id: int | None = None) -> Export:
    """Every delivery of the campaigns created in the month, plus a row for each group-robot
    post, so a secretary can see who never got a notice and why."""
    columns = [
        Column("推送编号", "int"),
        Column("类型"),
        Column("标题"),
        Column("内容"),
        Column("创建时间", "datetime"),
        Column("支部"),
        Column("姓名"),
        Column("状态"),
        Column("渠道"),
        Column("失败原因"),
        Column("更新时间", "datetime"),
    ]
    start, end = month_bounds(month, tz)
    campaigns = db.exec(
        select(Campaign)
        .where(col(Campaign.created_at) >= start, col(Campaign.created_at) < end)
        .order_by(col(Campaign.id))
    ).all()
    if not campaigns:
        return Export("deliveries", month, columns)
    branches = _branch_names(db)
    by_campaign = _deliveries_of(db, campaigns, branch_id)
    rows: list[list[Any]] = []
    for c in campaigns:
        head = [c.id, CAMPAIGN_KINDS.get(c.kind, c.kind), c.title, c.text, local(c.created_at, tz)]
        for delivery, member in by_campaign[saved_id(c.id)]:
            rows.append([*head, branches.get(member.branch_id, ""), member.name, *_delivery_cells(delivery, tz)])
        if c.robot_status and c.branch_id is not None and branch_id in (None, c.branch_id):
            rows.append([*head, branches.get(c.branch_id, ""), "（群机器人）", *_robot_cells(c, tz)])
    return Export("deliveries", month, columns, rows)


def _deliveries_of(
    db: Session, campaigns: Sequence[Campaign], branch_id: int | None
) -> dict[int, list[tuple[Delivery, Member]]]:
    """The campaigns' deliveries with their members (of one branch, when given), by campaign."""
    by_campaign: dict[int, list[tuple[Delivery, Member]]] = defaultdict(list)
    query = (
        select(Delivery, Member)
        .join(Member, col(Member.id) == col(Delivery.member_id))
        .where(col(Delivery.campaign_id).in_([c.id for c in campaigns]))
        .order_by(col(Delivery.id))
    )
    if branch_id is not None:
        query = query.where(col(Member.branch_id) == branch_id)
    for delivery, member in db.exec(query).all():
        by_campaign[delivery.campaign_id].append((delivery, member))
    return by_campaign


def _delivery_cells(delivery: Delivery, tz: tzinfo) -> list[Any]:
    """状态, 渠道, 失败原因, 更新时间 of one delivery (an inbox notice once read: 已阅读)."""
    status = DELIVERY_STATUS.get(delivery.status, delivery.status)
    if delivery.status == "inbox" and delivery.read_at is not None:
        status = "已阅读"
    return [
        status,
        CHANNELS.get(delivery.via, delivery.via),
        errcode_reason(delivery.errcode, delivery.errmsg),
        local(delivery.updated_at, tz),
    ]


def _robot_cells(campaign: Campaign, tz: tzinfo) -> list[Any]:
    """状态, 渠道, 失败原因, 更新时间 of a campaign's group-robot post ("sent", "failed <errcode>")."""
    state, _, code = campaign.robot_status.partition(" ")
    status = {"sent": "已发送", "failed": "失败"}.get(state, "待发送")
    reason = errcode_reason(int(code)) if code.lstrip("-").isdigit() else code
    return [status, CHANNELS["robot"], reason, local(campaign.finished_at, tz)]


BUILDERS: dict[str, Callable[[Session, str, tzinfo, int | None], Export]] = {
    "scores": scores,
    "participation": participation,
    "attendance": attendance,
    "deliveries": deliveries,
}


def build(db: Session, kind: str, month: str, tz: tzinfo, branch: str | None = None) -> Export:
    if kind not in BUILDERS:
        raise ExportError(f"不支持导出「{kind}」，可选：{'、'.join(BUILDERS)}")
    branch_id = None
    if branch:
        found = db.exec(select(Branch).where(col(Branch.name) == branch)).first()
        if found is None:
            raise ExportError(f"没有名为「{branch}」的支部")
        branch_id = found.id
    return BUILDERS[kind](db, parse_month(month), tz, branch_id)


# ---------------------------------------------------------------- workbook


def display_width(value: Any) -> int:
    """Width in Excel character units: CJK and full-width characters count double."""
    if value is None:
        return 0
    if isinstance(value, datetime):
        return len("2026-11-10 09:00")
    if isinstance(value, float):
        text = f"{value:.1f}"
    else:
        text = str(value)
    longest = max(text.splitlines() or [""], key=len)
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in longest)


def column_widths(export: Export) -> list[float]:
    widths = [display_width(c.header) for c in export.columns]
    for row in export.rows:
        for index, (column, value) in enumerate(zip(export.columns, row)):
            shown = 4 if column.kind == "percent" and value is not None else display_width(value)
            widths[index] = max(widths[index], shown)
    return [min(width + 2, WIDTH_CAP) for width in widths]


NUMBER_FORMATS = {"datetime": DATETIME_FORMAT, "percent": "0%", "number": "0.0", "int": "0"}


def write_xlsx(export: Export, path: str | Path, progress: Callable[[int, int], None] | None = None) -> None:
    """Bold header frozen above the data, an autofilter, widths from the content, real
    dates and numbers. Written to a temporary file first, so a failure never leaves a
    half-written workbook where the old one was."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.worksheet import Worksheet

    path = Path(path)
    book = Workbook()
    sheet = book.active
    assert isinstance(sheet, Worksheet)  # a new workbook's one sheet
    sheet.title = export.title[:31]
    sheet.append([c.header for c in export.columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="F2F2F2")
        cell.alignment = Alignment(vertical="center")
    formats = [NUMBER_FORMATS.get(c.kind) for c in export.columns]
    total = len(export.rows)
    step = max(1, total // 100)
    for number, row in enumerate(export.rows, start=1):
        sheet.append([None if value == "" else value for value in row])
        for cell, fmt in zip(sheet[number + 1], formats):
            if cell.data_type == "f":
                # Text such as a name "=HYPERLINK(...)" is data, never a formula: openpyxl
                # takes any string starting with "=" as one.
                cell.data_type = "s"
            elif fmt and cell.value is not None:
                cell.number_format = fmt
        if progress and (number % step == 0 or number == total):
            progress(number, total)
    if progress and not total:
        progress(0, 0)
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(export.columns))}{max(total + 1, 1)}"
    for index, width in enumerate(column_widths(export), start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        book.save(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
