"""NHS financial quarters.

The financial year runs 1 April - 31 March: Q1 Apr-Jun, Q2 Jul-Sep, Q3 Oct-Dec, Q4 Jan-Mar, so
Q4 falls in the calendar year *after* ``fy_start_year`` (``2022/23 Q4`` is January-March 2023).
Quarters are made of Europe/London local dates: an instant is converted to London time before
its date is taken (2023-03-31T23:30Z is 1 April in BST, hence ``2023/24 Q1``), and naive
datetimes are refused because their date is ambiguous.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")

# (month, day) of each quarter's first and last day; Q4 is in fy_start_year + 1.
_STARTS = {1: (4, 1), 2: (7, 1), 3: (10, 1), 4: (1, 1)}
_ENDS = {1: (6, 30), 2: (9, 30), 3: (12, 31), 4: (3, 31)}
_LABEL = re.compile(r"([0-9]{4})/([0-9]{2}) Q([0-9])")
_MIN_YEAR, _MAX_YEAR = 1, 9998  # keeps every start and end a valid `date`


def local_date(instant: datetime) -> date:
    """The Europe/London calendar date of an aware datetime."""
    if not isinstance(instant, datetime):
        raise TypeError(f"expected a datetime, got {type(instant).__name__}")
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"naive datetime {instant.isoformat()} has no time zone")
    return instant.astimezone(LONDON).date()


@dataclass(frozen=True, order=True)
class Quarter:
    """One NHS financial quarter; ordering is chronological."""

    fy_start_year: int
    q: int

    def __post_init__(self) -> None:
        for name in ("fy_start_year", "q"):
            value = getattr(self, name)
            if type(value) is not int:
                raise TypeError(f"{name} must be an int, got {value!r}")
        if not _MIN_YEAR <= self.fy_start_year <= _MAX_YEAR:
            raise ValueError(f"fy_start_year {self.fy_start_year} outside {_MIN_YEAR}-{_MAX_YEAR}")
        if not 1 <= self.q <= 4:
            raise ValueError(f"quarter must be 1-4, got {self.q}")

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        """E.g. ``2022/23 Q4``; the second year is always two digits (``1999/00``)."""
        suffix = (self.fy_start_year + 1) % 100
        return f"{self.fy_start_year:04d}/{suffix:02d} Q{self.q}"

    @classmethod
    def parse(cls, label: str) -> Quarter:
        """Strict inverse of `label`: exactly ``YYYY/YY Qn``, consecutive years."""
        if not isinstance(label, str):
            raise TypeError(f"quarter label must be a str, got {type(label).__name__}")
        match = _LABEL.fullmatch(label)
        if match is None:
            raise ValueError(f"quarter label {label!r} is not of the form 'YYYY/YY Qn'")
        year, suffix, q = int(match[1]), int(match[2]), int(match[3])
        if suffix != (year + 1) % 100:
            raise ValueError(
                f"quarter label {label!r}: '{match[2]}' does not follow {match[1]}"
                f" (expected '{(year + 1) % 100:02d}')"
            )
        if not 1 <= q <= 4:
            raise ValueError(f"quarter label {label!r}: quarter must be Q1-Q4")
        return cls(year, q)

    @property
    def _calendar_year(self) -> int:
        return self.fy_start_year + 1 if self.q == 4 else self.fy_start_year

    @property
    def start(self) -> date:
        """First day of the quarter."""
        return date(self._calendar_year, *_STARTS[self.q])

    @property
    def end(self) -> date:
        """Last day of the quarter (inclusive)."""
        return date(self._calendar_year, *_ENDS[self.q])

    def __contains__(self, day: date) -> bool:
        return self.start <= day <= self.end

    def next(self) -> Quarter:
        if self.q == 4:
            return Quarter(self.fy_start_year + 1, 1)
        return Quarter(self.fy_start_year, self.q + 1)

    def prev(self) -> Quarter:
        if self.q == 1:
            return Quarter(self.fy_start_year - 1, 4)
        return Quarter(self.fy_start_year, self.q - 1)

    @classmethod
    def of_date(cls, day: date) -> Quarter:
        """The quarter containing a calendar date (already a London local date)."""
        if isinstance(day, datetime) or not isinstance(day, date):
            raise TypeError(f"of_date needs a date, got {type(day).__name__}; use of_instant")
        if day.month >= 4:
            return cls(day.year, (day.month - 4) // 3 + 1)
        return cls(day.year - 1, 4)

    @classmethod
    def of_instant(cls, instant: datetime) -> Quarter:
        """The quarter of an aware instant, judged by its Europe/London date."""
        return cls.of_date(local_date(instant))

    @staticmethod
    def range(first: Quarter, last: Quarter) -> Iterator[Quarter]:
        """Quarters from `first` to `last`, both INCLUSIVE; empty if `first` > `last`."""
        current = first
        while current <= last:
            yield current
            if current == last:
                return
            current = current.next()
