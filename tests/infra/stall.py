"""A watchdog for the suite: a test that runs far longer than any should is a stall.

Once a test has run ``TEST_STALL_SECONDS`` (default 600; the whole suite takes about four
minutes), every thread's stack and every pending asyncio task's stack are written to stderr
and the run ends with exit status 3. A stall then fails CI at once, with the await it is
stuck on in the log, instead of using up CI's 90 minutes with nothing to show.
"""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import os
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TextIO

EXIT_STATUS = 3


def stall_seconds() -> float:
    return float(os.environ.get("TEST_STALL_SECONDS", "600"))


def report(test: str, seconds: float, out: TextIO) -> int:
    """Write the stacks; returns how many pending tasks were found."""
    out.write(f"\n=== stall: {test} still running after {seconds:.0f} s; thread stacks, then "
              "pending asyncio tasks ===\n")
    out.flush()
    try:
        faulthandler.dump_traceback(file=out, all_threads=True)
    except (AttributeError, ValueError):   # a stream without a file descriptor
        out.write("(thread stacks need a real file)\n")
    tasks = [o for o in gc.get_objects() if isinstance(o, asyncio.Task) and not o.done()]
    for task in tasks:
        out.write(f"\n--- {task!r}\n")
        for frame in _await_chain(task.get_coro()):
            out.write(f"  {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}\n")
    out.flush()
    return len(tasks)


def _await_chain(coro: object) -> Iterator[FrameType]:
    """The frames of a coroutine and of everything it awaits, outermost first (a task's own
    stack shows only the outermost)."""
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            yield frame
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)


class Watchdog:
    """One timer per test: ``start`` when it begins, ``stop`` when it ends."""

    def __init__(self, seconds: float, out: TextIO | None = None,
                 end: Callable[[int], None] = os._exit,
                 before: Callable[[], object] | None = None) -> None:
        """``before`` runs first when a stall fires: pytest's capture is suspended there, so
        the report reaches the real stderr (the process ends before captured output is
        shown)."""
        self.seconds, self.out, self.end, self.before = seconds, out, end, before
        self._timer: threading.Timer | None = None

    def start(self, test: str) -> None:
        self._timer = threading.Timer(self.seconds, self._fire, args=(test,))
        self._timer.daemon = True
        self._timer.start()

    def stop(self) -> None:
        """Cancel the timer and wait for its thread to end, so that nothing of it is freed
        while the next test runs (a test of ``gc.freeze`` counts frozen objects)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer.join()
            self._timer = None

    def _fire(self, test: str) -> None:
        if self.before is not None:
            self.before()
        report(test, self.seconds, self.out or sys.stderr)
        self.end(EXIT_STATUS)
