"""The router and the registry on their own (no HTTP, no handlers' queries): how a text
finds its command, the order dialog → command → help, roles, and the branch scope.

Handlers here are stand-ins that record what they were given, so each test shows one
routing decision; the conversations themselves are tested through the webhook."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel, create_engine, select

from bot.config import Config
from bot.messages import Inbound
from bot.router import (
    ADMINS,
    MEMBERS,
    SECRETARIES,
    Args,
    Context,
    MemberContext,
    Registry,
    route,
)
from bot.scope import BranchParam, Scope
from bot.store.models import AuditEntry, Branch, Dialog, Member, Role
from handlers import build_registry
from tests.conftest import make_config

NOW = datetime(2026, 11, 10, 1, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return make_config(Path(tmp_path_factory.mktemp("routing")))


@pytest.fixture(scope="module")
def engine():  # type: ignore[no-untyped-def]
    engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    SQLModel.metadata.create_all(engine)
    with Session(engine) as db:
        first, second = Branch(id=1, name="第一党支部"), Branch(id=2, name="第二党支部")
        db.add_all([first, second])
        for number, (name, role, branch) in enumerate(
            [("李明", Role.MEMBER, 1), ("王书记", Role.SECRETARY, 1), ("吴管理", Role.ADMIN, 2)], start=1
        ):
            db.add(Member(id=number, name=name, phone=f"1390000000{number}", branch_id=branch, role=role.value))
        db.commit()
    return engine


@pytest.fixture
def db(engine) -> Iterator[Session]:  # type: ignore[no-untyped-def]
    with Session(engine, autoflush=False) as session:
        yield session
        session.rollback()


@dataclass
class Calls:
    """What the stand-in handlers saw: (name, args, scope or None for a guest)."""

    seen: list[tuple[str, str, Scope | None]] = field(default_factory=list)

    def member(self, name: str, reply: str | None = "ok"):  # type: ignore[no-untyped-def]
        def handler(ctx: MemberContext, *_: object) -> str | None:
            assert ctx.member is not None and ctx.member_id == ctx.member.id
            self.seen.append((name, ctx.args, ctx.scope))
            return reply if reply is None else f"{name}:{reply}"

        return handler

    def anyone(self, name: str):  # type: ignore[no-untyped-def]
        def handler(ctx: Context) -> str:
            self.seen.append((name, ctx.args, getattr(ctx, "scope", None)))
            return f"{name}:ok"

        return handler


def toy_registry(calls: Calls, dialog_takes: bool = True) -> Registry:
    bot = Registry()
    bot.open_command("帮助", calls.anyone("help"), summary="查看功能")
    bot.command("积分", calls.member("points"), roles=MEMBERS, summary="积分")
    bot.command("通知", calls.member("inbox"), roles=MEMBERS, summary="未读", args=Args.NONE)
    bot.command(
        "通知", calls.member("broadcast"), roles=SECRETARIES, summary="发", usage="通知 内容", args=Args.REQUIRED
    )
    bot.command("通知状态", calls.member("status"), roles=SECRETARIES, summary="状态")
    bot.command("催办", calls.member("nudge"), roles=SECRETARIES, summary="催办", branch=BranchParam())
    bot.command("纠错列表", calls.member("reports"), roles=ADMINS, summary="纠错")
    bot.dialog(
        "quiz",
        on_reply=calls.member("dialog", "taken" if dialog_takes else None),
        hint=calls.member("hint"),
        on_expired=calls.member("expired"),
    )
    bot.fallback = calls.member("fallback", None)
    return bot


def send(db: Session, config: Config, registry: Registry, text: str, member_id: int | None) -> str:
    sender = f"o-{member_id}" if member_id else "o-guest"
    inbound = Inbound("wechat", sender, "text", f"k-{text}", NOW, text=text)
    member = db.get(Member, member_id) if member_id else None
    return route(Context(db=db, config=config, now=NOW, inbound=inbound, member=member, registry=registry))


def pending(db: Session, member_id: int, expires_at: datetime | None = None) -> None:
    db.add(Dialog(sender=f"wechat:o-{member_id}", kind="quiz", data={}, expires_at=expires_at, updated_at=NOW))
    db.flush()


# ---------------------------------------------------------------- matching


def test_the_longest_word_wins_and_the_rest_are_arguments() -> None:
    registry = build_registry()
    command, args = registry.match("通知状态 12") or (None, "")
    assert command is not None and command.word == "通知状态" and args == "12"
    command, args = registry.match("错题本") or (None, "")
    assert command is not None and command.word == "错题" and args == ""
    command, args = registry.match("HELP") or (None, "")
    assert command is not None and command.word == "帮助"
    assert registry.match("你好") is None


def test_one_word_two_commands_told_apart_by_their_arguments() -> None:
    registry = build_registry()
    inbox, _ = registry.match("通知") or (None, "")
    broadcast, args = registry.match("通知 周五集中学习") or (None, "")
    assert inbox is not None and broadcast is not None and inbox is not broadcast
    assert inbox.roles == MEMBERS and broadcast.roles == SECRETARIES and args == "周五集中学习"
    unread, _ = registry.match("未读通知") or (None, "")
    assert unread is inbox


def test_every_command_open_to_guests_is_registered_as_such() -> None:
    for command in build_registry().commands:
        assert (command.guest_handler is not None) == ("guest" in command.roles), command.word


def test_a_guest_command_cannot_be_registered_as_a_member_command() -> None:
    with pytest.raises(ValueError):
        Registry().command("帮助", lambda ctx: "", roles=frozenset({"guest"}), summary="")


# ---------------------------------------------------------------- order: dialog, command, help


def test_a_pending_dialog_takes_the_text_before_any_command(db, config) -> None:
    calls = Calls()
    pending(db, 1)
    assert send(db, config, toy_registry(calls), "积分", 1) == "dialog:taken"
    assert [name for name, _, _ in calls.seen] == ["dialog"]


def test_a_command_runs_when_the_dialog_declines_the_text(db, config) -> None:
    calls = Calls()
    pending(db, 1)
    assert send(db, config, toy_registry(calls, dialog_takes=False), "积分", 1) == "points:ok"
    assert [name for name, _, _ in calls.seen] == ["dialog", "points"]


def test_the_dialog_hints_when_neither_it_nor_a_command_takes_the_text(db, config) -> None:
    calls = Calls()
    pending(db, 1)
    assert send(db, config, toy_registry(calls, dialog_takes=False), "嗯", 1) == "hint:ok"


def test_an_expired_dialog_answers_a_late_reply_and_is_gone(db, config) -> None:
    calls = Calls()
    pending(db, 1, expires_at=NOW - timedelta(minutes=1))
    assert send(db, config, toy_registry(calls), "确认", 1) == "expired:ok"
    db.flush()
    assert db.get(Dialog, "wechat:o-1") is None


def test_text_nothing_takes_gets_help_with_suggestions(db, config) -> None:
    calls = Calls()
    reply = send(db, config, toy_registry(calls), "积份", 1)
    assert reply.startswith("没有找到「积份」对应的功能") and "「积分」" in reply
    assert [name for name, _, _ in calls.seen] == ["fallback"]


def test_a_guests_dialog_is_void(db, config) -> None:
    calls = Calls()
    db.add(Dialog(sender="wechat:o-guest", kind="quiz", data={}, updated_at=NOW))
    db.flush()
    assert send(db, config, toy_registry(calls), "帮助", None) == "help:ok"
    db.flush()
    assert db.get(Dialog, "wechat:o-guest") is None and [n for n, _, _ in calls.seen] == ["help"]


# ---------------------------------------------------------------- roles


def test_roles_are_enforced_before_the_handler_and_audited(db, config) -> None:
    calls = Calls()
    registry = toy_registry(calls)
    assert send(db, config, registry, "通知 大家好", 1).startswith("「通知 内容」仅限支部书记和管理员使用")
    assert send(db, config, registry, "纠错列表", 2).startswith("「纠错列表」仅限管理员使用")
    assert send(db, config, registry, "通知", 1) == "inbox:ok"
    assert [name for name, _, _ in calls.seen] == ["inbox"]
    db.flush()
    assert len(db.exec(select(AuditEntry)).all()) == 2


def test_guests_reach_only_open_commands(db, config) -> None:
    calls = Calls()
    registry = toy_registry(calls)
    assert send(db, config, registry, "积分", None).startswith("请先绑定身份")
    assert send(db, config, registry, "帮助", None) == "help:ok"
    assert calls.seen == [("help", "", None)]


# ---------------------------------------------------------------- scope


def test_the_scope_is_the_roles_reach(db, config) -> None:
    calls = Calls()
    registry = toy_registry(calls)
    for member_id in (1, 2, 3):
        send(db, config, registry, "积分", member_id)
    assert [scope for _, _, scope in calls.seen] == [Scope(1, (1,)), Scope(1, (1,)), Scope(2, None)]


def test_a_secretary_naming_another_branch_is_refused_before_the_handler(db, config) -> None:
    calls = Calls()
    reply = send(db, config, toy_registry(calls), "催办 第二党支部", 2)
    assert reply == "「第二党支部」不是您所在的支部。您只能管理本支部（第一党支部）的事务。"
    assert calls.seen == []


def test_a_secretary_naming_their_own_branch_keeps_the_text(db, config) -> None:
    calls = Calls()
    assert send(db, config, toy_registry(calls), "催办 第一党支部", 2) == "nudge:ok"
    assert calls.seen == [("nudge", "第一党支部", Scope(1, (1,)))]


def test_an_admin_names_the_branch_and_the_name_leaves_the_arguments(db, config) -> None:
    calls = Calls()
    registry = toy_registry(calls)
    send(db, config, registry, "催办 第一党支部 尽快", 3)
    send(db, config, registry, "催办", 3)
    send(db, config, registry, "催办 第三党支部", 3)  # no such branch: the handler's text
    assert calls.seen == [
        ("nudge", "尽快", Scope(1, (1,))),
        ("nudge", "", Scope(2, (2,))),
        ("nudge", "第三党支部", Scope(2, (2,))),
    ]
