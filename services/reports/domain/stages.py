"""A site's stage history per programme, judged at quarter ends (pure).

The stage in force on day D is the record with the latest ``applies_from <= D``; among records
applying from the same day the latest ``reported_at`` wins (a later report supersedes). On a
full tie the record with the greater ``tiebreak`` (the event id) wins: reports sees events in
any order, so arrival order cannot decide, and the view must equal a rebuild. A site with no
record in force is at stage 0 with no tool.

A site is *open* at a quarter end when ``opened_on <= end`` (unknown opening: always) and it
has not closed by then (``closed_on`` is None or after the end). Only open sites count.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple

from shared.quarters import Quarter, local_date


@dataclass(frozen=True)
class StagePoint:
    """One reported stage for one site and programme."""

    applies_from: date
    reported_at: datetime
    tool: str | None
    stage: int
    tiebreak: str = ""

    def __post_init__(self) -> None:
        if type(self.stage) is not int or not 0 <= self.stage <= 7:
            raise ValueError(f"stage must be an integer 0-7, got {self.stage!r}")

    @property
    def precedence(self) -> tuple[date, datetime, str]:
        return (self.applies_from, self.reported_at, self.tiebreak)


class QuarterFact(NamedTuple):
    """The stage (and tool) in force for a site and programme at one quarter's end."""

    qn: int
    tool: str | None
    stage: int


def stage_at(history: Iterable[StagePoint], day: date) -> StagePoint | None:
    """The record in force on `day`, or None (stage 0)."""
    in_force = [p for p in history if p.applies_from <= day]
    return max(in_force, key=lambda p: p.precedence, default=None)


def ordinal(quarter: Quarter) -> int:
    """A quarter as a consecutive integer (next quarter = ordinal + 1)."""
    return quarter.fy_start_year * 4 + quarter.q - 1


def ordinal_of_instant(instant: datetime) -> int:
    """``ordinal(Quarter.of_instant(instant))``: the quarter of an aware instant, judged by
    its Europe/London date."""
    return _ordinal_of_date(local_date(instant))


@functools.lru_cache(maxsize=4096)
def _ordinal_of_date(day: date) -> int:
    """Remembered per day: an activity history has a few hundred distinct days for hundreds
    of thousands of events (1.6 -> 0.7 us an instant, measured)."""
    return ordinal(Quarter.of_date(day))


def from_ordinal(qn: int) -> Quarter:
    year, index = divmod(qn, 4)
    return Quarter(year, index + 1)


def is_open(opened_on: date | None, closed_on: date | None, day: date) -> bool:
    """Open at the end of `day`: opened on or before it and not closed by it."""
    return (opened_on is None or opened_on <= day) and (closed_on is None or closed_on > day)


@functools.lru_cache(maxsize=32)
def quarter_ends(first: int, last: int) -> tuple[tuple[int, date], ...]:
    """(ordinal, last day) of each quarter first..last (inclusive)."""
    return tuple((qn, from_ordinal(qn).end) for qn in range(first, last + 1))


def quarter_facts(history: Sequence[StagePoint], opened_on: date | None,
                  closed_on: date | None, first: int, last: int) -> list[QuarterFact]:
    """Facts for quarter ordinals first..last (inclusive) where the site is open and reported."""
    return [QuarterFact(*f) for f in quarter_stages(history, opened_on, closed_on, first, last)]


def quarter_stages(history: Iterable[StagePoint], opened_on: date | None,
                   closed_on: date | None, first: int, last: int
                   ) -> list[tuple[int, str | None, int]]:
    """``quarter_facts`` as plain (qn, tool, stage) tuples (bulk derivations make many)."""
    return quarter_stages_of([(p.applies_from, p.reported_at, p.tool, p.stage, p.tiebreak)
                              for p in history], opened_on, closed_on, first, last)


def quarter_stages_of(history: Sequence[tuple[date, datetime, str | None, int, str]],
                      opened_on: date | None, closed_on: date | None, first: int, last: int
                      ) -> list[tuple[int, str | None, int]]:
    """``quarter_stages`` over plain (applies_from, reported_at, tool, stage, tiebreak) rows.

    ``stage_at`` at every quarter end, in one sweep: sorted by precedence (``applies_from``
    first; a stable sort keeps full ties in history order), the records in force on a day
    are a prefix of the history, and ``stage_at`` picks the first record of the prefix's
    highest precedence. The quarters a site is open at are consecutive (``is_open``), so the
    sweep runs over those only.
    """
    ends = quarter_ends(first, last)
    lo, hi = 0, len(ends)
    if opened_on is not None:
        while lo < hi and ends[lo][1] < opened_on:
            lo += 1
    if closed_on is not None:
        while hi > lo and ends[hi - 1][1] >= closed_on:
            hi -= 1
    ordered = sorted(history, key=_ROW_PRECEDENCE)
    facts: list[tuple[int, str | None, int]] = []
    i, n = 0, len(ordered)
    best: tuple | None = None
    tool: str | None = None
    stage = -1
    for qn, end in ends[lo:hi]:
        while i < n and ordered[i][0] <= end:
            row = ordered[i]
            precedence = (row[0], row[1], row[4])
            if best is None or precedence > best:
                best, tool, stage = precedence, row[2], row[3]
            i += 1
        if best is not None:
            facts.append((qn, tool, stage))
    return facts


_ROW_PRECEDENCE = operator.itemgetter(0, 1, 4)
