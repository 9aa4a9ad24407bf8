"""Spreadsheet uploads at the HTTP edge, bounded before they are parsed.

A file arrives either as the ``file`` field of a multipart form or as the raw request body
with a ``text/csv`` or XLSX media type. The declared Content-Length is checked before the body
is read (a chunked upload with no length is refused), and the bytes again after. An XLSX file
is a zip: its declared expanded size is checked, and its parts verified against it, before it
is parsed (see ``spreadsheet.check_xlsx_archive``).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile

from services.adoption.spreadsheet import CSV_MEDIA, XLSX_MEDIA, Table, format_of, read_table
from shared.problems import Problem

FORM_OVERHEAD = 16_384  # multipart boundaries and part headers around the file

OPENAPI: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary", "description": ".csv or .xlsx"}}}},
    CSV_MEDIA: {"schema": {"type": "string"}},
    XLSX_MEDIA: {"schema": {"type": "string", "format": "binary"}},
}}}


async def read_uploaded_table(request: Request, *, max_bytes: int, max_rows: int,
                              max_uncompressed: int) -> Table:
    """The uploaded table; 411 without a length, 413 too large (bytes, rows, or an XLSX that
    expands past `max_uncompressed` bytes), 415 not CSV/XLSX, 422 bad."""
    _check_length(request, max_bytes + FORM_OVERHEAD)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "multipart/form-data":
        data, fmt = await _from_form(request, max_bytes)
    else:
        fmt = format_of(None, media)
        data = await request.body()
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    return read_table(data, fmt, max_rows=max_rows, max_uncompressed=max_uncompressed)


def _check_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is None or not declared.isdigit():
        raise Problem(411, "Length Required", "send the upload with a Content-Length")
    if int(declared) > limit:
        raise _too_large(limit - FORM_OVERHEAD)


async def _from_form(request: Request, max_bytes: int) -> tuple[bytes, Any]:
    async with request.form(max_files=1, max_fields=5) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Problem(422, "Request is not valid", "the form needs a file field",
                          errors=[{"field": "file", "reason": "missing"}])
        fmt = format_of(upload.filename, upload.content_type)
        return await upload.read(max_bytes + 1), fmt


def _too_large(max_bytes: int) -> Problem:
    return Problem(413, "Content Too Large", f"the upload is larger than {max_bytes} bytes")
