"""Every difference between SQLite and PostgreSQL lives in this module.

SQLite (embedded default) runs with WAL so readers never block the single writer, foreign
keys on (off by default in SQLite), and a busy timeout so a second connection waits for
the write lock instead of failing at once. PostgreSQL gets a sized asyncpg pool.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic_core import to_json
from sqlalchemy import any_, bindparam, event, func, insert, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import Insert
from sqlalchemy.sql.schema import Table

POOL_RECYCLE_SECONDS = 1800

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
    # No pre-ping: SQLAlchemy's asyncpg ping is three round trips (BEGIN, ";", ROLLBACK) on
    # every checkout, measured at ~170 us of client CPU and ~0.3-0.5 ms of wall time a
    # transaction here. A connection that died while idle fails the one transaction that
    # meets it; SQLAlchemy then invalidates the whole pool, so the next one reconnects.
    # Callers already retry failed work (HTTP clients with their Idempotency-Key, consumers
    # the batch, the relay its claim); pool_recycle bounds how long an idle connection lives.
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size,
                               pool_recycle=POOL_RECYCLE_SECONDS)


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


def upsert(table: Table, dialect_name: str, index: list[str],
           values: dict[str, Any] | Sequence[dict[str, Any]], *,
           unless_null: Collection[str] = ()) -> Insert:
    """``INSERT ... ON CONFLICT (index) DO UPDATE`` setting every non-key column, for one row
    or several (every row with the same keys); a column of ``unless_null`` keeps its stored
    value where the row gives NULL."""
    mod = sqlite if dialect_name.startswith("sqlite") else postgresql
    rows = [values] if isinstance(values, dict) else list(values)
    stmt = mod.insert(table).values(rows)
    update = {k: func.coalesce(stmt.excluded[k], table.c[k]) if k in unless_null
              else stmt.excluded[k] for k in rows[0] if k not in index}
    return stmt.on_conflict_do_update(index_elements=index, set_=update)


def supports_advisory_locks(dialect_name: str) -> bool:
    """PostgreSQL serialises work across processes with advisory locks; SQLite has one writer."""
    return dialect_name == "postgresql"


def lock_key(name: str) -> int:
    """The advisory lock key of a named lock (one per name across every service database)."""
    return zlib.crc32(f"mandet:{name}".encode())


async def lock_transaction(session: Any, name: str, *, shared: bool = False) -> None:
    """Hold the named lock until this transaction ends: a shared holder waits only for an
    exclusive one, an exclusive holder for every other holder. SQLite: nothing, its single
    writer already runs one writing transaction at a time."""
    if supports_advisory_locks(session.get_bind().dialect.name):
        function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        await session.execute(text(f"SELECT {function}(:k)"), {"k": lock_key(name)})


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


def upsert_add(table: Table, dialect_name: str, index: list[str],
               counters: str | Sequence[str]) -> Insert:
    """``INSERT ... ON CONFLICT (index) DO UPDATE SET c = c + excluded.c`` for each counter.

    Without values: execute it with a list of rows (executemany) to apply many deltas at once.
    """
    names = (counters,) if isinstance(counters, str) else tuple(counters)
    return _upsert_add(table, dialect_name, tuple(index), names)


@functools.lru_cache(maxsize=64)
def _upsert_add(table: Table, dialect_name: str, index: tuple[str, ...],
                names: tuple[str, ...]) -> Insert:
    # Built once per shape: constructing the expression cost more than executing it.
    mod = sqlite if dialect_name.startswith("sqlite") else postgresql
    stmt = mod.insert(table)
    return stmt.on_conflict_do_update(
        index_elements=list(index), set_={c: table.c[c] + stmt.excluded[c] for c in names}
    )


def upsert_max(table: Table, dialect_name: str, index: list[str], column: str) -> Insert:
    """``INSERT ... ON CONFLICT (index) DO UPDATE SET column = the greater of the two``."""
    mod = sqlite if dialect_name.startswith("sqlite") else postgresql
    greater = func.max if dialect_name.startswith("sqlite") else func.greatest
    stmt = mod.insert(table)
    return stmt.on_conflict_do_update(
        index_elements=index, set_={column: greater(table.c[column], stmt.excluded[column])})


def aware(instant: datetime) -> datetime:
    """A datetime read back from the database, with its zone: SQLite keeps none and hands
    back naive datetimes for values stored as UTC (PostgreSQL's are already aware)."""
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


def in_values(column: Any, values: Iterable[Any], dialect_name: str) -> Any:
    """``column IN (values)``; on PostgreSQL ``column = ANY($1)`` with ONE array parameter, so
    a long list is neither rendered nor bound value by value on every execution."""
    if dialect_name == "postgresql":
        array = bindparam(None, list(values), type_=postgresql.ARRAY(column.type))
        return column == any_(array)
    return column.in_(list(values))


async def insert_rows(session: Any, table: Table, rows: Sequence[dict[str, Any]], *,
                      ignore_conflicts: bool = False,
                      returning: str | tuple[str, ...] | None = None,
                      newer: tuple[list[str], str] | None = None,
                      add: tuple[list[str], Sequence[str]] | None = None) -> list[Any]:
    """Insert many rows in one statement; the ``returning`` column of the rows written (a
    tuple of columns: a tuple per row).

    ``ignore_conflicts``: ``ON CONFLICT DO NOTHING``. ``newer=(index, version)``: upsert that
    overwrites an existing row only when it holds an older ``version`` (give each key once).
    ``add=(index, counters)``: upsert that adds each counter to an existing row's (give each
    key once; sort the rows so concurrent writers lock in one order).
    On PostgreSQL the rows travel as ONE JSON parameter (pydantic's serializer, in Rust) read
    by ``json_populate_recordset``: no per-row SQLAlchemy parameter processing nor per-value
    driver encoding, which cost more CPU than the database's own work on hot paths (values
    must be JSON-serialisable: str, int, bool, None, UUID, datetime, lists and dicts for JSON
    columns). Elsewhere it is a Core executemany. Every row has the same keys.
    """
    if not rows:
        return []
    columns = list(rows[0])
    core = isinstance(session, AsyncConnection)  # a Core connection, or an ORM session
    dialect = (session if core else session.get_bind()).dialect.name
    if dialect != "postgresql":
        stmt = (upsert_add(table, dialect, add[0], add[1]) if add is not None
                else _core_insert(table, dialect, columns, ignore_conflicts, newer))
        if isinstance(returning, tuple):
            return [tuple(r) for r in await session.execute(
                stmt.returning(*(table.c[c] for c in returning)), rows)]
        if returning:
            return list((await session.execute(stmt.returning(table.c[returning]), rows))
                        .scalars())
        await session.execute(stmt, list(rows))
        return []
    key = None if newer is None else (tuple(newer[0]), newer[1])
    adds = None if add is None else (tuple(add[0]), tuple(add[1]))
    sql = insert_sql(table, tuple(columns), ignore_conflicts, key, returning, adds)
    raw = await _in_transaction(session)
    if isinstance(returning, tuple):
        return [tuple(r) for r in await raw.fetch(sql, to_json(rows).decode())]
    if returning:
        return [r[0] for r in await raw.fetch(sql, to_json(rows).decode())]
    await raw.execute(sql, to_json(rows).decode())
    return []


def _core_insert(table: Table, dialect: str, columns: list[str], ignore: bool,
                 newer: tuple[list[str], str] | None) -> Insert:
    if newer is not None:
        return upsert_many_if_newer(table, dialect, newer[0], columns, newer[1])
    return insert_ignore(table, dialect) if ignore else insert(table)


@functools.lru_cache(maxsize=256)
def insert_sql(table: Table, columns: tuple[str, ...], ignore: bool = False,
               newer: tuple[tuple[str, ...], str] | None = None,
               returning: str | tuple[str, ...] | None = None,
               add: tuple[tuple[str, ...], tuple[str, ...]] | None = None) -> str:
    """PostgreSQL: ``insert_rows``' statement (rows as ONE JSON parameter, ``$1``)."""
    names = _names(columns)
    source = f'SELECT {names} FROM json_populate_recordset(null::"{table.name}", $1::json)'
    sql = f'INSERT INTO "{table.name}" ({names}) {source}'
    if newer is not None:
        index, version = newer
        sets = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c not in index)
        sql += (f" ON CONFLICT ({_names(index)}) DO UPDATE SET {sets}"
                f' WHERE "{table.name}"."{version}" < excluded."{version}"')
    elif add is not None:
        index, counters = add
        sets = ", ".join(f'"{c}" = "{table.name}"."{c}" + excluded."{c}"' for c in counters)
        sql += f" ON CONFLICT ({_names(index)}) DO UPDATE SET {sets}"
    elif ignore:
        sql += " ON CONFLICT DO NOTHING"
    if isinstance(returning, str):
        returning = (returning,)
    return sql + (f" RETURNING {_names(returning)}" if returning else "")


