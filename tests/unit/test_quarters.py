from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.quarters import Quarter, local_date


@pytest.mark.parametrize(
    ("quarter", "label", "start", "end"),
    [
        (Quarter(2022, 1), "2022/23 Q1", date(2022, 4, 1), date(2022, 6, 30)),
        (Quarter(2022, 2), "2022/23 Q2", date(2022, 7, 1), date(2022, 9, 30)),
        (Quarter(2022, 3), "2022/23 Q3", date(2022, 10, 1), date(2022, 12, 31)),
        (Quarter(2022, 4), "2022/23 Q4", date(2023, 1, 1), date(2023, 3, 31)),
        (Quarter(1999, 4), "1999/00 Q4", date(2000, 1, 1), date(2000, 3, 31)),
        (Quarter(2009, 1), "2009/10 Q1", date(2009, 4, 1), date(2009, 6, 30)),
        (Quarter(2099, 3), "2099/00 Q3", date(2099, 10, 1), date(2099, 12, 31)),
        (Quarter(2023, 4), "2023/24 Q4", date(2024, 1, 1), date(2024, 3, 31)),
    ],
)
def test_label_start_end(quarter, label, start, end):
    assert quarter.label == label
    assert str(quarter) == label
    assert quarter.start == start
    assert quarter.end == end
    assert Quarter.parse(label) == quarter


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("2022/24 Q1", "does not follow"),
        ("1999/99 Q1", "does not follow"),
        ("2022/23 Q5", "Q1-Q4"),
        ("2022/23 Q0", "Q1-Q4"),
        ("2022/23Q1", "YYYY/YY Qn"),
        ("2022-23 Q1", "YYYY/YY Qn"),
        ("2022/2023 Q1", "YYYY/YY Qn"),
        (" 2022/23 Q1", "YYYY/YY Qn"),
        ("2022/23 Q1 ", "YYYY/YY Qn"),
        ("2022/23 q1", "YYYY/YY Qn"),
        ("22/23 Q1", "YYYY/YY Qn"),
        ("", "YYYY/YY Qn"),
    ],
)
def test_parse_is_strict(label, message):
    with pytest.raises(ValueError, match=message):
        Quarter.parse(label)


def test_parse_rejects_non_string():
    with pytest.raises(TypeError):
        Quarter.parse(2022)


@pytest.mark.parametrize(
    ("fy", "q", "error"),
    [(2022, 0, ValueError), (2022, 5, ValueError), (2022, True, TypeError), ("2022", 1, TypeError)],
)
def test_constructor_validates(fy, q, error):
    with pytest.raises(error):
        Quarter(fy, q)


@pytest.mark.parametrize(
    ("day", "label"),
    [
        (date(2022, 4, 1), "2022/23 Q1"),
        (date(2022, 6, 30), "2022/23 Q1"),
        (date(2022, 7, 1), "2022/23 Q2"),
        (date(2022, 9, 30), "2022/23 Q2"),
        (date(2022, 10, 1), "2022/23 Q3"),
        (date(2022, 12, 31), "2022/23 Q3"),
        (date(2023, 1, 1), "2022/23 Q4"),
        (date(2023, 3, 31), "2022/23 Q4"),
        (date(2023, 4, 1), "2023/24 Q1"),
        (date(2024, 2, 29), "2023/24 Q4"),
        (date(2000, 1, 1), "1999/00 Q4"),
    ],
)
def test_of_date(day, label):
    assert Quarter.of_date(day).label == label


def test_of_date_rejects_datetime():
    with pytest.raises(TypeError):
        Quarter.of_date(datetime(2023, 1, 1, tzinfo=UTC))


BST = timezone(timedelta(hours=1))


