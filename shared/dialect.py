"""Every difference between SQLite and PostgreSQL lives in this module.

SQLite (embedded default) runs with WAL so readers never block the single writer, foreign
keys on (off by default in SQLite), and a busy timeout so a second connection waits for
the write lock instead of failing at once. PostgreSQL gets a sized asyncpg pool.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import Insert
from sqlalchemy.sql.schema import Table

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
    "PRAGMA synchronous=NORMAL",
)


def is_sqlite(url_or_engine: str | AsyncEngine) -> bool:
    name = url_or_engine if isinstance(url_or_engine, str) else url_or_engine.url.drivername
    return name.startswith("sqlite")


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An async engine configured for its dialect."""
    if is_sqlite(url):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        _install_sqlite_pragmas(engine.sync_engine)
        return engine
    if pool_size == 0:
        return create_async_engine(url, poolclass=NullPool)
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _install_sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # aiosqlite opens in "deferred" autocommit-off mode; pragmas need their own cursor.
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()


def insert_ignore(table: Table, dialect_name: str) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the dialect (callers add RETURNING)."""
    mod = sqlite if dialect_name.startswith("sqlite") else postgresql
    return mod.insert(table).on_conflict_do_nothing()


def upsert(table: Table, dialect_name: str, index: list[str], values: dict[str, Any]) -> Insert:
    """``INSERT ... ON CONFLICT (index) DO UPDATE`` setting every non-key column."""
    mod = sqlite if dialect_name.startswith("sqlite") else postgresql
    stmt = mod.insert(table).values(**values)
    update = {k: stmt.excluded[k] for k in values if k not in index}
    return stmt.on_conflict_do_update(index_elements=index, set_=update)


def supports_advisory_locks(dialect_name: str) -> bool:
    """PostgreSQL serialises work across processes with advisory locks; SQLite has one writer."""
    return dialect_name == "postgresql"


def supports_skip_locked(dialect_name: str) -> bool:
    """SQLite has one writer at a time, so there is nothing to skip."""
    return dialect_name == "postgresql"


def upsert_many_if_newer(table: Table, dialect_name: str, index: list[str], columns: list[str],
                         version: str = "revision") -> Insert:
    """Upsert that only overwrites an existing row holding an older ``version``.

    Copies kept from events use it so a late, older event never overwrites a newer state.
    Without bound values: execute with one row dict, or a list of them (executemany);
    PostgreSQL refuses to update one row twice in one statement, so give each key once.
    """
    mod = sqlite if dialect_name.startswith("sqlite") else postgresql
    stmt = mod.insert(table)
    update = {k: stmt.excluded[k] for k in columns if k not in index}
    return stmt.on_conflict_do_update(
        index_elements=index, set_=update, where=table.c[version] < stmt.excluded[version]
    )


def upsert_if_newer(table: Table, dialect_name: str, index: list[str], values: dict[str, Any],
                    version: str = "revision") -> Insert:
    """``upsert_many_if_newer`` bound to one row's values."""
    return upsert_many_if_newer(table, dialect_name, index, list(values), version).values(
        **values)


def upsert_add(table: Table, dialect_name: str, index: list[str], counter: str) -> Insert:
    """``INSERT ... ON CONFLICT (index) DO UPDATE SET counter = counter + excluded.counter``.

    Without values: execute it with a list of rows (executemany) to apply many deltas at once.
    """
    mod = sqlite if dialect_name.startswith("sqlite") else postgresql
    stmt = mod.insert(table)
    return stmt.on_conflict_do_update(
        index_elements=index, set_={counter: table.c[counter] + stmt.excluded[counter]}
    )
