"""Read and write small tables as CSV or XLSX, with bounds.

A table is a header (lower-cased, trimmed column names) and rows numbered as a spreadsheet
user sees them: the header is row 1, so the first data row is row 2. Entirely blank rows are
skipped. Callers bound the bytes before parsing; the row bound is enforced while reading, so
an oversized sheet is refused without being loaded whole.

An XLSX file is a zip, so its bytes say little about the work it makes: before openpyxl sees
one, :func:`check_xlsx_archive` reads the zip's central directory and refuses archives that
would expand too far (413) or that are not honest zips (422); then the sheet is read with its
declared ``<dimension>`` ignored and a bound on the rows and cells it may span (413).
"""

from __future__ import annotations

import csv
import io
import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal
from xml.etree.ElementTree import ParseError

from openpyxl import Workbook, load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from shared.problems import Problem

Format = Literal["csv", "xlsx"]
XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA = "text/csv"

# XLSX bounds. The uncompressed total is a setting (ADOPTION_MAX_XLSX_UNCOMPRESSED_BYTES); this
# default serves callers without one (the CLI loader). A quarterly return for ~1,700 homes is
# well under 1 MB uncompressed.
XLSX_MAX_UNCOMPRESSED = 50_000_000
XLSX_MAX_MEMBERS = 1_000
XLSX_MAX_RATIO = 100  # uncompressed : compressed, checked for members larger than ...
XLSX_RATIO_FROM = 1_000_000  # ... this many bytes (small parts may compress as well as they like)
SHEET_MAX_ROWS = 1_048_576  # the most rows a spreadsheet can hold
CELLS_PER_ROW = 250  # cells a sheet may span per allowed data row, blank padding included
_CHUNK = 65_536
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, (fixed fields), name and extra lengths
_LOCAL_MAGIC = b"PK\x03\x04"
_SEALED = 0x1 | 0x20 | 0x40  # zip flags: encrypted, patch data, strong encryption


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


def read_table(data: bytes, fmt: Format, *, max_rows: int,
               max_uncompressed: int = XLSX_MAX_UNCOMPRESSED) -> Table:
    """Parse an uploaded table; 422 if unreadable, 413 past `max_rows` data rows or (XLSX)
    past `max_uncompressed` bytes once expanded."""
    try:
        if fmt == "csv":
            raw = _csv_rows(data)
        else:
            raw = _xlsx_rows(data, max_uncompressed=max_uncompressed,
                             max_cells=max(max_rows, 1) * CELLS_PER_ROW)
        header = [str(c or "").strip().lower() for c in next(raw, [])]
        rows = []
        for number, cells in enumerate(raw, start=2):
            if all(c is None or str(c).strip() == "" for c in cells):
                continue
            if len(rows) == max_rows:
                raise Problem(413, "Content Too Large", f"more than {max_rows} rows")
            rows.append((number, dict(zip(header, cells, strict=False))))
    except (csv.Error, UnicodeDecodeError, zipfile.BadZipFile, InvalidFileException,
            KeyError, ValueError, ParseError) as exc:
        raise _unreadable(fmt, exc) from exc
    return Table(header, rows)


def _csv_rows(data: bytes) -> Iterator[Sequence[Any]]:
    text = data.decode("utf-8-sig")
    return iter(csv.reader(io.StringIO(text, newline="")))


def _xlsx_rows(data: bytes, *, max_uncompressed: int,
               max_cells: int) -> Iterator[Sequence[Any]]:
    check_xlsx_archive(data, max_uncompressed=max_uncompressed)
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError, OSError,
            ParseError) as exc:
        raise _unreadable("xlsx", exc) from exc
    if not book.worksheets:
        raise _dishonest("the workbook has no worksheet")
    sheet = book.worksheets[0]
    # The sheet's <dimension ref="A1:XFD1048576"/> is the uploader's word; openpyxl would pad
    # every row to its width and yield every row up to its height, seconds to hours of work
    # from a 2 KB file. Read the cells that are there, with rows and padding bounded.
    sheet.reset_dimensions()
    return _bounded_rows(sheet.iter_rows(values_only=True), max_cells=max_cells)


def _bounded_rows(rows: Iterable[Sequence[Any]], *, max_cells: int) -> Iterator[tuple[Any, ...]]:
    """Rows as read, refused past row SHEET_MAX_ROWS or past `max_cells` cells spanned (a row
    spans up to its last cell, so ``A1`` and ``XFD1`` alone span 16,384)."""
    cells = 0
    for number, row in enumerate(rows, start=1):
        if number > SHEET_MAX_ROWS:
            raise _too_large(f"the sheet goes past row {SHEET_MAX_ROWS}",
                             f"rows past {SHEET_MAX_ROWS}")
        cells += len(row)
        if cells > max_cells:
            raise _too_large(f"the sheet spans more than {max_cells} cells",
                             f"more than {max_cells} cells by row {number}")
        yield tuple(map(_cell, row))


