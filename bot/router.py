"""The router: pending dialog first, then a command word or menu key, then help.

Permissions are checked here, once: the roles each command declares, and the branch scope
(``bot.scope``) computed from the sender's role and, for commands that take a branch
name, from their arguments. Handlers assume they were allowed to run: a member-only
handler gets a ``MemberContext``, whose member cannot be missing. The registry itself
lives in ``handlers/__init__.py`` so that it reads as a table of contents of what the bot
can do.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from sqlmodel import Session

from bot.audit import actor_of, record
from bot.config import Config
from bot.dialogs import DialogState
from bot.messages import MEMBER_KINDS, Inbound, normalise
from bot.scope import BranchParam, NotYours, Scope, named_scope, reach
from bot.store import Dialog, Member, Role, lookups
from bot.store.members import is_active

SCAN_EVENTS = frozenset({"scancode_push", "scancode_waitmsg"})
GUEST = "guest"  # a sender not (yet) matched to the roster
EVERYONE = frozenset({GUEST, Role.MEMBER.value, Role.SECRETARY.value, Role.ADMIN.value})
MEMBERS = frozenset({Role.MEMBER.value, Role.SECRETARY.value, Role.ADMIN.value})
SECRETARIES = frozenset({Role.SECRETARY.value, Role.ADMIN.value})
ADMINS = frozenset({Role.ADMIN.value})


@dataclass(kw_only=True)
class Context:
    """Everything a handler may use: no HTTP, no XML. The sender may be a guest."""

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

    def start_dialog(self, kind: str, state: DialogState, expires_at: datetime | None = None) -> None:
        """Wait for the sender's next message in dialog ``kind`` (replacing any other)."""
        dialog = self.db.get(Dialog, self.inbound.conversation)
        if dialog is None:
            dialog = Dialog(sender=self.inbound.conversation, kind=kind, updated_at=self.now)
        dialog.kind, dialog.data, dialog.expires_at, dialog.updated_at = kind, state.dump(), expires_at, self.now
        self.db.add(dialog)

    def end_dialog(self) -> None:
        dialog = self.db.get(Dialog, self.inbound.conversation)
        if dialog is not None:
            self.db.delete(dialog)


@dataclass(kw_only=True)
class MemberContext(Context):
    """The context of a bound, active member: what every member-only handler gets.

    ``scope`` is the branches this message may act on, decided by the router."""

    member: Member
    member_id: int
    scope: Scope

    @classmethod
    def of(cls, ctx: Context, member: Member, scope: Scope) -> MemberContext:
        if member.id is None:
            raise ValueError("a member from the store always has an id")
        return cls(
            db=ctx.db,
            config=ctx.config,
            now=ctx.now,
            inbound=ctx.inbound,
            member=member,
            registry=ctx.registry,
            args=ctx.args,
            member_id=member.id,
            scope=scope,
        )


Handler = Callable[[Context], str]
MemberHandler = Callable[[MemberContext], str]
DialogHandler = Callable[[MemberContext, Dialog], str | None]


class Args(Enum):
    """What a command's arguments look like: how two commands sharing a word (通知 alone
    reads the inbox; 通知 with text broadcasts) are told apart."""

    ANY = "any"
    NONE = "none"
    REQUIRED = "required"

    def fits(self, args: str) -> bool:
        return self is Args.ANY or (self is Args.NONE) == (not args)


