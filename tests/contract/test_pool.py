"""Pool behaviour on PostgreSQL without pre-ping: a dead connection costs one transaction."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from shared.db import Database

pytestmark = pytest.mark.integration


async def test_connections_killed_while_idle_fail_one_transaction_then_reconnect(pg_url):
    db, admin = Database(pg_url, pool_size=2), Database(pg_url, pool_size=1)
    try:
        async with db.transaction() as s:
            mine = (await s.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        async with admin.transaction() as s:
            await s.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": mine})
        with pytest.raises(DBAPIError) as failed:
            async with db.transaction() as s:
                await s.execute(text("SELECT 1"))
        assert failed.value.connection_invalidated
        async with db.transaction() as s:
            again = (await s.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert again != mine
    finally:
        await db.dispose()
        await admin.dispose()