def check_xlsx_archive(data: bytes, *, max_uncompressed: int) -> None:
    """Refuse an XLSX upload, without extracting it, that is not an honest zip (422) or that
    would expand past `max_uncompressed` bytes, into more than XLSX_MAX_MEMBERS parts, or by
    more than XLSX_MAX_RATIO:1 for a part over XLSX_RATIO_FROM bytes (413)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OverflowError,
            struct.error, NotImplementedError) as exc:
        raise _unreadable("xlsx", exc) from exc
    if len(members) > XLSX_MAX_MEMBERS:
        raise _too_large(f"the xlsx file holds more than {XLSX_MAX_MEMBERS} parts",
                         f"{len(members)} zip members; at most {XLSX_MAX_MEMBERS}")
    for info in members:
        if info.flag_bits & _SEALED:
            raise _dishonest(f"{_name(info)} is encrypted or patched")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _dishonest(f"{_name(info)} uses zip compression method {info.compress_type};"
                             " xlsx parts are stored or deflated")
    total = sum(info.file_size for info in members)
    if total > max_uncompressed:
        raise _too_large(f"the xlsx file expands to more than {max_uncompressed} bytes",
                         f"{total} bytes uncompressed; at most {max_uncompressed}")
    for info in members:
        if (info.file_size > XLSX_RATIO_FROM
                and info.file_size > XLSX_MAX_RATIO * info.compress_size):
            raise _too_large(f"a part of the xlsx file expands more than {XLSX_MAX_RATIO}:1",
                             f"{_name(info)} expands more than {XLSX_MAX_RATIO}:1")
    # The declared sizes bound the work only if they are true. zipfile does not make them so:
    # it cuts each part's output to the declared size and checks the CRC, but only after
    # inflating, and a whole-part read (openpyxl reads workbook.xml, styles.xml and more that
    # way) inflates all of a part's compressed bytes in one call: a 1 MB upload that declares
    # a 1 KB workbook.xml can allocate gigabytes. So inflate every part here first, in bounded
    # steps, and refuse any whose real size or CRC differs from its declaration; the total
    # work is then at most `max_uncompressed` bytes, and so is everything openpyxl can read.
    for info in members:
        if not _as_declared(data, info):
            raise _dishonest(f"{_name(info)} does not match its declared size and CRC")


def _as_declared(data: bytes, info: zipfile.ZipInfo) -> bool:
    """Whether the part's stored bytes inflate to exactly its declared size and CRC, reading
    the same bytes zipfile would (after the local header) and never inflating past the size."""
    if info.header_offset < 0:  # a forged end record can put it there; unpack_from would
        return False              # then count from the end of the buffer
    try:
        magic, name_len, extra_len = _LOCAL_HEADER.unpack_from(data, info.header_offset)
    except struct.error:
        return False
    start = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
    if magic != _LOCAL_MAGIC or start + info.compress_size > len(data):
        return False
    raw = memoryview(data)[start:start + info.compress_size]
    if info.compress_type == zipfile.ZIP_STORED:
        return info.compress_size == info.file_size and zlib.crc32(raw) == info.CRC
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    size = crc = 0
    try:
        for offset in range(0, len(raw), _CHUNK):
            pending: bytes | memoryview = raw[offset:offset + _CHUNK]
            while pending:
                out = inflater.decompress(pending, _CHUNK)
                size += len(out)
                if size > info.file_size:
                    return False
                crc = zlib.crc32(out, crc)
                pending = inflater.unconsumed_tail
            if inflater.eof:
                break
    except zlib.error:
        return False
    return inflater.eof and size == info.file_size and crc == info.CRC


def _cell(value: Any) -> Any:
    return value.date() if isinstance(value, datetime) else value


def _unreadable(fmt: str, exc: Exception) -> Problem:
    return Problem(422, "Unreadable file", f"could not read the {fmt} file",
                   errors=[{"field": "file", "reason": type(exc).__name__}])


def _dishonest(reason: str) -> Problem:
    return Problem(422, "Unreadable file", "could not read the xlsx file",
                   errors=[{"field": "file", "reason": reason}])


def _too_large(detail: str, reason: str) -> Problem:
    return Problem(413, "Content Too Large", detail, errors=[{"field": "file", "reason": reason}])


def _name(info: zipfile.ZipInfo) -> str:
    """A part's name as safe to echo: the uploader chose it."""
    return repr(info.filename[:100])


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
