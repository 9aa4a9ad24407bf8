"""``run_forked``: async work in forked processes, from inside the test's running loop."""

from __future__ import annotations

import asyncio
import os

import pytest

from shared.forked import WorkerFailed, run_forked


async def square(n: int, note) -> tuple[int, int]:   # noqa: ANN001
    for step in range(n):
        note(step)
    await asyncio.sleep(0)   # a loop of its own runs in the child
    return n * n, os.getpid()


async def test_each_argument_runs_in_a_process_of_its_own_and_results_keep_their_order():
    notes: list[tuple[int, int]] = []
    got = await run_forked(square, [3, 1, 2], lambda i, note: notes.append((i, note)))
    assert [r for r, _ in got] == [9, 1, 4]
    assert len({pid for _, pid in got} | {os.getpid()}) == 4
    assert sorted(notes) == [(0, 0), (0, 1), (0, 2), (1, 0), (2, 0), (2, 1)]


async def fail_or_wait(n: int, note) -> int:   # noqa: ANN001
    if n == 0:
        raise ValueError("the first worker's own error")
    if n == 1:
        os._exit(3)
    await asyncio.sleep(60)   # stopped by the parent once another failed
    return n


async def test_a_failure_names_the_worker_and_its_error_and_stops_the_others():
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(WorkerFailed) as failed:
        await run_forked(fail_or_wait, [0, 2])
    assert "worker 0 failed" in str(failed.value)
    assert "ValueError: the first worker's own error" in str(failed.value)
    assert loop.time() - started < 30   # the sleeping worker was terminated, not awaited


async def test_a_worker_that_exits_without_a_result_fails_the_call():
    with pytest.raises(WorkerFailed, match=r"worker 0 exited without a result \(exit code 3\)"):
        await run_forked(fail_or_wait, [1])
