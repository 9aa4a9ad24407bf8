"""One intake path for every entry point (native single, native batch, FHIR).

Each request runs in ONE transaction: claim the Idempotency-Key (if any), read the sites it
names from ingest's copy, prepare every item, insert, write outbox rows, remember the answer.
``respond`` turns the per-item outcomes into the HTTP answer; it may raise a ``Problem`` (a
single set or a FHIR transaction that failed), which rolls everything back, claim included.
"""

from __future__ import annotations

import gc
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from services.ingest import idempotency
from services.ingest.group_commit import GroupCommit
from services.ingest.observations import Outcome, get_set, record_sets, withdraw
from services.ingest.schemas import ObservationSetIn, ResidentIn
from services.ingest.site_cache import SiteCache, SiteTable
from services.ingest.validation import Context, KnownSite, Rejected, prepare, pseudonym_of
from shared.auth import Principal
from shared.problems import Problem
from shared.runtime import Runtime
from shared.settings import IngestSettings

_collected = False  # whether a start in this process ran the full collection before freezing
Respond = Callable[[list[Outcome]], tuple[int, Any]]
Item = ObservationSetIn | Rejected
Clock = Callable[[], datetime]


def utc_clock() -> datetime:
    return datetime.now(UTC)


class IngestRuntime(Runtime):
    """The shared runtime plus what ingest needs: its pseudonym key and a clock."""

    settings: IngestSettings

    def __init__(self, *args: Any, clock: Clock = utc_clock, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clock = clock
        self.pseudonym_key = self.settings.pseudonym_key.get_secret_value().encode()
        self.sites = SiteCache(self.settings.site_cache_seconds, SiteTable(self.db))
        self.group_commit = GroupCommit(self)

    async def start(self, *, relay: bool | None = None, consumers: bool | None = None) -> None:
        """Start, then move what start-up built out of the cyclic collector's way.

        A request keeps its parsed body (thousands of containers for a Bundle or a batch)
        alive across young collections, so they reach the oldest generation and trigger full
        collections, each of which walked every module, schema and table object of the
        process: measured under the FHIR benchmark, 12 full collections cost 0.90 CPU s of
        the API's 5.1 s (about 130 us a set). Frozen, those objects are skipped: 15 full
        collections cost 0.16 s. Reference counting still frees them; ``stop`` unfreezes
        them. The first start in a process collects first, so start-up garbage (migrations)
        is not kept; later ones (tests start many runtimes) skip that pause.
        """
        global _collected
        await super().start(relay=relay, consumers=consumers)
        if not _collected:
            gc.collect()
            _collected = True
        gc.freeze()

    async def stop(self) -> None:
        gc.unfreeze()
        await self.sites.close()
        await super().stop()

    async def intake(self, principal: Principal, items: Sequence[ObservationSetIn | Rejected],
                     respond: Respond, *, idempotency_key: str | None = None,
                     request: Any = None) -> tuple[int, Any]:
        """Validate and record ``items``; the (status, body) answer, replayed on a retry."""
        async with self.db.engine.begin() as session:  # Core: no ORM unit of work here
            if idempotency_key:
                digest = idempotency.request_hash(self.pseudonym_key, request)
                replay = await idempotency.claim(session, caller=principal.sub,
                                                 key=idempotency_key, request=digest)
                if replay is not None:
                    return 200, replay[1]
            outcomes = await self.record(session, [(principal, item) for item in items])
            status, body = respond(outcomes)
            if idempotency_key:
                await idempotency.remember(session, caller=principal.sub, key=idempotency_key,
                                           status=status, body=body)
        self.relay.wake()
        return status, body

    async def record(self, session: Any, work: Sequence[tuple[Principal, Item]]
                     ) -> list[Outcome]:
        """Prepare and insert items of one or more callers in the caller's transaction."""
        now = self.clock()
        sites = await self.sites.get_many(
            session, (i.site_id for _, i in work if isinstance(i, ObservationSetIn)))
        contexts: dict[Principal, Context] = {}
        outcomes: list[Outcome | None] = []
        rows = []
        for principal, item in work:
            if principal not in contexts:
                contexts[principal] = self._context(principal, sites, now)
            try:
                if isinstance(item, Rejected):
                    raise item
                rows.append(prepare(item, contexts[principal]))
                outcomes.append(None)
            except Rejected as exc:
                outcomes.append(Outcome("rejected", None, exc.status, exc.errors))
        recorded = iter(await record_sets(session, rows, received_at=now))
        return [o if o is not None else next(recorded) for o in outcomes]

    async def withdraw(self, principal: Principal, set_id: uuid.UUID) -> dict[str, Any]:
        """Withdraw a set its caller recorded, as entered in error; the set as now stored."""
        async with self.db.engine.begin() as conn:
            found = await get_set(conn, set_id)
            principal.require_site(found["site_id"], found["icb_code"], found["psc_code"])
            if found["source_platform"] != principal.sub:
                raise Problem(403, "Forbidden", f"set {set_id} was recorded by another "
                              "platform; only the platform that recorded a set can withdraw it")
            found = await withdraw(conn, set_id, reason="entered-in-error",
                                   at=self.clock()) or found   # None: withdrawn before
        self.relay.wake()
        return found

    async def pseudonym_of(self, principal: Principal, item: ResidentIn) -> str:
        """``validation.pseudonym_of`` against the current register copy."""
        async with self.db.engine.connect() as conn:
            sites = await self.sites.get_many(conn, [item.site_id])
        return pseudonym_of(item, principal, sites, self.pseudonym_key)

    def _context(self, principal: Principal, sites: dict[str, KnownSite],
                 now: datetime) -> Context:
        return Context(principal=principal, sites=sites, now=now, key=self.pseudonym_key,
                       max_future_minutes=self.settings.max_future_minutes,
                       max_age_days=self.settings.max_age_days)
