"""Tables. Written for SQLite and PostgreSQL alike: no engine-specific types or SQL.

Times are stored as timezone-aware UTC datetimes; months as "YYYY-MM" strings in the
configured timezone, because "this month's quiz" is a local-calendar notion.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, LargeBinary, Table, UniqueConstraint, inspect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel, col


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (naive storage) and
    PostgreSQL (timestamptz) alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def saved_id(id_: int | None) -> int:
    """The id of a row read from the store or flushed to it. SQLModel types ids as
    Optional because a new row has none until it is inserted."""
    if id_ is None:
        raise ValueError("the row has no id yet: flush it first")
    return id_


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a table model, for Core statements built once (an ORM ``insert``
    would take the slower bulk path); SQLModel leaves ``__table__`` untyped."""
    table = inspect(model).local_table
    assert isinstance(table, Table)
    return table


def _utc_column(nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class Role(StrEnum):
    MEMBER = "党员"
    SECRETARY = "书记"
    ADMIN = "管理员"


class MemberStatus(StrEnum):
    """Whether a roster entry is current. An 已转出 member keeps their history but is a
    guest in chat and receives nothing; ``bot.store.members`` is the one place that
    turns this into queries and checks."""

    ACTIVE = "在册"
    TRANSFERRED = "已转出"


class DeliveryStatus(StrEnum):
    """A delivery's life: pending → sending (claimed, with a lease) → sent | failed |
    skipped (unbound, unfollowed, transferred, withdrawn) | inbox (kept for 通知 when the
    Official Account's 48-hour window was closed). The values are what the column holds."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    INBOX = "inbox"


WAITING = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)  # not yet sent, nor given up


class ContestState(StrEnum):
    """A 抢答赛: members join, then questions run one by one, then it is over."""

    JOINING = "joining"
    RUNNING = "running"
    DONE = "done"


class JobStatus(StrEnum):
    """A job run: the row is written as running before the job starts, so a run is
    once-only; a run the scheduler could not make in time is recorded as missed."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    MISSED = "missed"


class Branch(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=100)


class Member(SQLModel, table=True):
    # Counts 在册 members per branch (排行榜 支部) from the index alone.
    __table_args__ = (Index("ix_member_status_branch", "status", "branch_id"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, max_length=50)
    phone: str = Field(unique=True, max_length=20)
    branch_id: int = Field(foreign_key="branch.id", index=True)
    joined_on: date | None = None
    role: str = Field(default=Role.MEMBER.value, max_length=10)
    openid: str | None = Field(default=None, unique=True, max_length=64)
    wecom_userid: str | None = Field(default=None, unique=True, max_length=64)
    subscribed: bool = True
    is_demo: bool = False
    bound_at: datetime | None = _utc_column(nullable=True)
    status: str = Field(default=MemberStatus.ACTIVE.value, max_length=10)  # MemberStatus: 已转出 keep their history
    # Too many failed 绑定 guesses at this entry, from any senders: nobody binds it until then.
    bind_locked_until: datetime | None = _utc_column(nullable=True)


class Question(SQLModel, table=True):
    """A bank question. Options carry stable ids ("o1".."o6"); the key is a list of ids,
    so showing options in a per-member order can never break the answer key."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=10)  # 单选 / 多选 / 判断
    stem: str
    stem_key: str = Field(unique=True, max_length=64)
    options: list[dict[str, str]] = Field(sa_column=Column(JSON, nullable=False))
    answer: list[str] = Field(sa_column=Column(JSON, nullable=False))
    explanation: str
    category: str = Field(index=True, max_length=50)
    source: str
    difficulty: int = 2
    active: bool = True


class Paper(SQLModel, table=True):
    """A branch's paper for one month: the same questions for every member."""

    __table_args__ = (UniqueConstraint("branch_id", "month"),)
    id: int | None = Field(default=None, primary_key=True)
    branch_id: int = Field(foreign_key="branch.id", index=True)
    month: str = Field(max_length=7)
    question_ids: list[int] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = _utc_column()


class Attempt(SQLModel, table=True):
    """One member's attempt at a paper. ``option_orders`` maps question id to the order
    its option ids are shown in, fixed when the attempt starts."""

    # The board index serves "this month's top 10" and "how many are ahead of me" without a scan.
    __table_args__ = (
        UniqueConstraint("member_id", "paper_id"),
        Index("ix_attempt_board", "month", "branch_id", "score"),
    )
    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    paper_id: int = Field(foreign_key="paper.id", index=True)
    branch_id: int = Field(foreign_key="branch.id", index=True)
    month: str = Field(max_length=7, index=True)
    option_orders: dict[str, list[str]] = Field(sa_column=Column(JSON, nullable=False))
    position: int = 0  # index of the question being asked
    correct: int = 0
    score: int = 0
    started_at: datetime = _utc_column()
    asked_at: datetime | None = _utc_column(nullable=True)
    finished_at: datetime | None = _utc_column(nullable=True, index=True)


# The whole month's board in the board's own order (score down, then earlier finish, then
# member id): an admin's top 10 of all branches reads 10 index entries.
Index(
    "ix_attempt_month_board",
    col(Attempt.month),
    col(Attempt.score).desc(),
    col(Attempt.finished_at),
    col(Attempt.member_id),
)


class Answer(SQLModel, table=True):
    """Every answer in every mode (monthly, practice, challenge, review): the question
    statistics and the wrong-answer book are built from these."""

    __table_args__ = (UniqueConstraint("attempt_id", "question_id"),)
    id: int | None = Field(default=None, primary_key=True)
    attempt_id: int | None = Field(default=None, foreign_key="attempt.id", index=True)  # monthly quiz only
    mode: str = Field(default="monthly", max_length=10, index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    question_id: int = Field(foreign_key="question.id", index=True)
    chosen: list[str] = Field(sa_column=Column(JSON, nullable=False))
    is_correct: bool
    seconds_taken: float = 0.0
    answered_at: datetime = _utc_column()


class PointsEntry(SQLModel, table=True):
    """The points ledger. Totals are sums; corrections and penalties are entries too.
    Write it only through ``quizzes.points.award``, which keeps the totals below with it."""

    __table_args__ = (Index("ix_pointsentry_member_month", "member_id", "month"),)  # a member's 本月积分
    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    branch_id: int = Field(foreign_key="branch.id", index=True)
    amount: int
    kind: str = Field(default="earn", max_length=20)  # earn / correction / penalty
    reason: str = Field(max_length=100)  # e.g. "monthly:2026-11"
    month: str = Field(max_length=7, index=True)
    created_at: datetime = _utc_column()


class ProcessedMessage(SQLModel, table=True):
    """A message key seen once, with the reply that was given to it."""

    key: str = Field(primary_key=True, max_length=200)
    channel: str = Field(max_length=20)
    reply: str = ""
    created_at: datetime = _utc_column(index=True)


class CallbackNonce(SQLModel, table=True):
    """A plaintext-signed callback's (timestamp, nonce), seen inside the replay window.

    Plain and compatible mode sign only token, timestamp and nonce, not the body: a
    captured signature could carry any other body. Shared through the store so every
    instance refuses the second use with a different body; pruned by housekeeping."""

    key: str = Field(primary_key=True, max_length=64)  # sha256 of channel, timestamp, nonce
    body_hash: str = Field(max_length=64)
    seen_at: datetime = _utc_column(index=True)


class Dialog(SQLModel, table=True):
    """A conversation waiting for the sender's next message (e.g. the current question)."""

    sender: str = Field(primary_key=True, max_length=100)  # "channel:user id"
    kind: str = Field(max_length=30)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    expires_at: datetime | None = _utc_column(nullable=True)
    updated_at: datetime = _utc_column()


class BindAttempt(SQLModel, table=True):
    """A 绑定 attempt. A row without ``member_id`` counts against its sender; a failed
    guess at a roster entry's name also leaves one row per entry of that name, with its
    ``member_id``, which counts against the entry."""

    id: int | None = Field(default=None, primary_key=True)
    openid: str = Field(index=True, max_length=64)
    ok: bool
    at: datetime = _utc_column(index=True)
    member_id: int | None = Field(default=None, index=True)


class Campaign(SQLModel, table=True):
    """One push to many members: a broadcast, a job's reminder, or a slow reply."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=30, index=True)  # monthly_quiz, holiday, birthday, meeting, reply, ...
    title: str = Field(default="", max_length=100)
    text: str
    branch_id: int | None = Field(default=None, foreign_key="branch.id", index=True)
    created_by: int | None = Field(default=None, foreign_key="member.id")
    job_run_id: int | None = Field(default=None, foreign_key="jobrun.id", index=True)
    created_at: datetime = _utc_column()
    finished_at: datetime | None = _utc_column(nullable=True)
    # Also post into the branch's WeCom group robot: "" no, pending, posting, sent, failed <errcode>
    robot_status: str = Field(default="", max_length=40)
    send_after: datetime | None = _utc_column(nullable=True)  # a scheduled broadcast (定时通知)
    cancelled_at: datetime | None = _utc_column(nullable=True)


class Delivery(SQLModel, table=True):
    """One member's copy of a campaign; the unique pair is what makes a push once-only.

    status: pending → sending (claimed, with a lease) → sent | failed | skipped | inbox.
    """

    __table_args__ = (UniqueConstraint("campaign_id", "member_id"),)
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    status: str = Field(default=DeliveryStatus.PENDING.value, max_length=10, index=True)  # DeliveryStatus
    via: str = Field(default="", max_length=20)  # wecom, wechat_kf, wechat_template, robot, inbox, demo
    attempts: int = 0
    errcode: int | None = None
    errmsg: str = Field(default="", max_length=300)
    claim: str = Field(default="", max_length=40)
    lease_until: datetime | None = _utc_column(nullable=True, index=True)
    next_attempt_at: datetime | None = _utc_column(nullable=True)
    failing_since: datetime | None = _utc_column(
        nullable=True
    )  # first transient failure: retries stop a retry window later
    updated_at: datetime | None = _utc_column(nullable=True)
    read_at: datetime | None = _utc_column(nullable=True)  # for notices waiting in the inbox


class AccessToken(SQLModel, table=True):
    """A platform access token shared by every process (one row per app)."""

    app: str = Field(primary_key=True, max_length=120)
    token: str = Field(max_length=600)
    expires_at: datetime = _utc_column()
    refreshed_at: datetime = _utc_column()


class JobRun(SQLModel, table=True):
    """The store, not the scheduler's memory, decides whether a job already ran."""

    __table_args__ = (UniqueConstraint("job", "scheduled_for"),)
    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=50)
    scheduled_for: datetime = _utc_column()
    started_at: datetime = _utc_column()
    finished_at: datetime | None = _utc_column(nullable=True)
    status: str = Field(default=JobStatus.RUNNING.value, max_length=10)  # JobStatus
    detail: str = ""


class Meeting(SQLModel, table=True):
    """A branch meeting (三会一课, 主题党日): the notice, replies and attendance record."""

    id: int | None = Field(default=None, primary_key=True)
    branch_id: int = Field(foreign_key="branch.id", index=True)
    type: str = Field(max_length=20)  # 支部党员大会 / 支委会 / 党小组会 / 党课 / 主题党日
    starts_at: datetime = _utc_column(index=True)
    place: str = Field(max_length=100)
    topic: str = Field(max_length=200)
    created_by: int | None = Field(default=None, foreign_key="member.id")
    created_at: datetime = _utc_column()
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id")
    checkin_code: str = Field(default="", max_length=4)
    checkin_until: datetime | None = _utc_column(nullable=True)


class MeetingReply(SQLModel, table=True):
    """A member's answer to a meeting notice (参加 / 请假) and their check-in."""

    __table_args__ = (UniqueConstraint("meeting_id", "member_id"),)
    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meeting.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    answer: str = Field(default="", max_length=10)  # 参加 / 请假 / ""
    reason: str = Field(default="", max_length=200)
    answered_at: datetime | None = _utc_column(nullable=True)
    checked_in_at: datetime | None = _utc_column(nullable=True)
    wrong_codes: int = 0  # wrong check-in codes typed for this meeting (签到 stops at MAX_WRONG_CODES)


class AuditEntry(SQLModel, table=True):
    """Who did what, when: broadcasts, role changes, imports, exports, refusals."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _utc_column(index=True)
    actor: str = Field(max_length=100)  # a member ("张三（第一党支部）") or "CLI"
    action: str = Field(max_length=30, index=True)
    detail: str = ""


class ReviewCard(SQLModel, table=True):
    """A question in a member's wrong-answer book, scheduled with FSRS (fsrs 6.x JSON)."""

    __table_args__ = (UniqueConstraint("member_id", "question_id"),)
    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    question_id: int = Field(foreign_key="question.id", index=True)
    card: str  # fsrs Card.to_json()
    due: datetime = _utc_column(index=True)
    stability: float = 0.0
    lapses: int = 0
    created_at: datetime = _utc_column()
    graduated_at: datetime | None = _utc_column(nullable=True)  # left the book


class ChallengeRun(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    streak: int = 0
    started_at: datetime = _utc_column()
    ended_at: datetime | None = _utc_column(nullable=True)


class QuestionReport(SQLModel, table=True):
    """纠错: a member's report of a mistake in a question."""

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    question_id: int = Field(foreign_key="question.id", index=True)
    text: str = Field(max_length=500)
    at: datetime = _utc_column(index=True)
    handled_at: datetime | None = _utc_column(nullable=True)  # marked handled in the console
    handled_by: str = Field(default="", max_length=100)


class Contest(SQLModel, table=True):
    """A live 抢答赛: members join for 2 minutes, then each question is open for 60 s."""

    id: int | None = Field(default=None, primary_key=True)
    branch_id: int = Field(foreign_key="branch.id", index=True)
    created_by: int | None = Field(default=None, foreign_key="member.id")
    question_ids: list[int] = Field(sa_column=Column(JSON, nullable=False))
    state: str = Field(default=ContestState.JOINING.value, max_length=10, index=True)  # ContestState
    join_until: datetime = _utc_column()
    index: int = -1  # the question being asked
    question_started_at: datetime | None = _utc_column(nullable=True)
    created_at: datetime = _utc_column()
    finished_at: datetime | None = _utc_column(nullable=True)


class ContestPlayer(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("contest_id", "member_id"),)
    id: int | None = Field(default=None, primary_key=True)
    contest_id: int = Field(foreign_key="contest.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    score: int = 0
    joined_at: datetime = _utc_column()


class ContestAnswer(SQLModel, table=True):
    """One answer per player per question; the unique place makes the first three
    correct answers distinct even when two arrive in the same millisecond."""

    __table_args__ = (
        UniqueConstraint("contest_id", "index", "member_id"),
        UniqueConstraint("contest_id", "index", "place"),
    )
    id: int | None = Field(default=None, primary_key=True)
    contest_id: int = Field(foreign_key="contest.id", index=True)
    index: int
    member_id: int = Field(foreign_key="member.id")
    correct: bool
    place: int | None = None  # 1, 2, 3 for the first correct answers
    points: int = 0
    at: datetime = _utc_column()


# ---------------------------------------------------------------- maintained aggregates
# Written in the same transaction as what they summarise (quizzes/points.py), so they
# cannot drift from it; migration 0003 backfilled them from the ledger and attempts.


class MemberTotal(SQLModel, table=True):
    """A member's all-time points: the sum of their ledger entries. ``reached_at`` is
    their latest entry's time, when the total was reached (ties go to the earlier)."""

    member_id: int = Field(foreign_key="member.id", primary_key=True)
    points: int = 0
    reached_at: datetime = _utc_column()


# 排行榜 总 for all branches in the board's order: top 10 and "how many are ahead of me" by index.
Index("ix_membertotal_board", col(MemberTotal.points).desc(), col(MemberTotal.reached_at), col(MemberTotal.member_id))


class BranchMemberTotal(SQLModel, table=True):
    """A member's points earned in one branch (the ledger entry's branch): what a
    branch's 排行榜 总 ranks, so points earned before a transfer stay with that branch."""

    branch_id: int = Field(foreign_key="branch.id", primary_key=True)
    member_id: int = Field(foreign_key="member.id", primary_key=True)
    points: int = 0
    reached_at: datetime = _utc_column()


Index(
    "ix_branchmembertotal_board",
    col(BranchMemberTotal.branch_id),
    col(BranchMemberTotal.points).desc(),
    col(BranchMemberTotal.reached_at),
    col(BranchMemberTotal.member_id),
)


class BranchMonth(SQLModel, table=True):
    """A branch's monthly quiz: how many attempts finished and the sum of their scores
    (排行榜 支部's participation and average)."""

    month: str = Field(max_length=7, primary_key=True)
    branch_id: int = Field(foreign_key="branch.id", primary_key=True)
    finished: int = 0
    score_sum: int = 0


# ---------------------------------------------------------------- the web console


class ConsoleLoginToken(SQLModel, table=True):
    """A one-time login link from 后台: only the token's SHA-256 is stored."""

    token_hash: str = Field(primary_key=True, max_length=64)
    member_id: int = Field(foreign_key="member.id", index=True)
    created_at: datetime = _utc_column()
    expires_at: datetime = _utc_column()
    used_at: datetime | None = _utc_column(nullable=True)


class ConsoleSession(SQLModel, table=True):
    """A console session, kept server-side: the cookie holds a random id whose hash is
    the key. Who the member is comes from here; what they may do is read from Member on
    every request."""

    id_hash: str = Field(primary_key=True, max_length=64)
    member_id: int = Field(foreign_key="member.id", index=True)
    csrf: str = Field(max_length=64)
    via: str = Field(default="link", max_length=10)  # link / wecom
    created_at: datetime = _utc_column()
    last_seen_at: datetime = _utc_column()
    ended_at: datetime | None = _utc_column(nullable=True)


class ConsoleLoginFailure(SQLModel, table=True):
    """An unknown, used or expired login token presented by a client (attempt limit)."""

    id: int | None = Field(default=None, primary_key=True)
    client: str = Field(max_length=64, index=True)  # a hash of the client address
    at: datetime = _utc_column(index=True)


class ConsoleUpload(SQLModel, table=True):
    """A file uploaded for preview, kept until it is confirmed (or replaced) so that the
    import runs on exactly the bytes that were previewed, on whichever process."""

    id: int | None = Field(default=None, primary_key=True)
    session_hash: str = Field(max_length=64, index=True)
    kind: str = Field(max_length=10)  # roster / questions
    filename: str = Field(max_length=200)
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = _utc_column()
