"""Run an async function in forked worker processes, one per argument, from a running loop.

Why fork rather than spawn: a worker needs this process's modules and its arguments (readers
not yet started, a database URL, a horizon); a spawned interpreter would import the services
again, about a second, a third of a national rebuild. Forking from inside a running event
loop has rules, which the child follows here:

- it starts an event loop of its own: Python 3.11 does not reset the running loop in a forked
  child (3.12 does), so ``asyncio.run`` would refuse; the reset is done here;
- it builds its own clients (connections, consumers) from the arguments and never uses the
  parent's: their sockets are shared with the parent;
- it runs no cyclic collection (``gc.disable``): the collector would walk, and so copy, the
  parent's pages; a worker's work is bounded, and what cyclic garbage it makes is dropped
  with the process (freezing the inherited heap instead made every ``gc.get_freeze_count``,
  which walks the frozen objects, cost 0.05-0.1 s in a child of the benchmark's process);
- it ends with ``os._exit`` (``multiprocessing``), so nothing inherited is closed or flushed
  from the child.

A child's notes (``note(value)``, a progress count say) reach ``on_note`` in the parent as
they are sent. The first child to fail (an exception, or an exit without a result) stops the
others and fails the call with the child's traceback; so does the caller's cancellation.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import signal
import traceback
from collections.abc import Awaitable, Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any, TypeVar

A = TypeVar("A")
R = TypeVar("R")
Work = Callable[[A, Callable[[Any], None]], Awaitable[R]]


class WorkerFailed(RuntimeError):
    """A forked worker raised or died; the message holds its traceback or exit code."""


async def run_forked(work: Work, args: Sequence[A],
                     on_note: Callable[[int, Any], None] = lambda i, note: None) -> list[R]:
    """``work(arg, note)`` in one forked process per argument, at once; their results, in
    the arguments' order. ``on_note(i, value)``: worker i called ``note(value)``."""
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("fork")
    results: list[asyncio.Future] = [loop.create_future() for _ in args]
    processes, pipes = [], []
    try:
        for i, arg in enumerate(args):
            mine, theirs = context.Pipe(duplex=False)
            process = context.Process(target=_child, args=(work, arg, theirs), daemon=True)
            process.start()
            theirs.close()
            processes.append(process)
            pipes.append(mine)
            loop.add_reader(mine.fileno(), _receive, i, mine, process, results[i], on_note)
        return await asyncio.gather(*results)
    finally:
        for pipe in pipes:
            loop.remove_reader(pipe.fileno())
            pipe.close()
        succeeded = all(r.done() and not r.cancelled() and not r.exception() for r in results)
        for process in processes:
            if not succeeded and process.is_alive():
                process.terminate()
        await asyncio.to_thread(lambda: [p.join() for p in processes])


def _receive(i: int, pipe: Connection, process: Any, result: asyncio.Future,
             on_note: Callable[[int, Any], None]) -> None:
    """Whatever worker i sent (its pipe is readable): notes, then its result or failure."""
    try:
        while not result.done() and pipe.poll():
            kind, value = pipe.recv()
            if kind == "note":
                on_note(i, value)
            elif kind == "done":
                result.set_result(value)
            else:
                result.set_exception(WorkerFailed(f"worker {i} failed:\n{value}"))
    except (EOFError, OSError):   # it exited without saying how it ended
        process.join(5)
        result.set_exception(WorkerFailed(
            f"worker {i} exited without a result (exit code {process.exitcode})"))
    if result.done():   # its pipe stays readable (at its end): stop watching it
        asyncio.get_running_loop().remove_reader(pipe.fileno())


def _child(work: Work, arg: Any, pipe: Connection) -> None:
    gc.disable()
    asyncio.events._set_running_loop(None)   # the parent's, inherited (see the module doc)
    signal.set_wakeup_fd(-1)
    try:
        pipe.send(("done", asyncio.run(work(arg, lambda note: pipe.send(("note", note))))))
    except BaseException:   # noqa: BLE001 - reported to the parent, which raises it
        pipe.send(("failed", traceback.format_exc()))
    finally:
        pipe.close()
