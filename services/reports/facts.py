"""``reports_stage_fact``: the stage in force at each quarter end, per site (shared parts).

Invariant: for every registered site and programme, the facts for quarters ``first_qn`` to
the horizon are exactly ``domain.stages.quarter_facts`` over the site's full stage history and
its register row, whatever order the events arrived in (``upkeep`` keeps it so per
transaction; ``rebuild`` derives it all at once). The horizon is the current quarter by the
clock; when the clock enters a new quarter the next transaction extends every series to it.
``reports_stage_count`` moves with the facts in the same transaction (counter deltas of the
facts removed and added), so counts always equal a GROUP BY of the facts; and
``reports_latest_return`` with the stage records (each PSC's newest ``reported_at``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Insert

from services.reports.domain.stages import StagePoint, ordinal, ordinal_of_instant
from services.reports.models import (
    Freshness,
    LatestReturn,
    ReportSite,
    StageCount,
    StageFact,
    StageRecord,
)
from shared.dialect import aware, upsert, upsert_max
from shared.events import Envelope
from shared.quarters import Quarter

SITE, RECORD, FACT, FRESH = (ReportSite.__table__, StageRecord.__table__, StageFact.__table__,
                             Freshness.__table__)
COUNT, LATEST = StageCount.__table__, LatestReturn.__table__
COUNT_KEY = ["programme", "qn", "level", "code", "tool", "stage"]


@dataclass
class Horizon:
    """Which quarters the facts cover: first_qn (settings) up to the clock's quarter.

    ``seen`` caches a horizon *read* from the database (never one written in a transaction
    that might still roll back): the stored horizon only grows, so while the clock's quarter
    is not past it, no read is needed.
    """

    first_qn: int
    clock: Callable[[], datetime]
    seen: int | None = None

    @classmethod
    def of(cls, first_quarter: str, clock: Callable[[], datetime] | None = None) -> Horizon:
        return cls(ordinal(Quarter.parse(first_quarter)), clock or (lambda: datetime.now(UTC)))

    def current_qn(self) -> int:
        return max(self.first_qn, ordinal_of_instant(self.clock()))

    def start_for(self, applies_from: date) -> int:
        return max(self.first_qn, ordinal(Quarter.of_date(applies_from)))


def set_freshness(dialect: str, **values: object) -> Insert:
    """One statement writing these columns of the single freshness row (created if missing);
    executed by the async rebuild and by ``upkeep`` on its sync connection alike."""
    return upsert(FRESH, dialect, ["id"], {"id": 1, **values})


def last_event(envelope: Envelope) -> dict[str, object]:
    """The freshness columns for the last event applied (metadata on every response)."""
    return {"event_id": str(envelope.id), "event_type": envelope.type,
            "event_time": envelope.time, "applied_at": datetime.now(UTC)}


def new_stamp() -> str:
    """A fresh ``views_stamp``: the register, the history or the facts changed."""
    return uuid.uuid4().hex


def points(rows: Iterable[tuple]) -> list[StagePoint]:
    """(applies_from, reported_at, tool, stage, event_id) rows as domain values."""
    return [StagePoint(a, aware(r), tool, stage, str(eid)) for a, r, tool, stage, eid in rows]


def fact_row(site, programme: str, fact) -> dict:  # noqa: ANN001 - a Row and a QuarterFact
    return {"site_id": site.site_id, "programme": programme, "qn": fact.qn, "tool": fact.tool,
            "stage": fact.stage, "icb_code": site.icb_code, "psc_code": site.psc_code,
            "region": site.region}


def add_latest_returns(conn: Connection, records: Iterable[Mapping[str, Any]]) -> None:
    """Raise each (programme, PSC)'s latest return to the newest of these records' (a
    maximum: repeats and any order give the same)."""
    newest: dict[tuple[str, str], datetime] = {}
    for r in records:
        key = (r["programme"], r["psc_code"])
        if key not in newest or r["reported_at"] > newest[key]:
            newest[key] = r["reported_at"]
    if newest:
        conn.execute(upsert_max(LATEST, conn.dialect.name, ["programme", "psc_code"],
                                "reported_at"),
                     [{"programme": p, "psc_code": c, "reported_at": at}
                      for (p, c), at in sorted(newest.items())])


def derive_latest_returns() -> list:
    """Statements that make every latest return again from the stage records."""
    return [delete(LATEST), insert(LATEST).from_select(
        ["programme", "psc_code", "reported_at"],
        select(RECORD.c.programme, RECORD.c.psc_code, func.max(RECORD.c.reported_at))
        .group_by(RECORD.c.programme, RECORD.c.psc_code))]
