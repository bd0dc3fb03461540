"""/console/exports 导出: the four Excel exports of ``branchbot export`` for a chosen
month, downloaded from the browser (bot.exports builds and writes them). A secretary's
exports are always their own branch's."""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import quote

from sqlmodel import col, select
from starlette.responses import Response
from starlette.routing import Route

from bot.audit import record
from bot.console.web import Console, Page, Refused, small_int
from bot.exports import KINDS, ExportError, build, parse_month, write_xlsx
from bot.store import Branch

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def view(page: Page) -> Response:
    branches = page.db.exec(select(Branch).order_by(col(Branch.id))).all() if page.viewer.is_admin else []
    return page.render(
        "exports.html",
        title="导出",
        kinds=KINDS,
        month=page.arg("month") or page.now.strftime("%Y-%m"),
        branches=branches,
    )


def download(page: Page) -> Response:
    kind = str(page.request.path_params.get("kind", ""))
    if kind not in KINDS:
        raise Refused("没有这种导出。", 404)
    try:
        month = parse_month(page.arg("month") or page.now.strftime("%Y-%m"))
    except ExportError:
        raise Refused(f"「{page.arg('month')}」不是有效月份，格式应为 YYYY-MM，如 2026-11。", 400) from None
    branch_name: str | None = None
    if not page.viewer.is_admin:
        branch_name = page.viewer.branch.name
        if page.arg("branch") and page.arg("branch") != str(page.viewer.member.branch_id):
            raise Refused("只能导出本支部的数据。")
    elif page.arg("branch").isdigit():
        number = small_int(page.arg("branch"))
        branch = page.db.get(Branch, number) if number is not None else None
        if branch is None:
            raise Refused("没有这个支部。", 404)
        branch_name = branch.name
    export = build(page.db, kind, month, page.config.tz, branch_name)
    with tempfile.TemporaryDirectory(prefix="branchbot-export-") as folder:
        path = Path(folder) / "export.xlsx"
        write_xlsx(export, path)
        data = path.read_bytes()
    scope = branch_name or "全部支部"
    filename = f"{month}-{KINDS[kind]}-{scope}.xlsx"
    record(
        page.db,
        page.now,
        page.viewer.actor,
        "导出",
        f"{KINDS[kind]}（{kind}）{month}，{scope}，{len(export.rows)} 行 → 浏览器下载",
    )
    return Response(
        data,
        media_type=XLSX,
        headers={"Content-Disposition": f"attachment; filename=\"export.xlsx\"; filename*=UTF-8''{quote(filename)}"},
    )


def routes(console: Console) -> list[Route]:
    return [
        console.route("/console/exports", view),
        console.route("/console/exports/{kind}.xlsx", download),
    ]
