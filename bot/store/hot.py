"""The chat hot path's reads and writes, by name: one function per thing a message needs.

Every statement here is built once, at import, as SQLAlchemy Core with bind parameters,
compiled once per process and dialect, and run on the DBAPI cursor of the session's
connection (``bot.store.prepared``): no ORM unit of work, identity map or attribute
instrumentation, and none of the per-call execution machinery. A duplicate message
key raises SQLAlchemy's IntegrityError, which the engine catches to answer a retry. Results are plain
dataclasses with slots. A message stays one transaction: these functions run on the
caller's session, so the ORM writes of the same message commit or roll back with them.

Reads a reply needs together are fetched together: the sender's roster entry comes with
its branch's name and the pending dialog in one statement, and a member's 积分 card
(month points, total, both places) in another. The standings statements carry the
ranking rule (higher score first, then whoever finished or reached the total earlier,
then the lower member id); ``quizzes.standings`` reads through them.

The ORM stays where it helps: the CLI, imports, exports and the console.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from bot.store.members import is_active_status
from bot.store.models import (
    Answer,
    Attempt,
    Branch,
    BranchMemberTotal,
    BranchMonth,
    Delivery,
    DeliveryStatus,
    Dialog,
    Member,
    MemberTotal,
    Paper,
    PointsEntry,
    ProcessedMessage,
    Question,
    ReviewCard,
    table_of,
)
from bot.store.prepared import Prepared

_member = table_of(Member)
_branch = table_of(Branch)
_dialog = table_of(Dialog)
_processed = table_of(ProcessedMessage)
_delivery = table_of(Delivery)
_attempt = table_of(Attempt)
_total = table_of(MemberTotal)
_branch_total = table_of(BranchMemberTotal)
_branch_month = table_of(BranchMonth)
_ledger = table_of(PointsEntry)
_paper = table_of(Paper)
_question = table_of(Question)
_answer = table_of(Answer)
_card = table_of(ReviewCard)


# ------------------------------------------------------------------ rows


@dataclass(frozen=True, slots=True)
class MemberRow:
    """A roster entry as the chat path sees it (the ``Member`` columns, plus its branch's name)."""

    id: int
    name: str
    phone: str
    branch_id: int
    branch_name: str
    joined_on: date | None
    role: str
    openid: str | None
    wecom_userid: str | None
    subscribed: bool
    is_demo: bool
    bound_at: datetime | None
    status: str
    bind_locked_until: datetime | None

    @property
    def is_active(self) -> bool:
        return is_active_status(self.status)


@dataclass(frozen=True, slots=True)
class DialogRow:
    """A conversation waiting for the sender's next message."""

    sender: str
    kind: str
    data: dict[str, Any]
    expires_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Standing:
    member_id: int
    name: str
    branch: str
    points: int
    at: datetime | None  # completion time (month) or time the total was reached


@dataclass(frozen=True, slots=True)
class Place:
    """Where one member stands: place (None when not ranked), how many are ranked, their score."""

    place: int | None
    count: int
    points: int


@dataclass(frozen=True, slots=True)
class PointsCard:
    """积分 in one read: this month's and all-time points, and the member's places in the branch."""

    month_points: int
    total_points: int
    month_place: int | None  # None: this month's quiz not finished
    total_place: int | None  # None: no points earned in this branch
    ranked: int  # members of the branch with points


# ------------------------------------------------------------------ message keys


_RECORD_MESSAGE = Prepared(insert(_processed).values({c.name: bindparam(c.name) for c in _processed.columns}))
_RECORDED_REPLY = Prepared(select(_processed.c.reply).where(_processed.c.key == bindparam("key")))


def record_message(db: Session, key: str, channel: str, reply: str, at: datetime) -> None:
    """Record a message key with its reply; a key seen before fails on the primary key."""
    _RECORD_MESSAGE.run(db, {"key": key, "channel": channel, "reply": reply, "created_at": at})


def recorded_reply(db: Session, key: str) -> str | None:
    row = _RECORDED_REPLY.first(db, {"key": key})
    return None if row is None else str(row[0])


# ------------------------------------------------------------------ members and dialogs


_MEMBER_COLUMNS = (
    _member.c.id,
    _member.c.name,
    _member.c.phone,
    _member.c.branch_id,
    func.coalesce(_branch.c.name, "").label("branch_name"),
    _member.c.joined_on,
    _member.c.role,
    _member.c.openid,
    _member.c.wecom_userid,
    _member.c.subscribed,
    _member.c.is_demo,
    _member.c.bound_at,
    _member.c.status,
    _member.c.bind_locked_until,
)
_N_MEMBER = len(_MEMBER_COLUMNS)


def _member_and_dialog(where: ColumnElement[bool]) -> Prepared:
    joined = _member.outerjoin(_branch, _branch.c.id == _member.c.branch_id).outerjoin(
        _dialog, _dialog.c.sender == bindparam("conversation")
    )
    dialog_columns = (_dialog.c.sender, _dialog.c.kind, _dialog.c.data, _dialog.c.expires_at, _dialog.c.updated_at)
    return Prepared(select(*_MEMBER_COLUMNS, *dialog_columns).select_from(joined).where(where))


_MEMBER_BY = {
    "wechat": _member_and_dialog(_member.c.openid == bindparam("sender")),
    "wecom": _member_and_dialog(_member.c.wecom_userid == bindparam("sender")),
    "id": _member_and_dialog(_member.c.id == bindparam("sender")),
}
_END_DIALOG = Prepared(delete(_dialog).where(_dialog.c.sender == bindparam("conversation")))
_SET_SUBSCRIBED = Prepared(
    update(_member).where(_member.c.id == bindparam("member_id")).values(subscribed=bindparam("flag"))
)


def _dialog_row(values: Any) -> DialogRow | None:
    return None if values[0] is None else DialogRow(*values)


def member_and_dialog(
    db: Session, channel: str, sender: str, conversation: str
) -> tuple[MemberRow | None, DialogRow | None]:
    """Who is writing (by OpenID on the Official Account, by user id on WeCom, by roster
    id from the CLI) and the dialog waiting for ``conversation``, in one statement. The
    dialog is read only with a roster entry: a guest's is void (see the router)."""
    key: int | str = sender
    if channel == "cli":
        if not (sender.isascii() and sender.isdigit()):
            return None, None
        statement, key = _MEMBER_BY["id"], int(sender)
    elif channel in ("wechat", "wecom"):
        statement = _MEMBER_BY[channel]
    else:
        return None, None
    row = statement.first(db, {"sender": key, "conversation": conversation})
    if row is None:
        return None, None
    return MemberRow(*row[:_N_MEMBER]), _dialog_row(row[_N_MEMBER:])


def member_by_sender(db: Session, channel: str, sender: str) -> MemberRow | None:
    """The roster entry writing on ``channel`` as ``sender`` (active or not)."""
    return member_and_dialog(db, channel, sender, "")[0]


@cache
def _save_dialog(dialect: str) -> Prepared:
    make = postgresql.insert if dialect == "postgresql" else sqlite.insert
    names = ("sender", "kind", "data", "expires_at", "updated_at")
    statement = make(_dialog).values({name: bindparam(name) for name in names})
    changes = {name: statement.excluded[name] for name in names[1:]}
    return Prepared(statement.on_conflict_do_update(index_elements=[_dialog.c.sender], set_=changes))


def save_dialog(
    db: Session, conversation: str, kind: str, data: dict[str, Any], expires_at: datetime | None, at: datetime
) -> None:
    """Start (or replace) the dialog waiting for ``conversation``: one upsert."""
    values = {"sender": conversation, "kind": kind, "data": data, "expires_at": expires_at, "updated_at": at}
    _save_dialog(db.get_bind().dialect.name).run(db, values)


def end_dialog(db: Session, conversation: str) -> None:
    _END_DIALOG.run(db, {"conversation": conversation})


def set_subscribed(db: Session, member_id: int, subscribed: bool) -> None:
    _SET_SUBSCRIBED.run(db, {"member_id": member_id, "flag": subscribed})


# ------------------------------------------------------------------ the notice inbox


_UNREAD_COUNT = Prepared(
    select(func.count(_delivery.c.id)).where(
        _delivery.c.member_id == bindparam("member_id"),
        _delivery.c.status == DeliveryStatus.INBOX,
        _delivery.c.read_at.is_(None),
    )
)


def unread_count(db: Session, member_id: int) -> int:
    return int(_UNREAD_COUNT.rows(db, {"member_id": member_id})[0][0])


# ------------------------------------------------------------------ standings


def _finished(attempt: Any, scoped: bool) -> list[ColumnElement[bool]]:
    """A month's finished attempts (in one branch when ``scoped``)."""
    conditions = [attempt.c.month == bindparam("month"), attempt.c.finished_at.is_not(None)]
    if scoped:
        conditions.append(attempt.c.branch_id == bindparam("branch_id"))
    return conditions


def _ahead(row: Any, mine: Any, points: Any, at: Any) -> ColumnElement[bool]:
    """The ranking rule: more points, or as many reached earlier, or the lower member id."""
    return or_(
        row.c[points] > mine.c[points],
        and_(row.c[points] == mine.c[points], row.c[at] < mine.c[at]),
        and_(row.c[points] == mine.c[points], row.c[at] == mine.c[at], row.c.member_id < mine.c.member_id),
    )


def _month_place_columns(scoped: bool) -> tuple[Any, Any]:
    """(my score this month or NULL, how many finished ahead of me) as scalar subqueries."""
    mine = _attempt.alias("mine")
    me = and_(mine.c.member_id == bindparam("member_id"), *_finished(mine, scoped))
    score = select(mine.c.score).where(me).limit(1).scalar_subquery()
    ahead = (
        select(func.count())
        .select_from(_attempt.join(mine, me))
        .where(*_finished(_attempt, scoped), _ahead(_attempt, mine, "score", "finished_at"))
        .scalar_subquery()
    )
    return score, ahead


def _totals(scoped: bool) -> Any:
    return _branch_total if scoped else _total


def _total_scope(table: Any, scoped: bool) -> list[ColumnElement[bool]]:
    return [table.c.branch_id == bindparam("branch_id")] if scoped else []


def _total_place_columns(scoped: bool) -> tuple[Any, Any, Any]:
    """(my points or NULL, how many are ahead of me, how many have points) as scalar subqueries."""
    totals = _totals(scoped)
    mine = totals.alias("mine")
    me = and_(mine.c.member_id == bindparam("member_id"), *_total_scope(mine, scoped))
    points = select(mine.c.points).where(me).scalar_subquery()
    ahead = (
        select(func.count())
        .select_from(totals.join(mine, me))
        .where(*_total_scope(totals, scoped), _ahead(totals, mine, "points", "reached_at"))
        .scalar_subquery()
    )
    ranked = select(func.count()).select_from(totals).where(*_total_scope(totals, scoped), totals.c.points > 0)
    return points, ahead, ranked.scalar_subquery()


def _month_finished(scoped: bool) -> Any:
    """How many finished the month's quiz: from the per-branch month figures."""
    query = select(func.coalesce(func.sum(_branch_month.c.finished), 0)).where(
        _branch_month.c.month == bindparam("month")
    )
    if scoped:
        query = query.where(_branch_month.c.branch_id == bindparam("branch_id"))
    return query.scalar_subquery()


def _month_top(scoped: bool) -> Select[Any]:
    # All branches: the first rows of ix_attempt_month_board. One branch: its finishers
    # through ix_attempt_board (month, branch_id), then sorted; sorting by "score + 0"
    # keeps SQLite, which keeps no statistics, from walking the whole month in
    # ix_attempt_month_board's order to find ten of one branch's.
    score = _attempt.c.score + 0 if scoped else _attempt.c.score
    return (
        select(_attempt.c.member_id, _member.c.name, _branch.c.name, _attempt.c.score, _attempt.c.finished_at)
        .join(_member, _member.c.id == _attempt.c.member_id)
        .join(_branch, _branch.c.id == _attempt.c.branch_id)
        .where(*_finished(_attempt, scoped))
        .order_by(score.desc(), _attempt.c.finished_at, _attempt.c.member_id)
        .limit(bindparam("limit"))
    )


def _total_top(scoped: bool) -> Select[Any]:
    totals = _totals(scoped)
    return (
        select(totals.c.member_id, _member.c.name, _branch.c.name, totals.c.points, totals.c.reached_at)
        .join(_member, _member.c.id == totals.c.member_id)
        .join(_branch, _branch.c.id == _member.c.branch_id)
        .where(*_total_scope(totals, scoped), totals.c.points > 0)
        .order_by(totals.c.points.desc(), totals.c.reached_at, totals.c.member_id)
        .limit(bindparam("limit"))
    )


def _month_place(scoped: bool) -> Select[Any]:
    score, ahead = _month_place_columns(scoped)
    return select(score, ahead, _month_finished(scoped))


def _total_place(scoped: bool) -> Select[Any]:
    return select(*_total_place_columns(scoped))


def _points_card() -> Select[Any]:
    month_points = (
        select(func.coalesce(func.sum(_ledger.c.amount), 0))
        .where(_ledger.c.member_id == bindparam("member_id"), _ledger.c.month == bindparam("month"))
        .scalar_subquery()
    )
    total = select(_total.c.points).where(_total.c.member_id == bindparam("member_id")).scalar_subquery()
    return select(month_points, total, *_month_place_columns(True), *_total_place_columns(True))


_MONTH_TOP = {scoped: Prepared(_month_top(scoped)) for scoped in (True, False)}
_TOTAL_TOP = {scoped: Prepared(_total_top(scoped)) for scoped in (True, False)}
_MONTH_PLACE = {scoped: Prepared(_month_place(scoped)) for scoped in (True, False)}
_TOTAL_PLACE = {scoped: Prepared(_total_place(scoped)) for scoped in (True, False)}
_POINTS_CARD = Prepared(_points_card())


def _place(points: int | None, ahead: int, count: int) -> Place:
    if points is None:
        return Place(None, int(count), 0)
    return Place(int(ahead) + 1, int(count), int(points))


def month_top(db: Session, month: str, branch_id: int | None = None, limit: int = 10) -> list[Standing]:
    """The month's best ``limit`` finished attempts (in one branch, or in all), in board order."""
    params = {"month": month, "branch_id": branch_id, "limit": limit}
    rows = _MONTH_TOP[branch_id is not None].rows(db, params)
    return [Standing(*row) for row in rows]


def month_place(db: Session, month: str, member_id: int, branch_id: int | None = None) -> Place:
    """The member's place this month (None if not finished), how many finished, their score."""
    params = {"month": month, "member_id": member_id, "branch_id": branch_id}
    score, ahead, finished = _MONTH_PLACE[branch_id is not None].rows(db, params)[0]
    return _place(score, ahead, finished)


def total_top(db: Session, branch_id: int | None = None, limit: int = 10) -> list[Standing]:
    """All-time points (a branch's board counts the points earned in that branch), best first."""
    rows = _TOTAL_TOP[branch_id is not None].rows(db, {"branch_id": branch_id, "limit": limit})
    return [Standing(*row) for row in rows]


def total_place(db: Session, member_id: int, branch_id: int | None = None) -> Place:
    """The member's all-time place (None without points), how many have points, their points."""
    params = {"member_id": member_id, "branch_id": branch_id}
    points, ahead, ranked = _TOTAL_PLACE[branch_id is not None].rows(db, params)[0]
    if points is None or points <= 0:
        return Place(None, int(ranked), int(points or 0))
    return _place(points, ahead, ranked)


def points_card(db: Session, member_id: int, branch_id: int, month: str) -> PointsCard:
    """Everything 积分 shows, in one statement."""
    params = {"member_id": member_id, "branch_id": branch_id, "month": month}
    row = _POINTS_CARD.rows(db, params)[0]
    month_points, total, month_score, month_ahead, branch_points, total_ahead, ranked = row
    month_place = None if month_score is None else int(month_ahead) + 1
    total_place = None if branch_points is None or branch_points <= 0 else int(total_ahead) + 1
    return PointsCard(int(month_points), int(total or 0), month_place, total_place, int(ranked))


# ------------------------------------------------------------------ the quiz


@dataclass(frozen=True, slots=True)
class QuestionRow:
    """A bank question as asking and grading need it."""

    id: int
    kind: str
    stem: str
    options: list[dict[str, str]]
    answer: list[str]
    explanation: str
    category: str
    source: str
    difficulty: int
    active: bool


@dataclass(frozen=True, slots=True)
class AttemptRow:
    """A member's monthly attempt with its paper's question ids."""

    id: int
    member_id: int
    paper_id: int
    branch_id: int
    month: str
    option_orders: dict[str, list[str]]
    position: int
    correct: int
    score: int
    started_at: datetime
    asked_at: datetime | None
    finished_at: datetime | None
    question_ids: list[int]


@dataclass(frozen=True, slots=True)
class CardRow:
    """A question in a member's wrong-answer book (``id`` None: not in the book yet)."""

    id: int | None
    member_id: int
    question_id: int
    card: str
    due: datetime
    stability: float
    lapses: int
    created_at: datetime
    graduated_at: datetime | None


_QUESTION_COLUMNS = tuple(_question.c[name] for name in QuestionRow.__slots__)
_ATTEMPT_COLUMNS = tuple(_attempt.c[name] for name in AttemptRow.__slots__ if name != "question_ids")
# The attempt row is locked (PostgreSQL; SQLite has one writer anyway), so two answers
# from one member handled by two instances at once are graded one after the other.
_ATTEMPT = Prepared(
    select(*_ATTEMPT_COLUMNS, _paper.c.question_ids)
    .join(_paper, _paper.c.id == _attempt.c.paper_id)
    .where(_attempt.c.id == bindparam("attempt_id"))
    .with_for_update(of=_attempt)
)
_QUESTIONS = Prepared(
    select(*_QUESTION_COLUMNS).where(or_(_question.c.id == bindparam("first"), _question.c.id == bindparam("second")))
)
_ADVANCE = Prepared(
    update(_attempt)
    .where(_attempt.c.id == bindparam("attempt_id"))
    .values(
        position=bindparam("position"),
        correct=bindparam("correct"),
        score=bindparam("score"),
        asked_at=bindparam("asked_at"),
        finished_at=bindparam("finished_at"),
    )
)


def _insert(table: Any) -> Prepared:
    """An insert naming every column but the generated id (no Python-side defaults to apply)."""
    return Prepared(insert(table).values({c.name: bindparam(c.name) for c in table.columns if c.name != "id"}))


_RECORD_ANSWER = _insert(_answer)
_CARD = Prepared(
    select(*(_card.c[name] for name in CardRow.__slots__)).where(
        _card.c.member_id == bindparam("member_id"), _card.c.question_id == bindparam("question_id")
    )
)
_NEW_CARD = _insert(_card)
_UPDATE_CARD = Prepared(
    update(_card)
    .where(_card.c.id == bindparam("card_id"))
    .values(
        card=bindparam("card"),
        due=bindparam("due"),
        stability=bindparam("stability"),
        lapses=bindparam("lapses"),
        graduated_at=bindparam("graduated_at"),
    )
)


def attempt_for_answer(db: Session, attempt_id: int | None) -> AttemptRow | None:
    """The attempt an answer is for, with its paper's question ids, locked until commit."""
    if attempt_id is None:
        return None
    row = _ATTEMPT.first(db, {"attempt_id": attempt_id})
    return None if row is None else AttemptRow(*row)


def questions(db: Session, ids: list[int]) -> dict[int, QuestionRow]:
    """Up to two questions by id, in one statement (a question and the next one to show)."""
    if not ids:
        return {}
    if len(ids) > 2:
        raise ValueError("questions() reads a question and the next one")
    rows = _QUESTIONS.rows(db, {"first": ids[0], "second": ids[-1]})
    return {row[0]: QuestionRow(*row) for row in rows}


def advance_attempt(
    db: Session,
    attempt_id: int,
    *,
    position: int,
    correct: int,
    score: int,
    asked_at: datetime | None,
    finished_at: datetime | None,
) -> None:
    """Move an attempt on after an answer: where it is, its tally, when asked or finished."""
    values = {
        "attempt_id": attempt_id,
        "position": position,
        "correct": correct,
        "score": score,
        "asked_at": asked_at,
        "finished_at": finished_at,
    }
    _ADVANCE.run(db, values)


def record_answer(
    db: Session,
    *,
    member_id: int,
    question_id: int,
    mode: str,
    chosen: list[str],
    correct: bool,
    seconds: float,
    at: datetime,
    attempt_id: int | None = None,
) -> None:
    values = {
        "attempt_id": attempt_id,
        "mode": mode,
        "member_id": member_id,
        "question_id": question_id,
        "chosen": chosen,
        "is_correct": correct,
        "seconds_taken": seconds,
        "answered_at": at,
    }
    _RECORD_ANSWER.run(db, values)


def review_card(db: Session, member_id: int, question_id: int) -> CardRow | None:
    row = _CARD.first(db, {"member_id": member_id, "question_id": question_id})
    return None if row is None else CardRow(*row)


def save_review_card(db: Session, card: CardRow) -> None:
    """Write a card back: a new one (``id`` None) is inserted, a known one updated."""
    if card.id is None:
        values = {name: getattr(card, name) for name in CardRow.__slots__ if name != "id"}
        _NEW_CARD.run(db, values)
        return
    changes = {
        "card_id": card.id,
        "card": card.card,
        "due": card.due,
        "stability": card.stability,
        "lapses": card.lapses,
        "graduated_at": card.graduated_at,
    }
    _UPDATE_CARD.run(db, changes)
