"""Event builders and a reports runtime driven without HTTP (handlers in transactions)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from services.reports.domain.stages import ordinal
from shared.events import EVENT_TYPES, Envelope, wrap
from shared.events.observations import ObservationRecorded, ObservationSetWithdrawn
from shared.events.scores import DeteriorationFlagged, ScoreComputed, ScoreWithdrawn
from shared.events.sites import SiteClosed, SiteRegistered, SiteUpdated
from shared.events.stages import StageChanged
from shared.migrations import upgrade
from shared.quarters import Quarter
from shared.settings import load_settings

CLOCK = datetime(2023, 8, 15, 12, 0, tzinfo=UTC)   # 2023/24 Q2
FIRST = "2022/23 Q1"
# Two instants in 2022/23 Q3 (``Q3``), the quarter most tests read.
T1 = datetime(2022, 11, 3, 10, tzinfo=UTC)
T2 = datetime(2022, 12, 20, 8, tzinfo=UTC)
IN_Q3 = date(2022, 10, 1)   # Q3's first day: a stage applying from it is in force all Q3
Q3, Q4 = ordinal(Quarter.parse("2022/23 Q3")), ordinal(Quarter.parse("2022/23 Q4"))
AREAS = {"QJK": ("SW", "South West"), "QHL": ("WM", "Midlands"), "QUY": ("SW", "South West"),
         "QOX": ("WX", "South West")}   # QOX: a PSC of its own, named by no shared event
TOPIC_OF = {name: cls.TOPIC for name, cls in EVENT_TYPES.items()}


def site(site_id: str, icb: str = "QJK", revision: int = 1, *, opened: date | None = None,
         closed: date | None = None, kind: type = SiteRegistered) -> Envelope:
    psc, region = AREAS[icb]
    if closed is not None and kind is SiteRegistered:
        kind = SiteClosed
    event = kind(site_id=site_id, revision=revision, name=f"Home {site_id}",
                 setting_type="care_home", icb_code=icb, psc_code=psc, region=region,
                 opened_on=opened, closed_on=closed)
    return wrap(event, source="/test/adoption")


def updated(site_id: str, icb: str, revision: int, **kw) -> Envelope:
    return site(site_id, icb, revision, kind=SiteUpdated, **kw)


def stage(site_id: str, to_stage: int, applies: date, *, tool: str | None = "NEWS2",
          reported: datetime | None = None, programme: str = "care-homes",
          icb: str = "QJK") -> Envelope:
    psc, _ = AREAS[icb]
    event = StageChanged(submission_id=uuid.uuid4(), site_id=site_id, icb_code=icb,
                         psc_code=psc, programme=programme, from_tool=None, from_stage=None,
                         to_tool=tool, to_stage=to_stage, applies_from=applies,
                         reported_at=reported or datetime(2023, 7, 1, tzinfo=UTC),
                         reporter="psc-test")
    return wrap(event, source="/test/adoption")


def observation(site_id: str, resident: str, taken: datetime, icb: str = "QJK") -> Envelope:
    psc, _ = AREAS[icb]
    return wrap(ObservationRecorded(
        observation_id=uuid.uuid4(), resident=resident, site_id=site_id, icb_code=icb,
        psc_code=psc, taken_at=taken, received_at=taken, source_platform="test"),
        source="/test/ingest")


def score(site_id: str, resident: str, taken: datetime, *, total: int | None, risk: str | None,
          mismatch: bool = False, icb: str = "QJK", rejected: bool = False, red: bool = False,
          of: Envelope | None = None) -> Envelope:
    """A ScoreComputed (``of``: the ObservationRecorded it scores, for its observation id)."""
    psc, _ = AREAS[icb]
    return wrap(ScoreComputed(
        observation_id=_observation_id(of), resident=resident, site_id=site_id, icb_code=icb,
        psc_code=psc, taken_at=taken, scale=None if rejected else 1, sub_scores={},
        total=total, risk=risk, red_score=red, claim_mismatch=mismatch,
        status="rejected" if rejected else "scored",
        rejection=({"field": "spo2", "value": "101", "reason": "implausible"},) if rejected
        else ()), source="/test/scoring")


def flag(site_id: str, resident: str, taken: datetime, icb: str = "QJK", *,
         of: Envelope | None = None) -> Envelope:
    psc, _ = AREAS[icb]
    return wrap(DeteriorationFlagged(
        flag_id=uuid.uuid4(), observation_id=_observation_id(of), resident=resident,
        site_id=site_id, icb_code=icb, psc_code=psc, taken_at=taken, reasons=("risk",)),
        source="/test/scoring")


def _observation_id(of: Envelope | None) -> uuid.UUID:
    return uuid.uuid4() if of is None else uuid.UUID(of.data["observation_id"])


def withdrawal(recorded: Envelope, *, reason: str = "entered-in-error",
               replaced_by: Envelope | None = None) -> Envelope:
    """ObservationSetWithdrawn for the set of ``recorded`` (an ObservationRecorded), as
    ingest publishes it: the set's own site, area codes and taken_at."""
    d = recorded.data
    return wrap(ObservationSetWithdrawn(
        **{k: d[k] for k in ("observation_id", "resident", "site_id", "icb_code", "psc_code",
                             "taken_at", "source_platform")},
        withdrawn_at=CLOCK, reason=reason,
        replaced_by=replaced_by and replaced_by.data["observation_id"]), source="/test/ingest")


