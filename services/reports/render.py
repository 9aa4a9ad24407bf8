"""Views as JSON and CSV: every percentage travels with its numerator and denominator."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fastapi.responses import Response
from starlette.types import Receive, Scope, Send

from services.reports.domain.adoption import AMBITION_MEASURE, MEASURES, AdoptionRow
from services.reports.domain.stages import from_ordinal
from services.reports.domain.transitions import Transitions
from shared.dialect import aware


def number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def adoption_json(row: AdoptionRow) -> dict[str, Any]:
    return {
        "quarter": row.quarter, "level": row.level, "code": row.code,
        "programme": row.programme, "tool": row.tool, "denominator": row.denominator,
        "stages": {str(stage): n for stage, n in enumerate(row.stages)},
        "measures": {name: {"numerator": m.numerator, "denominator": m.denominator,
                            "percent": number(m.percent),
                            "change_numerator": m.change_numerator,
                            "change_points": number(m.change_points)}
                     for name, m in row.measures.items()},
        "ambitions": {name: {"measure": AMBITION_MEASURE[name], "target_percent": number(t),
                             "met": met} for name, (t, met) in row.ambitions.items()},
    }


def adoption_flat(row: AdoptionRow) -> dict[str, Any]:
    flat: dict[str, Any] = {"quarter": row.quarter, "level": row.level, "code": row.code,
                            "programme": row.programme, "tool": row.tool,
                            "denominator": row.denominator}
    flat.update({f"stage_{s}": n for s, n in enumerate(row.stages)})
    for name in MEASURES:
        m = row.measures[name]
        flat.update({f"{name}_numerator": m.numerator, f"{name}_denominator": m.denominator,
                     f"{name}_percent": m.percent, f"{name}_change_points": m.change_points})
    for name, (target, met) in row.ambitions.items():
        flat.update({f"{name}_target_percent": target, f"{name}_met": met})
    return flat


def transitions_json(qn: int, level: str, programme: str, code: str, t: Transitions) -> dict:
    return {"quarter": from_ordinal(qn).label, "previous": from_ordinal(qn - 1).label,
            "level": level, "code": code, "programme": programme, "up": t.up, "down": t.down,
            "same": t.same, "moves": [{"from": a, "to": b, "sites": n}
                                      for (a, b), n in t.moves.items()]}


def freshness_json(row: Mapping[str, Any] | None, horizon: str | None) -> dict[str, Any]:
    """The last event applied and how old it is (None before any event); ``row`` is the
    freshness row's columns."""
    if row is None or row["event_time"] is None:
        return {"last_event": None, "age_seconds": None, "horizon": horizon}
    now, at = datetime.now(UTC), aware(row["event_time"])
    return {"last_event": {"id": row["event_id"], "type": row["event_type"],
                           "time": at.isoformat(),
                           "applied_at": aware(row["applied_at"]).isoformat()},
            "age_seconds": round((now - at).total_seconds(), 3),
            "horizon": horizon}


def csv_response(rows: Iterable[dict[str, Any]], filename: str, fresh: dict[str, Any]
                 ) -> Response:
    rows = list(rows)
    out = io.StringIO()
    if rows:
        fields = list(dict.fromkeys(k for row in rows for k in row))   # rows may differ
        writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": f'attachment; filename="{filename}"',
                             **freshness_headers(fresh)})


def freshness_headers(fresh: dict[str, Any]) -> dict[str, str]:
    last = fresh.get("last_event") or {}
    return {"x-last-event-time": str(last.get("time", "")),
            "x-last-event-age-seconds": str(fresh.get("age_seconds") or "")}


class PartsResponse(Response):
    """A body sent as the parts it is made of, never joined: a view's cached JSON can be
    most of a megabyte, and joining it with the per-request freshness copied it several
    times over on every hit (1 ms of a data-quality hit). One ``http.response.body``
    message per part; the length is known, so nothing is chunked."""

    def __init__(self, parts: Sequence[bytes], media_type: str,
                 headers: Mapping[str, str]) -> None:
        super().__init__(b"", media_type=media_type, headers=headers)
        self.parts = [part for part in parts if part]
        self.headers["content-length"] = str(sum(map(len, self.parts)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        last = len(self.parts) - 1
        for i, part in enumerate(self.parts):
            await send({"type": "http.response.body", "body": part, "more_body": i < last})
        if not self.parts:
            await send({"type": "http.response.body", "body": b""})
