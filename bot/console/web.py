"""The console's plumbing: who is asking (from the store, every request), CSRF, and
rendering. Page modules only write ``def view(page: Page) -> Response`` functions.

Each request runs in a worker thread inside one store session: the session row is
checked and touched, the member's role, status and branch are read afresh, and the
page's changes commit together (or not at all, when it refuses).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio
from sqlmodel import Session
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from bot.audit import actor_of
from bot.auth import csrf_ok, end_session, live_session, may_use
from bot.config import Config
from bot.store import Branch, Member, Role, Store
from bot.store.models import ConsoleSession

log = logging.getLogger("branchbot.console")
HERE = Path(__file__).resolve().parent
COOKIE = "branchbot_console"
MAX_UPLOAD = 5 * 1024 * 1024  # a city's roster as XLSX is well under 1 MB
templates = Jinja2Templates(directory=str(HERE / "templates"))
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

NAV = [  # (path, label, admins only)
    ("/console/", "概览", False),
    ("/console/members", "名册", False),
    ("/console/questions", "题库", True),
    ("/console/notices", "通知", False),
    ("/console/meetings", "会议", False),
    ("/console/exports", "导出", False),
    ("/console/calendar", "日历与任务", True),
    ("/console/audit", "审计", True),
]


MAX_ID = 2**31 - 1  # ids are 32-bit INTEGER columns: PostgreSQL refuses a larger parameter


def small_int(text: str) -> int | None:
    """A row id from a URL or form field; None when it is not one (too large included)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 10 and int(text) <= MAX_ID else None


class Refused(Exception):
    """A page refuses the request (nothing it did is kept)."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.message, self.status = message, status


@dataclass
class Viewer:
    member: Member
    branch: Branch
    session: ConsoleSession

    @property
    def is_admin(self) -> bool:
        return self.member.role == Role.ADMIN.value

    @property
    def scope(self) -> list[int] | None:
        """Branch ids this viewer may see and act on; None for every branch (admins)."""
        return None if self.is_admin else [self.member.branch_id]

    def may_see(self, branch_id: int | None) -> bool:
        return self.is_admin or (branch_id is not None and branch_id == self.member.branch_id)

    def require_branch(self, branch_id: int | None) -> None:
        if not self.may_see(branch_id):
            raise Refused("只能查看和管理本支部的内容。")

    @property
    def actor(self) -> str:
        return actor_of(self.member) + "·后台"


@dataclass
class Page:
    request: Request
    db: Session
    viewer: Viewer
    config: Config
    now: datetime  # aware, in the configured timezone
    store: Store
    clock: Callable[[], datetime]
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)

    @property
    def query(self) -> Any:
        return self.request.query_params

    def arg(self, name: str, default: str = "") -> str:
        return (
            str(self.request.query_params.get(name, default)).replace("\x00", "").strip()[:200]
        )  # PostgreSQL refuses NUL

    def int_path(self, name: str) -> int:
        value = small_int(str(self.request.path_params.get(name, "")))
        if value is None:
            raise Refused("页面不存在。", 404)
        return value

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        return render(
            self.request,
            template,
            status,
            viewer=self.viewer,
            csrf=self.viewer.session.csrf,
            nav=[n for n in NAV if self.viewer.is_admin or not n[2]],
            now=self.now,
            tz=self.config.tz,
            **context,
        )

    def is_htmx(self) -> bool:
        return self.request.headers.get("HX-Request") == "true"


def render(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    response = templates.TemplateResponse(request, template, context, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response


def message_page(
    request: Request,
    title: str,
    detail: str,
    status: int,
    viewer: Viewer | None = None,
    login_hint: bool = False,
    wecom: bool = False,
) -> Response:
    return render(
        request,
        "message.html",
        status,
        title=title,
        detail=detail,
        viewer=viewer,
        login_hint=login_hint,
        wecom=wecom,
        nav=[],
        csrf="",
    )


def redirect(path: str, **params: Any) -> Response:
    return RedirectResponse(path + (("?" + urlencode(params)) if params else ""), status_code=303)


def secure_cookie(config: Config) -> bool:
    return config.console_base_url.startswith("https://")


def set_session_cookie(response: Response, config: Config, raw: str) -> None:
    response.set_cookie(
        COOKIE,
        raw,
        max_age=int(timedelta(hours=8).total_seconds()),
        path="/console",
        httponly=True,
        samesite="lax",
        secure=secure_cookie(config),
    )


async def read_form(request: Request) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    """Fields and uploaded files (each at most 5 MB)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_UPLOAD + 64 * 1024:
        raise Refused("上传的文件过大（最多 5 MB）。", 413)
    # A chunked body declares no length: count while reading, before anything parses it
    # (Starlette's form parsers then read the kept bytes).
    body, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_UPLOAD + 64 * 1024:
            raise Refused("上传的文件过大（最多 5 MB）。", 413)
        body.append(chunk)
    request._body = b"".join(body)
    form = await request.form(max_files=2, max_fields=50)
    fields: dict[str, str] = {}
    files: dict[str, tuple[str, bytes]] = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            data = await value.read(MAX_UPLOAD + 1)
            if len(data) > MAX_UPLOAD:
                raise Refused("上传的文件过大（最多 5 MB）。", 413)
            files[key] = (Path(value.filename or "upload").name[:200], data)
        else:
            fields[key] = str(value).replace("\x00", "")[:10_000]  # PostgreSQL text refuses NUL
    await form.close()
    return fields, files


