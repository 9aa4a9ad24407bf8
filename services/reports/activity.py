"""Activity by quarter from observation and score events: additive counters per site.

Counters are safe to add to because the inbox applies each event id once; a quarter is the
Europe/London quarter of ``taken_at``. Residents observed are counted distinct through a
(site, quarter, resident pseudonym) set. Area codes come from the events themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel.ext.asyncio.session import AsyncSession

from services.reports.domain.stages import ordinal
from services.reports.models import Activity, ActivityResident
from shared.dialect import insert_rows
from shared.events import Event, topics
from shared.events.observations import ObservationRecorded
from shared.events.scores import DeteriorationFlagged, ScoreComputed
from shared.quarters import Quarter

ACT, RES = Activity.__table__, ActivityResident.__table__
RISK_COLUMNS = {"low": "risk_low", "low-medium": "risk_low_medium", "medium": "risk_medium",
                "high": "risk_high"}


COUNTERS = ("observation_sets", "scored_sets", "complete_sets", *RISK_COLUMNS.values(),
            "red_scores", "flags", "claim_mismatches")
TYPES = {ObservationRecorded.TYPE: topics.OBSERVATIONS, ScoreComputed.TYPE: topics.SCORES,
         DeteriorationFlagged.TYPE: topics.SCORES}


def counts_of(event: Event) -> dict[str, int]:
    """What one event adds to its site's quarter."""
    if isinstance(event, ObservationRecorded):
        return {"observation_sets": 1}
    if isinstance(event, ScoreComputed):
        if event.status == "rejected":
            return {}   # scoring refused to score it: not a scored set
        counts = {"scored_sets": 1, "complete_sets": int(event.total is not None),
                  "red_scores": int(event.red_score),
                  "claim_mismatches": int(event.claim_mismatch)}
        if event.risk in RISK_COLUMNS:
            counts[RISK_COLUMNS[event.risk]] = 1
        return counts
    if isinstance(event, DeteriorationFlagged):
        return {"flags": 1}
    raise TypeError(f"not an activity event: {type(event).__name__}")


async def add_many(session: AsyncSession, events: Sequence[Event]) -> None:
    """Add a batch of events to the counters: one upsert for the counters, one insert for
    the residents observed. Area codes are the first seen for a site and quarter."""
    if not events:
        return
    rows: dict[tuple[str, int], dict] = {}
    residents: set[tuple[str, int, str]] = set()
    for event in events:
        assert isinstance(event, ObservationRecorded | ScoreComputed | DeteriorationFlagged)
        counts = counts_of(event)
        if not counts:
            continue
        qn = ordinal(Quarter.of_instant(event.taken_at))
        row = rows.get((event.site_id, qn))
        if row is None:
            row = rows[(event.site_id, qn)] = {
                "site_id": event.site_id, "qn": qn, "icb_code": event.icb_code,
                "psc_code": event.psc_code, **dict.fromkeys(COUNTERS, 0)}
        for column, n in counts.items():
            row[column] += n
        if isinstance(event, ObservationRecorded):
            residents.add((event.site_id, qn, event.resident))
    if not rows:
        return
    ordered = [rows[k] for k in sorted(rows)]   # one lock order for concurrent writers
    await insert_rows(session, ACT, ordered, add=(["site_id", "qn"], COUNTERS))
    if residents:
        await insert_rows(session, RES, [{"site_id": s, "qn": q, "resident": r}
                                         for s, q, r in sorted(residents)],
                          ignore_conflicts=True)
