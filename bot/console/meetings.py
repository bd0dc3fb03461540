"""/console/meetings 会议: the branch's meetings with replies, leave reasons and
check-ins; at the meeting a check-in code shown large with a QR code of 「签到 NNNN」
(SVG, made here with segno) for the Official Account menu's scan button. The code is
issued by the same rule as chat's 签到码 (handlers.meetings.issue_code)."""

from __future__ import annotations

import segno
from markupsafe import Markup
from sqlmodel import col, select
from starlette.responses import Response
from starlette.routing import Route

from bot.audit import record
from bot.console.web import Console, Page, Refused, redirect
from bot.store import Branch
from bot.store.models import Meeting
from handlers.meetings import code_allowed, issue_code, meeting_record

LISTED = 30


def checkin_text(code: str) -> str:
    """What the QR code carries: exactly what a member would type."""
    return f"签到 {code}"


def qr_svg(code: str) -> Markup:
    # A regular QR code (segno.make would choose a Micro QR, which WeChat's scanner does not read).
    return Markup(
        segno.make_qr(checkin_text(code), error="m").svg_inline(scale=8, border=4, omitsize=True, light="#fff")
    )


def _meeting(page: Page) -> Meeting:
    meeting = page.db.get(Meeting, page.int_path("meeting_id"))
    if meeting is None or not page.viewer.may_see(meeting.branch_id):
        raise Refused("没有找到这次会议（只能查看本支部的会议）。", 404)
    return meeting


def view(page: Page) -> Response:
    query = select(Meeting)
    if page.viewer.scope is not None:
        query = query.where(col(Meeting.branch_id).in_(page.viewer.scope))
    meetings = page.db.exec(query.order_by(col(Meeting.starts_at).desc()).limit(LISTED)).all()
    branches = {b.id: b.name for b in page.db.exec(select(Branch)).all()}
    rows = [{"m": m, "branch": branches.get(m.branch_id, ""), "rec": meeting_record(page.db, m)} for m in meetings]
    return page.render("meetings.html", title="会议", rows=rows)


def detail(page: Page) -> Response:
    meeting = _meeting(page)
    rec = meeting_record(page.db, meeting)
    live = bool(meeting.checkin_code and meeting.checkin_until and meeting.checkin_until > page.now)
    branch = page.db.get(Branch, meeting.branch_id)
    return page.render(
        "meeting.html",
        title="会议详情",
        meeting=meeting,
        rec=rec,
        branch=branch.name if branch else "",
        live=live,
        qr=qr_svg(meeting.checkin_code) if live else None,
        checkin=checkin_text(meeting.checkin_code) if live else "",
        can_issue=code_allowed(meeting, page.now),
    )


def new_code(page: Page) -> Response:
    meeting = _meeting(page)
    if not code_allowed(meeting, page.now):
        raise Refused("会议前后 3 小时内才能生成签到码。", 409)
    issue_code(page.db, meeting, page.now)
    record(
        page.db, page.now, page.viewer.actor, "签到码", f"会议 #{meeting.id} {meeting.type}：生成 30 分钟有效的签到码"
    )
    return redirect(f"/console/meetings/{meeting.id}")


def routes(console: Console) -> list[Route]:
    return [
        console.route("/console/meetings", view),
        console.route("/console/meetings/{meeting_id}", detail),
        console.route("/console/meetings/{meeting_id}/code", new_code, methods=("POST",)),
    ]
