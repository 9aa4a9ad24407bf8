"""Pure measurement maths: the open-loop schedule, percentiles, and the run summary.

Percentiles use the nearest-rank method (the smallest sample with at least p % of samples at or
below it): no interpolation, so a reported p99 is a latency some request really had. Latency is
measured from each request's *scheduled* send time, so a stalled server cannot hide its stall
by slowing the generator down (no coordinated omission).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

PERCENTILES = (50.0, 95.0, 99.0, 99.9)


def schedule(rate: float, count: int) -> list[float]:
    """Offsets in seconds from the start at which ``count`` requests are due at ``rate``/s."""
    if rate <= 0 or count < 0:
        raise ValueError("rate must be > 0 and count >= 0")
    return [i / rate for i in range(count)]


def planned_count(rate: float, warmup_s: float, duration_s: float, max_count: int) -> int:
    """Requests in warm-up plus measurement, capped at ``max_count``."""
    return min(max_count, math.ceil(rate * (warmup_s + duration_s)))


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending sequence (``p`` in (0, 100])."""
    if not sorted_values:
        return math.nan
    if not 0 < p <= 100:
        raise ValueError("p must be in (0, 100]")
    rank = math.ceil(round(p * len(sorted_values) / 100, 9))  # 99 * 1000 / 100 is not 990.0...1
    return sorted_values[max(rank, 1) - 1]


@dataclass(frozen=True)
class Sample:
    """One request: when it was due and when its answer arrived (perf_counter seconds)."""

    scheduled: float
    done: float
    ok: bool
    status: str = ""  # HTTP status, or the exception's name

    @property
    def latency(self) -> float:
        return self.done - self.scheduled


@dataclass(frozen=True)
class Summary:
    sent: int
    ok: int
    errors: int
    achieved_rate: float
    latency_ms: dict[str, float]
    all_ok: int = 0  # successes including warm-up (to reconcile with rows stored)
    statuses: dict[str, int] = field(default_factory=dict)  # measured samples by outcome

    def as_dict(self) -> dict[str, object]:
        return {"sent": self.sent, "ok": self.ok, "errors": self.errors,
                "statuses": self.statuses,
                "achieved_rate": round(self.achieved_rate, 1),
                "latency_ms": {k: round(v, 3) for k, v in self.latency_ms.items()}}


def summarise(samples: Sequence[Sample], measure_from: float) -> Summary:
    """Samples scheduled at or after ``measure_from`` (warm-up excluded), summarised.

    Latency percentiles count errors as infinitely slow (see below).

    Achieved rate: successful answers per second between ``measure_from`` and the last answer.
    """
    kept = [s for s in samples if s.scheduled >= measure_from]
    good = [s for s in kept if s.ok]
    # A failed or unanswered request never met any latency bound: it counts as infinitely
    # slow, so with more than 1 % errors the p99 is inf and a p99 target is plainly missed.
    lat = sorted(s.latency * 1000 if s.ok else math.inf for s in kept)
    span = max((s.done for s in kept), default=measure_from) - measure_from
    rate = len(good) / span if span > 0 else 0.0
    pct = {_label(p): percentile(lat, p) for p in PERCENTILES}
    all_ok = sum(1 for s in samples if s.ok)
    statuses = dict(Counter(s.status for s in kept))
    return Summary(len(kept), len(good), len(kept) - len(good), rate, pct, all_ok, statuses)


def _label(p: float) -> str:
    return f"p{p:g}"


def ratio(figure: float | None, baseline: float | None) -> float | None:
    """figure / baseline, or None when either is missing or the baseline is zero."""
    if figure is None or baseline is None or baseline == 0:
        return None
    if not (math.isfinite(figure) and math.isfinite(baseline)):
        return None  # an infinite p99 (errors) has no meaningful ratio
    return figure / baseline