def score_withdrawal(scored: Envelope, flagged: Envelope | None = None, *,
                     reason: str = "entered-in-error",
                     replaced_by: Envelope | None = None) -> Envelope:
    """ScoreWithdrawn for ``scored`` (a ScoreComputed) and the flag it raised, if any,
    repeating what they published, as scoring does."""
    d = scored.data
    return wrap(ScoreWithdrawn(
        **{k: d[k] for k in ("observation_id", "resident", "site_id", "icb_code", "psc_code",
                             "taken_at", "status", "total", "risk", "red_score",
                             "claim_mismatch")},
        withdrawn_at=CLOCK, reason=reason,
        replaced_by=replaced_by and replaced_by.data["observation_id"],
        flag_id=flagged and flagged.data["flag_id"]), source="/test/scoring")


def reports_runtime(tmp_path, database_url: str | None = None, *, bus=None, **settings):
    from services.reports.bootstrap import bootstrap

    overrides = {"data_dir": tmp_path, "first_quarter": FIRST, **settings}
    if database_url:
        overrides["database_url"] = database_url
    return bootstrap(load_settings("reports", **overrides), bus=bus, clock=lambda: CLOCK)


async def deliver(runtime, envelopes: list[Envelope], batch: int = 1) -> None:
    """Apply messages through the runtime's consumer, ``batch`` messages a transaction, as
    its loop does with what ``getmany`` returned."""
    from shared.bus.base import Message
    from shared.events import encode

    runner = runtime.consumers[0]
    messages = [Message(runner.handlers[e.type][0], 0, i, e.subject, encode(e))
                for i, e in enumerate(envelopes)]
    for i in range(0, len(messages), batch):
        await runner._apply(messages[i:i + batch])


async def view(rt, level: str = "site", qn: int = Q3, *, tool: str = "*",
               programme: str = "care-homes") -> dict[str, tuple]:
    """code -> (observation sets, residents observed, scored, complete, low, low-medium,
    medium, high, red scores, flags, claim mismatches) of the activity query (all tools, or
    one ``tool`` of ``programme``)."""
    from services.reports import activity_queries

    async with rt.db.session() as s:
        rows = await activity_queries.activity(s, level=level, first=qn, last=qn, keep=None,
                                               code=None, programme=programme, tool=tool)
    return {r["code"]: (r["observation_sets"], r["residents_observed"],
                        r["complete_news2"]["denominator"], r["complete_news2"]["numerator"],
                        *r["risk"].values(), r["red_scores"], r["flags"],
                        r["claim_mismatches"]) for r in rows}


async def migrated_to(tmp_path, request, dialect: str, revision: str):
    """A reports runtime on SQLite or PostgreSQL (``dialect``) with its migrations run up to
    ``revision`` (a migration test's starting point)."""
    url = request.getfixturevalue("pg_url") if dialect == "postgres" else None
    runtime = reports_runtime(tmp_path, url)
    await upgrade(runtime.db, runtime.migrations, revision)
    return runtime


async def downgrade(runtime, revision: str) -> None:
    """Run reports' migrations down to ``revision`` (Alembic, on the runtime's database)."""
    from alembic import command

    from shared.migrations import config_for

    def down(connection) -> None:  # noqa: ANN001
        cfg = config_for(runtime.migrations)
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)

    async with runtime.db.engine.begin() as conn:
        await conn.run_sync(down)
