"""The router: pending dialog first, then a command word or menu key, then help.

Permissions are checked here, once, from the roles each command declares; handlers
assume they were allowed to run. The registry itself lives in ``handlers/__init__.py``
so that it reads as a table of contents of what the bot can do.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot.audit import actor_of, record
from bot.config import Config
from bot.messages import MEMBER_KINDS, Inbound, normalise
from bot.store import Dialog, Member, Role, lookups
from bot.store.members import is_active

SCAN_EVENTS = frozenset({"scancode_push", "scancode_waitmsg"})
GUEST = "guest"  # a sender not (yet) matched to the roster
EVERYONE = frozenset({GUEST, Role.MEMBER.value, Role.SECRETARY.value, Role.ADMIN.value})
MEMBERS = frozenset({Role.MEMBER.value, Role.SECRETARY.value, Role.ADMIN.value})
SECRETARIES = frozenset({Role.SECRETARY.value, Role.ADMIN.value})
ADMINS = frozenset({Role.ADMIN.value})


@dataclass
class Context:
    """Everything a handler may use: no HTTP, no XML."""

    db: Session
    config: Config
    now: datetime  # aware, in the configured timezone
    inbound: Inbound
    member: Member | None
    registry: Registry
    args: str = ""

    @property
    def role(self) -> str:
        return self.member.role if self.member else GUEST

    @property
    def month(self) -> str:
        return self.now.strftime("%Y-%m")

    def start_dialog(self, kind: str, data: dict[str, Any] | None = None, expires_at: datetime | None = None) -> None:
        dialog = self.db.get(Dialog, self.inbound.conversation)
        if dialog is None:
            dialog = Dialog(sender=self.inbound.conversation, kind=kind)
        dialog.kind, dialog.data, dialog.expires_at, dialog.updated_at = kind, dict(data or {}), expires_at, self.now
        self.db.add(dialog)

    def end_dialog(self) -> None:
        dialog = self.db.get(Dialog, self.inbound.conversation)
        if dialog is not None:
            self.db.delete(dialog)


Handler = Callable[[Context], str]
DialogHandler = Callable[[Context, Dialog], str | None]


@dataclass(frozen=True)
class Command:
    word: str
    handler: Handler
    roles: frozenset[str]
    summary: str
    usage: str = ""
    aliases: tuple[str, ...] = ()

    @property
    def words(self) -> tuple[str, ...]:
        return (self.word, *self.aliases)


@dataclass(frozen=True)
class DialogSpec:
    kind: str
    on_reply: DialogHandler  # returns None when the text is not meant for the dialog
    hint: DialogHandler
    on_expired: DialogHandler | None = None  # what to say when a reply comes after the dialog expired


@dataclass
class Registry:
    commands: list[Command] = field(default_factory=list)
    dialogs: dict[str, DialogSpec] = field(default_factory=dict)
    events: dict[str, Handler] = field(default_factory=dict)
    menu_keys: dict[str, str] = field(default_factory=dict)
    unsupported: Handler | None = None
    banner: Handler | None = None  # a line put before every reply (e.g. unread notices)
    fallback: Handler | None = None  # a last look at text nothing else took, before help
    # A scan-button result (scancode_push / scancode_waitmsg) to the command text it
    # stands for (e.g. a meeting QR code's "签到 1234"), or None; then events[...] answers.
    scan_command: Callable[[str], str | None] | None = None

    def command(
        self,
        word: str,
        handler: Handler,
        *,
        roles: frozenset[str],
        summary: str,
        usage: str = "",
        aliases: tuple[str, ...] = (),
    ) -> None:
        self.commands.append(Command(word, handler, roles, summary, usage or word, aliases))

    def dialog(
        self, kind: str, *, on_reply: DialogHandler, hint: DialogHandler, on_expired: DialogHandler | None = None
    ) -> None:
        self.dialogs[kind] = DialogSpec(kind, on_reply, hint, on_expired)

    def event(self, name: str, handler: Handler) -> None:
        self.events[name] = handler

    def menu(self, key: str, command_text: str) -> None:
        self.menu_keys[key] = command_text

    def visible_to(self, role: str) -> list[Command]:
        return [c for c in self.commands if role in c.roles]

    def match(self, text: str) -> tuple[Command, str] | None:
        """The command whose word starts the text (longest word wins), and its arguments."""
        folded = text.lower()
        best: tuple[Command, str] | None = None
        best_len = 0
        for command in self.commands:
            for word in command.words:
                if folded.startswith(word.lower()) and len(word) > best_len:
                    best, best_len = (command, text[len(word) :].strip()), len(word)
        return best

    def suggestions(self, text: str, role: str, offer_bind: bool = True) -> list[str]:
        words = [c.word for c in self.visible_to(role) if offer_bind or c.word != "绑定"]
        head = text.split(" ")[0][:6]
        close = difflib.get_close_matches(head, words, n=3, cutoff=0.3)
        return close or [w for w in words if w != "帮助"][:3]


NOT_BOUND = "请先绑定身份：发送「绑定 姓名 手机号后四位」，例如「绑定 张三 1234」。"
# WeCom users are matched by their 企业微信账号 in the roster; they cannot bind.
NOT_ON_WECOM_ROSTER = "名册中没有您的企业微信账号。请联系支部书记，把您的企业微信账号添加到支部名册。"


def can_bind(ctx: Context) -> bool:
    """Only an unmatched sender on the Official Account binds by name and phone tail."""
    return ctx.member is None and ctx.inbound.channel == "wechat"


def not_bound(ctx: Context) -> str:
    """What to tell a sender who is not matched to the roster, by channel."""
    return NOT_ON_WECOM_ROSTER if ctx.inbound.channel == "wecom" else NOT_BOUND


def refuse(ctx: Context, command: Command) -> str:
    if ctx.member is None:
        return not_bound(ctx)
    record(ctx.db, ctx.now, actor_of(ctx.member), "拒绝", f"无权使用「{command.word}」：{ctx.inbound.text[:100]}")
    if command.roles <= ADMINS:
        return f"「{command.word}」仅限管理员使用。发送「帮助」查看您可以使用的功能。"
    return f"「{command.word}」仅限支部书记和管理员使用。发送「帮助」查看您可以使用的功能。"


def route(ctx: Context) -> str:
    """Pick the handler for one inbound message and return the reply text."""
    reply = _route(ctx)
    banner = ctx.registry.banner(ctx) if ctx.registry.banner and reply else ""
    return f"{banner}\n\n{reply}" if banner else reply


def _route(ctx: Context) -> str:
    registry, inbound = ctx.registry, ctx.inbound
    if inbound.kind == "event":
        if inbound.event == "click" and inbound.event_key in registry.menu_keys:
            return _route_text(ctx, registry.menu_keys[inbound.event_key])
        if inbound.event in SCAN_EVENTS and registry.scan_command:
            command = registry.scan_command(inbound.scan_result)
            if command:
                return _route_text(ctx, normalise(command))
        handler = registry.events.get(inbound.event)
        return handler(ctx) if handler else ""  # '' is answered `success`
    if inbound.kind not in MEMBER_KINDS:
        return ""  # a kind the platform added later: answered `success`
    if inbound.kind != "text":
        return registry.unsupported(ctx) if registry.unsupported else ""
    return _route_text(ctx, normalise(inbound.text))


def _route_text(ctx: Context, text: str) -> str:
    registry = ctx.registry
    dialog, expired = _pending_dialog(ctx)
    if expired is not None:
        late = registry.dialogs.get(expired.kind)
        if late and late.on_expired:
            ctx.args = text
            said = late.on_expired(ctx, expired)
            if said:
                return said
    spec = registry.dialogs.get(dialog.kind) if dialog else None
    if spec and dialog:
        ctx.args = text
        reply = spec.on_reply(ctx, dialog)
        if reply is not None:
            return reply
    matched = registry.match(text) if text else None
    if matched:
        command, args = matched
        if ctx.role not in command.roles:
            return refuse(ctx, command)
        ctx.args = args
        return command.handler(ctx)
    if spec and dialog:
        ctx.args = text
        return spec.hint(ctx, dialog) or ""
    if registry.fallback and ctx.member is not None:
        ctx.args = text
        said = registry.fallback(ctx)
        if said:
            return said
    return _unknown(ctx, text)


def _pending_dialog(ctx: Context) -> tuple[Dialog | None, Dialog | None]:
    """(the dialog waiting for this sender, or a dialog that just expired)."""
    dialog = lookups.get(ctx.db, Dialog, ctx.inbound.conversation)
    if dialog is None:
        return None, None
    if ctx.member is None:  # every dialog belongs to a member; one left by a member now 已转出 is void
        ctx.db.delete(dialog)
        return None, None
    if dialog.expires_at is not None and dialog.expires_at <= ctx.now:
        ctx.db.delete(dialog)
        return None, dialog
    return dialog, None


def _unknown(ctx: Context, text: str) -> str:
    if not text:
        return "请发送文字指令。发送「帮助」查看全部功能。"
    options = "、".join(f"「{w}」" for w in ctx.registry.suggestions(text, ctx.role, offer_bind=can_bind(ctx)))
    shown = text if len(text) <= 12 else text[:12] + "…"
    said = f"没有找到「{shown}」对应的功能。您是不是想用：{options}？发送「帮助」查看全部功能。"
    if ctx.member is None and not can_bind(ctx):
        said += "\n" + not_bound(ctx)
    return said


def find_member(db: Session, inbound: Inbound) -> Member | None:
    """Who is writing: by OpenID on the Official Account, by user id on WeCom. A member
    marked 已转出 is nobody here: a guest, with no role and no pending dialog."""
    member = None
    if inbound.channel in ("wechat", "wecom"):
        member = lookups.member_by(db, inbound.channel, inbound.sender)
    elif inbound.channel == "cli" and inbound.sender.isascii() and inbound.sender.isdigit():
        member = db.get(Member, int(inbound.sender))
    return member if is_active(member) else None
