"""The view leg of freshness: the k-th score is visible at the first poll counting k."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bench.scenarios.freshness import view_lags

T0 = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def test_each_score_is_seen_at_the_first_poll_whose_total_covers_it():
    polls = [(at(10), 0), (at(20), 1), (at(30), 1), (at(40), 3)]
    received = [at(0), at(5), at(8)]
    # 1st: seen at 20 (20 - 0); 2nd and 3rd: seen at 40 (40 - 5, 40 - 8)
    assert view_lags(polls, received) == [20.0, 32.0, 35.0]


def test_scores_never_seen_are_left_out():
    assert view_lags([(at(10), 1)], [at(0), at(1)]) == [10.0]
    assert view_lags([], [at(0)]) == []
