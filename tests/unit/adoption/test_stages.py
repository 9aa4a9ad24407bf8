from datetime import UTC, date, datetime

import pytest

from services.adoption.domain.stages import (
    StageRecord,
    classify,
    headline,
    months_before,
    stage_in_force,
    validate_stage,
)

SITE = "1-5868490225"
PROGRAMME = "care-homes-deterioration"


def rec(stage, applies_from, reported=None, tool="RESTORE2", site=SITE):
    reported_at = datetime.fromisoformat(reported or f"{applies_from}T12:00:00+00:00")
    return StageRecord(
        site_id=site,
        programme=PROGRAMME,
        tool=tool,
        stage=stage,
        applies_from=date.fromisoformat(applies_from),
        reported_at=reported_at,
        reporter="psc-sw",
    )


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", [0, 1, 7])
def test_valid_stage(stage):
    assert validate_stage(stage) == stage


@pytest.mark.parametrize("stage", [True, False, 8, -1, "3", 3.0, None])
def test_invalid_stage(stage):
    with pytest.raises(ValueError):
        validate_stage(stage)
    with pytest.raises(ValueError):
        rec(stage, "2022-04-01")


def test_record_rejects_datetime_applies_from_and_naive_reported_at():
    with pytest.raises(ValueError, match="applies_from"):
        StageRecord(
            SITE,
            PROGRAMME,
            "NEWS2",
            3,
            datetime(2022, 4, 1, tzinfo=UTC),
            datetime(2022, 4, 2, tzinfo=UTC),
            "x",
        )
    with pytest.raises(ValueError, match="reported_at"):
        StageRecord(SITE, PROGRAMME, "NEWS2", 3, date(2022, 4, 1), datetime(2022, 4, 2), "x")


# --- headline measures ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "measures"),
    [
        (0, set()),
        (2, set()),
        (3, {"decision"}),
        (4, {"decision"}),
        (5, {"decision", "adoption"}),
        (6, {"decision", "adoption", "full_use"}),
        (7, {"decision", "adoption", "full_use", "sustained"}),
    ],
)
def test_headline(stage, measures):
    assert headline(stage) == measures


def test_headline_rejects_bad_stage():
    with pytest.raises(ValueError):
        headline(8)


# --- calendar months ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        ("2023-03-31", 12, "2022-03-31"),
        ("2024-02-29", 12, "2023-02-28"),
        ("2028-02-29", 48, "2024-02-29"),
        ("2023-05-31", 3, "2023-02-28"),
        ("2024-03-31", 1, "2024-02-29"),
        ("2024-01-15", 1, "2023-12-15"),
        ("2023-01-01", 12, "2022-01-01"),
    ],
)
def test_months_before(day, months, expected):
    assert months_before(date.fromisoformat(day), months) == date.fromisoformat(expected)


# --- stage in force ---------------------------------------------------------------------------

A = rec(3, "2022-04-01", "2022-05-10T09:00:00+00:00")
B = rec(5, "2022-10-01", "2022-11-20T09:00:00+00:00")
C = rec(4, "2022-10-01", "2023-01-15T09:00:00+00:00")  # later report for B's date supersedes it


@pytest.mark.parametrize(
    ("on", "expected"),
    [
        ("2022-03-31", None),
        ("2022-04-01", A),
        ("2022-09-30", A),
        ("2022-10-01", C),
        ("2023-03-31", C),
    ],
)
@pytest.mark.parametrize("history", [[A, B, C], [C, B, A], [B, A, C]])
def test_stage_in_force(history, on, expected):
    assert stage_in_force(history, date.fromisoformat(on)) == expected


def test_stage_in_force_empty_history():
    assert stage_in_force([], date(2023, 1, 1)) is None


def test_report_date_does_not_decide_in_force():
    # Reported first but applying later: the stage on 2022-06-30 is still the earlier one.
    late_applying = rec(6, "2022-07-01", "2022-05-01T09:00:00+00:00")
    early_applying = rec(2, "2022-04-01", "2022-08-01T09:00:00+00:00")
    history = [late_applying, early_applying]
    assert stage_in_force(history, date(2022, 6, 30)) == early_applying
    assert stage_in_force(history, date(2022, 7, 1)) == late_applying


# --- classify ---------------------------------------------------------------------------------

H = [rec(3, "2022-04-01"), rec(5, "2022-10-01")]

