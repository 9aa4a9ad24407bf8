"""Activity by quarter from observation and score events: additive counters per site.

A quarter is the Europe/London quarter of ``taken_at``. A row keeps the area codes of the
first event stored for its site and quarter: the views roll up by the register's codes
(``activity_queries``) and read these only for a site the register copy does not hold yet.
Residents observed are a count of each resident's standing sets per (site, quarter, resident
pseudonym): a resident counts as observed there while that count is > 0.

A withdrawal takes back exactly what the withdrawn event added: ``ObservationSetWithdrawn``
the set (and one of the resident's standing sets), ``ScoreWithdrawn`` what ``counts_of``
added for its ``ScoreComputed`` (nothing for a rejected one) and its flag, if it raised one.
Every event only adds (a withdrawal adds negatives) and the inbox applies each event id once,
so the final counts depend neither on order nor on batching. A withdrawal applied before the
event it withdraws (a rebuild applies activity by event id) takes a counter below 0 for a
while; nothing clamps it, and it ends where the other order ends. A row whose counters all net
to 0 stays; the queries read it as nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from sqlmodel.ext.asyncio.session import AsyncSession

from services.reports.domain.stages import ordinal
from services.reports.models import Activity, ActivityResident
from shared.dialect import insert_rows
from shared.events import Event
from shared.events.observations import ObservationRecorded, ObservationSetWithdrawn
from shared.events.scores import DeteriorationFlagged, ScoreComputed, ScoreWithdrawn
from shared.quarters import Quarter

ACT, RES = Activity.__table__, ActivityResident.__table__
RISK_COLUMNS = {"low": "risk_low", "low-medium": "risk_low_medium", "medium": "risk_medium",
                "high": "risk_high"}


COUNTERS = ("observation_sets", "scored_sets", "complete_sets", *RISK_COLUMNS.values(),
            "red_scores", "flags", "claim_mismatches")
EVENTS = (ObservationRecorded, ObservationSetWithdrawn, ScoreComputed, DeteriorationFlagged,
          ScoreWithdrawn)
TYPES = {cls.TYPE: cls.TOPIC for cls in EVENTS}
SETS = (ObservationRecorded, ObservationSetWithdrawn)   # what moves a resident's standing sets


def counts_of(event: Event) -> dict[str, int]:
    """What one event adds to its site's quarter (a withdrawal: negatives)."""
    if isinstance(event, ObservationRecorded):
        return {"observation_sets": 1}
    if isinstance(event, ObservationSetWithdrawn):
        return {"observation_sets": -1}
    if isinstance(event, ScoreComputed):
        return _score(event)
    if isinstance(event, DeteriorationFlagged):
        return {"flags": 1}
    if isinstance(event, ScoreWithdrawn):
        counts = {column: -n for column, n in _score(event).items()}
        if event.flag_id is not None:
            counts["flags"] = -1
        return counts
    raise TypeError(f"not an activity event: {type(event).__name__}")


def _score(event: ScoreComputed | ScoreWithdrawn) -> dict[str, int]:
    """What a score counts (a ``ScoreWithdrawn`` repeats its ``ScoreComputed``'s values)."""
    if event.status == "rejected":
        return {}   # scoring refused to score it: not a scored set
    counts = {"scored_sets": 1, "complete_sets": int(event.total is not None),
              "red_scores": int(event.red_score), "claim_mismatches": int(event.claim_mismatch)}
    if event.risk in RISK_COLUMNS:
        counts[RISK_COLUMNS[event.risk]] = 1
    return counts


async def add_many(session: AsyncSession, events: Sequence[Event]) -> None:
    """Add a batch of events to the counters: one upsert for the counters, one for the
    residents' standing sets. Every (site, quarter) and (site, quarter, resident) an event
    counts in gets its row, even when the batch nets it to 0 (a row is then there however
    the events were batched)."""
    if not events:
        return
    rows: dict[tuple[str, int], dict] = {}
    residents: Counter[tuple[str, int, str]] = Counter()
    for event in events:
        assert isinstance(event, EVENTS)
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
        if isinstance(event, SETS):
            residents[(event.site_id, qn, event.resident)] += counts["observation_sets"]
    if not rows:
        return
    ordered = [rows[k] for k in sorted(rows)]   # one lock order for concurrent writers
    await insert_rows(session, ACT, ordered, add=(["site_id", "qn"], COUNTERS))
    if residents:
        await insert_rows(session, RES, [{"site_id": s, "qn": q, "resident": r, "sets": n}
                                         for (s, q, r), n in sorted(residents.items())],
                          add=(["site_id", "qn", "resident"], ["sets"]))