class Console:
    """Builds the console's routes around page functions."""

    def __init__(self, config: Config, store: Store, clock: Callable[[], datetime]) -> None:
        self.config, self.store, self.clock = config, store, clock
        self.idle = timedelta(minutes=config.console.session_minutes)

    def now(self) -> datetime:
        return self.clock().astimezone(self.config.tz)

    def route(
        self, path: str, view: Callable[[Page], Response], methods: tuple[str, ...] = ("GET",), admin: bool = False
    ) -> Route:
        async def endpoint(request: Request) -> Response:
            fields: dict[str, str] = {}
            files: dict[str, tuple[str, bytes]] = {}
            if request.method == "POST":
                try:
                    fields, files = await read_form(request)
                except Refused as refused:
                    return message_page(request, "无法处理", refused.message, refused.status)
                except Exception:
                    return message_page(request, "无法处理", "提交的内容无法读取。", 400)
                fields.setdefault("csrf", request.headers.get("X-CSRF-Token", ""))
            return await anyio.to_thread.run_sync(self._serve, request, view, admin, fields, files)

        return Route(path, endpoint, methods=list(methods), name=None)

    def _serve(
        self,
        request: Request,
        view: Callable[[Page], Response],
        admin: bool,
        fields: dict[str, str],
        files: dict[str, tuple[str, bytes]],
    ) -> Response:
        now = self.now()
        with self.store.session() as db:
            row = live_session(db, request.cookies.get(COOKIE, ""), now, self.idle)
            if row is None:
                db.commit()
                if request.method == "GET" and not request.headers.get("HX-Request"):
                    return redirect("/console/welcome")
                return message_page(
                    request, "请先登录", "登录已失效。请在机器人中发送「后台」获取新的登录链接。", 401, login_hint=True
                )
            member = db.get(Member, row.member_id)
            if not may_use(member):
                end_session(db, row, now)
                db.commit()
                return message_page(
                    request,
                    "没有权限",
                    "管理后台仅限在册的支部书记和管理员使用。您的角色或状态已变更，登录已结束。",
                    403,
                )
            assert member is not None
            branch = db.get(Branch, member.branch_id)
            assert branch is not None
            viewer = Viewer(member, branch, row)
            if request.method == "POST" and not csrf_ok(row, fields.get("csrf")):
                db.commit()
                return message_page(
                    request,
                    "请求无效",
                    "页面已过期或请求来源不明（缺少安全校验码），没有做任何修改。请刷新页面后重试。",
                    403,
                    viewer,
                )
            if admin and not viewer.is_admin:
                db.commit()
                return message_page(request, "没有权限", "此页面仅限管理员使用。", 403, viewer)
            page = Page(request, db, viewer, self.config, now, self.store, self.clock, fields, files)
            try:
                response = view(page)
            except Refused as refused:
                db.rollback()
                live_session(db, request.cookies.get(COOKIE, ""), now, self.idle)  # still touch the session
                return message_page(request, "无法完成", refused.message, refused.status, viewer)
            response.headers.update(SECURITY_HEADERS)
            return response
