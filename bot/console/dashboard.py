"""/console/ 概览: the month's participation and scores, 12 months of participation,
unbound members, failed deliveries and the next scheduled jobs.

An admin sees every branch by name; a secretary sees their own branch against the
committee's average, never another branch's name.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select
from starlette.responses import Response

from bot.console.web import Page
from bot.errcodes import failure_text
from bot.exports import month_bounds
from bot.store import Attempt, Member
from bot.store.members import branch_members, reachable
from bot.store.models import Campaign, Delivery
from quizzes.standings import BranchStanding, branch_board
from scheduler.runner import JobRunner

KIND_NAMES = {
    "broadcast": "支部通知",
    "monthly_quiz": "月度测试",
    "quiz_reminder": "催答",
    "holiday": "廉洁过节提醒",
    "birthday": "政治生日",
    "meeting": "会议通知",
    "reply": "延迟回复",
    "nudge": "催办",
}


@dataclass(frozen=True)
class Totals:
    members: int
    finished: int
    score_sum: float

    @property
    def participation(self) -> float:
        return self.finished / self.members if self.members else 0.0

    @property
    def average(self) -> float:
        return self.score_sum / self.finished if self.finished else 0.0


def totals(rows: list[BranchStanding]) -> Totals:
    """The committee as a whole: participation over all 在册 members, average over all finishers."""
    return Totals(
        sum(r.members for r in rows), sum(r.finished for r in rows), sum(r.average * r.finished for r in rows)
    )


def previous_months(month: str, count: int) -> list[str]:
    year, number = (int(p) for p in month.split("-"))
    out = []
    for _ in range(count):
        out.append(f"{year:04d}-{number:02d}")
        year, number = (year, number - 1) if number > 1 else (year - 1, 12)
    return out[::-1]


def _pct(value: float) -> float:
    return round(value * 100, 1)


def month_bars(rows: list[BranchStanding], own_branch: int | None) -> dict[str, Any]:
    """Bar chart data: every branch (admins), or own branch against the committee average."""
    if own_branch is None:
        ordered = sorted(rows, key=lambda r: (-r.participation, -r.average, r.name))
        return {
            "names": [r.name for r in ordered],
            "participation": [_pct(r.participation) for r in ordered],
            "average": [round(r.average, 1) for r in ordered],
        }
    own = next((r for r in rows if r.branch_id == own_branch), None)
    whole = totals(rows)
    return {
        "names": ["本支部", "全委平均"],
        "participation": [_pct(own.participation) if own else 0.0, _pct(whole.participation)],
        "average": [round(own.average, 1) if own else 0.0, round(whole.average, 1)],
    }


def trend(db: Session, month: str, own_branch: int | None) -> dict[str, Any]:
    months = previous_months(month, 12)
    series: dict[str, list[float]] = {"全委": []}
    if own_branch is not None:
        series = {"本支部": [], "全委平均": []}
    for m in months:
        rows = branch_board(db, m)
        whole = _pct(totals(rows).participation)
        if own_branch is None:
            series["全委"].append(whole)
        else:
            own = next((r for r in rows if r.branch_id == own_branch), None)
            series["本支部"].append(_pct(own.participation) if own else 0.0)
            series["全委平均"].append(whole)
    return {"months": months, "series": [{"name": name, "data": values} for name, values in series.items()]}


def score_distribution(db: Session, month: str, scope: list[int] | None, top: int, step: int) -> dict[str, Any]:
    query = select(col(Attempt.score)).where(col(Attempt.month) == month, col(Attempt.finished_at).is_not(None))
    if scope is not None:
        query = query.where(col(Attempt.branch_id).in_(scope))
    counts = Counter(db.exec(query).all())
    step = max(step, 1)
    buckets = list(range(0, top + 1, step)) or [0]
    return {
        "scores": [str(b) for b in buckets],
        "counts": [sum(n for s, n in counts.items() if b <= s < b + step) for b in buckets],
    }


def unbound(db: Session, scope: list[int] | None) -> list[Member]:
    from bot.store import Branch

    ids = scope if scope is not None else [b for b in db.exec(select(col(Branch.id))).all() if b is not None]
    return [m for m in branch_members(db, ids) if not reachable(m)]


def failed_deliveries(db: Session, page: Page) -> list[dict[str, Any]]:
    start, end = month_bounds(page.now.strftime("%Y-%m"), page.config.tz)
    query = (
        select(Delivery, Member, Campaign)
        .join(Member, col(Member.id) == col(Delivery.member_id))
        .join(Campaign, col(Campaign.id) == col(Delivery.campaign_id))
        .where(col(Delivery.status) == "failed", col(Delivery.updated_at) >= start, col(Delivery.updated_at) < end)
    )
    if page.viewer.scope is not None:
        query = query.where(col(Member.branch_id).in_(page.viewer.scope))
    rows = db.exec(query.order_by(col(Delivery.updated_at).desc())).all()
    return [
        {
            "member": m.name,
            "what": KIND_NAMES.get(c.kind, c.kind),
            "campaign": c.id,
            "reason": failure_text(d.errcode, d.errmsg),
            "at": d.updated_at.astimezone(page.config.tz) if d.updated_at else None,
        }
        for d, m, c in rows
    ]


def next_jobs(page: Page) -> list[dict[str, Any]]:
    runner = JobRunner(page.store, page.config, page.clock)
    jobs: list[dict[str, Any]] = []
    for name, spec in runner.specs.items():
        when = runner.next_fire(name)
        if when is not None and name != "housekeeping":
            jobs.append({"title": spec.title, "when": when.astimezone(page.config.tz)})
    return sorted(jobs, key=lambda j: j["when"])[:5]


def view(page: Page) -> Response:
    month = page.now.strftime("%Y-%m")
    own = None if page.viewer.is_admin else page.viewer.member.branch_id
    rows = branch_board(page.db, month)
    quiz = page.config.quiz
    charts = {
        "bars": month_bars(rows, own),
        "trend": trend(page.db, month, own),
        "scores": score_distribution(
            page.db,
            month,
            page.viewer.scope,
            quiz.questions_per_paper * quiz.points_per_correct,
            quiz.points_per_correct,
        ),
    }
    mine = next((r for r in rows if r.branch_id == own), None) if own is not None else None
    whole = totals(rows)
    failed = failed_deliveries(page.db, page)
    lost = unbound(page.db, page.viewer.scope)
    return page.render(
        "dashboard.html",
        title="概览",
        month=month,
        charts=charts,
        summary=mine or whole,
        whole=whole,
        failed=failed,
        unbound=lost,
        jobs=next_jobs(page),
    )
