"""Helpers shared by the private servers the tests start (PostgreSQL, the broker)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import socket
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def run_async(fn: Callable[[], Awaitable[T]], timeout: float = 30.0) -> T:
    """Run ``fn()`` on a fresh event loop in a helper thread (safe inside a running loop)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as ex:
        return ex.submit(lambda: asyncio.run(fn())).result(timeout=timeout)  # type: ignore[arg-type]


def pdeathsig_preexec(sig: int) -> Callable[[], None] | None:
    """preexec_fn that makes the child receive ``sig`` when we die (Linux only).

    Only used when spawning from the main thread: PR_SET_PDEATHSIG fires when the *thread*
    that forked exits. CPython runs preexec_fn after setuid/setgid, so the setting survives
    the user switch.
    """
    in_main = threading.current_thread() is threading.main_thread()
    if not sys.platform.startswith("linux") or not in_main:
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def _preexec() -> None:
        prctl(pr_set_pdeathsig, sig, 0, 0, 0)

    return _preexec
