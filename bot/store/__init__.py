"""The store: SQLModel tables and sessions, portable between SQLite and PostgreSQL."""

from bot.store.db import Store, create_store
from bot.store.models import (
    Answer,
    Attempt,
    BindAttempt,
    Branch,
    BranchMemberTotal,
    BranchMonth,
    CallbackNonce,
    Dialog,
    Member,
    MemberStatus,
    MemberTotal,
    Paper,
    PointsEntry,
    ProcessedMessage,
    Question,
    Role,
)

__all__ = [
    "Answer",
    "Attempt",
    "BindAttempt",
    "Branch",
    "BranchMemberTotal",
    "BranchMonth",
    "CallbackNonce",
    "Dialog",
    "Member",
    "MemberStatus",
    "MemberTotal",
    "Paper",
    "PointsEntry",
    "ProcessedMessage",
    "Question",
    "Role",
    "Store",
    "create_store",
]
