"""Read and write small tables as CSV or XLSX, with bounds.

A table is a header (lower-cased, trimmed column names) and rows numbered as a spreadsheet
user sees them: the header is row 1, so the first data row is row 2. Entirely blank rows are
skipped. Callers bound the bytes before parsing; the row bound is enforced while reading, so
an oversized sheet is refused without being loaded whole.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from openpyxl import Workbook, load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from shared.problems import Problem

Format = Literal["csv", "xlsx"]
XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA = "text/csv"


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[tuple[int, dict[str, Any]]]  # (spreadsheet row number, column -> cell)


def format_of(filename: str | None, content_type: str | None) -> Format:
    """The upload's format from its file name, else its media type; refuses anything else."""
    name = (filename or "").lower()
    if name.endswith(".xlsx") or content_type == XLSX_MEDIA:
        return "xlsx"
    if name.endswith(".csv") or (content_type or "").startswith(("text/csv", "text/plain")):
        return "csv"
    raise Problem(415, "Unsupported Media Type", "upload a .csv or .xlsx file",
                  errors=[{"field": "file", "value": filename, "reason": "not .csv or .xlsx"}])


def read_table(data: bytes, fmt: Format, *, max_rows: int) -> Table:
    """Parse an uploaded table; 422 if unreadable, 413 past `max_rows` data rows."""
    try:
        raw = _csv_rows(data) if fmt == "csv" else _xlsx_rows(data)
        header = [str(c or "").strip().lower() for c in next(raw, [])]
        rows = []
        for number, cells in enumerate(raw, start=2):
            if all(c is None or str(c).strip() == "" for c in cells):
                continue
            if len(rows) == max_rows:
                raise Problem(413, "Content Too Large", f"more than {max_rows} rows")
            rows.append((number, dict(zip(header, cells, strict=False))))
    except (csv.Error, UnicodeDecodeError, zipfile.BadZipFile, InvalidFileException,
            KeyError, ValueError) as exc:
        raise _unreadable(fmt, exc) from exc
    return Table(header, rows)


def _csv_rows(data: bytes) -> Iterator[Sequence[Any]]:
    text = data.decode("utf-8-sig")
    return iter(csv.reader(io.StringIO(text, newline="")))


def _xlsx_rows(data: bytes) -> Iterator[Sequence[Any]]:
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError, OSError) as exc:
        raise _unreadable("xlsx", exc) from exc
    sheet = book.worksheets[0]
    return (tuple(_cell(v) for v in r) for r in sheet.iter_rows(values_only=True))


def _cell(value: Any) -> Any:
    return value.date() if isinstance(value, datetime) else value


def _unreadable(fmt: str, exc: Exception) -> Problem:
    return Problem(422, "Unreadable file", f"could not read the {fmt} file",
                   errors=[{"field": "file", "reason": type(exc).__name__}])


def write_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return out.getvalue().encode("utf-8")


def write_xlsx(header: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str,
               notes: Sequence[str] = ()) -> bytes:
    """One sheet holding the table (read back on upload), one sheet of notes for people."""
    book = Workbook()
    sheet = book.active
    sheet.title = title
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    for column in sheet.iter_cols(min_row=2):
        for cell in column:
            if isinstance(cell.value, date):
                cell.number_format = "yyyy-mm-dd"
    if notes:
        about = book.create_sheet("about")
        for line in notes:
            about.append([line])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
