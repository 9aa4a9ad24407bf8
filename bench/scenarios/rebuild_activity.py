"""``rebuild-activity``: the rebuild engine over observation and score events.

The ``rebuild`` row replays the register and the stage history only; a real rebuild also
replays every observation, score and flag (the activity view), which soon outnumber them. This
row replays such a history into a fresh reports database exactly as ``rebuild`` does
(``replay_envelopes``: forked workers, one per core, each replaying its share of the sites and
residents in 5,000-event transactions, then the derivation): for the first ``HOMES`` homes in play,
each resident one observation set a quarter for eight quarters (ObservationRecorded +
ScoreComputed), one set in ten flagged (DeteriorationFlagged), one in a hundred withdrawn
(ObservationSetWithdrawn + ScoreWithdrawn). The baseline is the consumer's decode + parse +
dispatch of the same events with no database, as in ``rebuild``.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bench.core import Context, Row, Target, own_cpu, scenario
from bench.scenarios.common import homes
from bench.scenarios.reports import consumer_ceiling
from shared.bus.memory import MemoryBus
from shared.db import Database
from shared.events import Envelope, ObservationRecorded, encode, wrap
from shared.events.observations import ObservationSetWithdrawn
from shared.events.scores import DeteriorationFlagged, ScoreComputed, ScoreWithdrawn
from shared.migrations import upgrade
from shared.settings import load_settings

HOMES = 600   # 60 in a --quick run
FIRST_DAY = datetime(2022, 4, 1, 9, tzinfo=UTC)   # 2022/23 Q1: eight quarters from here
RISKS = (("low", 1), ("low-medium", 3), ("medium", 5), ("high", 8))


@scenario("rebuild-activity")
async def rebuild_activity(ctx: Context) -> list[Row]:
    # Not cached: 300,000 envelopes kept for the rest of the run would slow the harness's
    # garbage collection, and so the load it generates, in every later scenario.
    envs = await _history(ctx)
    ceiling = await asyncio.to_thread(consumer_ceiling, [encode(e) for e in envs])
    row = Row("rebuild, observation and score events", None, "events/s", ceiling,
              "consumer decode+dispatch, writes disabled", Target(">=", 50_000, "events/s"))
    from services.reports import rebuild as rb
    from services.reports.bootstrap import bootstrap
    from services.reports.facts import Horizon

    url = ctx.env().database()
    runtime = bootstrap(load_settings("reports", database_url=url), bus=MemoryBus())
    await upgrade(runtime.db, runtime.migrations)
    await runtime.db.dispose()
    ordered = rb.canonical(envs)
    db, horizon = Database(url), Horizon.of("2021/22 Q1")
    try:
        start, cpu = time.perf_counter(), own_cpu()
        applied = await rb.replay_envelopes(db, horizon, ordered)
        wall, cpu = time.perf_counter() - start, own_cpu() - cpu
    finally:
        await db.dispose()
    row.figure = applied / wall
    row.note = (f"{applied:,} events ({_homes(ctx)} homes, each resident a set a quarter for "
                f"eight quarters; 1 in 10 flagged, 1 in 100 withdrawn) in {wall:.1f} s; this "
                f"process's and its forked workers' CPU {cpu / max(applied, 1) * 1e6:.1f} us "
                "an event")
    row.details = {"events": applied, "wall_s": wall, "cpu_s": cpu}
    return [row]


async def _history(ctx: Context) -> list[Envelope]:
    in_play = (await homes(ctx))[:_homes(ctx)]
    return await asyncio.to_thread(_events, in_play)


def _homes(ctx: Context) -> int:
    return int(ctx.size(HOMES, HOMES // 10))


def _events(in_play) -> list[Envelope]:  # type: ignore[no-untyped-def]
    """The activity history (see the module docstring), deterministic."""
    rnd, out = random.Random(6), []
    for h in in_play:
        area = {"site_id": h.site_id, "icb_code": h.icb_code, "psc_code": h.psc_code}
        for r in range(h.residents):
            resident = f"l1_bench{h.site_id}-{r}"
            for quarter in range(8):
                taken = FIRST_DAY + timedelta(days=91 * quarter + rnd.randrange(85),
                                              minutes=rnd.randrange(600))
                risk, total = rnd.choice(RISKS)
                obs = ObservationRecorded(
                    observation_id=uuid.uuid4(), resident=resident, taken_at=taken,
                    received_at=taken, source_platform="bench", pulse=Decimal(70 + total),
                    **area)
                score = ScoreComputed(
                    observation_id=obs.observation_id, resident=resident, taken_at=taken,
                    scale=1, sub_scores={"pulse": total}, total=total, risk=risk,
                    red_score=risk == "low-medium", **area)
                events = [obs, score]
                flagged = rnd.random() < 0.1
                if flagged:
                    events.append(DeteriorationFlagged(
                        flag_id=uuid.uuid4(), observation_id=obs.observation_id,
                        resident=resident, taken_at=taken, reasons=("band",), total=total,
                        risk=risk, **area))
                if rnd.random() < 0.01:
                    when = taken + timedelta(hours=1)
                    events += [
                        ObservationSetWithdrawn(
                            observation_id=obs.observation_id, resident=resident,
                            taken_at=taken, source_platform="bench", withdrawn_at=when,
                            reason="entered-in-error", **area),
                        ScoreWithdrawn(
                            observation_id=obs.observation_id, resident=resident,
                            taken_at=taken, withdrawn_at=when, reason="entered-in-error",
                            status="scored", total=total, risk=risk,
                            red_score=risk == "low-medium",
                            flag_id=events[2].flag_id if flagged else None, **area)]
                out += [wrap(e, source="/bench") for e in events]
    return out