# fmt: off
CASES = {
    # name: (history, new, from_tool, from_stage, to_stage, unchanged, flags)
    "first report": ([], rec(3, "2022-04-01"), None, 0, 3, False, []),
    "first report of stage 0": ([], rec(0, "2022-04-01"), None, 0, 0, False, []),
    "progress": (H, rec(6, "2023-01-01"), "RESTORE2", 5, 6, False, []),
    "regression": (H, rec(4, "2023-01-01"), "RESTORE2", 5, 4, False, ["regression"]),
    "correction upward": (H, rec(4, "2022-07-01"), "RESTORE2", 3, 4, False, ["correction"]),
    "correction and regression": (
        H, rec(2, "2022-07-01"), "RESTORE2", 3, 2, False, ["regression", "correction"],
    ),
    "unchanged": (H, rec(5, "2023-01-01"), "RESTORE2", 5, 5, True, []),
    "unchanged correction": (H, rec(3, "2022-06-01"), "RESTORE2", 3, 3, True, ["correction"]),
    "tool change same stage": (H, rec(5, "2023-01-01", tool="NEWS2"), "RESTORE2", 5, 5, False, []),
    "same-date re-report lower": (
        H, rec(4, "2022-10-01", "2022-12-01T00:00:00+00:00"), "RESTORE2", 5, 4, False,
        ["regression"],
    ),
    "before any history": (H, rec(1, "2022-01-01"), None, 0, 1, False, ["correction"]),
    "stage 6 needs no evidence": ([], rec(6, "2022-04-01"), None, 0, 6, False, []),
    # Stage 7: history must show >= 5 on every day of [applies_from - 12 months, applies_from).
    "sustained exactly 12 months": (
        [rec(5, "2022-03-31")], rec(7, "2023-03-31"), "RESTORE2", 5, 7, False, [],
    ),
    "one day short of 12 months": (
        [rec(5, "2022-04-01")], rec(7, "2023-03-31"), "RESTORE2", 5, 7, False,
        ["sustainment not evidenced"],
    ),
    "dip inside the year": (
        [rec(6, "2021-01-01"), rec(4, "2022-08-01"), rec(6, "2022-09-01")],
        rec(7, "2023-03-31"), "RESTORE2", 6, 7, False, ["sustainment not evidenced"],
    ),
    "dip corrected away by a later report": (
        [
            rec(6, "2021-01-01"),
            rec(4, "2022-08-01", "2022-09-01T00:00:00+00:00"),
            rec(6, "2022-08-01", "2022-10-01T00:00:00+00:00"),
        ],
        rec(7, "2023-03-31"), "RESTORE2", 6, 7, False, [],
    ),
    "no history at all": ([], rec(7, "2023-03-31"), None, 0, 7, False,
                          ["sustainment not evidenced"]),
    "leap day: window starts 28 Feb": (
        [rec(5, "2023-02-28")], rec(7, "2024-02-29"), "RESTORE2", 5, 7, False, [],
    ),
    "leap day: 1 March is too late": (
        [rec(5, "2023-03-01")], rec(7, "2024-02-29"), "RESTORE2", 5, 7, False,
        ["sustainment not evidenced"],
    ),
    "later history ignored for sustainment": (
        [rec(6, "2021-01-01"), rec(2, "2023-06-01")], rec(7, "2023-03-31"), "RESTORE2", 6, 7,
        False, ["correction"],
    ),
    "stage 7 after stage 7 can regress nothing": (
        [rec(5, "2021-01-01"), rec(7, "2022-01-01")], rec(7, "2023-01-01"), "RESTORE2", 7, 7,
        True, [],
    ),
    "reported late, judged by applies_from": (
        [rec(5, "2022-01-01", "2023-03-01T00:00:00+00:00")], rec(7, "2023-01-01"), "RESTORE2", 5,
        7, False, [],
    ),
}
# fmt: on


@pytest.mark.parametrize(
    ("history", "new", "from_tool", "from_stage", "to_stage", "unchanged", "flags"),
    list(CASES.values()),
    ids=list(CASES),
)
def test_classify(history, new, from_tool, from_stage, to_stage, unchanged, flags):
    t = classify(history, new)
    assert (t.from_tool, t.from_stage, t.to_tool, t.to_stage) == (
        from_tool,
        from_stage,
        new.tool,
        to_stage,
    )
    assert t.is_unchanged is unchanged
    assert t.flags == flags
    assert t.is_regression is ("regression" in flags)
    assert t.is_correction is ("correction" in flags)
    assert t.sustainment_not_evidenced is ("sustainment not evidenced" in flags)


def test_classify_rejects_history_from_another_site():
    with pytest.raises(ValueError, match="does not belong"):
        classify([rec(3, "2022-04-01", site="1-999")], rec(4, "2022-07-01"))
