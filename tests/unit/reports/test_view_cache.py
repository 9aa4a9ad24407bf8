"""ViewCache: rows per version, one computation for concurrent misses (pure asyncio)."""

from __future__ import annotations

import asyncio

import pytest

from services.reports.api import ViewCache


async def test_concurrent_misses_on_one_key_share_one_computation():
    cache, calls, gate = ViewCache(), [], asyncio.Event()

    async def compute() -> list[int]:
        calls.append(1)
        await gate.wait()
        return [len(calls)]

    readers = [asyncio.ensure_future(cache.rows(("v1", "activity"), compute)) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*readers) == [[1]] * 5 and len(calls) == 1
    assert await cache.rows(("v1", "activity"), compute) == [1] and len(calls) == 1   # a hit
    assert await cache.rows(("v2", "activity"), compute) == [2]   # a new version: computed


async def test_an_unversioned_key_is_never_cached():
    cache, calls = ViewCache(), []

    async def compute() -> list[int]:
        calls.append(1)
        return []

    for _ in range(2):
        assert await cache.rows((None, "activity"), compute) == []
    assert len(calls) == 2


async def test_when_the_shared_computation_fails_each_waiter_computes_its_own():
    cache, gate, attempts = ViewCache(), asyncio.Event(), []

    async def compute() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            await gate.wait()
            raise RuntimeError("the database went away")
        return "rows"

    first = asyncio.ensure_future(cache.rows(("v1", "quality"), compute))
    await asyncio.sleep(0)
    waiters = [asyncio.ensure_future(cache.rows(("v1", "quality"), compute)) for _ in range(2)]
    await asyncio.sleep(0)
    gate.set()
    with pytest.raises(RuntimeError):
        await first
    assert await asyncio.gather(*waiters) == ["rows", "rows"] and len(attempts) == 3


async def test_a_newer_version_replaces_the_older_one_of_the_same_query():
    cache = ViewCache()

    async def rows(value: str):  # noqa: ANN202
        async def compute() -> str:
            return value
        return compute

    assert await cache.rows(("v1", "quality", "Q4"), await rows("old")) == "old"
    assert await cache.rows(("v2", "quality", "Q4"), await rows("new")) == "new"
    assert cache.get(("v1", "quality", "Q4")) is None   # not kept beside the newer one
    assert cache.get(("v2", "quality", "Q4")) == "new"
    assert await cache.rows(("v1", "quality", "Q3"), await rows("other")) == "other"
    assert cache.get(("v2", "quality", "Q4")) == "new"   # another query: both held