def _names(columns: Iterable[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


async def copy_rows(session: Any, table: Table, columns: Sequence[str],
                    records: Iterable[tuple[Any, ...]]) -> None:
    """Append plain rows (tuples in ``columns`` order) inside the session's transaction.

    For bulk loads with no conflict handling (a duplicate key fails the transaction). On
    PostgreSQL it is asyncpg's binary COPY on the session's own connection (no SQL parameter
    or JSON encoding at all); elsewhere one driver executemany of positional rows, each value
    converted by its column type's bind processor (as a Core insert would, without building
    and processing a parameter dict per row). ``records`` may be a lazy iterable (a
    generator): on PostgreSQL rows are then encoded and sent in 512 kB pieces as it yields
    them, so the server stores one piece while the generator computes the next.
    """
    if isinstance(records, Sequence) and not records:
        return
    conn = await connection_of(session)
    if conn.dialect.name != "postgresql":
        convert = [(i, p) for i, c in enumerate(columns)
                   if (p := table.c[c].type.bind_processor(conn.dialect)) is not None]
        rows = []
        for record in records:
            row = list(record)
            for i, process in convert:
                row[i] = process(row[i])
            rows.append(tuple(row))
        if not rows:
            return
        marks = ", ".join("?" for _ in columns)
        sql = f'INSERT INTO "{table.name}" ({_names(columns)}) VALUES ({marks})'
        await conn.exec_driver_sql(sql, rows)
        return
    raw = await _in_transaction(conn)
    await raw.copy_records_to_table(table.name, columns=list(columns), records=records)


async def _in_transaction(session: Any) -> Any:
    """asyncpg's connection under ``session``, inside the session's transaction.

    SQLAlchemy begins its transaction lazily, at its first statement; a statement sent
    straight to the driver before that would run in autocommit, outside the transaction
    (and survive its rollback). So it is begun first when need be. Statements sent straight
    to the driver skip SQLAlchemy's execution path: ~100 us of CPU less per statement,
    which is a fifth of a one-set transaction.
    """
    conn = await connection_of(session)
    raw = await driver_connection(conn)
    if not raw.is_in_transaction():
        await conn.exec_driver_sql("SELECT 1")
    return raw


async def connection_of(session: Any) -> AsyncConnection:
    """The Core connection of an ORM session (its transaction's), or the connection itself."""
    return session if isinstance(session, AsyncConnection) else await session.connection()


async def driver_connection(session: Any) -> Any:
    """The DBAPI driver's own connection (asyncpg's on PostgreSQL) under a session or a Core
    connection, for what SQLAlchemy does not offer (COPY, LISTEN, a hand-written query)."""
    return (await (await connection_of(session)).get_raw_connection()).driver_connection
