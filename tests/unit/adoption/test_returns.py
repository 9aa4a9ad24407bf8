"""Reading a filled return: row numbers, column names, blank rows, dates (no database)."""

from datetime import date

import pytest

from services.adoption.returns import COLUMNS, parse_rows
from services.adoption.spreadsheet import Table, read_table, write_csv, write_xlsx
from shared.problems import Problem


def table(*rows: dict) -> Table:
    return Table(list(COLUMNS), [(n, r) for n, r in enumerate(rows, start=2)])


def test_rows_become_submissions_with_spreadsheet_row_numbers():
    parsed, refused = parse_rows(table(
        {"site_id": " 1-1 ", "site_name": "ignored", "tool": "NEWS2", "stage": "4",
         "applies_from": "31/03/2023"},
        {"site_id": "1-2", "stage": 5.0, "applies_from": date(2023, 1, 2), "note": 12},
    ))
    assert refused == []
    assert [(p.row, p.data.site_id, p.data.stage, p.data.applies_from) for p in parsed] == [
        (2, "1-1", 4, date(2023, 3, 31)), (3, "1-2", 5, date(2023, 1, 2))]
    assert parsed[0].data.programme == "managing-deterioration-care-homes"
    assert parsed[1].data.note == "12"


def test_an_untouched_row_for_a_site_with_no_report_is_unchanged():
    parsed, refused = parse_rows(table({"site_id": "1-1", "stage": 0, "applies_from": None}))
    assert parsed == []
    assert [(r.row, r.outcome) for r in refused] == [(2, "unchanged")]


@pytest.mark.parametrize(("cells", "field", "reason"), [
    ({"site_id": "1-1", "stage": 3, "applies_from": ""}, "applies_from",
     "applies_from is required"),
    ({"site_id": "1-1", "stage": "", "applies_from": "2023-01-01"}, "stage", "stage is required"),
    ({"site_id": "", "stage": 3, "applies_from": "2023-01-01"}, "site_id",
     "site_id is required"),
    ({"site_id": "1-1", "stage": "three", "applies_from": "2023-01-01"}, "stage",
     "stage: Input should be a valid integer"),
    ({"site_id": "1-1", "stage": 3, "applies_from": "31/02/2023"}, "applies_from",
     "applies_from: 31/02/2023 is not a real date"),
    ({"site_id": "1-1", "stage": 3, "applies_from": "March"}, "applies_from",
     "applies_from: Input should be a valid date or datetime, input is too short"),
])
def test_unreadable_cells_are_refused_naming_row_and_column(cells, field, reason):
    parsed, refused = parse_rows(Table(list(COLUMNS), [(7, cells)]))
    assert parsed == []
    assert [(r.row, r.outcome, r.field, r.reason) for r in refused] == [
        (7, "rejected", field, reason)]


def test_missing_columns_refuse_the_whole_file():
    with pytest.raises(Problem) as exc:
        parse_rows(Table(["site_id", "tool"], []))
    assert exc.value.status == 422
    assert exc.value.errors == [
        {"field": "stage", "reason": "column missing from row 1"},
        {"field": "applies_from", "reason": "column missing from row 1"}]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_written_tables_read_back_with_blank_rows_skipped(fmt):
    rows = [["1-1", "Home", "QJK", "p", None, 3, date(2023, 3, 31), None],
            [None] * 8, ["1-2", "Other", "QSL", "p", "NEWS2", 0, None, "n"]]
    data = (write_csv(COLUMNS, rows) if fmt == "csv"
            else write_xlsx(COLUMNS, rows, title="return", notes=["about"]))
    got = read_table(data, fmt, max_rows=10)
    assert got.header == list(COLUMNS)
    assert [n for n, _ in got.rows] == [2, 4]
    assert str(got.rows[0][1]["applies_from"]) == "2023-03-31"


def test_too_many_rows_is_413_and_garbage_is_422():
    data = write_csv(["a"], [[i] for i in range(5)])
    with pytest.raises(Problem) as exc:
        read_table(data, "csv", max_rows=4)
    assert exc.value.status == 413
    for fmt, junk in (("xlsx", b"not a zip"), ("csv", b"\xff\xfe\x00bad")):
        with pytest.raises(Problem) as exc:
            read_table(junk, fmt, max_rows=4)
        assert exc.value.status == 422 and exc.value.errors[0]["field"] == "file"
