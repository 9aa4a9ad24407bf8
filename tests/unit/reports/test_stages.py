"""Stage in force at quarter ends, open-site rule, quarter ordinals: hand-written tables."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.reports.domain.stages import (
    QuarterFact,
    StagePoint,
    from_ordinal,
    is_open,
    ordinal,
    ordinal_of_instant,
    quarter_facts,
    quarter_stages_of,
    stage_at,
)
from shared.quarters import Quarter


def p(applies: str, stage: int, tool: str | None = "NEWS2", reported: str = "2023-01-10",
      tiebreak: str = "") -> StagePoint:
    return StagePoint(date.fromisoformat(applies),
                      datetime.fromisoformat(reported).replace(tzinfo=UTC), tool, stage, tiebreak)


HISTORY = [p("2022-05-01", 3), p("2022-11-15", 5), p("2023-03-31", 6), p("2023-04-01", 7)]


@pytest.mark.parametrize(("day", "expected"), [
    ("2022-04-30", None),
    ("2022-05-01", 3),
    ("2022-06-30", 3),
    ("2022-12-31", 5),
    ("2023-03-31", 6),   # applies on the last day of 2022/23 Q4: in force at its end
    ("2023-04-01", 7),
])
def test_stage_at_by_applies_from(day, expected):
    got = stage_at(HISTORY, date.fromisoformat(day))
    assert (got.stage if got else None) == expected


def test_latest_report_wins_on_the_same_applies_from_whatever_the_order():
    early = p("2022-05-01", 3, reported="2022-06-01")
    late = p("2022-05-01", 2, reported="2022-07-01")
    assert stage_at([late, early], date(2022, 6, 30)).stage == 2
    assert stage_at([early, late], date(2022, 6, 30)).stage == 2


def test_full_tie_is_decided_by_tiebreak_not_arrival():
    a = p("2022-05-01", 3, tiebreak="a")
    b = p("2022-05-01", 4, tiebreak="b")
    assert stage_at([a, b], date(2022, 6, 30)).stage == 4
    assert stage_at([b, a], date(2022, 6, 30)).stage == 4


def test_a_report_made_later_for_an_earlier_date_does_not_override_a_later_date():
    later_date = p("2022-09-01", 5, reported="2022-09-05")
    correction = p("2022-08-01", 2, reported="2023-01-01")
    assert stage_at([later_date, correction], date(2022, 9, 30)).stage == 5
    assert stage_at([later_date, correction], date(2022, 8, 31)).stage == 2


@pytest.mark.parametrize(("opened", "closed", "day", "expected"), [
    (None, None, "2023-03-31", True),
    ("2023-03-31", None, "2023-03-31", True),    # opened on the quarter end: counts
    ("2023-04-01", None, "2023-03-31", False),
    (None, "2023-03-31", "2023-03-31", False),   # closed on the quarter end: gone
    (None, "2023-04-01", "2023-03-31", True),
])
def test_is_open(opened, closed, day, expected):
    def d(s):
        return date.fromisoformat(s) if s else None
    assert is_open(d(opened), d(closed), date.fromisoformat(day)) is expected


def test_ordinals_are_consecutive_and_round_trip():
    q4 = Quarter(2022, 4)
    assert ordinal(q4) == 2022 * 4 + 3
    assert ordinal(q4.next()) == ordinal(q4) + 1
    assert from_ordinal(ordinal(q4)) == q4
    assert from_ordinal(ordinal(Quarter(2023, 1))) == Quarter(2023, 1)


@pytest.mark.parametrize(("instant", "expected"), [
    # 2022/23 Q1 is 2022 * 4 + 0 = 8088. Quarters turn at midnight London time.
    (datetime(2022, 4, 1, 0, 0, tzinfo=UTC), 8088),                 # 01:00 BST, 1 April
    (datetime(2022, 3, 31, 23, 30, tzinfo=UTC), 8088),              # 00:30 BST, 1 April
    (datetime(2022, 3, 31, 22, 59, tzinfo=UTC), 8087),              # 23:59 BST, 31 March
    (datetime(2022, 6, 30, 23, 0, tzinfo=UTC), 8089),               # 00:00 BST, 1 July: Q2
    (datetime(2022, 6, 30, 22, 59, 59, tzinfo=UTC), 8088),          # 23:59:59 BST, 30 June
    (datetime(2022, 6, 30, 22, 59, 59, 999999, tzinfo=UTC), 8088),  # its last microsecond
    (datetime(2022, 12, 31, 23, 59, tzinfo=UTC), 8090),             # GMT: still Q3
    (datetime(2023, 1, 1, 0, 0, tzinfo=UTC), 8091),                 # 2022/23 Q4
    (datetime(2023, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))), 8090),  # 23:30 GMT
])
def test_the_quarter_number_of_an_instant_is_by_its_london_date(instant, expected):
    assert ordinal_of_instant(instant) == expected
    assert ordinal_of_instant(instant) == expected   # remembered, the same


def test_quarter_facts_skip_unreported_and_closed_quarters():
    q1 = ordinal(Quarter(2022, 1))   # Apr-Jun 2022
    facts = quarter_facts(HISTORY, opened_on=None, closed_on=date(2023, 6, 30),
                          first=q1, last=q1 + 5)
    assert facts == [
        QuarterFact(q1, "NEWS2", 3),          # 2022/23 Q1 end 30 Jun: stage 3
        QuarterFact(q1 + 1, "NEWS2", 3),      # Q2
        QuarterFact(q1 + 2, "NEWS2", 5),      # Q3
        QuarterFact(q1 + 3, "NEWS2", 6),      # Q4
        # 2023/24 Q1 ends 30 Jun 2023, the close date: not open, no fact
    ]


def test_quarter_facts_start_when_the_site_opens():
    q1 = ordinal(Quarter(2022, 1))
    facts = quarter_facts(HISTORY, opened_on=date(2022, 10, 1), closed_on=None,
                          first=q1, last=q1 + 3)
    assert [f.qn for f in facts] == [q1 + 2, q1 + 3]


def test_stage_outside_range_is_refused():
    with pytest.raises(ValueError):
        p("2022-01-01", 8)


POINTS = st.builds(p, st.sampled_from(["2021-12-31", "2022-01-01", "2022-05-01", "2022-09-30",
                                       "2023-02-11", "2023-06-30"]),
                   st.integers(0, 7), st.sampled_from([None, "NEWS2", "Soft"]),
                   st.sampled_from(["2022-06-01", "2023-01-10"]), st.sampled_from(["", "a", "b"]))
DAYS = st.none() | st.dates(date(2021, 6, 1), date(2023, 12, 31))


@given(history=st.lists(POINTS, max_size=8), opened=DAYS, closed=DAYS)
def test_quarter_facts_are_stage_at_each_open_quarter_end(history, opened, closed):
    """The one-sweep derivation picks what ``stage_at`` picks, full ties included."""
    first = ordinal(Quarter(2021, 3))
    want = [QuarterFact(qn, point.tool, point.stage) for qn in range(first, first + 10)
            if is_open(opened, closed, from_ordinal(qn).end)
            and (point := stage_at(history, from_ordinal(qn).end)) is not None]
    assert quarter_facts(history, opened, closed, first, first + 9) == want


def test_quarter_stages_of_plain_rows_keeps_full_ties_in_history_order():
    """Rows as the rebuild reads them; a full tie (same precedence) keeps the first row, as
    ``stage_at``'s ``max`` does."""
    q1 = ordinal(Quarter(2022, 1))
    reported = datetime(2023, 1, 10, tzinfo=UTC)
    rows = [(date(2022, 5, 1), reported, "B", 4, "x"), (date(2022, 5, 1), reported, "A", 3, "x"),
            (date(2022, 4, 1), reported, "C", 1, "y")]
    assert quarter_stages_of(rows, None, None, q1, q1 + 1) == [(q1, "B", 4), (q1 + 1, "B", 4)]
    assert quarter_stages_of(rows, date(2022, 7, 1), None, q1, q1 + 1) == [(q1 + 1, "B", 4)]
    assert quarter_stages_of(rows, None, date(2022, 9, 30), q1, q1 + 1) == [(q1, "B", 4)]
    assert quarter_stages_of(rows, date(2022, 9, 1), date(2022, 8, 1), q1, q1 + 1) == []
