"""Fixtures shared by the reports integration tests."""

from __future__ import annotations

import pytest

from shared.migrations import upgrade
from tests.integration.reports.support import reports_runtime


@pytest.fixture(params=["sqlite", "postgres"])
async def rt(request, tmp_path):
    """A migrated reports runtime (not started) on SQLite and on PostgreSQL."""
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    runtime = reports_runtime(tmp_path, url)
    await upgrade(runtime.db, runtime.migrations)
    yield runtime
    await runtime.db.dispose()
