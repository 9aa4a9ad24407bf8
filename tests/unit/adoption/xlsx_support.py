"""Hand-built XLSX archives for the upload bounds: a minimal workbook, padded, crowded or forged.

Built with ``zipfile`` in memory from parts written out here, so the sizes a test asserts are
fixed by construction, not read back from the code under test.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    b'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
    b'<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
    b'officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/'
    b'sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.'
    b'worksheet+xml"/></Types>')
ROOT_RELS = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
WORKBOOK = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="'
    b'http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet '
    b'name="return" sheetId="1" r:id="rId1"/></sheets></workbook>')
WORKBOOK_RELS = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>')
FIXED_PARTS = {"[Content_Types].xml": CONTENT_TYPES, "_rels/.rels": ROOT_RELS,
               "xl/workbook.xml": WORKBOOK, "xl/_rels/workbook.xml.rels": WORKBOOK_RELS}
SHEET = "xl/worksheets/sheet1.xml"
SHEET_HEAD = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
              b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">')
SHEET_TAIL = b"</sheetData></worksheet>"


def cell(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


def row(number: int, *cells: str) -> str:
    return f'<row r="{number}">{"".join(cells)}</row>'


HEADER_ROW = row(1, cell("A1", "site_id"))


def sheet_xml(*rows: str, dimension: str | None = None, padding: int = 0) -> bytes:
    """A worksheet of `rows` (default: just a ``site_id`` header), then `padding` spaces."""
    dim = f'<dimension ref="{dimension}"/>' if dimension else ""
    body = "".join(rows or (HEADER_ROW,))
    return (SHEET_HEAD + dim.encode() + b"<sheetData>" + body.encode() + b" " * padding
            + SHEET_TAIL)


def workbook(sheet: bytes | None = None, *, extra: dict[str, bytes] | None = None,
             compression: int = zipfile.ZIP_DEFLATED,
             replacing: dict[str, bytes] | None = None) -> bytes:
    """A minimal workbook: the four fixed parts (or their `replacing`), the sheet, then any
    `extra` parts."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        for name, data in {**FIXED_PARTS, **(replacing or {})}.items():
            archive.writestr(name, data)
        archive.writestr(SHEET, sheet_xml() if sheet is None else sheet)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return out.getvalue()


def padded_to(total: int) -> bytes:
    """A minimal workbook whose parts declare exactly `total` bytes uncompressed in all, the
    sheet padded with whitespace (a "zip bomb" once `total` is large)."""
    fixed = sum(len(data) for data in FIXED_PARTS.values()) + len(sheet_xml())
    return workbook(sheet_xml(padding=total - fixed))


def forged(data: bytes, name: str, *, size: int | None = None, crc: int | None = None,
           flags: int | None = None) -> bytes:
    """`data` with part `name`'s declared size, CRC or flags rewritten, in both its local
    header and its central directory record, the bytes themselves untouched."""
    out = bytearray(data)
    local = zipfile.ZipFile(io.BytesIO(data)).getinfo(name).header_offset
    central = _central_record(out, name)
    for offset, fmt, value in ((6, "<H", flags), (14, "<L", crc), (22, "<L", size)):
        if value is not None:  # local header field; the central record's is 2 bytes further
            struct.pack_into(fmt, out, local + offset, value)
            struct.pack_into(fmt, out, central + offset + 2, value)
    return bytes(out)


def _central_record(data: bytearray, name: str) -> int:
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46:at + 46 + length] == name.encode():
            return at
        at = data.find(b"PK\x01\x02", at + 4)
    raise KeyError(name)


def understated(real: bytes, declared: bytes) -> bytes:
    """A workbook whose ``xl/workbook.xml`` holds deflate(`real`) but declares the size and
    CRC of `declared`: the central directory lies (openpyxl reads that part whole, and
    zipfile alone would inflate all of `real` before cutting it to the declared size)."""
    return forged(workbook(replacing={"xl/workbook.xml": real}), "xl/workbook.xml",
                  size=len(declared), crc=zlib.crc32(declared))