@dataclass(frozen=True)
class Command:
    word: str
    handler: MemberHandler
    roles: frozenset[str]
    summary: str
    usage: str = ""
    aliases: tuple[str, ...] = ()
    args: Args = Args.ANY
    branch: BranchParam | None = None  # the arguments may name a branch (scoped by the router)
    guest_handler: Handler | None = None  # set for the few commands open to senders not on the roster

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
    banner: MemberHandler | None = None  # a line put before every reply to a member (e.g. unread notices)
    fallback: MemberHandler | None = None  # a last look at a member's text nothing else took, before help
    # A scan-button result (scancode_push / scancode_waitmsg) to the command text it
    # stands for (e.g. a meeting QR code's "签到 1234"), or None; then events[...] answers.
    scan_command: Callable[[str], str | None] | None = None

    def command(
        self,
        word: str,
        handler: MemberHandler,
        *,
        roles: frozenset[str],
        summary: str,
        usage: str = "",
        aliases: tuple[str, ...] = (),
        args: Args = Args.ANY,
        branch: BranchParam | None = None,
    ) -> None:
        """A command for members (of the given roles): its handler gets a MemberContext."""
        if GUEST in roles:
            raise ValueError(f"{word}: a command open to guests is registered with open_command")
        self.commands.append(Command(word, handler, roles, summary, usage or word, aliases, args, branch))

    def open_command(
        self, word: str, handler: Handler, *, summary: str, usage: str = "", aliases: tuple[str, ...] = ()
    ) -> None:
        """A command anyone may use, guests included: its handler gets a Context."""
        self.commands.append(Command(word, handler, EVERYONE, summary, usage or word, aliases, guest_handler=handler))

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
        """The command whose word starts the text (longest word wins), and its arguments.
        Commands sharing that word are told apart by the shape of their arguments."""
        folded = text.lower()
        found: list[Command] = []
        best_len = 0
        for command in self.commands:
            size = max((len(w) for w in command.words if folded.startswith(w.lower())), default=0)
            if size and size > best_len:
                found, best_len = [command], size
            elif size and size == best_len:
                found.append(command)
        if not found:
            return None
        args = text[best_len:].strip()
        return next((c for c in found if c.args.fits(args)), found[0]), args

    def sharing_word(self, command: Command) -> bool:
        return sum(1 for c in self.commands if c.word == command.word) > 1

    def suggestions(self, text: str, role: str, offer_bind: bool = True) -> list[str]:
        words = list(dict.fromkeys(c.word for c in self.visible_to(role) if offer_bind or c.word != "绑定"))
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
    # 「通知」 alone is every member's; 「通知 内容」 is not: name the form refused.
    label = command.usage if ctx.registry.sharing_word(command) else command.word
    if command.roles <= ADMINS:
        return f"「{label}」仅限管理员使用。发送「帮助」查看您可以使用的功能。"
    return f"「{label}」仅限支部书记和管理员使用。发送「帮助」查看您可以使用的功能。"


def refuse_branch(ctx: MemberContext, command: Command, not_yours: NotYours) -> str:
    record(
        ctx.db,
        ctx.now,
        actor_of(ctx.member),
        "拒绝",
        f"「{command.word}」指定了其他支部「{not_yours.named}」：{ctx.inbound.text[:100]}",
    )
    return not_yours.message()


def route(ctx: Context) -> str:
    """Pick the handler for one inbound message and return the reply text."""
    reply = _route(ctx)
    if not reply or ctx.registry.banner is None or ctx.member is None:
        return reply
    banner = ctx.registry.banner(_as_member(ctx, ctx.member))
    return f"{banner}\n\n{reply}" if banner else reply


def _as_member(ctx: Context, member: Member) -> MemberContext:
    """The member's context with the reach of their role (own branch; an admin's: all)."""
    return ctx if isinstance(ctx, MemberContext) else MemberContext.of(ctx, member, reach(member))


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
    mctx = _as_member(ctx, ctx.member) if ctx.member is not None else None
    if expired is not None and mctx is not None:
        late = registry.dialogs.get(expired.kind)
        if late and late.on_expired:
            mctx.args = text
            said = late.on_expired(mctx, expired)
            if said:
                return said
    spec = registry.dialogs.get(dialog.kind) if dialog else None
    if spec and dialog and mctx is not None:
        mctx.args = text
        reply = spec.on_reply(mctx, dialog)
        if reply is not None:
            return reply
    matched = registry.match(text) if text else None
    if matched:
        command, args = matched
        if ctx.role not in command.roles:
            return refuse(ctx, command)
        if mctx is None:
            if command.guest_handler is None:  # roles without GUEST never get here; kept for the type
                return refuse(ctx, command)
            ctx.args = args
            return command.guest_handler(ctx)
        if command.branch is not None:
            scoped = named_scope(ctx.db, mctx.member, command.branch, args)
            if isinstance(scoped, NotYours):
                return refuse_branch(mctx, command, scoped)
            mctx.scope, args = scoped
        mctx.args = args
        return command.handler(mctx)
    if spec and dialog and mctx is not None:
        mctx.args = text
        return spec.hint(mctx, dialog) or ""
    if registry.fallback and mctx is not None:
        mctx.args = text
        said = registry.fallback(mctx)
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
