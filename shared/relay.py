"""The outbox relay: publishes committed outbox rows, in order, at least once.

- Claim: the oldest due, unpublished rows (``seq`` order). On PostgreSQL the claim is
  ``FOR UPDATE SKIP LOCKED`` plus a lease (``lease_until``), so two relays never hold the same
  row; on SQLite there is a single writer (one relay per process) and no locking to skip.
- One leader per service database: on PostgreSQL a relay publishes only while it holds a
  session-level advisory lock, so rows of one key are never published by two relays at once
  and per-key order holds. Standby relays poll for the lock.
- Publish: every claimed row is sent, then each is marked published or, on failure, given
  ``attempts + 1``, one exponential backoff for the whole failed batch, and the error text.
  A row is not claimed while an older row of its key is backing off or leased, so a retried
  row is never overtaken by a younger row of the same key. After ``max_attempts`` the row
  moves to ``outbox_dead_letter`` with the reason; nothing is dropped silently.
- On PostgreSQL the claim and the mark-published run as hand-written statements on asyncpg's
  connection of the leader's own session (prepared once): building, caching and binding them through
  SQLAlchemy cost ~4 ms of CPU a round, as much as publishing 50 events, and a relay serving
  small commits runs hundreds of rounds a second. SQLite keeps the Core statements; both
  dialects run the same contract tests (tests/contract/test_outbox_inbox.py).
- A publish that timed out may still have been written: the row is retried and the event can
  arrive twice. Consumers' inboxes make that harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import zlib
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.bus.base import Bus, Record
from shared.db import Database
from shared.dialect import aware, driver_connection, supports_skip_locked
from shared.migrations import OUTBOX_CHANNEL
from shared.outbox import OUTBOX, OUTBOX_DEAD, utcnow

log = logging.getLogger("mandet.relay")
LISTENING_POLL_SECONDS = 1.0
TRANSIENT_RETRY_CAP = timedelta(seconds=5)
# What publishing and settling a claimed row read (the dead letter copies the first seven);
# the leasing and scheduling timestamps stay in the database (fewer values to decode).
CLAIMED = ("seq", "event_id", "event_type", "topic", "key", "payload", "created_at", "attempts")

# The same three claim statements as the Core ones in ``_claim`` (see there), for PostgreSQL.
PG_WINDOW = ("SELECT seq, key FROM outbox WHERE published_at IS NULL AND next_attempt_at <= $1"
             " AND (lease_until IS NULL OR lease_until < $1) AND seq > $2"
             " ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED")
PG_BLOCKED = ("SELECT key, min(seq) FROM outbox WHERE key = ANY($1::text[])"
              " AND published_at IS NULL AND (next_attempt_at > $2 OR lease_until >= $2)"
              " GROUP BY key")
PG_LEASE = (f"UPDATE outbox SET lease_until = $2 WHERE seq = ANY($1::bigint[])"
            f" RETURNING {', '.join(CLAIMED)}")
PG_PUBLISHED = ("UPDATE outbox SET published_at = $2, lease_until = NULL"
                " WHERE seq = ANY($1::bigint[])")


def backoff(attempts: int) -> timedelta:
    """0.2 s, 0.4 s, 0.8 s ... capped at 60 s, with 20 % jitter to spread retries."""
    base = min(0.1 * (2**attempts), 60.0)
    return timedelta(seconds=base * random.uniform(0.8, 1.2))


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        bus: Bus,
        *,
        service: str,
        batch_size: int = 500,
        poll_seconds: float = 0.05,
        max_attempts: int = 10,
        lease_seconds: float = 60.0,
        retention_hours: float = 168.0,
    ) -> None:
        self.db, self.bus, self.service = db, bus, service
        self.retention = timedelta(hours=retention_hours) if retention_hours > 0 else None
        self._next_prune = 0.0
        self.pruned_total = 0
        self.batch_size, self.poll_seconds = batch_size, poll_seconds
        self.max_attempts, self.lease = max_attempts, timedelta(seconds=lease_seconds)
        self._wake = asyncio.Event()
        self._lock_conn: AsyncConnection | None = None
        self._listening = False
        self.published_total = 0
        self.dead_total = 0

    def wake(self, *_: object) -> None:
        """Skip the rest of the poll interval: called after a commit in this process that
        wrote events, and on PostgreSQL by the outbox's insert NOTIFY from any process."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                if not await self._is_leader():
                    await self._sleep(stop, max(self.poll_seconds, 1.0))
                    continue
                self._wake.clear()   # a wake-up from now on means rows this claim may miss
                try:
                    n = await self.run_once()
                except Exception:  # noqa: BLE001 - the database may be briefly away; retry
                    log.exception("relay loop failed; retrying", extra={"service": self.service})
                    n = 0
                    await self._drop_leadership()
                    await self._sleep(stop, 1.0)
                if n < self.batch_size:
                    await self._prune_now_and_then()
                    await self._sleep(stop, self._idle_seconds())
        finally:
            await self._drop_leadership()

    def _idle_seconds(self) -> float:
        """How long to wait for work when caught up. While LISTENing, every insert from any
        process wakes the relay, so the poll is only the net for a lost notification, a
        retry's backoff or an expired lease: once a second (empty claims every 50 ms were a
        fifth of an idle reports worker's CPU). Otherwise (SQLite, no LISTEN) the setting."""
        return max(self.poll_seconds, LISTENING_POLL_SECONDS) if self._listening \
            else self.poll_seconds

    async def _prune_now_and_then(self) -> None:
        """At most once a minute, when the relay has caught up: ``prune``; never fatal."""
        now = asyncio.get_running_loop().time()
        if self.retention is None or now < self._next_prune:
            return
        self._next_prune = now + 60.0
        try:
            await self.prune()
        except Exception:  # noqa: BLE001 - retried next minute; publishing matters more
            log.warning("outbox prune failed", exc_info=True, extra={"service": self.service})

    async def prune(self, chunk: int = 5_000) -> int:
        """Delete rows published more than ``retention`` ago; returns how many.

        Each statement looks only at the oldest ``chunk`` rows by seq (the primary key, so the
        cost is bounded whatever the table holds) and deletes those published before the
        cutoff; unpublished rows are never deleted. Published rows are not needed after
        publishing: delivery is deduplicated by consumers' inboxes, and history for a
        rebuild comes from the broker or the consumer's own tables, never from the outbox.
        """
        if self.retention is None:
            return 0
        cutoff, removed = utcnow() - self.retention, 0
        while True:
            oldest = select(OUTBOX.c.seq).order_by(OUTBOX.c.seq).limit(chunk).scalar_subquery()
            async with self.db.engine.begin() as conn:
                n = (await conn.execute(delete(OUTBOX).where(
                    OUTBOX.c.seq.in_(oldest), OUTBOX.c.published_at.is_not(None),
                    OUTBOX.c.published_at < cutoff))).rowcount
            removed += n
            if n < chunk:
                break
        self.pruned_total += removed
        return removed

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        _, pending = await asyncio.wait(waiters, timeout=seconds,
                                        return_when=asyncio.FIRST_COMPLETED)
        for w in waiters:
            w.cancel()

    async def run_once(self) -> int:
        """Claim one batch, publish it, record the outcome. Returns rows handled."""
        rows = await self._claim()
        if not rows:
            return 0
        records = [Record(r["topic"], r["key"], r["payload"].encode(),
                          (("event_type", r["event_type"].encode()),)) for r in rows]
        results = await self.bus.publish(records)
        await self._settle(rows, results)
        return len(rows)

    async def _claim(self) -> Sequence[Mapping[str, Any]]:
        """Lease the oldest due rows that no older row of their key is waiting behind.

        Three statements, each with one sensible plan whatever the statistics say (a queue
        table's statistics are always stale: with a single statement the planner chose nested
        loops over the whole backlog, 17-135 ms a claim under load): the oldest due rows in
        seq order through the pending index, a window of twice the batch; the oldest blocking
        row (backing off or leased) of each of their keys through the key index; the lease.
        If a whole window waits behind blocked keys, the next window is searched.
        """
        now = utcnow()
        if supports_skip_locked(self.db.dialect):
            return await self._claim_pg(now)
        ready = (OUTBOX.c.published_at.is_(None), OUTBOX.c.next_attempt_at <= now,
                 OUTBOX.c.lease_until.is_(None) | (OUTBOX.c.lease_until < now))
        async with self.db.engine.begin() as conn:
            after, chosen = -1, []
            while not chosen:
                window = (select(OUTBOX.c.seq, OUTBOX.c.key).where(*ready, OUTBOX.c.seq > after)
                          .order_by(OUTBOX.c.seq).limit(self.batch_size))
                candidates = (await conn.execute(window)).all()
                if not candidates:
                    return []
                blocked = dict((await conn.execute(
                    select(OUTBOX.c.key, func.min(OUTBOX.c.seq))
                    .where(OUTBOX.c.key.in_({k for _, k in candidates}),
                           OUTBOX.c.published_at.is_(None),
                           (OUTBOX.c.next_attempt_at > now) | (OUTBOX.c.lease_until >= now))
                    .group_by(OUTBOX.c.key))).all())
                chosen = _unblocked(candidates, blocked)
                after = candidates[-1][0]
            claimed = await conn.execute(
                update(OUTBOX).where(OUTBOX.c.seq.in_(chosen))
                .values(lease_until=now + self.lease)
                .returning(*(OUTBOX.c[c] for c in CLAIMED))
            )
            return sorted(claimed.mappings().all(), key=itemgetter("seq"))

    async def _claim_pg(self, now: datetime) -> Sequence[Mapping[str, Any]]:
        """``_claim`` on PostgreSQL: the same statements, on asyncpg's connection."""
        async with self._driver() as raw, raw.transaction():
            after, chosen = -1, []
            while not chosen:
                candidates = await raw.fetch(PG_WINDOW, now, after, self.batch_size)
                if not candidates:
                    return []
                blocked = dict(await raw.fetch(
                    PG_BLOCKED, list({r[1] for r in candidates}), now))
                chosen = _unblocked(candidates, blocked)
                after = candidates[-1][0]
            claimed = await raw.fetch(PG_LEASE, chosen, now + self.lease)
        return sorted(claimed, key=itemgetter("seq"))

    @contextlib.asynccontextmanager
    async def _driver(self) -> AsyncIterator[Any]:
        """asyncpg's connection for a claim or a settle: the leader's own session (the one
        holding the advisory lock, so a relay that lost it fails instead of publishing)
        when leading, else one from the pool (``run_once`` called alone)."""
        if self._lock_conn is not None:
            yield await driver_connection(self._lock_conn)
            return
        async with self.db.engine.connect() as conn:
            yield await driver_connection(conn)

    async def _settle(self, rows: Sequence[Mapping[str, Any]],
                      results: list[BaseException | None]) -> None:
        now = utcnow()
        ok = [r["seq"] for r, err in zip(rows, results, strict=True) if err is None]
        failed = [(r, err) for r, err in zip(rows, results, strict=True) if err is not None]
        retry_at = now + backoff(max((r["attempts"] for r, _ in failed), default=0) + 1)
        if failed and all(self.bus.is_transient(err) for _, err in failed):
            retry_at = min(retry_at, now + TRANSIENT_RETRY_CAP)   # back soon after an outage
        if ok and not failed and supports_skip_locked(self.db.dialect):
            async with self._driver() as raw:   # the common case, as in _claim_pg
                await raw.execute(PG_PUBLISHED, ok, now)
        else:
            async with self.db.engine.begin() as conn:
                if ok:
                    await conn.execute(update(OUTBOX).where(OUTBOX.c.seq.in_(ok))
                                       .values(published_at=now, lease_until=None))
                for row, err in failed:
                    await self._record_failure(conn, row, err, now, retry_at)
        self.published_total += len(ok)
        if failed:
            log.warning("relay publish failed for %d of %d rows: %s", len(failed), len(rows),
                        failed[0][1], extra={"service": self.service})

    async def _record_failure(
        self, conn: AsyncConnection, row: Mapping[str, Any], err: BaseException, now: datetime,
        retry_at: datetime,
    ) -> None:
        attempts = row["attempts"] + 1
        reason = f"{type(err).__name__}: {err}"[:2000]
        # Only a record the broker refuses is dead-lettered: an outage, however long, is
        # waited out (a 2-minute one used to dead-letter every pending row).
        if attempts >= self.max_attempts and not self.bus.is_transient(err):
            values = {c: row[c] for c in CLAIMED if c != "attempts"}
            await conn.execute(insert(OUTBOX_DEAD).values(
                **values, attempts=attempts, reason=reason, dead_at=now))
            await conn.execute(delete(OUTBOX).where(OUTBOX.c.seq == row["seq"]))
            self.dead_total += 1
            log.error("outbox row dead-lettered", extra={"event_id": str(row["event_id"]),
                                                          "service": self.service})
            return
        await conn.execute(
            update(OUTBOX).where(OUTBOX.c.seq == row["seq"]).values(
                attempts=attempts, next_attempt_at=retry_at,
                lease_until=None, last_error=reason)
        )

    async def _is_leader(self) -> bool:
        if not supports_skip_locked(self.db.dialect):
            return True  # SQLite: one relay per process by construction
        if self._lock_conn is not None:
            return True
        conn = await self.db.engine.connect()
        got = (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                  {"k": _lock_key(self.service)})).scalar()
        await conn.commit()
        if got:
            self._lock_conn = conn
            await self._listen(conn)
            return True
        await conn.close()
        return False

    async def _listen(self, conn: AsyncConnection) -> None:
        """LISTEN for the outbox's insert notifications on the (otherwise idle) lock connection.

        Best effort: without it (an older schema, a pooler that drops LISTEN) the relay polls.
        """
        try:
            await (await driver_connection(conn)).add_listener(OUTBOX_CHANNEL, self.wake)
            self._listening = True
        except Exception:  # noqa: BLE001
            log.warning("relay could not LISTEN for outbox inserts; polling only",
                        extra={"service": self.service})

    async def _drop_leadership(self) -> None:
        self._listening = False
        if self._lock_conn is not None:
            conn, self._lock_conn = self._lock_conn, None
            try:
                await conn.close()  # closing the session releases the advisory lock
            except Exception:  # noqa: BLE001
                log.warning("could not close relay lock connection cleanly")


