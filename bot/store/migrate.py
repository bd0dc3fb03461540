"""Schema versions with Alembic (``bot/migrations/``): ``init`` upgrades, ``serve`` refuses a
database that is behind or ahead of the code, naming the command to run."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from bot.store.db import Store

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"  # package data: found from a wheel too


class SchemaMismatch(Exception):
    """The database's schema version does not match the code's; the message says what to run."""


def _alembic(store: Store) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", store.url.replace("%", "%%"))
    return cfg


def head(store: Store) -> str | None:
    return ScriptDirectory.from_config(_alembic(store)).get_current_head()


def current(store: Store) -> str | None:
    with store.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(store: Store) -> tuple[str | None, str | None]:
    """Bring the schema to the code's version; (before, after)."""
    before = current(store)
    _check_not_ahead(store, before)
    cfg = _alembic(store)
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return before, current(store)


def _check_not_ahead(store: Store, revision: str | None) -> None:
    if revision is None:
        return
    script = ScriptDirectory.from_config(_alembic(store))
    try:
        script.get_revision(revision)
    except Exception as exc:
        raise SchemaMismatch(
            f"数据库版本（{revision}）比当前程序新：请升级 BranchBot 到与数据库匹配的版本后再运行。"
        ) from exc


def check(store: Store) -> None:
    """Refuse to run on a database that is not exactly at the code's version."""
    revision = current(store)
    _check_not_ahead(store, revision)
    if revision != head(store):
        raise SchemaMismatch(
            f"数据库版本（{revision or '未初始化'}）落后于程序（{head(store)}）：请先运行 branchbot db upgrade（或 branchbot init）。"
        )
