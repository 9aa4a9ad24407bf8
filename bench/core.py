"""Rows, targets and the run context every scenario module plugs into.

A scenario is ``async def run(ctx) -> list[Row]``, registered with ``@scenario(name)``. It raises
``Unavailable("reason")`` when what it measures does not exist yet; the runner turns that into
a SKIPPED row, so a missing route never fails the run. Baselines a scenario needs are measured
once per run through ``ctx.cached`` and shared by every row that quotes them.
"""

from __future__ import annotations

import math
import operator
import resource
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bench.stats import ratio


class Unavailable(Exception):
    """What this scenario measures does not exist (yet)."""


@dataclass(frozen=True)
class Target:
    op: str  # ">=" or "<="
    value: float
    unit: str

    def met(self, figure: float | None) -> bool | None:
        if figure is None or math.isnan(figure):
            return None
        return {">=": operator.ge, "<=": operator.le}[self.op](figure, self.value)

    def __str__(self) -> str:
        return f"{self.op} {fmt(self.value)} {self.unit}"


@dataclass
class Row:
    scenario: str
    figure: float | None = None
    unit: str = ""
    baseline: float | None = None
    baseline_label: str = ""
    target: Target | None = None
    note: str = ""
    skipped: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        return ratio(self.figure, self.baseline)

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self.figure)

    def as_dict(self) -> dict[str, Any]:
        r = self.ratio
        return {"scenario": self.scenario, "figure": self.figure, "unit": self.unit,
                "baseline": self.baseline, "baseline_label": self.baseline_label,
                "ratio": None if r is None else round(r, 4),
                "target": str(self.target) if self.target else None, "met": self.met,
                "note": self.note, "skipped": self.skipped, "details": self.details}


def fmt(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    if math.isinf(value):
        return "inf (errors)"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.3g}"


Run = Callable[["Context"], Awaitable[list[Row]]]
REGISTRY: dict[str, Run] = {}


def scenario(name: str) -> Callable[[Run], Run]:
    def register(fn: Run) -> Run:
        REGISTRY[name] = fn
        return fn
    return register


@dataclass
class Context:
    """What scenarios share in one run: sizes, infrastructure, data and cached baselines."""

    quick: bool
    client: str = "raw"
    rate: float | None = None  # overrides the open-loop rate (1,000/s; 200/s quick)
    infra: Any = None  # bench.infra.Infra, started on first use
    work_dir: Any = None
    _cache: dict[str, Any] = field(default_factory=dict)

    def env(self) -> Any:
        """PostgreSQL, broker and process manager (``bench.infra.Infra``), started once."""
        if self.infra is None:
            from bench.infra import start_infra

            self.infra = start_infra(self.work_dir)
        return self.infra

    def size(self, full: Any, quick: Any) -> Any:
        return quick if self.quick else full

    def forget(self, prefix: str) -> list[Any]:
        """Drop the cached values whose keys start with ``prefix``; returns them."""
        keys = [k for k in self._cache if k.startswith(prefix)]
        return [self._cache.pop(k) for k in keys]

    async def cached(self, key: str, make: Callable[[], Awaitable[Any]]) -> Any:
        """``make()`` once per run; later callers get the same value (or the same error)."""
        if key not in self._cache:
            try:
                self._cache[key] = await make()
            except Exception as exc:  # noqa: BLE001 - replayed to every caller
                self._cache[key] = exc
        value = self._cache[key]
        if isinstance(value, Exception):
            raise value
        return value


def own_cpu() -> float:
    """CPU seconds of this process and of its children that exited (forked workers)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime
