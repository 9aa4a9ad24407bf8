"""Smoke test of the PostgreSQL test infrastructure (tests/infra/postgres.py)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

pytestmark = pytest.mark.integration


async def test_select_one_and_skip_locked(pg_url: str) -> None:
    engine = create_async_engine(pg_url)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
            version = (await conn.execute(text("SHOW server_version_num"))).scalar_one()
            assert int(version) >= 130000

        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE jobs (id int PRIMARY KEY, state text NOT NULL)"))
            await conn.execute(
                text("INSERT INTO jobs SELECT g, 'pending' FROM generate_series(1, 5) g")
            )

        claim = text(
            "SELECT id FROM jobs WHERE state = 'pending' ORDER BY id LIMIT 2 FOR UPDATE SKIP LOCKED"
        )
        async with engine.connect() as a, engine.connect() as b:
            ta = await a.begin()
            tb = await b.begin()
            got_a = (await a.execute(claim)).scalars().all()
            # b must skip a's locked rows instead of blocking
            got_b = (await asyncio.wait_for(b.execute(claim), 5)).scalars().all()
            assert got_a == [1, 2]
            assert got_b == [3, 4]
            await ta.rollback()
            await tb.rollback()
    finally:
        await engine.dispose()


async def test_databases_are_isolated(postgres, pg_url: str) -> None:
    other = postgres.create_database()
    assert other != pg_url
    assert other.startswith(postgres.base_url + "/")
    engines = [create_async_engine(u) for u in (pg_url, other)]
    try:
        async with engines[0].begin() as conn:
            await conn.execute(text("CREATE TABLE only_here (x int)"))
        async with engines[1].connect() as conn:
            n = (
                await conn.execute(
                    text("SELECT count(*) FROM pg_tables WHERE tablename = 'only_here'")
                )
            ).scalar_one()
            assert n == 0
    finally:
        for e in engines:
            await e.dispose()
