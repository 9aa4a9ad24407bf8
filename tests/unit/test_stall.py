"""The suite's stall watchdog writes every pending task's stack, then ends the run."""

from __future__ import annotations

import asyncio
import io
import threading

from tests.infra.stall import EXIT_STATUS, Watchdog


async def test_a_stall_reports_the_await_it_is_stuck_on_then_ends_the_run():
    never = asyncio.Event()

    async def stuck_on_an_event() -> None:
        await never.wait()

    async def outer() -> None:
        await stuck_on_an_event()

    task = asyncio.create_task(outer())
    await asyncio.sleep(0)
    out, ended = io.StringIO(), threading.Event()
    codes: list[int] = []
    dog = Watchdog(0.05, out=out, end=lambda code: (codes.append(code), ended.set()))
    dog.start("tests/x.py::test_stuck")
    assert await asyncio.to_thread(ended.wait, 5)
    task.cancel()
    text = out.getvalue()
    assert "stall: tests/x.py::test_stuck still running after 0 s" in text
    [section] = [s for s in text.split("\n--- ") if "outer() running at" in s]
    chain = [line.rsplit(" in ", 1)[-1] for line in section.splitlines()[1:] if line]
    assert chain == ["outer", "stuck_on_an_event", "wait"]   # every await, outermost first
    assert codes == [EXIT_STATUS]


def test_a_test_that_ends_in_time_stops_its_watchdog():
    out, codes = io.StringIO(), []
    dog = Watchdog(0.05, out=out, end=codes.append)
    dog.start("tests/x.py::test_quick")
    dog.stop()
    threading.Event().wait(0.2)
    assert codes == [] and out.getvalue() == ""
