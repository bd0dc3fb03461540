"""/console/notices 通知: compose → recipient count preview → 确认发送, scheduled notices
and withdrawing them, and each notice's delivery report: the same domain functions as
chat's 通知 / 定时通知 / 取消定时 / 通知状态: the campaign service (bot.outbox.campaigns)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from starlette.responses import Response
from starlette.routing import Route

from bot.console.web import Console, Page, Refused, redirect, small_int
from bot.errcodes import failure_text
from bot.outbox.campaigns import (
    delivery_groups,
    reach,
    schedule_problem,
    send_notice,
    text_problem,
    visible_campaign,
    withdraw,
)
from bot.store import Branch
from bot.store.models import Campaign, Delivery, saved_id

LISTED = 50


def _target(page: Page) -> tuple[list[int], str, str]:
    """(branch ids, their name for people, the form's value) from the compose form."""
    if not page.viewer.is_admin:
        return [page.viewer.member.branch_id], page.viewer.branch.name, str(page.viewer.member.branch_id)
    choice = page.form.get("branch", "")
    if choice == "all":
        ids = [b for b in page.db.exec(select(col(Branch.id)).order_by(col(Branch.id))).all() if b is not None]
        return ids, "全部支部", "all"
    number = small_int(choice)
    branch = page.db.get(Branch, number) if number is not None else None
    if branch is None or branch.id is None:
        raise Refused("请选择发送对象。", 400)
    return [branch.id], branch.name, str(branch.id)


def _when(page: Page) -> datetime | None:
    text = page.form.get("when", "").strip()
    if not text:
        return None
    try:
        when = datetime.strptime(text.replace("T", " ")[:16], "%Y-%m-%d %H:%M").replace(tzinfo=page.config.tz)
    except ValueError as exc:
        raise Refused(f"时间「{text}」格式不对，应为 YYYY-MM-DD HH:MM。", 400) from exc
    problem = schedule_problem(when, page.now)
    if problem:
        raise Refused(problem, 400)
    return when


def _checked(page: Page) -> tuple[str, list[int], str, str, datetime | None]:
    text = page.form.get("text", "").strip()
    if not text:
        raise Refused("请填写通知内容。", 400)
    problem = text_problem(text)
    if problem:
        raise Refused(problem, 400)
    ids, target, choice = _target(page)
    return text, ids, target, choice, _when(page)


def _campaigns(page: Page) -> list[dict[str, Any]]:
    query = select(Campaign).where(col(Campaign.kind) == "broadcast")
    if page.viewer.scope is not None:
        query = query.where(col(Campaign.branch_id).in_(page.viewer.scope))
    rows = page.db.exec(query.order_by(col(Campaign.id).desc()).limit(LISTED)).all()
    counts: dict[int, dict[str, int]] = {}
    if rows:
        for cid, status, n in page.db.exec(
            select(col(Delivery.campaign_id), col(Delivery.status), func.count(col(Delivery.id)))
            .where(col(Delivery.campaign_id).in_([c.id for c in rows]))
            .group_by(col(Delivery.campaign_id), col(Delivery.status))
        ).all():
            counts.setdefault(cid, {})[status] = n
    branches = {b.id: b.name for b in page.db.exec(select(Branch)).all()}
    return [
        {
            "c": c,
            "branch": branches.get(c.branch_id, "全部支部"),
            "n": counts.get(saved_id(c.id), {}),
            "scheduled": bool(c.send_after and c.send_after > page.now and not c.cancelled_at),
        }
        for c in rows
    ]


def view(page: Page) -> Response:
    branches = page.db.exec(select(Branch).order_by(col(Branch.id))).all() if page.viewer.is_admin else []
    return page.render(
        "notices.html", title="通知", campaigns=_campaigns(page), branches=branches, form={}, preview=None
    )


def preview(page: Page) -> Response:
    try:
        text, ids, target, choice, when = _checked(page)
    except Refused as refused:
        if page.is_htmx():
            return page.render("_notice_preview.html", preview={"error": refused.message})
        raise
    audience = reach(page.db, ids)
    data = {
        "text": text,
        "target": target,
        "branch": choice,
        "when": when.strftime("%Y-%m-%d %H:%M") if when else "",
        "count": audience.count,
        "bound": audience.bound,
    }
    if page.is_htmx():
        return page.render("_notice_preview.html", preview=data)
    branches = page.db.exec(select(Branch).order_by(col(Branch.id))).all() if page.viewer.is_admin else []
    return page.render(
        "notices.html", title="通知", campaigns=_campaigns(page), branches=branches, form=page.form, preview=data
    )


def send(page: Page) -> Response:
    text, ids, target, _, when = _checked(page)
    campaign, _ = send_notice(
        page.db,
        page.now,
        text=text,
        branch_ids=ids,
        target=target,
        actor=page.viewer.actor,
        sender=page.viewer.member,
        when=when,
    )
    return redirect(f"/console/notices/{campaign.id}", done="scheduled" if when else "sent")


def _visible(page: Page) -> Campaign:
    campaign = visible_campaign(page.db, page.viewer.scope, page.int_path("campaign_id"))
    if campaign is None:
        raise Refused("没有找到这条通知（只能查看本支部的通知）。", 404)
    return campaign


def report(page: Page) -> Response:
    campaign = _visible(page)
    total, groups = delivery_groups(page.db, campaign)
    branch = page.db.get(Branch, campaign.branch_id) if campaign.branch_id else None
    rows = {
        key: [
            {"name": m.name, "why": failure_text(d.errcode, d.errmsg) if key == "failed" else (d.errmsg or "")}
            for d, m in items
        ]
        for key, items in groups.items()
    }
    waiting = rows.get("pending", []) + rows.get("sending", [])
    return page.render(
        "notice_report.html",
        title=f"通知 #{campaign.id}",
        campaign=campaign,
        total=total,
        rows=rows,
        waiting=waiting,
        branch=branch.name if branch else "全部支部",
        done=page.arg("done"),
        scheduled=bool(campaign.send_after and campaign.send_after > page.now and not campaign.cancelled_at),
    )


def cancel(page: Page) -> Response:
    campaign = _visible(page)
    problem = withdraw(page.db, page.now, campaign, page.viewer.actor)
    if problem:
        raise Refused(problem, 409)
    return redirect(f"/console/notices/{campaign.id}", done="withdrawn")


def routes(console: Console) -> list[Route]:
    return [
        console.route("/console/notices", view),
        console.route("/console/notices/preview", preview, methods=("POST",)),
        console.route("/console/notices/send", send, methods=("POST",)),
        console.route("/console/notices/{campaign_id}", report),
        console.route("/console/notices/{campaign_id}/withdraw", cancel, methods=("POST",)),
    ]
