"""The site cache's own logic: when it reads the table, reloads, and forgets (no database)."""

from __future__ import annotations

import asyncio
import time
from datetime import date
from types import SimpleNamespace

import pytest

from services.ingest.site_cache import SiteCache
from services.ingest.validation import KnownSite

HOME = KnownSite("QJK", "SW", None)
CLOSED = KnownSite("QJK", "SW", date(2026, 1, 1))


class NoTable:
    """A session that must not be used: every site should come from memory."""

    def get_bind(self) -> SimpleNamespace:
        return SimpleNamespace(dialect=SimpleNamespace(name="sqlite"))

    async def execute(self, *_: object) -> None:
        raise AssertionError("the site table was read")


class Table:
    """A site table in memory: rows, a revision count standing for the fingerprint, and a gate
    that holds each read until the test opens it."""

    def __init__(self, rows: dict[str, KnownSite], gate: asyncio.Event | None = None) -> None:
        self.rows, self.revision, self.gate, self.reads = rows, 1, gate, 0

    async def fingerprint(self) -> tuple[int, int]:
        return len(self.rows), self.revision

    async def load(self) -> tuple[dict[str, KnownSite], tuple[int, int]]:
        read = dict(self.rows), await self.fingerprint()   # what the query saw ...
        if self.gate is not None:
            await self.gate.wait()                        # ... arrives later
        self.reads += 1
        return read


async def loaded(cache: SiteCache) -> None:
    with pytest.raises(AssertionError):   # nothing in memory yet: the table is read
        await cache.get_many(NoTable(), ["1-1"])
    while cache.renewals == 0:
        await asyncio.sleep(0)


async def test_a_fresh_snapshot_answers_without_reading_the_table():
    cache = SiteCache(5.0, Table({"1-1": HOME, "1-2": HOME}))
    await loaded(cache)
    assert await cache.get_many(NoTable(), ["1-1", "1-2", "1-1"]) == {"1-1": HOME, "1-2": HOME}
    await cache.close()


async def test_a_site_invalidated_during_a_reload_is_not_brought_back():
    gate = asyncio.Event()
    table = Table({"1-1": HOME}, gate)
    cache = SiteCache(5.0, table)
    gate.set()
    await loaded(cache)
    gate.clear()
    cache._snapshot_at -= 4.0   # past REFRESH_AT of the 5 s: the next use starts a reload
    await cache.get_many(NoTable(), ["1-1"])
    table.revision = 0          # (the table changed since the snapshot: it is read again)
    await asyncio.sleep(0)      # the reload has read the old row and waits at the gate
    table.rows["1-1"], table.revision = CLOSED, 2   # the consumer applies a closure ...
    cache.invalidate("1-1")     # ... and drops the entry while the reload runs
    gate.set()
    while cache.renewals < 2:
        await asyncio.sleep(0)
    with pytest.raises(AssertionError):   # not in memory: read from the table, not stale
        await cache.get_many(NoTable(), ["1-1"])
    await cache.close()


async def test_an_old_snapshot_is_not_used():
    cache = SiteCache(5.0, Table({"1-1": HOME}, asyncio.Event()))   # reads hang
    cache._snapshot, cache._snapshot_at = {"1-1": HOME}, time.monotonic() - 6
    with pytest.raises(AssertionError):
        await cache.get_many(NoTable(), ["1-1"])
    await cache.close()


async def test_no_caching_when_site_cache_seconds_is_zero():
    table = Table({"1-1": HOME})
    cache = SiteCache(0, table)
    for _ in range(2):
        with pytest.raises(AssertionError):
            await cache.get_many(NoTable(), ["1-1"])
    assert (cache.renewals, table.reads) == (0, 0)


async def test_an_unchanged_table_is_confirmed_not_read_again():
    table = Table({"1-1": HOME})
    cache = SiteCache(5.0, table)
    await loaded(cache)
    for changed in (False, True):
        table.revision += changed
        cache._snapshot_at -= 4.0
        await cache.get_many(NoTable(), ["1-1"])
        renewals = cache.renewals
        while cache.renewals == renewals:
            await asyncio.sleep(0)
        assert table.reads == 1 + changed
    assert await cache.get_many(NoTable(), ["1-1"]) == {"1-1": HOME}
    await cache.close()