@pytest.mark.parametrize(
    ("instant", "local", "label"),
    [
        # 31 March 2023 is BST (clocks went forward 26 March): 23:30Z is 00:30 on 1 April.
        (datetime(2023, 3, 31, 23, 30, tzinfo=UTC), date(2023, 4, 1), "2023/24 Q1"),
        (datetime(2023, 3, 31, 22, 59, 59, tzinfo=UTC), date(2023, 3, 31), "2022/23 Q4"),
        # Winter (GMT): UTC date and London date agree.
        (datetime(2022, 12, 31, 23, 30, tzinfo=UTC), date(2022, 12, 31), "2022/23 Q3"),
        (datetime(2023, 12, 31, 23, 59, 59, tzinfo=UTC), date(2023, 12, 31), "2023/24 Q3"),
        (datetime(2024, 1, 1, 0, 0, tzinfo=UTC), date(2024, 1, 1), "2023/24 Q4"),
        # BST end of Q1 2023/24: 30 June 23:30Z is 1 July 00:30 London.
        (datetime(2023, 6, 30, 23, 30, tzinfo=UTC), date(2023, 7, 1), "2023/24 Q2"),
        # A +01:00 offset on 1 April 00:10 is 23:10Z on 31 March, still 1 April in London.
        (datetime(2023, 4, 1, 0, 10, tzinfo=BST), date(2023, 4, 1), "2023/24 Q1"),
        # 30 Sept 2023 23:30 in New York is 04:30 BST on 1 October in London.
        (
            datetime(2023, 9, 30, 23, 30, tzinfo=timezone(timedelta(hours=-4))),
            date(2023, 10, 1),
            "2023/24 Q3",
        ),
    ],
)
def test_of_instant_uses_london_date(instant, local, label):
    assert local_date(instant) == local
    assert Quarter.of_instant(instant).label == label


def test_naive_datetime_rejected():
    with pytest.raises(ValueError, match="naive"):
        Quarter.of_instant(datetime(2023, 3, 31, 23, 30))
    with pytest.raises(ValueError, match="naive"):
        local_date(datetime(2023, 3, 31, 23, 30))


@pytest.mark.parametrize(
    ("quarter", "after", "before"),
    [
        ("2022/23 Q4", "2023/24 Q1", "2022/23 Q3"),
        ("2023/24 Q1", "2023/24 Q2", "2022/23 Q4"),
        ("1999/00 Q4", "2000/01 Q1", "1999/00 Q3"),
    ],
)
def test_next_prev(quarter, after, before):
    q = Quarter.parse(quarter)
    assert q.next().label == after
    assert q.prev().label == before


def test_ordering_is_chronological():
    assert Quarter(2022, 4) < Quarter(2023, 1) < Quarter(2023, 2)
    assert sorted([Quarter(2023, 1), Quarter(2021, 4), Quarter(2022, 3)]) == [
        Quarter(2021, 4),
        Quarter(2022, 3),
        Quarter(2023, 1),
    ]


@pytest.mark.parametrize(
    ("first", "last", "labels"),
    [
        (
            "2022/23 Q3",
            "2023/24 Q2",
            ["2022/23 Q3", "2022/23 Q4", "2023/24 Q1", "2023/24 Q2"],
        ),
        ("2022/23 Q3", "2022/23 Q3", ["2022/23 Q3"]),
        ("2023/24 Q1", "2022/23 Q4", []),
    ],
)
def test_range_is_inclusive(first, last, labels):
    got = Quarter.range(Quarter.parse(first), Quarter.parse(last))
    assert [q.label for q in got] == labels


def test_contains():
    assert date(2023, 3, 31) in Quarter(2022, 4)
    assert date(2023, 4, 1) not in Quarter(2022, 4)


dates = st.dates(min_value=date(1, 4, 1), max_value=date(9999, 3, 31))
quarters = st.builds(Quarter, st.integers(1, 9998), st.integers(1, 4))


@given(dates)
def test_every_date_in_exactly_one_quarter(day):
    q = Quarter.of_date(day)
    assert q.start <= day <= q.end
    if q > Quarter(1, 1):
        assert day not in q.prev()
    if q < Quarter(9998, 4):
        assert day not in q.next()


@given(quarters)
def test_quarters_tile_the_calendar(q):
    if q < Quarter(9998, 4):
        assert q.next().start == q.end + timedelta(days=1)
        assert q.next().prev() == q
    if q > Quarter(1, 1):
        assert q.prev().next() == q
    assert Quarter.of_date(q.start) == q
    assert Quarter.of_date(q.end) == q
    assert Quarter.parse(q.label) == q


@given(
    st.datetimes(
        min_value=datetime(1900, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.sampled_from([UTC, BST, timezone(timedelta(hours=-10))]),
    )
)
def test_of_instant_agrees_with_local_date(instant):
    day = local_date(instant)
    q = Quarter.of_instant(instant)
    assert q.start <= day <= q.end
