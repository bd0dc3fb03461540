"""Alembic environment: the models' metadata, the URL from BranchBot's config."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel

import bot.store.models  # noqa: F401  (registers the tables)

config = context.config
target_metadata = SQLModel.metadata


def _configured_url() -> str:
    """The alembic CLI run from the repository: BranchBot's own config names the database."""
    from bot.config import load_config

    return load_config().database.url


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        from sqlalchemy import create_engine

        engine = create_engine(config.get_main_option("sqlalchemy.url") or _configured_url())
        with engine.begin() as conn:
            _run(conn)
        engine.dispose()
    else:
        _run(connection)


def _run(connection: Connection) -> None:
    # SQLite cannot ALTER most things in place: batch mode copies the table instead.
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
