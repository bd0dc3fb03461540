"""Statements compiled once per process and run on the DBAPI cursor of the session's connection.

SQLAlchemy's compiled cache spares a statement its compilation, but each execution still
walks the connection's execution machinery (execution options, events, a result object
with its metadata): on the chat path that was most of a statement's cost, several times
what SQLite spends running it. A ``Prepared`` statement keeps what SQLAlchemy computed
once (the SQL text for the dialect, the parameter order, the bind and result type
processors) and hands the driver the text and the processed parameters directly, so
values go in and come out exactly as SQLAlchemy would store and read them.

Only for statements whose parameters are all named bind parameters (no expanding IN, no
Python-side column defaults). A driver error is raised as SQLAlchemy's (``IntegrityError``
for a duplicate message key, as the engine expects).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlmodel import Session

Processor = Callable[[Any], Any] | None


@dataclass(slots=True)
class _Compiled:
    sql: str
    positional: bool
    names: tuple[str, ...]  # every parameter, in the order of the text when positional
    defaults: dict[str, Any]  # values fixed in the statement (literals SQLAlchemy binds)
    binds: tuple[Processor, ...]  # one per name
    types: tuple[Any, ...]  # the result columns' types
    results: tuple[Processor, ...] | None = None  # one per result column, from the first cursor's description


class Prepared:
    """A Core statement, compiled on first use for each dialect and run on the raw cursor."""

    __slots__ = ("_compiled", "statement")

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled: Any = self.statement.compile(dialect=dialect)
        names = tuple(compiled.positiontup) if dialect.positional else tuple(compiled.binds)
        processors = compiled._bind_processors
        binds = tuple(processors.get(name) for name in names)
        types = tuple(column.type for column in compiled._result_columns)
        defaults = {name: value for name, value in compiled.construct_params(_check=False).items() if value is not None}
        done = _Compiled(compiled.string, bool(dialect.positional), names, defaults, binds, types)
        self._compiled[dialect.name] = done
        return done

    def rows(self, db: Session, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run the statement in the session's transaction; the rows, with their types read."""
        conn, cursor = _cursor(db)
        compiled = self._compiled.get(conn.dialect.name) or self._compile(conn.dialect)
        parameters = _parameters(compiled, params)
        try:
            cursor.execute(compiled.sql, parameters)
        except conn.dialect.loaded_dbapi.Error as error:
            raise DBAPIError.instance(
                compiled.sql, parameters, error, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
            ) from error
        description = cursor.description
        if description is None:
            return []
        fetched: Sequence[Sequence[Any]] = cursor.fetchall()
        results = compiled.results
        if results is None:  # the driver's column types decide some processors (PostgreSQL numerics)
            results = tuple(
                kind._cached_result_processor(conn.dialect, column[1])
                for kind, column in zip(compiled.types, description, strict=True)
            )
            compiled.results = results
        if not any(results):
            return [tuple(row) for row in fetched]
        return [
            tuple(value if process is None else process(value) for value, process in zip(row, results, strict=True))
            for row in fetched
        ]

    def first(self, db: Session, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        found = self.rows(db, params)
        return found[0] if found else None

    def run(self, db: Session, params: Mapping[str, Any]) -> None:
        self.rows(db, params)


def _parameters(compiled: _Compiled, params: Mapping[str, Any]) -> Any:
    merged = {**compiled.defaults, **params} if compiled.defaults else params
    values = [
        merged.get(name) if process is None else process(merged.get(name))
        for name, process in zip(compiled.names, compiled.binds, strict=True)
    ]
    return tuple(values) if compiled.positional else dict(zip(compiled.names, values, strict=True))


def _cursor(db: Session) -> tuple[Connection, Any]:
    """The session's connection and a cursor on its DBAPI connection, kept in the
    session's ``info`` while its transaction is open."""
    held = db.info.get("hot_cursor")
    if held is not None:
        conn, cursor = held
        if not conn.closed and conn.in_transaction():
            return conn, cursor
    conn = db.connection()
    # dbapi_connection is typed Optional: it is None only on a pool connection that was
    # invalidated, and db.connection() has just checked one out, so it is open here.
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    db.info["hot_cursor"] = (conn, cursor)
    return conn, cursor