def _unblocked(candidates: Sequence[Any], blocked: dict[str, int]) -> list[int]:
    """The candidates' seqs (``(seq, key)`` pairs) that no older blocked row of their key
    waits before."""
    return [seq for seq, key in candidates if key not in blocked or blocked[key] > seq]


def _lock_key(service: str) -> int:
    return zlib.crc32(f"mandet-relay:{service}".encode())


class Backlog(NamedTuple):
    pending: int   # unpublished rows: exact up to ``BACKLOG_EXACT``, then an upper bound
    dead: int   # dead-lettered rows
    oldest_seconds: float   # age of the oldest unpublished row (0 when there is none)


BACKLOG_EXACT = 10_000


async def outbox_backlog(db: Database, *, exact_up_to: int = BACKLOG_EXACT,
                         now: datetime | None = None) -> Backlog:
    """The outbox's backlog for /metrics, at a cost that does not grow with it.

    Counting every unpublished row took 265-451 ms of PostgreSQL for a million of them, in
    every process every 5 s, just when the broker is away (measured). So rows are counted
    only up to ``exact_up_to``; past that the figure is the span of sequence numbers from
    the oldest unpublished row to the newest row, an upper bound (rows published out of
    turn, past a blocked key, lie inside it), read off the pending index in under 1 ms.
    """
    pending_rows = OUTBOX.c.published_at.is_(None)
    async with db.engine.connect() as conn:
        counted = (await conn.execute(select(func.count()).select_from(
            select(OUTBOX.c.seq).where(pending_rows).limit(exact_up_to).subquery()))).scalar_one()
        oldest = (await conn.execute(select(OUTBOX.c.seq, OUTBOX.c.created_at).where(
            pending_rows).order_by(OUTBOX.c.seq).limit(1))).first()
        pending = counted
        if counted >= exact_up_to and oldest is not None:
            newest = (await conn.execute(select(func.max(OUTBOX.c.seq)))).scalar_one()
            pending = newest - oldest.seq + 1
        dead = (await conn.execute(select(func.count()).select_from(OUTBOX_DEAD))).scalar_one()
    age = 0.0 if oldest is None else ((now or utcnow()) - aware(oldest.created_at)).total_seconds()
    return Backlog(int(pending), int(dead), max(age, 0.0))
