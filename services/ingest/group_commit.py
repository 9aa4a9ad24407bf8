"""Group commit for single-set POSTs: concurrent requests share one transaction.

A transaction costs the same round trips (BEGIN, INSERT set, INSERT outbox, COMMIT) whatever
its size, and on this hardware the round trips, not Python, bound throughput. On PostgreSQL a
flush is one statement when it can be (``_record``).
So single-set requests without an Idempotency-Key queue here: when no flush is running, the
queue is flushed at once (no added latency when idle); while one runs, newcomers wait and go
together in the next (at most ``MAX_GROUP`` per transaction). Each request still gets its own
outcome: items are prepared and checked one by one, and a rejected item stores nothing.
Every invariant of ``observations.record_sets`` holds (one event per real insert, same
transaction). If the shared transaction fails, every request in it gets the error (5xx) and
nothing of it is stored, exactly as if each had failed alone.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from services.ingest.observations import Outcome
from shared.auth import Principal

log = logging.getLogger("mandet.ingest.group_commit")
MAX_GROUP = 500

Pending = tuple[Principal, Any, "asyncio.Future[Outcome]"]


class GroupCommit:
    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self._queue: list[Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, principal: Principal, item: Any) -> Outcome:
        """Record one item with whatever else is queued; its own outcome."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.append((principal, item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._drain(), name="ingest:group-commit")
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        while self._queue:
            group, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
            try:
                outcomes = await self._record([(p, i) for p, i, _ in group])
            except Exception as exc:  # noqa: BLE001 - handed to every waiting request
                log.warning("group commit of %d sets failed: %s", len(group), type(exc).__name__)
                for _, _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.runtime.relay.wake()
            for (_, _, future), outcome in zip(group, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)

    async def _record(self, work: list[tuple[Principal, Any]]) -> list[Outcome]:
        """One transaction, or on PostgreSQL one statement when nothing else is read: the
        connection starts outside a transaction so ``record_sets`` can write sets and outbox
        rows in one atomic statement; whatever began a transaction first (a site not in
        memory) made it use that transaction instead, committed here."""
        db = self.runtime.db
        if db.dialect != "postgresql":
            async with db.engine.begin() as conn:
                return await self.runtime.record(conn, work)
        async with db.engine.connect() as conn:
            outcomes = await self.runtime.record(conn, work)
            await conn.commit()
            return outcomes
