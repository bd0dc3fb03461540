"""/console/audit 审计 (admins): the audit log, newest first, filtered by action or text."""

from __future__ import annotations

from sqlalchemy import func, or_
from sqlmodel import col, select
from starlette.responses import Response
from starlette.routing import Route

from bot.console.web import Console, Page
from bot.store.models import AuditEntry

PER_PAGE = 100


def view(page: Page) -> Response:
    query = select(AuditEntry)
    action = page.arg("action")
    if action:
        query = query.where(col(AuditEntry.action) == action)
    if text := page.arg("q"):
        query = query.where(or_(col(AuditEntry.actor).contains(text), col(AuditEntry.detail).contains(text)))
    number = int(page.arg("page")) if page.arg("page").isdigit() and len(page.arg("page")) < 7 else 1
    number = max(number, 1)
    entries = page.db.exec(
        query.order_by(col(AuditEntry.at).desc(), col(AuditEntry.id).desc())
        .offset((number - 1) * PER_PAGE)
        .limit(PER_PAGE + 1)
    ).all()
    actions = [
        a
        for a, _ in page.db.exec(
            select(col(AuditEntry.action), func.count())
            .group_by(col(AuditEntry.action))
            .order_by(col(AuditEntry.action))
        ).all()
    ]
    return page.render(
        "audit.html",
        title="审计",
        entries=entries[:PER_PAGE],
        more=len(entries) > PER_PAGE,
        page_no=number,
        actions=actions,
        action=action,
        q=page.arg("q"),
    )


def routes(console: Console) -> list[Route]:
    return [console.route("/console/audit", view, admin=True)]
