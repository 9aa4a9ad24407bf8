"""Open-loop constant-rate and closed-loop saturation load, bounded in count and time.

Open loop: request ``i`` is due at ``start + i / rate`` whatever happened to earlier requests;
if the generator falls behind it sends every overdue request at once, and each latency counts
from the due time. Requests still unanswered ``drain_s`` after the last one was due are counted
as errors. Closed loop: ``workers`` coroutines send back to back (maximum throughput; latency
then measures service time only and is reported for information).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import time
from collections.abc import Awaitable, Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from bench.stats import Sample, Summary, planned_count, schedule, summarise

Send = Callable[[Any], Awaitable[int]]
DRAIN_S = 10.0   # open loop: how long after the last due time an answer still counts


@contextmanager
def steady() -> Iterator[None]:
    """The load generator's heap, collected once and frozen (``gc.freeze``) for a load phase.

    The harness holds the national data set and the cached event history: hundreds of
    thousands of long-lived objects that every full collection walks. One such collection
    in the middle of an open-loop phase stalled the generator for 261 ms (measured: 246 events
    published late in a row, 2.15 s into the reports-freshness run), and open-loop latency
    rightly charges a late send to the system under test. Frozen, those objects are skipped;
    what the phase allocates is still collected. Nested uses freeze once.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def open_loop(send: Send, payloads: Sequence[Any], *, rate: float, warmup_s: float,
                    duration_s: float, max_count: int, ok: Collection[int] = (200, 201),
                    drain_s: float = DRAIN_S) -> Summary:
    """Constant-rate load; latency from the scheduled send time, warm-up excluded."""
    with steady():
        return await _open_loop(send, payloads, rate=rate, warmup_s=warmup_s,
                                duration_s=duration_s, max_count=max_count, ok=ok,
                                drain_s=drain_s)


async def _open_loop(send: Send, payloads: Sequence[Any], *, rate: float, warmup_s: float,
                     duration_s: float, max_count: int, ok: Collection[int],
                     drain_s: float) -> Summary:
    offsets = schedule(rate, planned_count(rate, warmup_s, duration_s, max_count))
    start = time.perf_counter() + 0.02
    samples: list[Sample | None] = [None] * len(offsets)
    tasks: set[asyncio.Task[None]] = set()

    async def one(i: int, due: float) -> None:
        samples[i] = await _timed(send, payloads[i % len(payloads)], due, ok)

    for i, offset in enumerate(offsets):
        due = start + offset
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(i, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await _drain(tasks, drain_s)
    late = time.perf_counter()
    final = [s or Sample(start + o, late, False, "unanswered")
             for s, o in zip(samples, offsets, strict=True)]
    return summarise(final, start + warmup_s)


async def closed_loop(send: Send, payloads: Sequence[Any], *, workers: int, warmup_s: float,
                      duration_s: float, max_count: int,
                      ok: Collection[int] = (200, 201)) -> Summary:
    """``workers`` senders back to back until ``duration_s`` after warm-up or ``max_count``."""
    with steady():
        return await _closed_loop(send, payloads, workers=workers, warmup_s=warmup_s,
                                  duration_s=duration_s, max_count=max_count, ok=ok)


async def _closed_loop(send: Send, payloads: Sequence[Any], *, workers: int, warmup_s: float,
                       duration_s: float, max_count: int, ok: Collection[int]) -> Summary:
    counter = itertools.count()
    start = time.perf_counter()
    end = start + warmup_s + duration_s
    samples: list[Sample] = []

    async def worker() -> None:
        while time.perf_counter() < end:
            i = next(counter)
            if i >= max_count:
                return
            samples.append(await _timed(send, payloads[i % len(payloads)],
                                        time.perf_counter(), ok))

    await asyncio.gather(*(worker() for _ in range(workers)))
    return summarise(samples, start + warmup_s)


async def _timed(send: Send, payload: Any, due: float, ok: Collection[int]) -> Sample:
    try:
        status = await send(payload)
    except Exception as exc:  # noqa: BLE001 - a failed request is a measured error, not a crash
        return Sample(due, time.perf_counter(), False, type(exc).__name__)
    return Sample(due, time.perf_counter(), status in ok, str(status))


async def _drain(tasks: set[asyncio.Task[None]], drain_s: float) -> None:
    if not tasks:
        return
    _, pending = await asyncio.wait(set(tasks), timeout=drain_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
