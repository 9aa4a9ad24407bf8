"""A service's running parts, composed in one place (each service's ``bootstrap()``).

A Runtime owns the database, the bus (unless handed one, as the embedded mode does so four
services share one in-process bus), the token service, metrics, the outbox relay and the
consumers. ``start()`` migrates, then starts the background tasks the settings ask for;
``stop()`` stops them and waits, so no task is left unreferenced or its failure unlogged.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from shared import inbox
from shared.bus.base import Bus
from shared.bus.kafka import KafkaBus
from shared.bus.memory import MemoryBus
from shared.consumer import BatchConsumerRunner, BatchHandler, ConsumerRunner
from shared.db import Database
from shared.events import topics
from shared.migrations import upgrade
from shared.ops import ServiceMetrics
from shared.relay import BACKLOG_EXACT, OutboxRelay, outbox_backlog
from shared.settings import CommonSettings

log = logging.getLogger("mandet.runtime")
HOUSEKEEPING_SECONDS = 60.0
GAUGE_SECONDS = 5.0

# Consumers and the relay allocate hundreds of short-lived containers per event; at CPython's
# default generation-0 threshold (700) the collector ran every few events and took a fifth of
# the scoring consumer's CPU (measured: 110-122 -> 89-93 ms per 1,000 observations at 10,000).
# Reference counting still frees non-cyclic garbage at once; only cycle detection waits.
GC_GEN0_THRESHOLD = 10_000


def make_bus(settings: CommonSettings, client_id: str) -> Bus:
    if settings.bus == "memory":
        return MemoryBus(partitions=settings.kafka_partitions)
    return KafkaBus(settings.kafka_bootstrap, enable_idempotence=settings.kafka_enable_idempotence,
                    partitions=settings.kafka_partitions, topics=topics.ALL_TOPICS,
                    client_id=client_id, topic_prefix=settings.kafka_topic_prefix,
                    replication_factor=settings.kafka_replication_factor,
                    session_timeout_ms=settings.kafka_session_timeout_ms,
                    fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms)


class Runtime:
    def __init__(self, service: str, settings: CommonSettings, *, migrations: Path,
                 bus: Bus | None = None, db: Database | None = None) -> None:
        from shared.auth import TokenService

        self.service, self.settings, self.migrations = service, settings, migrations
        self.db = db or Database(settings.database_url_for(service))
        self.owns_bus = bus is None
        self.bus = bus or make_bus(settings, client_id=f"mandet-{service}")
        self.tokens = TokenService(settings.jwt_secret.get_secret_value(), settings.jwt_issuer)
        self.metrics = ServiceMetrics(service)
        self.relay = OutboxRelay(self.db, self.bus, service=service,
                                 batch_size=settings.relay_batch_size,
                                 poll_seconds=settings.relay_poll_seconds,
                                 max_attempts=settings.relay_max_attempts,
                                 retention_hours=settings.outbox_retention_hours)
        self.consumers: list[ConsumerRunner] = []
        self.inbox_pruned_total = 0
        self.uses_bus = True   # decided in start()
        self.startup_steps: list[Callable[[], Awaitable[None]]] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def add_batch_consumer(self, name: str, topics_by_type: dict[str, str],
                           batch_handler: BatchHandler,
                           runner: type[BatchConsumerRunner] = BatchConsumerRunner
                           ) -> BatchConsumerRunner:
        """A consumer whose handler takes a whole batch (``shared.consumer``)."""
        batch = runner(self.db, self.bus, name=name, topics_by_type=topics_by_type,
                       batch_handler=batch_handler,
                       batch_size=self.settings.consumer_batch_size,
                       max_attempts=self.settings.consumer_max_attempts,
                       after_commit=self.relay.wake)
        self.consumers.append(batch)
        return batch

    async def start(self, *, relay: bool | None = None, consumers: bool | None = None) -> None:
        run_relay = self.settings.run_relay if relay is None else relay
        run_consumers = self.settings.run_consumers if consumers is None else consumers
        # An API process (no relay, no consumers) never touches the bus: it writes the outbox
        # only, so it starts, stays ready and keeps accepting while the broker is down.
        self.uses_bus = run_relay or (run_consumers and bool(self.consumers))
        gc.set_threshold(max(GC_GEN0_THRESHOLD, gc.get_threshold()[0]), *gc.get_threshold()[1:])
        await upgrade(self.db, self.migrations)
        if self.owns_bus and self.uses_bus:
            await self.bus.start()
        async with self.db.exclusive(f"{self.service}:startup"):  # e.g. load reference data once
            for step in self.startup_steps:
                await step()
        self._stop.clear()
        if run_relay:
            self._spawn(self.relay.run(self._stop), "relay")
        if run_consumers:
            for runner in self.consumers:
                self._spawn(runner.run(self._stop), f"consumer:{runner.name}")
            if self.consumers and self.settings.inbox_retention_hours > 0:
                self._spawn(self._every(HOUSEKEEPING_SECONDS, self._prune_inbox,
                                        "inbox prune"), "inbox-retention")
        self._spawn(self._every(GAUGE_SECONDS, self.refresh_gauges,
                                "refreshing pipeline gauges"), "gauges")

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        task = asyncio.create_task(coro, name=f"{self.service}:{name}")  # type: ignore[arg-type]
        task.add_done_callback(self._log_exit)
        self._tasks.append(task)

    def _log_exit(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("background task died: %s", task.get_name(), exc_info=task.exception())

    async def stop(self) -> None:
        self._stop.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=10)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self._tasks.clear()
        if self.owns_bus:
            await self.bus.stop()
        await self.db.dispose()

    async def ready(self) -> dict[str, str]:
        checks = {}
        probes = [("database", self.db.ping)] + ([("bus", self.bus.ping)] if self.uses_bus else [])
        for name, probe in probes:
            try:
                await asyncio.wait_for(probe(), timeout=5)
                checks[name] = "ok"
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                checks[name] = f"unreachable: {type(exc).__name__}"
        return checks

    async def _prune_inbox(self) -> None:
        """Inbox rows past their retention (``shared.inbox``); every worker of the service may
        do it, the deletes are idempotent."""
        retention = timedelta(hours=self.settings.inbox_retention_hours)
        self.inbox_pruned_total += await inbox.prune(self.db, retention)

    async def _every(self, seconds: float, work: Callable[[], Awaitable[None]],
                     what: str) -> None:
        """``work`` now and every ``seconds`` until stopped; a failure is logged and retried
        next time (housekeeping must never take the service down)."""
        while not self._stop.is_set():
            try:
                await work()
            except Exception:  # noqa: BLE001
                log.warning("%s failed; retrying in %.0f s", what, seconds, exc_info=True)
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=seconds)
            except TimeoutError:
                pass

    async def refresh_gauges(self) -> None:
        backlog = await outbox_backlog(self.db)
        g = self.metrics.pipeline
        g.set("outbox_backlog", "Outbox rows not yet published (exact up to "
              f"{BACKLOG_EXACT:,}, then an upper bound)", backlog.pending)
        g.set("outbox_oldest_unpublished_seconds", "Age of the oldest outbox row not yet "
              "published (0 when none)", backlog.oldest_seconds)
        g.set("outbox_dead_letters", "Outbox rows dead-lettered", backlog.dead)
        g.set("outbox_published_total", "Rows published by this process",
              self.relay.published_total)
        g.set("inbox_pruned_total", "Inbox rows past retention deleted by this process",
              self.inbox_pruned_total)
        for c in self.consumers:
            g.set("consumer_lag", "Messages not yet delivered", c.stats.lag, consumer=c.name)
            g.set("consumer_applied_total", "Events applied", c.stats.applied, consumer=c.name)
            g.set("consumer_duplicates_total", "Redelivered events skipped by the inbox",
                  c.stats.duplicates, consumer=c.name)
            g.set("consumer_dead_letters_total", "Messages dead-lettered",
                  c.stats.dead_letters, consumer=c.name)
