"""The measurement maths, against hand-worked values."""

from __future__ import annotations

import math

import pytest

from bench.core import Row, Target
from bench.stats import Sample, percentile, planned_count, ratio, schedule, summarise

TEN = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]


@pytest.mark.parametrize(("p", "expected"), [
    (50, 5.0),     # rank ceil(0.5 * 10) = 5
    (90, 9.0),     # rank 9
    (95, 10.0),    # rank ceil(9.5) = 10
    (99, 10.0),
    (99.9, 10.0),
    (100, 10.0),
    (10, 1.0),     # rank 1
    (10.1, 2.0),   # rank ceil(1.01) = 2
    (0.01, 1.0),   # rank ceil(0.001) = 1
])
def test_nearest_rank_percentile(p, expected):
    assert percentile(TEN, p) == expected


def test_percentile_of_a_thousand_samples():
    values = [float(i) for i in range(1, 1001)]
    assert percentile(values, 99) == 990.0
    assert percentile(values, 99.9) == 999.0
    assert percentile(values, 50) == 500.0


def test_percentile_edges():
    assert math.isnan(percentile([], 99))
    assert percentile([7.0], 99.9) == 7.0
    with pytest.raises(ValueError):
        percentile(TEN, 0)


def test_schedule_is_evenly_spaced_from_zero():
    assert schedule(4, 5) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert schedule(1000, 3) == [0.0, 0.001, 0.002]
    assert schedule(10, 0) == []
    with pytest.raises(ValueError):
        schedule(0, 3)


def test_planned_count_is_bounded():
    assert planned_count(1000, 2, 10, 1_000_000) == 12_000
    assert planned_count(1000, 2, 10, 5_000) == 5_000
    assert planned_count(3, 0.5, 0.5, 100) == 3


def test_latency_counts_from_the_scheduled_time_and_warmup_is_excluded():
    samples = [
        Sample(scheduled=0.0, done=0.5, ok=True),    # warm-up: ignored
        Sample(scheduled=1.0, done=1.010, ok=True),  # 10 ms
        Sample(scheduled=1.5, done=1.530, ok=True),  # 30 ms
        Sample(scheduled=2.0, done=2.020, ok=True),  # 20 ms
        Sample(scheduled=2.5, done=3.0, ok=False),   # error: no latency, counted
    ]
    s = summarise(samples, measure_from=1.0)
    assert (s.sent, s.ok, s.errors, s.all_ok) == (4, 3, 1, 4)
    # latencies 10, 20, 30 and the error as inf: nearest rank of 4 samples
    assert s.latency_ms["p50"] == pytest.approx(20.0)   # rank 2
    assert s.latency_ms["p95"] == math.inf              # rank 4: the error
    assert percentile([10.0, 20.0, 30.0], 99) == 30.0
    assert s.achieved_rate == pytest.approx(3 / 2.0)  # 3 answers between 1.0 and 3.0


def test_a_stall_shows_in_every_request_scheduled_behind_it():
    # due every 10 ms, the server stalls until t = 0.1 and answers all at once:
    # latencies 100, 90, ... 10 ms: a generator that waited for answers would report 10 ms.
    samples = [Sample(i / 100, 0.1, True) for i in range(10)]
    s = summarise(samples, measure_from=0.0)
    assert s.latency_ms["p50"] == pytest.approx(50.0)  # rank 5 of 10..100
    assert s.latency_ms["p99"] == pytest.approx(100.0)


def test_ratio_and_targets():
    assert ratio(50.0, 200.0) == 0.25
    assert ratio(1.0, 0.0) is None
    assert ratio(None, 2.0) is None
    assert ratio(math.nan, 2.0) is None
    assert ratio(math.inf, 2.0) is None
    assert Target(">=", 3000, "sets/s").met(2999.0) is False
    assert Target("<=", 25, "ms").met(25.0) is True
    assert Target("<=", 25, "ms").met(math.nan) is None
    row = Row("x", 10.0, "ms", 40.0, "bare", Target("<=", 25, "ms"))
    assert (row.ratio, row.met) == (0.25, True)
