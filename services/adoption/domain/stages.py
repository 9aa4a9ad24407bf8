"""Stage-of-adoption rules (stages 0-7; programmes and tools are reference data, not enums).

Everything is judged by the date a stage *applies from*, never by when it was reported: the
stage in force on day D is the record with the latest ``applies_from <= D``, and among records
for the same ``applies_from`` the latest ``reported_at`` wins (a later report supersedes).
A site with no record in force is at stage 0. Stage 7 claims "embedded for at least a year":
it is evidenced only if the history put the site at stage >= 5 on every day of the 12
calendar months before the new record applies (a Feb 29 anniversary falls back to Feb 28).
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

MIN_STAGE, MAX_STAGE = 0, 7
DECISION, ADOPTION, FULL_USE, SUSTAINED = "decision", "adoption", "full_use", "sustained"
REGRESSION, SUSTAINMENT_NOT_EVIDENCED, CORRECTION = (
    "regression",
    "sustainment not evidenced",
    "correction",
)
_SUSTAIN_MONTHS, _SUSTAIN_FLOOR = 12, 5


def validate_stage(stage: object) -> int:
    """Return `stage` if it is an int 0-7 (bools and strings are refused), else raise."""
    if type(stage) is not int:
        raise ValueError(f"stage must be an integer 0-7, got {stage!r}")
    if not MIN_STAGE <= stage <= MAX_STAGE:
        raise ValueError(f"stage must be 0-7, got {stage}")
    return stage


@dataclass(frozen=True)
class StageRecord:
    site_id: str
    programme: str
    tool: str | None
    stage: int
    applies_from: date
    reported_at: datetime
    reporter: str

    def __post_init__(self) -> None:
        validate_stage(self.stage)
        if isinstance(self.applies_from, datetime) or not isinstance(self.applies_from, date):
            raise ValueError(f"applies_from must be a date, got {self.applies_from!r}")
        if not isinstance(self.reported_at, datetime) or self.reported_at.utcoffset() is None:
            raise ValueError(f"reported_at must be an aware datetime, got {self.reported_at!r}")


@dataclass(frozen=True)
class Transition:
    from_tool: str | None
    from_stage: int
    to_tool: str | None
    to_stage: int
    is_correction: bool
    is_regression: bool
    is_unchanged: bool
    sustainment_not_evidenced: bool

    @property
    def flags(self) -> list[str]:
        """Flag names in a fixed order: regression, sustainment not evidenced, correction."""
        pairs = (
            (self.is_regression, REGRESSION),
            (self.sustainment_not_evidenced, SUSTAINMENT_NOT_EVIDENCED),
            (self.is_correction, CORRECTION),
        )
        return [name for raised, name in pairs if raised]


def headline(stage: int) -> frozenset[str]:
    """Headline measures a stage counts towards."""
    stage = validate_stage(stage)
    thresholds = ((DECISION, 3), (ADOPTION, 5), (FULL_USE, 6), (SUSTAINED, 7))
    return frozenset(name for name, floor in thresholds if stage >= floor)


def stage_in_force(history: Sequence[StageRecord], on: date) -> StageRecord | None:
    """Record in force on `on`; on a full tie the later record in `history` wins."""
    best: StageRecord | None = None
    for record in history:
        if record.applies_from > on:
            continue
        if best is None or _precedence(record) >= _precedence(best):
            best = record
    return best


def _precedence(record: StageRecord) -> tuple[date, datetime]:
    return (record.applies_from, record.reported_at)


def months_before(day: date, months: int) -> date:
    """Same day `months` calendar months earlier, clamped to month end (Feb 29 -> Feb 28)."""
    year, month0 = divmod(day.year * 12 + day.month - 1 - months, 12)
    last_day = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(day.day, last_day))


def sustained_before(history: Sequence[StageRecord], day: date) -> bool:
    """True if history puts the site at stage >= 5 on every day of the 12 months before `day`."""
    window_start = months_before(day, _SUSTAIN_MONTHS)
    # The stage in force only changes on an applies_from date, so checking the window's first
    # day and each change date inside it covers every day.
    checkpoints = {window_start}
    checkpoints.update(r.applies_from for r in history if window_start < r.applies_from < day)
    return all(_stage_on(history, d) >= _SUSTAIN_FLOOR for d in checkpoints)


def _stage_on(history: Sequence[StageRecord], day: date) -> int:
    record = stage_in_force(history, day)
    return MIN_STAGE if record is None else record.stage


def _check_same_series(history: Sequence[StageRecord], new: StageRecord) -> None:
    for record in history:
        if (record.site_id, record.programme) != (new.site_id, new.programme):
            raise ValueError(
                f"history record for {record.site_id}/{record.programme} does not belong to"
                f" {new.site_id}/{new.programme}"
            )


def classify(history: Sequence[StageRecord], new: StageRecord) -> Transition:
    """Describe `new` against everything already accepted for the same site and programme."""
    _check_same_series(history, new)
    before = stage_in_force(history, new.applies_from)
    from_stage = MIN_STAGE if before is None else before.stage
    latest = max((r.applies_from for r in history), default=None)
    return Transition(
        from_tool=None if before is None else before.tool,
        from_stage=from_stage,
        to_tool=new.tool,
        to_stage=new.stage,
        is_correction=latest is not None and new.applies_from < latest,
        is_regression=new.stage < from_stage,
        is_unchanged=before is not None and (before.tool, before.stage) == (new.tool, new.stage),
        sustainment_not_evidenced=(
            new.stage == MAX_STAGE and not sustained_before(history, new.applies_from)
        ),
    )
